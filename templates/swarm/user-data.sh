#!/bin/bash
# User-data of a swarm node. Docker, the app's image and the bootstrap are in the AMI; this writes
# the node's settings and the stack file, then starts the bootstrap. It carries no secret: the join
# tokens and the database credentials stay in Secrets Manager.
# Rendered by bookstore (src/templates.rs): values are shell-quoted.
set -euo pipefail

umask 022
install -d -m 0755 /etc/bookstore
# A quoted heredoc: the values stay shell-quoted and are read back by sourcing the file.
cat >/etc/bookstore/swarm.env <<'BOOKSTORE_SETTINGS_EOF'
node={{node}}
key={{key}}
region={{region}}
tokens_secret_arn={{tokens_secret_arn}}
release_secret_arn={{release_secret_arn}}
status_secret_arn={{status_secret_arn}}
db_secret_arn={{db_secret_arn}}
secret_name={{secret_name}}
file_system_id={{file_system_id}}
# Empty for one service; for the split, `name:port:internal-port` per service, and the master's
# database (split-setup makes the services' databases and users there).
split_services={{split_services}}
database_url={{database_url}}
uploads=/mnt/efs/uploads
stack_file=/etc/bookstore/stack.yml
BOOKSTORE_SETTINGS_EOF
cat >/etc/bookstore/stack.yml <<'BOOKSTORE_STACK_EOF'
{{stack}}
BOOKSTORE_STACK_EOF
systemctl start bookstore-swarm-node.service
systemctl start bookstore-swarm-sync.timer
