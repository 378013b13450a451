//! The shared file system part: EFS (encrypted) with a mount target in every subnet, reachable
//! only from the clients' security group.

use super::network::Network;
use super::{Builder, Ingress, Protocol, Ref, Spec, mount_target_key};

pub struct Files {
    pub file_system: Ref,
    /// Clients mount at boot: these must exist first.
    pub mount_targets: Vec<Ref>,
}

pub fn efs(b: &mut Builder, net: &Network, clients: &str) -> Option<Files> {
    b.stack.file_system.as_ref()?;
    let sg = b.add(
        "sg-efs",
        Spec::SecurityGroup {
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
    let file_system = b.add("efs", Spec::FileSystem);
    let mount_targets = net
        .subnets
        .iter()
        .map(|subnet| {
            b.add(
                &mount_target_key(subnet),
                Spec::MountTarget {
                    file_system: file_system.clone(),
                    subnet: subnet.clone(),
                    security_group: sg.clone(),
                },
            )
        })
        .collect();
    Some(Files {
        file_system,
        mount_targets,
    })
}
