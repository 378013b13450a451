//! Listeners: port 80 redirects to HTTPS with a 301 (or forwards when TLS is off), port 443
//! terminates TLS with the stack's certificate and a modern policy and forwards to the app.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, ProtocolEnum, RedirectActionConfig,
    RedirectActionStatusCodeEnum,
};
use serde::Serialize;

use super::load_balancer::{LoadBalancers, elb_tags, owned_key, tags_of};
use super::{
    Actions, AwsError, Charge, Cx, Deps, Desired, Drawing, Module, Observed, Place, Want, dep_id,
    gone_if_not_found,
};
use crate::kinds::Kind;
use crate::reference::Ref;

/// What the plan says a load balancer listener should be.
#[derive(Debug, Clone, Serialize)]
pub struct ListenerSpec {
    pub load_balancer: Ref,
    pub port: u16,
    pub action: ListenerAction,
    pub certificate: Option<Ref>,
    pub ssl_policy: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum ListenerAction {
    /// HTTP 301 to the same host and path on HTTPS 443.
    RedirectToHttps,
    Forward {
        target_group: Ref,
    },
}

pub struct Listeners;

fn action_text(a: &Action) -> String {
    match a.r#type() {
        Some(ActionTypeEnum::Redirect) => {
            let r = a.redirect_config();
            format!(
                "redirect:{}:{}:{}",
                r.and_then(|r| r.protocol()).unwrap_or_default(),
                r.and_then(|r| r.port()).unwrap_or_default(),
                r.and_then(|r| r.status_code())
                    .map(|s| s.as_str())
                    .unwrap_or_default()
            )
        }
        Some(ActionTypeEnum::Forward) => {
            format!("forward:{}", a.target_group_arn().unwrap_or_default())
        }
        other => format!("{other:?}"),
    }
}

fn read(l: &aws_sdk_elasticloadbalancingv2::types::Listener, key: &str) -> Observed {
    let mut o = Observed::new(Kind::Listener, key, l.listener_arn().unwrap_or_default());
    o.facts
        .insert("port".into(), l.port().unwrap_or_default().to_string());
    o.facts.insert(
        "protocol".into(),
        l.protocol()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
    );
    o.facts.insert(
        "action".into(),
        l.default_actions()
            .iter()
            .map(action_text)
            .collect::<Vec<_>>()
            .join(" "),
    );
    let cert = l
        .certificates()
        .iter()
        .filter_map(|c| c.certificate_arn())
        .collect::<Vec<_>>()
        .join(",");
    o.facts.insert("certificate".into(), cert);
    // An HTTP listener has no policy; moto reports one anyway, so only HTTPS compares it.
    let is_https = l.protocol() == Some(&ProtocolEnum::Https);
    o.facts.insert(
        "ssl_policy".into(),
        if is_https {
            l.ssl_policy().unwrap_or_default().to_string()
        } else {
            String::new()
        },
    );
    o.attrs.insert(
        "load_balancer".into(),
        l.load_balancer_arn().unwrap_or_default().to_string(),
    );
    o
}

struct Wanted {
    lb: String,
    port: i32,
    protocol: ProtocolEnum,
    action: Action,
    action_text: String,
    certificate: Option<String>,
    ssl_policy: Option<String>,
}

fn wanted(want: &Want<'_, ListenerSpec>, deps: &Deps) -> Wanted {
    let ListenerSpec {
        load_balancer,
        port,
        action,
        certificate,
        ssl_policy,
    } = want.spec;
    let certificate = certificate.as_ref().map(|k| dep_id(deps, k).to_string());
    let protocol = if certificate.is_some() {
        ProtocolEnum::Https
    } else {
        ProtocolEnum::Http
    };
    let action = match action {
        ListenerAction::RedirectToHttps => Action::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol("HTTPS")
                    .port("443")
                    .host("#{host}")
                    .path("/#{path}")
                    .query("#{query}")
                    .status_code(RedirectActionStatusCodeEnum::Http301)
                    .build(),
            )
            .build(),
        ListenerAction::Forward { target_group } => Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(dep_id(deps, target_group))
            .build(),
    };
    Wanted {
        lb: dep_id(deps, load_balancer).to_string(),
        port: (*port).into(),
        action_text: action_text(&action),
        protocol,
        action,
        ssl_policy: if certificate.is_some() {
            ssl_policy.clone()
        } else {
            None
        },
        certificate,
    }
}

/// Listeners of the load balancers that carry this owner's tags.
async fn owned_listeners(cx: &Cx) -> Result<Vec<Observed>, AwsError> {
    let mut listeners = Vec::new();
    for lb in LoadBalancers.observe(cx).await? {
        let out = cx
            .elb
            .describe_listeners()
            .load_balancer_arn(&lb.id)
            .send()
            .await?;
        listeners.extend(out.listeners().iter().cloned());
    }
    let arns: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.listener_arn().map(str::to_string))
        .collect();
    let tags = tags_of(cx, &arns).await?;
    Ok(listeners
        .iter()
        .filter_map(|l| {
            Some(read(
                l,
                &owned_key(cx, tags.get(l.listener_arn().unwrap_or_default()))?,
            ))
        })
        .collect())
}

#[async_trait]
impl Module for Listeners {
    type Spec = ListenerSpec;

    fn drawing(&self, spec: &Self::Spec) -> Drawing {
        let detail = match &spec.action {
            ListenerAction::RedirectToHttps => format!("listener :{} → 301 https", spec.port),
            ListenerAction::Forward { target_group } => format!(
                "listener :{}{} → {target_group}",
                spec.port,
                if spec.certificate.is_some() {
                    " tls"
                } else {
                    ""
                }
            ),
        };
        Drawing {
            detail,
            place: Place::With(spec.load_balancer.clone()),
        }
    }

    fn cost(&self, _key: &str, _spec: &Self::Spec, _plan: &[Desired]) -> Vec<Charge> {
        vec![]
    }

    fn instances_started(&self, _spec: &Self::Spec) -> u32 {
        0
    }

    fn actions(&self) -> Actions {
        Actions {
            observe: &["elasticloadbalancing:DescribeListeners"],
            change: &[
                "elasticloadbalancing:CreateListener",
                "elasticloadbalancing:AddTags",
                "elasticloadbalancing:ModifyListener",
                "elasticloadbalancing:DeleteListener",
            ],
        }
    }

    /// Its rules first: deleting the listener would take them along, but each kind deletes its own.
    fn teardown_after(&self) -> &'static [Kind] {
        &[Kind::ListenerRule]
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        owned_listeners(cx).await
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match cx
            .elb
            .describe_listeners()
            .listener_arns(&have.id)
            .send()
            .await
        {
            Ok(out) => Ok(out.listeners().first().map(|l| {
                let mut o = read(l, &have.key);
                o.owned = have.owned;
                o
            })),
            Err(e) => gone_if_not_found(e.into()),
        }
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, ListenerSpec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let w = wanted(want, deps);
        let out = cx
            .elb
            .create_listener()
            .load_balancer_arn(&w.lb)
            .port(w.port)
            .protocol(w.protocol)
            .default_actions(w.action)
            .set_certificates(
                w.certificate
                    .map(|arn| vec![Certificate::builder().certificate_arn(arn).build()]),
            )
            .set_ssl_policy(w.ssl_policy)
            .set_tags(Some(elb_tags(cx, want)))
            .send()
            .await?;
        let l = out
            .listeners()
            .first()
            .ok_or_else(|| AwsError::other("CreateListener returned nothing"))?;
        Ok(read(l, want.key))
    }

    fn expected_facts(
        &self,
        want: &Want<'_, ListenerSpec>,
        deps: &Deps,
    ) -> BTreeMap<String, String> {
        let w = wanted(want, deps);
        BTreeMap::from([
            ("port".into(), w.port.to_string()),
            ("protocol".into(), w.protocol.as_str().to_string()),
            ("action".into(), w.action_text),
            ("certificate".into(), w.certificate.unwrap_or_default()),
            ("ssl_policy".into(), w.ssl_policy.unwrap_or_default()),
        ])
    }

    async fn update(
        &self,
        cx: &Cx,
        want: &Want<'_, ListenerSpec>,
        have: &Observed,
        deps: &Deps,
    ) -> Result<bool, AwsError> {
        let w = wanted(want, deps);
        cx.elb
            .modify_listener()
            .listener_arn(&have.id)
            .port(w.port)
            .protocol(w.protocol)
            .default_actions(w.action)
            .set_certificates(
                w.certificate
                    .map(|arn| vec![Certificate::builder().certificate_arn(arn).build()]),
            )
            .set_ssl_policy(w.ssl_policy)
            .send()
            .await?;
        Ok(true)
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        cx.elb
            .delete_listener()
            .listener_arn(&have.id)
            .send()
            .await?;
        Ok(())
    }
}
