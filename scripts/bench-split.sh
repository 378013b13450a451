#!/usr/bin/env bash
# The split beside the single process: the release build once as one process and once as the
# three services (`--service accounts|catalog|orders`, each on its own database), each seeded with
# 50 books of 10,000 copies through the real forms. wrk (Debian package) then asks, logged in:
#   - a catalog page (/books): single process vs the catalog service (identity from the signed
#     token, no database read for it);
#   - a purchase (POST /books/ID/buy over 50 books, 303 each): single process (one transaction)
#     vs the orders service (its row, then catalog's reservation over the internal API).
# Services are asked on their own ports (a load balancer in front costs both the same).
# ENGINE=sqlite (default) or ENGINE=mysql (the MariaDB that scripts/mariadb.sh runs). Prints
# requests/s, p50 and p99 at 16 connections, the median of ROUNDS (3) runs of DURATION (4) s.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "installing wrk" >&2; apt-get install -y -qq wrk >&2; }
cargo build --release --locked -p bookstore-app --quiet
bin="${CARGO_TARGET_DIR:-target}/release/bookstore-app"
engine=${ENGINE:-sqlite}
work=$(mktemp -d)
pids=()
dbs=()
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
if [ "$engine" = mysql ]; then
  url=$(scripts/mariadb.sh)
  port_db=${url##*:}
  sql() { mariadb --protocol=tcp -h 127.0.0.1 -P "$port_db" -u bookstore -pbookstore -e "$1"; }
fi
database() { # NAME: a DATABASE_URL of its own
  if [ "$engine" = mysql ]; then
    sql "CREATE DATABASE bs_split_$1_$$ CHARACTER SET utf8mb4"
    dbs+=("bs_split_$1_$$")
    echo "$url/bs_split_$1_$$"
  else
    echo "sqlite://$work/$1.db?mode=rwc"
  fi
}
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for d in "${dbs[@]}"; do sql "DROP DATABASE IF EXISTS $d"; done
  rm -rf "$work"
}
trap cleanup EXIT
common=(BOOKSTORE_LOG=warn,tower_http=off,sqlx=error BOOKSTORE_UPLOADS_DIR="$work/uploads" BOOKSTORE_MAX_PENDING_COPIES=1000000000)

# One process.
single=$(port)
env "${common[@]}" DATABASE_URL="$(database single)" BOOKSTORE_ADDR="127.0.0.1:$single" "$bin" &
pids+=($!)
# The split.
head -c 32 /dev/urandom | base64 >"$work/internal.key"
"$bin" identity-key >"$work/identity.key"
declare -A pub int
for s in accounts catalog orders; do pub[$s]=$(port); int[$s]=$(port); done
for s in accounts catalog orders; do
  env "${common[@]}" DATABASE_URL="$(database "$s")" BOOKSTORE_ADDR="127.0.0.1:${pub[$s]}" \
    BOOKSTORE_SERVICE=$s BOOKSTORE_INTERNAL_ADDR="127.0.0.1:${int[$s]}" \
    BOOKSTORE_ACCOUNTS_URL="http://127.0.0.1:${int[accounts]}" BOOKSTORE_CATALOG_URL="http://127.0.0.1:${int[catalog]}" \
    BOOKSTORE_ORDERS_URL="http://127.0.0.1:${int[orders]}" BOOKSTORE_INTERNAL_KEY_FILE="$work/internal.key" \
    BOOKSTORE_IDENTITY_KEY_FILE="$work/identity.key" "$bin" &
  pids+=($!)
done
for p in "$single" "${pub[accounts]}" "${pub[catalog]}" "${pub[orders]}"; do
  until curl -sf -o /dev/null "http://127.0.0.1:$p/healthz"; do sleep 0.1; done
done

# seed ACCOUNTS_PORT CATALOG_PORT JAR: a seller with 50 books, and a logged-in buyer (JAR).
seed() {
  local a=http://127.0.0.1:$1 c=http://127.0.0.1:$2 jar=$3 sjar="$3.seller"
  csrf() { awk '$6 == "bs_csrf" {print $7}' "$1"; }
  for j in "$sjar" "$jar"; do curl -s -c "$j" -o /dev/null "$a/login"; done
  curl -s -b "$sjar" -c "$sjar" -o /dev/null --data-urlencode "csrf=$(csrf "$sjar")" -d name=Seller \
    -d email=seller@example.com -d password=benchmark-password "$a/register"
  for i in $(seq 1 50); do
    curl -s -b "$sjar" -c "$sjar" -o /dev/null -F "csrf=$(csrf "$sjar")" -F "title=Book number $i" -F "author=Author $i" \
      -F "description=A copy." -F "price=$((i % 90 + 5)).50" -F "stock=10000" "$c/sell"
  done
  curl -s -b "$jar" -c "$jar" -o /dev/null --data-urlencode "csrf=$(csrf "$jar")" -d name=Buyer \
    -d email=buyer@example.com -d password=benchmark-password "$a/register"
}
seed "$single" "$single" "$work/single.jar"
seed "${pub[accounts]}" "${pub[catalog]}" "$work/split.jar"

# A wrk script: the jar's cookies; for purchases, POSTs over books 1..50.
script() { # JAR BUY(0|1)
  local cookies csrf
  # (curl writes HttpOnly cookies as lines starting "#HttpOnly_": those are cookies too.)
  cookies=$(awk 'NF >= 7 && ($1 !~ /^#/ || $1 ~ /^#HttpOnly_/) {printf "%s%s=%s", sep, $6, $7; sep="; "}' "$1")
  csrf=$(awk '$6 == "bs_csrf" {print $7}' "$1")
  cat <<LUA
wrk.headers["Cookie"] = "$cookies"
local n = 0
function request()
  if $2 == 0 then return wrk.format("GET", "/books") end
  n = n % 50 + 1
  -- (headers given to wrk.format replace wrk.headers: the cookies go along again)
  return wrk.format("POST", "/books/" .. n .. "/buy",
    {["Cookie"] = wrk.headers["Cookie"], ["Content-Type"] = "application/x-www-form-urlencoded"}, "csrf=$csrf&quantity=1")
end
LUA
}
run() { # NAME PORT JAR BUY
  local results=() out check
  script "$3" "$4" >"$work/wrk.lua"
  if [ "$4" = 1 ]; then # one purchase by hand first: it must make an order
    check=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -b "$3" \
      --data-urlencode "csrf=$(awk '$6 == "bs_csrf" {print $7}' "$3")" -d quantity=1 "http://127.0.0.1:$2/books/1/buy")
    [[ "$check" == "303 "*"/orders/"* ]] || { echo "$1: a purchase answered $check" >&2; exit 1; }
  fi
  for _ in $(seq 1 "${ROUNDS:-3}"); do
    out=$(wrk -t2 -c16 -d"${DURATION:-4}"s --latency -s "$work/wrk.lua" "http://127.0.0.1:$2")
    results+=("$(awk '/^Requests\/sec/ {printf "%d", $2}' <<<"$out") req/s, p50 $(awk '$1 == "50%" {print $2}' <<<"$out"), p99 $(awk '$1 == "99%" {print $2}' <<<"$out")")
  done
  printf '%s\n' "${results[@]}" | sort -n | awk -v name="$1" '{ r[NR] = $0 } END { print name ": " r[int((NR + 1) / 2)] }'
}
echo "engine $engine: 50 books of 10,000 copies each, logged-in buyer; 16 connections"
run "catalog page, one process" "$single" "$work/single.jar" 0
run "catalog page, catalog service" "${pub[catalog]}" "$work/split.jar" 0
run "purchase, one process" "$single" "$work/single.jar" 1
run "purchase, orders + catalog services" "${pub[orders]}" "$work/split.jar" 1
sold() { # the orders a run made, as a check that purchases were made
  curl -s -b "$1" "http://127.0.0.1:$2/orders" | grep -c 'href="/orders/' || true
}
echo "orders listed for the buyer (at most 500 shown): one process $(sold "$work/single.jar" "$single"), split $(sold "$work/split.jar" "${pub[orders]}")"
