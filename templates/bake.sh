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

{{install_app}}

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
cat >/etc/systemd/system/bookstore@.service <<'BOOKSTORE_SPLIT_UNIT_EOF'
{{split_unit}}
BOOKSTORE_SPLIT_UNIT_EOF
cat >/etc/systemd/system/bookstore-split.service <<'BOOKSTORE_SPLIT_SETUP_EOF'
{{split_setup_unit}}
BOOKSTORE_SPLIT_SETUP_EOF
cat >/etc/systemd/system/bookstore-secret.service <<'BOOKSTORE_SECRET_UNIT_EOF'
{{secret_unit}}
BOOKSTORE_SECRET_UNIT_EOF
cat >/etc/systemd/system/bookstore-secret.timer <<'BOOKSTORE_SECRET_TIMER_EOF'
{{secret_timer}}
BOOKSTORE_SECRET_TIMER_EOF
systemctl daemon-reload
systemctl enable bookstore.service bookstore-secret.timer
# The split's units are enabled by the user-data of the machines that run it.

# Instances made from this image run their own user-data: forget this one's.
cloud-init clean --logs
say "BOOKSTORE-BAKE-OK ${artifact_sha256}"
systemctl poweroff
