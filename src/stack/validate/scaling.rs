//! `scaling` (asg only): the metric and its target.

use super::*;

pub(super) fn scaling(c: &mut Checker, raw: &RawStack, top: At) -> Scaling {
    {
        {
            let s = raw.scaling.as_ref().map(|s| &s.value);
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
            Scaling { metric, target }
        }
    }
}

/// The stack kinds that do not auto-scale refuse the section.
pub(super) fn refuse(c: &mut Checker, raw: &RawStack, kind: StackKind) {
    if let Some(s) = raw.scaling.as_ref() {
        c.error(
            s.into(),
            "scaling",
            format!("{} stack does not auto-scale", kind.with_article()),
            Some("remove this section, or use kind: asg".into()),
        );
    }
}
