//! `tls`: how the stack gets its certificate (the modes differ by stack kind), the domain and the
//! ACME server.

use super::*;

pub(super) fn tls(c: &mut Checker, raw: &RawStack, kind: StackKind, top: At) -> Tls {
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
    Tls {
        mode,
        domain,
        acme_server,
    }
}
