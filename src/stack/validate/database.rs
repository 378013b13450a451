//! `database`: RDS for asg and swarm; MariaDB on the monolith's own VM (placement, volume); each
//! kind's settings refused in the other's.

use super::*;

/// RDS MySQL (asg, swarm); the monolith's own settings are refused, naming `kind`.
pub(super) fn rds(
    c: &mut Checker,
    raw: &RawStack,
    kind: StackKind,
    lab: bool,
    top: At,
) -> Database {
    let max_gb = if lab { LAB_MAX_GB } else { 16384 };
    let database = {
        {
            let d = raw.database.as_ref().map(|d| &d.value);
            let engine_version = match d.and_then(|d| d.engine_version.as_ref()) {
                None => "8.0".to_string(),
                Some(v) => {
                    if !v.value.starts_with("8.") {
                        c.error(
                            v.into(),
                            "database.engine_version",
                            format!("MySQL `{}` is not supported", v.value),
                            Some("use MySQL 8, e.g. \"8.0\" or \"8.4\"".into()),
                        );
                    }
                    v.value.clone()
                }
            };
            let instance_class = match d.and_then(|d| d.instance_class.as_ref()) {
                None => "db.t3.micro".to_string(),
                Some(v) => {
                    let parts: Vec<&str> = v.value.split('.').collect();
                    if parts.len() != 3 || parts[0] != "db" {
                        c.error(
                            v.into(),
                            "database.instance_class",
                            format!("`{}` is not an RDS instance class", v.value),
                            Some("write it as db.family.size, e.g. db.t3.micro".into()),
                        );
                    } else if lab && !LAB_DB_SIZES.contains(&parts[2]) {
                        c.error(
                            v.into(),
                            "database.instance_class",
                            format!(
                                "the Learner Lab allows RDS classes up to medium, not `{}`",
                                v.value
                            ),
                            Some(format!(
                                "use db.t3.micro, db.t3.small or db.t3.medium, {NO_SANDBOX_HINT}"
                            )),
                        );
                    }
                    v.value.clone()
                }
            };
            let storage_gb = c.int(
                &d.and_then(|d| d.storage_gb.clone()),
                top,
                "database.storage_gb",
                20,
                (20, max_gb),
                lab.then_some("RDS needs at least 20 GB and the Learner Lab allows at most 100 GB"),
            );
            let storage_type = c.choice(
                &d.and_then(|d| d.storage_type.clone()),
                "database.storage_type",
                &["gp2", "gp3"],
                "gp2",
            );
            let backup_retention_days = c.int(
                &d.and_then(|d| d.backup_retention_days.clone()),
                top,
                "database.backup_retention_days",
                1,
                (0, 35),
                None,
            );
            Database {
                engine_version,
                instance_class,
                storage_gb,
                storage_type,
                backup_retention_days,
                multi_az: d.and_then(|d| d.multi_az.as_ref()).is_some_and(|v| v.value),
                final_snapshot: d
                    .and_then(|d| d.final_snapshot.as_ref())
                    .is_some_and(|v| v.value),
            }
        }
    };
    if let Some(d) = raw.database.as_ref() {
        for (field, at) in [
            ("placement", d.value.placement.as_ref().map(At::from)),
            ("volume_gb", d.value.volume_gb.as_ref().map(At::from)),
        ] {
            if let Some(at) = at {
                c.error(
                    at,
                    &format!("database.{field}"),
                    format!(
                        "`{field}` is a monolith setting; the {} stack's database is RDS",
                        kind.as_str()
                    ),
                    Some("remove it, or use storage_gb for the RDS storage".into()),
                );
            }
        }
    }
    database
}

/// The monolith's MariaDB on a VM: where it runs and its data volume; RDS settings are refused.
pub(super) fn vm(c: &mut Checker, raw: &RawStack, lab: bool, top: At) -> VmDatabase {
    let max_gb = if lab { LAB_MAX_GB } else { 16384 };
    {
        let d = raw.database.as_ref().map(|d| &d.value);
        if let Some(d) = d {
            // RDS settings in a monolith are a mistake worth naming: it has no RDS.
            let rds = [
                ("engine_version", d.engine_version.as_ref().map(At::from)),
                ("instance_class", d.instance_class.as_ref().map(At::from)),
                ("storage_gb", d.storage_gb.as_ref().map(At::from)),
                ("storage_type", d.storage_type.as_ref().map(At::from)),
                (
                    "backup_retention_days",
                    d.backup_retention_days.as_ref().map(At::from),
                ),
                ("multi_az", d.multi_az.as_ref().map(At::from)),
            ];
            for (field, at) in rds {
                if let Some(at) = at {
                    c.error(at, &format!("database.{field}"),
                        format!("`{field}` is an RDS setting; a monolith runs MariaDB on its own VM"),
                        Some("remove it (a monolith's database takes placement, volume_gb and final_snapshot), or use kind: asg for RDS".into()));
                }
            }
        }
        let placement = match c
            .choice(
                &d.and_then(|d| d.placement.clone()),
                "database.placement",
                &["same-vm", "separate-vm"],
                "same-vm",
            )
            .as_str()
        {
            "separate-vm" => Placement::SeparateVm,
            _ => Placement::SameVm,
        };
        let volume_gb = c.int(
            &d.and_then(|d| d.volume_gb.clone()),
            top,
            "database.volume_gb",
            8,
            (1, max_gb),
            lab.then_some("the Learner Lab allows EBS volumes of at most 100 GB"),
        );
        VmDatabase {
            placement,
            volume_gb,
            final_snapshot: d
                .and_then(|d| d.final_snapshot.as_ref())
                .is_some_and(|v| v.value),
        }
    }
}
