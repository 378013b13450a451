#!/bin/sh
# Installs bookstore from a release, without Rust:
#   curl -fsSL https://github.com/OWNER/bookstore/releases/latest/download/install.sh | sh
# Picks the archive for this OS and CPU, checks its SHA-256 against the release's, and puts
# `bookstore` and the Linux x86_64 `bookstore-app` it bakes (beside it, where `up` looks) into
# BOOKSTORE_INSTALL_DIR (default ~/.local/bin). BOOKSTORE_RELEASE_URL points elsewhere (a mirror,
# a pinned version: .../releases/download/v0.1.0, or file:// for a local build of scripts/dist.sh).
set -eu
base="${BOOKSTORE_RELEASE_URL:-https://github.com/${BOOKSTORE_REPO:-bookstore-dev/bookstore}/releases/latest/download}"
dir="${BOOKSTORE_INSTALL_DIR:-$HOME/.local/bin}"

fail() { echo "bookstore install: $*" >&2; exit 1; }

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) target=x86_64-unknown-linux-gnu ;;
  Linux-aarch64 | Linux-arm64) target=aarch64-unknown-linux-gnu ;;
  Darwin-arm64) target=aarch64-apple-darwin ;;
  Darwin-x86_64) target=x86_64-apple-darwin ;;
  *) fail "no release for $(uname -s) $(uname -m); on Windows use install.ps1, elsewhere \`cargo install --git https://github.com/${BOOKSTORE_REPO:-bookstore-dev/bookstore} bookstore\`" ;;
esac
archive="bookstore-$target.tar.gz"

fetch() { # url file
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --proto '=https,file' "$1" -o "$2" || fail "cannot download $1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q "$1" -O "$2" || fail "cannot download $1"
  else
    fail "neither curl nor wget is installed"
  fi
}

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  else shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
fetch "$base/$archive" "$tmp/$archive"
fetch "$base/$archive.sha256" "$tmp/$archive.sha256"
want=$(cut -d' ' -f1 "$tmp/$archive.sha256")
have=$(sha256 "$tmp/$archive")
[ "$want" = "$have" ] || fail "$archive has SHA-256 $have, the release says $want: not installed"
tar -xzf "$tmp/$archive" -C "$tmp"
mkdir -p "$dir"
for f in bookstore bookstore-app; do
  [ -f "$tmp/bookstore-$target/$f" ] || fail "$archive holds no $f"
  # Replaced atomically: a running bookstore keeps its file.
  cp "$tmp/bookstore-$target/$f" "$dir/.$f.new"
  chmod 0755 "$dir/.$f.new"
  mv -f "$dir/.$f.new" "$dir/$f"
done
echo "installed $("$dir/bookstore" --version) and its Linux x86_64 bookstore-app in $dir"
case ":$PATH:" in
  *":$dir:"*) ;;
  *) echo "add $dir to your PATH, e.g. echo 'export PATH=\"$dir:\$PATH\"' >> ~/.profile" ;;
esac
