//! Command-line flags. They are parsed here and resolved into a validated `Config` before any
//! work starts (see config.rs).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::report::OutputFormat;

/// Turns a declarative YAML stack into a running BookStore on AWS, and removes it again.
#[derive(Debug, Parser)]
#[command(name = "bookstore", version, about, long_about = None)]
pub struct Cli {
    /// text for people; json for machines (one JSON object on stdout, JSON-lines events on stderr).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "BOOKSTORE_OUTPUT"
    )]
    pub output: OutputFormat,

    /// Where the journal and lock of each stack and environment live.
    #[arg(
        long,
        global = true,
        default_value = ".bookstore",
        env = "BOOKSTORE_STATE_DIR"
    )]
    pub state_dir: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Target {
    /// A built-in stack (monolith, asg, swarm, eks) or the path of a stack file.
    #[arg(long, short, default_value = "asg", env = "BOOKSTORE_STACK")]
    pub stack: String,

    /// Environment name: namespaces every name and tag, so one account holds many (e.g. pr-123).
    #[arg(long, short, default_value = "dev", env = "BOOKSTORE_ENV")]
    pub env: String,

    /// AWS region; overrides the stack's `region`, then AWS_REGION and the profile (default us-east-1).
    #[arg(long)]
    pub region: Option<String>,

    /// The Linux x86_64 bookstore-app binary to bake into the AMI. Default: the one next to this
    /// executable (a release archive carries it on every platform); without one, the app is
    /// compiled on the builder instance.
    #[arg(long, env = "BOOKSTORE_APP_BINARY", value_name = "PATH")]
    pub app_binary: Option<PathBuf>,

    /// Compile the app from the source this CLI carries on the builder instance (slower; for
    /// macOS and Windows users, or to rule out a local build).
    #[arg(
        long,
        env = "BOOKSTORE_BUILD_APP_ON_BUILDER",
        conflicts_with = "app_binary"
    )]
    pub build_app_on_builder: bool,
}

/// The env's lock lives in the account (two CI runners on one env never both create).
#[derive(Debug, Clone, Args)]
pub struct LockWait {
    /// When another run (any machine) holds this env's lock, wait up to this long for it (e.g.
    /// 30m) instead of exiting 4 at once.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0s")]
    pub lock_wait: std::time::Duration,
}

/// `90s`, `30m`, `6h`, `2d`, `1h30m`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("`{text}` is not a duration: use e.g. 90s, 30m, 6h, 2d or 1h30m");
    let text = text.trim();
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs(total))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a stack file without touching AWS.
    Validate(Target),
    /// Show what `up` would create, change and delete. Exit 0: nothing to do; 2: changes; 1: error.
    Plan(Target),
    /// Create or converge the stack; resumes after a crash, a Ctrl-C or an expired token.
    Up {
        #[command(flatten)]
        target: Target,
        /// How many resources may be created or waited for at once.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=32))]
        parallelism: u16,
        /// Expire the env this long from now (e.g. 6h, 2d, 90m): `bookstore gc` deletes it
        /// afterwards. Recorded in the account, so it holds without this machine's journal. Each
        /// `up --ttl` sets it again; an `up` without it keeps the expiry the env has.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        ttl: Option<std::time::Duration>,
        #[command(flatten)]
        lock: LockWait,
    },
    /// Delete everything this stack and environment created (journal and tags), in reverse order.
    Down {
        #[command(flatten)]
        target: Target,
        /// Do not ask for confirmation (required when there is no terminal).
        #[arg(long, short)]
        yes: bool,
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=32))]
        parallelism: u16,
        #[command(flatten)]
        lock: LockWait,
    },
    /// Bake the app's AMI (and create what the bake needs: network, artifact bucket) without the
    /// rest of the stack. `up` does this too when the AMI for this app does not exist yet.
    Bake {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=32))]
        parallelism: u16,
        #[command(flatten)]
        lock: LockWait,
    },
    /// Every bookstore env in the account and region, of any stack, from the account alone (no
    /// stack file, no journal): stack, env, age, expiry, resources, estimated $/hour.
    Ls {
        /// AWS region (default: AWS_REGION, then the profile, then us-east-1).
        #[arg(long)]
        region: Option<String>,
    },
    /// Delete every env whose `--ttl` has run out, of any stack, found by its tags alone (a CI
    /// runner has no journal), with the same order and waits as `down`. Envs without a TTL and
    /// envs another run holds are left alone.
    Gc {
        #[arg(long)]
        region: Option<String>,
        /// Do not ask for confirmation (required when there is no terminal).
        #[arg(long, short)]
        yes: bool,
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=32))]
        parallelism: u16,
    },
    /// Every resource: id, state, drift from the stack, instances and their target health, the URL.
    Status(Target),
    /// The stack's outputs: URL, load balancer DNS name, ids.
    Outputs(Target),
    /// Check what a first `up` needs from the account (credentials, region, instance profile, the
    /// 9 instances, Elastic IP and VPC quotas, envs present), reading only. Exit 1 on any FAIL.
    Doctor(Target),
    /// Write every file the stack would put on its machines (user-data, units, scripts, proxy
    /// config, the swarm's stack file) under DIR, for review or to adapt by hand. No AWS call.
    Render {
        #[command(flatten)]
        target: Target,
        /// The directory to write into (created; files in it are overwritten).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Draw the stack's architecture from its plan (groups by VPC and security group, the
    /// traffic each rule admits, the bake apart) as SVG, Graphviz DOT or Mermaid, on stdout.
    /// No AWS call.
    Graph {
        #[command(flatten)]
        target: Target,
        #[arg(long, value_enum, default_value = "svg")]
        format: crate::graph::Format,
    },
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout: `bookstore man > bookstore.1; man -l bookstore.1`.
    Man,
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(6 * 3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["", "h", "6x", "6h3", "-1h", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
