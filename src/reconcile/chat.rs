//! Chat-ops messages (`--webhook URL` on `apply` and `reconcile`), as the team's bot posted them: what was
//! applied (what, for which sites, by whom), what failed or backs off, what recovered. Slack-compatible
//! plain text. [`Chat`] remembers what it said, so that the loop posts at most one message per object per
//! backoff step: an object that keeps failing is announced when it enters backoff and each time its wait
//! grows, then is quiet at the cap until it recovers. Pure: the caller posts the text.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::apply::Report;
use crate::error::Class;
use crate::plan::Plan;
use crate::reconcile::queue::Backoffs;
use crate::render::text::symbol;
use crate::resource::Address;

/// At most so many changes are listed by address; the rest are counted.
const LISTED: usize = 20;

/// Who acts on which fleet: every message's first line.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    /// `apply`, `reconcile`.
    pub command: &'a str,
    pub fleet: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    /// The person and machine (`ana@ops-1`).
    pub by: &'a str,
    /// The AWS identity, when known.
    pub caller: Option<&'a str>,
}

impl Who<'_> {
    fn head(&self) -> String {
        let caller = self.caller.map(|c| format!(" as {c}")).unwrap_or_default();
        format!("converge {}: fleet {} (account {}, {}), by {}{caller}", self.command, self.fleet, self.account, self.region, self.by)
    }
}

/// The applied changes: a line of counts and sites, then one line per change.
fn applied_lines(out: &mut String, verb: &str, plan: &Plan, report: &Report) {
    if report.applied.is_empty() {
        return;
    }
    // In the plan's order, not the order the changes completed in.
    let applied: Vec<&crate::plan::Change> = plan.changes.iter().filter(|c| report.applied.contains(&c.address)).collect();
    let mut sites: Vec<&str> = applied.iter().flat_map(|c| c.sites.iter().map(String::as_str)).collect();
    sites.sort_unstable();
    sites.dedup();
    let for_sites = match sites.len() {
        0 => String::new(),
        n if n <= 10 => format!(", for site(s) {}", sites.join(", ")),
        n => format!(", for {n} sites ({}, ...)", sites[..10].join(", ")),
    };
    let _ = writeln!(out, "{verb}: {}{for_sites}", crate::render::applied_counts(plan, report));
    for c in applied.iter().take(LISTED) {
        let _ = writeln!(out, "  {} {}", symbol(c.action).trim(), c.address);
    }
    if applied.len() > LISTED {
        let _ = writeln!(out, "  ... and {} more", applied.len() - LISTED);
    }
}

fn failed_line(out: &mut String, address: &Address, class: Class, operation: Option<&str>, message: &str) {
    let operation = operation.map(|o| format!(", {o}")).unwrap_or_default();
    let _ = write!(out, "Failed: {address} ({class}{operation}): {message}");
}

/// The message for one `apply`: what it applied and what failed; `None` when it attempted nothing.
pub fn applied(who: &Who<'_>, plan: &Plan, report: &Report) -> Option<String> {
    if report.applied.is_empty() && report.failed.is_empty() {
        return None;
    }
    let mut out = who.head();
    out.push('\n');
    applied_lines(&mut out, "Applied", plan, report);
    for (a, e) in &report.failed {
        failed_line(&mut out, a, e.error.class, e.error.operation.as_deref(), &e.error.message);
        out.push('\n');
    }
    if !report.skipped.is_empty() || !report.cancelled.is_empty() {
        let _ = writeln!(out, "Not attempted: {}", report.skipped.len() + report.cancelled.len());
    }
    Some(out.trim_end().to_string())
}

/// What the loop has said: the backoff step each object in backoff was announced at, and whether the
/// passes are failing.
#[derive(Debug, Default)]
pub struct Chat {
    announced: BTreeMap<Address, Duration>,
    pass_failing: Option<u32>,
}

impl Chat {
    /// The message for one pass that applied: drift corrected, objects failing on a new backoff step, objects
    /// recovered. `backoffs` is after the pass (each failed object's new step). `None`: nothing new to say.
    pub fn pass(&mut self, who: &Who<'_>, plan: &Plan, report: &Report, backoffs: &Backoffs) -> Option<String> {
        let mut body = String::new();
        applied_lines(&mut body, "Corrected drift", plan, report);
        for (a, e) in &report.failed {
            let Some(step) = backoffs.step(a) else { continue };
            if self.announced.get(a).is_some_and(|said| *said >= step) {
                continue;
            }
            self.announced.insert(a.clone(), step);
            failed_line(&mut body, a, e.error.class, e.error.operation.as_deref(), &e.error.message);
            let failures = backoffs.get(a).map_or(1, |b| b.failures);
            let _ = writeln!(body, "; backing off {}s after {failures} failure(s)", step.as_secs());
        }
        for a in &report.applied {
            if self.announced.remove(a).is_some() {
                let _ = writeln!(body, "Recovered: {a}");
            }
        }
        self.message(who, body)
    }

    /// Objects that were failing and have converged without a change of the loop's (fixed by hand, or
    /// their change left the plan): they are said to have recovered.
    pub fn settled(&mut self, who: &Who<'_>, addresses: &[Address]) -> Option<String> {
        let mut body = String::new();
        for a in addresses {
            if self.announced.remove(a).is_some() {
                let _ = writeln!(body, "Recovered: {a} (converged: nothing left to apply)");
            }
        }
        self.message(who, body)
    }

    /// A pass that failed as a whole: said when the passes start failing, not at every retry.
    pub fn pass_failed(&mut self, who: &Who<'_>, class: Class, error: &str) -> Option<String> {
        let first = self.pass_failing.is_none();
        *self.pass_failing.get_or_insert(0) += 1;
        first.then(|| self.message(who, format!("The loop's passes fail ({class}): {error}")))?
    }

    /// A pass that completed: said when it ends a run of failed passes.
    pub fn pass_ok(&mut self, who: &Who<'_>) -> Option<String> {
        let failures = self.pass_failing.take()?;
        self.message(who, format!("The loop's passes succeed again, after {failures} failed pass(es)"))
    }

    fn message(&self, who: &Who<'_>, body: String) -> Option<String> {
        (!body.trim().is_empty()).then(|| format!("{}\n{}", who.head(), body.trim_end()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::ChangeError;
    use crate::error::Failure;
    use crate::plan::Action;
    use crate::reconcile::ErrorPolicy;

    fn who() -> Who<'static> {
        Who {
            command: "reconcile",
            fleet: "agency",
            account: "123456789012",
            region: "eu-west-1",
            by: "ana@ops-1",
            caller: Some("arn:aws:iam::123456789012:user/ana"),
        }
    }

    /// `security_group.lb` changed on the path of two sites, `security_group.web` created.
    fn plan() -> Plan {
        let text = "[fleet]\nname = \"agency\"\nregion = \"eu-west-1\"\n[security_group.lb]\n[security_group.web]\n";
        let mut plan = crate::testing::plan_of(text, &crate::live::Live::default());
        let lb = plan.changes.iter_mut().find(|c| c.address.name == "lb").unwrap();
        lb.action = Action::Update;
        lb.sites = vec!["acme".into(), "globex".into()];
        plan
    }

    fn failure(address: &str) -> (Address, ChangeError) {
        let error = Failure { operation: Some("ec2:AuthorizeSecurityGroupIngress".into()), ..Failure::new(Class::Transient, "service unavailable") };
        (address.parse().unwrap(), ChangeError { done: 0, total: 1, error })
    }

    #[test]
    fn an_apply_says_what_for_which_sites_and_by_whom() {
        let plan = plan();
        let report = Report { applied: plan.changes.iter().map(|c| c.address.clone()).collect(), ..Report::default() };
        let who = Who { command: "apply", ..who() };
        insta::assert_snapshot!(applied(&who, &plan, &report).unwrap(), @r"
        converge apply: fleet agency (account 123456789012, eu-west-1), by ana@ops-1 as arn:aws:iam::123456789012:user/ana
        Applied: 1 added, 1 changed, 0 destroyed, for site(s) acme, globex
          ~ security_group.lb
          + security_group.web
        ");
        assert_eq!(applied(&who, &plan, &Report::default()), None, "nothing attempted, nothing said");
    }

    #[test]
    fn a_failing_object_is_announced_once_per_backoff_step_then_its_recovery() {
        let policy = ErrorPolicy { base: Duration::from_secs(1), max: Duration::from_secs(4), interval: Duration::from_secs(300) };
        let mut backoffs = Backoffs::new(policy, 7);
        let mut chat = Chat::default();
        let plan = plan();
        let lb: Address = "security_group.lb".parse().unwrap();
        let failed = Report { failed: vec![failure("security_group.lb")], ..Report::default() };
        let mut said = Vec::new();
        for pass in 0..6 {
            backoffs.failed(&lb, Class::Transient, Duration::from_secs(pass));
            said.push(chat.pass(&who(), &plan, &failed, &backoffs));
        }
        // Steps of 1, 2 and 4 s (the cap): three messages, then quiet.
        let spoken: Vec<&String> = said.iter().flatten().collect();
        assert_eq!(spoken.len(), 3, "{said:#?}");
        assert!(
            spoken[0]
                .ends_with("Failed: security_group.lb (transient, ec2:AuthorizeSecurityGroupIngress): service unavailable; backing off 1s after 1 failure(s)"),
            "{}",
            spoken[0]
        );
        assert!(spoken[2].ends_with("backing off 4s after 3 failure(s)"), "{}", spoken[2]);
        backoffs.succeeded(&lb);
        let ok = Report { applied: vec![lb.clone()], ..Report::default() };
        let recovered = chat.pass(&who(), &plan, &ok, &backoffs).unwrap();
        assert!(
            recovered
                .contains("Corrected drift: 0 added, 1 changed, 0 destroyed, for site(s) acme, globex\n  ~ security_group.lb\nRecovered: security_group.lb"),
            "{recovered}"
        );
        assert_eq!(chat.pass(&who(), &plan, &Report::default(), &backoffs), None);
    }

    #[test]
    fn failing_passes_are_said_when_they_start_and_when_they_end() {
        let mut chat = Chat::default();
        assert!(chat.pass_failed(&who(), Class::Denied, "AccessDenied").unwrap().ends_with("The loop's passes fail (access denied): AccessDenied"));
        assert_eq!(chat.pass_failed(&who(), Class::Denied, "AccessDenied"), None);
        assert!(chat.pass_ok(&who()).unwrap().ends_with("succeed again, after 2 failed pass(es)"));
        assert_eq!(chat.pass_ok(&who()), None);
    }
}
