//! Listener rules: a path-pattern condition on a listener that forwards to its own target group
//! (the split's services: accounts and orders by path, the catalog as the listener's default).
//! A rule's listener cannot change (a new one is made); its paths, target and priority can.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, PathPatternConditionConfig, Rule, RuleCondition, RulePriorityPair,
};
use serde::Serialize;

use super::listener::Listeners;
use super::load_balancer::{elb_tags, owned_key, tags_of};
use super::{
    Actions, AwsError, Charge, Cx, Deps, Desired, Drawing, Module, Observed, Place, Want, dep_id,
    gone_if_not_found,
};
use crate::kinds::Kind;
use crate::reference::Ref;

/// What AWS takes in one rule (Elastic Load Balancing quotas): at most 5 condition values and 5
/// wildcards, each value at most 128 characters; priorities 1 to 50,000.
pub const MAX_VALUES: usize = 5;
pub const MAX_WILDCARDS: usize = 5;
pub const MAX_PATTERN_LEN: usize = 128;
pub const MAX_PRIORITY: u16 = 50_000;

/// What the plan says a listener rule should be.
#[derive(Debug, Clone, Serialize)]
pub struct ListenerRuleSpec {
    pub listener: Ref,
    /// Lower is tried first; unique on the listener.
    pub priority: u16,
    /// ALB path patterns (`*` any run, `?` one character), case-sensitive.
    pub paths: Vec<String>,
    pub target_group: Ref,
    /// Who the rule serves, for the drawing (`accounts`).
    pub service: String,
}

impl ListenerRuleSpec {
    /// What AWS would refuse in this rule, in our words (the planner's tests check every rule).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.paths.is_empty() || self.paths.len() > MAX_VALUES {
            out.push(format!(
                "{} path patterns; a rule takes 1 to {MAX_VALUES}",
                self.paths.len()
            ));
        }
        let wildcards: usize = self
            .paths
            .iter()
            .map(|p| p.matches(['*', '?']).count())
            .sum();
        if wildcards > MAX_WILDCARDS {
            out.push(format!(
                "{wildcards} wildcards; a rule takes at most {MAX_WILDCARDS}"
            ));
        }
        for p in &self.paths {
            if p.is_empty() || p.len() > MAX_PATTERN_LEN || !p.chars().all(pattern_char) {
                out.push(format!("`{p}` is not an ALB path pattern"));
            }
        }
        if !(1..=MAX_PRIORITY).contains(&self.priority) {
            out.push(format!(
                "priority {} is outside 1–{MAX_PRIORITY}",
                self.priority
            ));
        }
        out
    }
}

/// The characters AWS allows in a path pattern.
fn pattern_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_-.$/~\"'@:+&*?".contains(c)
}

pub struct ListenerRules;

fn forward_text(a: &Action) -> String {
    match a.r#type() {
        Some(ActionTypeEnum::Forward) => {
            format!("forward:{}", a.target_group_arn().unwrap_or_default())
        }
        other => format!("{other:?}"),
    }
}

fn paths_of(r: &Rule) -> String {
    let mut paths: Vec<&str> = r
        .conditions()
        .iter()
        .filter(|c| c.field() == Some("path-pattern"))
        .flat_map(|c| {
            // AWS answers both forms; the config is the one it documents.
            let config = c
                .path_pattern_config()
                .map(|p| p.values())
                .unwrap_or_default();
            if config.is_empty() {
                c.values()
            } else {
                config
            }
        })
        .map(String::as_str)
        .collect();
    paths.sort_unstable();
    paths.dedup();
    paths.join(" ")
}

fn read(r: &Rule, listener: &str, key: &str) -> Observed {
    let mut o = Observed::new(Kind::ListenerRule, key, r.rule_arn().unwrap_or_default());
    o.facts.insert("listener".into(), listener.to_string());
    o.facts.insert(
        "priority".into(),
        r.priority().unwrap_or_default().to_string(),
    );
    o.facts.insert("paths".into(), paths_of(r));
    o.facts.insert(
        "action".into(),
        r.actions()
            .iter()
            .map(forward_text)
            .collect::<Vec<_>>()
            .join(" "),
    );
    o
}

struct Wanted {
    listener: String,
    priority: i32,
    condition: RuleCondition,
    paths_text: String,
    action: Action,
    action_text: String,
}

fn wanted(want: &Want<'_, ListenerRuleSpec>, deps: &Deps) -> Wanted {
    let spec = want.spec;
    let action = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(dep_id(deps, &spec.target_group))
        .build();
    let condition = RuleCondition::builder()
        .field("path-pattern")
        .path_pattern_config(
            PathPatternConditionConfig::builder()
                .set_values(Some(spec.paths.clone()))
                .build(),
        )
        .build();
    let mut sorted = spec.paths.clone();
    sorted.sort_unstable();
    sorted.dedup();
    Wanted {
        listener: dep_id(deps, &spec.listener).to_string(),
        priority: spec.priority.into(),
        condition,
        paths_text: sorted.join(" "),
        action_text: forward_text(&action),
        action,
    }
}

/// The rules of the listeners that carry this owner's tags, each read with its own tags (a rule
/// someone added by hand to our listener is not ours).
async fn owned_rules(cx: &Cx) -> Result<Vec<Observed>, AwsError> {
    let mut rules: Vec<(String, Rule)> = Vec::new();
    for listener in Listeners.observe(cx).await? {
        let mut marker = None;
        loop {
            let out = cx
                .elb
                .describe_rules()
                .listener_arn(&listener.id)
                .set_marker(marker)
                .send()
                .await?;
            rules.extend(
                out.rules()
                    .iter()
                    .filter(|r| r.is_default() != Some(true))
                    .map(|r| (listener.id.clone(), r.clone())),
            );
            marker = out.next_marker().map(str::to_string);
            if marker.is_none() {
                break;
            }
        }
    }
    let arns: Vec<String> = rules
        .iter()
        .filter_map(|(_, r)| r.rule_arn().map(str::to_string))
        .collect();
    let tags = tags_of(cx, &arns).await?;
    Ok(rules
        .iter()
        .filter_map(|(listener, r)| {
            let key = owned_key(cx, tags.get(r.rule_arn().unwrap_or_default()))?;
            Some(read(r, listener, &key))
        })
        .collect())
}

#[async_trait]
impl Module for ListenerRules {
    type Spec = ListenerRuleSpec;

    fn drawing(&self, spec: &Self::Spec) -> Drawing {
        Drawing {
            detail: format!(
                "rule {} {} → {}",
                spec.priority,
                spec.paths.join(" "),
                spec.service
            ),
            place: Place::With(spec.listener.clone()),
        }
    }

    /// Rules are included in the load balancer's hourly price (its LCUs count rule evaluations
    /// beyond the first 10 rules; a split has 2).
    fn cost(&self, _key: &str, _spec: &Self::Spec, _plan: &[Desired]) -> Vec<Charge> {
        vec![]
    }

    fn instances_started(&self, _spec: &Self::Spec) -> u32 {
        0
    }

    fn actions(&self) -> Actions {
        Actions {
            observe: &["elasticloadbalancing:DescribeRules"],
            change: &[
                "elasticloadbalancing:CreateRule",
                "elasticloadbalancing:AddTags",
                "elasticloadbalancing:ModifyRule",
                "elasticloadbalancing:SetRulePriorities",
                "elasticloadbalancing:DeleteRule",
            ],
        }
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[]
    }

    fn replace_fields(&self) -> &'static [&'static str] {
        &["listener"]
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        owned_rules(cx).await
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match cx.elb.describe_rules().rule_arns(&have.id).send().await {
            Ok(out) => Ok(out.rules().first().map(|r| {
                let mut o = read(r, have.fact("listener"), &have.key);
                o.owned = have.owned;
                o
            })),
            Err(e) => gone_if_not_found(e.into()),
        }
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, ListenerRuleSpec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let w = wanted(want, deps);
        let out = cx
            .elb
            .create_rule()
            .listener_arn(&w.listener)
            .priority(w.priority)
            .conditions(w.condition)
            .actions(w.action)
            .set_tags(Some(elb_tags(cx, want)))
            .send()
            .await?;
        let r = out
            .rules()
            .first()
            .ok_or_else(|| AwsError::other("CreateRule returned nothing"))?;
        Ok(read(r, &w.listener, want.key))
    }

    fn expected_facts(
        &self,
        want: &Want<'_, ListenerRuleSpec>,
        deps: &Deps,
    ) -> BTreeMap<String, String> {
        let w = wanted(want, deps);
        BTreeMap::from([
            ("listener".into(), w.listener),
            ("priority".into(), w.priority.to_string()),
            ("paths".into(), w.paths_text),
            ("action".into(), w.action_text),
        ])
    }

    async fn update(
        &self,
        cx: &Cx,
        want: &Want<'_, ListenerRuleSpec>,
        have: &Observed,
        deps: &Deps,
    ) -> Result<bool, AwsError> {
        let w = wanted(want, deps);
        if have.fact("paths") != w.paths_text || have.fact("action") != w.action_text {
            cx.elb
                .modify_rule()
                .rule_arn(&have.id)
                .conditions(w.condition)
                .actions(w.action)
                .send()
                .await?;
        }
        // ModifyRule cannot move a rule; SetRulePriorities can.
        if have.fact("priority") != w.priority.to_string() {
            cx.elb
                .set_rule_priorities()
                .rule_priorities(
                    RulePriorityPair::builder()
                        .rule_arn(&have.id)
                        .priority(w.priority)
                        .build(),
                )
                .send()
                .await?;
        }
        Ok(true)
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        // Deleting a listener deletes its rules: a rule already gone is done.
        match cx.elb.delete_rule().rule_arn(&have.id).send().await {
            Ok(_) => Ok(()),
            Err(e) => gone_if_not_found(e.into()).map(|_: Option<()>| ()),
        }
    }
}
