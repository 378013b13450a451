//! The shared file system part: EFS (encrypted) with a mount target in every subnet, reachable
//! only from the clients' security group.

use super::{Builder, Ingress, Protocol, Ref, mount_target_key};
use super::{FileSystemSpec, MountTargetSpec, SecurityGroupSpec, network::Network};
use crate::stack::FileSystem;

pub struct Files {
    pub file_system: Ref,
    /// Clients mount at boot: these must exist first.
    pub mount_targets: Vec<Ref>,
}

/// EFS is always encrypted at rest (validation refuses `encrypted: false`).
pub fn efs(b: &mut Builder, net: &Network, clients: &str, _settings: &FileSystem) -> Files {
    let sg = b.add(
        "sg-efs",
        SecurityGroupSpec {
            vpc: net.vpc.clone(),
            description: "bookstore file system: NFS from the app instances only".into(),
            ingress: vec![Ingress {
                protocol: Protocol::Tcp,
                port: 2049,
                from_group: Some(clients.into()),
                description: "NFS from the app".into(),
            }],
        },
    );
    let file_system = b.add("efs", FileSystemSpec {});
    let mount_targets = net
        .subnets
        .iter()
        .map(|subnet| {
            b.add(
                &mount_target_key(subnet),
                MountTargetSpec {
                    file_system: file_system.clone(),
                    subnet: subnet.clone(),
                    security_group: sg.clone(),
                },
            )
        })
        .collect();
    Files {
        file_system,
        mount_targets,
    }
}
