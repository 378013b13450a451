#!/usr/bin/env bash
# Installs MariaDB (Debian's mariadb-server) when missing and starts a private instance for the
# tests, bound to 127.0.0.1 only, with its own data directory. Prints the URL the tests use.
# Reuses an instance that is already running there.
set -euo pipefail
port="${BOOKSTORE_MARIADB_PORT:-3307}"
dir="${BOOKSTORE_MARIADB_DIR:-${TMPDIR:-/tmp}/bookstore-mariadb}"
url="mysql://bookstore:bookstore@127.0.0.1:$port"

if ! command -v mariadbd >/dev/null 2>&1; then
  echo "installing mariadb-server (one time)" >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mariadb-server >&2
fi

ping() { mariadb-admin --protocol=tcp -h 127.0.0.1 -P "$port" -u bookstore -pbookstore ping >/dev/null 2>&1; }
if ping; then
  echo "$url"
  exit 0
fi

mkdir -p "$dir"
if [ ! -d "$dir/data/mysql" ]; then
  mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$dir/data" --auth-root-authentication-method=socket >"$dir/install.log" 2>&1
fi
nohup mariadbd --no-defaults --user="$(id -un)" --datadir="$dir/data" --socket="$dir/mysqld.sock" \
  --bind-address=127.0.0.1 --port="$port" --pid-file="$dir/mysqld.pid" --skip-name-resolve \
  --innodb-buffer-pool-size=64M --max-connections=300 --log-error="$dir/error.log" >/dev/null 2>&1 &
for _ in $(seq 1 100); do
  if mariadb --no-defaults -S "$dir/mysqld.sock" -u root -e "SELECT 1" >/dev/null 2>&1; then break; fi
  sleep 0.2
done
mariadb --no-defaults -S "$dir/mysqld.sock" -u root <<'SQL'
CREATE USER IF NOT EXISTS 'bookstore'@'127.0.0.1' IDENTIFIED BY 'bookstore';
GRANT ALL PRIVILEGES ON *.* TO 'bookstore'@'127.0.0.1';
FLUSH PRIVILEGES;
SQL
ping || { echo "MariaDB did not start; see $dir/error.log" >&2; exit 1; }
echo "$url"
