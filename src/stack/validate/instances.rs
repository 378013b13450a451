//! `instances`: the type (sizes the Learner Lab allows), the counts (asg only), the root volume
//! and the instance profile.

use super::*;
use crate::stack::raw::RawInstances;

pub(super) fn instances(
    c: &mut Checker,
    raw: &RawStack,
    kind: StackKind,
    lab: bool,
    top: At,
) -> Instances {
    let inst_raw = raw.instances.as_ref().map(|i| &i.value);
    let inst_at = at_of(&raw.instances, top);
    let default_type = match kind {
        StackKind::Asg => "t3.micro",
        // A t3.medium holds 17 pods; a small one 11, most of them the cluster's own.
        StackKind::Eks => "t3.medium",
        StackKind::Monolith | StackKind::Swarm => "t3.small",
    };
    let instance_type = match inst_raw.and_then(|i| i.instance_type.as_ref()) {
        None => default_type.to_string(),
        Some(t) => {
            match t.value.split_once('.') {
                Some((family, size))
                    if !family.is_empty()
                        && family
                            .chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
                        && !size.is_empty() =>
                {
                    if lab && !LAB_INSTANCE_SIZES.contains(&size) {
                        c.error(
                            t.into(),
                            "instances.type",
                            format!(
                                "the Learner Lab allows instance sizes {} only, not `{size}`",
                                LAB_INSTANCE_SIZES.join(", ")
                            ),
                            Some(format!(
                                "use e.g. {family}.micro or {family}.large, {NO_SANDBOX_HINT}"
                            )),
                        );
                    }
                }
                _ => c.error(
                    t.into(),
                    "instances.type",
                    format!("`{}` is not an EC2 instance type", t.value),
                    Some("write it as family.size, e.g. t3.micro".into()),
                ),
            }
            t.value.clone()
        }
    };
    let (min, max, desired) = counts(c, inst_raw, inst_at, kind, lab);
    let max_gb = if lab { LAB_MAX_GB } else { 16384 };
    let volume_gb = c.int(
        &inst_raw.and_then(|i| i.volume_gb.clone()),
        inst_at,
        "instances.volume_gb",
        match kind {
            StackKind::Asg => 8,
            // EKS's node images are 20 GB.
            StackKind::Eks => 20,
            StackKind::Monolith | StackKind::Swarm => 16,
        },
        (if kind == StackKind::Eks { 20 } else { 8 }, max_gb),
        lab.then_some("the Learner Lab allows EBS volumes of at most 100 GB"),
    );
    let volume_type = c.choice(
        &inst_raw.and_then(|i| i.volume_type.clone()),
        "instances.volume_type",
        &["gp2", "gp3"],
        "gp3",
    );
    let instance_profile = match inst_raw.and_then(|i| i.instance_profile.as_ref()) {
        // EKS's nodes take the node group's role (`kubernetes.node_role`), never a profile.
        Some(p) if kind == StackKind::Eks => {
            c.error(
                p.into(),
                "instances.instance_profile",
                "the eks stack's nodes run with the node group's role, not an instance profile",
                Some("remove it; `kubernetes.node_role` names the nodes' role".into()),
            );
            None
        }
        None if kind == StackKind::Eks => None,
        // The Learner Lab always has it; elsewhere the user names one (or none).
        None => lab.then(|| "LabInstanceProfile".to_string()),
        Some(p) if p.value.is_empty() || p.value == "none" => None,
        Some(p) => Some(p.value.clone()),
    };
    Instances {
        instance_type,
        min,
        max,
        desired,
        volume_gb,
        volume_type,
        instance_profile,
    }
}

/// min, max and desired: the asg's group; the other kinds take none (their counts are elsewhere).
fn counts(
    c: &mut Checker,
    inst_raw: Option<&RawInstances>,
    inst_at: At,
    kind: StackKind,
    lab: bool,
) -> (u32, u32, u32) {
    let counts_given =
        inst_raw.is_some_and(|i| i.min.is_some() || i.max.is_some() || i.desired.is_some());
    if kind == StackKind::Asg {
        let min = c.int(
            &inst_raw.and_then(|i| i.min.clone()),
            inst_at,
            "instances.min",
            2,
            (0, 100),
            None,
        );
        let max = c.int(
            &inst_raw.and_then(|i| i.max.clone()),
            inst_at,
            "instances.max",
            3,
            (1, 100),
            None,
        );
        let desired_field = inst_raw.and_then(|i| i.desired.clone());
        let desired = c.int(
            &desired_field,
            inst_at,
            "instances.desired",
            min.max(2).min(max) as i64,
            (0, 100),
            None,
        );
        if min > max {
            let at = at_of(&inst_raw.and_then(|i| i.min.clone()), inst_at);
            c.error(
                at,
                "instances.min",
                format!("min {min} is above max {max}"),
                Some("it must hold that min ≤ desired ≤ max".into()),
            );
        } else if desired < min || desired > max {
            let at = at_of(&desired_field, inst_at);
            c.error(
                at,
                "instances.desired",
                format!("desired {desired} is outside min {min} .. max {max}"),
                Some("it must hold that min ≤ desired ≤ max".into()),
            );
        }
        if lab && max > LAB_MAX_INSTANCES {
            let at = at_of(&inst_raw.and_then(|i| i.max.clone()), inst_at);
            c.error(at, "instances.max", format!("{max} is above the Learner Lab limit of {LAB_MAX_INSTANCES} running instances (20 or more deactivates the account)"),
                Some(format!("lower it to {LAB_MAX_INSTANCES} or less, {NO_SANDBOX_HINT}")));
        }
        (min, max, desired)
    } else {
        if counts_given {
            c.error(
                inst_at,
                "instances",
                format!(
                    "{} stack does not take min/max/desired",
                    kind.with_article()
                ),
                Some(
                    match kind {
                        StackKind::Swarm => {
                            "set the node counts under `swarm: {managers, workers}`"
                        }
                        StackKind::Eks => "set the node count under `kubernetes: {nodes}`",
                        _ => "a monolith is one instance; remove min, max and desired",
                    }
                    .into(),
                ),
            );
        }
        (1, 1, 1)
    }
}
