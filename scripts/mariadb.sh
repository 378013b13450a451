#!/usr/bin/env bash
# Installs MariaDB (Debian's mariadb-server) when missing and starts a private instance for the
# tests, bound to 127.0.0.1 only, with its own data directory. Prints the URL the tests use.
# Reuses an instance that is already running there. It serves TLS with a certificate for 127.0.0.1
# from a private test CA, as RDS does with its own CA: `scripts/mariadb.sh ca` prints the CA's path,
# `scripts/mariadb.sh socket` its Unix socket (the swarm payload test mounts it into containers).
set -euo pipefail
port="${BOOKSTORE_MARIADB_PORT:-3307}"
dir="${BOOKSTORE_MARIADB_DIR:-${TMPDIR:-/tmp}/bookstore-mariadb}"
url="mysql://bookstore:bookstore@127.0.0.1:$port"
tls="$dir/tls"
if [ "${1:-}" = ca ]; then
  echo "$tls/ca.pem"
  exit 0
fi
if [ "${1:-}" = socket ]; then
  echo "$dir/mysqld.sock"
  exit 0
fi

if ! command -v mariadbd >/dev/null 2>&1; then
  echo "installing mariadb-server (one time)" >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mariadb-server >&2
fi

# mariadb-install-db makes anonymous users (''@'localhost', ''@'<hostname>'), which shadow a user
# at '%' connecting through the socket; RDS has none, and neither does this server.
anonymous_users_gone() {
  mariadb --no-defaults -S "$dir/mysqld.sock" -u root \
    -e "DROP USER IF EXISTS ''@'localhost'; DROP USER IF EXISTS ''@'$(hostname)'" >/dev/null 2>&1 || true
}
ping() { mariadb-admin --protocol=tcp -h 127.0.0.1 -P "$port" -u bookstore -pbookstore ping >/dev/null 2>&1; }
serves_tls() {
  mariadb --protocol=tcp -h 127.0.0.1 -P "$port" -u bookstore -pbookstore -N \
    -e "SHOW VARIABLES LIKE 'have_ssl'" 2>/dev/null | grep -q YES
}
if ping; then
  if serves_tls && [ -f "$tls/ca.pem" ]; then
    # Instances from before the rotation test lack the grant option (it creates its own user).
    mariadb --no-defaults -S "$dir/mysqld.sock" -u root \
      -e "GRANT ALL PRIVILEGES ON *.* TO 'bookstore'@'127.0.0.1' WITH GRANT OPTION" >/dev/null 2>&1 || true
    anonymous_users_gone
    echo "$url"
    exit 0
  fi
  # An instance from before TLS: restart it with TLS.
  mariadb-admin --protocol=tcp -h 127.0.0.1 -P "$port" -u bookstore -pbookstore shutdown >/dev/null 2>&1 || true
  for _ in $(seq 1 50); do ping || break; sleep 0.2; done
fi

if ! command -v openssl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq openssl >&2
fi
mkdir -p "$dir" "$tls"
if [ ! -f "$tls/server.pem" ]; then
  (
    cd "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=bookstore test CA" \
      -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile server.ext -out server.pem 2>/dev/null
  )
fi
if [ ! -d "$dir/data/mysql" ]; then
  mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$dir/data" --auth-root-authentication-method=socket >"$dir/install.log" 2>&1
fi
nohup mariadbd --no-defaults --user="$(id -un)" --datadir="$dir/data" --socket="$dir/mysqld.sock" \
  --bind-address=127.0.0.1 --port="$port" --pid-file="$dir/mysqld.pid" --skip-name-resolve \
  --innodb-buffer-pool-size=64M --max-connections=300 --log-error="$dir/error.log" \
  --ssl-ca="$tls/ca.pem" --ssl-cert="$tls/server.pem" --ssl-key="$tls/server.key" >/dev/null 2>&1 &
for _ in $(seq 1 100); do
  if mariadb --no-defaults -S "$dir/mysqld.sock" -u root -e "SELECT 1" >/dev/null 2>&1; then break; fi
  sleep 0.2
done
mariadb --no-defaults -S "$dir/mysqld.sock" -u root <<'SQL'
CREATE USER IF NOT EXISTS 'bookstore'@'127.0.0.1' IDENTIFIED BY 'bookstore';
-- With the grant option: the secret-rotation test makes a user of its own.
GRANT ALL PRIVILEGES ON *.* TO 'bookstore'@'127.0.0.1' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
anonymous_users_gone
ping || { echo "MariaDB did not start; see $dir/error.log" >&2; exit 1; }
echo "$url"
