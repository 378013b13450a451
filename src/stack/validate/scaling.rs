//! `scaling` (asg only): the metric and its target.

use super::*;

pub(super) fn scaling(
    c: &mut Checker,
    raw: &RawStack,
    kind: StackKind,
    top: At,
) -> Option<Scaling> {
    match (kind, raw.scaling.as_ref()) {
        (StackKind::Asg, s) => {
            let s = s.map(|s| &s.value);
            let metric_name = c.choice(
                &s.and_then(|s| s.metric.clone()),
                "scaling.metric",
                &["request-count", "cpu"],
                "request-count",
            );
            let metric = if metric_name == "cpu" {
                ScalingMetric::Cpu
            } else {
                ScalingMetric::RequestCount
            };
            let (default, range) = match metric {
                ScalingMetric::Cpu => (50, (1, 100)),
                ScalingMetric::RequestCount => (100, (1, 100_000)),
            };
            let target = c.int(
                &s.and_then(|s| s.target.clone()),
                top,
                "scaling.target",
                default,
                range,
                None,
            );
            Some(Scaling { metric, target })
        }
        (_, Some(s)) => {
            c.error(
                s.into(),
                "scaling",
                format!("a {} stack does not auto-scale", kind.as_str()),
                Some("remove this section, or use kind: asg".into()),
            );
            None
        }
        (_, None) => None,
    }
}
