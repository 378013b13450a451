# The app, shared by every bake recipe (inserted by src/templates.rs): downloads the artifact,
# checks its sha256, and installs /usr/local/bin/bookstore-app, building it first when the artifact
# is the app's source (for users whose own machine is not Linux x86_64).
say "downloading the ${artifact_kind} artifact"
curl --fail --silent --show-error --retry 5 --retry-all-errors -o /tmp/bookstore-artifact "$artifact_url"
echo "${artifact_sha256}  /tmp/bookstore-artifact" | sha256sum --check --quiet

if [[ "$artifact_kind" == source ]]; then
  # Built here for users whose own machine is not Linux x86_64.
  say "building from source with Rust ${rust_toolchain}"
  dnf install -y gcc tar >/dev/null
  if ! swapon --show | grep -q .; then
    fallocate -l 2G /swapfile && chmod 600 /swapfile && mkswap /swapfile >/dev/null && swapon /swapfile
  fi
  export HOME=/root CARGO_HOME=/root/.cargo RUSTUP_HOME=/root/.rustup
  curl --fail --silent --show-error --proto '=https' --tlsv1.2 https://sh.rustup.rs \
    | sh -s -- -y --quiet --profile minimal --default-toolchain "$rust_toolchain"
  mkdir -p /tmp/bookstore-src
  tar -xf /tmp/bookstore-artifact -C /tmp/bookstore-src
  (cd /tmp/bookstore-src && /root/.cargo/bin/cargo build --release --quiet -p bookstore-app)
  install -m 0755 /tmp/bookstore-src/target/release/bookstore-app /usr/local/bin/bookstore-app
  rm -rf /tmp/bookstore-src /root/.cargo /root/.rustup
  swapoff /swapfile 2>/dev/null && rm -f /swapfile
else
  install -m 0755 /tmp/bookstore-artifact /usr/local/bin/bookstore-app
fi
rm -f /tmp/bookstore-artifact
