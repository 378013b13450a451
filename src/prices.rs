//! On-demand list prices, USD, identical in us-east-1 and us-west-2 for everything listed, as of
//! `PRICES_AS_OF`. Each kind prices itself from them (`Module::cost`); `cost` adds them up.

/// When the table was written. AWS changes prices rarely; check the pricing pages before trusting a
/// figure to the cent.
pub const PRICES_AS_OF: &str = "2026-12-01";
pub const HOURS_PER_MONTH: f64 = 730.0;

/// EC2 on-demand Linux, per hour.
pub fn ec2_hourly(instance_type: &str) -> Option<f64> {
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
pub fn rds_hourly(class: &str) -> Option<f64> {
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

pub const PUBLIC_IPV4_HOURLY: f64 = 0.005;
pub const ALB_HOURLY: f64 = 0.0225;
pub const EBS_GP3_GB_MONTH: f64 = 0.08;
pub const EBS_GP2_GB_MONTH: f64 = 0.10;
pub const SNAPSHOT_GB_MONTH: f64 = 0.05;
pub const RDS_STORAGE_GB_MONTH: f64 = 0.115;
pub const EFS_GB_MONTH: f64 = 0.30;
pub const S3_GB_MONTH: f64 = 0.023;
pub const SECRET_MONTH: f64 = 0.40;
pub const LAB_REGIONS_PRICED: &[&str] = &["us-east-1", "us-west-2"];

/// EBS storage by the GB-month, by volume type.
pub fn ebs_gb_month(volume_type: &str) -> f64 {
    if volume_type == "gp2" {
        EBS_GP2_GB_MONTH
    } else {
        EBS_GP3_GB_MONTH
    }
}

/// Per hour, from a price per GB-month.
pub fn gb_month_hourly(gb: f64, usd_per_gb_month: f64) -> f64 {
    gb * usd_per_gb_month / HOURS_PER_MONTH
}

/// An EKS cluster in standard support (extended support: $0.60).
pub const EKS_CLUSTER_HOURLY: f64 = 0.10;
pub const ECR_GB_MONTH: f64 = 0.10;
