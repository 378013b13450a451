#!/bin/bash
# User-data of the app instances. The app is already installed in the AMI; this only wires the
# configuration of this stack and starts the service. It carries no secret: the database credentials
# stay in Secrets Manager and are read at service start with the instance profile's credentials.
# Rendered by bookstore (src/templates.rs): values are shell-quoted.
set -euo pipefail

region={{region}}
app_port={{app_port}}
db_endpoint={{db_endpoint}}
db_secret_arn={{db_secret_arn}}
file_system_id={{file_system_id}}

uploads=/var/lib/bookstore/uploads
if [[ -n "$file_system_id" ]]; then
  # Shared covers on EFS, NFS over TLS through the mount helper; _netdev waits for the network.
  install -d -o bookstore -g bookstore -m 0750 "$uploads"
  if ! grep -q " $uploads " /etc/fstab; then
    echo "${file_system_id}:/ $uploads efs _netdev,noresvport,tls 0 0" >>/etc/fstab
  fi
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    mount "$uploads" && break
    echo "mounting ${file_system_id} failed (attempt $attempt); its mount target may still be starting" >&2
    sleep 6
  done
  mountpoint -q "$uploads"
  chown bookstore:bookstore "$uploads"
fi

database_url=""
secret_file=""
if [[ -n "$db_endpoint" ]]; then
  # TLS, with the server's name checked against RDS's CAs (baked into the image).
  database_url="mysql://${db_endpoint}/bookstore?ssl-mode=verify_identity&ssl-ca=/etc/bookstore/rds-ca.pem"
  secret_file=/run/bookstore/db-secret.json
fi

umask 027
cat >/etc/bookstore/bookstore.env <<BOOKSTORE_ENV_EOF
AWS_REGION=${region}
BOOKSTORE_ADDR=0.0.0.0:${app_port}
BOOKSTORE_TRUSTED_PROXIES=1
BOOKSTORE_DATA_DIR=/var/lib/bookstore
BOOKSTORE_UPLOADS_DIR=${uploads}
DATABASE_URL=${database_url}
BOOKSTORE_DB_SECRET_ARN=${db_secret_arn}
BOOKSTORE_DB_SECRET_FILE=${secret_file}
BOOKSTORE_ENV_EOF
chgrp bookstore /etc/bookstore/bookstore.env

systemctl start bookstore.service
