# One image for every process: the command picks it (the Procfile's, or the release step).
#   docker build -t media-publisher .
#   docker run --env-file .env media-publisher publisher-admin migrate     # the release step
#   docker run --env-file .env media-publisher python -m listener
#   docker run --env-file .env media-publisher dramatiq actors --processes 2 --threads 3
# The Python the tests run on (a full version tag: bump it with the machine's).

# -- build: the locked dependencies (hash-checked) and the project's wheel, in a venv.
FROM python:3.11.7-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The dependencies get their own layer: a code change does not reinstall them.
COPY requirements.lock ./
RUN python -m venv /opt/media-publisher \
 && /opt/media-publisher/bin/pip install --require-hashes -r requirements.lock
COPY pyproject.toml ./
COPY publisher ./publisher
COPY actors ./actors
COPY listener ./listener
RUN /opt/media-publisher/bin/pip wheel --no-deps --wheel-dir /dist . \
 && /opt/media-publisher/bin/pip install --no-deps /dist/*.whl

# -- runtime: the venv, psql for the release step, an unprivileged user; no source tree.
FROM python:3.11.7-slim-bookworm
# Debian's postgresql-client is not version-pinned (DL3008): bookworm's security
# updates replace the old version in the archive, and a pin would break the build.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/media-publisher --create-home \
            --shell /usr/sbin/nologin publisher
COPY --from=build /opt/media-publisher /opt/media-publisher
# OPS_HTTP_HOST: the metrics and health endpoints and the page must be reachable from outside the container.
ENV PATH=/opt/media-publisher/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OPS_HTTP_HOST=0.0.0.0
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /var/lib/media-publisher
# listener: 9190 (metrics, healthz, readyz); workers: 9191 (metrics), 9192+i (healthz, readyz of process i).
EXPOSE 9190 9191 9192
CMD ["python", "-m", "listener"]
