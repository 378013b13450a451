//! The `monolith` stack: the whole BookStore on one VM (app, MariaDB and the TLS proxy) with an
//! Elastic IP and the database files on their own encrypted data volume, so that a new image, a
//! new instance type or a lost instance keeps every account and order. With
//! `database.placement: separate-vm` MariaDB runs on a second, private VM that admits 3306 from
//! the app VM's security group only.

use super::bake::{BakeInput, BakeOptions, Recipe};
use super::{Builder, Ingress, InstanceRole, Protocol, Ref, SecretContents, bake, edge, network};
use super::{ElasticIpSpec, InstanceSpec, SecretSpec, SecurityGroupSpec, VolumeSpec};
use crate::stack::{MonolithStack, Placement, TlsMode};

pub fn build(b: &mut Builder, monolith: &MonolithStack, input: &BakeInput) {
    let stack = b.stack;
    let db = &monolith.database;
    let tls = stack.tls.mode != TlsMode::None;
    let net = network::public(b);
    let ingress = edge::web_ingress(tls);
    let sg_web = b.add(
        "sg-web",
        SecurityGroupSpec {
            vpc: net.vpc.clone(),
            description: "bookstore monolith: HTTP/HTTPS from anywhere, nothing else".into(),
            ingress,
        },
    );
    let separate = db.placement == Placement::SeparateVm;
    let sg_db = separate.then(|| {
        b.add(
            "sg-db",
            SecurityGroupSpec {
                vpc: net.vpc.clone(),
                description: "bookstore database VM: MySQL from the app VM only".into(),
                ingress: vec![Ingress {
                    protocol: Protocol::Tcp,
                    port: 3306,
                    from_group: Some(sg_web.clone()),
                    description: "MySQL from the app VM".into(),
                }],
            },
        )
    });
    let eip = b.add("eip", ElasticIpSpec {});
    let volume = |size_gb| VolumeSpec {
        availability_zone: net.zones[0].clone(),
        size_gb,
        volume_type: "gp3".into(),
        final_snapshot: db.final_snapshot,
    };
    let data = b.add("data", volume(db.volume_gb));
    let image = bake::image(
        b,
        input,
        &net,
        BakeOptions {
            recipe: Recipe::Monolith,
            security_group: &sg_web,
            instance_type: &stack.instances.instance_type,
            volume_gb: stack.instances.volume_gb,
        },
    );
    let secret = separate.then(|| {
        b.add(
            "db-secret",
            SecretSpec {
                contents: SecretContents::DbCredentials,
            },
        )
    });
    let region = b.region.to_string();
    let instance = |security_group: Ref, address, data_volume, role| InstanceSpec {
        image: image.clone(),
        subnet: net.subnets[0].clone(),
        routes: net.routes.clone(),
        security_group,
        instance_type: stack.instances.instance_type.clone(),
        root_volume_gb: stack.instances.volume_gb,
        volume_type: stack.instances.volume_type.clone(),
        instance_profile: stack.instances.instance_profile.clone(),
        address,
        data_volume,
        secret: secret.clone(),
        region: region.clone(),
        role,
    };
    let database_vm = sg_db.map(|sg| {
        let db_data = b.add("db-data", volume(db.volume_gb));
        b.add(
            "db-vm",
            instance(sg, None, Some(db_data), InstanceRole::Database),
        )
    });
    let role = InstanceRole::App {
        app_port: stack.app.port,
        services: stack.app.services,
        tls_mode: stack.tls.mode,
        domain: stack.tls.domain.clone(),
        acme_server: stack.tls.acme_server.clone(),
        database: database_vm,
    };
    b.add("vm", instance(sg_web, Some(eip.clone()), Some(data), role));
    b.endpoint(&eip, "public_ip", tls);
}
