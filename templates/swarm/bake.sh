#!/bin/bash
# User-data of the bake's builder for the swarm (Amazon Linux 2023): installs Docker and the EFS
# utilities, the app, and builds the app's container image from it on the builder itself (no
# registry is needed or used: the image ships inside the AMI), plus the node bootstrap and its unit,
# then powers off so that bookstore can create the AMI. On any failure it prints
# BOOKSTORE-BAKE-FAILED to the console.
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
dnf install -y --setopt=install_weak_deps=False docker amazon-efs-utils nfs-utils awscli-2 >/dev/null

{{install_app}}

say "building the app's image"
install -d -m 0755 /usr/local/libexec/bookstore /etc/bookstore
curl --fail --silent --show-error --retry 5 --retry-all-errors \
  -o /etc/bookstore/rds-ca.pem https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
grep -q "BEGIN CERTIFICATE" /etc/bookstore/rds-ca.pem
chmod 0644 /etc/bookstore/rds-ca.pem
cat >/usr/local/libexec/bookstore/bookstore-build-image <<'BOOKSTORE_BUILD_EOF'
{{build_image}}
BOOKSTORE_BUILD_EOF
cat >/usr/local/libexec/bookstore/bookstore-swarm-node <<'BOOKSTORE_NODE_EOF'
{{node}}
BOOKSTORE_NODE_EOF
cat >/usr/local/libexec/bookstore/bookstore-swarm-sync <<'BOOKSTORE_SYNC_EOF'
{{sync}}
BOOKSTORE_SYNC_EOF
chmod 0755 /usr/local/libexec/bookstore/bookstore-build-image /usr/local/libexec/bookstore/bookstore-swarm-node \
  /usr/local/libexec/bookstore/bookstore-swarm-sync
systemctl start docker
/usr/local/libexec/bookstore/bookstore-build-image /usr/local/bin/bookstore-app \
  "bookstore.local/app:${artifact_sha256:0:12}" /etc/bookstore/rds-ca.pem
cat >/etc/systemd/system/bookstore-swarm-node.service <<'BOOKSTORE_UNIT_EOF'
{{unit}}
BOOKSTORE_UNIT_EOF
cat >/etc/systemd/system/bookstore-swarm-sync.service <<'BOOKSTORE_SYNC_UNIT_EOF'
{{sync_unit}}
BOOKSTORE_SYNC_UNIT_EOF
cat >/etc/systemd/system/bookstore-swarm-sync.timer <<'BOOKSTORE_SYNC_TIMER_EOF'
{{sync_timer}}
BOOKSTORE_SYNC_TIMER_EOF
systemctl daemon-reload
systemctl enable docker.service bookstore-swarm-node.service bookstore-swarm-sync.timer

cloud-init clean --logs
say "BOOKSTORE-BAKE-OK ${artifact_sha256}"
systemctl poweroff
