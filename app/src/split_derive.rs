//! The split services' database accounts, derived from the master password: `split-setup` makes
//! them on the server, and the CLI (which includes this file, `#[path]` in src/stack/mod.rs) puts
//! the same passwords into the eks stack's Kubernetes Secrets. Depends on `ring` only.

use ring::hmac;

pub const SERVICES: [&str; 3] = ["accounts", "catalog", "orders"];

/// The database and the user of a service: `bookstore_catalog`.
pub fn database_of(service: &str) -> String {
    format!("bookstore_{service}")
}

/// HMAC-SHA256 of `label` keyed by the master password.
pub fn derive(master: &str, label: &str) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, master.as_bytes());
    let tag = hmac::sign(&key, label.as_bytes());
    tag.as_ref().try_into().expect("HMAC-SHA256 is 32 bytes")
}

/// A service's database password: 43 characters of base64url (letters, digits, `-`, `_`), safe
/// inside a quoted SQL literal.
pub fn password_of(master: &str, service: &str) -> String {
    base64url(&derive(
        master,
        &format!("bookstore split database {service}"),
    ))
}

/// Unpadded base64url (RFC 4648 §5).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}
