//! What the terminal shows: lines and summaries for people, and where they go.

use std::time::Duration;

use super::args::Format;
use crate::aws::Stats;
use crate::model::Fleet;

/// Where the plan was made: worth a glance before typing `yes`.
pub(super) fn target_line(fleet: &Fleet, planned: &crate::planner::Planned) -> String {
    format!("Fleet {} in account {}, region {}.\n\n", fleet.settings.name, planned.account, planned.region)
}

/// `4 security groups, 2 load balancers, 1 pool, ...`: what a fleet declares.
pub(super) fn inventory(fleet: &Fleet) -> String {
    let counts = [
        (fleet.security_groups.len(), "security group"),
        (fleet.load_balancers.len(), "load balancer"),
        (fleet.images.len(), "image"),
        (fleet.pools.len(), "pool"),
        (fleet.db_parameter_groups.len(), "DB parameter group"),
        (fleet.databases.len(), "database"),
        (fleet.sites.len(), "site"),
    ];
    let parts = plural_counts(&counts);
    if parts.is_empty() { "nothing declared yet".to_string() } else { parts.join(", ") }
}

pub(super) fn plural_counts(counts: &[(usize, &str)]) -> Vec<String> {
    counts.iter().filter(|(n, _)| *n > 0).map(|(n, what)| format!("{n} {what}{}", if *n == 1 { "" } else { "s" })).collect()
}

pub(super) fn print_stats(stats: &Stats, elapsed: Duration) {
    let counts = stats.counts();
    let width = counts.iter().map(|c| c.service.len() + c.operation.len() + 1).max().unwrap_or(0);
    eprintln!("AWS API calls: {} in {:.2}s (every HTTP attempt, retries included)", stats.total(), elapsed.as_secs_f64());
    let trips = stats.round_trips();
    eprintln!("  round trips waited on: {} ({})", trips.count(), trips.chain.join(" -> "));
    let failed = stats.failed();
    eprintln!("  attempts retried: {} throttled, {} failed transiently ({} timed out)", failed.throttled, failed.transient, failed.timed_out);
    let (waited, total) = stats.waited();
    eprintln!("  waited on the rate budget: {waited} attempts, {:.2}s summed over them (they wait side by side)", total.as_secs_f64());
    for c in counts {
        eprintln!("  {:width$}  {}", format!("{} {}", c.service, c.operation), c.calls);
    }
}

/// Where apply's words go: stdout for people; stderr when stdout carries the JSON result.
#[derive(Clone, Copy)]
pub(super) struct Out {
    pub(super) json: bool,
}

impl Out {
    pub(super) fn for_format(format: Format) -> Out {
        Out { json: format == Format::Json }
    }

    pub(super) fn say(&self, text: &str) {
        if self.json {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
    }
}
