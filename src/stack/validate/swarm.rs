//! `swarm`: managers (an odd number), workers and replicas, within the Learner Lab's instances.

use super::*;

pub(super) fn swarm(c: &mut Checker, raw: &RawStack, lab: bool, top: At) -> Swarm {
    {
        {
            let s = raw.swarm.as_ref();
            let sv = s.map(|s| &s.value);
            let managers = c.int(
                &sv.and_then(|s| s.managers.clone()),
                top,
                "swarm.managers",
                3,
                (1, 7),
                None,
            );
            if managers.is_multiple_of(2) {
                let at = at_of(&sv.and_then(|s| s.managers.clone()), top);
                c.error(
                    at,
                    "swarm.managers",
                    format!("{managers} managers cannot keep a quorum through a failure"),
                    Some("use an odd number: 1, 3 or 5".into()),
                );
            }
            let workers = c.int(
                &sv.and_then(|s| s.workers.clone()),
                top,
                "swarm.workers",
                2,
                (0, 100),
                None,
            );
            // The bake's builder runs beside the nodes while a new image is made.
            if lab && managers + workers + 1 > LAB_MAX_INSTANCES {
                c.error(s.map_or(top, At::from), "swarm", format!("{} nodes and the bake's builder are above the Learner Lab limit of {LAB_MAX_INSTANCES} running instances", managers + workers),
                    Some(format!("use fewer workers, {NO_SANDBOX_HINT}")));
            }
            let replicas = c.int(
                &sv.and_then(|s| s.replicas.clone()),
                top,
                "swarm.replicas",
                5,
                (1, 50),
                None,
            );
            Swarm {
                managers,
                workers,
                replicas,
            }
        }
    }
}

/// The other stack kinds refuse the section.
pub(super) fn refuse(c: &mut Checker, raw: &RawStack, kind: StackKind) {
    if let Some(s) = raw.swarm.as_ref() {
        c.error(
            s.into(),
            "swarm",
            format!("{} stack takes no `swarm` section", kind.with_article()),
            Some("remove this section, or use kind: swarm".into()),
        );
    }
}
