//! The app on the eks stack's cluster: its Kubernetes objects (src/kube/manifests.rs), applied by
//! the CLI with server-side apply over the cluster's API, as the caller (the EKS token; the cluster
//! gives its creator admin through an access entry). The database credentials go from RDS's
//! managed secret into the Kubernetes Secret in memory: never printed, journaled or rendered. When
//! RDS rotates the password, the Secret shows as drifted (`status`) and the next `up` applies it
//! again; the kubelet refreshes the mounted file and the app reconnects with it.
//! Ready when the Deployment's replicas are all updated and available and the load balancer finds
//! every node it registered healthy. `down` deletes the
//! namespace (everything of the app) before the nodes and the cluster go.
//!
//! Split: three Deployments, each ready and healthy in its own target group. Before their
//! Secrets are applied, a Job makes the services' database accounts with the master Secret and
//! `up` waits for it; each service's password is derived from the master password the way the
//! Job derives it, so nothing is read back. The split's two keys are made here once and kept in
//! their Secret. A rotation runs a new Job (its name follows the RDS secret's version).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{
    Actions, AwsError, Budget, Charge, Cx, Deps, Desired, Drawing, Module, Observed, Place,
    Section, TAG_ENV, TAG_KEY, TAG_MANAGED_BY, TAG_STACK, Want, dep_id, gone_if_not_found,
    name_prefix,
};
use crate::artifact::{Artifact, ArtifactKind};
use crate::kinds::Kind;
use crate::kube::client::Kube;
use crate::kube::manifests::{self, APP, NAMESPACE};
use crate::kube::registry::Registry;
use crate::kube::split_derive;
use crate::reference::Ref;
use crate::stack::AppService;

/// What the plan says the app on the cluster should be.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadSpec {
    pub cluster: Ref,
    /// Pods need nodes to run on: the rollout waits for them.
    pub nodes: Ref,
    pub repository: Ref,
    pub database: Ref,
    pub file_system: Ref,
    /// The pods mount the file system: its mount targets must exist first.
    pub mount_targets: Vec<Ref>,
    /// The load balancer's target group: `up` ends when its targets (the nodes) are healthy.
    pub target_group: Ref,
    pub replicas: u32,
    pub app_port: u16,
    pub node_port: u16,
    pub health_check_path: String,
    /// The Linux app binary the image is built from (`up` refuses a source artifact).
    pub app: Artifact,
    pub region: String,
    /// The split's services (empty: one process); `target_group` is then the catalog's.
    pub split: Vec<SplitService>,
}

/// One service of the split on the cluster.
#[derive(Debug, Clone, Serialize)]
pub struct SplitService {
    pub service: AppService,
    pub replicas: u32,
    pub port: u16,
    pub internal_port: u16,
    pub node_port: u16,
    pub target_group: Ref,
}

impl WorkloadSpec {
    /// The image's tag in the repository: 12 hex digits of the app binary's sha256 and the image
    /// recipe (an immutable tag: the same app is never pushed twice).
    pub fn image_tag(&self) -> String {
        let both = format!("{}:{}", self.app.sha256, crate::kube::image::RECIPE);
        crate::artifact::sha256_hex(both.as_bytes())[..12].to_string()
    }
}

pub struct Workloads;

impl From<crate::kube::Error> for AwsError {
    fn from(e: crate::kube::Error) -> AwsError {
        AwsError {
            code: e.status.map(|s| format!("Kubernetes{s}")),
            message: e.message,
            // A conflict is another writer's moment: try again later.
            class: if e.status == Some(409) {
                super::ErrorClass::Dependency
            } else {
                super::ErrorClass::Other
            },
        }
    }
}

/// Kubernetes label keys of the owner tags (`bookstore:env` is not a valid label key).
fn label(tag: &str) -> String {
    tag.replace(':', "/")
}

/// The cluster's API as the caller, from the cluster's name.
async fn connect(cx: &Cx, cluster: &str) -> Result<Option<Kube>, AwsError> {
    let out = match cx.eks.describe_cluster().name(cluster).send().await {
        Ok(out) => out,
        Err(e) => return gone_if_not_found(e.into()),
    };
    let Some(c) = out.cluster() else {
        return Ok(None);
    };
    if c.status().map(|s| s.as_str()) != Some("ACTIVE") {
        return Ok(None);
    }
    let endpoint = c.endpoint().unwrap_or_default();
    let ca = c
        .certificate_authority()
        .and_then(|a| a.data())
        .unwrap_or_default();
    let provider = cx
        .credentials
        .as_ref()
        .ok_or_else(|| AwsError::other("no AWS credentials to make the EKS token with"))?;
    let credentials =
        aws_credential_types::provider::ProvideCredentials::provide_credentials(provider)
            .await
            .map_err(|e| AwsError {
                code: None,
                message: format!("AWS credentials for the EKS token: {e}"),
                class: super::ErrorClass::Credentials,
            })?;
    let token = crate::kube::token::presign(
        &credentials,
        &cx.region,
        cluster,
        std::time::SystemTime::now(),
    )?;
    Ok(Some(Kube::new(endpoint, ca, token)?))
}

/// The split's services as the manifests take them (the target groups' ARNs from `deps`).
fn processes<'a>(want: &'a Want<'_, WorkloadSpec>, deps: &'a Deps) -> Vec<manifests::Process<'a>> {
    want.spec
        .split
        .iter()
        .map(|s| manifests::Process {
            service: s.service.as_str(),
            replicas: s.replicas,
            port: s.port,
            internal_port: s.internal_port,
            node_port: s.node_port,
            target_group: dep_id(deps, &s.target_group),
        })
        .collect()
}

fn app<'a>(
    want: &'a Want<'_, WorkloadSpec>,
    deps: &'a Deps,
    labels: &'a [(&'a str, &'a str)],
    image: &'a str,
    nfs: &'a str,
    split: &'a [manifests::Process<'a>],
    credentials_version: &'a str,
) -> manifests::App<'a> {
    let target_group = deps
        .get(want.spec.target_group.as_str())
        .map(|t| t.id.as_str())
        .unwrap_or_default();
    manifests::App {
        labels,
        image,
        replicas: want.spec.replicas,
        app_port: want.spec.app_port,
        node_port: want.spec.node_port,
        health_path: &want.spec.health_check_path,
        db_endpoint: deps
            .get(want.spec.database.as_str())
            .map(|d| d.attr("endpoint"))
            .unwrap_or_default(),
        nfs_server: nfs,
        target_group,
        split,
        credentials_version,
    }
}

/// Where the CA bundle of RDS comes from: `BOOKSTORE_RDS_CA_BUNDLE` (a PEM file, for machines
/// that reach AWS through a proxy, and the tests), else RDS's trust store for the region.
async fn rds_ca(region: &str) -> Result<Vec<u8>, AwsError> {
    if let Some(path) = std::env::var_os("BOOKSTORE_RDS_CA_BUNDLE") {
        return std::fs::read(&path).map_err(|e| {
            AwsError::other(format!(
                "BOOKSTORE_RDS_CA_BUNDLE={}: {e}",
                std::path::Path::new(&path).display()
            ))
        });
    }
    let store = Registry::new("https://truststore.pki.rds.amazonaws.com", "")?;
    let pem = store
        .get(&format!("/{region}/{region}-bundle.pem"))
        .await
        .map_err(|e| {
            AwsError::other(format!(
                "RDS's CA bundle for the app's image: {} (or set BOOKSTORE_RDS_CA_BUNDLE to a copy of it)",
                e.message
            ))
        })?;
    if !String::from_utf8_lossy(&pem).contains("BEGIN CERTIFICATE") {
        return Err(AwsError::other(
            "RDS's trust store did not answer with a certificate bundle",
        ));
    }
    Ok(pem)
}

/// The app's image in the env's repository: pushed unless the repository has its tag already.
/// Returns `uri:tag@digest`, what the Deployment runs.
async fn ensure_image(
    cx: &Cx,
    want: &Want<'_, WorkloadSpec>,
    deps: &Deps,
) -> Result<String, AwsError> {
    let repository = dep_id(deps, &want.spec.repository);
    let tag = &want.spec.image_tag();
    let auth = cx.ecr.get_authorization_token().send().await?;
    let data = auth
        .authorization_data()
        .first()
        .ok_or_else(|| AwsError::other("ECR gave no authorization token"))?;
    let registry = Registry::new(
        data.proxy_endpoint().unwrap_or_default(),
        data.authorization_token().unwrap_or_default(),
    )?;
    let digest = match registry.manifest_digest(repository, tag).await? {
        Some(digest) => digest,
        None => {
            if want.spec.app.kind != ArtifactKind::Binary {
                return Err(AwsError::other(
                    "the app's image is built from the Linux bookstore-app binary, and this run has none (--app-binary PATH)",
                ));
            }
            // Read once and checked against the plan's hash.
            let binary = want.spec.app.bytes().map_err(AwsError::other)?;
            cx.phase(want.key, Kind::Workload, "building the app's image");
            let ca = rds_ca(&want.spec.region).await?;
            let image = crate::kube::image::build(binary, &ca)?;
            let say = |line: String| cx.phase(want.key, Kind::Workload, &line);
            registry.push(repository, tag, &image, &say).await?;
            image.digest
        }
    };
    Ok(format!("{}@{digest}", image_of(want, deps)))
}

fn image_of(want: &Want<'_, WorkloadSpec>, deps: &Deps) -> String {
    let uri = deps
        .get(want.spec.repository.as_str())
        .map(|r| r.attr("uri").to_string())
        .unwrap_or_default();
    format!("{uri}:{}", want.spec.image_tag())
}

fn nfs_of(want: &Want<'_, WorkloadSpec>, deps: &Deps) -> String {
    format!(
        "{}.efs.{}.amazonaws.com",
        dep_id(deps, &want.spec.file_system),
        want.spec.region
    )
}

/// The app as the cluster holds it, or `None` when it has none: one Deployment (`bookstore`),
/// or the split's three (`accounts`, `catalog`, `orders`).
async fn read(kube: &Kube, cluster: &str, cx: &Cx) -> Result<Option<Observed>, AwsError> {
    let mut deployments = Vec::new();
    let mut web_services = Vec::new();
    if let Some(d) = kube.get(&deployment_path(APP)).await? {
        deployments.push((None, d));
        web_services.push(APP.to_string());
    } else {
        for service in split_derive::SERVICES {
            if let Some(d) = kube.get(&deployment_path(service)).await? {
                deployments.push((Some(service), d));
                web_services.push(format!("{service}-web"));
            }
        }
    }
    let Some((_, first)) = deployments.first() else {
        return Ok(None);
    };
    let labels = &first["metadata"]["labels"];
    let tag = |t: &str| labels[label(t)].as_str().unwrap_or_default().to_string();
    let split = deployments[0].0.is_some();
    let mut o = Observed::new(Kind::Workload, tag(TAG_KEY), cluster);
    o.name = if split {
        format!("{cluster}/{NAMESPACE} (split)")
    } else {
        format!("{cluster}/{NAMESPACE}/{APP}")
    };
    o.owned = tag(TAG_MANAGED_BY) == "bookstore"
        && tag(TAG_STACK) == cx.owner.stack
        && tag(TAG_ENV) == cx.owner.env;
    let mut states = Vec::new();
    let mut waiting = Vec::new();
    let mut targets = Vec::new();
    let mut replicas = Vec::new();
    let mut images = Vec::new();
    let mut all_ready = true;
    for (service, d) in &deployments {
        let who = service.map_or(String::new(), |s| format!("{s} "));
        let want = d["spec"]["replicas"].as_u64().unwrap_or(0);
        let status = &d["status"];
        let n = |f: &str| status[f].as_u64().unwrap_or(0);
        let current = status["observedGeneration"].as_u64() >= d["metadata"]["generation"].as_u64();
        let rolled = current && n("updatedReplicas") == want && n("availableReplicas") == want;
        states.push(format!("{who}{}/{want}", n("availableReplicas")));
        replicas.push((who.clone(), want as u32));
        // Run by digest (`uri:tag@sha256:…`); the tag is what the plan names.
        let image = d["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or_default();
        if !images.iter().any(|i| i == image) {
            images.push(image.to_string());
        }
        if !rolled {
            all_ready = false;
            // Pods the API refuses (pod security, a quota) never come: say why.
            let refused = status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "ReplicaFailure" && c["status"] == "True")
                .and_then(|c| c["message"].as_str())
                .map(|m| format!(" (its pods are refused: {m})"))
                .unwrap_or_default();
            waiting.push(format!(
                "the {}Deployment has {} of {want} replicas updated and {} available{refused}",
                who,
                n("updatedReplicas"),
                n("availableReplicas")
            ));
            continue;
        }
        let Some(arn) = d["metadata"]["annotations"][manifests::TARGET_GROUP_ANNOTATION]
            .as_str()
            .filter(|a| !a.is_empty())
        else {
            continue;
        };
        // Then the load balancer: every node it has registered passes its health check (a
        // NodePort answers on every node).
        let health = super::target_group::health(cx, arn).await?;
        let healthy = health.iter().filter(|h| h.healthy()).count();
        targets.push(format!("{who}{healthy}/{} healthy", health.len()));
        if !super::target_group::all_healthy(&health) {
            all_ready = false;
            waiting.push(format!(
                "the load balancer's health checks of the nodes{}: {}",
                service.map_or(String::new(), |s| format!(" for {s}")),
                if health.is_empty() {
                    "no node registered yet".to_string()
                } else {
                    super::target_group::not_healthy(&health)
                }
            ));
        }
    }
    // The split's three, or which are missing.
    if split && deployments.len() < split_derive::SERVICES.len() {
        all_ready = false;
        waiting.push("the split's Deployments are not all there".into());
    }
    o.ready = all_ready;
    o.state = format!("{} available", states.join(", "));
    if !waiting.is_empty() {
        o.attrs.insert("waiting_for".into(), waiting.join("; "));
    }
    if !targets.is_empty() {
        o.facts.insert("targets".into(), targets.join(", "));
    }
    o.facts.insert(
        "services".into(),
        if split { "split" } else { "single" }.into(),
    );
    if split && replicas.len() < split_derive::SERVICES.len() {
        replicas.push(("missing".into(), 0));
    }
    o.facts.insert("replicas".into(), replicas_fact(&replicas));
    o.facts.insert(
        "image".into(),
        images
            .iter()
            .map(|i| i.split('@').next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(", "),
    );
    o.attrs.insert("image".into(), images.join(", "));
    o.facts
        .insert("credentials".into(), credentials_state(kube, cx).await?);
    let mut node_ports = Vec::new();
    for name in web_services {
        let service = kube.get(&service_path(&name)).await?.unwrap_or_default();
        node_ports.push(
            service["spec"]["ports"][0]["nodePort"]
                .as_u64()
                .unwrap_or_default()
                .to_string(),
        );
    }
    o.facts.insert("node_port".into(), node_ports.join(","));
    Ok(Some(o))
}

/// The replicas of each Deployment (`who` is `"accounts "`, or empty for one process): one number
/// when they agree.
fn replicas_fact(counts: &[(String, u32)]) -> String {
    if counts.iter().all(|(_, n)| *n == counts[0].1) {
        return counts[0].1.to_string();
    }
    counts
        .iter()
        .map(|(who, n)| format!("{who}{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn deployment_path(name: &str) -> String {
    format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}")
}

fn service_path(name: &str) -> String {
    format!("/api/v1/namespaces/{NAMESPACE}/services/{name}")
}

/// On the Secret: the RDS secret it was filled from, and that secret's version then.
const SECRET_ARN_ANNOTATION: &str = "bookstore/rds-secret";
const SECRET_VERSION_ANNOTATION: &str = "bookstore/rds-secret-version";

/// Whether the Secret holds RDS's current credentials: `current`, or `rotated` when RDS rotated
/// the password since (the pods then get the new one from the next `up`, which applies the
/// Secret again; the kubelet refreshes the mounted file within a minute and the app follows it).
async fn credentials_state(kube: &Kube, cx: &Cx) -> Result<String, AwsError> {
    let Some(secret) = kube
        .get(&format!(
            "/api/v1/namespaces/{NAMESPACE}/secrets/{}",
            manifests::SECRET
        ))
        .await?
    else {
        return Ok("missing".into());
    };
    let notes = &secret["metadata"]["annotations"];
    let (Some(arn), Some(applied)) = (
        notes[SECRET_ARN_ANNOTATION].as_str(),
        notes[SECRET_VERSION_ANNOTATION].as_str(),
    ) else {
        return Ok("unknown".into());
    };
    let described = match cx.secrets.describe_secret().secret_id(arn).send().await {
        Ok(d) => d,
        Err(e) => {
            return match gone_if_not_found::<()>(e.into()) {
                Ok(_) => Ok("gone".into()),
                Err(e) => Err(e),
            };
        }
    };
    let current = described
        .version_ids_to_stages()
        .map(|m| {
            m.iter()
                .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
                .map(|(id, _)| id.clone())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    Ok(if current == applied {
        "current"
    } else {
        "rotated"
    }
    .into())
}

async fn apply(cx: &Cx, want: &Want<'_, WorkloadSpec>, deps: &Deps) -> Result<Observed, AwsError> {
    let cluster = dep_id(deps, &want.spec.cluster);
    let kube = connect(cx, cluster)
        .await?
        .ok_or_else(|| AwsError::other(format!("the cluster {cluster} is not active")))?;
    // The credentials: from RDS's managed secret into the Secret, in memory only.
    let secret_arn = deps
        .get(want.spec.database.as_str())
        .map(|d| d.attr("secret_arn"))
        .unwrap_or_default();
    let secret = cx
        .secrets
        .get_secret_value()
        .secret_id(secret_arn)
        .send()
        .await?;
    let master = secret.secret_string().unwrap_or_default().to_string();
    let version = secret.version_id().unwrap_or_default().to_string();
    let credentials = credentials(&kube, &master, !want.spec.split.is_empty()).await?;
    let (managed, stack, env, key) = (
        label(TAG_MANAGED_BY),
        label(TAG_STACK),
        label(TAG_ENV),
        label(TAG_KEY),
    );
    let labels = [
        (managed.as_str(), "bookstore"),
        (stack.as_str(), cx.owner.stack.as_str()),
        (env.as_str(), cx.owner.env.as_str()),
        (key.as_str(), want.key),
    ];
    let image = ensure_image(cx, want, deps).await?;
    let nfs = nfs_of(want, deps);
    let split = processes(want, deps);
    let app = app(want, deps, &labels, &image, &nfs, &split, &version);
    for (path, mut object) in manifests::objects(&app, Some(&credentials)) {
        if object["kind"] == "Secret" && object["metadata"]["name"] == manifests::SECRET {
            // Which of RDS's versions it holds: a rotation since shows as drift (see `read`).
            object["metadata"]["annotations"] = serde_json::json!({
                SECRET_ARN_ANNOTATION: secret_arn,
                SECRET_VERSION_ANNOTATION: version,
            });
        }
        if object["kind"] == "Job" {
            run_job(cx, want.key, &kube, &path, &object).await?;
        } else {
            kube.apply(&path, &object).await?;
        }
    }
    // From one process to the split or back: the other shape's objects go once the new ones
    // are there (the target groups move with the node group meanwhile).
    for path in manifests::stale(&app) {
        kube.delete(&path).await?;
    }
    read(&kube, cluster, cx)
        .await?
        .ok_or_else(|| AwsError::other("the Deployment is not there after it was applied"))
}

/// What the Secrets hold. Split: each service's account, its password derived from the master
/// password as `split-setup` derives it, and the two keys, made once at random and kept in the
/// cluster (read back from their Secret: a rotation of the master password must not change them).
async fn credentials<'a>(
    kube: &Kube,
    master: &'a str,
    split: bool,
) -> Result<manifests::Credentials<'a>, AwsError> {
    let mut c = manifests::Credentials {
        master,
        services: Vec::new(),
        internal_key: String::new(),
        identity_key: String::new(),
    };
    if !split {
        return Ok(c);
    }
    let password = serde_json::from_str::<serde_json::Value>(master)
        .ok()
        .and_then(|v| v["password"].as_str().map(str::to_string))
        .ok_or_else(|| AwsError::other("RDS's secret has no password"))?;
    for service in split_derive::SERVICES {
        let account = serde_json::json!({
            "username": split_derive::database_of(service),
            "password": split_derive::password_of(&password, service),
        });
        c.services.push((service.to_string(), account.to_string()));
    }
    let kept = kube
        .get(&format!(
            "/api/v1/namespaces/{NAMESPACE}/secrets/{}",
            manifests::SPLIT_KEYS
        ))
        .await?
        .unwrap_or_default();
    let value = |name: &str| {
        kept["data"][name]
            .as_str()
            .and_then(|b| aws_smithy_types::base64::decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|v| !v.is_empty())
    };
    c.internal_key = match value(manifests::INTERNAL_KEY) {
        Some(v) => v,
        None => new_internal_key()?,
    };
    c.identity_key = match value(manifests::IDENTITY_KEY) {
        Some(v) => v,
        None => new_identity_key()?,
    };
    Ok(c)
}

/// 32 random bytes as hex (what `split-setup` makes).
fn new_internal_key() -> Result<String, AwsError> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AwsError::other("no randomness from the system for the split's keys"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// An Ed25519 key, base64 PKCS#8 (what `bookstore-app identity-key` prints).
fn new_identity_key() -> Result<String, AwsError> {
    let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
        .map_err(|_| AwsError::other("cannot make the split's identity key"))?;
    Ok(aws_smithy_types::base64::encode(doc.as_ref()))
}

/// How long the set-up Job may take (its own deadline is 600 s).
const JOB_WAIT: Duration = Duration::from_secs(11 * 60);

/// Applies the split's set-up Job unless it already succeeded, and waits for it: the services'
/// Secrets must not carry passwords their accounts do not have yet.
async fn run_job(
    cx: &Cx,
    key: &str,
    kube: &Kube,
    path: &str,
    job: &serde_json::Value,
) -> Result<(), AwsError> {
    let name = job["metadata"]["name"].as_str().unwrap_or_default();
    let started = std::time::Instant::now();
    let mut said = None;
    let mut ours = false;
    loop {
        let state = match kube.get(path).await? {
            Some(j) => job_state(&j),
            None => {
                kube.apply(path, job).await?;
                ours = true;
                JobState::Running
            }
        };
        match state {
            JobState::Succeeded => return Ok(()),
            // An earlier run's failure (the database was not reachable yet, say): once more.
            JobState::Failed(_) if !ours => {
                kube.delete(&format!("{path}?propagationPolicy=Background"))
                    .await?;
                kube.apply(path, job).await?;
                ours = true;
            }
            JobState::Failed(why) => {
                return Err(AwsError::other(format!(
                    "the split's database set-up (Job {name}) failed: {why}; its log: kubectl -n {NAMESPACE} logs job/{name} (then `bookstore up` again)"
                )));
            }
            JobState::Running => {}
        }
        let elapsed = started.elapsed();
        if elapsed > JOB_WAIT {
            return Err(AwsError::other(format!(
                "the split's database set-up (Job {name}) did not finish in {} s; kubectl -n {NAMESPACE} describe job/{name}",
                JOB_WAIT.as_secs()
            )));
        }
        // Never a silent minute: say so at the start and every 30 s.
        let slot = elapsed.as_secs() / 30;
        if said != Some(slot) {
            said = Some(slot);
            cx.phase(
                key,
                Kind::Workload,
                &format!(
                    "making the services' database accounts (Job {name}, {} s)",
                    elapsed.as_secs()
                ),
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

enum JobState {
    Running,
    Succeeded,
    Failed(String),
}

fn job_state(job: &serde_json::Value) -> JobState {
    let status = &job["status"];
    if status["succeeded"].as_u64().unwrap_or(0) > 0 {
        return JobState::Succeeded;
    }
    let failed = status["conditions"].as_array().and_then(|c| {
        c.iter()
            .find(|c| c["type"] == "Failed" && c["status"] == "True")
    });
    match failed {
        Some(c) => JobState::Failed(
            c["message"]
                .as_str()
                .or(c["reason"].as_str())
                .unwrap_or("no reason given")
                .to_string(),
        ),
        None => JobState::Running,
    }
}

#[async_trait]
impl Module for Workloads {
    type Spec = WorkloadSpec;

    fn budget(&self) -> Budget {
        // Pulling the image and passing the probes: minutes; nodes that cannot pull never do.
        Budget {
            ready: Duration::from_secs(10 * 60),
            poll_max: Duration::from_secs(10),
        }
    }

    fn drawing(&self, spec: &Self::Spec) -> Drawing {
        let detail = if spec.split.is_empty() {
            format!(
                "Kubernetes: Deployment × {}, NodePort :{}",
                spec.replicas, spec.node_port
            )
        } else {
            // Short enough for a box of the drawing.
            let ports: Vec<u16> = spec.split.iter().map(|s| s.node_port).collect();
            format!(
                "Kubernetes: {} × {} pods, NodePorts :{}–{}",
                spec.split.len(),
                spec.replicas,
                ports.iter().min().unwrap_or(&0),
                ports.iter().max().unwrap_or(&0)
            )
        };
        Drawing {
            detail,
            place: Place::With(spec.nodes.clone()),
        }
    }

    fn cost(&self, _key: &str, _spec: &Self::Spec, _plan: &[Desired]) -> Vec<Charge> {
        vec![]
    }

    fn instances_started(&self, _spec: &Self::Spec) -> u32 {
        0
    }

    fn actions(&self) -> Actions {
        Actions {
            observe: &[
                "eks:ListClusters",
                "eks:DescribeCluster",
                "elasticloadbalancing:DescribeTargetHealth",
                "secretsmanager:DescribeSecret",
            ],
            change: &[
                "secretsmanager:GetSecretValue",
                "ecr:GetAuthorizationToken",
                "ecr:BatchCheckLayerAvailability",
                "ecr:InitiateLayerUpload",
                "ecr:UploadLayerPart",
                "ecr:CompleteLayerUpload",
                "ecr:PutImage",
            ],
        }
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[]
    }

    fn cluster_files(&self, want: &Want<'_, WorkloadSpec>, deps: &Deps) -> Vec<(String, String)> {
        let labels = [("bookstore/key", want.key)];
        let image = image_of(want, deps);
        let nfs = nfs_of(want, deps);
        let split = processes(want, deps);
        // The set-up Job's name in these files follows no credentials' version.
        manifests::files(&app(want, deps, &labels, &image, &nfs, &split, "rendered"))
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let prefix = format!("{}-", name_prefix(&cx.owner.stack, &cx.owner.env));
        let mut found = Vec::new();
        let mut pages = cx.eks.list_clusters().into_paginator().send();
        while let Some(page) = pages.next().await {
            for cluster in page?.clusters() {
                if !cluster.starts_with(&prefix) {
                    continue;
                }
                let probe = Observed::new(Kind::Workload, "", cluster.as_str());
                if let Some(o) = self.refresh(cx, &probe).await?
                    && o.owned
                {
                    found.push(o);
                }
            }
        }
        Ok(found)
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match connect(cx, &have.id).await? {
            Some(kube) => read(&kube, &have.id, cx).await,
            None => Ok(None),
        }
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, WorkloadSpec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError> {
        apply(cx, want, deps).await
    }

    fn expected_facts(
        &self,
        want: &Want<'_, WorkloadSpec>,
        deps: &Deps,
    ) -> BTreeMap<String, String> {
        let (services, node_ports) = if want.spec.split.is_empty() {
            ("single", want.spec.node_port.to_string())
        } else {
            let ports: Vec<String> = want
                .spec
                .split
                .iter()
                .map(|s| s.node_port.to_string())
                .collect();
            ("split", ports.join(","))
        };
        // As `read` says it: one number when every Deployment has it.
        let counts: Vec<(String, u32)> = if want.spec.split.is_empty() {
            vec![(String::new(), want.spec.replicas)]
        } else {
            want.spec
                .split
                .iter()
                .map(|s| (format!("{} ", s.service.as_str()), s.replicas))
                .collect()
        };
        BTreeMap::from([
            ("replicas".into(), replicas_fact(&counts)),
            ("image".into(), image_of(want, deps)),
            ("node_port".into(), node_ports),
            ("services".into(), services.into()),
            ("credentials".into(), "current".into()),
        ])
    }

    /// Applying again is the update: a new image rolls the Deployment, one pod at a time.
    async fn update(
        &self,
        cx: &Cx,
        want: &Want<'_, WorkloadSpec>,
        _have: &Observed,
        deps: &Deps,
    ) -> Result<bool, AwsError> {
        apply(cx, want, deps).await?;
        Ok(true)
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        if let Some(kube) = connect(cx, &have.id).await? {
            kube.delete(&format!("/api/v1/namespaces/{NAMESPACE}"))
                .await?;
            // Cluster-wide: the namespace does not take it (Kubernetes keeps it until its claim
            // is gone).
            kube.delete(&manifests::volume_path()).await?;
        }
        Ok(())
    }

    /// Each pod of the app: its phase, readiness, restarts and node.
    async fn details(
        &self,
        cx: &Cx,
        have: &Observed,
        _all: &[Observed],
    ) -> Result<Vec<Section>, AwsError> {
        let Some(kube) = connect(cx, &have.id).await? else {
            return Ok(vec![]);
        };
        let pods = kube
            .get(&format!(
                "/api/v1/namespaces/{NAMESPACE}/pods?labelSelector=app.kubernetes.io%2Fname%3D{APP}"
            ))
            .await?
            .unwrap_or_default();
        let rows = pods["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|p| {
                        let c = &p["status"]["containerStatuses"][0];
                        let labels = &p["metadata"]["labels"];
                        BTreeMap::from([
                            (
                                "service".into(),
                                labels["app.kubernetes.io/component"]
                                    .as_str()
                                    .unwrap_or(APP)
                                    .into(),
                            ),
                            (
                                "pod".into(),
                                p["metadata"]["name"].as_str().unwrap_or_default().into(),
                            ),
                            (
                                "phase".into(),
                                p["status"]["phase"].as_str().unwrap_or_default().into(),
                            ),
                            (
                                "ready".into(),
                                c["ready"].as_bool().unwrap_or(false).to_string(),
                            ),
                            (
                                "restarts".into(),
                                c["restartCount"].as_u64().unwrap_or(0).to_string(),
                            ),
                            (
                                "node".into(),
                                p["spec"]["nodeName"].as_str().unwrap_or_default().into(),
                            ),
                        ])
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(vec![Section {
            name: "pods".into(),
            rows,
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_are_one_number_when_the_deployments_agree() {
        let one = [(String::new(), 2)];
        assert_eq!(replicas_fact(&one), "2");
        let same = [
            ("accounts ".into(), 2),
            ("catalog ".into(), 2),
            ("orders ".into(), 2),
        ];
        assert_eq!(replicas_fact(&same), "2");
        let own = [
            ("accounts ".into(), 2),
            ("catalog ".into(), 3),
            ("orders ".into(), 2),
        ];
        assert_eq!(replicas_fact(&own), "accounts 2, catalog 3, orders 2");
    }

    #[test]
    fn a_job_is_done_failed_with_its_reason_or_still_running() {
        let done = serde_json::json!({ "status": { "succeeded": 1 } });
        assert!(matches!(job_state(&done), JobState::Succeeded));
        let failed = serde_json::json!({ "status": { "failed": 5, "conditions": [
            { "type": "Complete", "status": "False" },
            { "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
              "message": "Job has reached the specified backoff limit" },
        ] } });
        match job_state(&failed) {
            JobState::Failed(why) => assert_eq!(why, "Job has reached the specified backoff limit"),
            _ => panic!("a failed Job"),
        }
        // A pod that failed once is retried by the Job: still running.
        let retrying = serde_json::json!({ "status": { "failed": 1, "active": 1 } });
        assert!(matches!(job_state(&retrying), JobState::Running));
    }
}
