//! The AWS side: clients, ownership tags, error classification, and one module per resource kind
//! that owns its typed spec and knows how to find, create, wait for, update and delete it, what it
//! costs, how it is drawn and how many instances it starts (`Module`). The engine, `cost` and
//! `graph` see every kind through one erased trait, `ResourceKind`.

pub(crate) mod auto_scaling_group;
pub(crate) mod bucket;
pub(crate) mod certificate;
pub(crate) mod cluster;
pub(crate) mod database;
pub(crate) mod elastic_ip;
pub(crate) mod file_system;
pub(crate) mod image;
pub(crate) mod instance;
pub(crate) mod internet_gateway;
pub(crate) mod launch;
pub(crate) mod launch_template;
pub(crate) mod listener;
pub(crate) mod listener_rule;
pub(crate) mod load_balancer;
pub(crate) mod node_group;
pub(crate) mod node_template;
pub(crate) mod poll;
pub(crate) mod registry;
pub(crate) mod repository;
pub(crate) mod route_table;
pub(crate) mod secret;
pub(crate) mod security_group;
pub(crate) mod subnet;
pub(crate) mod target_group;
pub(crate) mod targets;
pub(crate) mod volume;
pub(crate) mod vpc;
pub(crate) mod workload;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use serde::Serialize;

use crate::kinds::Kind;
use crate::reference::Ref;
pub use registry::{Desired, NoSpec, Spec};

/// Tag keys that mark what bookstore owns.
pub const TAG_MANAGED_BY: &str = "bookstore:managed-by";
pub const TAG_STACK: &str = "bookstore:stack";
pub const TAG_ENV: &str = "bookstore:env";
pub const TAG_KEY: &str = "bookstore:key";
/// The kind that made it, on resources of a type several kinds make (instances, volumes): each
/// kind lists only its own, so none ever adopts or deletes another's.
pub const TAG_KIND: &str = "bookstore:kind";

/// `bs-<env>-<stack>`: short, because load balancer and target group names stop at 32 characters.
pub fn name_prefix(stack: &str, env: &str) -> String {
    format!("bs-{env}-{stack}")
}

/// Who owns a resource: this stack in this environment.
#[derive(Debug, Clone)]
pub struct Owner {
    pub stack: String,
    pub env: String,
    /// The stack file's own tags, added to every resource.
    pub extra_tags: BTreeMap<String, String>,
}

impl Owner {
    /// All tags for the resource with this plan key and name.
    pub fn tags(&self, key: &str, name: &str) -> Vec<(String, String)> {
        let mut tags: Vec<(String, String)> = self
            .extra_tags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        tags.push((TAG_MANAGED_BY.into(), "bookstore".into()));
        tags.push((TAG_STACK.into(), self.stack.clone()));
        tags.push((TAG_ENV.into(), self.env.clone()));
        tags.push((TAG_KEY.into(), key.into()));
        tags.push(("Name".into(), name.into()));
        tags
    }

    /// True when the tags say bookstore made it for this stack and environment.
    pub fn owns<'a>(&self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
        let tags: HashMap<&str, &str> = tags.into_iter().collect();
        tags.get(TAG_MANAGED_BY) == Some(&"bookstore")
            && tags.get(TAG_STACK) == Some(&self.stack.as_str())
            && tags.get(TAG_ENV) == Some(&self.env.as_str())
    }
}

/// Everything a resource module needs: the clients and the owner.
pub struct Cx {
    pub ec2: aws_sdk_ec2::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub acm: aws_sdk_acm::Client,
    pub rds: aws_sdk_rds::Client,
    pub efs: aws_sdk_efs::Client,
    pub sts: aws_sdk_sts::Client,
    pub s3: aws_sdk_s3::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub eks: aws_sdk_eks::Client,
    pub ecr: aws_sdk_ecr::Client,
    /// The credentials the clients sign with: the EKS token is signed with them too.
    pub credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
    /// `doctor` only: the instance profile.
    pub iam: aws_sdk_iam::Client,
    pub region: String,
    /// Set by `whoami`: bucket names carry it, being global.
    pub account: std::sync::OnceLock<String>,
    pub owner: Owner,
    /// Where a long create says which phase it is in (the bake's): the run's progress reporter.
    pub progress: std::sync::OnceLock<std::sync::Arc<crate::report::Reporter>>,
}

impl Cx {
    /// Clients for `region` from the standard chain: env vars, profiles (AWS_PROFILE), session
    /// tokens, and AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> for every service.
    pub async fn connect(region: &str, owner: Owner) -> Cx {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        // Throttling and 5xx are retried by the SDK with exponential backoff and jitter; expired
        // credentials are not retryable errors, so they surface at once.
        // AWS_MAX_ATTEMPTS, the SDKs' standard variable, lowers or raises the attempt count.
        let attempts = std::env::var("AWS_MAX_ATTEMPTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|n| *n >= 1)
            .unwrap_or(8);
        let retry = RetryConfig::standard()
            .with_max_attempts(attempts)
            .with_initial_backoff(Duration::from_millis(500))
            .with_max_backoff(Duration::from_secs(20));
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(10))
            .operation_attempt_timeout(Duration::from_secs(60))
            .build();
        let conf = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .http_client(http)
            .retry_config(retry)
            .timeout_config(timeouts)
            .load()
            .await;
        // An emulator or a private endpoint serves every bucket on one host.
        let custom_s3 = conf.endpoint_url().is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|v| !v.is_empty());
        let s3_conf = aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(custom_s3)
            .build();
        Cx {
            s3: aws_sdk_s3::Client::from_conf(s3_conf),
            autoscaling: aws_sdk_autoscaling::Client::new(&conf),
            ssm: aws_sdk_ssm::Client::new(&conf),
            secrets: aws_sdk_secretsmanager::Client::new(&conf),
            eks: aws_sdk_eks::Client::new(&conf),
            ecr: aws_sdk_ecr::Client::new(&conf),
            credentials: conf.credentials_provider(),
            iam: aws_sdk_iam::Client::new(&conf),
            region: region.to_string(),
            account: std::sync::OnceLock::new(),
            ec2: aws_sdk_ec2::Client::new(&conf),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&conf),
            acm: aws_sdk_acm::Client::new(&conf),
            rds: aws_sdk_rds::Client::new(&conf),
            efs: aws_sdk_efs::Client::new(&conf),
            sts: aws_sdk_sts::Client::new(&conf),
            owner,
            progress: std::sync::OnceLock::new(),
        }
    }

    /// Says what a long create of `key` is doing now (the bake: upload, builder, install, image);
    /// the heartbeat repeats it with the elapsed time.
    pub fn phase(&self, key: &str, kind: Kind, detail: &str) {
        if let Some(report) = self.progress.get() {
            report.resource(key, kind, crate::report::Phase::Creating, detail);
        }
    }

    /// The same clients for another owner (`ls` and `gc` visit every env of the account).
    pub fn for_owner(&self, owner: Owner) -> Cx {
        let account = std::sync::OnceLock::new();
        if let Some(a) = self.account.get() {
            let _ = account.set(a.clone());
        }
        Cx {
            ec2: self.ec2.clone(),
            elb: self.elb.clone(),
            acm: self.acm.clone(),
            rds: self.rds.clone(),
            efs: self.efs.clone(),
            sts: self.sts.clone(),
            s3: self.s3.clone(),
            autoscaling: self.autoscaling.clone(),
            ssm: self.ssm.clone(),
            secrets: self.secrets.clone(),
            eks: self.eks.clone(),
            ecr: self.ecr.clone(),
            credentials: self.credentials.clone(),
            iam: self.iam.clone(),
            region: self.region.clone(),
            account,
            owner,
            progress: self.progress.clone(),
        }
    }

    /// STS GetCallerIdentity: proves the credentials work before anything is touched.
    pub async fn whoami(&self) -> Result<(String, String), AwsError> {
        let me = self.sts.get_caller_identity().send().await?;
        let _ = self
            .account
            .set(me.account().unwrap_or_default().to_string());
        Ok((
            me.account().unwrap_or_default().to_string(),
            me.arn().unwrap_or_default().to_string(),
        ))
    }

    pub fn ec2_tags(&self, key: &str, name: &str) -> Vec<aws_sdk_ec2::types::Tag> {
        self.owner
            .tags(key, name)
            .into_iter()
            .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
            .collect()
    }

    pub fn ec2_tag_spec(
        &self,
        rt: aws_sdk_ec2::types::ResourceType,
        key: &str,
        name: &str,
    ) -> aws_sdk_ec2::types::TagSpecification {
        aws_sdk_ec2::types::TagSpecification::builder()
            .resource_type(rt)
            .set_tags(Some(self.ec2_tags(key, name)))
            .build()
    }

    /// Filters that select this owner's EC2 resources.
    pub fn ec2_owner_filters(&self) -> Vec<aws_sdk_ec2::types::Filter> {
        let f = |k: &str, v: &str| {
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{k}"))
                .values(v)
                .build()
        };
        vec![
            f(TAG_MANAGED_BY, "bookstore"),
            f(TAG_STACK, &self.owner.stack),
            f(TAG_ENV, &self.owner.env),
        ]
    }
}

/// What exists in AWS for one resource.
#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    pub kind: Kind,
    /// The plan key from the `bookstore:key` tag.
    pub key: String,
    pub id: String,
    pub name: String,
    pub state: String,
    /// Usable by the resources that depend on it.
    pub ready: bool,
    /// Carries this stack's and environment's ownership tags. Only owned resources are deleted.
    pub owned: bool,
    /// Values dependents need (ARNs, DNS names).
    pub attrs: BTreeMap<String, String>,
    /// The configuration that matters, as text, compared with the desired one to show drift.
    pub facts: BTreeMap<String, String>,
}

impl Observed {
    pub fn new(kind: Kind, key: impl Into<String>, id: impl Into<String>) -> Observed {
        Observed {
            kind,
            key: key.into(),
            id: id.into(),
            name: String::new(),
            state: "available".into(),
            ready: true,
            owned: true,
            attrs: BTreeMap::new(),
            facts: BTreeMap::new(),
        }
    }

    pub fn attr(&self, name: &str) -> &str {
        self.attrs.get(name).map(String::as_str).unwrap_or_default()
    }

    pub fn fact(&self, name: &str) -> &str {
        self.facts.get(name).map(String::as_str).unwrap_or_default()
    }
}

/// The resources a create may refer to, by plan key.
pub type Deps = BTreeMap<String, Observed>;

pub fn dep_id<'a>(deps: &'a Deps, key: &str) -> &'a str {
    deps.get(key).map(|o| o.id.as_str()).unwrap_or_default()
}

/// The ids of these dependencies, sorted: facts compare them so, and AWS takes them in any order.
pub fn dep_ids(deps: &Deps, keys: &[Ref]) -> Vec<String> {
    let mut ids: Vec<String> = keys.iter().map(|k| dep_id(deps, k).to_string()).collect();
    ids.sort();
    ids
}

/// How much time a kind gets to become ready or gone, and how often to look.
pub struct Budget {
    pub ready: Duration,
    pub poll_max: Duration,
}

#[async_trait]
pub trait Module: Send + Sync {
    /// What the plan says a resource of this kind should be.
    type Spec: KindSpec;

    /// How a planned resource is drawn by `graph`: its line of detail and where it goes.
    fn drawing(&self, spec: &Self::Spec) -> Drawing;

    /// What a planned resource costs while it runs; nothing for what AWS does not charge by
    /// the hour. `plan` is every planned resource (a group's launch template).
    fn cost(&self, key: &str, spec: &Self::Spec, plan: &[Desired]) -> Vec<Charge>;

    /// The EC2 instances creating it starts (a VM 1, a group its desired capacity, a bake its
    /// builder): the Learner Lab's 9-instance cap counts them before `up`.
    fn instances_started(&self, spec: &Self::Spec) -> u32;

    fn budget(&self) -> Budget {
        Budget {
            ready: Duration::from_secs(300),
            poll_max: Duration::from_secs(10),
        }
    }

    /// The IAM actions this module calls, by IAM's names (`ec2:RunInstances`), with those AWS
    /// checks on the caller behind a call (a tag at creation is `CreateTags`; an instance
    /// profile, `iam:PassRole`). `doctor` proves them; the tests fail when a call is missing.
    fn actions(&self) -> Actions;

    /// Every resource of this kind that carries this owner's tags (one or two list calls).
    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError>;

    /// Looks up one resource again by id (for waits and for ids in the journal). `None` when gone.
    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError>;

    /// Creates the resource, tagged at creation; returns it (perhaps not ready yet).
    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, Self::Spec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError>;

    /// The configuration the desired resource should have, in the form `observe` reports it.
    fn expected_facts(&self, want: &Want<'_, Self::Spec>, deps: &Deps) -> BTreeMap<String, String>;

    /// Brings a drifted resource back in place. Returns false when the kind cannot do that.
    async fn update(
        &self,
        _cx: &Cx,
        _want: &Want<'_, Self::Spec>,
        _have: &Observed,
        _deps: &Deps,
    ) -> Result<bool, AwsError> {
        Ok(false)
    }

    /// Starts deleting (undoing attachments first where AWS needs that).
    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError>;

    /// Kinds whose resources must all be gone before one of this kind can be deleted: the
    /// reverse of the creation order, at the level of kinds, so `down` works without a stack's
    /// plan (a resource found by tags alone) and runs independent kinds in parallel.
    fn teardown_after(&self) -> &'static [Kind];

    /// Facts that cannot change in place: drift in one of them replaces the resource (delete,
    /// then create) instead of updating it.
    fn replace_fields(&self) -> &'static [&'static str] {
        &[]
    }

    /// What to tell the user when `update` could not bring a drifted resource in place.
    fn stuck_hint(&self, _want: &Want<'_, Self::Spec>) -> &'static str {
        "differs from the stack and cannot be changed in place; `bookstore down` then `up` recreates it"
    }

    /// Whether drift in `field` replaces this resource (by default: it is a replace field).
    fn replaces(&self, _want: &Want<'_, Self::Spec>, field: &str) -> bool {
        self.replace_fields().contains(&field)
    }

    /// Whether a new resource is compared with the stack again once ready, and updated where it
    /// differs: for kinds whose create leaves steps to finish once it runs (attachments).
    fn converge_after_create(&self) -> bool {
        false
    }

    /// What this resource contributes to `outputs` (name → value).
    fn outputs(&self, _have: &Observed) -> Vec<(String, String)> {
        vec![]
    }

    /// The files this resource puts on machines (user-data, the bake's script), by file name, for
    /// `bookstore render`: rendered with `deps` as they are (placeholders there).
    fn machine_files(&self, _want: &Want<'_, Self::Spec>, _deps: &Deps) -> Vec<(String, String)> {
        vec![]
    }

    /// The files this resource puts on a cluster (the app's Kubernetes objects), by file name, for
    /// `bookstore render`; never a secret value.
    fn cluster_files(&self, _want: &Want<'_, Self::Spec>, _deps: &Deps) -> Vec<(String, String)> {
        vec![]
    }

    /// Why a resource is still not ready when its wait runs out, beyond its `waiting_for` (the
    /// load balancer's reasons, an instance's console): for the error.
    async fn diagnose(&self, _cx: &Cx, have: &Observed) -> Option<String> {
        have.attrs.get("waiting_for").cloned()
    }

    /// Live detail for `status` beyond the resource's own row (instances, targets,
    /// certificates), as named sections of rows. `all` is every observed resource of the stack.
    async fn details(
        &self,
        _cx: &Cx,
        _have: &Observed,
        _all: &[Observed],
    ) -> Result<Vec<Section>, AwsError> {
        Ok(vec![])
    }
}

/// A desired resource as its kind's module sees it: the spec already its own type.
pub struct Want<'a, S> {
    pub key: &'a str,
    /// The Name tag, and the AWS name where the kind has one.
    pub name: &'a str,
    pub spec: &'a S,
}

/// A kind's typed spec: how it is found in the plan's `Spec` (generated by the registry).
pub trait KindSpec: Send + Sync + 'static {
    fn of(spec: &Spec) -> Option<&Self>;
}

/// The same module as the engine, `render`, `cost` and `graph` see it, for any kind: each call
/// finds the kind's own spec in the desired resource once, here.
#[async_trait]
pub trait ResourceKind: Send + Sync {
    fn budget(&self) -> Budget;
    fn actions(&self) -> Actions;
    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError>;
    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError>;
    async fn create(&self, cx: &Cx, want: &Desired, deps: &Deps) -> Result<Observed, AwsError>;
    fn expected_facts(&self, want: &Desired, deps: &Deps) -> BTreeMap<String, String>;
    async fn update(
        &self,
        cx: &Cx,
        want: &Desired,
        have: &Observed,
        deps: &Deps,
    ) -> Result<bool, AwsError>;
    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError>;
    fn teardown_after(&self) -> &'static [Kind];
    fn stuck_hint(&self, want: &Desired) -> &'static str;
    fn replaces(&self, want: &Desired, field: &str) -> bool;
    fn converge_after_create(&self) -> bool;
    fn outputs(&self, have: &Observed) -> Vec<(String, String)>;
    fn machine_files(&self, want: &Desired, deps: &Deps) -> Vec<(String, String)>;
    fn cluster_files(&self, want: &Desired, deps: &Deps) -> Vec<(String, String)>;
    async fn diagnose(&self, cx: &Cx, have: &Observed) -> Option<String>;
    async fn details(
        &self,
        cx: &Cx,
        have: &Observed,
        all: &[Observed],
    ) -> Result<Vec<Section>, AwsError>;
    fn drawing(&self, spec: &Spec) -> Option<Drawing>;
    fn cost(&self, key: &str, spec: &Spec, plan: &[Desired]) -> Vec<Charge>;
    fn instances_started(&self, spec: &Spec) -> u32;
}

/// A desired resource whose spec is not its kind's: the registry pairs each kind with its spec,
/// so only a hand-made `Desired` can get here.
fn mismatch(want: &Desired) -> AwsError {
    AwsError::other(format!(
        "internal error: {} was planned as a {} with a {} spec",
        want.key,
        want.kind.as_str(),
        want.spec.kind().as_str()
    ))
}

fn typed<'a, S: KindSpec>(want: &'a Desired) -> Option<Want<'a, S>> {
    Some(Want {
        key: &want.key,
        name: &want.name,
        spec: S::of(&want.spec)?,
    })
}

#[async_trait]
impl<M: Module> ResourceKind for M {
    fn budget(&self) -> Budget {
        Module::budget(self)
    }
    fn actions(&self) -> Actions {
        Module::actions(self)
    }
    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        Module::observe(self, cx).await
    }
    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        Module::refresh(self, cx, have).await
    }
    async fn create(&self, cx: &Cx, want: &Desired, deps: &Deps) -> Result<Observed, AwsError> {
        let typed = typed::<M::Spec>(want).ok_or_else(|| mismatch(want))?;
        Module::create(self, cx, &typed, deps).await
    }
    fn expected_facts(&self, want: &Desired, deps: &Deps) -> BTreeMap<String, String> {
        typed::<M::Spec>(want)
            .map(|t| Module::expected_facts(self, &t, deps))
            .unwrap_or_default()
    }
    async fn update(
        &self,
        cx: &Cx,
        want: &Desired,
        have: &Observed,
        deps: &Deps,
    ) -> Result<bool, AwsError> {
        let typed = typed::<M::Spec>(want).ok_or_else(|| mismatch(want))?;
        Module::update(self, cx, &typed, have, deps).await
    }
    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        Module::delete(self, cx, have).await
    }
    fn teardown_after(&self) -> &'static [Kind] {
        Module::teardown_after(self)
    }
    fn stuck_hint(&self, want: &Desired) -> &'static str {
        match typed::<M::Spec>(want) {
            Some(t) => Module::stuck_hint(self, &t),
            None => "was planned with another kind's spec (an internal error)",
        }
    }
    fn replaces(&self, want: &Desired, field: &str) -> bool {
        typed::<M::Spec>(want).is_some_and(|t| Module::replaces(self, &t, field))
    }
    fn converge_after_create(&self) -> bool {
        Module::converge_after_create(self)
    }
    fn outputs(&self, have: &Observed) -> Vec<(String, String)> {
        Module::outputs(self, have)
    }
    fn machine_files(&self, want: &Desired, deps: &Deps) -> Vec<(String, String)> {
        typed::<M::Spec>(want)
            .map(|t| Module::machine_files(self, &t, deps))
            .unwrap_or_default()
    }
    fn cluster_files(&self, want: &Desired, deps: &Deps) -> Vec<(String, String)> {
        typed::<M::Spec>(want)
            .map(|t| Module::cluster_files(self, &t, deps))
            .unwrap_or_default()
    }
    async fn diagnose(&self, cx: &Cx, have: &Observed) -> Option<String> {
        Module::diagnose(self, cx, have).await
    }
    async fn details(
        &self,
        cx: &Cx,
        have: &Observed,
        all: &[Observed],
    ) -> Result<Vec<Section>, AwsError> {
        Module::details(self, cx, have, all).await
    }
    fn drawing(&self, spec: &Spec) -> Option<Drawing> {
        Some(Module::drawing(self, M::Spec::of(spec)?))
    }
    fn cost(&self, key: &str, spec: &Spec, plan: &[Desired]) -> Vec<Charge> {
        M::Spec::of(spec)
            .map(|s| Module::cost(self, key, s, plan))
            .unwrap_or_default()
    }
    fn instances_started(&self, spec: &Spec) -> u32 {
        M::Spec::of(spec).map_or(0, |s| Module::instances_started(self, s))
    }
}

/// How `graph` draws a planned resource.
pub struct Drawing {
    /// One line under its name: what it is, with the facts a reader wants.
    pub detail: String,
    pub place: Place,
}

/// Where `graph` puts a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A box drawn around others (the VPC, a security group), not a node.
    Container,
    /// The network's plumbing (subnets, routes, gateway): in the network box, no arrows to it.
    Network,
    /// The bake's box (done once per app build).
    Bake,
    /// The account's stores, outside the VPC.
    Stores,
    /// In this security group's box.
    Group(Ref),
    /// Wherever this other resource goes.
    With(Ref),
    /// With the first resource of this kind that refers to it (a subnet group with its database).
    ReferredBy(&'static [Kind]),
}

/// One hourly charge of a planned resource, or a price the table does not know.
#[derive(Debug, Clone, PartialEq)]
pub enum Charge {
    Hourly {
        /// The resource's key, or a part of it (`database-secret`).
        key: String,
        /// What is charged, e.g. "t3.micro + 16 GB gp3".
        what: String,
        usd: f64,
    },
    /// Counted as 0 and said: "web (x9.huge)".
    Unpriced(String),
}

/// A kind's IAM actions: those that read (every run observes every kind, so every stack needs
/// them all) and those that make, change and delete (needed by the stacks that plan the kind).
pub struct Actions {
    pub observe: &'static [&'static str],
    pub change: &'static [&'static str],
}

/// One block of `status` detail: e.g. `instances`, each row a map of field → value.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub name: String,
    pub rows: Vec<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Missing, expired or refused credentials: stop at once, never retry.
    Credentials,
    /// Still throttled after the SDK's retries.
    Throttling,
    /// Something else still uses it (DependencyViolation, ResourceInUse): retry later.
    Dependency,
    NotFound,
    Other,
}

#[derive(Debug, Clone)]
pub struct AwsError {
    pub code: Option<String>,
    pub message: String,
    pub class: ErrorClass,
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{code}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

const CREDENTIAL_CODES: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "AuthFailure",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
];

impl AwsError {
    pub fn classify(code: Option<&str>, message: &str) -> ErrorClass {
        match code {
            Some(c) if CREDENTIAL_CODES.contains(&c) => ErrorClass::Credentials,
            Some(c)
                if c.contains("Throttl")
                    || c == "RequestLimitExceeded"
                    || c == "TooManyRequestsException" =>
            {
                ErrorClass::Throttling
            }
            Some(c)
                if c == "DependencyViolation"
                    || c.starts_with("ResourceInUse")
                    || c.ends_with("InUse")
                    || c == "InvalidDBSubnetGroupStateFault"
                    || c == "InvalidDBInstanceState" =>
            {
                ErrorClass::Dependency
            }
            Some(c) if c.contains("NotFound") || c.starts_with("NoSuch") => ErrorClass::NotFound,
            None if message.contains("credentials") || message.contains("Credentials") => {
                ErrorClass::Credentials
            }
            _ => ErrorClass::Other,
        }
    }

    pub fn other(message: impl Into<String>) -> AwsError {
        AwsError {
            code: None,
            message: message.into(),
            class: ErrorClass::Other,
        }
    }
}

impl<E> From<SdkError<E, HttpResponse>> for AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn from(err: SdkError<E, HttpResponse>) -> Self {
        let (code, message) = match &err {
            SdkError::ServiceError(se) => (
                se.err().code().map(str::to_string),
                match se.err().message() {
                    Some(m) => m.to_string(),
                    // No message (an HTTP 500 with an empty body, say): the status says more.
                    None => format!("HTTP {} with no error message", se.raw().status().as_u16()),
                },
            ),
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => (
                None,
                format!(
                    "cannot reach AWS: {}",
                    aws_smithy_types::error::display::DisplayErrorContext(&err)
                ),
            ),
            _ => (
                None,
                aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
            ),
        };
        let class = AwsError::classify(code.as_deref(), &message);
        AwsError {
            code,
            message,
            class,
        }
    }
}

/// A describe-by-id that fails with *.NotFound means the resource is gone.
pub fn gone_if_not_found<T>(e: AwsError) -> Result<Option<T>, AwsError> {
    if e.class == ErrorClass::NotFound {
        Ok(None)
    } else {
        Err(e)
    }
}

/// Reads a tag value from an EC2 tag list.
pub fn ec2_tag<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

pub fn ec2_tag_pairs(tags: &[aws_sdk_ec2::types::Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter().filter_map(|t| Some((t.key()?, t.value()?)))
}
