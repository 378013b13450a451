#!/usr/bin/env bash
# Redraws the README's architecture pictures (docs/graphs/<stack>.svg) with `bookstore graph`.
# tests/graph.rs fails when they differ from what the command draws.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --locked --bin bookstore
bin="${CARGO_TARGET_DIR:-target}/debug/bookstore"
mkdir -p docs/graphs
for stack in asg monolith swarm eks; do
  "$bin" graph --stack "$stack" --region us-east-1 --format svg >"docs/graphs/$stack.svg"
  echo "docs/graphs/$stack.svg"
done
