#!/usr/bin/env bash
# Installs aimass on a fresh Debian/Ubuntu machine.
#   ops/install.sh            the Python package in .venv (enough for the embedded demo)
#   ops/install.sh services   also Java 17 + Maven (Kafka), ClickHouse server, Prometheus, and
#                             PostgreSQL + MariaDB (backfill tests), from Debian's packages
#                             (as root; otherwise it says what to run)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = services ]; then
  need=()
  command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null 2>&1 || need+=(maven)
  command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] || need+=(clickhouse-server)
  command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
  # the backfill tests' databases
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  [ -x /usr/sbin/mariadbd ] || command -v mariadbd >/dev/null 2>&1 || need+=(mariadb-server)
  if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "missing: ${need[*]}. Run: sudo apt-get install -y ${need[*]}" >&2
      exit 1
    fi
    echo "installing Debian packages: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), "aimass needs Python 3.11"' || {
  echo "aimass needs Python 3.11 (found $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
}
if [ ! -x .venv/bin/python ]; then
  # system site-packages: packages already installed for this Python are reused, not fetched
  "$PY" -m venv --system-site-packages .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,bench]'
echo "aimass installed in .venv ($(.venv/bin/python --version))"
