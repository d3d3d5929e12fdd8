"""`make compose-test`: build every image and run the real docker-compose.yml with podman + podman-compose.

Phases (each timed): stand-in base images (debootstrap, cached), image builds, the stack brought up in depends_on
order with every health check run by hand (no systemd here, so podman runs none on a timer, and podman < 4.6 makes
podman-compose skip `service_healthy` conditions: this script enforces them), then the checks a user relies on:
the producer container analyses photos from S3, 3 workers share a batch, a worker killed mid-batch loses and
duplicates nothing, Flower answers, and `down` leaves nothing behind. With `--ha` (`make compose-test-ha`), instead
of those checks, and with `--with-ha` after them: the `ha` profile (a replica and three sentinels) joins, the
consumers are recreated on the sentinels with durable writes, and the Redis master is killed mid-batch: every job
must end with exactly one result, and `wait()` return each once.
It always brings the stack down, even after a failure, and prints what it measured. Exit status 0 only when every
check passed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "docker" / "compose-test"
PROJECT = "facequeue-compose-test"
TAG = "compose-test"
PREFIX = "facequeue"
TARGETS = ["producer", "worker", "flower", "local-rekognition"]
WORKERS = 3
CACHE = Path(os.environ.get("FACEQUEUE_COMPOSE_TEST_CACHE", Path.home() / ".cache" / "facequeue-compose-test"))
# Podman settings for every container, build steps included: runc (crun refuses this host's hybrid cgroups) and
# explicit limits (without them runc fails with "error setting rlimit ... operation not permitted").
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=20000:20000", "nproc=8192:8192"]
[engine]
runtime = "runc"
"""
BATCH = 90
KILL_BATCH = 300
HA_BATCH = 600
SENTINEL_SERVICES = ["redis-sentinel-1", "redis-sentinel-2", "redis-sentinel-3"]
SENTINELS = ",".join(f"{name}:26379" for name in SENTINEL_SERVICES)
MASTER_NAME = "facequeue"
# Profiles every podman-compose call enables; `ha` joins once its phase starts (down always names every profile).
profiles: list[str] = []

figures: list[tuple[str, str]] = []
failures: list[str] = []


def log(msg: str) -> None:
    """Print one progress line, flushed (make shows it as it happens)."""
    print(f"[compose-test {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def record(name: str, value: object) -> None:
    """Keep a figure for the summary and show it now."""
    figures.append((name, str(value)))
    log(f"{name}: {value}")


def check(ok: bool, what: str) -> None:
    """Record a failed check (the run goes on so that the summary shows everything)."""
    log(("ok: " if ok else "FAILED: ") + what)
    if not ok:
        failures.append(what)


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time one phase."""
    start = time.monotonic()
    log(f"--- {name}")
    try:
        yield
    finally:
        record(f"phase {name} (s)", f"{time.monotonic() - start:.1f}")


def run(cmd: list[str], *, check_rc: bool = True, capture: bool = False, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run a command, echoing it; raise on failure unless told not to."""
    log("$ " + " ".join(cmd))
    proc = subprocess.run(cmd, text=True, capture_output=capture, **kw)
    if check_rc and proc.returncode != 0:
        detail = (proc.stderr or "")[-2000:] if capture else ""
        raise RuntimeError(f"{cmd[0]} {cmd[1] if len(cmd) > 1 else ''} exited {proc.returncode}\n{detail}")
    return proc


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- compose plumbing ---

PORTS = {
    "FACEQUEUE_COMPOSE_REDIS_PORT": free_port(),
    "FACEQUEUE_COMPOSE_MINIO_PORT": free_port(),
    "FACEQUEUE_COMPOSE_MINIO_CONSOLE_PORT": free_port(),
    "FACEQUEUE_COMPOSE_FLOWER_PORT": free_port(),
}
# Host variables that would change the stack (credentials, endpoints, a .env-style override) stay out of it.
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FACEQUEUE_"))}
ENV |= {k: str(v) for k, v in PORTS.items()}
ENV |= {"FACEQUEUE_COMPOSE_IMAGE_PREFIX": PREFIX, "FACEQUEUE_COMPOSE_IMAGE_TAG": TAG}


def compose(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    """podman-compose on the project's file plus the podman override, as one project."""
    exe = str(Path(sys.executable).parent / "podman-compose")
    files = ["-f", str(ROOT / "docker-compose.yml"), "-f", str(HERE / "podman.yml")]
    enabled = [word for name in profiles for word in ("--profile", name)]
    return run([exe, "-p", PROJECT, *files, *enabled, *args], env=ENV, cwd=ROOT, **kw)


def podman(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    """podman, output captured."""
    return run(["podman", *args], capture=True, **kw)


def containers(service: str | None = None, all_states: bool = True) -> list[str]:
    """Names of this project's containers (of one service)."""
    filters = ["--filter", f"label=io.podman.compose.project={PROJECT}"]
    if service:
        filters += ["--filter", f"label=com.docker.compose.service={service}"]
    out = podman("ps", *(["-a"] if all_states else []), *filters, "--format", "{{.Names}}").stdout
    return sorted(out.split())


def healthy(name: str, timeout_s: float) -> float:
    """Run the container's health check until it passes; return the seconds it took (raise after timeout_s)."""
    start = time.monotonic()
    while True:
        proc = subprocess.run(["podman", "healthcheck", "run", name], capture_output=True, text=True)
        if proc.returncode == 0:
            return time.monotonic() - start
        state = subprocess.run(
            ["podman", "inspect", name, "--format", "{{.State.Status}}"], capture_output=True, text=True
        )
        if state.stdout.strip() == "exited":
            timeout_s = 0  # it crashed: no point waiting
        if time.monotonic() - start > timeout_s:
            logs = subprocess.run(["podman", "logs", "--tail", "30", name], capture_output=True, text=True)
            raise RuntimeError(
                f"{name} not healthy after {timeout_s:.0f} s: {proc.stdout}{proc.stderr}\n{logs.stdout}{logs.stderr}"
            )
        time.sleep(1)


def start(service: str, *extra: str, timeout_s: float = 120) -> None:
    """Start one service (its dependencies are already up), then wait for its health check on each replica."""
    compose("up", "-d", "--no-deps", *extra, service, capture=True)
    for name in containers(service):
        record(f"healthy after (s): {name}", f"{healthy(name, timeout_s):.1f}")


def dependencies_hold(service: str, deps: dict[str, dict[str, str]]) -> None:
    """Check that every depends_on condition of a service holds now, right before it starts."""
    for dep, spec in deps.items():
        for name in containers(dep):
            if spec.get("condition") == "service_completed_successfully":
                state = podman("inspect", name, "--format", "{{.State.Status}} {{.State.ExitCode}}").stdout.split()
                check(state == ["exited", "0"], f"{service} starts after {name} exited 0 ({' '.join(state)})")
            elif spec.get("condition") == "service_healthy":
                ok = subprocess.run(["podman", "healthcheck", "run", name], capture_output=True).returncode == 0
                check(ok, f"{service} starts after {name} is healthy")


# --- phases ---


def base_images() -> None:
    """Make the FROM images the compose file and Dockerfile name, from Debian packages (no Docker Hub here)."""
    import yaml  # type: ignore[import-untyped]

    python_image = re.search(r"ARG PYTHON_IMAGE=(\S+)", (ROOT / "Dockerfile").read_text())
    assert python_image
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    redis_image = spec["services"]["redis"]["image"]
    tarball = CACHE / "bookworm-minbase-python3-redis.tar"
    if not tarball.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            rootfs = Path(tmp) / "rootfs"
            start_t = time.monotonic()
            run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    "--include=python3,python3-venv,redis-server",
                    "bookworm",
                    str(rootfs),
                    "http://deb.debian.org/debian",
                ],
                stdout=subprocess.DEVNULL,
            )
            record("debootstrap (s)", f"{time.monotonic() - start_t:.1f}")
            (rootfs / "usr/local/bin/python").symlink_to("/usr/bin/python3")
            # Package downloads go through a TLS-inspecting proxy: the host's bundle holds its CA.
            shutil.copy("/etc/ssl/certs/ca-certificates.crt", rootfs / "etc/ssl/certs/ca-certificates.crt")
            for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
                deb.unlink()
            run(["tar", "-C", str(rootfs), "-cf", str(tarball) + ".part", "."])
            os.replace(str(tarball) + ".part", tarball)
    else:
        record("debootstrap (s)", "0 (cached)")
    podman(
        "import",
        "--change",
        "ENV LANG=C.UTF-8",
        "--change",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--change",
        'CMD ["python3"]',
        str(tarball),
        python_image.group(1),
    )
    podman(
        "build",
        "--build-arg",
        f"BASE_IMAGE={python_image.group(1)}",
        "-t",
        redis_image,
        "-f",
        str(HERE / "redis.Containerfile"),
        str(HERE),
    )


def build_images() -> None:
    """Build every Dockerfile target, and the S3 stand-in, with the pip cache kept between builds."""
    for target in TARGETS:
        t = time.monotonic()
        podman("build", "--network", "host", "--target", target, "-t", f"{PREFIX}/{target}:{TAG}", str(ROOT))
        record(f"build {target} (s)", f"{time.monotonic() - t:.1f}")
    moto = next(r for r in _dev_requirements() if r.startswith("moto"))
    t = time.monotonic()
    podman(
        "build",
        "--network",
        "host",
        "--build-arg",
        f"MOTO_REQUIREMENT={moto}",
        "-t",
        f"{PREFIX}/moto-s3:{TAG}",
        "-f",
        str(HERE / "moto.Containerfile"),
        str(HERE),
    )
    record("build moto-s3 (s)", f"{time.monotonic() - t:.1f}")
    for target in TARGETS:
        size = podman("image", "inspect", f"{PREFIX}/{target}:{TAG}", "--format", "{{.Size}}").stdout.strip()
        record(f"image size {target} (MB)", f"{int(size) / 1e6:.0f}")


def _dev_requirements() -> list[str]:
    import tomllib

    return list(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"])


def up() -> None:
    """Bring the stack up in depends_on order, checking each condition before the service that waits for it."""
    import yaml

    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for service in ["redis", "minio"]:
        start(service)
    dependencies_hold("minio-init", spec["minio-init"]["depends_on"])
    compose("up", "-d", "--no-deps", "minio-init", capture=True)
    (init,) = containers("minio-init")
    rc = podman("wait", init).stdout.strip()
    check(rc == "0", f"minio-init exits 0 (got {rc})")
    start("local-rekognition")
    dependencies_hold("worker", spec["worker"]["depends_on"])
    start("worker", "--scale", f"worker={WORKERS}")
    dependencies_hold("flower", spec["flower"]["depends_on"])
    start("flower")
    check(len(containers("worker", all_states=False)) == WORKERS, f"{WORKERS} worker containers running")


def producer_from_s3() -> None:
    """Upload photos to the S3 service, then run the producer container on their s3:// URLs."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{PORTS['FACEQUEUE_COMPOSE_MINIO_PORT']}",
        aws_access_key_id="facequeue",
        aws_secret_access_key="facequeue-local-secret",
        region_name="us-east-1",
    )
    photos = sorted((ROOT / "docker" / "demo-photos").glob("*.jpg"))
    urls = []
    for photo in photos:
        s3.upload_file(str(photo), "facequeue", f"photos/{photo.name}")
        urls.append(f"s3://facequeue/photos/{photo.name}")
    # --profile demo: podman-compose, unlike Docker Compose, will not `run` a service of an inactive profile.
    proc = compose(
        "--profile",
        "demo",
        "run",
        "--rm",
        "--no-deps",
        "-T",
        "producer",
        "facequeue",
        "analyze",
        *urls,
        "--wait",
        "--attributes",
        "ALL",
        "--format",
        "jsonl",
        "--timeout",
        "120",
        capture=True,
        check_rc=False,
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    record("producer: photos from S3 / result rows", f"{len(urls)} / {len(rows)}")
    record("producer: Rekognition ms per row", [r.get("rekognition_ms") for r in rows])
    log("producer stderr:\n" + (proc.stderr or "")[-1500:])
    failed = [r.get("error") for r in rows if r.get("status") != "succeeded"]
    faces = sum(len((r.get("response") or {}).get("FaceDetails", [])) for r in rows)
    record("producer: faces found", faces)
    detail = "" if proc.returncode == 0 else proc.stdout[-800:] + proc.stderr[-800:]
    check(proc.returncode == 0, f"producer container exits 0 (got {proc.returncode}) {detail}")
    check(len(rows) == len(urls) and not failed and faces >= len(urls), f"every S3 photo found a face {failed}")


def _distinct_photos(n: int) -> list[bytes]:
    """n different JPEGs of the demo portrait (distinct bytes, so no result cache short-cuts a job)."""
    from PIL import Image

    base = Image.open(ROOT / "docker" / "demo-photos" / "grace_hopper.jpg").convert("RGB")
    out = []
    for i in range(n):
        img = base.copy()
        img.putpixel((i % img.width, 0), (i % 256, 0, 0))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def _queue() -> Any:
    from producer.client import FaceQueue
    from producer.settings import ProducerSettings

    url = f"redis://127.0.0.1:{PORTS['FACEQUEUE_COMPOSE_REDIS_PORT']}/0"
    return FaceQueue(ProducerSettings(redis_url=url))


def _submit(fq: Any, photos: list[bytes], label: str) -> Any:
    from producer import jobs

    return fq.submit_many(jobs.detect_faces(p, label=f"{label}-{i}") for i, p in enumerate(photos))


def scaling() -> None:
    """A batch spread over all workers: results carry the worker's node name."""
    with _queue() as fq:
        batch = _submit(fq, _distinct_photos(BATCH), "scale")
        t = time.monotonic()
        results = fq.wait(batch.batch_id, timeout_s=600)
        record(f"batch of {BATCH} over {WORKERS} workers (s)", f"{time.monotonic() - t:.1f}")
    per_worker = Counter(r.worker for r in results)
    record("jobs per worker", dict(per_worker))
    check(len(per_worker) == WORKERS and None not in per_worker, f"all {WORKERS} workers took jobs")
    outcomes = Counter(r.error.code if r.error else r.status.value for r in results)
    record("outcomes", dict(outcomes))
    check(set(outcomes) == {"succeeded"}, "every job succeeded")


def kill_mid_batch() -> None:
    """SIGKILL one worker container a tenth of the way into a batch; nothing may be lost or published twice."""
    from producer.contract import batch_stream_key

    victim = containers("worker", all_states=False)[-1]
    with _queue() as fq:
        batch = _submit(fq, _distinct_photos(KILL_BATCH), "kill")
        while fq.progress(batch.batch_id).done < KILL_BATCH // 10:
            time.sleep(0.2)
        podman("kill", "--signal", "KILL", victim)
        record("killed worker at results", f"{fq.progress(batch.batch_id).done}/{KILL_BATCH}")
        t = time.monotonic()
        try:
            results = fq.wait(batch.batch_id, timeout_s=300)
        except TimeoutError as exc:
            results = []
            log(str(exc))
        record("batch finished after kill (s)", f"{time.monotonic() - t:.1f}")
        entries = fq.redis.xrange(batch_stream_key(batch.batch_id))
        published = Counter(fields[b"job_id"].decode() for _, fields in entries)
        have = {job_id for job_id in batch.job_ids if fq.get_result(job_id) is not None}
    lost = len(set(batch.job_ids) - have)
    duplicated = sum(n - 1 for n in published.values() if n > 1)
    record("after kill: submitted / results / lost / duplicated", f"{KILL_BATCH} / {len(have)} / {lost} / {duplicated}")
    record("after kill: jobs per worker", dict(Counter(r.worker for r in results)))
    check(lost == 0, "no job lost after a worker was killed")
    check(duplicated == 0, "no result published twice after a worker was killed")
    state = podman("inspect", victim, "--format", "{{.State.Status}} restarts={{.RestartCount}}").stdout.strip()
    record("killed worker container afterwards", state)


# --- the `ha` profile: Redis under Sentinel, the master killed mid-batch ---

# Runs in the producer container, which finds the master through the sentinels (FACEQUEUE_REDIS_SENTINELS): the
# host cannot, since the sentinels name servers by their service names. One JSON line per event on stdout.
HA_PRODUCER = r"""
import io, json, sys, time
from collections import Counter
from PIL import Image
from producer import FaceQueue, ProducerSettings, jobs
from producer.contract import batch_stream_key

n, threshold = int(sys.argv[1]), int(sys.argv[2])
def say(**fields): print(json.dumps(fields), flush=True)
base = Image.open("/photos/grace_hopper.jpg").convert("RGB")
photos = []
for i in range(n):
    img = base.copy()
    img.putpixel((i % img.width, 0), (i % 256, 0, 0))  # distinct bytes: no result cache short-cuts a job
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    photos.append(buf.getvalue())
settings = ProducerSettings()
with FaceQueue(settings) as fq:
    batch = fq.submit_many(jobs.detect_faces(p, label=f"ha-{i}") for i, p in enumerate(photos))
    say(event="submitted", jobs=len(batch), sentinels=settings.redis_sentinels, wait=settings.redis_wait_replicas)
    while (done := fq.progress(batch.batch_id).done) < threshold:
        time.sleep(0.1)
    say(event="progress", done=done)
    started = time.monotonic()
    try:
        results = fq.wait(batch.batch_id, timeout_s=300)
    except TimeoutError as exc:
        results = []
        say(event="timeout", detail=str(exc))
    wait_s = time.monotonic() - started
    # ROLE on the connection wait() used, and the server it reached: facequeue's Sentinel connections refuse a
    # replica and an old master back before the sentinels demoted it (producer/masters.py).
    connection = fq.redis.connection_pool.get_connection()
    try:
        connection.send_command("ROLE")
        role = connection.read_response()[0].decode()
        reached = f"{connection.host}:{connection.port}"
    finally:
        fq.redis.connection_pool.release(connection)
    # The account, until every job has a result or a visibility timeout (180 s) and a margin have passed: a message
    # taken on the old master and not acknowledged comes back only after it.
    have, deadline = set(), time.monotonic() + 240
    while len(have) < n and time.monotonic() < deadline:
        have |= {job_id for job_id in batch.job_ids if job_id not in have and fq.get_result(job_id) is not None}
        if len(have) < n:
            time.sleep(1)
    published = Counter(f[b"job_id"].decode() for _, f in fq.redis.xrange(batch_stream_key(batch.batch_id)))
    say(
        event="done",
        wait_s=round(wait_s, 1),
        wait_results=len(results),
        wait_jobs=len({r.job_id for r in results}),
        complete_after_s=round(time.monotonic() - started, 1),
        connection_role=role,
        connection_to=reached,
        submitted=len(batch),
        results=len(have),
        lost=len(set(batch.job_ids) - have),
        duplicated=sum(k - 1 for k in published.values() if k > 1),
        outcomes=dict(Counter(r.error.code if r.error else r.status.value for r in results)),
        per_worker=dict(Counter(r.worker for r in results)),
        master=fq.redis.connection_pool.get_master_address()[0],
    )
"""


def _sentinel_says(query: str, service: str = SENTINEL_SERVICES[0]) -> str:
    """A sentinel's answer to one SENTINEL subcommand about our master, asked inside its container."""
    (name,) = containers(service, all_states=False)
    proc = subprocess.run(
        ["podman", "exec", name, "redis-cli", "-p", "26379", "sentinel", query, MASTER_NAME],
        capture_output=True,
        text=True,
    )
    return proc.stdout.strip()


def _replication(name: str) -> dict[str, str]:
    """INFO replication of a Redis container, asked inside it ({} when it does not answer)."""
    proc = subprocess.run(["podman", "exec", name, "redis-cli", "info", "replication"], capture_output=True, text=True)
    return dict(line.split(":", 1) for line in proc.stdout.splitlines() if ":" in line)


def _wait_for(predicate: Any, timeout_s: float, what: str) -> float:
    """Poll predicate() until it is true; return the seconds it took (raise after timeout_s)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout_s:
            raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - start


def ha_up() -> None:
    """Start the `ha` profile's replica and sentinels beside the running `redis`, then recreate the consumers on
    the sentinels, as a user does: FACEQUEUE_COMPOSE_REDIS_SENTINELS set, with durable writes (WAIT 1)."""
    import yaml

    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    profiles.append("ha")
    dependencies_hold("redis-replica", spec["redis-replica"]["depends_on"])
    start("redis-replica")
    for service in SENTINEL_SERVICES:
        dependencies_hold(service, spec[service]["depends_on"])
    # All three at once: each one's health check (ckquorum) passes only once it has found the two others.
    compose("up", "-d", "--no-deps", *SENTINEL_SERVICES, capture=True)
    for service in SENTINEL_SERVICES:
        for name in containers(service):
            record(f"healthy after (s): {name}", f"{healthy(name, 90):.1f}")
    record("sentinel: master", _sentinel_says("get-master-addr-by-name").replace("\n", ":"))
    ENV["FACEQUEUE_COMPOSE_REDIS_SENTINELS"] = SENTINELS
    ENV["FACEQUEUE_COMPOSE_TEST_WAIT_REPLICAS"] = "1"
    # The real timeouts: a job in flight across the failover waits for the new master and its replica to be back.
    ENV["FACEQUEUE_COMPOSE_TEST_JOB_TIMEOUT_S"] = "120"
    ENV["FACEQUEUE_COMPOSE_TEST_VISIBILITY_TIMEOUT_S"] = "180"
    start("worker", "--force-recreate", "--scale", f"worker={WORKERS}")
    start("flower", "--force-recreate")
    for name in containers("worker", all_states=False):
        env = podman("inspect", name, "--format", "{{range .Config.Env}}{{println .}}{{end}}").stdout.splitlines()
        wanted = {f"FACEQUEUE_REDIS_SENTINELS={SENTINELS}", "FACEQUEUE_REDIS_WAIT_REPLICAS=1"}
        check(wanted <= set(env), f"{name} finds Redis through the sentinels, with durable writes")
    check(len(containers("worker", all_states=False)) == WORKERS, f"{WORKERS} worker containers on the sentinels")


def _fail_over_during(lines: Any, events: dict[str, dict[str, Any]], master: str) -> float:
    """Read the producer's events; at its progress event kill the master, wait for the failover and the old master's
    return as a replica. Returns the monotonic time of the kill (0 when the producer never reported progress)."""
    killed_at = 0.0
    for line in lines:
        if not line.startswith("{"):
            log(f"producer: {line.rstrip()}")
            continue
        event = json.loads(line)
        events[event["event"]] = event
        log(f"producer: {event}")
        if event["event"] != "progress":
            continue
        podman("kill", "--signal", "KILL", master)
        killed_at = time.monotonic()
        record("killed the master at results", f"{event['done']}/{HA_BATCH}")
        promoted = _wait_for(
            lambda: all(
                _sentinel_says("get-master-addr-by-name", service).startswith("redis-replica")
                for service in SENTINEL_SERVICES
            ),
            120,
            "every sentinel to name the new master",
        )
        record("every sentinel names redis-replica after (s)", f"{promoted:.1f}")
        # Podman (no systemd) does not apply `restart: unless-stopped` to a killed container: do it by hand, once
        # every sentinel has moved on, so that no sentinel names the old master while it is back as one. (A client
        # may still land there: docs/compose.md, "Found by the failover check".)
        podman("start", master)
        rejoined = _wait_for(
            lambda: _replication(master).get("master_link_status") == "up", 120, "the old master to replicate"
        )
        record("old master replicating the new one after (s)", f"{time.monotonic() - killed_at:.1f}")
        log(f"old master role: {_replication(master).get('role')} (rejoin took {rejoined:.1f} s after start)")
        (sentinel,) = containers(SENTINEL_SERVICES[0], all_states=False)
        logs = podman("logs", sentinel)
        moves = re.findall(r".*(?:sdown|odown|elected|switch-master|convert-to-slave).*", logs.stdout + logs.stderr)
        log("sentinel-1 on the failover and the old master's return:\n" + "\n".join(moves))
    return killed_at


def kill_master_mid_batch() -> None:
    """SIGKILL the Redis master mid-batch (once the batch is submitted and a tenth of it has results); the sentinels
    promote the replica, the old master comes back as its replica (as the restart policy would bring it back), and
    every job has exactly one result."""
    (master,) = containers("redis")
    threshold = HA_BATCH // 10
    # WAIT's 1 s default timed out before the kill on this shared machine (load 15 on 2 cores, the replica over a
    # second behind: NotReplicatedError, the submit refused as documented); 5 s keeps the check about the failover.
    wait = ["-e", "FACEQUEUE_REDIS_WAIT_REPLICAS=1", "-e", "FACEQUEUE_REDIS_WAIT_TIMEOUT_MS=5000"]
    cmd = ["--profile", "demo", "run", "--rm", "--no-deps", "-T", *wait]
    exe = str(Path(sys.executable).parent / "podman-compose")
    files = ["-f", str(ROOT / "docker-compose.yml"), "-f", str(HERE / "podman.yml")]
    argv = [exe, "-p", PROJECT, *files, "--profile", "ha", *cmd, "producer", "python", "-u", "-c", HA_PRODUCER]
    log(f"$ podman-compose ... run producer python -c <HA_PRODUCER> {HA_BATCH} {threshold}")
    producer = subprocess.Popen(
        [*argv, str(HA_BATCH), str(threshold)], env=ENV, cwd=ROOT, text=True, stdout=subprocess.PIPE
    )
    assert producer.stdout is not None
    events: dict[str, dict[str, Any]] = {}
    killed_at = 0.0
    try:
        killed_at = _fail_over_during(producer.stdout, events, master)
        rc = producer.wait(timeout=300)
    finally:
        if producer.poll() is None:  # a failure above: the stack comes down next, not with this run still going
            producer.kill()
    done = events.get("done", {})
    if killed_at:
        record("batch finished after the kill (s)", f"{time.monotonic() - killed_at:.1f}")
    record(
        "after failover: submitted / results / lost / duplicated",
        f"{done.get('submitted')} / {done.get('results')} / {done.get('lost')} / {done.get('duplicated')}",
    )
    record("after failover: outcomes", done.get("outcomes"))
    record("after failover: jobs per worker", done.get("per_worker"))
    record("after failover: master the producer ends on", done.get("master"))
    record(
        "after failover: wait() returned / its connection's role / server",
        f"{done.get('wait_results')} / {done.get('connection_role')} / {done.get('connection_to')}",
    )
    record("after failover: every result on the master after (s)", done.get("complete_after_s"))
    submitted = events.get("submitted", {})
    check(rc == 0, f"the producer container exits 0 (got {rc})")
    on_sentinel = bool(submitted.get("sentinels")) and submitted.get("wait") == 1
    check(on_sentinel, f"the producer finds the master through the sentinels, with WAIT 1 ({submitted})")
    at_kill = events.get("progress", {}).get("done", HA_BATCH)
    check(bool(killed_at) and at_kill < HA_BATCH, f"the master was killed mid-batch ({at_kill}/{HA_BATCH} done)")
    check(done.get("results") == HA_BATCH and done.get("lost") == 0, "no job lost across the failover")
    check(done.get("duplicated") == 0, "no result published twice across the failover")
    check(done.get("master") == "redis-replica", "the batch ended on the promoted replica")
    check(set(done.get("outcomes") or {}) == {"succeeded"}, "every job succeeded")
    wait_once = done.get("wait_results") == done.get("wait_jobs") == HA_BATCH
    check(wait_once, "wait() returned every job's result, each once, across the failover")
    check(done.get("connection_role") == "master", "wait() read from the master, not a replica")


def flower() -> None:
    """Flower answers on its published port and lists the workers."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    port = PORTS["FACEQUEUE_COMPOSE_FLOWER_PORT"]
    with opener.open(f"http://127.0.0.1:{port}/healthcheck", timeout=10) as r:
        check(r.status == 200, "Flower /healthcheck answers 200")
    # Flower's /api needs credentials by default; its Prometheus page does not, and names every worker it has seen.
    with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        metrics = r.read().decode()
    online = set(re.findall(r'flower_worker_online\{worker="([^"]+)"\} 1(?:\.0)?$', metrics, re.M))
    record("Flower: workers online", len(online))
    check(len(online) >= WORKERS - 1, f"Flower sees the live workers ({sorted(online)})")


def stop_each() -> None:
    """Stop every running container as `docker stop` does (SIGTERM, then SIGKILL after 70 s); each must exit on
    SIGTERM, well before the KILL, or every `docker compose down` and rolling update waits out the grace period."""
    # In the order `down` stops them: those that use a service before the service itself.
    order = ["producer", "flower", "worker", "local-rekognition", "minio", *SENTINEL_SERVICES, "redis-replica", "redis"]

    def rank(name: str) -> int:
        return next((i for i, service in enumerate(order) if f"_{service}_" in name), len(order))

    for name in sorted(containers(all_states=False), key=rank):
        started = time.monotonic()
        podman("stop", "-t", "70", name, check_rc=False)
        took = time.monotonic() - started
        code = podman("inspect", name, "--format", "{{.State.ExitCode}}").stdout.strip()
        record(f"stopped after (s): {name}", f"{took:.1f} (exit {code})")
        check(code != "137" and took < 60, f"{name} exits on SIGTERM (exit {code} after {took:.1f} s)")


def down() -> None:
    """`down -v`, then nothing of the project may be left: containers, volumes, network."""
    # --remove-orphans: podman-compose's down forgets replicas that `up --scale` added (Docker Compose's does not).
    every = ["--profile", "ha", "--profile", "demo"]
    compose(*every, "down", "-v", "--remove-orphans", "-t", "70", capture=True, check_rc=False)
    left = containers()
    vols = podman("volume", "ls", "--filter", f"label=io.podman.compose.project={PROJECT}", "-q").stdout.split()
    nets = [n for n in podman("network", "ls", "--format", "{{.Name}}").stdout.split() if n.startswith(PROJECT)]
    for name in left:
        podman("rm", "-f", name, check_rc=False)
    for vol in vols:
        podman("volume", "rm", "-f", vol, check_rc=False)
    for net in nets:
        podman("network", "rm", "-f", net, check_rc=False)
    check(
        not left and not vols and not nets, f"down leaves nothing (containers {left}, volumes {vols}, networks {nets})"
    )


def main() -> int:
    """Run every phase; always bring the stack down; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ha", action="store_true", help="only the `ha` profile's failover check, not the others")
    parser.add_argument("--with-ha", action="store_true", help="every check, then the `ha` profile's failover")
    args = parser.parse_args()
    total = time.monotonic()
    # A CI timeout's SIGTERM unwinds through the `finally` below, like Ctrl-C, so the stack still comes down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "containers.conf").write_text(CONTAINERS_CONF)
    os.environ["CONTAINERS_CONF"] = ENV["CONTAINERS_CONF"] = str(CACHE / "containers.conf")
    try:
        with phase("base images"):
            base_images()
        with phase("build"):
            build_images()
        down()  # a previous run killed halfway must not leave its containers behind
        failures.clear()
        with phase("up"):
            up()
        if not args.ha:  # --ha: only the failover below
            with phase("producer from S3"):
                producer_from_s3()
            with phase("scaling"):
                scaling()
            with phase("kill a worker mid-batch"):
                kill_mid_batch()
            with phase("flower"):
                flower()
        if args.ha or args.with_ha:
            # On the same stack, the `ha` profile's failover (issue 21). Not yet in `make compose-test` (and so CI):
            # no run has passed every check with every fix in (docs/compose.md); `--with-ha` there once two do.
            with phase("ha: replica and sentinels up, consumers on the sentinels"):
                ha_up()
            with phase("ha: kill the Redis master mid-batch"):
                kill_master_mid_batch()
        with phase("stop"):
            stop_each()
    except Exception as exc:  # any failure still goes through down() and the summary
        failures.append(f"{type(exc).__name__}: {exc}")
        log(f"FAILED: {exc}\n{traceback.format_exc()}")
        for name in containers():
            logs = subprocess.run(["podman", "logs", "--tail", "20", name], capture_output=True, text=True)
            log(f"logs {name}:\n{logs.stdout}{logs.stderr}")
    finally:
        with phase("down"):
            down()
    record("total (s)", f"{time.monotonic() - total:.1f}")
    print("\ncompose-test figures:")
    for name, value in figures:
        print(f"  {name}: {value}")
    print("\ncompose-test: " + ("PASSED" if not failures else f"FAILED ({len(failures)}): " + "; ".join(failures)))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
