//! The cluster's side of the eks stack: the EKS token, one HTTPS client for the Kubernetes API
//! (server-side apply), the app's objects as data, and its container image (built here, pushed
//! through the registry API).

/// What went wrong talking to the cluster: the HTTP status when the API answered.
#[derive(Debug, Clone)]
pub struct Error {
    pub status: Option<u16>,
    pub message: String,
}

impl Error {
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            status: None,
            message: message.into(),
        }
    }
}

pub mod client;
mod http;
pub mod image;
pub mod manifests;
pub mod registry;
pub mod token;

/// The split services' database accounts, derived from the master password as the app's
/// `split-setup` derives them (app/src/split_derive.rs, compiled here too).
#[allow(dead_code)] // the CLI derives passwords; the app's set-up uses the rest
#[path = "../../app/src/split_derive.rs"]
pub mod split_derive;
