//! The managed database part: RDS MySQL in the stack's subnets, reachable only from the clients'
//! security group.

use super::{Builder, Ingress, Protocol, Ref};
use super::{DatabaseSpec, DbSubnetGroupSpec, SecurityGroupSpec, network::Network};
use crate::stack::Database;

/// Adds the database's security group, subnet group and instance; returns the database's key.
pub fn managed(b: &mut Builder, net: &Network, clients: &str, db: &Database) -> Ref {
    let sg = b.add(
        "sg-db",
        SecurityGroupSpec {
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
        DbSubnetGroupSpec {
            subnets: net.subnets.clone(),
        },
    );
    b.add(
        "db",
        DatabaseSpec {
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
    )
}
