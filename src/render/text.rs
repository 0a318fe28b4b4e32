//! The Terraform-style text plan.

use std::fmt::Write;

use crate::plan::{Action, Change, Plan};
use crate::resource::FieldChange;

pub fn symbol(action: Action) -> &'static str {
    match action {
        Action::Adopt => " <-",
        Action::Create => "  +",
        Action::Update => "  ~",
        Action::Replace => "-/+",
        Action::Delete => "  -",
        Action::Forget => " ->",
    }
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Adopt => "will be adopted (tagged as this fleet's)",
        Action::Create => "will be created",
        Action::Update => "will be updated in place",
        Action::Replace => "must be replaced",
        Action::Delete => "will be destroyed",
        Action::Forget => "will be forgotten (converge's ownership removed; the object stays as it is)",
    }
}

/// `Plan: N to add, N to change, N to destroy.`, led by `N to adopt, ` when there are adoptions and
/// `N to forget, ` when there are objects to let go.
pub fn summary_line(plan: &Plan) -> String {
    let s = plan.summary();
    let adopt = if s.adopt > 0 { format!("{} to adopt, ", s.adopt) } else { String::new() };
    let forget = if s.forget > 0 { format!("{} to forget, ", s.forget) } else { String::new() };
    format!("Plan: {forget}{adopt}{} to add, {} to change, {} to destroy.", s.add, s.change, s.destroy)
}

fn field_line(out: &mut String, f: &FieldChange, width: usize) {
    let (sym, value) = match (&f.old, &f.new) {
        // A long text the same size: its diff below says what changed.
        (Some(old), Some(new)) if old == new && f.diff.is_some() => ("~", format!("{new}, changed:")),
        (Some(old), Some(new)) => ("~", format!("{old} -> {new}")),
        (None, Some(new)) => ("+", new.clone()),
        (Some(old), None) => ("-", old.clone()),
        (None, None) => (" ", String::new()),
    };
    let _ = write!(out, "      {sym} {:width$} = {value}", f.field);
    if f.forces_replacement {
        out.push_str("   # forces replacement");
    }
    if let Some(note) = &f.note {
        let _ = write!(out, "   # {note}");
    }
    out.push('\n');
    for line in f.diff.iter().flat_map(|d| d.lines()) {
        let _ = writeln!(out, "          {line}");
    }
}

/// `acme, globex and 3 more`: a list that stays one line long.
pub fn names(items: &[impl AsRef<str>], at_most: usize) -> String {
    let shown: Vec<&str> = items.iter().take(at_most).map(AsRef::as_ref).collect();
    match items.len().saturating_sub(at_most) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// `3 sites affected: acme, globex, initech`
pub fn sites_line(plan: &Plan) -> Option<String> {
    let sites: Vec<&str> = plan.affected_sites().into_iter().collect();
    match sites.len() {
        0 => None,
        1 => Some(format!("1 site affected: {}", sites[0])),
        n => Some(format!("{n} sites affected: {}", names(&sites, 10))),
    }
}

fn change_block(out: &mut String, c: &Change) {
    let _ = write!(out, "  # {} {}", c.address, verb(c.action));
    if !c.sites.is_empty() {
        let _ = write!(out, " (sites: {})", names(&c.sites, 5));
    }
    out.push('\n');
    let ident = match &c.id {
        Some(id) if id != &c.name => format!("({}, {id})", c.name),
        _ => format!("({})", c.name),
    };
    let _ = writeln!(out, "{} {} {ident}", symbol(c.action), c.address);
    if c.action == Action::Delete {
        return;
    }
    let width = c.fields.iter().map(|f| f.field.len()).max().unwrap_or(0);
    for f in &c.fields {
        field_line(out, f, width);
    }
}

/// The whole plan as text: conflicts first, then each change, then the summary line.
pub fn plan_text(plan: &Plan) -> String {
    changes_text(plan, "converge will perform the following actions:", "No changes. Live AWS matches the desired state.")
}

/// An offline diff between two desired states, worded as such.
pub fn diff_text(plan: &Plan, old: &str, new: &str) -> String {
    let intro = format!("Changes from {old} to {new} (offline: nothing was read from AWS):");
    changes_text(plan, &intro, &format!("No differences between {old} and {new}."))
}

fn changes_text(plan: &Plan, intro: &str, nothing: &str) -> String {
    let mut out = String::new();
    if !plan.conflicts.is_empty() {
        let _ = writeln!(out, "Conflicts (nothing below can be applied until they are resolved):\n");
        for c in &plan.conflicts {
            match &c.address {
                Some(a) => {
                    let _ = writeln!(out, "  ! {a}: {}", c.message);
                }
                None => {
                    let _ = writeln!(out, "  ! {}", c.message);
                }
            }
            let _ = writeln!(out, "      help: {}", c.help);
        }
        out.push('\n');
    }
    if plan.changes.is_empty() {
        if !plan.held.is_empty() {
            out.push_str("No changes to apply.\n");
        } else if plan.conflicts.is_empty() {
            let _ = writeln!(out, "{nothing}");
        } else {
            out.push_str("No other changes.\n");
        }
        held_text(&mut out, plan);
        observed_text(&mut out, plan);
        unmanaged_text(&mut out, plan);
        return out;
    }
    let _ = writeln!(out, "{intro}\n");
    for c in &plan.changes {
        change_block(&mut out, c);
        out.push('\n');
    }
    out.push_str(&summary_line(plan));
    out.push('\n');
    if let Some(sites) = sites_line(plan) {
        out.push_str(&sites);
        out.push('\n');
    }
    held_text(&mut out, plan);
    observed_text(&mut out, plan);
    unmanaged_text(&mut out, plan);
    out
}

/// Changes a management policy holds back: drift, shown as changes are, never applied.
fn held_text(out: &mut String, plan: &Plan) {
    if plan.held.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nHeld by a management policy (drift: shown, never applied): {}\n", plan.held.len());
    for h in &plan.held {
        let _ = writeln!(out, "  # held: {}", h.reason);
        change_block(out, &h.change);
        out.push('\n');
    }
}

fn certificate_text(out: &mut String, plan: &Plan) {
    if plan.certificate_gaps.is_empty() {
        return;
    }
    out.push_str("\nWarning: certificates that fail their sites:\n");
    for g in &plan.certificate_gaps {
        let _ = writeln!(out, "  ! site.{}: {}\n      certificate: {}", g.site, g.message, g.certificate);
    }
}

fn observed_text(out: &mut String, plan: &Plan) {
    certificate_text(out, plan);
    if plan.observed.is_empty() {
        return;
    }
    out.push_str("\nObserved (owned by AWS or a policy: not drift, never changed):\n");
    for o in &plan.observed {
        let _ = writeln!(out, "  = {} {} = {}   # {}", o.address, o.field, o.value, o.note);
    }
}

fn unmanaged_text(out: &mut String, plan: &Plan) {
    if plan.unmanaged.is_empty() {
        return;
    }
    out.push_str("\nUnmanaged (in the fleet's scope, not owned by converge, never touched):\n");
    for u in &plan.unmanaged {
        let _ = writeln!(out, "  ? {} {}: {}", u.kind.as_str(), u.name, u.reason);
    }
}

/// What drifted, in one line for an alert: `drift: 3 resources (2 sites affected): ...`.
pub fn drift_line(plan: &Plan) -> String {
    let mut items: Vec<String> = plan
        .conflicts
        .iter()
        .map(|c| match &c.address {
            Some(a) => format!("{a} blocked ({})", c.message),
            None => c.message.clone(),
        })
        .collect();
    for c in plan.changes.iter().chain(plan.held.iter().map(|h| &h.change)) {
        items.push(match c.action {
            Action::Create => format!("{} missing", c.address),
            Action::Adopt => format!("{} untagged", c.address),
            Action::Delete => format!("{} not in the desired state", c.address),
            Action::Forget => format!("{} to forget", c.address),
            Action::Update | Action::Replace => {
                let mut fields: Vec<&str> = Vec::new();
                for f in &c.fields {
                    let name = f.field.as_str();
                    if !fields.contains(&name) {
                        fields.push(name);
                    }
                }
                format!("{} {}", c.address, names(&fields, 3))
            }
        });
    }
    let unmanaged = match plan.unmanaged.len() {
        0 => String::new(),
        n => {
            let list: Vec<String> = plan.unmanaged.iter().map(|u| format!("{} {} {}", u.kind.as_str(), u.name, u.reason)).collect();
            format!("; {n} unmanaged: {}", names(&list, 3))
        }
    };
    // Values AWS assigned where the desired state leaves them to AWS are for reference: not in the alert.
    let counted: Vec<String> = plan.observed_counted().map(|o| format!("{} {} {} ({})", o.address, o.field, o.value, o.note)).collect();
    let unmanaged = match counted.len() {
        0 => unmanaged,
        n => format!("{unmanaged}; {n} observed: {}", names(&counted, 3)),
    };
    if items.is_empty() {
        return format!("no drift: live AWS matches the desired state{unmanaged}");
    }
    let n = plan.changes.len() + plan.held.len() + plan.conflicts.len();
    let sites = plan.affected_sites().len();
    let sites = match sites {
        0 => String::new(),
        1 => " (1 site affected)".to_string(),
        n => format!(" ({n} sites affected)"),
    };
    format!("drift: {n} resource{}{sites}: {}{unmanaged}", if n == 1 { "" } else { "s" }, names(&items, 5))
}

/// One line per change for the by-site view: `~ load_balancer.acme (listener 443 certificate)`.
fn change_line(c: &Change) -> String {
    let sym = symbol(c.action).trim_start();
    match c.action {
        Action::Update | Action::Replace | Action::Adopt => {
            let mut fields: Vec<&str> = Vec::new();
            for f in &c.fields {
                if !fields.contains(&f.field.as_str()) {
                    fields.push(&f.field);
                }
            }
            format!("{sym} {} ({})", c.address, names(&fields, 4))
        }
        Action::Create | Action::Delete | Action::Forget => format!("{sym} {} ({})", c.address, verb(c.action)),
    }
}

/// The plan read by site (`plan --by site`): for each site the changes on its path (its own objects and
/// the shared ones it depends on), then the changes on no site's path. `sites` is every site of the
/// fleet with its domain, so the unaffected ones can be counted.
pub fn plan_by_site(plan: &Plan, sites: &[(String, String)]) -> String {
    let mut out = String::new();
    for c in &plan.conflicts {
        let at = c.address.as_ref().map(|a| format!("{a}: ")).unwrap_or_default();
        let _ = writeln!(out, "! {at}{}\n    help: {}", c.message, c.help);
    }
    if !plan.conflicts.is_empty() {
        out.push('\n');
    }
    let mut unaffected = 0;
    for (site, domain) in sites {
        let changes: Vec<&Change> = plan.changes.iter().filter(|c| c.sites.iter().any(|s| s == site)).collect();
        if changes.is_empty() {
            unaffected += 1;
            continue;
        }
        let _ = writeln!(out, "site {site} ({domain}): {} change{}", changes.len(), if changes.len() == 1 { "" } else { "s" });
        for c in changes {
            let _ = writeln!(out, "  {}", change_line(c));
        }
        out.push('\n');
    }
    let elsewhere: Vec<&Change> = plan.changes.iter().filter(|c| c.sites.is_empty()).collect();
    if !elsewhere.is_empty() {
        let _ = writeln!(out, "on no site's path:");
        for c in elsewhere {
            let _ = writeln!(out, "  {}", change_line(c));
        }
        out.push('\n');
    }
    if plan.changes.is_empty() {
        out.push_str("No changes. Live AWS matches the desired state.\n");
    } else {
        out.push_str(&summary_line(plan));
        out.push('\n');
    }
    let _ = writeln!(out, "{} site{} affected, {unaffected} unaffected.", sites.len() - unaffected, if sites.len() - unaffected == 1 { "" } else { "s" });
    out
}
