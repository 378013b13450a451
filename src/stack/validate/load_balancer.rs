//! `load_balancer` (asg and swarm): the TLS policy and the idle timeout.

use super::*;

/// A stack kind without a load balancer (the monolith) refuses the section.
pub(super) fn refuse(c: &mut Checker, raw: &RawStack) {
    if let Some(lb) = raw.load_balancer.as_ref() {
        c.error(
            lb.into(),
            "load_balancer",
            "a monolith has no load balancer",
            Some("remove this section, or use kind: asg".into()),
        );
    }
}

pub(super) fn load_balancer(c: &mut Checker, raw: &RawStack, top: At) -> LoadBalancer {
    {
        let lb = raw.load_balancer.as_ref().map(|l| &l.value);
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
    }
}
