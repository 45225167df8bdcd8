# One image for every process; the command picks it:
#   docker run --env-file .env IMAGE serve     (web, port $PORT: /slack/events, /livez, /readyz, /metrics)
#   docker run --env-file .env IMAGE worker    (RQ worker; run as many as you like)
#   docker run --env-file .env IMAGE socket    (Socket Mode instead of serve)
#
# The base image is pinned by digest: python:3.11-slim-bookworm (Python 3.11.16) as listed by
# docker-library/repo-info. To move to a newer build, pass or change PYTHON_IMAGE
# (`docker buildx imagetools inspect python:3.11-slim-bookworm` prints the current digest). Where no
# registry is reachable, `deploy/local-base.sh` builds a stand-in from Debian's packages (README).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:0bee7276f83efd4a1ee05bbbf4281d95ed28e079220a9457f25a93e3f1e3c31b
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PORT=3000

WORKDIR /app
# Dependencies first, in a layer of their own: a change to the code does not reinstall them. Every
# file is checked against the hashes in requirements.lock (`make lock` writes it).
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

# Production code only: the emulators (sandbox/), tests/ and bench/ stay out (see .dockerignore).
# --no-build-isolation builds with the base image's setuptools, so nothing unhashed is downloaded;
# --check-build-dependencies stops the build if that setuptools is older than pyproject.toml asks.
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
RUN pip install --no-deps --no-build-isolation --check-build-dependencies . \
 && rm -rf build ./*.egg-info \
 && useradd --create-home --uid 10001 connect

USER 10001
EXPOSE 3000
# One check that fits each process: `probe auto` reads the container's command and asks `serve` its
# /livez, a worker its heartbeat in Redis; `socket` serves no HTTP and passes while it runs.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 CMD ["connect-dynamics", "probe", "auto"]
ENTRYPOINT ["connect-dynamics"]
CMD ["serve"]
