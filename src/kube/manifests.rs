//! The app's Kubernetes objects, as data: a Namespace (restricted pod security), the database
//! credentials' Secret, the Deployment (rolling with no unavailable replica, probes on the app's
//! health path, requests and limits, non-root, read-only root, no service-account token) and a
//! NodePort Service the load balancer's target group reaches on every node. The covers are on
//! EFS through a plain `nfs` volume (no CSI driver, no IAM role). No secret value is ever in
//! these: the Secrets' data is added in memory when they are applied.
//!
//! Split, the same per service (accounts, catalog, orders): a Deployment, a NodePort Service for
//! its target group, a ClusterIP Service for its internal API (the others call it by name), and
//! a Secret with its own database account and the keys. A Job makes the services' databases and
//! users with the master credentials first (`bookstore-app split-setup --users-only`); only that
//! Job mounts the master Secret.

use serde_json::{Value, json};

/// The names every object of the app uses.
pub const NAMESPACE: &str = "bookstore";
pub const APP: &str = "bookstore";
pub const SECRET: &str = "db-credentials";
/// Where the app reads the credentials (the Secret's one key, mounted read-only).
const SECRET_DIR: &str = "/run/secrets";
const SECRET_FILE: &str = "db.json";
/// The image's user (templates/swarm/build-image makes the same).
const APP_UID: u32 = 10001;
/// The covers on EFS: a PersistentVolume (cluster-wide) bound to the namespace's claim. An inline
/// `nfs` volume would break the `restricted` pod security standard (its volume types are
/// configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected and secret):
/// the API server would refuse every pod.
pub const UPLOADS_VOLUME: &str = "bookstore-uploads";
const UPLOADS_CLAIM: &str = "uploads";
/// NFS ignores it; Kubernetes wants one.
const UPLOADS_SIZE: &str = "8Gi";
/// The split's keys (internal, identity), made once by the CLI and kept here.
pub const SPLIT_KEYS: &str = "split-keys";
pub const INTERNAL_KEY: &str = "internal-key";
pub const IDENTITY_KEY: &str = "identity-key";
/// The component label of the split's objects, and the set-up Job's.
const COMPONENT: &str = "app.kubernetes.io/component";
const SETUP: &str = "split-setup";

/// What the objects are made from.
pub struct App<'a> {
    /// The owner labels (stack, env, key) every object carries.
    pub labels: &'a [(&'a str, &'a str)],
    pub image: &'a str,
    pub replicas: u32,
    pub app_port: u16,
    pub node_port: u16,
    pub health_path: &'a str,
    /// RDS's `host:port`.
    pub db_endpoint: &'a str,
    /// EFS's DNS name (`fs-….efs.<region>.amazonaws.com`).
    pub nfs_server: &'a str,
    /// The load balancer's target group (an annotation on the Deployment: the CLI's wait checks
    /// its health after a crash too).
    pub target_group: &'a str,
    /// The split's services; empty for one process.
    pub split: &'a [Process<'a>],
    /// Changes when the master credentials do (RDS's secret version): the set-up Job runs again
    /// with them.
    pub credentials_version: &'a str,
}

/// One service of the split.
pub struct Process<'a> {
    pub service: &'a str,
    pub replicas: u32,
    pub port: u16,
    pub internal_port: u16,
    pub node_port: u16,
    pub target_group: &'a str,
}

impl Process<'_> {
    /// Its public NodePort Service (its own name is its internal API's ClusterIP Service).
    pub fn web(&self) -> String {
        format!("{}-web", self.service)
    }

    pub fn secret(&self) -> String {
        format!("{}-db", self.service)
    }
}

/// The Secrets' values, in memory only.
pub struct Credentials<'a> {
    /// The RDS secret's JSON (the master account).
    pub master: &'a str,
    /// Each service's `db.json` (its own account), then the two keys.
    pub services: Vec<(String, String)>,
    pub internal_key: String,
    pub identity_key: String,
}

/// The Deployment's annotation naming the target group that reaches it.
pub const TARGET_GROUP_ANNOTATION: &str = "bookstore/target-group";

fn metadata(app: &App, name: &str, namespaced: bool) -> Value {
    let mut labels = serde_json::Map::new();
    labels.insert("app.kubernetes.io/name".into(), APP.into());
    labels.insert("app.kubernetes.io/managed-by".into(), "bookstore".into());
    for (k, v) in app.labels {
        labels.insert((*k).into(), (*v).into());
    }
    let mut m = json!({ "name": name, "labels": labels });
    if namespaced {
        m["namespace"] = NAMESPACE.into();
    }
    m
}

/// The metadata of one service's object (`component` names it).
fn component_metadata(app: &App, name: &str, component: &str) -> Value {
    let mut m = metadata(app, name, true);
    m["labels"][COMPONENT] = component.into();
    m
}

/// The Namespace: pods there must meet the `restricted` pod security standard.
pub fn namespace(app: &App) -> Value {
    let mut meta = metadata(app, NAMESPACE, false);
    for mode in ["enforce", "audit", "warn"] {
        meta["labels"][format!("pod-security.kubernetes.io/{mode}")] = "restricted".into();
    }
    json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": meta })
}

/// The EFS file system as a PersistentVolume for the app's claim alone (static binding, no storage
/// class: nothing is provisioned), kept when the claim goes (`down` deletes it).
pub fn uploads_volume(app: &App) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": metadata(app, UPLOADS_VOLUME, false),
        "spec": {
            "capacity": { "storage": UPLOADS_SIZE },
            "accessModes": ["ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            // EFS's recommended NFS client options.
            "mountOptions": [
                "nfsvers=4.1", "rsize=1048576", "wsize=1048576", "hard", "timeo=600", "retrans=2",
                "noresvport",
            ],
            "nfs": { "server": app.nfs_server, "path": "/uploads" },
            "claimRef": { "namespace": NAMESPACE, "name": UPLOADS_CLAIM },
        },
    })
}

pub fn uploads_claim(app: &App) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(app, UPLOADS_CLAIM, true),
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "storageClassName": "",
            "volumeName": UPLOADS_VOLUME,
            "resources": { "requests": { "storage": UPLOADS_SIZE } },
        },
    })
}

fn opaque(meta: Value, data: Option<Value>) -> Value {
    let mut s = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "immutable": false,
    });
    if let Some(data) = data {
        s["data"] = data;
    }
    s
}

fn base64(text: &str) -> Value {
    aws_smithy_types::base64::encode(text.as_bytes()).into()
}

/// The credentials' Secret; `credentials` is the RDS secret's JSON (`None` in rendered files).
/// Split, only the set-up Job mounts it.
pub fn secret(app: &App, credentials: Option<&str>) -> Value {
    opaque(
        metadata(app, SECRET, true),
        credentials.map(|c| json!({ SECRET_FILE: base64(c) })),
    )
}

fn database_url(app: &App, database: &str) -> String {
    format!(
        "mysql://{}/{database}?ssl-mode=verify_identity&ssl-ca=/etc/bookstore/rds-ca.pem",
        app.db_endpoint
    )
}

/// Non-root, no privilege, the runtime's seccomp profile: the `restricted` standard.
fn pod_security() -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": APP_UID,
        "runAsGroup": APP_UID,
        "fsGroup": APP_UID,
        "seccompProfile": { "type": "RuntimeDefault" },
    })
}

fn container_security() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "capabilities": { "drop": ["ALL"] },
    })
}

/// What one Deployment runs: the single process, or one service of the split.
struct Shape<'a> {
    replicas: u32,
    selector: Value,
    meta: Value,
    target_group: &'a str,
    ports: Value,
    env: Value,
    /// Readiness: the whole app for one process; a service's own database only, split (with its
    /// peers, two services waiting for each other's readiness would never get endpoints).
    ready_path: String,
    /// Liveness: never the peers (a peer's outage must not restart healthy pods).
    live_path: String,
    secret_volume: Value,
}

fn deployment_of(app: &App, shape: Shape) -> Value {
    let probe = |path: &str, period: u32, failures: u32| {
        json!({
            "httpGet": { "path": path, "port": "http" },
            "periodSeconds": period,
            "timeoutSeconds": 3,
            "failureThreshold": failures,
        })
    };
    let mut meta = shape.meta;
    meta["annotations"] = json!({ TARGET_GROUP_ANNOTATION: shape.target_group });
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": shape.replicas,
            "selector": { "matchLabels": shape.selector },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": { "maxUnavailable": 0, "maxSurge": 1 },
            },
            "minReadySeconds": 5,
            "template": {
                "metadata": { "labels": shape.selector },
                "spec": {
                    "automountServiceAccountToken": false,
                    "enableServiceLinks": false,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": pod_security(),
                    "topologySpreadConstraints": [{
                        "maxSkew": 1,
                        "topologyKey": "topology.kubernetes.io/zone",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": { "matchLabels": shape.selector },
                    }],
                    "containers": [{
                        "name": "app",
                        "image": app.image,
                        "imagePullPolicy": "IfNotPresent",
                        "ports": shape.ports,
                        "env": shape.env,
                        "readinessProbe": probe(&shape.ready_path, 5, 2),
                        "livenessProbe": probe(&shape.live_path, 10, 3),
                        "startupProbe": probe(&shape.live_path, 2, 30),
                        "resources": {
                            "requests": { "cpu": "100m", "memory": "64Mi" },
                            "limits": { "cpu": "500m", "memory": "256Mi" },
                        },
                        "securityContext": container_security(),
                        "volumeMounts": [
                            { "name": "data", "mountPath": "/data" },
                            { "name": "uploads", "mountPath": "/data/uploads" },
                            { "name": "tmp", "mountPath": "/tmp" },
                            { "name": "db-credentials", "mountPath": SECRET_DIR, "readOnly": true },
                        ],
                    }],
                    "volumes": [
                        { "name": "data", "emptyDir": { "sizeLimit": "64Mi" } },
                        { "name": "tmp", "emptyDir": { "sizeLimit": "64Mi" } },
                        { "name": "uploads", "persistentVolumeClaim": { "claimName": UPLOADS_CLAIM } },
                        shape.secret_volume,
                    ],
                },
            },
        },
    })
}

/// The environment every process of the app has.
fn common_env(database_url: String) -> Vec<Value> {
    vec![
        // The load balancer appends the client's address to X-Forwarded-For: the one hop to trust.
        json!({ "name": "BOOKSTORE_TRUSTED_PROXIES", "value": "1" }),
        json!({ "name": "BOOKSTORE_DATA_DIR", "value": "/data" }),
        json!({ "name": "BOOKSTORE_UPLOADS_DIR", "value": "/data/uploads" }),
        json!({ "name": "DATABASE_URL", "value": database_url }),
        json!({ "name": "BOOKSTORE_DB_SECRET_FILE", "value": format!("{SECRET_DIR}/{SECRET_FILE}") }),
        // Serve 5 s more once told to stop, while the pod leaves the Service's endpoints.
        json!({ "name": "BOOKSTORE_SHUTDOWN_DELAY_SECS", "value": "5" }),
    ]
}

pub fn deployment(app: &App) -> Value {
    let selector = json!({ "app.kubernetes.io/name": APP });
    let mut env =
        vec![json!({ "name": "BOOKSTORE_ADDR", "value": format!("0.0.0.0:{}", app.app_port) })];
    env.extend(common_env(database_url(app, "bookstore")));
    deployment_of(
        app,
        Shape {
            replicas: app.replicas,
            selector,
            meta: metadata(app, APP, true),
            target_group: app.target_group,
            ports: json!([{ "name": "http", "containerPort": app.app_port, "protocol": "TCP" }]),
            env: Value::Array(env),
            ready_path: app.health_path.into(),
            live_path: app.health_path.into(),
            secret_volume: json!({
                "name": "db-credentials",
                "secret": { "secretName": SECRET, "defaultMode": 0o440 },
            }),
        },
    )
}

/// One service's Deployment: its own port, internal API, database account and keys.
pub fn service_deployment(app: &App, p: &Process) -> Value {
    let selector = json!({ "app.kubernetes.io/name": APP, COMPONENT: p.service });
    let mut env = vec![
        json!({ "name": "BOOKSTORE_SERVICE", "value": p.service }),
        json!({ "name": "BOOKSTORE_ADDR", "value": format!("0.0.0.0:{}", p.port) }),
        json!({ "name": "BOOKSTORE_INTERNAL_ADDR", "value": format!("0.0.0.0:{}", p.internal_port) }),
        json!({ "name": "BOOKSTORE_INTERNAL_KEY_FILE", "value": format!("{SECRET_DIR}/{INTERNAL_KEY}") }),
    ];
    env.extend(common_env(database_url(
        app,
        &super::split_derive::database_of(p.service),
    )));
    // The peers' internal APIs, by their ClusterIP Services' names.
    for peer in app.split {
        env.push(json!({
            "name": format!("BOOKSTORE_{}_URL", peer.service.to_uppercase()),
            "value": format!("http://{}:{}", peer.service, peer.internal_port),
        }));
    }
    let mut keys = vec![json!({ "key": INTERNAL_KEY, "path": INTERNAL_KEY })];
    if p.service == "accounts" {
        env.push(json!({ "name": "BOOKSTORE_IDENTITY_KEY_FILE", "value": format!("{SECRET_DIR}/{IDENTITY_KEY}") }));
        keys.push(json!({ "key": IDENTITY_KEY, "path": IDENTITY_KEY }));
    }
    let own = format!("{}?own", app.health_path);
    deployment_of(
        app,
        Shape {
            replicas: p.replicas,
            selector,
            meta: component_metadata(app, p.service, p.service),
            target_group: p.target_group,
            ports: json!([
                { "name": "http", "containerPort": p.port, "protocol": "TCP" },
                { "name": "internal", "containerPort": p.internal_port, "protocol": "TCP" },
            ]),
            env: Value::Array(env),
            ready_path: own.clone(),
            live_path: own,
            // Its own account and the keys it needs (the signing key for accounts only).
            secret_volume: json!({
                "name": "db-credentials",
                "projected": {
                    "defaultMode": 0o440,
                    "sources": [
                        { "secret": { "name": p.secret(), "items": [{ "key": SECRET_FILE, "path": SECRET_FILE }] } },
                        { "secret": { "name": SPLIT_KEYS, "items": keys } },
                    ],
                },
            }),
        },
    )
}

fn node_port_service(meta: Value, selector: Value, node_port: u16) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": "NodePort",
            "selector": selector,
            "externalTrafficPolicy": "Cluster",
            "ports": [{
                "name": "http",
                "port": 80,
                "targetPort": "http",
                "nodePort": node_port,
                "protocol": "TCP",
            }],
        },
    })
}

/// The NodePort Service: every node answers the load balancer on `node_port`.
pub fn service(app: &App) -> Value {
    node_port_service(
        metadata(app, APP, true),
        json!({ "app.kubernetes.io/name": APP }),
        app.node_port,
    )
}

/// A service's public NodePort Service, for its target group.
pub fn web_service(app: &App, p: &Process) -> Value {
    node_port_service(
        component_metadata(app, &p.web(), p.service),
        json!({ "app.kubernetes.io/name": APP, COMPONENT: p.service }),
        p.node_port,
    )
}

/// A service's internal API inside the cluster (no node port: the internet never reaches it).
pub fn internal_service(app: &App, p: &Process) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": component_metadata(app, p.service, p.service),
        "spec": {
            "type": "ClusterIP",
            "selector": { "app.kubernetes.io/name": APP, COMPONENT: p.service },
            "ports": [{
                "name": "internal",
                "port": p.internal_port,
                "targetPort": "internal",
                "protocol": "TCP",
            }],
        },
    })
}

/// The Job that makes the services' databases and users with the master account. Its name
/// follows its spec and the credentials' version (a Job's pod template cannot change): a new
/// image or a rotated master password runs a new one. Finished Jobs are removed after a day.
pub fn setup_job(app: &App) -> Value {
    let spec = json!({
        "backoffLimit": 4,
        "activeDeadlineSeconds": 600,
        "ttlSecondsAfterFinished": 86400,
        "template": {
            "metadata": { "labels": { "app.kubernetes.io/name": APP, COMPONENT: SETUP } },
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": false,
                "enableServiceLinks": false,
                "securityContext": pod_security(),
                "containers": [{
                    "name": SETUP,
                    "image": app.image,
                    "imagePullPolicy": "IfNotPresent",
                    "args": [SETUP, "--users-only"],
                    "env": [
                        { "name": "DATABASE_URL", "value": database_url(app, "bookstore") },
                        { "name": "BOOKSTORE_DB_SECRET_FILE", "value": format!("{SECRET_DIR}/{SECRET_FILE}") },
                    ],
                    "resources": {
                        "requests": { "cpu": "50m", "memory": "32Mi" },
                        "limits": { "cpu": "500m", "memory": "128Mi" },
                    },
                    "securityContext": container_security(),
                    "volumeMounts": [
                        { "name": "master", "mountPath": SECRET_DIR, "readOnly": true },
                    ],
                }],
                "volumes": [{
                    "name": "master",
                    "secret": { "secretName": SECRET, "defaultMode": 0o440 },
                }],
            },
        },
    });
    let hash = crate::artifact::sha256_hex(format!("{spec}{}", app.credentials_version).as_bytes());
    let name = format!("{SETUP}-{}", &hash[..10]);
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": component_metadata(app, &name, SETUP),
        "spec": spec,
    })
}

fn secret_path(name: &str) -> String {
    format!("/api/v1/namespaces/{NAMESPACE}/secrets/{name}")
}

fn deployment_path(name: &str) -> String {
    format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}")
}

fn service_path(name: &str) -> String {
    format!("/api/v1/namespaces/{NAMESPACE}/services/{name}")
}

/// The covers' PersistentVolume (cluster-wide: the namespace's deletion leaves it).
pub fn volume_path() -> String {
    format!("/api/v1/persistentvolumes/{UPLOADS_VOLUME}")
}

pub fn job_path(name: &str) -> String {
    format!("/apis/batch/v1/namespaces/{NAMESPACE}/jobs/{name}")
}

/// Every object, in the order they are applied, with its API path. Split, the set-up Job comes
/// before the services' Secrets: their accounts must exist with those passwords first.
pub fn objects(app: &App, credentials: Option<&Credentials>) -> Vec<(String, Value)> {
    let ns = NAMESPACE;
    let mut objects = vec![
        (format!("/api/v1/namespaces/{ns}"), namespace(app)),
        (volume_path(), uploads_volume(app)),
        (
            format!("/api/v1/namespaces/{ns}/persistentvolumeclaims/{UPLOADS_CLAIM}"),
            uploads_claim(app),
        ),
        (
            secret_path(SECRET),
            secret(app, credentials.map(|c| c.master)),
        ),
    ];
    if app.split.is_empty() {
        objects.push((deployment_path(APP), deployment(app)));
        objects.push((service_path(APP), service(app)));
        return objects;
    }
    let job = setup_job(app);
    let name = job["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    objects.push((job_path(&name), job));
    let keys = credentials.map(
        |c| json!({ INTERNAL_KEY: base64(&c.internal_key), IDENTITY_KEY: base64(&c.identity_key) }),
    );
    objects.push((
        secret_path(SPLIT_KEYS),
        opaque(component_metadata(app, SPLIT_KEYS, "split"), keys),
    ));
    for p in app.split {
        let own = credentials.and_then(|c| {
            c.services
                .iter()
                .find(|(s, _)| s == p.service)
                .map(|(_, json)| json!({ SECRET_FILE: base64(json) }))
        });
        objects.push((
            secret_path(&p.secret()),
            opaque(component_metadata(app, &p.secret(), p.service), own),
        ));
    }
    for p in app.split {
        objects.push((deployment_path(p.service), service_deployment(app, p)));
        objects.push((service_path(p.service), internal_service(app, p)));
        objects.push((service_path(&p.web()), web_service(app, p)));
    }
    objects
}

/// The other shape's objects (from one process to the split and back), to delete once the new
/// ones are applied. The split's Jobs remove themselves.
pub fn stale(app: &App) -> Vec<String> {
    if app.split.is_empty() {
        let mut paths = vec![secret_path(SPLIT_KEYS)];
        for service in super::split_derive::SERVICES {
            paths.push(deployment_path(service));
            paths.push(service_path(service));
            paths.push(service_path(&format!("{service}-web")));
            paths.push(secret_path(&format!("{service}-db")));
        }
        paths
    } else {
        vec![deployment_path(APP), service_path(APP)]
    }
}

/// The objects as YAML files for `render` (no secret value).
pub fn files(app: &App) -> Vec<(String, String)> {
    objects(app, None)
        .into_iter()
        .map(|(_, o)| {
            let kind = o["kind"].as_str().unwrap_or("object").to_lowercase();
            let name = o["metadata"]["name"].as_str().unwrap_or_default();
            let text = serde_saphyr::to_string(&o).unwrap_or_default();
            // One process keeps its files' names; the split has one of each kind per service.
            let file = if app.split.is_empty() || kind == "namespace" {
                format!("kubernetes/{kind}.yaml")
            } else {
                format!("kubernetes/{name}-{kind}.yaml")
            };
            (file, text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> App<'static> {
        App {
            labels: &[("bookstore/env", "dev")],
            image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/bs-dev-eks-repo:0123456789ab",
            replicas: 2,
            app_port: 8080,
            node_port: 30080,
            health_path: "/healthz",
            db_endpoint: "db.example:3306",
            nfs_server: "fs-1.efs.us-east-1.amazonaws.com",
            target_group: "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/bs-dev-eks-tg/0123456789abcdef",
            split: &[],
            credentials_version: "v1",
        }
    }

    fn credentials(master: &str) -> Credentials<'_> {
        Credentials {
            master,
            services: vec![
                (
                    "accounts".into(),
                    "{\"username\":\"bookstore_accounts\"}".into(),
                ),
                (
                    "catalog".into(),
                    "{\"username\":\"bookstore_catalog\"}".into(),
                ),
                (
                    "orders".into(),
                    "{\"username\":\"bookstore_orders\"}".into(),
                ),
            ],
            internal_key: "i".repeat(64),
            identity_key: "identity".into(),
        }
    }

    const SPLIT: [Process<'static>; 3] = [
        Process {
            service: "accounts",
            replicas: 2,
            port: 8081,
            internal_port: 9081,
            node_port: 30081,
            target_group: "tga",
        },
        Process {
            service: "catalog",
            replicas: 2,
            port: 8082,
            internal_port: 9082,
            node_port: 30082,
            target_group: "tgc",
        },
        Process {
            service: "orders",
            replicas: 2,
            port: 8083,
            internal_port: 9083,
            node_port: 30083,
            target_group: "tgo",
        },
    ];

    #[test]
    fn the_split_makes_the_accounts_before_their_secrets_and_each_service_mounts_only_its_own() {
        let split = App {
            split: &SPLIT,
            ..app()
        };
        let objects = objects(&split, Some(&credentials("{\"password\":\"m\"}")));
        let kinds: Vec<String> = objects
            .iter()
            .map(|(_, o)| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect();
        let at = |name: &str| {
            kinds
                .iter()
                .position(|k| k == name)
                .unwrap_or_else(|| panic!("{name} in {kinds:?}"))
        };
        let job = kinds
            .iter()
            .position(|k| k.starts_with("Job/split-setup-"))
            .expect("a set-up Job");
        assert!(
            job > at("Secret/db-credentials") && job < at("Secret/accounts-db"),
            "{kinds:?}"
        );
        assert!(
            at("Secret/orders-db") < at("Deployment/accounts"),
            "{kinds:?}"
        );
        // Only the Job mounts the master Secret; each service its own account and the keys.
        for (_, o) in &objects {
            let Some(volumes) = o["spec"]["template"]["spec"]["volumes"].as_array() else {
                continue;
            };
            let text = serde_json::to_string(volumes).unwrap();
            let name = o["metadata"]["name"].as_str().unwrap();
            let master = text.contains("\"secretName\":\"db-credentials\"");
            assert_eq!(master, o["kind"] == "Job", "{name}: {text}");
            if o["kind"] == "Deployment" {
                assert!(text.contains(&format!("{name}-db")), "{text}");
                assert_eq!(
                    text.contains(IDENTITY_KEY),
                    name == "accounts",
                    "{name}: {text}"
                );
                let probes = &o["spec"]["template"]["spec"]["containers"][0];
                assert_eq!(probes["livenessProbe"]["httpGet"]["path"], "/healthz?own");
            }
        }
        // The Job's name follows the credentials' version.
        let other = setup_job(&App {
            split: &SPLIT,
            credentials_version: "v2",
            ..app()
        });
        assert_ne!(
            other["metadata"]["name"],
            setup_job(&split)["metadata"]["name"]
        );
        // Nothing of the other shape is left behind, and going back removes the split.
        assert!(
            stale(&split)
                .iter()
                .any(|p| p.ends_with("/deployments/bookstore"))
        );
        assert!(
            stale(&app())
                .iter()
                .any(|p| p.ends_with("/secrets/split-keys"))
        );
    }

    #[test]
    fn the_rendered_secret_carries_no_value_and_the_applied_one_does() {
        let rendered = files(&app());
        let secret = &rendered
            .iter()
            .find(|(n, _)| n == "kubernetes/secret.yaml")
            .unwrap()
            .1;
        assert!(!secret.lines().any(|l| l.starts_with("data:")), "{secret}");
        let applied = secret_of(&objects(&app(), Some(&credentials("{\"password\":\"x\"}"))));
        assert_eq!(
            applied["data"]["db.json"],
            aws_smithy_types::base64::encode("{\"password\":\"x\"}")
        );
    }

    fn secret_of(objects: &[(String, Value)]) -> Value {
        objects
            .iter()
            .find(|(_, o)| o["kind"] == "Secret")
            .unwrap()
            .1
            .clone()
    }

    #[test]
    fn a_rolling_update_never_takes_a_replica_away() {
        let d = deployment(&app());
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
            true
        );
    }
}
