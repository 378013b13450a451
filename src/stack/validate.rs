//! Raw stack → validated `Stack`. Every problem is collected (not just the first), each with the
//! file, line, column and field, what is wrong, and what to do about it.

use std::collections::BTreeMap;

use serde_saphyr::Spanned;

use super::raw::{Field, RawStack};
use super::*;
pub use crate::diagnostics::{Diagnostic, Diagnostics};

/// Regions where the AWS services this tool uses are generally available.
const REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "ca-west-1",
    "sa-east-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "ap-south-1",
    "ap-south-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-east-1",
    "me-south-1",
    "me-central-1",
    "af-south-1",
    "il-central-1",
    "mx-central-1",
];
pub const LAB_REGIONS: &[&str] = &["us-east-1", "us-west-2"];
const LAB_INSTANCE_SIZES: &[&str] = &["nano", "micro", "small", "medium", "large"];
const LAB_DB_SIZES: &[&str] = &["micro", "small", "medium"];
/// The Learner Lab's running-instance limit for the whole account (20 or more deactivates it).
pub const LAB_MAX_INSTANCES: u32 = 9;
const LAB_MAX_GB: i64 = 100;
const NO_SANDBOX_HINT: &str = "or set `sandbox: none` at the top of the file if this is not an AWS Academy Learner Lab account";

pub fn known_region(region: &str) -> bool {
    REGIONS.contains(&region)
}

struct Checker<'a> {
    file: &'a str,
    found: Vec<Diagnostic>,
}

#[derive(Clone, Copy)]
struct At(u64, u64);

impl<T> From<&Spanned<T>> for At {
    fn from(s: &Spanned<T>) -> Self {
        At(s.referenced.line(), s.referenced.column())
    }
}

impl<'a> Checker<'a> {
    fn error(&mut self, at: At, field: &str, message: impl Into<String>, hint: Option<String>) {
        self.found.push(Diagnostic {
            file: self.file.to_string(),
            line: at.0,
            column: at.1,
            field: field.to_string(),
            message: message.into(),
            hint,
        });
    }

    /// An integer field within `min..=max`, or `default` when absent.
    fn int(
        &mut self,
        value: &Field<i64>,
        parent: At,
        field: &str,
        default: i64,
        range: (i64, i64),
        hint: Option<&str>,
    ) -> u32 {
        let Some(v) = value else {
            return default as u32;
        };
        if v.value < range.0 || v.value > range.1 {
            self.error(
                v.into(),
                field,
                format!(
                    "{} is out of range: it must be between {} and {}",
                    v.value, range.0, range.1
                ),
                hint.map(str::to_string),
            );
            let _ = parent;
            return default as u32;
        }
        v.value as u32
    }

    /// One of `allowed`, or `default` when absent.
    fn choice(
        &mut self,
        value: &Field<String>,
        field: &str,
        allowed: &[&str],
        default: &str,
    ) -> String {
        match value {
            None => default.to_string(),
            Some(v) if allowed.contains(&v.value.as_str()) => v.value.clone(),
            Some(v) => {
                self.error(
                    v.into(),
                    field,
                    format!("`{}` is not allowed here", v.value),
                    Some(format!("use one of: {}", allowed.join(", "))),
                );
                default.to_string()
            }
        }
    }
}

fn at_of<T>(f: &Field<T>, fallback: At) -> At {
    f.as_ref().map_or(fallback, At::from)
}

/// Parses the YAML text and validates it. `source` names the file in every message.
pub fn parse(source: &str, text: &str) -> Result<Stack, Diagnostics> {
    let options = serde_saphyr::options! { with_snippet: false };
    let raw: RawStack = match serde_saphyr::from_str_with_options(text, options) {
        Ok(raw) => raw,
        Err(e) => {
            let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            let ours = super::yaml_error::explain(&e);
            return Err(Diagnostics(vec![Diagnostic {
                file: source.to_string(),
                line,
                column,
                field: String::new(),
                message: ours.message,
                hint: Some(format!(
                    "{}; `bookstore validate --stack {source}` checks the file again without touching AWS",
                    ours.hint
                )),
            }]));
        }
    };
    let mut c = Checker {
        file: source,
        found: Vec::new(),
    };
    let stack = check(&mut c, source, raw);
    if c.found.is_empty() {
        Ok(stack)
    } else {
        Err(Diagnostics(c.found))
    }
}

fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Names go into load balancer and target group names, which AWS caps at 32 characters.
pub const MAX_NAME_LEN: usize = 12;

pub fn valid_env_name(s: &str) -> bool {
    valid_name(s, MAX_NAME_LEN)
}

fn check(c: &mut Checker, source: &str, raw: RawStack) -> Stack {
    let top = At(1, 1);
    if raw.version.value != 1 {
        c.error(
            (&raw.version).into(),
            "version",
            format!("unsupported version {}", raw.version.value),
            Some("this bookstore reads version 1 stack files; set `version: 1`".into()),
        );
    }
    let name = raw.name.value.clone();
    if !valid_name(&name, MAX_NAME_LEN) {
        c.error((&raw.name).into(), "name", format!("`{name}` is not a valid stack name"),
            Some(format!("use 1 to {MAX_NAME_LEN} lower-case letters, digits and hyphens, starting with a letter")));
    }
    let kind = match raw.kind.value.as_str() {
        "monolith" => StackKind::Monolith,
        "asg" => StackKind::Asg,
        "swarm" => StackKind::Swarm,
        other => {
            c.error(
                (&raw.kind).into(),
                "kind",
                format!("unknown stack kind `{other}`"),
                Some("use one of: monolith, asg, swarm".into()),
            );
            StackKind::Asg
        }
    };
    let region = raw.region.as_ref().map(|r| {
        let at = At::from(r);
        if !known_region(&r.value) {
            c.error(
                at,
                "region",
                format!("`{}` is not an AWS region this tool knows", r.value),
                Some("use a region code such as us-east-1 or us-west-2".into()),
            );
        }
        (
            r.value.clone(),
            Position {
                line: at.0,
                column: at.1,
            },
        )
    });
    let sandbox = match c
        .choice(
            &raw.sandbox,
            "sandbox",
            &["learner-lab", "none"],
            "learner-lab",
        )
        .as_str()
    {
        "none" => Sandbox::None,
        _ => Sandbox::LearnerLab,
    };
    let lab = sandbox == Sandbox::LearnerLab;
    if lab
        && let Some((r, pos)) = &region
        && !LAB_REGIONS.contains(&r.as_str())
    {
        c.error(
            At(pos.line, pos.column),
            "region",
            format!("the Learner Lab allows only us-east-1 and us-west-2, not {r}"),
            Some(format!("pick one of them, {NO_SANDBOX_HINT}")),
        );
    }

    let tags = check_tags(c, &raw.tags);

    // network
    let net_at = at_of(&raw.network, top);
    let net = raw.network.as_ref().map(|n| &n.value);
    let default_cidr = match kind {
        StackKind::Monolith => "10.43.0.0/16",
        StackKind::Asg => "10.42.0.0/16",
        StackKind::Swarm => "10.44.0.0/16",
    };
    let vpc_cidr = match net.and_then(|n| n.cidr.as_ref()) {
        None => default_cidr.parse().expect("default CIDR"),
        Some(v) => match v.value.parse::<Cidr>() {
            Ok(cidr) if !(16..=28).contains(&cidr.prefix) => {
                c.error(
                    v.into(),
                    "network.cidr",
                    format!(
                        "a VPC block must be between /16 and /28, not /{}",
                        cidr.prefix
                    ),
                    Some("use a block such as 10.42.0.0/16".into()),
                );
                cidr
            }
            Ok(cidr) if !cidr.is_private() => {
                c.error(v.into(), "network.cidr", format!("{cidr} is public address space"),
                    Some("use a private (RFC 1918) block inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16".into()));
                cidr
            }
            Ok(cidr) => cidr,
            Err(e) => {
                c.error(
                    v.into(),
                    "network.cidr",
                    e,
                    Some("write it as address/prefix, e.g. 10.42.0.0/16".into()),
                );
                default_cidr.parse().expect("default CIDR")
            }
        },
    };
    let subnets_needed: usize = if kind == StackKind::Monolith { 1 } else { 2 };
    let mut public_subnets = Vec::new();
    match net.and_then(|n| n.public_subnets.as_ref()) {
        None => {
            let base = u32::from(vpc_cidr.network);
            for i in 0..subnets_needed as u32 {
                let network = std::net::Ipv4Addr::from(base + ((i + 1) << 8));
                public_subnets.push(Cidr {
                    network,
                    prefix: 24,
                });
            }
        }
        Some(list) => {
            if list.value.len() < subnets_needed
                || (kind != StackKind::Monolith && list.value.len() > 6)
            {
                let why = if kind == StackKind::Monolith {
                    "a monolith needs at least one subnet".to_string()
                } else {
                    "a load balancer needs subnets in at least two availability zones (and at most six are used)".to_string()
                };
                c.error(list.into(), "network.public_subnets", format!("{} subnet(s) given: {why}", list.value.len()),
                    Some("list one CIDR block per availability zone, e.g. [10.42.1.0/24, 10.42.2.0/24]".into()));
            }
            for (i, s) in list.value.iter().enumerate() {
                let field = format!("network.public_subnets[{i}]");
                match s.value.parse::<Cidr>() {
                    Err(e) => c.error(
                        s.into(),
                        &field,
                        e,
                        Some("write it as address/prefix, e.g. 10.42.1.0/24".into()),
                    ),
                    Ok(cidr) => {
                        if !(16..=28).contains(&cidr.prefix) {
                            c.error(
                                s.into(),
                                &field,
                                format!(
                                    "a subnet must be between /16 and /28, not /{}",
                                    cidr.prefix
                                ),
                                None,
                            );
                        } else if !vpc_cidr.contains(cidr) {
                            c.error(
                                s.into(),
                                &field,
                                format!("{cidr} is outside the VPC block {vpc_cidr}"),
                                Some(format!("pick a block inside {vpc_cidr}")),
                            );
                        } else if let Some(other) =
                            public_subnets.iter().find(|o: &&Cidr| o.overlaps(cidr))
                        {
                            c.error(
                                s.into(),
                                &field,
                                format!("{cidr} overlaps {other}"),
                                Some("give every subnet its own block".into()),
                            );
                        }
                        public_subnets.push(cidr);
                    }
                }
            }
        }
    }
    let mut availability_zones = Vec::new();
    if let Some(azs) = net.and_then(|n| n.availability_zones.as_ref()) {
        if azs.value.len() != public_subnets.len() {
            c.error(
                azs.into(),
                "network.availability_zones",
                format!(
                    "{} zones for {} subnets",
                    azs.value.len(),
                    public_subnets.len()
                ),
                Some(
                    "list exactly one availability zone per public subnet, in the same order"
                        .into(),
                ),
            );
        }
        for (i, az) in azs.value.iter().enumerate() {
            let field = format!("network.availability_zones[{i}]");
            let region_part = az
                .value
                .trim_end_matches(|ch: char| ch.is_ascii_lowercase());
            if az.value.len() == region_part.len() || !known_region(region_part) {
                c.error(
                    az.into(),
                    &field,
                    format!("`{}` is not an availability zone name", az.value),
                    Some("use a zone such as us-east-1a".into()),
                );
            } else if let Some((r, _)) = &region
                && r != region_part
            {
                c.error(
                    az.into(),
                    &field,
                    format!("{} is not in the stack's region {r}", az.value),
                    None,
                );
            }
            if availability_zones.contains(&az.value) {
                c.error(
                    az.into(),
                    &field,
                    format!("{} is listed twice", az.value),
                    Some(
                        "use a different zone for each subnet so the load balancer spans two zones"
                            .into(),
                    ),
                );
            }
            availability_zones.push(az.value.clone());
        }
    }
    let _ = net_at;
    let network = Network {
        cidr: vpc_cidr,
        public_subnets,
        availability_zones,
    };

    // app
    let app_raw = raw.app.as_ref().map(|a| &a.value);
    let app_at = at_of(&raw.app, top);
    let port = match app_raw.and_then(|a| a.port.as_ref()) {
        None => 8080,
        Some(p) if (1024..=65535).contains(&p.value) => p.value as u16,
        Some(p) => {
            c.error(p.into(), "app.port", format!("{} is not a usable port", p.value),
                Some("use a port between 1024 and 65535: the app runs without root, so ports below 1024 are refused".into()));
            8080
        }
    };
    let health_check_path = match app_raw.and_then(|a| a.health_check_path.as_ref()) {
        None => "/healthz".to_string(),
        Some(p) => {
            if !p.value.starts_with('/')
                || p.value.len() > 1024
                || p.value.contains(char::is_whitespace)
            {
                c.error(
                    p.into(),
                    "app.health_check_path",
                    format!("`{}` is not a URL path", p.value),
                    Some("start it with `/`, e.g. /healthz".into()),
                );
            }
            p.value.clone()
        }
    };
    let _ = app_at;
    let app = App {
        port,
        health_check_path,
    };

    // tls
    let tls_raw = raw.tls.as_ref().map(|t| &t.value);
    let tls_at = at_of(&raw.tls, top);
    let (modes, default_mode): (&[&str], &str) = if kind == StackKind::Monolith {
        (
            &["none", "self-signed", "letsencrypt", "letsencrypt-ip"],
            "letsencrypt-ip",
        )
    } else {
        (&["none", "self-signed", "acm"], "self-signed")
    };
    let mode = match c
        .choice(
            &tls_raw.and_then(|t| t.mode.clone()),
            "tls.mode",
            modes,
            default_mode,
        )
        .as_str()
    {
        "none" => TlsMode::None,
        "acm" => TlsMode::Acm,
        "letsencrypt" => TlsMode::Letsencrypt,
        "letsencrypt-ip" => TlsMode::LetsencryptIp,
        _ => TlsMode::SelfSigned,
    };
    let domain = tls_raw.and_then(|t| t.domain.as_ref()).map(|d| {
        if !valid_domain(&d.value) {
            c.error(
                d.into(),
                "tls.domain",
                format!("`{}` is not a domain name", d.value),
                Some("use a fully qualified name you control, e.g. shop.example.org".into()),
            );
        } else if mode == TlsMode::LetsencryptIp {
            c.error(
                d.into(),
                "tls.domain",
                "tls mode `letsencrypt-ip` certifies the Elastic IP itself and takes no domain",
                Some("remove `domain`, or use `mode: letsencrypt` for a name you control".into()),
            );
        }
        d.value.clone()
    });
    if matches!(mode, TlsMode::Acm | TlsMode::Letsencrypt) && domain.is_none() {
        let at = tls_raw
            .and_then(|t| t.mode.as_ref())
            .map_or(tls_at, At::from);
        let hint = if kind == StackKind::Monolith {
            "add `domain: shop.example.org` under tls (a name whose DNS points at the stack's Elastic IP), or use `mode: letsencrypt-ip`, which needs no domain"
        } else {
            "add `domain: shop.example.org` under tls (a name whose DNS you control), or use `mode: self-signed`"
        };
        c.error(
            at,
            "tls.domain",
            format!("tls mode `{}` needs a domain", mode.as_str()),
            Some(hint.into()),
        );
    }
    let acme = matches!(mode, TlsMode::Letsencrypt | TlsMode::LetsencryptIp);
    let acme_server = match tls_raw.and_then(|t| t.acme_server.as_ref()) {
        None => crate::stack::LETSENCRYPT_DIRECTORY.to_string(),
        Some(v) => {
            if !acme {
                c.error(
                    v.into(),
                    "tls.acme_server",
                    format!("tls mode `{}` uses no ACME server", mode.as_str()),
                    Some("remove `acme_server`, or use a letsencrypt mode".into()),
                );
            } else if !v.value.starts_with("https://")
                || v.value.len() > 512
                || v.value
                    .contains(|ch: char| ch.is_whitespace() || ch == '\'' || ch == '"')
            {
                c.error(
                    v.into(),
                    "tls.acme_server",
                    format!("`{}` is not an https:// ACME directory URL", v.value),
                    Some(format!(
                        "use e.g. {} (the default) or Let's Encrypt's staging directory",
                        crate::stack::LETSENCRYPT_DIRECTORY
                    )),
                );
            }
            v.value.clone()
        }
    };
    let tls = Tls {
        mode,
        domain,
        acme_server,
    };

    // load balancer
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
    let load_balancer = (kind != StackKind::Monolith).then(|| {
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
    });

    // instances
    let inst_raw = raw.instances.as_ref().map(|i| &i.value);
    let inst_at = at_of(&raw.instances, top);
    let default_type = if kind == StackKind::Asg {
        "t3.micro"
    } else {
        "t3.small"
    };
    let instance_type = match inst_raw.and_then(|i| i.instance_type.as_ref()) {
        None => default_type.to_string(),
        Some(t) => {
            match t.value.split_once('.') {
                Some((family, size))
                    if !family.is_empty()
                        && family
                            .chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
                        && !size.is_empty() =>
                {
                    if lab && !LAB_INSTANCE_SIZES.contains(&size) {
                        c.error(
                            t.into(),
                            "instances.type",
                            format!(
                                "the Learner Lab allows instance sizes {} only, not `{size}`",
                                LAB_INSTANCE_SIZES.join(", ")
                            ),
                            Some(format!(
                                "use e.g. {family}.micro or {family}.large, {NO_SANDBOX_HINT}"
                            )),
                        );
                    }
                }
                _ => c.error(
                    t.into(),
                    "instances.type",
                    format!("`{}` is not an EC2 instance type", t.value),
                    Some("write it as family.size, e.g. t3.micro".into()),
                ),
            }
            t.value.clone()
        }
    };
    let counts_given =
        inst_raw.is_some_and(|i| i.min.is_some() || i.max.is_some() || i.desired.is_some());
    let (min, max, desired) = if kind == StackKind::Asg {
        let min = c.int(
            &inst_raw.and_then(|i| i.min.clone()),
            inst_at,
            "instances.min",
            2,
            (0, 100),
            None,
        );
        let max = c.int(
            &inst_raw.and_then(|i| i.max.clone()),
            inst_at,
            "instances.max",
            3,
            (1, 100),
            None,
        );
        let desired_field = inst_raw.and_then(|i| i.desired.clone());
        let desired = c.int(
            &desired_field,
            inst_at,
            "instances.desired",
            min.max(2).min(max) as i64,
            (0, 100),
            None,
        );
        if min > max {
            let at = at_of(&inst_raw.and_then(|i| i.min.clone()), inst_at);
            c.error(
                at,
                "instances.min",
                format!("min {min} is above max {max}"),
                Some("it must hold that min ≤ desired ≤ max".into()),
            );
        } else if desired < min || desired > max {
            let at = at_of(&desired_field, inst_at);
            c.error(
                at,
                "instances.desired",
                format!("desired {desired} is outside min {min} .. max {max}"),
                Some("it must hold that min ≤ desired ≤ max".into()),
            );
        }
        if lab && max > LAB_MAX_INSTANCES {
            let at = at_of(&inst_raw.and_then(|i| i.max.clone()), inst_at);
            c.error(at, "instances.max", format!("{max} is above the Learner Lab limit of {LAB_MAX_INSTANCES} running instances (20 or more deactivates the account)"),
                Some(format!("lower it to {LAB_MAX_INSTANCES} or less, {NO_SANDBOX_HINT}")));
        }
        (min, max, desired)
    } else {
        if counts_given {
            c.error(
                inst_at,
                "instances",
                format!("a {} stack does not take min/max/desired", kind.as_str()),
                Some(if kind == StackKind::Swarm {
                    "set the node counts under `swarm: {managers, workers}`".into()
                } else {
                    "a monolith is one instance; remove min, max and desired".into()
                }),
            );
        }
        (1, 1, 1)
    };
    let max_gb = if lab { LAB_MAX_GB } else { 16384 };
    let volume_gb = c.int(
        &inst_raw.and_then(|i| i.volume_gb.clone()),
        inst_at,
        "instances.volume_gb",
        if kind == StackKind::Asg { 8 } else { 16 },
        (8, max_gb),
        lab.then_some("the Learner Lab allows EBS volumes of at most 100 GB"),
    );
    let volume_type = c.choice(
        &inst_raw.and_then(|i| i.volume_type.clone()),
        "instances.volume_type",
        &["gp2", "gp3"],
        "gp3",
    );
    let instance_profile = match inst_raw.and_then(|i| i.instance_profile.as_ref()) {
        // The Learner Lab always has it; elsewhere the user names one (or none).
        None => lab.then(|| "LabInstanceProfile".to_string()),
        Some(p) if p.value.is_empty() || p.value == "none" => None,
        Some(p) => Some(p.value.clone()),
    };
    let instances = Instances {
        instance_type,
        min,
        max,
        desired,
        volume_gb,
        volume_type,
        instance_profile,
    };

    // scaling (asg only)
    let scaling = match (kind, raw.scaling.as_ref()) {
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
    };

    // database (asg only: the monolith embeds its database, the swarm runs it as a service)
    let database = match (kind, raw.database.as_ref()) {
        (StackKind::Asg | StackKind::Swarm, d) => {
            let d = d.map(|d| &d.value);
            let engine_version = match d.and_then(|d| d.engine_version.as_ref()) {
                None => "8.0".to_string(),
                Some(v) => {
                    if !v.value.starts_with("8.") {
                        c.error(
                            v.into(),
                            "database.engine_version",
                            format!("MySQL `{}` is not supported", v.value),
                            Some("use MySQL 8, e.g. \"8.0\" or \"8.4\"".into()),
                        );
                    }
                    v.value.clone()
                }
            };
            let instance_class = match d.and_then(|d| d.instance_class.as_ref()) {
                None => "db.t3.micro".to_string(),
                Some(v) => {
                    let parts: Vec<&str> = v.value.split('.').collect();
                    if parts.len() != 3 || parts[0] != "db" {
                        c.error(
                            v.into(),
                            "database.instance_class",
                            format!("`{}` is not an RDS instance class", v.value),
                            Some("write it as db.family.size, e.g. db.t3.micro".into()),
                        );
                    } else if lab && !LAB_DB_SIZES.contains(&parts[2]) {
                        c.error(
                            v.into(),
                            "database.instance_class",
                            format!(
                                "the Learner Lab allows RDS classes up to medium, not `{}`",
                                v.value
                            ),
                            Some(format!(
                                "use db.t3.micro, db.t3.small or db.t3.medium, {NO_SANDBOX_HINT}"
                            )),
                        );
                    }
                    v.value.clone()
                }
            };
            let storage_gb = c.int(
                &d.and_then(|d| d.storage_gb.clone()),
                top,
                "database.storage_gb",
                20,
                (20, max_gb),
                lab.then_some("RDS needs at least 20 GB and the Learner Lab allows at most 100 GB"),
            );
            let storage_type = c.choice(
                &d.and_then(|d| d.storage_type.clone()),
                "database.storage_type",
                &["gp2", "gp3"],
                "gp2",
            );
            let backup_retention_days = c.int(
                &d.and_then(|d| d.backup_retention_days.clone()),
                top,
                "database.backup_retention_days",
                1,
                (0, 35),
                None,
            );
            Some(Database {
                engine_version,
                instance_class,
                storage_gb,
                storage_type,
                backup_retention_days,
                multi_az: d.and_then(|d| d.multi_az.as_ref()).is_some_and(|v| v.value),
                final_snapshot: d
                    .and_then(|d| d.final_snapshot.as_ref())
                    .is_some_and(|v| v.value),
            })
        }
        // The monolith's own database section is read below.
        _ => None,
    };
    let vm_database = (kind == StackKind::Monolith).then(|| {
        let d = raw.database.as_ref().map(|d| &d.value);
        if let Some(d) = d {
            // RDS settings in a monolith are a mistake worth naming: it has no RDS.
            let rds = [
                ("engine_version", d.engine_version.as_ref().map(At::from)),
                ("instance_class", d.instance_class.as_ref().map(At::from)),
                ("storage_gb", d.storage_gb.as_ref().map(At::from)),
                ("storage_type", d.storage_type.as_ref().map(At::from)),
                ("backup_retention_days", d.backup_retention_days.as_ref().map(At::from)),
                ("multi_az", d.multi_az.as_ref().map(At::from)),
            ];
            for (field, at) in rds {
                if let Some(at) = at {
                    c.error(at, &format!("database.{field}"),
                        format!("`{field}` is an RDS setting; a monolith runs MariaDB on its own VM"),
                        Some("remove it (a monolith's database takes placement, volume_gb and final_snapshot), or use kind: asg for RDS".into()));
                }
            }
        }
        let placement = match c
            .choice(
                &d.and_then(|d| d.placement.clone()),
                "database.placement",
                &["same-vm", "separate-vm"],
                "same-vm",
            )
            .as_str()
        {
            "separate-vm" => Placement::SeparateVm,
            _ => Placement::SameVm,
        };
        let volume_gb = c.int(
            &d.and_then(|d| d.volume_gb.clone()),
            top,
            "database.volume_gb",
            8,
            (1, max_gb),
            lab.then_some("the Learner Lab allows EBS volumes of at most 100 GB"),
        );
        VmDatabase {
            placement,
            volume_gb,
            final_snapshot: d
                .and_then(|d| d.final_snapshot.as_ref())
                .is_some_and(|v| v.value),
        }
    });
    if kind != StackKind::Monolith
        && let Some(d) = raw.database.as_ref()
    {
        for (field, at) in [
            ("placement", d.value.placement.as_ref().map(At::from)),
            ("volume_gb", d.value.volume_gb.as_ref().map(At::from)),
        ] {
            if let Some(at) = at {
                c.error(
                    at,
                    &format!("database.{field}"),
                    format!(
                        "`{field}` is a monolith setting; the {} stack's database is RDS",
                        kind.as_str()
                    ),
                    Some("remove it, or use storage_gb for the RDS storage".into()),
                );
            }
        }
    }

    let file_system = match (kind, raw.file_system.as_ref()) {
        (StackKind::Asg | StackKind::Swarm, f) => Some(FileSystem {
            encrypted: f
                .and_then(|f| f.value.encrypted.as_ref())
                .is_none_or(|v| v.value),
        }),
        (_, Some(f)) => {
            c.error(
                f.into(),
                "file_system",
                format!("a {} stack takes no `file_system` section", kind.as_str()),
                Some("remove this section".into()),
            );
            None
        }
        (_, None) => None,
    };
    if let Some(fs) = &file_system
        && !fs.encrypted
        && let Some(f) = &raw.file_system
    {
        c.error(
            f.into(),
            "file_system.encrypted",
            "the file system must be encrypted at rest",
            Some("remove `encrypted: false`".into()),
        );
    }

    let swarm = match (kind, raw.swarm.as_ref()) {
        (StackKind::Swarm, s) => {
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
            Some(Swarm {
                managers,
                workers,
                replicas,
            })
        }
        (_, Some(s)) => {
            c.error(
                s.into(),
                "swarm",
                format!("a {} stack takes no `swarm` section", kind.as_str()),
                Some("remove this section, or use kind: swarm".into()),
            );
            None
        }
        (_, None) => None,
    };

    Stack {
        source: source.to_string(),
        name,
        kind,
        region,
        sandbox,
        tags,
        network,
        app,
        tls,
        load_balancer,
        instances,
        scaling,
        database,
        vm_database,
        file_system,
        swarm,
    }
}

fn check_tags(c: &mut Checker, raw: &Field<BTreeMap<String, String>>) -> BTreeMap<String, String> {
    let Some(tags) = raw else {
        return BTreeMap::new();
    };
    let at = At::from(tags);
    if tags.value.len() > 40 {
        c.error(
            at,
            "tags",
            format!(
                "{} tags given; at most 40 fit beside the ones bookstore adds",
                tags.value.len()
            ),
            None,
        );
    }
    for (k, v) in &tags.value {
        let lower = k.to_ascii_lowercase();
        if lower.starts_with("aws:") || lower.starts_with("bookstore:") || k == "Name" {
            c.error(at, &format!("tags.{k}"), format!("the tag key `{k}` is reserved"),
                Some("keys starting with aws: or bookstore:, and Name, are set by AWS or by bookstore".into()));
        } else if k.is_empty() || k.len() > 128 || v.len() > 256 {
            c.error(
                at,
                &format!("tags.{k}"),
                "tag keys must be 1–128 characters and values at most 256",
                None,
            );
        }
    }
    tags.value.clone()
}

fn valid_domain(d: &str) -> bool {
    d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_stacks_are_valid() {
        for (name, text) in BUILT_IN {
            let stack = parse(name, text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(stack.name, *name);
        }
    }

    #[test]
    fn errors_carry_line_column_and_field() {
        let text = "version: 1\nname: x\nkind: asg\ninstances:\n  min: 3\n  max: 12\n";
        let errors = parse("x.yaml", text).unwrap_err().0;
        let max = errors
            .iter()
            .find(|d| d.field == "instances.max")
            .expect("max error");
        assert_eq!((max.line, max.column), (6, 8));
        assert!(max.message.contains("Learner Lab"));
    }
}
