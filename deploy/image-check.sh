#!/usr/bin/env bash
# Checks a built image as a deployer would, its containers on the host's network beside a Redis there:
# it runs as non-root and holds no emulator or test dependency; `serve` answers /livez 200, /readyz 200
# with Redis and 503 without, and its HEALTHCHECK command passes; a worker's probe passes. Needs Docker
# (CI has none and does not run it). Usage, from the repository root:
#   deploy/image-check.sh IMAGE [REDIS_URL]      # REDIS_URL default: redis://127.0.0.1:6379/15
set -euo pipefail

IMAGE="${1:?usage: deploy/image-check.sh IMAGE [REDIS_URL]}"
REDIS_URL="${2:-redis://127.0.0.1:6379/15}"
RUN_ID="image-check-$$"
PORT=$((30000 + $$ % 20000))
containers=()

cleanup() {  # stop the containers (workers remove their heartbeats), then drop this run's keys
  if ((${#containers[@]})); then
    docker stop "${containers[@]}" >/dev/null || true
    docker rm -f "${containers[@]}" >/dev/null || true
  fi
  docker run --rm --network host --entrypoint python "$IMAGE" -c 'import sys, redis
r = redis.Redis.from_url(sys.argv[1])
for key in r.scan_iter(match=sys.argv[2] + ":*"):
    r.delete(key)' "$REDIS_URL" "$RUN_ID" >/dev/null 2>&1 || true
}
trap cleanup EXIT

fail() { echo "image-check: FAILED: $*" >&2; exit 1; }
pass() { echo "image-check: ok: $*"; }

# Placeholder credentials: nothing here calls Slack or Marketo.
settings=(-e SLACK_BOT_TOKEN=xoxb-image-check -e SLACK_SIGNING_SECRET=image-check
  -e ENCRYPTION_KEY="$(head -c 32 /dev/urandom | base64 | tr '+/' '-_')"
  -e MARKETO_BASE_URL=https://000-AAA-000.mktorest.com -e MARKETO_CLIENT_ID=image-check
  -e MARKETO_CLIENT_SECRET=image-check -e REDIS_KEY_PREFIX="$RUN_ID" -e METRICS_PORT=0)

start() {  # start NAME REDIS_URL PORT COMMAND
  containers+=("$RUN_ID-$1")
  docker run -d --name "$RUN_ID-$1" --network host "${settings[@]}" -e REDIS_URL="$2" -e PORT="$3" \
    -e WORKER_NAME="$RUN_ID-$1" "$IMAGE" "$4" >/dev/null
}

status_of() {  # status_of URL: the HTTP status, once the server answers (30 s at most)
  local deadline=$((SECONDS + 30)) code
  while ((SECONDS < deadline)); do
    code="$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$1" || true)"
    if [[ "$code" != "000" ]]; then echo "$code"; return; fi
    sleep 0.5
  done
  echo "no answer"
}

uid="$(docker run --rm --entrypoint id "$IMAGE" -u)"
[[ "$uid" != 0 ]] || fail "the image runs as root"
pass "runs as uid $uid"

found="$(docker run --rm --entrypoint python "$IMAGE" -c 'import importlib.util as u
print(" ".join(m for m in ("sandbox", "fakeredis", "trustme", "aiosmtpd", "websockets", "pytest",
      "hypothesis", "ruff", "mypy") if u.find_spec(m)))')"
[[ -z "$found" ]] || fail "the image holds $found"
pass "no emulator or test dependency inside"

start web "$REDIS_URL" "$PORT" serve
start web-without-redis redis://127.0.0.1:1/0 "$((PORT + 1))" serve
start worker "$REDIS_URL" "$((PORT + 2))" worker

for check in "$PORT/livez 200" "$PORT/readyz 200" "$((PORT + 1))/livez 200" "$((PORT + 1))/readyz 503"; do
  read -r path want <<<"$check"
  got="$(status_of "http://127.0.0.1:$path")"
  [[ "$got" == "$want" ]] || fail "GET :$path answered $got, not $want"
  pass "GET :$path answered $got"
done

docker exec "$RUN_ID-web" connect-dynamics probe auto >/dev/null || fail "serve's HEALTHCHECK command failed"
pass "serve's HEALTHCHECK command (probe auto) passes"

deadline=$((SECONDS + 30))
until docker exec "$RUN_ID-worker" connect-dynamics probe worker >/dev/null; do
  ((SECONDS < deadline)) || fail "the worker's heartbeat did not appear within 30 s"
  sleep 0.5
done
pass "the worker's probe passes"
