//! One Kubernetes API client for the eks stack: HTTPS over rustls, trusting only the cluster's own
//! CA (from DescribeCluster), the EKS token as the bearer. Objects are applied with server-side
//! apply (`PATCH …?fieldManager=bookstore&force=true`, `application/apply-patch+yaml`): the same
//! request creates, changes or leaves alone, so a second `up` is a no-op by construction.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

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
            .ok_or_else(|| err(format!("`{endpoint}` is not an https URL")))?
            .trim_end_matches('/');
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => {
                (h.to_string(), p.parse().map_err(err)?)
            }
            _ => (authority.to_string(), 443),
        };
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
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(err)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Kube {
            host,
            port,
            tls: Arc::new(tls),
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
        let work = async {
            let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| {
                    err(format!(
                        "cannot connect to {}:{}: {e}",
                        self.host, self.port
                    ))
                })?;
            let name = ServerName::try_from(self.host.clone()).map_err(err)?;
            let tls = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls))
                .connect(name, tcp)
                .await
                .map_err(|e| err(format!("TLS with {}: {e}", self.host)))?;
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                    .await
                    .map_err(err)?;
            tokio::spawn(conn);
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
            let res = send.send_request(req).await.map_err(err)?;
            let status = res.status().as_u16();
            let bytes = res.into_body().collect().await.map_err(err)?.to_bytes();
            Ok((status, bytes.to_vec()))
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
