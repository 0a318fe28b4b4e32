//! What the terminal shows: lines and summaries for people, and where they go.

use std::time::Duration;

use super::args::Format;
use crate::apply::{Event, Report};
use crate::aws::Stats;
use crate::model::Fleet;
use crate::plan::Action;

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

pub(super) fn progress_verbs(action: Action) -> (&'static str, &'static str) {
    match action {
        Action::Create => ("Creating...", "Creation complete"),
        Action::Update => ("Modifying...", "Modifications complete"),
        Action::Replace => ("Replacing...", "Replacement complete"),
        Action::Delete => ("Destroying...", "Destruction complete"),
    }
}

pub(super) fn event_line(e: Event) -> String {
    match e {
        Event::Started { address, action } => format!("{address}: {}", progress_verbs(action).0),
        Event::Finished { address, action, elapsed } => format!("{address}: {} after {:.1}s", progress_verbs(action).1, elapsed.as_secs_f64()),
        Event::Failed { address, error, .. } => format!("{address}: FAILED: {error}"),
        Event::Skipped { address, because } => format!("{address}: not attempted: it waits for {because}, which failed"),
        Event::Stopping { running } => {
            format!("Interrupt received: waiting for {running} running change(s) to finish; nothing new will start. Ctrl-C again exits at once.")
        }
    }
}

pub(super) fn report_text(plan: &crate::plan::Plan, report: &Report) -> String {
    use std::fmt::Write as _;
    let done = |a: Action| report.applied.iter().filter(|x| plan.change(x).is_some_and(|c| c.action == a)).count();
    let (added, changed, destroyed) = (done(Action::Create) + done(Action::Replace), done(Action::Update), done(Action::Delete) + done(Action::Replace));
    let mut out = String::from("\n");
    if report.ok() {
        let _ = writeln!(out, "Apply complete! Resources: {added} added, {changed} changed, {destroyed} destroyed.");
        return out;
    }
    let what = if report.failed.is_empty() { "stopped" } else { "failed" };
    let _ = writeln!(out, "Apply {what}. Applied: {added} added, {changed} changed, {destroyed} destroyed.");
    for (address, e) in &report.failed {
        let partial = if e.done > 0 { format!(" ({} of {} operations had been applied)", e.done, e.total) } else { String::new() };
        let _ = writeln!(out, "  failed: {address} ({}){partial}: {}", e.error.class, e.error);
    }
    for (address, because) in &report.skipped {
        let _ = writeln!(out, "  not attempted: {address} (waits for {because})");
    }
    for address in &report.cancelled {
        let _ = writeln!(out, "  not attempted: {address} (stopped)");
    }
    out.push_str("Nothing else was changed. Run `converge plan` to see what is left.\n");
    out
}

pub(super) fn print_stats(stats: &Stats, elapsed: Duration) {
    let counts = stats.counts();
    let width = counts.iter().map(|c| c.service.len() + c.operation.len() + 1).max().unwrap_or(0);
    eprintln!("AWS API calls: {} in {:.2}s (every HTTP attempt, retries included)", stats.total(), elapsed.as_secs_f64());
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
