#!/usr/bin/env bash
# The project's test command (see README): installs what the tests need, then runs them all.
#   - the AWS emulator: moto, pinned, in .venv (scripts/install-moto.sh)
#   - MariaDB, on 127.0.0.1 with a private data directory (scripts/mariadb.sh): the app's suite runs
#     on SQLite and on MariaDB
#   - shellcheck, from Debian, for the rendered user-data (systemd-analyze is used where it exists)
#   - Docker (Debian's docker.io), a private dockerd started and stopped here (scripts/docker.sh):
#     the swarm payload runs on a real single-node swarm; busybox-static from Debian for its probe
#   - nginx and pebble (Let's Encrypt's test ACME server) from Debian, certbot 5.8.0 from PyPI in
#     .venv-certbot, sslyze 6.3.1 in .venv-sslyze (scripts/payload-deps.sh): the monolith's
#     payload runs for real, and its TLS is checked against Mozilla's intermediate profile
#   - Graphviz from Debian: `bookstore graph --format dot` is checked by `dot` itself
#   - Debian's docker-registry: ECR's registry endpoint in the harness (the eks image is pushed to it)
#   - Chromium and ChromeDriver from Debian: the app's whole journey in a real browser
#     (app/tests/browser/journey.py, on the app binary the suite built, after the workspace suite,
#     on SQLite and on MariaDB, in one process and split), every page checked by axe-core 4.14.1 (fetched from the npm registry and
#     checked against its sha512 by scripts/axe-core.py) and captured in app/tests/browser/screenshots/
#   - the whole workspace test suite; AWS tests start their own strict emulator on 127.0.0.1 (the
#     suites that mostly wait on it run 6 tests at a time, beside the swarm payload, which mostly
#     waits on Docker; the rest one per core)
set -euo pipefail
cd "$(dirname "$0")/.."
export AWS_EC2_METADATA_DISABLED=true   # never probe 169.254.169.254 for credentials or region
scripts/install-moto.sh
debs=()
command -v shellcheck >/dev/null || debs+=(shellcheck)
[[ -x /bin/busybox ]] || debs+=(busybox-static)   # the swarm payload's load-balancer probe
command -v chromedriver >/dev/null || debs+=(chromium chromium-driver)
command -v dot >/dev/null || debs+=(graphviz)   # tests/graph.rs runs the DOT through Graphviz
command -v docker-registry >/dev/null || debs+=(docker-registry)   # ECR's registry endpoint in the harness
if ((${#debs[@]})); then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${debs[@]}" >&2
fi
BOOKSTORE_TEST_CERTBOT="$(scripts/payload-deps.sh)"   # nginx, pebble, certbot: the monolith payload
export BOOKSTORE_TEST_CERTBOT
BOOKSTORE_TEST_SSLYZE="$(scripts/payload-deps.sh sslyze)"   # Mozilla's TLS profile, checked on nginx
export BOOKSTORE_TEST_SSLYZE
BOOKSTORE_TEST_MYSQL_URL="$(scripts/mariadb.sh)"
BOOKSTORE_TEST_MYSQL_CA="$(scripts/mariadb.sh ca)"   # the test server's TLS CA, standing in for RDS's
BOOKSTORE_TEST_MYSQL_SOCKET="$(scripts/mariadb.sh socket)"
export BOOKSTORE_TEST_MYSQL_URL BOOKSTORE_TEST_MYSQL_CA BOOKSTORE_TEST_MYSQL_SOCKET
# A private Docker engine for the swarm payload (Debian's docker.io), stopped when the tests end.
BOOKSTORE_TEST_DOCKER_HOST="$(scripts/docker.sh)"
export BOOKSTORE_TEST_DOCKER_HOST
# Every request the harness saw that AWS would refuse (checked against AWS's API models and limits)
# fails its test and is listed here at the end of the run, which then fails.
BOOKSTORE_HARNESS_VIOLATIONS="$(mktemp "${TMPDIR:-/tmp}/bookstore-violations.XXXXXX")"
export BOOKSTORE_HARNESS_VIOLATIONS
finish() {
  status=$?
  scripts/docker.sh stop
  if [[ -s "$BOOKSTORE_HARNESS_VIOLATIONS" ]]; then
    echo "requests AWS would refuse, as the harness answered them ($(wc -l <"$BOOKSTORE_HARNESS_VIOLATIONS")):" >&2
    cat "$BOOKSTORE_HARNESS_VIOLATIONS" >&2
    status=1
  else
    echo "harness: 0 requests that AWS would refuse" >&2
  fi
  rm -f "$BOOKSTORE_HARNESS_VIOLATIONS"
  exit "$status"
}
trap finish EXIT
if (($# > 0)); then
  cargo test --workspace --locked "$@"
else
  # The suites that mostly wait on the emulator's pending states run in two lanes of about the
  # same length (~310 s each with the others beside them), 6 tests at a time, beside the swarm
  # payloads (~320 s, mostly waiting on Docker) and the app's suites (CPU-bound, ~130 s: every
  # scenario in one process and as the split's three services), which fill the cores the waiting
  # leaves idle. The CLI's other suites run first, one test per core (four of them in the app's
  # lane made resilience's `up`s miss their 60 s: the cores are full).
  waiting_a=" resilience monolith split_stacks eks_split "
  waiting_b=" eks aws_limits lifecycle swarm "
  waits_a=() waits_b=() rest=() app=()
  for f in tests/*.rs app/tests/*.rs; do
    name=$(basename "$f" .rs)
    if [[ "$name" == swarm_payload || "$name" == swarm_split_payload ]]; then continue; fi
    if [[ "$f" == app/* ]]; then app+=(--test "$name")
    elif [[ "$waiting_a" == *" $name "* ]]; then waits_a+=(--test "$name")
    elif [[ "$waiting_b" == *" $name "* ]]; then waits_b+=(--test "$name")
    else rest+=(--test "$name"); fi
  done
  cargo test --workspace --locked --lib --bins "${rest[@]}"
  # One build for the four lanes, so they do not queue on cargo's lock.
  cargo test --workspace --locked --no-run --test swarm_payload --test swarm_split_payload \
    "${waits_a[@]}" "${waits_b[@]}" "${app[@]}"
  payload_log=$(mktemp) app_log=$(mktemp) waits_log=$(mktemp)
  # The two swarm payloads share the private dockerd: one after the other.
  cargo test --workspace --locked --test swarm_payload --test swarm_split_payload >"$payload_log" 2>&1 &
  payload=$!
  cargo test --workspace --locked "${app[@]}" >"$app_log" 2>&1 &
  app_suites=$!
  cargo test --workspace --locked "${waits_b[@]}" -- --test-threads=6 >"$waits_log" 2>&1 &
  waits=$!
  status=0
  cargo test --workspace --locked "${waits_a[@]}" -- --test-threads=6 || status=$?
  wait "$waits" || status=$?
  wait "$payload" || status=$?
  wait "$app_suites" || status=$?
  cat "$waits_log" "$payload_log" "$app_log"
  rm -f "$waits_log" "$payload_log" "$app_log"
  ((status == 0)) || exit "$status"
fi
if (($# == 0)); then
  # The app binary the workspace suite just built (a release build took ~100 s more of CI for the
  # same code; the images bake their own release build).
  BOOKSTORE_TEST_AXE="$(python3 scripts/axe-core.py)" \
    python3 app/tests/browser/journey.py "${CARGO_TARGET_DIR:-target}/debug/bookstore-app"
fi
