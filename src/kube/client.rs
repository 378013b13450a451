//! One Kubernetes API client for the eks stack: HTTPS over rustls, trusting only the cluster's own
//! CA (from DescribeCluster), the EKS token as the bearer. Objects are applied with server-side
//! apply (`PATCH …?fieldManager=bookstore&force=true`, `application/apply-patch+yaml`): the same
//! request creates, changes or leaves alone, so a second `up` is a no-op by construction.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::Error;

pub const FIELD_MANAGER: &str = "bookstore";

pub struct Kube {
    host: String,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    token: String,
}

fn err(what: impl std::fmt::Display) -> Error {
    Error::new(format!("the cluster's API: {what}"))
}

impl Kube {
    /// `endpoint` as DescribeCluster gives it (`https://host[:port]`), its CA as base64 PEM.
    pub fn new(endpoint: &str, ca_base64: &str, token: String) -> Result<Kube, Error> {
        let authority = endpoint
            .strip_prefix("https://")
            .ok_or_else(|| err(format!("`{endpoint}` is not an https URL")))?;
        let (host, port) = super::http::host_port(authority, 443).map_err(err)?;
        let pem = aws_smithy_types::base64::decode(ca_base64.trim())
            .map_err(|e| err(format!("the cluster's CA is not base64: {e}")))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots
                .add(cert.map_err(|e| err(format!("the cluster's CA: {e}")))?)
                .map_err(|e| err(format!("the cluster's CA: {e}")))?;
        }
        if roots.is_empty() {
            return Err(err("the cluster gave no CA certificate"));
        }
        Ok(Kube {
            host,
            port,
            tls: super::http::tls_config(roots).map_err(err)?,
            token,
        })
    }

    /// One request; the status and the body. Network trouble and timeouts are errors.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), Error> {
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("authorization", format!("Bearer {}", self.token))
            .header("accept", "application/json");
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(err)?;
        let work = async {
            let a = super::http::exchange(&self.host, self.port, Some(&self.tls), req)
                .await
                .map_err(err)?;
            Ok((a.status, a.body))
        };
        tokio::time::timeout(Duration::from_secs(30), work)
            .await
            .map_err(|_| err(format!("{} did not answer within 30 s", self.host)))?
    }

    fn answer(
        &self,
        what: &str,
        (status, body): (u16, Vec<u8>),
    ) -> Result<Option<serde_json::Value>, Error> {
        match status {
            200..=299 => Ok(Some(serde_json::from_slice(&body).unwrap_or_default())),
            404 => Ok(None),
            401 | 403 => Err(Error {
                status: Some(status),
                message: format!(
                    "the cluster refused {what} ({status}): the caller needs an access entry with cluster admin (bookstore makes the cluster with one for its creator)"
                ),
            }),
            _ => {
                let message = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_string))
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
                Err(Error {
                    status: Some(status),
                    message: format!("{what}: {message}"),
                })
            }
        }
    }

    pub async fn get(&self, path: &str) -> Result<Option<serde_json::Value>, Error> {
        let r = self.request("GET", path, None, Vec::new()).await?;
        self.answer(&format!("GET {path}"), r)
    }

    /// Server-side apply of one object at its path; the object as the server keeps it.
    pub async fn apply(
        &self,
        path: &str,
        object: &serde_json::Value,
    ) -> Result<serde_json::Value, Error> {
        let url = format!("{path}?fieldManager={FIELD_MANAGER}&force=true");
        let body = serde_json::to_vec(object).map_err(err)?;
        let r = self
            .request("PATCH", &url, Some("application/apply-patch+yaml"), body)
            .await?;
        Ok(self
            .answer(&format!("apply {path}"), r)?
            .unwrap_or_default())
    }

    /// Deletes one object; gone already is fine.
    pub async fn delete(&self, path: &str) -> Result<(), Error> {
        let r = self.request("DELETE", path, None, Vec::new()).await?;
        self.answer(&format!("DELETE {path}"), r).map(|_| ())
    }
}
