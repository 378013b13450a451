//! Looks at a VM's live endpoint: the certificate it serves, for `status` (the self-signed
//! fallback or the ACME one, who issued it, until when), and whether the app answers its health
//! check through the proxy, for `up`'s wait. The handshake accepts any certificate on purpose: it
//! reports, it does not trust (a fresh monolith serves its self-signed fallback first).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// What the endpoint served.
pub struct Served {
    pub subject: String,
    pub issuer: String,
    pub not_after: String,
    pub self_signed: bool,
}

#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The port `status` reads the certificate on: 443, or `BOOKSTORE_HTTPS_PROBE_PORT` (tests, or a
/// proxy in between).
pub fn https_port() -> u16 {
    std::env::var("BOOKSTORE_HTTPS_PROBE_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(443)
}

/// The port the app's health is asked on without TLS: 80, or `BOOKSTORE_HTTP_PROBE_PORT`.
pub fn http_port() -> u16 {
    std::env::var("BOOKSTORE_HTTP_PROBE_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(80)
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A TLS connection to `ip:port` that takes any certificate, within 5 s.
async fn connect_tls(ip: IpAddr, port: u16) -> Result<Tls, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let handshake = async {
        let tcp = tokio::net::TcpStream::connect((ip, port))
            .await
            .map_err(|e| format!("cannot connect to {ip}:{port}: {e}"))?;
        connector
            .connect(ServerName::IpAddress(ip.into()), tcp)
            .await
            .map_err(|e| format!("TLS handshake with {ip}:{port} failed: {e}"))
    };
    tokio::time::timeout(Duration::from_secs(5), handshake)
        .await
        .map_err(|_| format!("{ip}:{port} did not answer within 5 s"))?
}

/// `GET /healthz` through the VM's proxy (HTTPS on 443 with `tls`, else HTTP on 80): Ok when
/// it answers 200; else what it did, for the wait's message.
pub async fn app_health(ip: IpAddr, tls: bool) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (scheme, port) = if tls {
        ("https", https_port())
    } else {
        ("http", http_port())
    };
    let url = format!("{scheme}://{ip}:{port}/healthz");
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n");
    let exchange = async {
        let mut head = vec![0u8; 256];
        let n = if tls {
            let mut s = connect_tls(ip, port).await?;
            s.write_all(request.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            s.read(&mut head).await.map_err(|e| e.to_string())?
        } else {
            let mut s = tokio::net::TcpStream::connect((ip, port))
                .await
                .map_err(|e| format!("cannot connect: {e}"))?;
            s.write_all(request.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            s.read(&mut head).await.map_err(|e| e.to_string())?
        };
        let text = String::from_utf8_lossy(&head[..n]).to_string();
        let status = text.lines().next().unwrap_or_default().to_string();
        Ok::<String, String>(status)
    };
    let status = tokio::time::timeout(Duration::from_secs(8), exchange)
        .await
        .map_err(|_| format!("{url} did not answer within 8 s"))?
        .map_err(|e| format!("{url}: {e}"))?;
    // `HTTP/1.1 503 Service Unavailable` → `503 Service Unavailable`.
    match status.trim().split_once(' ') {
        Some((_, answer)) if answer.starts_with("200") => Ok(()),
        Some((_, answer)) => Err(format!("{url} answered {answer}")),
        None => Err(format!("{url} sent no HTTP status line")),
    }
}

/// The leaf certificate served at `ip:port`, within a few seconds; an error says why not.
pub async fn served_certificate(ip: IpAddr, port: u16) -> Result<Served, String> {
    let tls = connect_tls(ip, port).await?;
    let der = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("the server sent no certificate")?
        .clone();
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| format!("the served certificate does not parse: {e}"))?;
    Ok(Served {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_after: cert.validity().not_after.to_string(),
        self_signed: cert.subject() == cert.issuer(),
    })
}
