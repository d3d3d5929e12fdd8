"""The chaos campaign's stack and its faults (scripts/chaos.py): a private Redis (append-only), moto S3,
local_rekognition behind the HTTP fault proxy, several real workers, and a scheduler that breaks them at random.

Everything listens on 127.0.0.1 and lives under one temporary directory; every process is the test fixtures' own
(tests/fixtures/), started the way the tests start them.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from celery import Celery

from producer import jobs
from producer.contract import TASK_NAMES, Operation, queue_for
from tests.fixtures.aws import LocalRekognitionProcess, isolated_environment, local_rekognition_environment
from tests.fixtures.faultproxy import HttpFaults, start_http_faults
from tests.fixtures.redis import RedisServer, free_port, wait_until
from tests.fixtures.workers import WorkerProcess, worker_environment

WORKER_SETTINGS = {
    "cache_ttl_s": "0",  # every job is a call: the campaign counts paid calls
    "job_timeout_s": "60",
    "visibility_timeout_s": "75",  # a SIGKILLed worker's jobs come back within 75 s
    "restore_interval_s": "2",
    "backoff_base_s": "0.05",
    "backoff_cap_s": "2",
    "max_attempts": "20",  # ~20 s of retries: rides out a local_rekognition restart (~10 s on a loaded machine)
    "rekognition_connect_timeout_s": "2",
    "rekognition_read_timeout_s": "5",  # shorter than a stall, so a stalled call is retried
    "redis_error_pause_s": "0.5",
    "max_requeues": "30",  # Redis restarts and full spells in a row must not turn jobs into dead letters
    "result_ttl_s": "3600",
}

FAULTS = {
    "worker_sigkill": 3,
    "worker_sigterm": 2,
    "redis_sigkill": 1,
    "redis_full": 1,
    "proxy": 4,
    "rekognition_restart": 1,
    "hostile_entries": 2,
}
"""Each fault's weight in the draw."""

PROXY_MODES = ("cut", "stall", "5xx", "throttle", "corrupt", "down")


@dataclass
class Stack:
    """The running stack, what was done to it, and what went wrong on its own."""

    root: Path
    seed: int
    workers_n: int
    concurrency: int
    rng: random.Random = field(init=False)
    redis: RedisServer = field(init=False)
    moto: subprocess.Popen[bytes] = field(init=False)
    moto_url: str = field(init=False)
    rekognition: LocalRekognitionProcess = field(init=False)
    proxy: HttpFaults = field(init=False)
    workers: list[WorkerProcess] = field(default_factory=list)
    queue: str = field(default_factory=lambda: f"chaos-{uuid.uuid4().hex[:8]}")
    faults: Counter[str] = field(default_factory=Counter)
    unexpected_exits: list[str] = field(default_factory=list)
    broken_faults: list[str] = field(default_factory=list)
    hostile_ids: list[str] = field(default_factory=list)
    """Job ids of hostile messages that carry a job (expired, extra arguments): they must end like any job."""
    redis_gate: threading.Lock = field(default_factory=threading.Lock)
    """Held while Redis is down or full: the campaign's producer waits (the workers are what is under test)."""

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    # --- starting ---

    def start(self) -> None:
        """Start every service and the workers."""
        (self.root / "redis").mkdir(parents=True)
        self.redis = RedisServer(self.root / "redis")
        self.redis.start()
        port = free_port()
        self.moto_url = f"http://127.0.0.1:{port}"
        with (self.root / "moto.log").open("wb") as out:
            self.moto = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                env=isolated_environment(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_until(lambda: _answers(f"{self.moto_url}/moto-api/"), 60, "moto")
        self.rekognition = self._rekognition(free_port()).start()
        self.proxy = start_http_faults(self.rekognition.url, self.root / "proxy.log", seed=self.seed)
        for i in range(self.workers_n):
            self.workers.append(self._worker(i).start())

    def _rekognition(self, port: int) -> LocalRekognitionProcess:
        n = self.faults["rekognition_restart"]
        return LocalRekognitionProcess(
            data_dir=self.root / "rekognition",
            log=self.root / f"rekognition{n}.log",
            env=local_rekognition_environment(self.moto_url),
            extra_args=["--port", str(port)],
        )

    def _worker(self, slot: int) -> WorkerProcess:
        env = worker_environment(self.redis.url, self.proxy.url, self.moto_url, self.queue, **WORKER_SETTINGS)
        n = sum(1 for _ in self.root.glob(f"worker{slot}-*.log"))
        return WorkerProcess(
            env, self.root / f"worker{slot}-{n}.log", name=f"chaos{slot}-{n}", concurrency=self.concurrency
        )

    def stop(self) -> None:
        """Stop everything this stack started."""
        for worker in self.workers:
            worker.stop()
        for process in (self.proxy.process, self.rekognition.process, self.moto):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        self.redis.stop()

    def client(self) -> redis.Redis:
        """A plain Redis client (for the checks and the hostile entries)."""
        return redis.Redis.from_url(self.redis.url, socket_timeout=10)

    # --- the health of the workers ---

    def check_workers(self) -> None:
        """Restart any worker that exited without being told to, and record that it did."""
        for i, worker in enumerate(self.workers):
            if not worker.alive:
                code = worker.process.returncode if worker.process else None
                self.unexpected_exits.append(f"{worker.name} exited with {code}: {worker.output()[-1500:]}")
                self.workers[i] = self._worker(i).start()

    # --- faults ---

    def inject(self, log: Callable[[str], None]) -> str:
        """Inject one fault drawn at random; return its name."""
        self.check_workers()
        name = self.rng.choices(list(FAULTS), weights=list(FAULTS.values()))[0]
        log(f"fault {name}")
        getattr(self, f"_{name}")()
        self.faults[name] += 1
        return name

    def _worker_sigkill(self) -> None:
        slot = self.rng.randrange(len(self.workers))
        self.workers[slot].stop(signal.SIGKILL)
        time.sleep(self.rng.uniform(0.2, 3))  # how long the slot stays empty: part of the fault
        self.workers[slot] = self._worker(slot).start()

    def _worker_sigterm(self) -> None:
        slot = self.rng.randrange(len(self.workers))
        code = self.workers[slot].stop(signal.SIGTERM, timeout_s=90)
        if code not in (0, -signal.SIGTERM):
            self.unexpected_exits.append(f"{self.workers[slot].name} exited with {code} on SIGTERM")
        self.workers[slot] = self._worker(slot).start()

    def _redis_sigkill(self) -> None:
        with self.redis_gate:
            assert self.redis.process is not None
            self.redis.process.kill()
            self.redis.process.wait()
            time.sleep(self.rng.uniform(0.2, 3))  # the outage
            self.redis.start()

    def _redis_full(self) -> None:
        with self.redis_gate:
            client = self.client()
            used = int(client.info("memory")["used_memory"])
            client.config_set("maxmemory", used + 512 * 1024)
            time.sleep(self.rng.uniform(2, 6))  # the spell at maxmemory
            client.config_set("maxmemory", 0)
            client.close()

    def _proxy(self) -> None:
        mode = self.rng.choice(PROXY_MODES)
        share = 1.0 if mode == "down" else round(self.rng.uniform(0.1, 0.6), 2)
        self.proxy.set(mode, share=share, stall_s=6.0)
        time.sleep(self.rng.uniform(1, 5))  # the spell
        self.proxy.set("pass")
        self.faults[f"proxy_{mode}"] += 1

    def _rekognition_restart(self) -> None:
        port = int(self.rekognition.url.rpartition(":")[2])
        self.rekognition.stop(signal.SIGKILL)
        time.sleep(self.rng.uniform(0.5, 3))
        self.rekognition = self._rekognition(port).start()

    def _hostile_entries(self) -> None:
        operation = self.rng.choice([Operation.DETECT_FACES, Operation.LIST_FACES, Operation.INDEX_FACES])
        target = queue_for(self.queue, operation)
        entries = hostile_entries(target, self.rng)
        with self.redis_gate:
            client = self.client()
            client.lpush(target, *entries)
            self.hostile_ids += send_hostile_jobs(self.redis.url, self.queue)
            client.close()


def hostile_entries(target: str, rng: random.Random) -> list[str | bytes]:
    """Queue entries no producer makes: not JSON, too deep, too large, another encoding, not kombu's shape."""
    kombu = {
        "body": "e30=",
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"task": TASK_NAMES[Operation.DETECT_FACES], "id": uuid.uuid4().hex, "lang": "py"},
        "properties": {
            "body_encoding": "base64",
            "delivery_tag": uuid.uuid4().hex,
            "delivery_info": {"exchange": "", "routing_key": target},
            "priority": 0,
        },
    }
    deep = json.dumps({**kombu, "headers": {**kombu["headers"], "x": "@@"}}).replace(
        '"@@"', "[" * 50_000 + "]" * 50_000
    )
    big = json.dumps({**kombu, "body": "A" * (9 * 2**20)})
    choices: list[str | bytes] = [
        "[" * 1000 + "]" * 1000,
        deep,
        big,
        "not json at all",
        json.dumps({"no": "properties"}),
        b"\xff\xfe\x00\xc3\x28 not utf-8",
        json.dumps({**kombu, "body": "%%%"}),
    ]
    return rng.sample(choices, k=rng.randint(1, 3))


def send_hostile_jobs(redis_url: str, queue: str) -> list[str]:
    """Messages that carry a job but break the rules around it (expired, extra arguments); their job ids."""
    sender = Celery("hostile", broker=redis_url, set_as_current=False)
    sender.conf.task_serializer = "json"
    target = queue_for(queue, Operation.LIST_FACES)
    expired = jobs.list_faces("chaos-absent").job.model_dump(mode="json")
    extra = jobs.list_faces("chaos-absent").job.model_dump(mode="json")
    past = datetime.now(UTC) - timedelta(minutes=5)
    sender.send_task(TASK_NAMES[Operation.LIST_FACES], args=[expired], queue=target, expires=past)
    sender.send_task(TASK_NAMES[Operation.LIST_FACES], args=[extra, "extra"], queue=target)
    sender.close()
    return [str(expired["job_id"]), str(extra["job_id"])]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def run_scheduler(stack: Stack, stop: threading.Event, gap_s: tuple[float, float], log: Callable[[str], None]) -> None:
    """Inject faults at random moments until ``stop`` is set."""
    while not stop.wait(stack.rng.uniform(*gap_s)):
        started = time.monotonic()
        try:
            name = stack.inject(log)
        except BaseException:  # a fault that could not be injected (or undone) is a finding, not the end of the run
            stack.broken_faults.append(traceback.format_exc()[-2000:])
            log(f"a fault failed: {stack.broken_faults[-1]}")
            continue
        log(f"fault {name} over ({time.monotonic() - started:.1f} s)")
