//! `load_balancer` (asg and swarm): the TLS policy and the idle timeout.

use super::*;

pub(super) fn load_balancer(
    c: &mut Checker,
    raw: &RawStack,
    kind: StackKind,
    top: At,
) -> Option<LoadBalancer> {
    let lb_raw = raw.load_balancer.as_ref();
    if kind == StackKind::Monolith
        && let Some(lb) = lb_raw
    {
        c.error(
            lb.into(),
            "load_balancer",
            "a monolith has no load balancer",
            Some("remove this section, or use kind: asg".into()),
        );
    }
    (kind != StackKind::Monolith).then(|| {
        let lb = lb_raw.map(|l| &l.value);
        let ssl_policy = match lb.and_then(|l| l.ssl_policy.as_ref()) {
            None => "ELBSecurityPolicy-TLS13-1-2-Res-2021-06".to_string(),
            Some(p) => {
                if !p.value.starts_with("ELBSecurityPolicy-") {
                    c.error(
                        p.into(),
                        "load_balancer.ssl_policy",
                        format!("`{}` is not an ELB security policy", p.value),
                        Some(
                            "use a predefined policy such as ELBSecurityPolicy-TLS13-1-2-Res-2021-06"
                                .into(),
                        ),
                    );
                }
                p.value.clone()
            }
        };
        let idle = c.int(
            &lb.and_then(|l| l.idle_timeout_seconds.clone()),
            top,
            "load_balancer.idle_timeout_seconds",
            60,
            (1, 4000),
            None,
        );
        LoadBalancer {
            ssl_policy,
            idle_timeout_seconds: idle,
        }
    })
}
