//! The managed database part: RDS MySQL in the stack's subnets, reachable only from the clients'
//! security group.

use super::network::Network;
use super::{Builder, Ingress, Protocol, Ref, Spec};

/// Adds the database's security group, subnet group and instance; returns the database's key.
pub fn managed(b: &mut Builder, net: &Network, clients: &str) -> Option<Ref> {
    let db = b.stack.database.clone()?;
    let sg = b.add(
        "sg-db",
        Spec::SecurityGroup {
            vpc: net.vpc.clone(),
            description: "bookstore database: MySQL from the app instances only".into(),
            ingress: vec![Ingress {
                protocol: Protocol::Tcp,
                port: 3306,
                from_group: Some(clients.into()),
                description: "MySQL from the app".into(),
            }],
        },
    );
    let subnet_group = b.add(
        "db-subnets",
        Spec::DbSubnetGroup {
            subnets: net.subnets.clone(),
        },
    );
    Some(b.add(
        "db",
        Spec::Database {
            subnet_group,
            security_group: sg,
            engine_version: db.engine_version.clone(),
            instance_class: db.instance_class.clone(),
            storage_gb: db.storage_gb,
            storage_type: db.storage_type.clone(),
            backup_retention_days: db.backup_retention_days,
            multi_az: db.multi_az,
            final_snapshot: db.final_snapshot,
        },
    ))
}
