//! `kubernetes` (eks only): the cluster's version (standard support only), the lab's roles by
//! name, the node group's size and the app's replicas, within the Learner Lab's instances.

use super::*;

/// EKS minor versions and when their standard support ends (EKS's release calendar). A version
/// past it runs on extended support at $0.60 per cluster-hour instead of $0.10.
const VERSIONS: &[(&str, &str)] = &[("1.35", "2027-03-27"), ("1.36", "about mid-2027")];
/// Versions EKS still runs, but on extended support only.
const EXTENDED_ONLY: &[&str] = &["1.29", "1.30", "1.31", "1.32", "1.33", "1.34"];
pub const DEFAULT_VERSION: &str = "1.35";

pub(super) fn kubernetes(c: &mut Checker, raw: &RawStack, lab: bool, top: At) -> Kubernetes {
    let k = raw.kubernetes.as_ref().map(|k| &k.value);
    let k_at = at_of(&raw.kubernetes, top);
    let version = match k.and_then(|k| k.version.as_ref()) {
        None => DEFAULT_VERSION.to_string(),
        Some(v) => {
            let known: Vec<&str> = VERSIONS.iter().map(|(v, _)| *v).collect();
            if EXTENDED_ONLY.contains(&v.value.as_str()) {
                c.error(
                    v.into(),
                    "kubernetes.version",
                    format!(
                        "Kubernetes {} is past EKS's standard support: its extended support costs $0.60 per cluster-hour",
                        v.value
                    ),
                    Some(format!("use {}", known.join(" or "))),
                );
            } else if !known.contains(&v.value.as_str()) {
                c.error(
                    v.into(),
                    "kubernetes.version",
                    format!("`{}` is not an EKS version this bookstore knows", v.value),
                    Some(format!(
                        "use {} (a quoted minor version)",
                        known.join(" or ")
                    )),
                );
            }
            v.value.clone()
        }
    };
    let role = |c: &mut Checker, field: &Field<String>, name: &str, default: &str| match field {
        None => default.to_string(),
        Some(v) => {
            let ok = !v.value.is_empty()
                && v.value.len() <= 64
                && v.value
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "+=,.@_-".contains(ch));
            if !ok {
                c.error(
                    v.into(),
                    name,
                    format!("`{}` cannot be part of an IAM role name", v.value),
                    Some(format!(
                        "give what the role's name contains, e.g. {default} (the Learner Lab's names carry a prefix and a suffix)"
                    )),
                );
            }
            v.value.clone()
        }
    };
    let cluster_role = role(
        c,
        &k.and_then(|k| k.cluster_role.clone()),
        "kubernetes.cluster_role",
        "LabEksClusterRole",
    );
    let node_role = role(
        c,
        &k.and_then(|k| k.node_role.clone()),
        "kubernetes.node_role",
        "LabEksNodeRole",
    );
    let nodes_field = k.and_then(|k| k.nodes.clone());
    let nodes = c.int(&nodes_field, k_at, "kubernetes.nodes", 2, (1, 100), None);
    if lab && nodes + 1 > LAB_MAX_INSTANCES {
        c.error(at_of(&nodes_field, k_at), "kubernetes.nodes",
            format!("{nodes} nodes and a replacement node during an update are above the Learner Lab limit of {LAB_MAX_INSTANCES} running instances"),
            Some(format!("use at most {} nodes, {NO_SANDBOX_HINT}", LAB_MAX_INSTANCES - 1)));
    }
    let replicas = c.int(
        &k.and_then(|k| k.replicas.clone()),
        k_at,
        "kubernetes.replicas",
        2,
        (1, 50),
        None,
    );
    // The split runs `replicas` pods of each of its three services, or its own count
    // (`app.replicas`, checked there).
    let app = raw.app.as_ref().map(|a| &a.value);
    let split = app
        .and_then(|a| a.services.as_ref())
        .is_some_and(|s| s.value == "split");
    let pods: u32 = if split {
        let own = app.and_then(|a| a.replicas.as_ref()).map(|r| &r.value);
        AppService::ALL
            .into_iter()
            .map(|s| {
                own.and_then(|o| o.get(s.as_str()))
                    .filter(|n| (1..=50).contains(&n.value))
                    .map_or(replicas, |n| n.value as u32)
            })
            .sum()
    } else {
        replicas
    };
    // A t3.medium holds 17 pods (the VPC CNI's limit), 4 of which the cluster's own add-ons take.
    if pods > nodes * 13 {
        c.error(
            at_of(&k.and_then(|k| k.replicas.clone()), k_at),
            "kubernetes.replicas",
            format!("{pods} pods do not fit on {nodes} nodes (about 13 app pods per node)"),
            Some(if split {
                "the split runs this many pods of each of its three services (or app.replicas): add nodes or lower the replicas".into()
            } else {
                "add nodes or lower the replicas".into()
            }),
        );
    }
    // Kubernetes' default NodePort range.
    let node_port = c.int(
        &k.and_then(|k| k.node_port.clone()),
        k_at,
        "kubernetes.node_port",
        30080,
        (30000, 32767),
        Some("Kubernetes gives NodePort Services ports 30000–32767"),
    ) as u16;
    if split && u32::from(node_port) + 3 > 32767 {
        c.error(
            at_of(&k.and_then(|k| k.node_port.clone()), k_at),
            "kubernetes.node_port",
            format!(
                "the split's services take NodePorts {} to {}, past Kubernetes' 32767",
                node_port + 1,
                u32::from(node_port) + 3
            ),
            Some("use a node_port of at most 32764".into()),
        );
    }
    Kubernetes {
        version,
        cluster_role,
        node_role,
        nodes,
        replicas,
        node_port,
    }
}

/// The other stack kinds refuse the section.
pub(super) fn refuse(c: &mut Checker, raw: &RawStack, kind: StackKind) {
    if let Some(k) = raw.kubernetes.as_ref() {
        c.error(
            k.into(),
            "kubernetes",
            format!(
                "{} stack takes no `kubernetes` section",
                kind.with_article()
            ),
            Some("remove this section, or use kind: eks".into()),
        );
    }
}
