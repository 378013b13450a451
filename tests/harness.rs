//! The test world itself: the harness must refuse what AWS refuses and keep new resources pending
//! for the resources the asg stack's second half uses (databases, file systems, instances, images,
//! Auto Scaling groups), or tests against it prove little.

mod common;

use std::time::Duration;

use aws_sdk_ec2::error::ProvideErrorMetadata;
use common::Moto;

const PENDING: f64 = 2.0;

#[test]
fn slow_creations_and_strict_deletes_for_databases_file_systems_instances_and_groups() {
    let moto = Moto::start(PENDING);
    let aws = moto.aws();
    aws.rt.block_on(async {
        let vpc = aws
            .ec2
            .create_vpc()
            .cidr_block("10.50.0.0/16")
            .send()
            .await
            .unwrap();
        let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
        let mut subnets = Vec::new();
        for (cidr, zone) in [
            ("10.50.1.0/24", "us-east-1a"),
            ("10.50.2.0/24", "us-east-1b"),
        ] {
            let s = aws
                .ec2
                .create_subnet()
                .vpc_id(&vpc)
                .cidr_block(cidr)
                .availability_zone(zone)
                .send()
                .await
                .unwrap();
            subnets.push(s.subnet().unwrap().subnet_id().unwrap().to_string());
        }

        aws.rds
            .create_db_subnet_group()
            .db_subnet_group_name("db-net")
            .db_subnet_group_description("d")
            .set_subnet_ids(Some(subnets.clone()))
            .send()
            .await
            .unwrap();
        aws.rds
            .create_db_instance()
            .db_instance_identifier("shop-db")
            .engine("mysql")
            .db_instance_class("db.t3.micro")
            .allocated_storage(20)
            .master_username("admin")
            .manage_master_user_password(true)
            .db_subnet_group_name("db-net")
            .send()
            .await
            .unwrap();
        let fs = aws
            .efs
            .create_file_system()
            .creation_token("shop-fs")
            .encrypted(true)
            .send()
            .await
            .unwrap();
        let fs_id = fs.file_system_id().to_string();
        assert_eq!(fs.life_cycle_state().as_str(), "creating");
        let mt = aws
            .efs
            .create_mount_target()
            .file_system_id(&fs_id)
            .subnet_id(&subnets[0])
            .send()
            .await
            .unwrap();
        assert_eq!(mt.life_cycle_state().as_str(), "creating");
        let images = aws
            .ec2
            .describe_images()
            .owners("amazon")
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("name")
                    .values("al2023-ami-2023*-x86_64")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let ami = images.images()[0].image_id().unwrap().to_string();
        let run = aws
            .ec2
            .run_instances()
            .image_id(&ami)
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .subnet_id(&subnets[0])
            .send()
            .await
            .unwrap();
        let instance = run.instances()[0].instance_id().unwrap().to_string();
        let state = |out: &aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput| {
            out.reservations()[0].instances()[0]
                .state()
                .unwrap()
                .name()
                .unwrap()
                .as_str()
                .to_string()
        };
        assert_eq!(
            state(
                &aws.ec2
                    .describe_instances()
                    .instance_ids(&instance)
                    .send()
                    .await
                    .unwrap()
            ),
            "pending"
        );
        let image = aws
            .ec2
            .create_image()
            .instance_id(&instance)
            .name("baked")
            .send()
            .await
            .unwrap()
            .image_id()
            .unwrap()
            .to_string();
        let image_state = || async {
            aws.ec2
                .describe_images()
                .image_ids(&image)
                .send()
                .await
                .unwrap()
                .images()[0]
                .state()
                .unwrap()
                .as_str()
                .to_string()
        };
        assert_eq!(image_state().await, "pending");
        let db_status = || async {
            aws.rds
                .describe_db_instances()
                .db_instance_identifier("shop-db")
                .send()
                .await
                .unwrap()
                .db_instances()[0]
                .db_instance_status()
                .unwrap()
                .to_string()
        };
        assert_eq!(db_status().await, "creating");

        // Deletes AWS refuses.
        let e = aws
            .rds
            .delete_db_subnet_group()
            .db_subnet_group_name("db-net")
            .send()
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("InvalidDBSubnetGroupStateFault"));
        let e = aws
            .rds
            .delete_db_instance()
            .db_instance_identifier("shop-db")
            .send()
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("InvalidParameterCombination"));
        let e = aws
            .ec2
            .delete_subnet()
            .subnet_id(&subnets[0])
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            e.code(),
            Some("DependencyViolation"),
            "an instance and a mount target are in it"
        );

        tokio::time::sleep(Duration::from_secs_f64(PENDING + 1.0)).await;
        assert_eq!(db_status().await, "available");
        assert_eq!(image_state().await, "available");
        assert_eq!(
            state(
                &aws.ec2
                    .describe_instances()
                    .instance_ids(&instance)
                    .send()
                    .await
                    .unwrap()
            ),
            "running"
        );
        let fs = aws
            .efs
            .describe_file_systems()
            .file_system_id(&fs_id)
            .send()
            .await
            .unwrap();
        assert_eq!(
            fs.file_systems()[0].life_cycle_state().as_str(),
            "available"
        );

        // An Auto Scaling group with instances is deleted only with ForceDelete.
        aws.ec2
            .create_launch_template()
            .launch_template_name("web-lt")
            .launch_template_data(
                aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                    .image_id(&image)
                    .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        aws.asg
            .create_auto_scaling_group()
            .auto_scaling_group_name("group")
            .launch_template(
                aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                    .launch_template_name("web-lt")
                    .build(),
            )
            .min_size(1)
            .max_size(2)
            .desired_capacity(1)
            .vpc_zone_identifier(subnets.join(","))
            .send()
            .await
            .unwrap();
        let e = aws
            .asg
            .delete_auto_scaling_group()
            .auto_scaling_group_name("group")
            .send()
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("ResourceInUse"));
        aws.asg
            .delete_auto_scaling_group()
            .auto_scaling_group_name("group")
            .force_delete(true)
            .send()
            .await
            .unwrap();
        aws.rds
            .delete_db_instance()
            .db_instance_identifier("shop-db")
            .skip_final_snapshot(true)
            .send()
            .await
            .unwrap();
        aws.rds
            .delete_db_subnet_group()
            .db_subnet_group_name("db-net")
            .send()
            .await
            .unwrap();
    });
}

/// What the monolith relies on: Elastic IPs, data volumes and instances refuse what AWS refuses.
#[test]
fn elastic_ips_volumes_and_instances_are_strict_like_aws() {
    let moto = Moto::start(1.0);
    let aws = moto.aws();
    let code = |e: &dyn ProvideErrorMetadata| e.code().unwrap_or_default().to_string();
    aws.rt.block_on(async {
        let vpc = aws
            .ec2
            .create_vpc()
            .cidr_block("10.60.0.0/16")
            .send()
            .await
            .unwrap();
        let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
        tokio::time::sleep(Duration::from_secs_f64(1.2)).await;
        let subnet = aws
            .ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block("10.60.1.0/24")
            .availability_zone("us-east-1a")
            .send()
            .await
            .unwrap();
        let subnet = subnet.subnet().unwrap().subnet_id().unwrap().to_string();
        tokio::time::sleep(Duration::from_secs_f64(1.2)).await;
        let images = aws
            .ec2
            .describe_images()
            .owners("amazon")
            .send()
            .await
            .unwrap();
        let ami = images.images()[0].image_id().unwrap().to_string();
        let run = aws
            .ec2
            .run_instances()
            .image_id(&ami)
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .network_interfaces(
                aws_sdk_ec2::types::InstanceNetworkInterfaceSpecification::builder()
                    .device_index(0)
                    .subnet_id(&subnet)
                    .associate_public_ip_address(true)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let instance = run.instances()[0].instance_id().unwrap().to_string();
        let volume = |zone: &'static str| {
            aws.ec2
                .create_volume()
                .availability_zone(zone)
                .size(1)
                .encrypted(true)
                .send()
        };
        let data = volume("us-east-1a")
            .await
            .unwrap()
            .volume_id()
            .unwrap()
            .to_string();
        let elsewhere = volume("us-east-1b")
            .await
            .unwrap()
            .volume_id()
            .unwrap()
            .to_string();
        let attach = |v: String| {
            aws.ec2
                .attach_volume()
                .volume_id(v)
                .instance_id(&instance)
                .device("/dev/sdf")
                .send()
        };
        // Pending instance, creating volume: AWS refuses both.
        let e = attach(data.clone()).await.unwrap_err();
        assert_eq!(code(e.as_service_error().unwrap()), "IncorrectState");
        let eip = aws.ec2.allocate_address().send().await.unwrap();
        let allocation = eip.allocation_id().unwrap().to_string();
        let e = aws
            .ec2
            .associate_address()
            .allocation_id(&allocation)
            .instance_id(&instance)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            code(e.as_service_error().unwrap()),
            "IncorrectInstanceState"
        );
        tokio::time::sleep(Duration::from_secs_f64(1.3)).await;

        let e = attach(elsewhere.clone()).await.unwrap_err();
        assert_eq!(
            code(e.as_service_error().unwrap()),
            "InvalidVolume.ZoneMismatch"
        );
        attach(data.clone()).await.unwrap();
        let e = aws
            .ec2
            .delete_volume()
            .volume_id(&data)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(e.as_service_error().unwrap()), "VolumeInUse");

        // Without an Elastic IP a stop/start changes the public address; with one it stays.
        let public_ip = |aws: &common::Aws| {
            let instance = instance.clone();
            let ec2 = aws.ec2.clone();
            async move {
                let out = ec2
                    .describe_instances()
                    .instance_ids(instance)
                    .send()
                    .await
                    .unwrap();
                out.reservations()[0].instances()[0]
                    .public_ip_address()
                    .map(str::to_string)
            }
        };
        let restart = || async {
            aws.ec2
                .stop_instances()
                .instance_ids(&instance)
                .send()
                .await
                .unwrap();
            aws.ec2
                .start_instances()
                .instance_ids(&instance)
                .send()
                .await
                .unwrap();
        };
        let before = public_ip(&aws).await;
        assert!(
            before.as_deref().is_some_and(|ip| ip.starts_with("127.")),
            "{before:?}: loopback only"
        );
        restart().await;
        let after = public_ip(&aws).await;
        assert_ne!(before, after, "a new public IP after stop/start");
        aws.ec2
            .associate_address()
            .allocation_id(&allocation)
            .instance_id(&instance)
            .send()
            .await
            .unwrap();
        let with_eip = public_ip(&aws).await;
        assert_eq!(with_eip.as_deref(), eip.public_ip());
        restart().await;
        assert_eq!(
            public_ip(&aws).await,
            with_eip,
            "the Elastic IP survives stop/start"
        );

        let e = aws
            .ec2
            .release_address()
            .allocation_id(&allocation)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            code(e.as_service_error().unwrap()),
            "InvalidIPAddress.InUse"
        );

        // Terminating the instance frees both.
        aws.ec2
            .terminate_instances()
            .instance_ids(&instance)
            .send()
            .await
            .unwrap();
        aws.ec2
            .delete_volume()
            .volume_id(&data)
            .send()
            .await
            .unwrap();
        aws.ec2
            .release_address()
            .allocation_id(&allocation)
            .send()
            .await
            .unwrap();
    });
}

/// Each rule of the model check bites: one request that AWS refuses per rule (botocore sends it
/// as written, its own validation off) is refused by the harness with AWS's error code, and is
/// listed among the run's violations. The test takes back exactly what it caused on purpose.
#[test]
fn every_rule_of_the_model_check_refuses_what_aws_refuses() {
    let moto = Moto::start(0.0);
    let out = std::process::Command::new(common::manifest_dir().join(".venv/bin/python"))
        .arg(common::manifest_dir().join("tests/harness/bad_requests.py"))
        .arg(moto.port.to_string())
        .output()
        .expect("run tests/harness/bad_requests.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected_codes = [
        ("model:required", "ValidationError"),
        ("model:enum", "InvalidParameterValue"),
        ("model:length", "ValidationException"),
        ("model:pattern", "BadRequest"),
        ("model:range", "ValidationError"),
        ("model:type", "InvalidParameterValue"),
        ("model:unknown-parameter", "UnknownParameter"),
        ("model:operation", "InvalidAction"),
        ("limit:user-data", "InvalidParameterValue"),
        ("limit:tags-count", "TagLimitExceeded"),
        ("limit:tag-key", "InvalidParameterValue"),
        ("limit:tag-value", "InvalidParameterValue"),
        ("limit:tag-aws-prefix", "InvalidParameterValue"),
        ("limit:elb-name", "ValidationError"),
        ("limit:health-check-timeout", "ValidationError"),
        ("limit:ssl-policy", "SSLPolicyNotFound"),
        ("limit:rds-identifier", "InvalidParameterValue"),
        ("limit:rds-subnet-group-name", "InvalidParameterValue"),
        ("limit:bucket-name", "InvalidBucketName"),
        ("limit:security-group-name", "InvalidParameterValue"),
        ("limit:security-group-description", "InvalidParameterValue"),
        (
            "limit:launch-template-name",
            "InvalidLaunchTemplateName.MalformedException",
        ),
        ("limit:asg-name", "ValidationError"),
        ("limit:rule-values", "TooManyConditionValues"),
        ("limit:rule-wildcards", "ValidationError"),
        ("limit:rule-path-pattern", "ValidationError"),
    ];
    let answers: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(answers.len(), 33, "one answer per bad request");
    for (rule, code) in expected_codes {
        let sent: Vec<&serde_json::Value> = answers.iter().filter(|a| a["rule"] == rule).collect();
        assert!(!sent.is_empty(), "no bad request for {rule}");
        for a in sent {
            assert_eq!(
                a["code"].as_str(),
                Some(code),
                "{rule}: the harness answered {a}"
            );
        }
    }
    // Every refusal is listed, with its rule, for the end of the run; the test takes back its
    // own, request by request. Some requests break more than one rule (both are listed).
    let seen = moto.violations();
    for a in &answers {
        let rule = a["rule"].as_str().unwrap();
        assert!(
            seen.iter()
                .any(|v| v["rule"] == rule && v["message"].as_str() == a["message"].as_str()),
            "{rule} is not listed among the violations: {seen:?}"
        );
    }
    // This emulator saw only the bad requests above: everything listed was caused on purpose.
    let expected: Vec<(&str, &str)> = seen
        .iter()
        .map(|v| (v["action"].as_str().unwrap(), v["rule"].as_str().unwrap()))
        .collect();
    let left = moto.take_violations(&expected);
    assert!(left.is_empty(), "{left:?}");
    // A request AWS takes is taken here too, and leaves nothing listed.
    let aws = moto.aws();
    aws.rt.block_on(async {
        aws.ec2
            .create_vpc()
            .cidr_block("10.60.0.0/16")
            .send()
            .await
            .unwrap();
    });
    assert!(moto.violations().is_empty());
}

/// The model check reads every constraint of the services bookstore calls: each `pattern` of
/// their models compiles (Java regexes, read by Python's `re` or the `regex` module), so none is
/// skipped in silence.
#[test]
fn every_pattern_of_the_models_bookstore_calls_is_checked() {
    let script = r#"
import sys
sys.path.insert(0, sys.argv[1])
import model_check as mc
services = ["ec2", "elbv2", "autoscaling", "rds", "efs", "acm", "ssm", "secretsmanager", "s3", "sts", "iam"]
total = unread = 0
for svc in services:
    for name, shape in mc.model(svc)["shapes"].items():
        if "pattern" in shape:
            total += 1
            if mc._pattern(shape["pattern"]) is None:
                unread += 1
                print("unread", svc, name, shape["pattern"].encode("unicode_escape").decode())
print("total", total, "unread", unread)
"#;
    let out = std::process::Command::new(common::manifest_dir().join(".venv/bin/python"))
        .arg("-c")
        .arg(script)
        .arg(common::manifest_dir().join("tests/harness"))
        .output()
        .expect("run the harness's python");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = text.lines().last().unwrap_or_default();
    let total: usize = last
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(total > 300, "the models carry hundreds of patterns: {text}");
    assert!(last.ends_with("unread 0"), "{text}");
}
