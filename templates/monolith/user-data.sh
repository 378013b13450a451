#!/bin/bash
# User-data of a monolith instance. Everything is installed in the AMI; this writes the stack's
# settings for bookstore-setup and starts the services. It carries no secret: the database
# password is made on the instance at first boot and kept on the encrypted data volume.
# Rendered by bookstore (src/templates.rs): values are shell-quoted.
set -euo pipefail

role={{role}}
# Empty for one process; for the split, `name:port:internal-port` per service.
split_services={{split_services}}
umask 022
install -d -m 0755 /etc/bookstore
# A quoted heredoc: the values stay shell-quoted and are read back by sourcing the file.
cat >/etc/bookstore/monolith.env <<'BOOKSTORE_SETTINGS_EOF'
role={{role}}
data_volume_id={{data_volume_id}}
data_dir=/var/lib/bookstore-data
etc_dir=/etc/bookstore
run_dir=/run/bookstore
app_port={{app_port}}
db_host={{db_host}}
mysql_conf=/etc/my.cnf.d/bookstore.cnf
mysql_socket=/var/lib/mysql/mysql.sock
mysql_port=3306
mysql_user=mysql
service_user=bookstore
tls_mode={{tls_mode}}
public_ip={{public_ip}}
domain={{domain}}
acme_server={{acme_server}}
db_secret_arn={{db_secret_arn}}
region={{region}}
app_bin=/usr/local/bin/bookstore-app
split_services={{split_services}}
split_routes={{split_routes}}
certbot=/opt/bookstore/certbot/bin/certbot
nginx_conf=/etc/nginx/conf.d/bookstore.conf
nginx_reload="systemctl reload nginx"
http_port=80
https_port=443
BOOKSTORE_SETTINGS_EOF

if [[ "$role" == db ]]; then
  systemctl start bookstore-setup.service mariadb.service
  systemctl disable --now nginx.service bookstore.service bookstore-cert.timer
elif [[ -z "$split_services" ]]; then
  systemctl start bookstore-setup.service mariadb.service nginx.service bookstore.service
  systemctl start bookstore-cert.service || true # retried hourly by its timer
else
  # The split: three services behind nginx, enabled so that they come back after a stop.
  systemctl start bookstore-setup.service mariadb.service nginx.service
  units=()
  for entry in $split_services; do units+=("bookstore@${entry%%:*}.service"); done
  systemctl enable --now "${units[@]}"
  systemctl start bookstore-cert.service || true # retried hourly by its timer
fi
