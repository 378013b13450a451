#!/bin/bash
# User-data of the bake's builder for the monolith (Amazon Linux 2023): installs the BookStore,
# MariaDB, nginx and certbot (in its own virtualenv: AL2023's certbot 2.6 cannot get IP
# certificates), the setup and certificate scripts and their units, then powers off so that
# bookstore can create the AMI. On any failure it prints BOOKSTORE-BAKE-FAILED to the console.
# Rendered by bookstore (src/templates.rs): values are shell-quoted; files are quoted heredocs.
set -euo pipefail

artifact_url={{artifact_url}}
artifact_sha256={{artifact_sha256}}
artifact_kind={{artifact_kind}}
rust_toolchain={{rust_toolchain}}
certbot_version=5.8.0

say() { echo "bookstore-bake: $*" | tee /dev/console >&2; }
failed() {
  say "BOOKSTORE-BAKE-FAILED at line $1"
  systemctl poweroff
}
trap 'failed $LINENO' ERR

say "installing packages"
dnf install -y --setopt=install_weak_deps=False mariadb105-server nginx openssl \
  python3.11 python3.11-pip e2fsprogs awscli-2 >/dev/null

say "installing certbot ${certbot_version}"
python3.11 -m venv /opt/bookstore/certbot
/opt/bookstore/certbot/bin/pip install --quiet --disable-pip-version-check "certbot==${certbot_version}"
/opt/bookstore/certbot/bin/certbot --version

{{install_app}}

say "installing the services"
getent passwd bookstore >/dev/null \
  || useradd --system --home-dir /var/lib/bookstore-data --no-create-home --shell /sbin/nologin bookstore
install -d -m 0755 /usr/local/libexec/bookstore /etc/bookstore /var/lib/bookstore-data
cat >/usr/local/libexec/bookstore/bookstore-setup <<'BOOKSTORE_SETUP_EOF'
{{setup}}
BOOKSTORE_SETUP_EOF
cat >/usr/local/libexec/bookstore/bookstore-cert <<'BOOKSTORE_CERT_EOF'
{{cert}}
BOOKSTORE_CERT_EOF
chmod 0755 /usr/local/libexec/bookstore/bookstore-setup /usr/local/libexec/bookstore/bookstore-cert
cat >/etc/nginx/nginx.conf <<'BOOKSTORE_NGINX_EOF'
{{nginx_conf}}
BOOKSTORE_NGINX_EOF
cat >/etc/systemd/system/bookstore-setup.service <<'BOOKSTORE_SETUP_UNIT_EOF'
{{setup_unit}}
BOOKSTORE_SETUP_UNIT_EOF
cat >/etc/systemd/system/bookstore.service <<'BOOKSTORE_UNIT_EOF'
{{unit}}
BOOKSTORE_UNIT_EOF
cat >/etc/systemd/system/bookstore@.service <<'BOOKSTORE_SPLIT_UNIT_EOF'
{{split_unit}}
BOOKSTORE_SPLIT_UNIT_EOF
cat >/etc/systemd/system/bookstore-cert.service <<'BOOKSTORE_CERT_UNIT_EOF'
{{cert_unit}}
BOOKSTORE_CERT_UNIT_EOF
cat >/etc/systemd/system/bookstore-cert.timer <<'BOOKSTORE_CERT_TIMER_EOF'
{{cert_timer}}
BOOKSTORE_CERT_TIMER_EOF
# MariaDB and nginx wait for the setup (drop-ins), which waits for the settings user-data writes.
for service in mariadb nginx; do
  install -d "/etc/systemd/system/${service}.service.d"
  printf '[Unit]\nRequires=bookstore-setup.service\nAfter=bookstore-setup.service\n' \
    >"/etc/systemd/system/${service}.service.d/bookstore.conf"
done
systemctl daemon-reload
systemctl enable bookstore-setup.service mariadb.service nginx.service bookstore.service bookstore-cert.timer
# The split's units are enabled by the user-data of the VMs that run it.

cloud-init clean --logs
say "BOOKSTORE-BAKE-OK ${artifact_sha256}"
systemctl poweroff
