//! Flags + stack file + environment → one validated `Config`, before any AWS call.

use std::path::PathBuf;

use aws_config::meta::region::ProvideRegion;

use crate::artifact::{AppChoice, Artifact};
use crate::cli::Target;
use crate::error::Error;
use crate::plan::{BakeInput, Plan};
use crate::stack::{Diagnostic, Diagnostics, LAB_REGIONS, Sandbox, Stack, known_region};

pub struct Config {
    pub stack: Stack,
    pub stack_ref: String,
    pub env: String,
    pub region: String,
    /// Where the region came from, for messages.
    pub region_source: String,
    pub state_dir: PathBuf,
    pub app: AppChoice,
}

/// AWS_REGION, AWS_DEFAULT_REGION, the profile, then us-east-1: the region and where it came from.
async fn ambient_region() -> (String, String) {
    for var in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
        if let Some(r) = std::env::var(var).ok().filter(|r| !r.is_empty()) {
            return (r, var.to_string());
        }
    }
    match ProvideRegion::region(&aws_config::profile::ProfileFileRegionProvider::new()).await {
        Some(r) => (r.to_string(), "the AWS profile".to_string()),
        None => ("us-east-1".to_string(), "the default".to_string()),
    }
}

/// The region of a command that has no stack (`ls`, `gc`): the flag, else the ambient one.
pub async fn account_region(flag: Option<&str>) -> Result<(String, String), Error> {
    let (region, source) = match flag {
        Some(r) => (r.to_string(), "--region".to_string()),
        None => ambient_region().await,
    };
    if !known_region(&region) {
        return Err(Error::Usage {
            message: format!(
                "region from {source}: `{region}` is not an AWS region this tool knows"
            ),
            hint: "use a region code such as us-east-1".into(),
        });
    }
    Ok((region, source))
}

impl Config {
    pub async fn resolve(target: &Target, state_dir: PathBuf) -> Result<Config, Error> {
        let stack = Stack::load(&target.stack)?;
        if !crate::stack::valid_env_name(&target.env) {
            return Err(Error::Usage {
                message: format!("`{}` is not a valid environment name", target.env),
                hint: "use 1 to 12 lower-case letters, digits and hyphens starting with a letter, e.g. --env pr-123".into(),
            });
        }
        let (region, source) = if let Some(r) = &target.region {
            (r.clone(), "--region".to_string())
        } else if let Some((r, _)) = &stack.region {
            (r.clone(), format!("{} `region`", stack.source))
        } else {
            ambient_region().await
        };
        let problem = if !known_region(&region) {
            Some((
                format!("`{region}` is not an AWS region this tool knows"),
                "use a region code such as us-east-1".to_string(),
            ))
        } else if stack.sandbox == Sandbox::LearnerLab && !LAB_REGIONS.contains(&region.as_str()) {
            Some((
                format!("the Learner Lab allows only us-east-1 and us-west-2, not {region}"),
                "pick one of them, or set `sandbox: none` in the stack file if this is not an AWS Academy Learner Lab account".to_string(),
            ))
        } else {
            None
        };
        if let Some((message, hint)) = problem {
            // Point at the stack file when the region came from it; otherwise name the flag or variable.
            return Err(match (&target.region, &stack.region) {
                (None, Some((_, pos))) => Error::InvalidStack(Diagnostics(vec![Diagnostic {
                    file: stack.source.clone(),
                    line: pos.line,
                    column: pos.column,
                    field: "region".into(),
                    message,
                    hint: Some(hint),
                }])),
                _ => Error::Usage {
                    message: format!("region from {source}: {message}"),
                    hint,
                },
            });
        }
        Ok(Config {
            stack,
            stack_ref: target.stack.clone(),
            env: target.env.clone(),
            region,
            region_source: source,
            state_dir,
            app: match (&target.app_binary, target.build_app_on_builder) {
                (Some(path), _) => AppChoice::Binary(path.clone()),
                (None, true) => AppChoice::Source,
                (None, false) => AppChoice::Auto,
            },
        })
    }

    /// The plan of this stack, with the app artifact resolved and hashed.
    pub fn plan(&self) -> Result<Plan, Error> {
        let bake = BakeInput {
            artifact: Artifact::resolve(&self.app)?,
        };
        let plan = Plan::build(&self.stack, &self.env, &self.region, &bake)?;
        crate::render::check_user_data(&plan)?;
        Ok(plan)
    }

    /// The command that repeats this run, for "run X to resume" messages.
    pub fn command(&self, verb: &str) -> String {
        let mut cmd = format!(
            "bookstore {verb} --stack {} --env {}",
            self.stack_ref, self.env
        );
        if self.region_source == "--region" {
            cmd.push_str(&format!(" --region {}", self.region));
        }
        cmd
    }
}
