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
# Empty for one process; for the split, `name:port:internal-port` per service.
split_services={{split_services}}

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
# The machine's settings; one process adds its address, the split where its keys are and where
# each service's internal API is.
cat >/etc/bookstore/bookstore.env <<BOOKSTORE_ENV_EOF
AWS_REGION=${region}
BOOKSTORE_TRUSTED_PROXIES=1
BOOKSTORE_DATA_DIR=/var/lib/bookstore
BOOKSTORE_UPLOADS_DIR=${uploads}
DATABASE_URL=${database_url}
BOOKSTORE_DB_SECRET_ARN=${db_secret_arn}
BOOKSTORE_DB_SECRET_FILE=${secret_file}
BOOKSTORE_ENV_EOF
chgrp bookstore /etc/bookstore/bookstore.env
if [[ -z "$split_services" ]]; then
  echo "BOOKSTORE_ADDR=0.0.0.0:${app_port}" >>/etc/bookstore/bookstore.env
  systemctl start bookstore.service
  exit 0
fi

# The split: three services on this machine, each its own unit, port, database and user. The
# machine's file names the master's database and secret, which only bookstore-split.service
# reads; each service's file overrides them with its own database and credentials (written by
# split-setup into /run/bookstore/split). The services call each other on loopback.
if [[ -z "$db_endpoint" ]]; then
  echo "the split needs the stack's database" >&2
  exit 1
fi
split_dir=/run/bookstore/split
tls="ssl-mode=verify_identity&ssl-ca=/etc/bookstore/rds-ca.pem"
{
  echo "BOOKSTORE_SPLIT_DIR=${split_dir}"
  echo "BOOKSTORE_INTERNAL_KEY_FILE=${split_dir}/internal-key"
  for entry in $split_services; do
    IFS=: read -r name _ internal <<<"$entry"
    echo "BOOKSTORE_${name^^}_URL=http://127.0.0.1:${internal}"
  done
} >>/etc/bookstore/bookstore.env
units=(bookstore-split.service)
for entry in $split_services; do
  IFS=: read -r name port internal <<<"$entry"
  identity=""
  if [[ "$name" == accounts ]]; then
    identity="BOOKSTORE_IDENTITY_KEY_FILE=${split_dir}/identity-key"
  fi
  cat >"/etc/bookstore/${name}.env" <<BOOKSTORE_SERVICE_ENV_EOF
BOOKSTORE_SERVICE=${name}
BOOKSTORE_ADDR=0.0.0.0:${port}
BOOKSTORE_INTERNAL_ADDR=127.0.0.1:${internal}
DATABASE_URL=mysql://${db_endpoint}/bookstore_${name}?${tls}
BOOKSTORE_DB_SECRET_FILE=${split_dir}/${name}-db.json
${identity}
BOOKSTORE_SERVICE_ENV_EOF
  chgrp bookstore "/etc/bookstore/${name}.env"
  units+=("bookstore@${name}.service")
done
# Enabled: the Learner Lab stops instances between sessions, and they must come back split.
systemctl enable --now "${units[@]}"
