//! Pushing the app's image to the env's ECR repository through the registry API (the Docker
//! Registry HTTP API v2, which ECR speaks), as `docker push` does, with the password of ECR's
//! GetAuthorizationToken: a blob the repository has is never sent again (HEAD first), a new one
//! goes as one upload (POST, PATCH with the bytes, PUT with its digest), then the manifest under
//! the image's tag. HTTPS with this machine's trusted roots; plain HTTP only to a loopback
//! registry (the tests' stand-in for ECR).

use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;

use super::Error;
use super::http::Answer;
use super::image::{Image, MANIFEST_TYPE};

pub struct Registry {
    https: bool,
    host: String,
    port: u16,
    /// `Basic …`: ECR's token is already `AWS:<password>` in base64.
    authorization: String,
    tls: Arc<rustls::ClientConfig>,
}

fn err(what: impl std::fmt::Display) -> Error {
    Error::new(format!("the image registry: {what}"))
}

impl Registry {
    /// `endpoint` as GetAuthorizationToken gives it (`https://<account>.dkr.ecr.<region>.amazonaws.com`).
    pub fn new(endpoint: &str, token: &str) -> Result<Registry, Error> {
        let (https, authority) = if let Some(a) = endpoint.strip_prefix("https://") {
            (true, a)
        } else if let Some(a) = endpoint.strip_prefix("http://") {
            (false, a)
        } else {
            return Err(err(format!("`{endpoint}` is not an http(s) URL")));
        };
        let (host, port) =
            super::http::host_port(authority, if https { 443 } else { 80 }).map_err(err)?;
        if !https && !["127.0.0.1", "localhost", "[::1]"].contains(&host.as_str()) {
            return Err(err(format!(
                "{endpoint}: plain HTTP is only for a registry on this machine"
            )));
        }
        let mut roots = rustls::RootCertStore::empty();
        if https {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
            if roots.is_empty() {
                return Err(err(
                    "this machine has no trusted root certificates to check ECR's with (install its CA certificates package)",
                ));
            }
        }
        let tls = super::http::tls_config(roots).map_err(err)?;
        Ok(Registry {
            https,
            host,
            port,
            authorization: if token.is_empty() {
                String::new()
            } else {
                format!("Basic {token}")
            },
            tls,
        })
    }

    async fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Answer, Error> {
        let mut req = http::Request::builder()
            .method(method)
            .uri(target)
            .header("host", &self.host)
            .header(
                "user-agent",
                concat!("bookstore/", env!("CARGO_PKG_VERSION")),
            );
        if !self.authorization.is_empty() {
            req = req.header("authorization", &self.authorization);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(err)?;
        let tls = self.https.then_some(&self.tls);
        let work = async {
            super::http::exchange(&self.host, self.port, tls, req)
                .await
                .map_err(err)
        };
        // A layer is a few MB: minutes at worst on a slow uplink.
        tokio::time::timeout(Duration::from_secs(300), work)
            .await
            .map_err(|_| err(format!("{} did not answer within 5 minutes", self.host)))?
    }

    fn refused(&self, what: &str, a: &Answer) -> Error {
        let detail = serde_json::from_slice::<serde_json::Value>(&a.body)
            .ok()
            .and_then(|v| v["errors"][0]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&a.body).chars().take(300).collect());
        let hint = match a.status {
            401 | 403 => {
                " (the caller may not push to this repository: ecr:InitiateLayerUpload, ecr:UploadLayerPart, ecr:CompleteLayerUpload, ecr:PutImage)"
            }
            _ => "",
        };
        Error {
            status: Some(a.status),
            message: format!(
                "the image registry refused {what} ({}): {detail}{hint}",
                a.status
            ),
        }
    }

    /// A plain GET of a file (RDS's CA bundle); anything but 200 is an error.
    pub async fn get(&self, path: &str) -> Result<Vec<u8>, Error> {
        let a = self.request("GET", path, &[], Vec::new()).await?;
        match a.status {
            200 => Ok(a.body),
            _ => Err(self.refused(&format!("GET {path}"), &a)),
        }
    }

    /// The digest of the manifest `repository:tag` names, if the repository has it.
    pub async fn manifest_digest(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<String>, Error> {
        let a = self
            .request(
                "HEAD",
                &format!("/v2/{repository}/manifests/{tag}"),
                &[("accept", MANIFEST_TYPE)],
                Vec::new(),
            )
            .await?;
        match a.status {
            200 => Ok(a
                .headers
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)),
            404 => Ok(None),
            _ => Err(self.refused(&format!("looking up {repository}:{tag}"), &a)),
        }
    }

    async fn has_blob(&self, repository: &str, digest: &str) -> Result<bool, Error> {
        let a = self
            .request(
                "HEAD",
                &format!("/v2/{repository}/blobs/{digest}"),
                &[],
                Vec::new(),
            )
            .await?;
        match a.status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.refused(&format!("looking up blob {digest}"), &a)),
        }
    }

    /// The path and query of an upload's `Location` (absolute or not, as registries send it).
    fn location(&self, a: &Answer, what: &str) -> Result<String, Error> {
        let raw = a
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| err(format!("{what}: no upload location in the answer")))?;
        Ok(match raw.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("/".into(), |i| rest[i..].to_string()),
            None => raw.to_string(),
        })
    }

    async fn push_blob(&self, repository: &str, digest: &str, bytes: &[u8]) -> Result<(), Error> {
        let what = format!("uploading {digest}");
        let start = self
            .request(
                "POST",
                &format!("/v2/{repository}/blobs/uploads/"),
                &[],
                Vec::new(),
            )
            .await?;
        if start.status != 202 {
            return Err(self.refused(&what, &start));
        }
        let at = self.location(&start, &what)?;
        let len = bytes.len().to_string();
        let sent = self
            .request(
                "PATCH",
                &at,
                &[
                    ("content-type", "application/octet-stream"),
                    ("content-length", &len),
                ],
                bytes.to_vec(),
            )
            .await?;
        if sent.status != 202 {
            return Err(self.refused(&what, &sent));
        }
        let at = self.location(&sent, &what)?;
        let sep = if at.contains('?') { '&' } else { '?' };
        let done = self
            .request(
                "PUT",
                &format!("{at}{sep}digest={digest}"),
                &[("content-length", "0")],
                Vec::new(),
            )
            .await?;
        if done.status != 201 {
            return Err(self.refused(&what, &done));
        }
        Ok(())
    }

    /// Pushes the blobs the repository lacks, then the manifest as `tag`; says each step through
    /// `progress`. Returns the bytes sent.
    pub async fn push(
        &self,
        repository: &str,
        tag: &str,
        image: &Image,
        progress: &(dyn Fn(String) + Sync),
    ) -> Result<u64, Error> {
        let mut sent = 0;
        for blob in &image.blobs {
            if self.has_blob(repository, &blob.digest).await? {
                continue;
            }
            progress(format!(
                "pushing {} ({:.1} MB)",
                &blob.digest[..19],
                blob.bytes.len() as f64 / 1e6
            ));
            self.push_blob(repository, &blob.digest, &blob.bytes)
                .await?;
            sent += blob.bytes.len() as u64;
        }
        let len = image.manifest.len().to_string();
        let a = self
            .request(
                "PUT",
                &format!("/v2/{repository}/manifests/{tag}"),
                &[("content-type", MANIFEST_TYPE), ("content-length", &len)],
                image.manifest.clone(),
            )
            .await?;
        if a.status != 201 {
            return Err(self.refused(&format!("the manifest {repository}:{tag}"), &a));
        }
        Ok(sent)
    }
}
