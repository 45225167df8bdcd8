# One image for every process; the command picks it:
#   docker run --env-file .env IMAGE serve     (web, port $PORT)
#   docker run --env-file .env IMAGE worker    (RQ worker; run as many as you like)
#   docker run --env-file .env IMAGE socket    (Socket Mode instead of serve)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PORT=3000

WORKDIR /app
# Production code only: the emulators (sandbox/), tests/ and bench/ stay out (see .dockerignore).
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
RUN pip install --upgrade pip && pip install . \
 && useradd --create-home --uid 10001 connect

USER connect
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import os,urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\",\"3000\")}/healthz', timeout=4)"
ENTRYPOINT ["connect-dynamics"]
CMD ["serve"]
