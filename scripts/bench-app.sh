#!/usr/bin/env bash
# Serving speed of the BookStore: seeds 500 books through the real forms, starts the release build,
# and runs wrk (Debian package) on loopback: the home page, the first catalog page, page 6 (by its
# Older link), a search, a book's page (no cache anywhere); then a flood of 200 concurrent logins, with the
# server's peak memory (VmHWM) before and after it and whether the catalog kept answering.
# ENGINE=sqlite (default) or ENGINE=mysql (the MariaDB that scripts/mariadb.sh runs).
# Prints requests/s and p50/p99 at 32 connections; wrk's 2 threads share the same 2 cores. Each row is
# the median of ROUNDS runs (3) of DURATION seconds (5), with the lowest and highest beside it: on a
# shared VM one run can be 20 % off. Each row also gives the CPU time per request of the app and, on
# MySQL, of the database server (from /proc, over the median run): all of them share the 2 cores here,
# where on AWS the database has a machine of its own, so `app only` is what the app's own CPU would
# serve on these cores.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "installing wrk" >&2; apt-get install -y -qq wrk >&2; }
cargo build --release --locked -p bookstore-app --quiet
bin="${CARGO_TARGET_DIR:-target}/release/bookstore-app"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
engine=${ENGINE:-sqlite}
db_env=()
cleanup_db=:
db_pid=""
if [ "$engine" = mysql ]; then
  url=$(scripts/mariadb.sh)
  db_pid=$(cat "${BOOKSTORE_MARIADB_DIR:-${TMPDIR:-/tmp}/bookstore-mariadb}/mysqld.pid")
  name="bs_bench_$$"
  port_db=${url##*:}
  sql() { mariadb --protocol=tcp -h 127.0.0.1 -P "$port_db" -u bookstore -pbookstore -e "$1"; }
  sql "CREATE DATABASE $name CHARACTER SET utf8mb4"
  db_env=(DATABASE_URL="$url/$name")
  cleanup_db="sql 'DROP DATABASE IF EXISTS $name'"
fi
env "${db_env[@]}" BOOKSTORE_ADDR="127.0.0.1:$port" BOOKSTORE_DATA_DIR="$work/data" BOOKSTORE_LOG=warn,tower_http=off "$bin" &
app=$!
trap 'kill $app 2>/dev/null; rm -rf "$work"; eval "$cleanup_db"' EXIT
base="http://127.0.0.1:$port"
until curl -sf -o /dev/null "$base/healthz"; do sleep 0.1; done

jar="$work/cookies"
curl -s -c "$jar" -o /dev/null "$base/login"   # a page with a form hands out the CSRF token
csrf() { awk '$6 == "bs_csrf" {print $7}' "$jar"; }
curl -s -b "$jar" -c "$jar" -o /dev/null --data-urlencode "csrf=$(csrf)" -d name=Seller -d email=seller@example.com -d password=benchmark-password "$base/register"
for i in $(seq 1 500); do
  curl -s -b "$jar" -o /dev/null -F "csrf=$(csrf)" -F "title=Book number $i" -F "author=Author $((i % 37))" \
    -F "description=A well-kept second-hand copy, number $i." -F "price=$((i % 90 + 5)).50" -F "stock=$((i % 4 + 1))" "$base/sell"
done
# Page 6 the way a visitor gets there: following "Older" five times (keyset cursors).
page6="/books"
for _ in 1 2 3 4 5; do
  page6=$(curl -s "$base$page6" | grep -o 'rel="next" href="[^"]*"' | sed 's/.*href="//; s/"$//; s/&amp;/\&/g; s/&#38;/\&/g')
done
cards=$(curl -s "$base$page6" | grep -c 'class="card"' || true)
[ "$cards" = 50 ] || { echo "seeding failed: $cards books on catalog page 6, expected 50" >&2; exit 1; }
hits=$(curl -s "$base/books?q=author+1" | grep -c 'class="card"' || true)
echo "engine $engine: seeded 500 books; catalog page 6 shows $cards, the search 'author 1' $hits"
echo "server memory after seeding: $(awk '/VmRSS/ {printf "%.1f MB", $2/1024}' /proc/$app/status)"

# CPU time (user + system) of a process so far, in clock ticks.
ticks() { [ -n "$1" ] && awk '{print $14 + $15}' "/proc/$1/stat" || echo 0; }
hz=$(getconf CLK_TCK) cores=$(nproc)
run() {
  local name=$1 path=$2 out rps p50 p99 errors requests app0 db0 cpu
  local results=()
  for _ in $(seq 1 "${ROUNDS:-3}"); do
    app0=$(ticks "$app") db0=$(ticks "$db_pid")
    out=$(wrk -t2 -c32 -d"${DURATION:-5}"s --latency "$base$path")
    rps=$(awk '/^Requests\/sec/ {printf "%d", $2}' <<<"$out")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    errors=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    cpu=$(awk -v a=$(( $(ticks "$app") - app0 )) -v d=$(( $(ticks "$db_pid") - db0 )) -v n="$requests" -v hz="$hz" -v cores="$cores" -v mysql="$db_pid" '
      BEGIN { us = 1e6 / hz / n; printf "app %.0f us/req", a * us;
              if (mysql != "") printf ", database %.0f us/req", d * us;
              printf " (app only: %d req/s)", cores * 1e6 / (a * us) }')
    results+=("$rps p50 $p50, p99 $p99${errors:+, $errors non-2xx}; $cpu")
  done
  # The median run by requests/s, and the range.
  printf '%s\n' "${results[@]}" | sort -n | awk -v name="$name ($path)" '
    { line[NR] = $0; split($0, f, " "); rps[NR] = f[1] }
    END { m = int((NR + 1) / 2); sub(/^[0-9]+ /, "", line[m]);
          printf "%s: %d req/s (%d-%d), %s\n", name, rps[m], rps[1], rps[NR], line[m] }'
}
run "home" "/"
run "catalog page 1" "/books"
run "catalog page 6" "$page6"
run "search" "/books?q=author+1"
run "book page" "/books/250"
echo "server peak memory so far: $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' /proc/$app/status)"

# The login flood: 200 concurrent wrong passwords for one account, from python threads, while a
# catalog request is timed every 50 ms.
python3 - "$port" "$(csrf)" <<'PY'
import sys, threading, time, http.client, urllib.parse
port, csrf = int(sys.argv[1]), sys.argv[2]
statuses, slow = {}, []
def login(i):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = urllib.parse.urlencode({"csrf": csrf, "email": f"user{i % 20}@example.com", "password": "wrong password " + str(i)})
    c.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded", "Cookie": "bs_csrf=" + csrf})
    s = c.getresponse().status
    statuses[s] = statuses.get(s, 0) + 1
threads = [threading.Thread(target=login, args=(i,)) for i in range(200)]
start = time.time()
for t in threads: t.start()
catalog = []
while any(t.is_alive() for t in threads):
    t0 = time.time()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/books?page=2")
    ok = c.getresponse().status == 200
    catalog.append((ok, time.time() - t0))
    time.sleep(0.05)
for t in threads: t.join()
worst = max((d for _, d in catalog), default=0)
print(f"login flood: 200 concurrent in {time.time() - start:.1f} s, statuses {dict(sorted(statuses.items()))}; "
      f"catalog during it: {sum(ok for ok, _ in catalog)}/{len(catalog)} OK, slowest {worst * 1000:.0f} ms")
PY
echo "server peak memory (VmHWM, whole run): $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' /proc/$app/status), now $(awk '/VmRSS/ {printf "%.1f MB", $2/1024}' /proc/$app/status)"
