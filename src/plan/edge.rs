//! The edge part: an internet-facing Application Load Balancer in the public subnets, its target
//! group, and HTTPS 443 with the certificate plus HTTP 80 → 301 (or HTTP only with `tls: none`).
//! For the split, one target group per service: the listener's path rules (the app's own routing
//! table) send accounts' and orders' paths to theirs, the rest to the catalog's.

use super::{Builder, Ingress, ListenerAction, Protocol, Ref};
use super::{
    CertificateSpec, ListenerRuleSpec, ListenerSpec, LoadBalancerSpec, SecurityGroupSpec,
    TargetGroupSpec, network::Network,
};
use crate::stack::{AppService, LoadBalancer, Services, TlsMode};

pub struct Edge {
    pub load_balancer: Ref,
    /// The listener's default target group (the catalog's, in the split).
    pub target_group: Ref,
    /// Every target group, the default first.
    pub target_groups: Vec<Ref>,
}

impl Edge {
    /// The split's target group of a service (`tg-accounts`).
    pub fn group_of(&self, service: AppService) -> Option<&Ref> {
        let key = format!("tg-{}", service.as_str());
        self.target_groups.iter().find(|t| t.as_str() == key)
    }
}

/// Where the load balancer sends requests.
pub enum Targets {
    /// One target group on this port.
    Single(u16),
    /// One target group per service, on its port.
    Split(Vec<(AppService, u16)>),
}

/// Where the load balancer reaches the app, and what the app's group opens to it (from `sg_lb`
/// only): `port` for one process, or each service's port (`port_of`) for the split. `what` names
/// the port in the rules' descriptions, for one process (`app port`) and for a service
/// (`service`): they are those the stacks' groups were made with.
pub fn app_targets(
    services: Services,
    sg_lb: &Ref,
    port: u16,
    port_of: impl Fn(AppService) -> u16,
    what: (&str, &str),
) -> (Targets, Vec<Ingress>) {
    let rule = |port: u16, description: String| Ingress {
        protocol: Protocol::Tcp,
        port,
        from_group: Some(sg_lb.clone()),
        description,
    };
    match services {
        Services::Single => (
            Targets::Single(port),
            vec![rule(port, format!("{} from the load balancer", what.0))],
        ),
        Services::Split => {
            let ports: Vec<(AppService, u16)> = AppService::ALL
                .into_iter()
                .map(|s| (s, port_of(s)))
                .collect();
            let ingress = ports
                .iter()
                .map(|(s, p)| {
                    rule(
                        *p,
                        format!("{} {} from the load balancer", s.as_str(), what.1),
                    )
                })
                .collect();
            (Targets::Split(ports), ingress)
        }
    }
}

/// Rules are tried by priority: 10, 20, … in the routing table's order, room left between.
const PRIORITY_STEP: u16 = 10;

/// What faces the internet: 80 from anywhere, and 443 with TLS. Port 80 stays open with TLS too:
/// it redirects to HTTPS (and, on a monolith, answers the ACME challenge).
pub fn web_ingress(tls: bool) -> Vec<Ingress> {
    let mut ingress = vec![Ingress {
        protocol: Protocol::Tcp,
        port: 80,
        from_group: None,
        description: "HTTP from anywhere".into(),
    }];
    if tls {
        ingress.push(Ingress {
            protocol: Protocol::Tcp,
            port: 443,
            from_group: None,
            description: "HTTPS from anywhere".into(),
        });
    }
    ingress
}

/// The load balancer's security group alone (the app's group, made next, refers to it).
pub fn security_group(b: &mut Builder, net: &Network) -> Ref {
    let ingress = web_ingress(b.stack.tls.mode != TlsMode::None);
    b.add(
        "sg-lb",
        SecurityGroupSpec {
            vpc: net.vpc.clone(),
            description: "bookstore load balancer: HTTP/HTTPS from anywhere".into(),
            ingress,
        },
    )
}

pub fn load_balancer(
    b: &mut Builder,
    net: &Network,
    security_group: Ref,
    lb: &LoadBalancer,
    targets: Targets,
) -> Edge {
    let stack = b.stack;
    let alb = b.add(
        "alb",
        LoadBalancerSpec {
            subnets: net.subnets.clone(),
            security_groups: vec![security_group.clone()],
            idle_timeout_seconds: lb.idle_timeout_seconds,
        },
    );
    let target_group = |port| TargetGroupSpec {
        vpc: net.vpc.clone(),
        port,
        health_check_path: stack.app.health_check_path.clone(),
    };
    // The default first, then those the rules name.
    let groups: Vec<(Option<AppService>, Ref)> = match &targets {
        Targets::Single(port) => vec![(None, b.add("tg", target_group(*port)))],
        Targets::Split(services) => {
            let mut services = services.clone();
            services.sort_by_key(|(s, _)| *s != AppService::default_route());
            services
                .into_iter()
                .map(|(service, port)| {
                    let name = service.as_str();
                    // `tga`: the AWS name must fit 32 characters after the env's prefix.
                    let short = format!("tg{}", &name[..1]);
                    let key = format!("tg-{name}");
                    (Some(service), b.add_as(&key, &short, target_group(port)))
                })
                .collect()
        }
    };
    let tg = groups[0].1.clone();
    let tls = stack.tls.mode != TlsMode::None;
    // The listener that forwards to the app: its rules route the split's paths.
    let forwarding = if tls {
        let self_signed = stack.tls.mode == TlsMode::SelfSigned;
        let cert = b.add(
            "cert",
            CertificateSpec {
                load_balancer: self_signed.then(|| alb.clone()),
                domain: stack.tls.domain.clone(),
                self_signed,
            },
        );
        b.add(
            "listener-http",
            ListenerSpec {
                load_balancer: alb.clone(),
                port: 80,
                action: ListenerAction::RedirectToHttps,
                certificate: None,
                ssl_policy: None,
            },
        );
        b.add(
            "listener-https",
            ListenerSpec {
                load_balancer: alb.clone(),
                port: 443,
                action: ListenerAction::Forward {
                    target_group: tg.clone(),
                },
                certificate: Some(cert),
                ssl_policy: Some(lb.ssl_policy.clone()),
            },
        )
    } else {
        b.add(
            "listener-http",
            ListenerSpec {
                load_balancer: alb.clone(),
                port: 80,
                action: ListenerAction::Forward {
                    target_group: tg.clone(),
                },
                certificate: None,
                ssl_policy: None,
            },
        )
    };
    for (service, group) in &groups {
        let Some((service, rank)) = service.and_then(|s| Some((s, s.rule_rank()?))) else {
            continue;
        };
        let priority = PRIORITY_STEP * (rank as u16 + 1);
        b.add(
            &format!("rule-{}", service.as_str()),
            ListenerRuleSpec {
                listener: forwarding.clone(),
                priority,
                paths: service
                    .path_patterns()
                    .iter()
                    .map(|p| p.to_string())
                    .collect(),
                target_group: group.clone(),
                service: service.as_str().to_string(),
            },
        );
    }
    b.endpoint(&alb, "dns_name", tls);
    Edge {
        load_balancer: alb,
        target_group: tg,
        target_groups: groups.into_iter().map(|(_, g)| g).collect(),
    }
}
