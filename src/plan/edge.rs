//! The edge part: an internet-facing Application Load Balancer in the public subnets, its target
//! group, and HTTPS 443 with the certificate plus HTTP 80 → 301 (or HTTP only with `tls: none`).

use super::{Builder, Ingress, ListenerAction, Protocol, Ref};
use super::{
    CertificateSpec, ListenerSpec, LoadBalancerSpec, SecurityGroupSpec, TargetGroupSpec,
    network::Network,
};
use crate::stack::{LoadBalancer, TlsMode};

pub struct Edge {
    pub load_balancer: Ref,
    pub target_group: Ref,
}

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
    target_port: u16,
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
    let tg = b.add(
        "tg",
        TargetGroupSpec {
            vpc: net.vpc.clone(),
            port: target_port,
            health_check_path: stack.app.health_check_path.clone(),
        },
    );
    let tls = stack.tls.mode != TlsMode::None;
    if tls {
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
        );
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
        );
    }
    b.endpoint(&alb, "dns_name", tls);
    Edge {
        load_balancer: alb,
        target_group: tg,
    }
}
