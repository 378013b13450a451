#!/usr/bin/env bash
# Serving speed of the BookStore on SQLite: seeds 500 books through the real forms, starts the
# release build, and runs wrk (Debian package) on loopback against / and the first catalog page
# (50 books). Prints requests/s and p99 latency at 32 connections, and the server's peak memory.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "installing wrk" >&2; apt-get install -y -qq wrk >&2; }
cargo build --release --locked -p bookstore-app --quiet
bin="${CARGO_TARGET_DIR:-target}/release/bookstore-app"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BOOKSTORE_ADDR="127.0.0.1:$port" BOOKSTORE_DATA_DIR="$work/data" BOOKSTORE_LOG=warn "$bin" &
app=$!
trap 'kill $app 2>/dev/null; rm -rf "$work"' EXIT
base="http://127.0.0.1:$port"
until curl -sf -o /dev/null "$base/healthz"; do sleep 0.1; done

jar="$work/cookies"
curl -s -c "$jar" -o /dev/null "$base/login"   # a page with a form hands out the CSRF token
csrf() { awk '$6 == "bs_csrf" {print $7}' "$jar"; }
curl -s -b "$jar" -c "$jar" -o /dev/null --data-urlencode "csrf=$(csrf)" -d name=Seller -d email=seller@example.com -d password=benchmark-password "$base/register"
for i in $(seq 1 500); do
  curl -s -b "$jar" -o /dev/null -F "csrf=$(csrf)" -F "title=Book number $i" -F "author=Author $((i % 37))" \
    -F "description=A well-kept second-hand copy, number $i." -F "price=$((i % 90 + 5)).50" -F "stock=$((i % 4))" "$base/sell"
done
cards=$(curl -s "$base/books" | grep -c 'class="card"' || true)
[ "$cards" = 50 ] || { echo "seeding failed: $cards books on the first catalog page, expected 50" >&2; exit 1; }
echo "seeded 500 books; the first catalog page shows $cards"

run() {
  local name=$1 path=$2
  local out
  out=$(wrk -t2 -c32 -d"${DURATION:-10}"s --latency "$base$path")
  local rps p99
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  echo "$name ($path): $rps req/s, p99 $p99 (32 connections, 2 wrk threads on the same 2 cores)"
}
run "home" "/"
run "catalog page 1" "/books"
run "search, never cached" "/books?q=author+1"
echo "server peak memory: $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' /proc/$app/status)"
