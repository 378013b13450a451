#!/bin/bash
# bookstore: the app's covers directory on EFS, owned by the app's user (uid 10001), made once by
# every node as it boots (EKS's nodeadm runs this part beside its own). The pods mount it with a
# NFS PersistentVolume, which cannot set an owner: without this the non-root app cannot write there.
set -euo pipefail
server={{efs}}
mnt=${BOOKSTORE_EFS_MOUNT:-/mnt/bookstore-efs}
mkdir -p "$mnt"
# The mount targets answer a little after the node boots: try for 5 minutes.
for _ in $(seq 1 30); do
  if mount -t nfs4 -o nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport \
    "$server:/" "$mnt"; then
    install -d -o 10001 -g 10001 -m 0750 "$mnt/uploads"
    umount "$mnt"
    exit 0
  fi
  sleep 10
done
echo "bookstore: cannot mount $server: the covers directory is not made" >&2
exit 1
