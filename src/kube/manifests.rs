//! The app's Kubernetes objects, as data: a Namespace (restricted pod security), the database
//! credentials' Secret, the Deployment (rolling with no unavailable replica, probes on the app's
//! health path, requests and limits, non-root, read-only root, no service-account token) and a
//! NodePort Service the load balancer's target group reaches on every node. The covers are on
//! EFS through a plain `nfs` volume (no CSI driver, no IAM role). No secret value is ever in
//! these: the Secret's data is added in memory when it is applied.

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

/// The Namespace: pods there must meet the `restricted` pod security standard.
pub fn namespace(app: &App) -> Value {
    let mut meta = metadata(app, NAMESPACE, false);
    for mode in ["enforce", "audit", "warn"] {
        meta["labels"][format!("pod-security.kubernetes.io/{mode}")] = "restricted".into();
    }
    json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": meta })
}

/// The credentials' Secret; `credentials` is the RDS secret's JSON (`None` in rendered files).
pub fn secret(app: &App, credentials: Option<&str>) -> Value {
    let mut s = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(app, SECRET, true),
        "type": "Opaque",
        "immutable": false,
    });
    if let Some(c) = credentials {
        s["data"] = json!({ SECRET_FILE: aws_smithy_types::base64::encode(c.as_bytes()) });
    }
    s
}

pub fn deployment(app: &App) -> Value {
    let selector = json!({ "app.kubernetes.io/name": APP });
    let probe = |period: u32, failures: u32| {
        json!({
            "httpGet": { "path": app.health_path, "port": "http" },
            "periodSeconds": period,
            "timeoutSeconds": 3,
            "failureThreshold": failures,
        })
    };
    let database_url = format!(
        "mysql://{}/bookstore?ssl-mode=verify_identity&ssl-ca=/etc/bookstore/rds-ca.pem",
        app.db_endpoint
    );
    let env = json!([
        { "name": "BOOKSTORE_ADDR", "value": format!("0.0.0.0:{}", app.app_port) },
        // The load balancer appends the client's address to X-Forwarded-For: the one hop to trust.
        { "name": "BOOKSTORE_TRUSTED_PROXIES", "value": "1" },
        { "name": "BOOKSTORE_DATA_DIR", "value": "/data" },
        { "name": "BOOKSTORE_UPLOADS_DIR", "value": "/data/uploads" },
        { "name": "DATABASE_URL", "value": database_url },
        { "name": "BOOKSTORE_DB_SECRET_FILE", "value": format!("{SECRET_DIR}/{SECRET_FILE}") },
        // Serve 5 s more once told to stop, while the pod leaves the Service's endpoints.
        { "name": "BOOKSTORE_SHUTDOWN_DELAY_SECS", "value": "5" },
    ]);
    let mut meta = metadata(app, APP, true);
    meta["annotations"] = json!({ TARGET_GROUP_ANNOTATION: app.target_group });
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": app.replicas,
            "selector": { "matchLabels": selector },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": { "maxUnavailable": 0, "maxSurge": 1 },
            },
            "minReadySeconds": 5,
            "template": {
                "metadata": { "labels": selector },
                "spec": {
                    "automountServiceAccountToken": false,
                    "enableServiceLinks": false,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": APP_UID,
                        "runAsGroup": APP_UID,
                        "fsGroup": APP_UID,
                        "seccompProfile": { "type": "RuntimeDefault" },
                    },
                    "topologySpreadConstraints": [{
                        "maxSkew": 1,
                        "topologyKey": "topology.kubernetes.io/zone",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": { "matchLabels": selector },
                    }],
                    "containers": [{
                        "name": "app",
                        "image": app.image,
                        "imagePullPolicy": "IfNotPresent",
                        "ports": [{ "name": "http", "containerPort": app.app_port, "protocol": "TCP" }],
                        "env": env,
                        "readinessProbe": probe(5, 2),
                        "livenessProbe": probe(10, 3),
                        "startupProbe": probe(2, 30),
                        "resources": {
                            "requests": { "cpu": "100m", "memory": "64Mi" },
                            "limits": { "cpu": "500m", "memory": "256Mi" },
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": { "drop": ["ALL"] },
                        },
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
                        { "name": "uploads", "nfs": { "server": app.nfs_server, "path": "/uploads" } },
                        {
                            "name": "db-credentials",
                            "secret": { "secretName": SECRET, "defaultMode": 0o440 },
                        },
                    ],
                },
            },
        },
    })
}

/// The NodePort Service: every node answers the load balancer on `node_port`.
pub fn service(app: &App) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(app, APP, true),
        "spec": {
            "type": "NodePort",
            "selector": { "app.kubernetes.io/name": APP },
            "externalTrafficPolicy": "Cluster",
            "ports": [{
                "name": "http",
                "port": 80,
                "targetPort": "http",
                "nodePort": app.node_port,
                "protocol": "TCP",
            }],
        },
    })
}

/// Every object, in the order they are applied, with its API path.
pub fn objects(app: &App, credentials: Option<&str>) -> Vec<(String, Value)> {
    let ns = NAMESPACE;
    vec![
        (format!("/api/v1/namespaces/{ns}"), namespace(app)),
        (
            format!("/api/v1/namespaces/{ns}/secrets/{SECRET}"),
            secret(app, credentials),
        ),
        (
            format!("/apis/apps/v1/namespaces/{ns}/deployments/{APP}"),
            deployment(app),
        ),
        (
            format!("/api/v1/namespaces/{ns}/services/{APP}"),
            service(app),
        ),
    ]
}

/// The objects as YAML files for `render` (no secret value).
pub fn files(app: &App) -> Vec<(String, String)> {
    objects(app, None)
        .into_iter()
        .map(|(_, o)| {
            let kind = o["kind"].as_str().unwrap_or("object").to_lowercase();
            let text = serde_saphyr::to_string(&o).unwrap_or_default();
            (format!("kubernetes/{kind}.yaml"), text)
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
        }
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
        let applied = secret_of(&objects(&app(), Some("{\"password\":\"x\"}")));
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
