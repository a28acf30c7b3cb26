# One image for every process of the Procfile: the command picks the process.
#   docker build -t media-publisher .
#   docker run --env-file .env media-publisher python -m listener
#   docker run --env-file .env media-publisher dramatiq actors --processes 2 --threads 3
# Same Python as the tests; libvips comes inside the pyvips-binary wheel.
FROM python:3.11-slim

# psql applies sql/ (the Procfile's release step, the compose `migrate` service).
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin publisher

# OPS_HTTP_HOST: the metrics and health endpoints must be reachable from outside the container.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OPS_HTTP_HOST=0.0.0.0
WORKDIR /app

# Production dependencies only (not the [dev] extra), in their own layer: a
# code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

COPY publisher ./publisher
COPY actors ./actors
COPY listener ./listener
COPY devstack ./devstack
COPY sql ./sql
COPY Procfile ./
RUN pip install --no-deps . && rm -rf build *.egg-info

USER publisher
# listener: 9190 (metrics, healthz, readyz); workers: 9191 (metrics), 9192+i (healthz, readyz of process i).
EXPOSE 9190 9191 9192
CMD ["python", "-m", "listener"]
