//! `app`: the port the app listens on and the path the load balancer checks.

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
    App {
        port,
        health_check_path,
    }
}
