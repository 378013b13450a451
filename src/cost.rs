//! What a stack costs while it runs: per resource and in total, per hour and per month (730 h), from
//! on-demand list prices kept in one dated table. Learner Lab budgets are small and an overrun ends
//! the account, so `plan` and `up` say it before anything runs. Traffic-driven charges (load
//! balancer capacity units, data transfer, requests) are left out and said to be.

use serde::Serialize;

use crate::aws::Charge;
use crate::plan::Plan;
pub use crate::prices::PRICES_AS_OF;
use crate::prices::{HOURS_PER_MONTH, LAB_REGIONS_PRICED};

#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub key: String,
    /// What is charged, e.g. "2 × t3.micro + 2 public IPv4 + 16 GB gp3".
    pub what: String,
    pub hourly_usd: f64,
    pub monthly_usd: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub region: String,
    pub prices_as_of: &'static str,
    pub lines: Vec<Line>,
    pub hourly_usd: f64,
    pub monthly_usd: f64,
    /// How long a $100 Learner Lab budget lasts with the stack running around the clock.
    pub days_per_100_usd: f64,
    /// Resources whose price the table does not know (counted as 0).
    pub unpriced: Vec<String>,
    pub note: &'static str,
}

/// The whole plan's cost, as it will run.
pub fn estimate(plan: &Plan, region: &str) -> Estimate {
    estimate_of(plan, region, |_| true)
}

/// The cost of the planned resources `exists` says are there (`status`: what runs now).
pub fn estimate_of(plan: &Plan, region: &str, exists: impl Fn(&str) -> bool) -> Estimate {
    let mut lines = Vec::new();
    let mut unpriced = Vec::new();
    for r in plan.resources.iter().filter(|r| exists(&r.key)) {
        for charge in r.kind.imp().cost(&r.key, &r.spec, &plan.resources) {
            match charge {
                Charge::Hourly { key, what, usd } => lines.push(Line {
                    key,
                    what,
                    hourly_usd: usd,
                    monthly_usd: usd * HOURS_PER_MONTH,
                }),
                Charge::Unpriced(what) => unpriced.push(what),
            }
        }
    }
    if !LAB_REGIONS_PRICED.contains(&region) {
        unpriced.push(format!(
            "prices are us-east-1/us-west-2 list prices, not {region}'s"
        ));
    }
    let hourly: f64 = lines.iter().map(|l| l.hourly_usd).sum();
    Estimate {
        region: region.to_string(),
        prices_as_of: PRICES_AS_OF,
        lines,
        hourly_usd: hourly,
        monthly_usd: hourly * HOURS_PER_MONTH,
        days_per_100_usd: if hourly > 0.0 {
            100.0 / (hourly * 24.0)
        } else {
            f64::INFINITY
        },
        unpriced,
        note: "on-demand list prices; traffic, requests and data transfer not included; no NAT gateway is ever made",
    }
}

/// One line for `up`'s progress: "about $0.09/hour ($66/month): a $100 budget lasts 46 days".
pub fn summary(e: &Estimate) -> String {
    format!(
        "cost: about ${:.3}/hour (${:.0}/month) running around the clock; a $100 budget lasts {:.0} days (list prices of {})",
        e.hourly_usd, e.monthly_usd, e.days_per_100_usd, e.prices_as_of
    )
}
