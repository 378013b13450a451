//! A monolith VM: one EC2 instance from the baked image, IMDSv2 required, an encrypted gp3 root,
//! the instance profile (administration through SSM Session Manager: no SSH, no key pair), and
//! user-data that carries settings only (`templates/monolith/user-data.sh`).
//!
//! `create` launches it; once it runs, the engine compares it again (`converge_after_create`) and
//! `update` attaches the stack's data volume and associates the Elastic IP — the same step repairs
//! a run killed during the wait or the attach. A new image, instance type, security group or boot
//! configuration replaces the instance (the engine terminates it, the volume comes free, a new one
//! gets the same volume): the data stays on the volume.
//!
//! Only instances tagged `bookstore:kind=instance` are this kind's: a bake's builder and an Auto
//! Scaling group's instances of the same env are never adopted, changed or deleted here.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    Filter, InstanceNetworkInterfaceSpecification, ResourceType, Tag, TagSpecification,
};
use serde::Serialize;

use super::poll::{self, Look, Pace};
use super::{
    Actions, AwsError, Budget, Charge, Cx, Deps, Desired, Drawing, Module, Observed, Place,
    Section, TAG_KIND, Want, dep_id, ec2_tag, ec2_tag_pairs, gone_if_not_found,
};
use crate::artifact::sha256_hex;
use crate::kinds::Kind;
use crate::prices;
use crate::reference::Ref;
use crate::stack::{AppService, Services, TlsMode};

use crate::templates::{MonolithConfig, monolith_user_data};

/// One EC2 instance from the baked image, with its data volume attached and, when public, its
/// Elastic IP associated. Replaced (never changed in place) when its image or type changes.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceSpec {
    pub image: Ref,
    pub subnet: Ref,
    /// The instance downloads at boot (certificates): the subnet's route must exist.
    pub routes: Ref,
    pub security_group: Ref,
    pub instance_type: String,
    pub root_volume_gb: u32,
    pub volume_type: String,
    pub instance_profile: Option<String>,
    /// The Elastic IP to associate (a public instance), or none (a private one).
    pub address: Option<Ref>,
    /// The stack's data volume to attach, if the instance has one.
    pub data_volume: Option<Ref>,
    /// The database credentials' secret, when they are shared between VMs.
    pub secret: Option<Ref>,
    pub region: String,
    /// What the instance runs: its user-data is rendered from this.
    pub role: InstanceRole,
}

/// A swarm node's part in the bootstrap.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SwarmNode {
    /// The first manager: `swarm init`, publishes the join tokens, deploys the stack.
    Leader,
    Manager,
    Worker,
}

impl SwarmNode {
    pub fn as_str(self) -> &'static str {
        match self {
            SwarmNode::Leader => "leader",
            SwarmNode::Manager => "manager",
            SwarmNode::Worker => "worker",
        }
    }
}

/// What an instance runs.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "role", rename_all = "kebab-case")]
pub enum InstanceRole {
    /// App + proxy, and the database too unless `database` names the database VM's key.
    App {
        app_port: u16,
        /// One process, or the split's three services behind nginx.
        services: Services,
        tls_mode: TlsMode,
        domain: Option<String>,
        acme_server: String,
        database: Option<Ref>,
    },
    /// MariaDB only, for the app VM's security group.
    Database,
    /// A Docker Swarm node; the app runs as a swarm service from the stack file.
    Swarm {
        node: SwarmNode,
        /// The secret the leader writes the join tokens to.
        tokens: Ref,
        /// The secret naming the app image to run (written by bookstore).
        release: Ref,
        /// The secret the swarm's leader reports Docker's view to.
        status: Ref,
        app_port: u16,
        /// One service, or the split's three.
        services: Services,
        replicas: u32,
        /// The split's services with replicas of their own (`app.replicas`).
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        service_replicas: BTreeMap<AppService, u32>,
        database: Option<Ref>,
        file_system: Option<Ref>,
        /// Nodes mount the file system at boot: its mount targets must exist first.
        mount_targets: Vec<Ref>,
    },
}

pub struct Instances;

/// Where the data volume is attached; the setup script finds it by its volume id.
const DATA_DEVICE: &str = "/dev/sdf";
/// On the instance: the hash of the user-data it booted with (AWS does not list user-data).
const TAG_BOOT: &str = "bookstore:boot-sha256";
/// On an app VM: its TLS mode, so that `status` knows whether to read a certificate.
const TAG_TLS: &str = "bookstore:tls-mode";
/// On a swarm node: leader, manager or worker, for `status`.
const TAG_SWARM_ROLE: &str = "bookstore:swarm-role";

fn read(cx: &Cx, i: &aws_sdk_ec2::types::Instance) -> Observed {
    let tags = i.tags();
    let mut o = Observed::new(
        Kind::Instance,
        ec2_tag(tags, super::TAG_KEY).unwrap_or_default(),
        i.instance_id().unwrap_or_default(),
    );
    o.name = ec2_tag(tags, "Name").unwrap_or_default().to_string();
    o.owned = cx.owner.owns(ec2_tag_pairs(tags));
    o.state = i
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_string())
        .unwrap_or_default();
    o.ready = o.state == "running";
    let data_volume = i
        .block_device_mappings()
        .iter()
        .find(|m| m.device_name() == Some(DATA_DEVICE))
        .and_then(|m| m.ebs()?.volume_id())
        .unwrap_or_default();
    // Launched with a network interface: its groups are the instance's.
    let mut groups: Vec<&str> = i
        .security_groups()
        .iter()
        .chain(i.network_interfaces().iter().flat_map(|n| n.groups()))
        .filter_map(|g| g.group_id())
        .collect();
    groups.sort();
    groups.dedup();
    for (fact, value) in [
        ("image", i.image_id().unwrap_or_default()),
        (
            "instance_type",
            i.instance_type().map(|t| t.as_str()).unwrap_or_default(),
        ),
        ("security_group", &groups.join(",")),
        (
            "metadata_tokens",
            i.metadata_options()
                .and_then(|m| m.http_tokens())
                .map(|t| t.as_str())
                .unwrap_or_default(),
        ),
        ("boot_config", ec2_tag(tags, TAG_BOOT).unwrap_or_default()),
        ("data_volume", data_volume),
        ("public_ip", i.public_ip_address().unwrap_or_default()),
    ] {
        o.facts.insert(fact.into(), value.to_string());
    }
    for (attr, value) in [
        ("tls_mode", ec2_tag(tags, TAG_TLS).unwrap_or_default()),
        (
            "swarm_role",
            ec2_tag(tags, TAG_SWARM_ROLE).unwrap_or_default(),
        ),
        ("private_ip", i.private_ip_address().unwrap_or_default()),
        (
            "availability_zone",
            i.placement()
                .and_then(|p| p.availability_zone())
                .unwrap_or_default(),
        ),
    ] {
        o.attrs.insert(attr.into(), value.to_string());
    }
    o
}

fn kind_filter() -> Filter {
    Filter::builder()
        .name(format!("tag:{TAG_KIND}"))
        .values(Kind::Instance.as_str())
        .build()
}

async fn describe(cx: &Cx, id: &str) -> Result<Option<Observed>, AwsError> {
    match cx.ec2.describe_instances().instance_ids(id).send().await {
        Ok(out) => Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .map(|i| read(cx, i))
            .find(|o| o.state != "terminated")),
        Err(e) => gone_if_not_found(e.into()),
    }
}

struct Parts<'a> {
    image: &'a str,
    subnet: &'a str,
    security_group: &'a str,
    instance_type: &'a str,
    root_volume_gb: u32,
    volume_type: &'a str,
    instance_profile: Option<&'a str>,
    address: Option<&'a str>,
    data_volume: Option<&'a str>,
    secret: Option<&'a str>,
    region: &'a str,
    role: &'a InstanceRole,
}

fn parts<'a>(want: &Want<'a, InstanceSpec>) -> Parts<'a> {
    let InstanceSpec {
        image,
        subnet,
        security_group,
        instance_type,
        root_volume_gb,
        volume_type,
        instance_profile,
        address,
        data_volume,
        secret,
        region,
        role,
        ..
    } = want.spec;
    Parts {
        image,
        subnet,
        security_group,
        instance_type,
        root_volume_gb: *root_volume_gb,
        volume_type,
        instance_profile: instance_profile.as_deref(),
        address: address.as_deref(),
        data_volume: data_volume.as_deref(),
        secret: secret.as_deref(),
        region,
        role,
    }
}

/// The user-data: settings only, from the dependencies (volume id, address, database host).
fn user_data(want: &Want<'_, InstanceSpec>, deps: &Deps) -> String {
    let p = parts(want);
    let public_ip = p
        .address
        .and_then(|a| deps.get(a))
        .map(|a| a.attr("public_ip").to_string())
        .unwrap_or_default();
    let data_volume_id = p.data_volume.map(|v| dep_id(deps, v)).unwrap_or_default();
    let db_secret_arn = p.secret.map(|s| dep_id(deps, s)).unwrap_or_default();
    match p.role {
        InstanceRole::App {
            app_port,
            services,
            tls_mode,
            domain,
            acme_server,
            database,
        } => {
            let db_host = database
                .as_ref()
                .and_then(|d| deps.get(d.as_str()))
                .map(|d| d.attr("private_ip").to_string())
                .unwrap_or_default();
            monolith_user_data(&MonolithConfig {
                role: "app",
                data_volume_id,
                app_port: *app_port,
                db_host: &db_host,
                tls_mode: tls_mode.as_str(),
                public_ip: &public_ip,
                domain: domain.as_deref().unwrap_or_default(),
                acme_server,
                db_secret_arn,
                region: p.region,
                services: *services,
            })
        }
        InstanceRole::Database => monolith_user_data(&MonolithConfig {
            role: "db",
            data_volume_id,
            app_port: 8080,
            db_host: "",
            tls_mode: "none",
            public_ip: "",
            domain: "",
            acme_server: "",
            db_secret_arn,
            region: p.region,
            services: Services::Single,
        }),
        InstanceRole::Swarm {
            node,
            tokens,
            release,
            status,
            app_port,
            services,
            replicas,
            service_replicas,
            database,
            file_system,
            ..
        } => {
            let db = database.as_ref().and_then(|d| deps.get(d.as_str()));
            let image_sha = deps
                .get(p.image)
                .and_then(|i| i.facts.get("artifact_sha256"))
                .map(|s| s[..s.len().min(12)].to_string())
                .unwrap_or_default();
            crate::templates::swarm_user_data(&crate::templates::SwarmConfig {
                node: node.as_str(),
                key: want.key,
                region: p.region,
                tokens_secret_arn: dep_id(deps, tokens),
                release_secret_arn: dep_id(deps, release),
                status_secret_arn: dep_id(deps, status),
                app_port: *app_port,
                replicas: *replicas,
                service_replicas,
                image_tag: &image_sha,
                db_endpoint: db.map(|d| d.attr("endpoint")).unwrap_or_default(),
                db_secret_arn: db.map(|d| d.attr("secret_arn")).unwrap_or_default(),
                file_system_id: file_system
                    .as_ref()
                    .map(|f| dep_id(deps, f))
                    .unwrap_or_default(),
                services: *services,
            })
        }
    }
}

/// The last `lines` lines of an instance's console.
pub async fn console_tail(cx: &Cx, id: &str, lines: usize) -> Result<String, AwsError> {
    let text = console_text(cx, id).await?;
    let tail: Vec<&str> = text.lines().rev().take(lines).collect();
    Ok(tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
}

/// An instance's console output (EC2 keeps the latest 64 KB).
pub async fn console_text(cx: &Cx, id: &str) -> Result<String, AwsError> {
    let console = cx
        .ec2
        .get_console_output()
        .instance_id(id)
        .latest(true)
        .send()
        .await?;
    Ok(console
        .output()
        .and_then(|b64| aws_smithy_types::base64::decode(b64).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default())
}

/// An app VM (the monolith's, tagged with its TLS mode) is ready once the app answers its health
/// check through the proxy at the VM's Elastic IP, not merely once it runs. Before the address is
/// associated (the engine does that once the VM runs) there is nothing to ask yet.
async fn with_app_health(cx: &Cx, mut o: Observed) -> Result<Observed, AwsError> {
    let tls_mode = o.attr("tls_mode").to_string();
    if !o.ready || tls_mode.is_empty() {
        return Ok(o);
    }
    let eips = cx
        .ec2
        .describe_addresses()
        .filters(Filter::builder().name("instance-id").values(&o.id).build())
        .send()
        .await?;
    let Some(ip) = eips
        .addresses()
        .first()
        .and_then(|a| a.public_ip())
        .and_then(|ip| ip.parse().ok())
    else {
        return Ok(o);
    };
    match crate::probe::app_health(ip, tls_mode != "none").await {
        Ok(()) => {
            o.attrs.insert("app".into(), "answering".into());
        }
        Err(why) => {
            o.ready = false;
            o.attrs.insert("app".into(), why.clone());
            o.attrs
                .insert("waiting_for".into(), format!("the app to answer: {why}"));
        }
    }
    Ok(o)
}

/// Waits until the instance runs (attachments need it), within the kind's budget.
async fn wait_running(cx: &Cx, id: &str) -> Result<Observed, AwsError> {
    poll::until(
        Duration::from_secs(600),
        Pace::every(Duration::from_secs(2)),
        |_| async move {
            match describe(cx, id).await? {
                Some(o) if o.ready => Ok(Look::Done(o)),
                Some(o) if matches!(o.state.as_str(), "stopping" | "stopped" | "shutting-down") => {
                    Err(AwsError::other(format!(
                        "instance {id} is {}; start it (`aws ec2 start-instances --instance-ids {id}`) and run up again",
                        o.state
                    )))
                }
                None => Err(AwsError::other(format!("instance {id} is gone"))),
                Some(_) => Ok(Look::Again),
            }
        },
        |_| AwsError::other(format!("instance {id} was not running after 600 s")),
    )
    .await
}

#[async_trait]
impl Module for Instances {
    type Spec = InstanceSpec;

    fn drawing(&self, spec: &Self::Spec) -> Drawing {
        let what = match &spec.role {
            InstanceRole::App { database, .. } => {
                if database.is_some() {
                    "app + proxy"
                } else {
                    "app + proxy + MariaDB"
                }
            }
            InstanceRole::Database => "MariaDB",
            InstanceRole::Swarm { node, .. } => node.as_str(),
        };
        let detail = format!("EC2 {}: {what}", spec.instance_type);
        Drawing {
            detail,
            place: Place::Group(spec.security_group.clone()),
        }
    }

    fn cost(&self, key: &str, spec: &Self::Spec, _plan: &[Desired]) -> Vec<Charge> {
        let InstanceSpec {
            instance_type,
            root_volume_gb,
            volume_type,
            address,
            role,
            ..
        } = spec;
        let Some(compute) = prices::ec2_hourly(instance_type) else {
            return vec![Charge::Unpriced(format!("{key} ({instance_type})"))];
        };
        // A swarm node gets a public address from its subnet; a monolith VM's is its Elastic IP
        // (priced there); the private database VM has none.
        let public = address.is_none() && matches!(role, InstanceRole::Swarm { .. });
        let disk =
            prices::gb_month_hourly(*root_volume_gb as f64, prices::ebs_gb_month(volume_type));
        let ip = if public {
            prices::PUBLIC_IPV4_HOURLY
        } else {
            0.0
        };
        vec![Charge::Hourly {
            key: key.to_string(),
            what: format!(
                "{instance_type} + {root_volume_gb} GB {volume_type}{}",
                if public { " + public IPv4" } else { "" }
            ),
            usd: compute + disk + ip,
        }]
    }

    fn instances_started(&self, _spec: &Self::Spec) -> u32 {
        1
    }

    fn actions(&self) -> Actions {
        Actions {
            observe: &[
                "ec2:DescribeInstances",
                "ec2:DescribeVolumes",
                "ec2:DescribeAddresses",
            ],
            change: &[
                "ec2:RunInstances",
                "ec2:CreateTags",
                "iam:PassRole",
                "ec2:AssociateAddress",
                "ec2:AttachVolume",
                "ec2:GetConsoleOutput",
                "ec2:TerminateInstances",
            ],
        }
    }

    fn budget(&self) -> Budget {
        Budget {
            ready: Duration::from_secs(600),
            poll_max: Duration::from_secs(10),
        }
    }

    /// Out of the load balancer first, so that no request goes to a node being terminated.
    fn teardown_after(&self) -> &'static [Kind] {
        &[Kind::Targets]
    }

    fn replace_fields(&self) -> &'static [&'static str] {
        &[
            "image",
            "instance_type",
            "security_group",
            "metadata_tokens",
            "boot_config",
        ]
    }

    /// A swarm is never replaced node by node on a new image: replacing every node at once would
    /// lose the swarm. That drift is shown and left (see `update`).
    fn replaces(&self, want: &Want<'_, InstanceSpec>, field: &str) -> bool {
        let swarm = matches!(parts(want).role, InstanceRole::Swarm { .. });
        self.replace_fields().contains(&field)
            && !(swarm && matches!(field, "image" | "boot_config"))
    }

    fn stuck_hint(&self, want: &Want<'_, InstanceSpec>) -> &'static str {
        if matches!(parts(want).role, InstanceRole::Swarm { .. }) {
            "the node keeps the AMI it booted from: the new app reaches the running swarm through its release secret, and the swarm's leader rolls the service (`bookstore status` shows the service's image)"
        } else {
            "differs from the stack and cannot be changed in place; `bookstore down` then `up` recreates it"
        }
    }

    fn converge_after_create(&self) -> bool {
        true
    }

    fn machine_files(&self, want: &Want<'_, InstanceSpec>, deps: &Deps) -> Vec<(String, String)> {
        vec![("user-data.sh".into(), user_data(want, deps))]
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let mut filters = cx.ec2_owner_filters();
        filters.push(kind_filter());
        let out = cx
            .ec2
            .describe_instances()
            .set_filters(Some(filters))
            .send()
            .await?;
        let mut found = Vec::new();
        for o in out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .map(|i| read(cx, i))
            .filter(|o| !matches!(o.state.as_str(), "terminated" | "shutting-down"))
        {
            found.push(with_app_health(cx, o).await?);
        }
        Ok(found)
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match describe(cx, &have.id)
            .await?
            .filter(|o| o.state != "shutting-down")
        {
            Some(o) => Ok(Some(with_app_health(cx, o).await?)),
            None => Ok(None),
        }
    }

    /// What the wait was for, and the last lines of the VM's console (its boot, cloud-init, the
    /// app's and proxy's start).
    async fn diagnose(&self, cx: &Cx, have: &Observed) -> Option<String> {
        let waiting = have.attrs.get("waiting_for").cloned()?;
        match console_tail(cx, &have.id, 12)
            .await
            .ok()
            .filter(|t| !t.is_empty())
        {
            Some(tail) => Some(format!(
                "{waiting}\nlast console lines of {}:\n{tail}",
                have.id
            )),
            None => Some(waiting),
        }
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, InstanceSpec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let p = parts(want);
        let script = user_data(want, deps);
        let mut tags = cx.ec2_tags(want.key, want.name);
        tags.push(Tag::builder().key(TAG_KIND).value("instance").build());
        match p.role {
            InstanceRole::App { tls_mode, .. } => {
                tags.push(Tag::builder().key(TAG_TLS).value(tls_mode.as_str()).build())
            }
            InstanceRole::Swarm { node, .. } => tags.push(
                Tag::builder()
                    .key(TAG_SWARM_ROLE)
                    .value(node.as_str())
                    .build(),
            ),
            InstanceRole::Database => {}
        }
        tags.push(
            Tag::builder()
                .key(TAG_BOOT)
                .value(sha256_hex(script.as_bytes()))
                .build(),
        );
        // The root volume carries the owner's tags but not this kind's: the volume kind never
        // takes it for a data volume.
        let root_tags = cx.ec2_tags(
            &format!("{}-root", want.key),
            &format!("{}-root", want.name),
        );
        let launch = super::launch::Hardened {
            root_gb: p.root_volume_gb,
            volume_type: p.volume_type,
            instance_profile: p.instance_profile,
        };
        let run = cx
            .ec2
            .run_instances()
            .image_id(dep_id(deps, p.image))
            .instance_type(p.instance_type.into())
            .min_count(1)
            .max_count(1)
            .user_data(super::launch::user_data(want.key, &script)?)
            .network_interfaces(
                InstanceNetworkInterfaceSpecification::builder()
                    .device_index(0)
                    .subnet_id(dep_id(deps, p.subnet))
                    .groups(dep_id(deps, p.security_group))
                    // Public (the Elastic IP, if any, replaces this address once associated): the
                    // instance reaches AWS's APIs without a NAT gateway. The database VM is not.
                    .associate_public_ip_address(!matches!(p.role, InstanceRole::Database))
                    .delete_on_termination(true)
                    .build(),
            )
            .metadata_options(launch.metadata_options())
            .block_device_mappings(launch.root_device())
            .set_iam_instance_profile(launch.instance_profile())
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .set_tags(Some(tags))
                    .build(),
            )
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Volume)
                    .set_tags(Some(root_tags))
                    .build(),
            );
        let out = run.send().await?;
        let instance = out
            .instances()
            .first()
            .ok_or_else(|| AwsError::other("RunInstances returned no instance"))?;
        Ok(read(cx, instance))
    }

    fn expected_facts(
        &self,
        want: &Want<'_, InstanceSpec>,
        deps: &Deps,
    ) -> BTreeMap<String, String> {
        let p = parts(want);
        let mut facts = BTreeMap::from([
            ("image".into(), dep_id(deps, p.image).to_string()),
            ("instance_type".into(), p.instance_type.to_string()),
            (
                "security_group".into(),
                dep_id(deps, p.security_group).to_string(),
            ),
            ("metadata_tokens".into(), "required".into()),
            (
                "boot_config".into(),
                sha256_hex(user_data(want, deps).as_bytes()),
            ),
            (
                "data_volume".into(),
                p.data_volume
                    .map(|v| dep_id(deps, v))
                    .unwrap_or_default()
                    .to_string(),
            ),
        ]);
        // Only an Elastic IP is a promise; other public addresses change with every start.
        if let Some(address) = p.address.and_then(|a| deps.get(a)) {
            facts.insert("public_ip".into(), address.attr("public_ip").to_string());
        }
        facts
    }

    /// Attaches the data volume and associates the Elastic IP, each only when missing.
    async fn update(
        &self,
        cx: &Cx,
        want: &Want<'_, InstanceSpec>,
        have: &Observed,
        deps: &Deps,
    ) -> Result<bool, AwsError> {
        let p = parts(want);
        let expected = self.expected_facts(want, deps);
        let stale_image = ["image", "boot_config"]
            .iter()
            .any(|f| have.facts.get(*f) != expected.get(*f));
        if matches!(p.role, InstanceRole::Swarm { .. }) && stale_image {
            // A new app for a running swarm rolls through the release secret, never by replacing
            // the nodes (that would lose the swarm): the node itself stays as it is.
            return Ok(false);
        }
        let have = wait_running(cx, &have.id).await?;
        if let Some(volume) = p.data_volume.map(|v| dep_id(deps, v))
            && have.facts.get("data_volume").map(String::as_str) != Some(volume)
        {
            attach(cx, volume, &have.id).await?;
        }
        if let Some(address) = p.address.and_then(|a| deps.get(a)) {
            let wanted_ip = address.attr("public_ip");
            if have.facts.get("public_ip").map(String::as_str) != Some(wanted_ip) {
                cx.ec2
                    .associate_address()
                    .allocation_id(&address.id)
                    .instance_id(&have.id)
                    .allow_reassociation(true)
                    .send()
                    .await?;
            }
        }
        Ok(true)
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        cx.ec2
            .terminate_instances()
            .instance_ids(&have.id)
            .send()
            .await?;
        Ok(())
    }

    fn outputs(&self, have: &Observed) -> Vec<(String, String)> {
        let prefix = if have.key == "vm" {
            String::new()
        } else {
            format!("{}_", have.key.replace('-', "_"))
        };
        vec![
            (format!("{prefix}instance_id"), have.id.clone()),
            (
                format!("{prefix}private_ip"),
                have.attr("private_ip").into(),
            ),
        ]
    }

    async fn details(
        &self,
        _cx: &Cx,
        have: &Observed,
        _all: &[Observed],
    ) -> Result<Vec<Section>, AwsError> {
        let row = BTreeMap::from([
            ("key".to_string(), have.key.clone()),
            ("id".to_string(), have.id.clone()),
            ("state".to_string(), have.state.clone()),
            ("swarm_role".to_string(), have.attr("swarm_role").into()),
            (
                "availability_zone".to_string(),
                have.attr("availability_zone").into(),
            ),
            (
                "instance_type".to_string(),
                have.facts.get("instance_type").cloned().unwrap_or_default(),
            ),
            ("private_ip".to_string(), have.attr("private_ip").into()),
            ("app".to_string(), have.attr("app").into()),
            (
                "public_ip".to_string(),
                have.facts.get("public_ip").cloned().unwrap_or_default(),
            ),
            (
                "data_volume".to_string(),
                have.facts.get("data_volume").cloned().unwrap_or_default(),
            ),
        ]);
        let mut sections = vec![Section {
            name: "instances".into(),
            rows: vec![row],
        }];
        // The certificate actually served, read from the endpoint.
        let public_ip = have.facts.get("public_ip").cloned().unwrap_or_default();
        let tls = !matches!(have.attr("tls_mode"), "" | "none");
        if let (true, Ok(ip)) = (tls, public_ip.parse::<std::net::IpAddr>()) {
            let port = crate::probe::https_port();
            let mut row = BTreeMap::from([
                ("key".to_string(), have.key.clone()),
                ("endpoint".to_string(), format!("{ip}:{port}")),
                ("mode".to_string(), have.attr("tls_mode").to_string()),
            ]);
            match crate::probe::served_certificate(ip, port).await {
                Ok(c) => {
                    let served = if c.self_signed {
                        "self-signed (the fallback until a certificate is issued)"
                    } else {
                        "issued by a certificate authority"
                    };
                    row.insert("served".into(), served.into());
                    row.insert("subject".into(), c.subject);
                    row.insert("issuer".into(), c.issuer);
                    row.insert("not_after".into(), c.not_after);
                }
                Err(e) => {
                    row.insert("served".into(), format!("unreachable: {e}"));
                }
            }
            sections.push(Section {
                name: "certificates".into(),
                rows: vec![row],
            });
        }
        Ok(sections)
    }
}

/// Attaches the volume and waits until AWS reports it attached. A volume still attached to an
/// instance being terminated (a replacement) is waited for until it comes free.
async fn attach(cx: &Cx, volume: &str, instance: &str) -> Result<(), AwsError> {
    // One budget for both: coming free and attaching.
    const BUDGET: Duration = Duration::from_secs(300);
    let started = std::time::Instant::now();
    // Past the budget, the last refusal is the error.
    let last = std::sync::Mutex::new(None);
    poll::until(
        BUDGET,
        Pace::every(Duration::from_secs(3)),
        |_| {
            let last = &last;
            async move {
                let sent = cx
                    .ec2
                    .attach_volume()
                    .volume_id(volume)
                    .instance_id(instance)
                    .device(DATA_DEVICE)
                    .send()
                    .await;
                match sent {
                    Ok(_) => Ok(Look::Done(())),
                    Err(e) => {
                        let e = AwsError::from(e);
                        let busy = e.code.as_deref() == Some("VolumeInUse")
                            || e.code.as_deref() == Some("IncorrectState");
                        if !busy {
                            return Err(e);
                        }
                        *last.lock().expect("attach's last error") = Some(e);
                        Ok(Look::Again)
                    }
                }
            }
        },
        |_| {
            last.lock()
                .expect("attach's last error")
                .take()
                .unwrap_or_else(|| AwsError::other(format!("volume {volume} stayed in use")))
        },
    )
    .await?;
    poll::until(
        BUDGET.saturating_sub(started.elapsed()),
        Pace::every(Duration::from_secs(2)),
        |_| async move {
            let out = cx.ec2.describe_volumes().volume_ids(volume).send().await?;
            let attached = out.volumes().first().is_some_and(|v| {
                v.attachments().iter().any(|a| {
                    a.instance_id() == Some(instance)
                        && a.state().map(|s| s.as_str()) == Some("attached")
                })
            });
            Ok(if attached {
                Look::Done(())
            } else {
                Look::Again
            })
        },
        |_| {
            AwsError::other(format!(
                "volume {volume} was not attached to {instance} after 300 s"
            ))
        },
    )
    .await
}
