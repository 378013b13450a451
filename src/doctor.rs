//! `bookstore doctor`: what a first `up` of this stack needs from the account, checked without
//! side effects (only reads): the credentials and who they are, the region, the instance profile,
//! the instances already running against the Learner Lab's 9, the Elastic IP and VPC quotas, the
//! bookstore envs present, and the base image's public parameter the bake reads. Each check is OK,
//! WARN or FAIL with the fix; any FAIL exits 1.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::aws::{Cx, TAG_ENV, TAG_STACK, ec2_tag};
use crate::config::Config;
use crate::plan::Spec;
use crate::stack::{LAB_MAX_INSTANCES, LAB_REGIONS, Sandbox};

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub verdict: Verdict,
    pub detail: String,
    /// What to do, unless OK.
    pub fix: String,
}

#[derive(Debug, Serialize)]
pub struct Doctor {
    pub stack: String,
    pub region: String,
    pub checks: Vec<Check>,
    /// The actions proved with the policy simulator, by principal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Permissions>,
}

#[derive(Debug, Serialize)]
pub struct Permissions {
    /// The caller as the simulator takes it, and every action the CLI calls for this stack.
    pub caller: String,
    pub cli: Vec<String>,
    /// The role behind the instance profile, and every action the stack's machines call.
    pub machine_role: Option<String>,
    pub machines: Vec<String>,
}

impl Doctor {
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.verdict == Verdict::Fail)
    }
}

fn check(check: &'static str, verdict: Verdict, detail: String, fix: &str) -> Check {
    Check {
        check,
        verdict,
        detail,
        fix: if verdict == Verdict::Ok {
            String::new()
        } else {
            fix.to_string()
        },
    }
}

/// Default quotas of a new account (the Learner Lab's are the same).
const EIP_QUOTA: usize = 5;
const VPC_QUOTA: usize = 5;

pub async fn run(config: &Config, cx: &Cx) -> Doctor {
    let lab = config.stack.sandbox == Sandbox::LearnerLab;
    let mut checks = Vec::new();
    let caller = match cx.whoami().await {
        Ok((account, arn)) => {
            checks.push(check(
                "credentials",
                Verdict::Ok,
                format!("account {account} as {arn}"),
                "",
            ));
            arn
        }
        Err(e) => {
            checks.push(check(
                "credentials",
                Verdict::Fail,
                e.message.clone(),
                "copy the Learner Lab's AWS Details (key, secret and session token) into ~/.aws/credentials or the AWS_* variables; they expire with the lab session",
            ));
            // Nothing else can be asked without them.
            return Doctor {
                stack: config.stack.name.clone(),
                region: config.region.clone(),
                checks,
                permissions: None,
            };
        }
    };
    let region_ok = !lab || LAB_REGIONS.contains(&config.region.as_str());
    checks.push(check(
        "region",
        if region_ok {
            Verdict::Ok
        } else {
            Verdict::Fail
        },
        format!("{} (from {})", config.region, config.region_source),
        "the Learner Lab allows only us-east-1 and us-west-2: pass --region us-east-1",
    ));

    let mut machine_role = None;
    if let Some(profile) = &config.stack.instances.instance_profile {
        let c = match cx
            .iam
            .get_instance_profile()
            .instance_profile_name(profile)
            .send()
            .await
        {
            Ok(out) => {
                let roles: Vec<&str> = out
                    .instance_profile()
                    .map(|p| p.roles().iter().map(|r| r.role_name()).collect())
                    .unwrap_or_default();
                machine_role = out
                    .instance_profile()
                    .and_then(|p| p.roles().first())
                    .map(|r| r.arn().to_string());
                check(
                    "instance profile",
                    if roles.is_empty() {
                        Verdict::Fail
                    } else {
                        Verdict::Ok
                    },
                    format!("{profile} (role {})", roles.join(", ")),
                    "the instance profile has no role: its instances could not read their secrets",
                )
            }
            Err(e) => {
                let e = crate::aws::AwsError::from(e);
                let missing = e.class == crate::aws::ErrorClass::NotFound;
                check(
                    "instance profile",
                    if missing {
                        Verdict::Fail
                    } else {
                        Verdict::Warn
                    },
                    if missing {
                        format!("{profile} does not exist in this account")
                    } else {
                        format!("{profile} could not be checked: {}", e.message)
                    },
                    "a Learner Lab always has LabInstanceProfile (are these the lab's credentials?); elsewhere create one that may read Secrets Manager, or set instances.instance_profile: none",
                )
            }
        };
        checks.push(c);
    }

    checks.extend(eks_roles(config, cx).await);

    let plan = config.plan().ok();
    let adds: u32 = plan
        .iter()
        .flat_map(|p| &p.resources)
        .filter_map(|r| crate::guard::instances_started(&r.spec))
        .sum();
    match crate::guard::running(cx).await {
        Ok(now) => {
            let total = now.len() as u32 + adds;
            let verdict = if !lab {
                Verdict::Ok
            } else if total > LAB_MAX_INSTANCES {
                Verdict::Fail
            } else if total + 2 > LAB_MAX_INSTANCES {
                Verdict::Warn
            } else {
                Verdict::Ok
            };
            checks.push(check(
                "instances",
                verdict,
                format!(
                    "{} running in the account{}; a new {} env adds {adds} (its bake's builder included): {total} of the Learner Lab's {LAB_MAX_INSTANCES}",
                    now.len(),
                    if now.is_empty() { String::new() } else { format!(" ({})", now.join(", ")) },
                    config.stack.name
                ),
                "stop or `bookstore down` what you no longer need; 20 or more instances deactivate a Learner Lab account",
            ));
        }
        Err(e) => checks.push(check(
            "instances",
            Verdict::Warn,
            format!("could not be counted: {}", e.message),
            "the guard in `up` will count them again",
        )),
    }

    let eips_needed = plan
        .iter()
        .flat_map(|p| &p.resources)
        .filter(|r| matches!(r.spec, Spec::ElasticIp(_)))
        .count();
    match cx.ec2.describe_addresses().send().await {
        Ok(out) => {
            let used = out.addresses().len();
            checks.push(check(
                "elastic ips",
                if used + eips_needed > EIP_QUOTA {
                    Verdict::Fail
                } else if used + eips_needed == EIP_QUOTA {
                    Verdict::Warn
                } else {
                    Verdict::Ok
                },
                format!("{used} of {EIP_QUOTA} allocated; this stack needs {eips_needed}"),
                "release the addresses you no longer need (`aws ec2 describe-addresses`), or `bookstore down` an env that holds one",
            ));
        }
        Err(e) => checks.push(check(
            "elastic ips",
            Verdict::Warn,
            crate::aws::AwsError::from(e).message,
            "",
        )),
    }

    match cx.ec2.describe_vpcs().send().await {
        Ok(out) => {
            let vpcs = out.vpcs();
            let envs: BTreeSet<String> = vpcs
                .iter()
                .filter_map(|v| {
                    Some(format!(
                        "{}/{}",
                        ec2_tag(v.tags(), TAG_STACK)?,
                        ec2_tag(v.tags(), TAG_ENV)?
                    ))
                })
                .collect();
            checks.push(check(
                "vpcs",
                if vpcs.len() >= VPC_QUOTA {
                    Verdict::Fail
                } else if vpcs.len() + 1 == VPC_QUOTA {
                    Verdict::Warn
                } else {
                    Verdict::Ok
                },
                format!(
                    "{} of {VPC_QUOTA} (each env makes one); bookstore envs: {}",
                    vpcs.len(),
                    if envs.is_empty() {
                        "none".to_string()
                    } else {
                        envs.into_iter().collect::<Vec<_>>().join(", ")
                    }
                ),
                "`bookstore down --stack S --env E --yes` the envs you no longer need",
            ));
        }
        Err(e) => checks.push(check(
            "vpcs",
            Verdict::Warn,
            crate::aws::AwsError::from(e).message,
            "",
        )),
    }

    let parameter = crate::aws::image::AL2023_PARAMETER;
    checks.push(match cx.ssm.get_parameter().name(parameter).send().await {
        Ok(out) => check(
            "base image",
            Verdict::Ok,
            format!(
                "{} (the bake starts from it)",
                out.parameter().and_then(|p| p.value()).unwrap_or("?")
            ),
            "",
        ),
        Err(e) => check(
            "base image",
            Verdict::Fail,
            format!(
                "the public parameter {parameter} cannot be read: {}",
                crate::aws::AwsError::from(e).message
            ),
            "the bake needs ssm:GetParameter on AWS's public parameters; check the region",
        ),
    });
    let permissions = match &plan {
        Some(plan) => {
            let (found, proved) =
                permission_checks(cx, &config.stack.name, plan, &caller, machine_role).await;
            checks.extend(found);
            Some(proved)
        }
        None => None,
    };
    Doctor {
        stack: config.stack.name.clone(),
        region: config.region.clone(),
        checks,
        permissions,
    }
}

/// The actions of `actions` that the principal may not call, by IAM's policy simulator.
async fn denied(
    cx: &Cx,
    principal: &str,
    actions: &[&str],
) -> Result<Vec<String>, crate::aws::AwsError> {
    let mut denied = Vec::new();
    // The simulator answers at most 1000 results a page; 100 actions a call keeps pages small.
    for chunk in actions.chunks(100) {
        let mut marker: Option<String> = None;
        loop {
            let out = cx
                .iam
                .simulate_principal_policy()
                .policy_source_arn(principal)
                .set_action_names(Some(chunk.iter().map(|a| a.to_string()).collect()))
                .set_marker(marker.clone())
                .send()
                .await?;
            for r in out.evaluation_results() {
                if r.eval_decision().as_str() != "allowed" {
                    denied.push(r.eval_action_name().to_string());
                }
            }
            marker = out.marker().map(str::to_string);
            if !out.is_truncated() || marker.is_none() {
                break;
            }
        }
    }
    Ok(denied)
}

/// One check per principal: every action the stack needs of it, proved with the simulator.
async fn permission_checks(
    cx: &Cx,
    stack: &str,
    plan: &crate::plan::Plan,
    caller: &str,
    machine_role: Option<String>,
) -> (Vec<Check>, Permissions) {
    let cli = crate::permissions::cli(plan);
    let machines = crate::permissions::machines(plan);
    // An assumed role's path comes from GetRole where the caller may read it.
    let role_path = match caller.split_once(":assumed-role/") {
        Some((_, rest)) => {
            let name = rest.split('/').next().unwrap_or_default();
            cx.iam
                .get_role()
                .role_name(name)
                .send()
                .await
                .ok()
                .and_then(|r| r.role().map(|r| r.path().to_string()))
        }
        None => None,
    };
    let principal = crate::permissions::principal(caller, role_path.as_deref());
    let mut checks = Vec::new();
    let prove = async |name: &'static str,
                       who: &str,
                       need: &std::collections::BTreeMap<&'static str, Vec<String>>,
                       fix: &str| {
        let actions: Vec<&str> = need.keys().copied().collect();
        match denied(cx, who, &actions).await {
            Ok(refused) if refused.is_empty() => check(
                name,
                Verdict::Ok,
                format!(
                    "{who} may call every action the {stack} stack needs ({})",
                    actions.len()
                ),
                "",
            ),
            Ok(refused) => check(
                name,
                Verdict::Fail,
                format!(
                    "{who} may not call: {}",
                    refused
                        .iter()
                        .map(|a| format!(
                            "{a} ({stack}: {})",
                            need.get(a.as_str())
                                .map(|w| w.join(", "))
                                .unwrap_or_default()
                        ))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                fix,
            ),
            Err(e) => check(
                name,
                Verdict::Warn,
                format!(
                    "the policy simulator could not be asked about {who}: {}",
                    e.message
                ),
                "these credentials may not call iam:SimulatePrincipalPolicy, so the permissions are unproved: a first `up` shows any that is missing",
            ),
        }
    };
    checks.push(
        prove(
            "permissions",
            &principal,
            &cli,
            "use credentials that allow these actions (in a Learner Lab: the lab's own credentials, from AWS Details)",
        )
        .await,
    );
    if let Some(role) = &machine_role
        && !machines.is_empty()
    {
        checks.push(
            prove(
                "machine actions",
                role,
                &machines,
                "give the instance profile's role these actions, or set instances.instance_profile to one that has them",
            )
            .await,
        );
    }
    let proved = Permissions {
        caller: principal,
        cli: cli.keys().map(|a| a.to_string()).collect(),
        machine_role,
        machines: machines.keys().map(|a| a.to_string()).collect(),
    };
    (checks, proved)
}

/// The eks stack runs on the account's own EKS roles, found by name as `up` finds them.
async fn eks_roles(config: &Config, cx: &Cx) -> Vec<Check> {
    let crate::stack::Topology::Eks(eks) = &config.stack.topology else {
        return vec![];
    };
    let k = &eks.kubernetes;
    let mut checks = Vec::new();
    for (what, part) in [
        ("eks cluster role", &k.cluster_role),
        ("eks node role", &k.node_role),
    ] {
        checks.push(match crate::aws::cluster::find_role(cx, part).await {
            Ok(arn) => check(what, Verdict::Ok, arn, ""),
            Err(e) => check(
                what,
                Verdict::Fail,
                e.message,
                "a Learner Lab has LabEksClusterRole and LabEksNodeRole (are these the lab's credentials?); elsewhere name your roles under `kubernetes:`",
            ),
        });
    }
    checks
}
