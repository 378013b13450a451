#!/usr/bin/env bash
# Release archives, so that students install bookstore without Rust (README: Install). Every
# platform's archive carries the CLI built for that platform and, beside it, the Linux x86_64
# bookstore-app that `up` bakes into the image: no platform compiles the app on the builder.
#
#   scripts/dist.sh plan
#       each target, its archive (stable names, so .../releases/latest/download/<name> works) and
#       what the archive holds
#   scripts/dist.sh build [--target T] [--profile release|dev] [--bin PATH] [--app PATH] [--out DIR]
#       builds (or takes, --bin) the CLI for T (default: this machine's), takes the Linux x86_64 app
#       (--app, or builds it on a Linux x86_64 host), packs DIR/<archive> and DIR/<archive>.sha256
#
# .github/workflows/release.yml runs `build` once per target on a tag; tests/dist.rs checks `plan`
# against that workflow and installs a `build` of this machine with scripts/install.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=(
  x86_64-unknown-linux-gnu
  aarch64-unknown-linux-gnu
  aarch64-apple-darwin
  x86_64-apple-darwin
  x86_64-pc-windows-msvc
)
version=$(sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

archive_of() { # target → archive name
  case "$1" in
    *windows*) echo "bookstore-$1.zip" ;;
    *) echo "bookstore-$1.tar.gz" ;;
  esac
}
exe_of() { case "$1" in *windows*) echo bookstore.exe ;; *) echo bookstore ;; esac; }

plan() {
  echo "bookstore $version"
  for t in "${TARGETS[@]}"; do
    echo "$t $(archive_of "$t") $(exe_of "$t") bookstore-app README.md"
  done
}

build() {
  local target="" profile=release bin="" app="" out=dist
  while (($#)); do
    case "$1" in
      --target) target=$2; shift 2 ;;
      --profile) profile=$2; shift 2 ;;
      --bin) bin=$2; shift 2 ;;
      --app) app=$2; shift 2 ;;
      --out) out=$2; shift 2 ;;
      *) echo "dist.sh build: unknown argument $1" >&2; exit 2 ;;
    esac
  done
  local host
  host=$(rustc -vV | sed -n 's/^host: //p')
  target=${target:-$host}
  if [[ " ${TARGETS[*]} " != *" $target "* ]]; then
    echo "dist.sh: no release is made for $target (targets: ${TARGETS[*]})" >&2
    exit 2
  fi
  local dir=${CARGO_TARGET_DIR:-target} sub
  sub=$([[ $profile == dev ]] && echo debug || echo "$profile")
  if [[ -z $bin ]]; then
    if [[ $target == "$host" ]]; then
      cargo build --locked --profile "$profile" -p bookstore
      bin="$dir/$sub/$(exe_of "$target")"
    else
      cargo build --locked --profile "$profile" -p bookstore --target "$target"
      bin="$dir/$target/$sub/$(exe_of "$target")"
    fi
  fi
  if [[ -z $app ]]; then
    if [[ $host != x86_64-unknown-linux-gnu ]]; then
      echo "dist.sh: pass --app with a Linux x86_64 bookstore-app (this host, $host, cannot build it)" >&2
      exit 2
    fi
    # Static, as the release's (see .github/workflows/release.yml); --target keeps the flag off
    # build scripts and proc macros.
    RUSTFLAGS="-C target-feature=+crt-static" \
      cargo build --locked --profile "$profile" -p bookstore-app --target x86_64-unknown-linux-gnu
    app="$dir/x86_64-unknown-linux-gnu/$sub/bookstore-app"
  fi
  # The app must be what the bake runs: a Linux x86_64 executable (ELF class 64, machine 62).
  if [[ $(od -An -tx1 -j0 -N5 "$app" | tr -d ' \n') != 7f454c4602 || $(od -An -tu2 -j18 -N2 "$app" | tr -d ' ') != 62 ]]; then
    echo "dist.sh: $app is not a Linux x86_64 executable" >&2
    exit 2
  fi
  local name stage
  name=$(archive_of "$target")
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' RETURN
  mkdir -p "$stage/bookstore-$target" "$out"
  out=$(cd "$out" && pwd)
  cp "$bin" "$stage/bookstore-$target/$(exe_of "$target")"
  cp "$app" "$stage/bookstore-$target/bookstore-app"
  cp README.md "$stage/bookstore-$target/"
  chmod 0755 "$stage/bookstore-$target/$(exe_of "$target")" "$stage/bookstore-$target/bookstore-app"
  rm -f "$out/$name"
  case "$name" in
    *.zip)
      # Windows runners have `python`, Linux and macOS `python3`.
      local py
      py=$(command -v python3 || command -v python)
      (cd "$stage" && "$py" -m zipfile -c "$out/$name" "bookstore-$target")
      ;;
    *) tar -C "$stage" -czf "$out/$name" "bookstore-$target" ;;
  esac
  local sum
  if command -v sha256sum >/dev/null; then sum=$(sha256sum "$out/$name"); else sum=$(shasum -a 256 "$out/$name"); fi
  echo "${sum%% *}  $name" >"$out/$name.sha256"
  echo "$out/$name"
}

case "${1:-}" in
  plan) plan ;;
  build) shift; build "$@" ;;
  *) echo "usage: scripts/dist.sh plan | build [--target T] [--profile P] [--bin PATH] [--app PATH] [--out DIR]" >&2; exit 2 ;;
esac
