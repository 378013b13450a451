//! `app`: the port the app listens on, the path the load balancer checks, and whether it runs
//! as one process or as the split's three services.

use super::*;

pub(super) fn app(c: &mut Checker, raw: &RawStack) -> App {
    let app_raw = raw.app.as_ref().map(|a| &a.value);
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
    let unset = None;
    let services = match c
        .choice(
            app_raw.map_or(&unset, |a| &a.services),
            "app.services",
            &["single", "split"],
            "single",
        )
        .as_str()
    {
        "split" => Services::Split,
        _ => Services::Single,
    };
    if services == Services::Split {
        let at = app_raw
            .and_then(|a| a.services.as_ref())
            .map_or(At(1, 1), At::from);
        let kind = raw.kind.value.as_str();
        let separate_db = raw
            .database
            .as_ref()
            .and_then(|d| d.value.placement.as_ref())
            .is_some_and(|p| p.value == "separate-vm");
        if kind == "monolith" && separate_db {
            c.error(
                at,
                "app.services",
                "`split` on a monolith needs its database on the same VM".to_string(),
                Some(
                    "use `database.placement: same-vm` with the split, or `services: single`"
                        .into(),
                ),
            );
        }
        if u32::from(port) + u32::from(SPLIT_PORT_SPAN) > 65535 {
            c.error(
                at,
                "app.services",
                format!(
                    "the split needs ports {} to {} and app.port is {port}",
                    u32::from(port) + 1,
                    u32::from(port) + u32::from(SPLIT_PORT_SPAN)
                ),
                Some(format!(
                    "use an app.port of at most {}",
                    65535 - SPLIT_PORT_SPAN
                )),
            );
        }
    }
    let replicas = replicas(c, raw, services);
    App {
        port,
        health_check_path,
        services,
        replicas,
    }
}

/// `app.replicas`: each split service's own count on swarm and eks (1–50).
fn replicas(c: &mut Checker, raw: &RawStack, services: Services) -> BTreeMap<AppService, u32> {
    let mut out = BTreeMap::new();
    let Some(field) = raw.app.as_ref().and_then(|a| a.value.replicas.as_ref()) else {
        return out;
    };
    let kind = raw.kind.value.as_str();
    if services != Services::Split || !matches!(kind, "swarm" | "eks") {
        let hint = match kind {
            "swarm" | "eks" => "add `services: split`, or remove app.replicas",
            "asg" => "an asg instance runs every service: scale with instances.min/max/desired",
            _ => "remove app.replicas: the monolith runs each service once",
        };
        c.error(
            field.into(),
            "app.replicas",
            "replicas per service are for the split on swarm and eks".to_string(),
            Some(hint.into()),
        );
        return out;
    }
    for (name, count) in &field.value {
        let Some(service) = AppService::ALL.into_iter().find(|s| s.as_str() == name) else {
            c.error(
                count.into(),
                "app.replicas",
                format!("`{name}` is not a service of the split"),
                Some("use accounts, catalog or orders".into()),
            );
            continue;
        };
        let n = c.int(
            &Some(count.clone()),
            field.into(),
            &format!("app.replicas.{name}"),
            1,
            (1, 50),
            None,
        );
        out.insert(service, n);
    }
    out
}
