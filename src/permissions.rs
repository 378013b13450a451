//! Every AWS action a stack needs, from one place: the CLI's (what every run reads, what the
//! stack's kinds make, change and delete, the account's bookkeeping) and its machines' (what the
//! scripts on the instances call with the instance profile). `doctor` proves both with IAM's
//! policy simulator before `up` needs them; the tests fail when a call is missing here.

use std::collections::BTreeMap;

use crate::plan::{Kind, Plan, Spec};

/// What runs call beside the kinds: who the caller is, the 9-instance guard, the account's state
/// bucket (the env lock and records), and `doctor`'s own reads.
pub const ACCOUNT: &[&str] = &[
    "sts:GetCallerIdentity",
    "ec2:DescribeInstances",
    "s3:CreateBucket",
    "s3:PutBucketTagging",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutEncryptionConfiguration",
    "s3:ListBucket",
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "ec2:DescribeAddresses",
    "ec2:DescribeVpcs",
    "ssm:GetParameter",
    "iam:GetInstanceProfile",
    "iam:SimulatePrincipalPolicy",
];

/// Each action the CLI calls for this plan, with what needs it.
pub fn cli(plan: &Plan) -> BTreeMap<&'static str, Vec<String>> {
    let mut need: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut add = |action: &'static str, why: String| {
        let whys = need.entry(action).or_default();
        if !whys.contains(&why) {
            whys.push(why);
        }
    };
    for a in ACCOUNT {
        add(a, "every run".into());
    }
    // Every run lists every kind (a `down` finds what a crash left, whatever the stack).
    for k in Kind::ALL {
        for a in k.imp().actions().observe {
            add(a, "every run".into());
        }
    }
    for r in &plan.resources {
        for a in r.kind.imp().actions().change {
            add(a, format!("{} `{}`", r.kind.as_str(), r.key));
        }
    }
    need
}

/// Each action the plan's machines call with their instance profile, with what needs it.
pub fn machines(plan: &Plan) -> BTreeMap<&'static str, Vec<String>> {
    let mut need: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for r in &plan.resources {
        if let Spec::Image(image) = &r.spec {
            let recipe = &image.recipe;
            for (a, why) in crate::templates::machine_actions(*recipe) {
                need.entry(a).or_default().push((*why).to_string());
            }
        }
    }
    need
}

/// The IAM principal behind the caller's ARN, as the policy simulator takes it: an assumed
/// role's session (`arn:aws:sts::A:assumed-role/R/S`, as the Learner Lab's `voclabs`) is its
/// role; a user is itself. The role's path is unknown here (`path` from GetRole when readable).
pub fn principal(caller: &str, role_path: Option<&str>) -> String {
    let parts: Vec<&str> = caller.splitn(6, ':').collect();
    if parts.len() < 6 {
        return caller.to_string();
    }
    let (account, resource) = (parts[4], parts[5]);
    if let Some(rest) = resource.strip_prefix("assumed-role/") {
        let role = rest.split('/').next().unwrap_or(rest);
        let path = role_path.unwrap_or("/");
        return format!("arn:aws:iam::{account}:role{path}{role}");
    }
    format!("arn:aws:iam::{account}:{resource}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_principal_of_an_assumed_role_session_is_its_role() {
        assert_eq!(
            principal(
                "arn:aws:sts::111122223333:assumed-role/voclabs/user1234=Jane_Doe",
                None
            ),
            "arn:aws:iam::111122223333:role/voclabs"
        );
        assert_eq!(
            principal(
                "arn:aws:sts::111122223333:assumed-role/lab/s",
                Some("/service/")
            ),
            "arn:aws:iam::111122223333:role/service/lab"
        );
        assert_eq!(
            principal("arn:aws:iam::111122223333:user/ci", None),
            "arn:aws:iam::111122223333:user/ci"
        );
    }
}
