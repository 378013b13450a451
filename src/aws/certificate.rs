//! The TLS certificate of the HTTPS listener. `self-signed`: generated here (ECDSA P-256) for the
//! load balancer's DNS name and imported into ACM; the private key never touches disk, the journal
//! or a log. `acm`: requested from ACM with DNS validation; the wait shows the record to create.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_acm::primitives::Blob;
use aws_sdk_acm::types::{CertificateStatus, Filters, KeyAlgorithm, Tag, ValidationMethod};
use serde::Serialize;

use super::{
    Actions, AwsError, Budget, Charge, Cx, Deps, Desired, Drawing, ErrorClass, Module, Observed,
    Place, TAG_KEY, Want,
};
use crate::kinds::Kind;
use crate::reference::Ref;

/// `self-signed`: generated and imported; its names are the load balancer's DNS name (and the
/// domain, if any). `acm`: requested from ACM with DNS validation.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateSpec {
    pub load_balancer: Option<Ref>,
    pub domain: Option<String>,
    pub self_signed: bool,
}

pub struct Certificates;

fn acm_tags(cx: &Cx, want: &Want<'_, CertificateSpec>) -> Vec<Tag> {
    cx.owner
        .tags(want.key, want.name)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build().expect("key is set"))
        .collect()
}

/// The names the certificate must cover.
fn wanted_names(want: &Want<'_, CertificateSpec>, deps: &Deps) -> Vec<String> {
    let CertificateSpec {
        load_balancer,
        domain,
        ..
    } = want.spec;
    let mut names: Vec<String> = load_balancer
        .iter()
        .map(|k| {
            deps.get(k.as_str())
                .map(|o| o.attr("dns_name").to_string())
                .unwrap_or_default()
        })
        .collect();
    names.extend(domain.iter().cloned());
    names.sort();
    names
}

/// (year, month, day) of a Unix day number (Howard Hinnant's civil-from-days).
fn civil(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    ((yoe + era * 400 + i64::from(m <= 2)) as i32, m, d)
}

/// A fresh self-signed certificate and key (PEM), valid from yesterday for 397 days, the longest
/// that browsers accept for a leaf certificate.
fn self_signed(names: &[String]) -> Result<(String, String), AwsError> {
    let fail = |e: rcgen::Error| {
        AwsError::other(format!("cannot generate the self-signed certificate: {e}"))
    };
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(fail)?;
    let today = (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        / 86_400) as i64;
    let (y, m, d) = civil(today - 1);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = civil(today + 397);
    params.not_after = rcgen::date_time_ymd(y, m, d);
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "bookstore (self-signed)");
    let key = rcgen::KeyPair::generate().map_err(fail)?;
    let cert = params.self_signed(&key).map_err(fail)?;
    Ok((cert.pem(), key.serialize_pem()))
}

async fn describe(
    cx: &Cx,
    arn: &str,
    key: &str,
    owned: bool,
) -> Result<Option<Observed>, AwsError> {
    let out = match cx
        .acm
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            let e = AwsError::from(e);
            return if e.class == ErrorClass::NotFound {
                Ok(None)
            } else {
                Err(e)
            };
        }
    };
    let Some(c) = out.certificate() else {
        return Ok(None);
    };
    let mut o = Observed::new(Kind::Certificate, key, arn);
    o.owned = owned;
    o.name = c.domain_name().unwrap_or_default().to_string();
    o.state = c
        .status()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    o.ready = c.status() == Some(&CertificateStatus::Issued);
    let mut names: Vec<&str> = c
        .subject_alternative_names()
        .iter()
        .map(String::as_str)
        .collect();
    names.sort();
    names.dedup();
    o.facts.insert("names".into(), names.join(","));
    o.attrs.insert(
        "type".into(),
        c.r#type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
    );
    if c.status() == Some(&CertificateStatus::PendingValidation) {
        let records: Vec<String> = c
            .domain_validation_options()
            .iter()
            .filter_map(|v| v.resource_record())
            .map(|r| format!("{} {} {}", r.name(), r.r#type().as_str(), r.value()))
            .collect();
        if !records.is_empty() {
            o.attrs.insert(
                "waiting_for".into(),
                format!(
                    "create this DNS record at your DNS provider: {}",
                    records.join("; ")
                ),
            );
        }
    }
    Ok(Some(o))
}

#[async_trait]
impl Module for Certificates {
    type Spec = CertificateSpec;

    fn drawing(&self, spec: &Self::Spec) -> Drawing {
        let detail = if spec.self_signed {
            "certificate (self-signed, imported)"
        } else {
            "certificate (ACM, DNS-validated)"
        }
        .to_string();
        Drawing {
            detail,
            place: spec
                .load_balancer
                .clone()
                .map_or(Place::Stores, Place::With),
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
            observe: &[
                "acm:ListCertificates",
                "acm:DescribeCertificate",
                "acm:ListTagsForCertificate",
            ],
            change: &[
                "acm:ImportCertificate",
                "acm:RequestCertificate",
                "acm:AddTagsToCertificate",
                "acm:DeleteCertificate",
            ],
        }
    }

    fn outputs(&self, have: &Observed) -> Vec<(String, String)> {
        vec![("certificate_arn".into(), have.id.clone())]
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[Kind::Listener, Kind::LoadBalancer]
    }

    fn budget(&self) -> Budget {
        // DNS validation waits for a person to create a record.
        Budget {
            ready: Duration::from_secs(1800),
            poll_max: Duration::from_secs(30),
        }
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        // ListCertificates shows only RSA-2048 keys unless asked; ours are ECDSA P-256.
        let includes = Filters::builder()
            .key_types(KeyAlgorithm::Rsa2048)
            .key_types(KeyAlgorithm::EcPrime256v1)
            .build();
        let summaries: Vec<_> = cx
            .acm
            .list_certificates()
            .includes(includes)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await?;
        let mut found = Vec::new();
        for s in summaries {
            let Some(arn) = s.certificate_arn() else {
                continue;
            };
            let tags = cx
                .acm
                .list_tags_for_certificate()
                .certificate_arn(arn)
                .send()
                .await?;
            let pairs: Vec<(&str, &str)> = tags
                .tags()
                .iter()
                .map(|t| (t.key(), t.value().unwrap_or_default()))
                .collect();
            if !cx.owner.owns(pairs.iter().copied()) {
                continue;
            }
            let key = pairs
                .iter()
                .find(|(k, _)| *k == TAG_KEY)
                .map(|(_, v)| *v)
                .unwrap_or_default();
            if let Some(o) = describe(cx, arn, key, true).await? {
                found.push(o);
            }
        }
        Ok(found)
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        describe(cx, &have.id, &have.key, have.owned).await
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, CertificateSpec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let CertificateSpec {
            domain,
            self_signed: generate,
            ..
        } = want.spec;
        let arn = if *generate {
            let (cert, key) = self_signed(&wanted_names(want, deps))?;
            let out = cx
                .acm
                .import_certificate()
                .certificate(Blob::new(cert))
                .private_key(Blob::new(key))
                .set_tags(Some(acm_tags(cx, want)))
                .send()
                .await?;
            out.certificate_arn().unwrap_or_default().to_string()
        } else {
            // The idempotency token makes a retried request return the same certificate.
            let token: String = want
                .name
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(32)
                .collect();
            let out = cx
                .acm
                .request_certificate()
                .domain_name(domain.clone().unwrap_or_default())
                .validation_method(ValidationMethod::Dns)
                .idempotency_token(token)
                .set_tags(Some(acm_tags(cx, want)))
                .send()
                .await?;
            out.certificate_arn().unwrap_or_default().to_string()
        };
        let mut o = Observed::new(Kind::Certificate, want.key, arn);
        o.ready = false;
        o.state = "importing".into();
        Ok(self.refresh(cx, &o).await?.unwrap_or(o))
    }

    fn expected_facts(
        &self,
        want: &Want<'_, CertificateSpec>,
        deps: &Deps,
    ) -> BTreeMap<String, String> {
        BTreeMap::from([("names".into(), wanted_names(want, deps).join(","))])
    }

    async fn update(
        &self,
        cx: &Cx,
        want: &Want<'_, CertificateSpec>,
        have: &Observed,
        deps: &Deps,
    ) -> Result<bool, AwsError> {
        let CertificateSpec {
            self_signed: true, ..
        } = want.spec
        else {
            return Ok(false);
        };
        // Re-importing into the same ARN replaces the certificate without touching the listener.
        let (cert, key) = self_signed(&wanted_names(want, deps))?;
        cx.acm
            .import_certificate()
            .certificate_arn(&have.id)
            .certificate(Blob::new(cert))
            .private_key(Blob::new(key))
            .send()
            .await?;
        Ok(true)
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        cx.acm
            .delete_certificate()
            .certificate_arn(&have.id)
            .send()
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil(0), (1970, 1, 1));
        assert_eq!(super::civil(20_415), (2025, 11, 23));
        assert_eq!(super::civil(11_016), (2000, 2, 29));
    }
}
