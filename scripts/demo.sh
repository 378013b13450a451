#!/usr/bin/env bash
# Quickstart against the local AWS emulator: up, status and down of the asg stack. No AWS account,
# no internet beyond PyPI for the one-time emulator install. Creations are slowed (2 s each) so the
# progress display and the parallel waits can be seen.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-moto.sh
cargo build --workspace --locked --quiet
bin="${CARGO_TARGET_DIR:-target}/debug/bookstore"
log=$(mktemp)
.venv/bin/python tests/harness/strict_moto.py --port 0 --pending-seconds "${PENDING:-2}" >"$log" 2>/dev/null &
moto=$!
trap 'kill $moto 2>/dev/null; rm -f "$log"' EXIT
until grep -q '^HEALTH_PORT=' "$log"; do sleep 0.1; done
# The emulated VMs' proxies answer their health check on this port of their Elastic IPs.
BOOKSTORE_HTTPS_PROBE_PORT="$(sed -n 's/^HEALTH_PORT=//p' "$log")"
export BOOKSTORE_HTTPS_PROBE_PORT BOOKSTORE_HTTP_PROBE_PORT="$BOOKSTORE_HTTPS_PROBE_PORT"
AWS_ENDPOINT_URL="http://127.0.0.1:$(sed -n 's/^PORT=//p' "$log")"
export AWS_ENDPOINT_URL
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
BOOKSTORE_STATE_DIR="$(mktemp -d)"
export BOOKSTORE_STATE_DIR
set -x
"$bin" up --stack asg --env demo
"$bin" status --stack asg --env demo
"$bin" down --stack asg --env demo --yes
