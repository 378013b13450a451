#!/bin/bash
# User-data of the bake's builder instance (Amazon Linux 2023): installs the BookStore, its systemd
# unit and what the instances need (EFS utilities), then powers off so that bookstore can create
# the AMI. On any failure it prints BOOKSTORE-BAKE-FAILED to the console and powers off too;
# bookstore reads the console and stops with that line instead of baking a broken image.
# Rendered by bookstore (src/templates.rs): values are shell-quoted; files are quoted heredocs.
set -euo pipefail

artifact_url={{artifact_url}}
artifact_sha256={{artifact_sha256}}
artifact_kind={{artifact_kind}}
rust_toolchain={{rust_toolchain}}

say() { echo "bookstore-bake: $*" | tee /dev/console >&2; }
failed() {
  say "BOOKSTORE-BAKE-FAILED at line $1"
  systemctl poweroff
}
trap 'failed $LINENO' ERR

say "installing packages"
dnf install -y --setopt=install_weak_deps=False amazon-efs-utils nfs-utils awscli-2 >/dev/null

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

say "installing the service"
getent passwd bookstore >/dev/null \
  || useradd --system --home-dir /var/lib/bookstore --shell /sbin/nologin bookstore
install -d -o bookstore -g bookstore -m 0750 /var/lib/bookstore /var/lib/bookstore/uploads
install -d -m 0755 /usr/local/libexec/bookstore /etc/bookstore
# The CAs of RDS, to verify the database's certificate (the app connects with verify_identity).
curl --fail --silent --show-error --retry 5 --retry-all-errors \
  -o /etc/bookstore/rds-ca.pem https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
grep -q "BEGIN CERTIFICATE" /etc/bookstore/rds-ca.pem
chmod 0644 /etc/bookstore/rds-ca.pem
cat >/usr/local/libexec/bookstore/fetch-db-secret <<'BOOKSTORE_FETCH_EOF'
{{fetch_db_secret}}
BOOKSTORE_FETCH_EOF
chmod 0755 /usr/local/libexec/bookstore/fetch-db-secret
cat >/etc/systemd/system/bookstore.service <<'BOOKSTORE_UNIT_EOF'
{{unit}}
BOOKSTORE_UNIT_EOF
systemctl daemon-reload
systemctl enable bookstore.service

# Instances made from this image run their own user-data: forget this one's.
cloud-init clean --logs
say "BOOKSTORE-BAKE-OK ${artifact_sha256}"
systemctl poweroff
