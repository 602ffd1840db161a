# The monitor as a container daemon. Data (the SQLite database) lives in /app/data;
# mount a volume there, or set MONITOR_DATABASE_URL to a PostgreSQL database.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY monitor ./monitor
COPY alembic ./alembic
COPY config ./config
COPY seeds ./seeds
RUN pip install . \
    && useradd --system --home-dir /app --shell /usr/sbin/nologin monitor \
    && mkdir -p /app/data && chown monitor /app/data

USER monitor
VOLUME ["/app/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
# Wait for the database, migrate to head, load the seeds, then run the daemon.
CMD ["sh", "-c", "monitor init --wait 60 && exec monitor run"]
