#!/usr/bin/env bash
# Make sure the servers the tests talk to are up: start them when installed but down, install
# them from Debian's packages when missing. Idempotent; safe on a warm machine.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}
wait_for() { # name, command
  for _ in $(seq 1 60); do eval "$2" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "services: $1 did not come up" >&2; return 1
}

if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  command -v redis-server >/dev/null || apt_install redis-server redis-tools
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/voicefarm-redis.log
  wait_for redis "redis-cli -h 127.0.0.1 ping"
fi
echo "services: redis ok"

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql postgresql-client
    fresh=1
  fi
  ver=$(ls /etc/postgresql | sort -V | tail -n1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || as_root pg_ctlcluster "$ver" main start
  wait_for postgresql "pg_isready -h 127.0.0.1 -p 5432 -q"
  if [ "${fresh:-0}" = 1 ]; then
    # A fresh Debian cluster wants a password over TCP; give the tests' user one.
    as_root su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\""
  fi
fi
echo "services: postgresql ok"

# The console's browser tests (tests/farm/test_console.py) drive Debian's Chromium with Playwright:
# Playwright's own browser download would need the internet.
command -v chromium >/dev/null || apt_install chromium
echo "services: chromium ok"
