#!/usr/bin/env bash
# A private Docker engine for the swarm payload test: installs Debian's docker.io when dockerd is
# missing, starts dockerd (as root) with its own data, exec root and socket under
# ${BOOKSTORE_DOCKER_DIR:-/tmp/bookstore-docker}, and prints its DOCKER_HOST.
# `scripts/docker.sh stop` stops the engine it started (by its pid file). Nothing is pulled: there
# is no registry here, and the tests build their images with `docker import`.
set -euo pipefail
dir="${BOOKSTORE_DOCKER_DIR:-/tmp/bookstore-docker}"
sock="$dir/docker.sock"
pidfile="$dir/dockerd.pid"
running() { [[ -f "$pidfile" ]] && [[ "$(ps -o comm= -p "$(cat "$pidfile")" 2>/dev/null)" == dockerd ]]; }
if [[ "${1:-}" == stop ]]; then
  if running; then
    DOCKER_HOST="unix://$sock" docker swarm leave --force >/dev/null 2>&1 || true
    # Read once: dockerd removes its pid file as it exits.
    pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  exit 0
fi
if ! command -v dockerd >/dev/null; then
  echo "installing docker.io (one time)" >&2
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq docker.io >&2
  $sudo systemctl disable --now docker.service docker.socket >/dev/null 2>&1 || true
fi
mkdir -p "$dir"
# A pid file left by a machine restart may name another process now: ask the engine itself.
if ! DOCKER_HOST="unix://$sock" docker version >/dev/null 2>&1; then
  running && kill "$(cat "$pidfile")"
  rm -f "$pidfile"
  # An engine that died with overlay networks can leave its VXLAN device in this namespace (it
  # is made here, then moved into the network's): the next overlay then fails with "error creating
  # vxlan interface: file exists". Such a device is down and named vx-*.
  for dev in $(ip -o link show type vxlan 2>/dev/null | awk -F': ' '$2 ~ /^vx-/ && $3 ~ /state DOWN/ {print $2}'); do
    ip link delete "$dev" 2>/dev/null || true
  done
  nohup dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$pidfile" \
    --host "unix://$sock" >"$dir/dockerd.log" 2>&1 &
  for _ in $(seq 1 150); do
    DOCKER_HOST="unix://$sock" docker version >/dev/null 2>&1 && break
    sleep 0.2
  done
fi
DOCKER_HOST="unix://$sock" docker version >/dev/null 2>&1 || { echo "dockerd did not start; see $dir/dockerd.log" >&2; exit 1; }
echo "unix://$sock"
