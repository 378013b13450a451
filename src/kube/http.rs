//! One HTTP/1.1 exchange on a new connection, over rustls or (for a registry on loopback only)
//! plain TCP: what the cluster's API client and the registry push share.

use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rustls::pki_types::ServerName;

/// `host[:port]` of an endpoint after its scheme, `port` when none is written.
pub fn host_port(authority: &str, port: u16) -> Result<(String, u16), String> {
    let authority = authority.trim_end_matches('/');
    match authority.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => Ok((
            h.to_string(),
            p.parse().map_err(|e| format!("port {p}: {e}"))?,
        )),
        _ => Ok((authority.to_string(), port)),
    }
}

/// A TLS client trusting exactly `roots`, with rustls' safe defaults.
pub fn tls_config(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

/// Sends `req` to `host:port`, TLS-checked with `tls` unless it is `None`; the whole answer.
pub async fn exchange(
    host: &str,
    port: u16,
    tls: Option<&Arc<rustls::ClientConfig>>,
    req: http::Request<Full<Bytes>>,
) -> Result<Answer, String> {
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let res = match tls {
        Some(tls) => {
            let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
            let stream = tokio_rustls::TlsConnector::from(Arc::clone(tls))
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {host}: {e}"))?;
            send(hyper_util::rt::TokioIo::new(stream), req).await?
        }
        None => send(hyper_util::rt::TokioIo::new(tcp), req).await?,
    };
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(Answer {
        status,
        headers,
        body: body.to_vec(),
    })
}

async fn send<T>(
    io: T,
    req: http::Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    sender.send_request(req).await.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn an_endpoint_gives_its_host_and_port_or_the_default() {
        let ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
        assert_eq!(host_port(ecr, 443).unwrap(), (ecr.to_string(), 443));
        assert_eq!(
            host_port("127.0.0.1:5000/", 80).unwrap(),
            ("127.0.0.1".to_string(), 5000)
        );
        assert!(host_port("h:99999", 443).is_err());
    }
}
