# syntax=docker/dockerfile:1
# The clickstream-analytics image: the worker by default; the simulator and the scheduler run
# the same image with another command (see docker-compose.yml).
#
#   docker build -t clickstream-analytics:local .
#   docker run --rm clickstream-analytics:local clickstream --help

# One pinned base for both stages, so the venv's interpreter is the one that runs it.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- build: compilers and pip, only to produce /opt/venv --------------------------------------
FROM ${PYTHON_IMAGE} AS build

# A compiler only in case a dependency has no binary wheel for this platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY agents ./agents
COPY tables ./tables
COPY batch ./batch
# A wheel of our code, then that wheel with its dependencies into the venv (not editable:
# the final image has no /src).
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && pip install /wheels/*.whl \
 && python -c "import app, agents, tables, batch" \
 && faust --version && clickstream --help > /dev/null

# --- runtime: the venv and nothing else ---------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="clickstream-analytics" \
      org.opencontainers.image.description="Real-time and daily clickstream analytics: Kafka, Faust, Parquet, DuckDB." \
      org.opencontainers.image.licenses="MIT"

# A fixed numeric uid/gid, so that volume ownership and Kubernetes' runAsNonRoot work.
RUN groupadd --system --gid 10001 clickstream \
 && useradd --system --uid 10001 --gid clickstream --home-dir /home/clickstream \
      --create-home --shell /usr/sbin/nologin clickstream \
 && mkdir -p /data/worker-state \
 && chown -R clickstream:clickstream /data

COPY --from=build /opt/venv /opt/venv

# DATA_DIR is a volume in docker-compose.yml; a new named volume copies /data's ownership.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATA_DIR=/data \
    WEB_PORT=6066
WORKDIR /data
USER 10001:10001
EXPOSE 6066

# The worker answers GET /health on WEB_PORT (with WEB_TOKEN when one is set); the simulator
# and the scheduler have no web server, so docker-compose.yml gives them checks of their own.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=4 \
  CMD ["python", "-c", "import os, urllib.request as r; t = os.environ.get('WEB_TOKEN'); r.urlopen(r.Request('http://127.0.0.1:%s/health' % os.environ.get('WEB_PORT', '6066'), headers={'Authorization': 'Bearer ' + t} if t else {}), timeout=4)"]

CMD ["clickstream", "worker", "--processes", "auto"]
