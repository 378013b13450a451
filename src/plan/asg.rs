//! The `asg` stack: an Auto Scaling group of instances from the baked AMI behind the HTTPS load
//! balancer, with RDS MySQL and EFS for the covers. Split, every instance runs the three services,
//! each on its own port and target group; they call each other's internal API on loopback, so no
//! security group opens it at all.

use super::bake::{BakeInput, BakeOptions, Recipe};
use super::{AutoScalingGroupSpec, LaunchTemplateSpec, SecurityGroupSpec};
use super::{Builder, bake, database, edge, files, network};
use crate::stack::{AsgStack, Services};

/// How long instances may boot before the load balancer's health checks count.
const HEALTH_CHECK_GRACE_SECONDS: u32 = 300;

pub fn build(b: &mut Builder, asg: &AsgStack, input: &BakeInput) {
    let stack = b.stack;
    let net = network::public(b);
    let sg_lb = edge::security_group(b, &net);
    let (targets, ingress) = edge::app_targets(
        stack.app.services,
        &sg_lb,
        stack.app.port,
        |s| s.port(&stack.app),
        ("app port", "service"),
    );
    let sg_app = b.add(
        "sg-app",
        SecurityGroupSpec {
            vpc: net.vpc.clone(),
            // Unchanged for a single process: a new description would replace the group.
            description: match stack.app.services {
                Services::Single => "bookstore app instances: app port from the load balancer only",
                Services::Split => {
                    "bookstore app instances: service ports from the load balancer only"
                }
            }
            .into(),
            ingress,
        },
    );
    let db = database::managed(b, &net, &sg_app, &asg.database);
    let files = files::efs(b, &net, &sg_app, &asg.file_system);
    let edge = edge::load_balancer(b, &net, sg_lb, &asg.load_balancer, targets);
    let image = bake::image(
        b,
        input,
        &net,
        BakeOptions {
            recipe: Recipe::Asg,
            security_group: &sg_app,
            instance_type: &stack.instances.instance_type,
            volume_gb: stack.instances.volume_gb,
        },
    );
    let lt = b.add(
        "lt",
        LaunchTemplateSpec {
            image,
            security_group: sg_app,
            instance_type: stack.instances.instance_type.clone(),
            volume_gb: stack.instances.volume_gb,
            volume_type: stack.instances.volume_type.clone(),
            instance_profile: stack.instances.instance_profile.clone(),
            app_port: stack.app.port,
            services: stack.app.services,
            region: b.region.to_string(),
            database: Some(db),
            file_system: Some(files.file_system),
            mount_targets: files.mount_targets,
        },
    );
    b.add(
        "asg",
        AutoScalingGroupSpec {
            launch_template: lt,
            subnets: net.subnets.clone(),
            target_groups: edge.target_groups,
            load_balancer: edge.load_balancer,
            min: stack.instances.min,
            max: stack.instances.max,
            desired: stack.instances.desired,
            health_check_grace_seconds: HEALTH_CHECK_GRACE_SECONDS,
            scaling: Some(asg.scaling.clone()),
        },
    );
}
