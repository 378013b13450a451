#!/usr/bin/env bash
# Wall time of `up` with every creation delayed DELAY seconds (each Create*/Import*/Run* call and S3
# PUT takes DELAY; VPCs, subnets, the load balancer, the database, the file system, mount targets,
# instances and images stay pending DELAY more; the builder installs for DELAY), next to the sum of
# those delays run one after another and to the longest chain of them (the critical path); then the
# API calls of `up`, of a no-op `up` and of `down`. STACK=monolith measures the monolith (default asg).
set -euo pipefail
cd "$(dirname "$0")/.."
DELAY="${DELAY:-5}"
STACK="${STACK:-asg}"
scripts/install-moto.sh
cargo build --workspace --locked --quiet
bin="${CARGO_TARGET_DIR:-target}/debug/bookstore"
log=$(mktemp)
.venv/bin/python tests/harness/strict_moto.py --port 0 --pending-seconds "$DELAY" --create-call-seconds "$DELAY" --bake-seconds "$DELAY" >"$log" 2>/dev/null &
moto=$!
trap 'kill $moto 2>/dev/null; rm -f "$log"' EXIT
until grep -q '^HEALTH_PORT=' "$log"; do sleep 0.1; done
# The emulated VMs' proxies answer their health check on this port of their Elastic IPs.
BOOKSTORE_HTTPS_PROBE_PORT="$(sed -n 's/^HEALTH_PORT=//p' "$log")"
export BOOKSTORE_HTTPS_PROBE_PORT BOOKSTORE_HTTP_PROBE_PORT="$BOOKSTORE_HTTPS_PROBE_PORT"
url="http://127.0.0.1:$(sed -n 's/^PORT=//p' "$log")"
export AWS_ENDPOINT_URL="$url" AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
BOOKSTORE_STATE_DIR="$(mktemp -d)"
export BOOKSTORE_STATE_DIR
calls() { curl -s "$url/_harness/calls" | .venv/bin/python -c '
import json, re, sys
calls = json.load(sys.stdin)
mutating = [c for c in calls if not re.match(r"(Describe|List|Get|GET |HEAD )", c["action"])]
delayed = [c for c in calls if re.match(r"(Create|Import|Request|Run|Allocate|POST |PUT )", c["action"])]
print(len(calls), len(mutating), len(delayed))'; }
reset() { curl -s -X DELETE "$url/_harness/calls" >/dev/null; }

events=$(mktemp)
start=$(date +%s.%N)
"$bin" --output json up --stack "$STACK" --env bench >/dev/null 2>"$events"
wall=$(python3 -c "import sys; print(float(sys.argv[1]) - float(sys.argv[2]))" "$(date +%s.%N)" "$start")
read -r total mutating delayed <<<"$(calls)"
# Pending DELAY each. asg: the VPC, two subnets, the load balancer, the database, the file system,
# two mount targets, the builder instance, its install, the image and the group's two instances.
# monolith: the VPC, the subnet, the data volume, the builder, its install, the image and the VM.
if [[ "$STACK" == monolith ]]; then pending=7; else pending=13; fi
sum=$(( (delayed + pending) * DELAY ))
printf 'up: wall %.1f s; delays one after another: %d s (%d delayed calls + %d pending, %s s each)\n' "$wall" "$sum" "$delayed" "$pending" "$DELAY"
echo "up: $total API calls ($mutating mutating)"
# The critical path: when each link of the longest chain was ready.
.venv/bin/python - "$events" "$DELAY" "$STACK" <<'PY'
import json, sys
ready = {}
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") == "resource" and e.get("phase") == "ready":
        ready[e["key"]] = e["elapsed_ms"] / 1000
tail = ["vm"] if sys.argv[3] == "monolith" else ["lt", "asg"]
chain = ["vpc", "subnet-a", "routes"] + sorted(k for k in ready if k.startswith("ami-")) + tail
print("critical chain ready at: " + ", ".join(f"{k} {ready.get(k, float('nan')):.0f} s" for k in chain))
print("other slow branches ready at: " + ", ".join(f"{k} {ready[k]:.0f} s" for k in ("db", "efs", "alb", "listener-https", "eip", "data") if k in ready))
PY
rm -f "$events"
reset
"$bin" up --stack "$STACK" --env bench >/dev/null 2>&1
read -r total mutating _ <<<"$(calls)"
echo "no-op up: $total API calls ($mutating mutating)"
if ((mutating > 0)); then
  curl -s "$url/_harness/calls" | .venv/bin/python -c '
import json, re, sys
print("  mutating:", ", ".join(c["service"] + ":" + c["action"] for c in json.load(sys.stdin) if not re.match(r"(Describe|List|Get|GET |HEAD )", c["action"])))'
fi
reset
start=$(date +%s.%N)
"$bin" down --stack "$STACK" --env bench --yes >/dev/null 2>&1
wall=$(python3 -c "import sys; print(float(sys.argv[1]) - float(sys.argv[2]))" "$(date +%s.%N)" "$start")
read -r total mutating _ <<<"$(calls)"
printf 'down: wall %.1f s, %d API calls (%d mutating)\n' "$wall" "$total" "$mutating"
