# syntax=docker/dockerfile:1
# ROPOS gateway image: `ropos serve` by default; the same image runs `migrate`, `worker`, `seed`.
#   docker build -t ropos .
#   docker run --rm -e ROPOS_JWT_SECRET=... -e ROPOS_DATABASE_URL=... ropos migrate
#   docker run --rm -p 8000:8000 -e ROPOS_JWT_SECRET=... -e ROPOS_DATABASE_URL=... ropos
# An exact tag: one Python release on one Debian release, raised by hand. (Docker Hub still
# rebuilds a tag for Debian's security fixes; add @sha256:<digest> for byte-identical bases.)
ARG PYTHON_IMAGE=python:3.11.17-slim-trixie

# --- builder: a self-contained venv at /opt/venv with ROPOS and its pinned dependencies ---------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# pip and setuptools by version (no lock is in the image yet), the ones requirements-dev.lock
# pins: `python3 dev.py check` fails when they differ. setuptools builds ROPOS below without build
# isolation, so the build downloads nothing unpinned; it makes the wheel itself (no `wheel`).
RUN python -m venv /opt/venv \
 && /opt/venv/bin/python -m pip install pip==26.3 setuptools==84.2.1

WORKDIR /src
# The dependencies first, in a layer of their own that a change to the source does not invalidate:
# exactly what requirements.lock pins, every file checked against its hash.
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --require-hashes -r requirements.lock

# .dockerignore keeps .venv, .git, tests, bench, caches and *.db out of this copy.
COPY . .
# A regular (not editable) install of ROPOS alone (--no-deps: they are all installed above): the
# packages, including migrations/versions/*.py and migrations/script.py.mako as package data, are
# copied into the venv's site-packages, so the source tree is not needed at run time. The check
# runs isolated (-I: not from /src) and fails the build if the installed package has no migrations
# or no consoles (their templates and static files are package data too).
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation . \
 && /opt/venv/bin/python -I -c "from gateway.migrate import head_revision as h; assert h(), 'no migrations shipped'" \
 && /opt/venv/bin/python -I -c "from gateway.consoles import STATIC_DIR as s; assert (s / 'vendor/MANIFEST.json').is_file() and (s.parent / 'templates/base.html').is_file(), 'no consoles shipped'"

# --- final: the venv only, run as a non-root user ------------------------------------------------
FROM ${PYTHON_IMAGE}

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ROPOS_ENV=prod

RUN groupadd --system --gid 10001 ropos \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin ropos \
 && mkdir /app && chown ropos:ropos /app

COPY --from=builder /opt/venv /opt/venv

# /app is writable by ropos, so the embedded default (SQLite at ./ropos.db) also works.
WORKDIR /app
USER 10001:10001

EXPOSE 8000

# Liveness only (the process answers HTTP); /readyz also checks the database. Slim images have no
# curl, so Python's urllib does the GET: any error or non-2xx status exits non-zero.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# `ropos` runs as PID 1; `serve` and `worker` both stop gracefully on SIGTERM (`docker stop`).
ENTRYPOINT ["ropos"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
