#!/usr/bin/env bash
# What the test suite needs from the system: Debian packages (installed when missing, as root)
# and a Redis server on 127.0.0.1:6379 (started when none answers). A no-op when all is there.
set -euo pipefail

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)  # `redis-cli --cluster create` (tests)
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
[ -e /usr/lib/nginx/modules/ngx_http_echo_module.so ] || need+=(libnginx-mod-http-echo)  # bench
command -v promtool >/dev/null || need+=(prometheus)
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(build-essential)
[ -x /usr/bin/chromium ] || need+=(chromium)  # the review page's browser tests (Playwright drives it)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "services: missing ${need[*]}; install them (Debian: apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "services: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

answers() { timeout 2 redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
if ! answers; then
  log=${TMPDIR:-/tmp}/floorgate-redis.log
  echo "services: starting redis on 127.0.0.1:6379 (log: $log)"
  # In a session of its own, so it outlives make; not --daemonize, whose failure says nothing.
  setsid redis-server --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    </dev/null >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do  # 20 s: a loaded machine is slow to start it
    answers && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! answers; then
    echo "services: redis did not answer on 127.0.0.1:6379; its log ends:" >&2
    tail -n 20 "$log" >&2 || true
    exit 1
  fi
fi
