# Waypoint API image. Build: docker build -t waypoint .
# Run:   docker run -p 8000:8000 -e WAYPOINT_SECRET_KEY=$(openssl rand -hex 32) -v waypoint:/var/lib/waypoint waypoint
# (This repository's development machine has no Docker engine; the file is kept plain.)

# --- build stage: a virtualenv with Waypoint and its dependencies ---------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /srv/waypoint
# The dependencies exactly as locked (versions and file hashes: `make lock` writes the file).
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
# Editable, so `waypoint migrate` finds alembic.ini and migrations/ next to the code; --no-deps:
# nothing is resolved again, everything came from the lock.
RUN /opt/venv/bin/pip install --no-deps -e .

# --- runtime stage: no compilers, no pip cache, an unprivileged user ------------------------
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WAYPOINT_ENV=production \
    WAYPOINT_VAR_DIR=/var/lib/waypoint \
    WAYPOINT_DATABASE_URL=sqlite:////var/lib/waypoint/waypoint.db \
    WORKERS=1
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/waypoint --create-home waypoint
COPY --from=build /opt/venv /opt/venv
COPY --from=build /srv/waypoint /srv/waypoint
WORKDIR /srv/waypoint
USER waypoint
VOLUME ["/var/lib/waypoint"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
# Migrations first, then uvicorn (exec: it becomes PID 1 and receives SIGTERM).
CMD ["sh", "-c", "waypoint migrate && exec waypoint serve --host 0.0.0.0 --port 8000 --workers \"$WORKERS\""]
