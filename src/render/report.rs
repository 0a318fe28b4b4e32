//! What an apply did and is doing, for people: its progress lines and its report.

use crate::apply::{Event, Report};
use crate::plan::{Action, Plan};

fn progress_verbs(action: Action) -> (&'static str, &'static str) {
    match action {
        Action::Adopt => ("Adopting...", "Adoption complete"),
        Action::Create => ("Creating...", "Creation complete"),
        Action::Update => ("Modifying...", "Modifications complete"),
        Action::Replace => ("Replacing...", "Replacement complete"),
        Action::Delete => ("Destroying...", "Destruction complete"),
        Action::Forget => ("Forgetting...", "Forgotten"),
    }
}

/// One line of an apply's progress.
pub fn event_line(e: Event) -> String {
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

/// What an apply did, counted: `1 added, 0 changed, 0 destroyed`, led by adoptions and forgets when there
/// are any.
pub fn applied_counts(plan: &Plan, report: &Report) -> String {
    let done = |a: Action| report.applied.iter().filter(|x| plan.change(x).is_some_and(|c| c.action == a)).count();
    let (added, changed, destroyed) = (done(Action::Create) + done(Action::Replace), done(Action::Update), done(Action::Delete) + done(Action::Replace));
    let adopted = match (done(Action::Forget), done(Action::Adopt)) {
        (0, 0) => String::new(),
        (0, n) => format!("{n} adopted, "),
        (f, 0) => format!("{f} forgotten, "),
        (f, n) => format!("{f} forgotten, {n} adopted, "),
    };
    format!("{adopted}{added} added, {changed} changed, {destroyed} destroyed")
}

/// What an apply did, for people: the counts, each failure with its class and how far it got, what was
/// not attempted and why.
pub fn report_text(plan: &Plan, report: &Report) -> String {
    use std::fmt::Write as _;
    let counts = applied_counts(plan, report);
    let mut out = String::from("\n");
    if report.ok() {
        let _ = writeln!(out, "Apply complete! Resources: {counts}.");
        return out;
    }
    let what = if report.failed.is_empty() { "stopped" } else { "failed" };
    let _ = writeln!(out, "Apply {what}. Applied: {counts}.");
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
