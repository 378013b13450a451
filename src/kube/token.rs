//! The EKS token, as `aws eks get-token` and aws-iam-authenticator make it: `k8s-aws-v1.` and the
//! base64url (no padding) of a presigned STS `GetCallerIdentity` GET whose signed headers include
//! `x-k8s-aws-id: <cluster name>`. The cluster calls STS with it to learn who is asking; the
//! header binds the token to one cluster. It is valid for 60 seconds of presign (EKS accepts up
//! to 15 minutes): one is made per run, never stored.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;

use super::Error;

pub const PREFIX: &str = "k8s-aws-v1.";
const CLUSTER_HEADER: &str = "x-k8s-aws-id";

/// The token for `cluster` from these credentials, signed at `now`.
pub fn presign(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<String, Error> {
    let host = format!("sts.{region}.amazonaws.com");
    let url = format!("https://{host}/?Action=GetCallerIdentity&Version=2011-06-15");
    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| Error::new(format!("cannot sign the EKS token: {e}")))?
        .into();
    let headers = [("host", host.as_str()), (CLUSTER_HEADER, cluster)];
    let signable = SignableRequest::new("GET", &url, headers.into_iter(), SignableBody::Bytes(&[]))
        .map_err(|e| Error::new(format!("cannot sign the EKS token: {e}")))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| Error::new(format!("cannot sign the EKS token: {e}")))?
        .into_parts();
    let mut request = http::Request::get(&url)
        .body(())
        .map_err(|e| Error::new(format!("cannot sign the EKS token: {e}")))?;
    instructions.apply_to_request_http1x(&mut request);
    let signed = request.uri().to_string();
    Ok(format!("{PREFIX}{}", base64url(signed.as_bytes())))
}

/// RFC 4648 §5 without padding, as the token wants it.
fn base64url(bytes: &[u8]) -> String {
    aws_smithy_types::base64::encode(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(token: &str) -> String {
        let b64 = token
            .strip_prefix(PREFIX)
            .unwrap()
            .replace('-', "+")
            .replace('_', "/");
        let padded = format!("{b64}{}", "=".repeat((4 - b64.len() % 4) % 4));
        String::from_utf8(aws_smithy_types::base64::decode(padded).unwrap()).unwrap()
    }

    #[test]
    fn the_token_is_a_presigned_get_caller_identity_bound_to_the_cluster() {
        let creds = Credentials::new("AKIDEXAMPLE", "secret", Some("session".into()), None, "t");
        let t = presign(
            &creds,
            "us-west-2",
            "bs-dev-eks-cluster",
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        )
        .unwrap();
        assert!(!t.contains('='), "no padding: {t}");
        let url = decode(&t);
        assert!(
            url.starts_with("https://sts.us-west-2.amazonaws.com/?"),
            "{url}"
        );
        for part in [
            "Action=GetCallerIdentity",
            "Version=2011-06-15",
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F20270115%2Fus-west-2%2Fsts%2Faws4_request",
            "X-Amz-Date=20270115T080000Z",
            "X-Amz-Expires=60",
            "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
            "X-Amz-Security-Token=session",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} in {url}");
        }
        // Another cluster, another signature: the header is signed.
        let other = presign(
            &creds,
            "us-west-2",
            "another-cluster",
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        )
        .unwrap();
        assert_ne!(t, other);
    }
}
