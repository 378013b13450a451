//! Identity tokens, for the split: accounts signs who is logged in (Ed25519), and catalog and
//! orders verify it with accounts' public keys, without reading accounts' tables. A token is good
//! for minutes (`--identity-secs`); then the service asks accounts again with the session cookie,
//! which answers only while the session exists. A logout is published as the session's id in
//! accounts' revocation list, which the services poll every `--revocation-poll-secs`.
//!
//! Format: `KID.PAYLOAD.SIGNATURE` (base64url), the signature over `KID.PAYLOAD`; the payload is
//! JSON {u: user id, n: name, a: admin, s: session id, e: expiry (Unix seconds)}.

use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ports::User;

pub const IDENTITY_COOKIE: &str = "bs_id";

#[derive(Serialize, Deserialize)]
struct Claims {
    u: i64,
    n: String,
    a: bool,
    s: String,
    e: i64,
}

/// The id of a session in tokens and revocations: a prefix of the hash of its cookie's token (the
/// cookie itself never leaves accounts).
pub fn session_id(session_token: &str) -> String {
    crate::web::token_hash(session_token)[..32].to_string()
}

/// A public key's id: the first 8 bytes of its SHA-256, hex.
fn key_id(public: &[u8]) -> String {
    Sha256::digest(public)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads the signing keys: base64 PKCS#8 Ed25519 documents, one per line (blank lines and `#`
/// comments skipped), each checked.
pub fn read_keys(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read --identity-key-file {}: {e}", path.display()))?;
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let der = STANDARD
            .decode(line)
            .ok()
            .filter(|der| Ed25519KeyPair::from_pkcs8(der).is_ok())
            .ok_or_else(|| {
                format!(
                    "{}:{}: not a base64 PKCS#8 Ed25519 key: make one with `bookstore-app identity-key`",
                    path.display(),
                    n + 1
                )
            })?;
        keys.push(der);
    }
    if keys.is_empty() {
        return Err(format!(
            "{} holds no key: make one with `bookstore-app identity-key`",
            path.display()
        ));
    }
    Ok(keys)
}

/// A new signing key, base64 PKCS#8 (`bookstore-app identity-key`).
pub fn generate() -> Result<String, String> {
    let rng = ring::rand::SystemRandom::new();
    let der = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| "cannot make a key".to_string())?;
    Ok(STANDARD.encode(der.as_ref()))
}

/// accounts' keys: the first signs; all are published for verifying.
pub struct Signer {
    keys: Vec<(String, Ed25519KeyPair)>,
}

impl Signer {
    pub fn new(documents: &[Vec<u8>]) -> Result<Signer, String> {
        let keys = documents
            .iter()
            .map(|der| {
                let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|_| "a bad identity key")?;
                Ok((key_id(pair.public_key().as_ref()), pair))
            })
            .collect::<Result<Vec<_>, String>>()?;
        if keys.is_empty() {
            return Err("no identity key".into());
        }
        Ok(Signer { keys })
    }

    /// A token for this user of this session, good until `expires`.
    pub fn sign(&self, user: &User, session: &str, expires: i64) -> String {
        let claims = Claims {
            u: user.id,
            n: user.name.clone(),
            a: user.is_admin,
            s: session.to_string(),
            e: expires,
        };
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialize"));
        let (kid, pair) = &self.keys[0];
        let signed = format!("{kid}.{payload}");
        let signature = URL_SAFE_NO_PAD.encode(pair.sign(signed.as_bytes()).as_ref());
        format!("{signed}.{signature}")
    }

    /// The public keys by id, base64 (accounts' `/internal/keys`).
    pub fn public_keys(&self) -> HashMap<String, String> {
        self.keys
            .iter()
            .map(|(kid, pair)| (kid.clone(), STANDARD.encode(pair.public_key().as_ref())))
            .collect()
    }
}

/// Why a token does not name a user.
#[derive(Debug, PartialEq, Eq)]
pub enum Rejected {
    Malformed,
    /// Signed by a key this service does not know (yet): ask accounts for its keys.
    UnknownKey,
    BadSignature,
    Expired,
    Revoked,
}

/// What catalog and orders know of accounts' keys and logouts.
#[derive(Default)]
pub struct Verifier {
    keys: RwLock<HashMap<String, Vec<u8>>>,
    /// Session ids logged out, with when this service learned it (kept a token lifetime).
    revoked: RwLock<HashMap<String, i64>>,
}

impl Verifier {
    pub fn set_keys(&self, keys: HashMap<String, Vec<u8>>) {
        if let Ok(mut k) = self.keys.write() {
            *k = keys;
        }
    }

    pub fn revoke(&self, sessions: impl IntoIterator<Item = String>, now: i64, keep_secs: i64) {
        if let Ok(mut r) = self.revoked.write() {
            r.retain(|_, at| *at > now - keep_secs);
            r.extend(sessions.into_iter().map(|s| (s, now)));
        }
    }

    /// The user a token names, if it is well signed by a known key, unexpired and not revoked.
    /// A token seen before on this thread skips the signature check (the expiry and the
    /// revocations are checked every time): one Ed25519 check took ~half a catalog page's CPU.
    pub fn verify(&self, token: &str, now: i64) -> Result<(User, String, i64), Rejected> {
        thread_local! {
            static SEEN: std::cell::RefCell<HashMap<String, (User, String, i64)>> =
                std::cell::RefCell::new(HashMap::new());
        }
        let seen = SEEN.with(|s| s.borrow().get(token).cloned());
        let (user, session, expires) = match seen {
            Some(v) => v,
            None => {
                let v = self.check_signature(token)?;
                SEEN.with(|s| {
                    let mut s = s.borrow_mut();
                    // Bounded: expired ones go first, and all when it is still full.
                    if s.len() >= 4096 {
                        s.retain(|_, (_, _, e)| *e > now);
                        if s.len() >= 4096 {
                            s.clear();
                        }
                    }
                    s.insert(token.to_string(), v.clone());
                });
                v
            }
        };
        if expires <= now {
            return Err(Rejected::Expired);
        }
        if self.revoked.read().is_ok_and(|r| r.contains_key(&session)) {
            return Err(Rejected::Revoked);
        }
        Ok((user, session, expires))
    }

    /// The claims of a token well signed by a known key (expiry and revocation not checked).
    fn check_signature(&self, token: &str) -> Result<(User, String, i64), Rejected> {
        let mut parts = token.splitn(3, '.');
        let (Some(kid), Some(payload), Some(signature)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejected::Malformed);
        };
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Rejected::Malformed)?;
        {
            let keys = self.keys.read().map_err(|_| Rejected::UnknownKey)?;
            let public = keys.get(kid).ok_or(Rejected::UnknownKey)?;
            let signed = &token[..kid.len() + 1 + payload.len()];
            UnparsedPublicKey::new(&ED25519, public)
                .verify(signed.as_bytes(), &signature)
                .map_err(|_| Rejected::BadSignature)?;
        }
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(Rejected::Malformed)?;
        Ok((
            User {
                id: claims.u,
                name: claims.n,
                is_admin: claims.a,
            },
            claims.s,
            claims.e,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        let der = STANDARD.decode(generate().unwrap()).unwrap();
        Signer::new(&[der]).unwrap()
    }

    fn verifier_of(s: &Signer) -> Verifier {
        let v = Verifier::default();
        v.set_keys(
            s.public_keys()
                .into_iter()
                .map(|(k, p)| (k, STANDARD.decode(p).unwrap()))
                .collect(),
        );
        v
    }

    fn ann() -> User {
        User {
            id: 7,
            name: "Ann".into(),
            is_admin: false,
        }
    }

    #[test]
    fn a_token_names_its_user_until_it_expires_or_is_revoked() {
        let s = signer();
        let v = verifier_of(&s);
        let token = s.sign(&ann(), "sid1", 1_000);
        let (user, sid, _) = v.verify(&token, 999).unwrap();
        assert_eq!(
            (user.id, user.name.as_str(), sid.as_str()),
            (7, "Ann", "sid1")
        );
        assert_eq!(v.verify(&token, 1_000).unwrap_err(), Rejected::Expired);
        v.revoke(["sid1".to_string()], 500, 600);
        assert_eq!(v.verify(&token, 999).unwrap_err(), Rejected::Revoked);
    }

    #[test]
    fn forged_or_foreign_tokens_are_refused() {
        let s = signer();
        let v = verifier_of(&s);
        let token = s.sign(&ann(), "sid1", 1_000);
        // Another user id in the same signature.
        let (head, _) = token.rsplit_once('.').unwrap();
        let (kid, _) = head.split_once('.').unwrap();
        let forged_payload =
            URL_SAFE_NO_PAD.encode(br#"{"u":1,"n":"Admin","a":true,"s":"x","e":99999}"#);
        let sig = token.rsplit_once('.').unwrap().1;
        let forged = format!("{kid}.{forged_payload}.{sig}");
        assert_eq!(v.verify(&forged, 10).unwrap_err(), Rejected::BadSignature);
        // A key accounts does not have.
        let other = signer().sign(&ann(), "sid1", 1_000);
        assert_eq!(v.verify(&other, 10).unwrap_err(), Rejected::UnknownKey);
        assert_eq!(v.verify("nonsense", 10).unwrap_err(), Rejected::Malformed);
    }
}
