//! The cluster's side of the eks stack: the EKS token, one HTTPS client for the Kubernetes API
//! (server-side apply), and the app's objects as data.

pub mod client;
pub mod manifests;
pub mod token;
