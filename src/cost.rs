//! What a stack costs while it runs: per resource and in total, per hour and per month (730 h), from
//! on-demand list prices kept in one dated table. Learner Lab budgets are small and an overrun ends
//! the account, so `plan` and `up` say it before anything runs. Traffic-driven charges (load
//! balancer capacity units, data transfer, requests) are left out and said to be.

use serde::Serialize;

use crate::plan::{Plan, Spec};

/// When the table was written. AWS changes prices rarely; check the pricing pages before trusting a
/// figure to the cent.
pub const PRICES_AS_OF: &str = "2026-12-01";
const HOURS_PER_MONTH: f64 = 730.0;

/// On-demand Linux prices, USD, identical in us-east-1 and us-west-2 for everything listed.
fn ec2_hourly(instance_type: &str) -> Option<f64> {
    Some(match instance_type {
        "t3.nano" => 0.0052,
        "t3.micro" => 0.0104,
        "t3.small" => 0.0208,
        "t3.medium" => 0.0416,
        "t3.large" => 0.0832,
        "t3a.micro" => 0.0094,
        "t3a.small" => 0.0188,
        "t3a.medium" => 0.0376,
        "t2.micro" => 0.0116,
        "t2.small" => 0.023,
        "t2.medium" => 0.0464,
        "m5.large" => 0.096,
        "c5.large" => 0.085,
        _ => return None,
    })
}

/// RDS for MySQL, single-AZ (multi-AZ costs twice).
fn rds_hourly(class: &str) -> Option<f64> {
    Some(match class {
        "db.t3.micro" => 0.017,
        "db.t3.small" => 0.034,
        "db.t3.medium" => 0.068,
        "db.t4g.micro" => 0.016,
        "db.t4g.small" => 0.032,
        "db.t4g.medium" => 0.065,
        _ => return None,
    })
}

const PUBLIC_IPV4_HOURLY: f64 = 0.005;
const ALB_HOURLY: f64 = 0.0225;
const EBS_GP3_GB_MONTH: f64 = 0.08;
const EBS_GP2_GB_MONTH: f64 = 0.10;
const SNAPSHOT_GB_MONTH: f64 = 0.05;
const RDS_STORAGE_GB_MONTH: f64 = 0.115;
const EFS_GB_MONTH: f64 = 0.30;
const S3_GB_MONTH: f64 = 0.023;
const SECRET_MONTH: f64 = 0.40;
const LAB_REGIONS_PRICED: &[&str] = &["us-east-1", "us-west-2"];

#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub key: String,
    /// What is charged, e.g. "2 × t3.micro + 2 public IPv4 + 16 GB gp3".
    pub what: String,
    pub hourly_usd: f64,
    pub monthly_usd: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub region: String,
    pub prices_as_of: &'static str,
    pub lines: Vec<Line>,
    pub hourly_usd: f64,
    pub monthly_usd: f64,
    /// How long a $100 Learner Lab budget lasts with the stack running around the clock.
    pub days_per_100_usd: f64,
    /// Resources whose price the table does not know (counted as 0).
    pub unpriced: Vec<String>,
    pub note: &'static str,
}

fn ebs_gb_month(volume_type: &str) -> f64 {
    if volume_type == "gp2" {
        EBS_GP2_GB_MONTH
    } else {
        EBS_GP3_GB_MONTH
    }
}

/// The whole plan's cost, as it will run.
pub fn estimate(plan: &Plan, region: &str) -> Estimate {
    estimate_of(plan, region, |_| true)
}

/// The cost of the planned resources `exists` says are there (`status`: what runs now).
pub fn estimate_of(plan: &Plan, region: &str, exists: impl Fn(&str) -> bool) -> Estimate {
    let mut lines = Vec::new();
    let mut unpriced = Vec::new();
    let mut add = |key: &str, what: String, hourly: f64| {
        lines.push(Line {
            key: key.to_string(),
            what,
            hourly_usd: hourly,
            monthly_usd: hourly * HOURS_PER_MONTH,
        })
    };
    for r in plan.resources.iter().filter(|r| exists(&r.key)) {
        let key = r.key.as_str();
        match &r.spec {
            Spec::Instance {
                instance_type,
                root_volume_gb,
                volume_type,
                address,
                role,
                ..
            } => {
                let Some(compute) = ec2_hourly(instance_type) else {
                    unpriced.push(format!("{key} ({instance_type})"));
                    continue;
                };
                // A swarm node gets a public address from its subnet; a monolith VM's is its
                // Elastic IP (priced there); the private database VM has none.
                let public =
                    address.is_none() && matches!(role, crate::plan::InstanceRole::Swarm { .. });
                let disk = *root_volume_gb as f64 * ebs_gb_month(volume_type) / HOURS_PER_MONTH;
                let ip = if public { PUBLIC_IPV4_HOURLY } else { 0.0 };
                add(
                    key,
                    format!(
                        "{instance_type} + {root_volume_gb} GB {volume_type}{}",
                        if public { " + public IPv4" } else { "" }
                    ),
                    compute + disk + ip,
                );
            }
            Spec::AutoScalingGroup {
                launch_template,
                desired,
                ..
            } => {
                let Some(Spec::LaunchTemplate {
                    instance_type,
                    volume_gb,
                    volume_type,
                    ..
                }) = plan.get(launch_template).map(|d| &d.spec)
                else {
                    continue;
                };
                let Some(compute) = ec2_hourly(instance_type) else {
                    unpriced.push(format!("{key} ({instance_type})"));
                    continue;
                };
                let each = compute
                    + *volume_gb as f64 * ebs_gb_month(volume_type) / HOURS_PER_MONTH
                    + PUBLIC_IPV4_HOURLY;
                add(
                    key,
                    format!(
                        "{desired} × ({instance_type} + {volume_gb} GB {volume_type} + public IPv4), more when it scales out"
                    ),
                    each * *desired as f64,
                );
            }
            Spec::LoadBalancer { .. } => add(
                key,
                "application load balancer + 2 public IPv4 (plus capacity units for traffic)"
                    .into(),
                ALB_HOURLY + 2.0 * PUBLIC_IPV4_HOURLY,
            ),
            Spec::Database {
                instance_class,
                storage_gb,
                multi_az,
                ..
            } => {
                match rds_hourly(instance_class) {
                    Some(compute) => {
                        let copies = if *multi_az { 2.0 } else { 1.0 };
                        add(
                            key,
                            format!(
                                "{instance_class}{} + {storage_gb} GB storage",
                                if *multi_az { " multi-AZ" } else { "" }
                            ),
                            copies
                                * (compute
                                    + *storage_gb as f64 * RDS_STORAGE_GB_MONTH / HOURS_PER_MONTH),
                        );
                    }
                    None => unpriced.push(format!("{key} ({instance_class})")),
                }
                // RDS's managed master password is a Secrets Manager secret too.
                add(
                    &format!("{key}-secret"),
                    "Secrets Manager secret (RDS's managed password)".into(),
                    SECRET_MONTH / HOURS_PER_MONTH,
                );
            }
            Spec::ElasticIp => add(key, "public IPv4 (Elastic IP)".into(), PUBLIC_IPV4_HOURLY),
            Spec::Volume {
                size_gb,
                volume_type,
                ..
            } => add(
                key,
                format!("{size_gb} GB {volume_type}"),
                *size_gb as f64 * ebs_gb_month(volume_type) / HOURS_PER_MONTH,
            ),
            Spec::Image {
                volume_gb,
                instance_type,
                ..
            } => add(
                key,
                format!(
                    "{volume_gb} GB snapshot (and its {instance_type} builder for the bake's minutes)"
                ),
                *volume_gb as f64 * SNAPSHOT_GB_MONTH / HOURS_PER_MONTH,
            ),
            Spec::FileSystem => add(
                key,
                "EFS at ~1 GB of covers (by the GB stored)".into(),
                EFS_GB_MONTH / HOURS_PER_MONTH,
            ),
            Spec::Bucket => add(
                key,
                "S3 at ~1 GB (the app artifacts)".into(),
                S3_GB_MONTH / HOURS_PER_MONTH,
            ),
            Spec::Secret { .. } => add(
                key,
                "Secrets Manager secret".into(),
                SECRET_MONTH / HOURS_PER_MONTH,
            ),
            // No hourly price of their own (named one by one: a new kind must say what it costs).
            Spec::Vpc { .. }
            | Spec::Subnet { .. }
            | Spec::InternetGateway { .. }
            | Spec::RouteTable { .. }
            | Spec::SecurityGroup { .. }
            | Spec::Certificate { .. }
            | Spec::TargetGroup { .. }
            | Spec::DbSubnetGroup { .. }
            | Spec::MountTarget { .. }
            | Spec::Listener { .. }
            | Spec::LaunchTemplate { .. }
            | Spec::Targets { .. } => {}
        }
    }
    if !LAB_REGIONS_PRICED.contains(&region) {
        unpriced.push(format!(
            "prices are us-east-1/us-west-2 list prices, not {region}'s"
        ));
    }
    let hourly: f64 = lines.iter().map(|l| l.hourly_usd).sum();
    Estimate {
        region: region.to_string(),
        prices_as_of: PRICES_AS_OF,
        lines,
        hourly_usd: hourly,
        monthly_usd: hourly * HOURS_PER_MONTH,
        days_per_100_usd: if hourly > 0.0 {
            100.0 / (hourly * 24.0)
        } else {
            f64::INFINITY
        },
        unpriced,
        note: "on-demand list prices; traffic, requests and data transfer not included; no NAT gateway is ever made",
    }
}

/// One line for `up`'s progress: "about $0.09/hour ($66/month): a $100 budget lasts 46 days".
pub fn summary(e: &Estimate) -> String {
    format!(
        "cost: about ${:.3}/hour (${:.0}/month) running around the clock; a $100 budget lasts {:.0} days (list prices of {})",
        e.hourly_usd, e.monthly_usd, e.days_per_100_usd, e.prices_as_of
    )
}
