# The monitor in one container: the daemon and the HTTP API in one process (`monitor run
# --serve`), on port 8080, its SQLite database in the volume /app/data; or several such
# containers on one PostgreSQL database (MONITOR_DATABASE_URL). README.md, "Deploying".
#
#   podman build -t news-monitor .            (or docker build)
#   podman run -d -p 8080:8080 -v monitor-data:/app/data news-monitor
#
# BASE is any Debian-based image with Python 3.11 or newer and its venv module, the
# official python:3.11-slim by default. Both stages use it, so the virtual environment
# built in the first one finds the same interpreter at the same path in the second.
ARG BASE=python:3.11-slim

# ------------------------------------------------------------------- build: the wheels
FROM ${BASE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# The dependencies first, from the lock alone, so that a change to the code rebuilds
# none of them: every download checked against the lock's hashes, built into wheels,
# installed into the runtime's environment. That environment gets no pip: nothing is
# installed at run time.
COPY requirements.lock requirements-build.lock ./
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip install --require-hashes --requirement requirements-build.lock \
    && /opt/build/bin/pip wheel --require-hashes --wheel-dir /wheels --requirement requirements.lock \
    && python3 -m venv --without-pip /opt/monitor \
    && /opt/build/bin/pip --python /opt/monitor/bin/python install --no-index --no-deps /wheels/*.whl

# Then the monitor's own wheel, built with the locked setuptools (build isolation would
# fetch whatever setuptools is newest).
COPY pyproject.toml README.md LICENSE ./
COPY monitor ./monitor
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /src/dist . \
    && /opt/build/bin/pip --python /opt/monitor/bin/python install --no-index --no-deps /src/dist/*.whl

# ---------------------------------------------------------------------- the runtime
FROM ${BASE}

# tini as PID 1 reaps orphans and passes SIGTERM on to its child: the shell, then the
# monitor it becomes, which stops its own extraction processes after their work (a
# signal to the whole group would kill them mid-page). Its version is left to the base's
# Debian release (DL3008): a pin would break with the release's next update, and the
# base image is what fixes the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --uid 999 --home-dir /app --shell /usr/sbin/nologin monitor

COPY --from=build /opt/monitor /opt/monitor

ENV PATH=/opt/monitor/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MONITOR_SERVE__HOST=0.0.0.0 \
    MONITOR_SERVE__PORT=8080

# The migrations, the default configuration and the seed corpus: `monitor` finds them
# from its working directory, and config/monitor.yaml puts the database in /app/data.
WORKDIR /app
COPY alembic.ini ./
COPY alembic ./alembic
COPY config ./config
COPY seeds ./seeds
RUN mkdir /app/data && chown monitor:monitor /app/data

# The monitor user by number: a runtime can tell it is not root without the image's passwd.
USER 999:999
VOLUME ["/app/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
# /healthz answers 200 while the database answers; the port follows MONITOR_SERVE__PORT.
# http.client, not urllib: no proxy variable of the container may come between.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import http.client as h, os, sys; c = h.HTTPConnection('127.0.0.1', int(os.environ.get('MONITOR_SERVE__PORT', '8080')), timeout=4); c.request('GET', '/healthz'); sys.exit(c.getresponse().status != 200)"]
ENTRYPOINT ["tini", "--"]
# Wait for the database (PostgreSQL may still be starting), migrate it to the image's
# schema, load the seeds; then the daemon and the API in this one process, as PID 1's child.
CMD ["sh", "-c", "monitor init --wait 60 && exec monitor run --serve"]
