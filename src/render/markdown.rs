//! The plan as a pull-request comment: a summary a reviewer reads in a minute, destroys and replaces first,
//! details collapsed per resource, identical changes shown once with the list of objects, and never more
//! than GitHub's 65,535 characters.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::json::Target;
use super::text::{names, summary_line};
use crate::plan::{Action, Change, Plan};
use crate::resource::FieldChange;

/// GitHub's limit on a comment's body.
pub const COMMENT_LIMIT: usize = 65_535;

fn icon(action: Action) -> &'static str {
    match action {
        Action::Adopt => "<-",
        Action::Create => "+",
        Action::Update => "~",
        Action::Replace => "-/+",
        Action::Delete => "-",
        Action::Forget => "->",
    }
}

fn noun(action: Action) -> &'static str {
    match action {
        Action::Adopt => "adopt",
        Action::Create => "create",
        Action::Update => "update in place",
        Action::Replace => "replace",
        Action::Delete => "destroy",
        Action::Forget => "forget",
    }
}

fn diff_lines(fields: &[FieldChange]) -> String {
    let mut out = String::new();
    for f in fields {
        // A long text (user data) is its own unified diff, at column 0 so GitHub colours its lines.
        if let Some(diff) = &f.diff {
            let note = f.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
            let _ = writeln!(out, "# {}: {} -> {}{note}", f.field, f.old.as_deref().unwrap_or("none"), f.new.as_deref().unwrap_or("none"));
            out.push_str(diff);
            continue;
        }
        let mark = if f.forces_replacement { "   # forces replacement" } else { "" };
        if let Some(old) = &f.old {
            let _ = writeln!(out, "- {} = {old}{mark}", f.field);
        }
        if let Some(new) = &f.new {
            let _ = writeln!(out, "+ {} = {new}{mark}", f.field);
        }
    }
    out
}

fn code(s: &str) -> String {
    format!("`{}`", s.replace('`', "'"))
}

/// Inline code inside HTML (GitHub renders no markdown in a `<summary>`).
fn html_code(s: &str) -> String {
    format!("<code>{}</code>", s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"))
}

/// Changes that look the same to a reviewer (same action, same field changes) are shown once.
fn groups(plan: &Plan) -> Vec<(Action, String, Vec<&Change>)> {
    let mut by_shape: BTreeMap<(Action, String), Vec<&Change>> = BTreeMap::new();
    for c in &plan.changes {
        // Creates and deletes list their own attributes (names differ), so they group only with themselves.
        let shape = match c.action {
            Action::Update | Action::Replace | Action::Adopt => diff_lines(&c.fields),
            Action::Create | Action::Delete | Action::Forget => c.address.to_string(),
        };
        by_shape.entry((c.action, shape)).or_default().push(c);
    }
    let mut out: Vec<(Action, String, Vec<&Change>)> = by_shape.into_iter().map(|((a, _), cs)| (a, diff_lines(&cs[0].fields), cs)).collect();
    // Destroys and replaces first, then by the first address.
    out.sort_by_key(|(a, _, cs)| (!matches!(a, Action::Delete | Action::Replace), cs[0].address.clone()));
    out
}

fn details(action: Action, diff: &str, changes: &[&Change]) -> String {
    let addresses: Vec<String> = changes.iter().map(|c| c.address.to_string()).collect();
    let title = if changes.len() == 1 {
        html_code(&format!("{} {}", icon(action), addresses[0]))
    } else {
        let listed: Vec<String> = addresses.iter().map(|a| html_code(a)).collect();
        format!("{} {} objects, the same change: {}", html_code(icon(action)), changes.len(), names(&listed, 8))
    };
    let mut sites: Vec<&str> = changes.iter().flat_map(|c| c.sites.iter().map(String::as_str)).collect();
    sites.sort_unstable();
    sites.dedup();
    let sites = if sites.is_empty() { String::new() } else { format!(" (sites: {})", names(&sites, 8)) };
    let mut out = format!("<details><summary>{title} {}{sites}</summary>\n\n", noun(action));
    if changes.len() > 1 {
        let _ = writeln!(out, "Objects: {}\n", addresses.iter().map(|a| code(a)).collect::<Vec<_>>().join(", "));
    }
    let _ = write!(out, "```diff\n{diff}```\n\n</details>\n\n");
    out
}

/// The comment body, within `limit` characters (GitHub's is [`COMMENT_LIMIT`]).
/// At most so many changes are drawn (a bigger picture is no longer read).
const MERMAID_CHANGES: usize = 25;

pub fn plan_markdown(plan: &Plan, target: Option<Target<'_>>, limit: usize) -> String {
    let mut head = String::new();
    let _ = write!(head, "### converge plan for fleet {}", code(&plan.fleet));
    if let Some(t) = target {
        let _ = write!(head, " (account {}, {})", t.account, t.region);
    }
    head.push_str("\n\n");
    if !plan.conflicts.is_empty() {
        let _ = writeln!(head, "> [!CAUTION]\n> **{} conflict(s): this plan cannot be applied.**", plan.conflicts.len());
        for c in &plan.conflicts {
            let address = c.address.as_ref().map(|a| format!("{}: ", code(&a.to_string()))).unwrap_or_default();
            let _ = writeln!(head, "> - {address}{}. {}", c.message, c.help);
        }
        head.push('\n');
    }
    if !plan.unmanaged.is_empty() {
        let _ = writeln!(head, "> [!NOTE]\n> **{} unmanaged object(s)** in the fleet's scope (not owned by converge, never touched):", plan.unmanaged.len());
        for u in plan.unmanaged.iter().take(50) {
            let _ = writeln!(head, "> - {} {}: {}", u.kind.as_str(), code(&u.name), u.reason);
        }
        head.push('\n');
    }
    if !plan.certificate_gaps.is_empty() {
        let _ = writeln!(head, "> [!WARNING]\n> **{} certificate problem(s):**", plan.certificate_gaps.len());
        for g in plan.certificate_gaps.iter().take(50) {
            let _ = writeln!(head, "> - site {}: {} ({})", code(&g.site), g.message, code(&g.certificate));
        }
        head.push('\n');
    }
    if !plan.held.is_empty() {
        let _ = writeln!(head, "> [!IMPORTANT]\n> **{} change(s) held by a management policy** (drift: never applied):", plan.held.len());
        for h in plan.held.iter().take(50) {
            let _ = writeln!(head, "> - {} {} ({})", code(icon(h.change.action)), code(&h.change.address.to_string()), h.reason);
        }
        head.push('\n');
    }
    if !plan.observed.is_empty() {
        let _ = writeln!(head, "> [!NOTE]\n> **{} observed value(s)** owned by AWS or a policy (not drift, never changed):", plan.observed.len());
        for o in plan.observed.iter().take(50) {
            let _ = writeln!(head, "> - {} {} = {} ({})", code(&o.address.to_string()), o.field, code(&o.value), o.note);
        }
        head.push('\n');
    }
    if plan.changes.is_empty() {
        head.push_str(if plan.held.is_empty() { "**No changes.** Live AWS matches the desired state.\n" } else { "**No changes to apply.**\n" });
        return head;
    }
    let sites = plan.affected_sites();
    let _ = writeln!(head, "**{}** {} site{} affected.\n", summary_line(plan), sites.len(), if sites.len() == 1 { "" } else { "s" });
    head.push_str("| action | objects | sites |\n| --- | ---: | ---: |\n");
    for action in [Action::Delete, Action::Replace, Action::Forget, Action::Adopt, Action::Create, Action::Update] {
        let of: Vec<&Change> = plan.changes.iter().filter(|c| c.action == action).collect();
        if !of.is_empty() {
            let mut s: Vec<&str> = of.iter().flat_map(|c| c.sites.iter().map(String::as_str)).collect();
            s.sort_unstable();
            s.dedup();
            let _ = writeln!(head, "| {} {} | {} | {} |", code(icon(action)), noun(action), of.len(), s.len());
        }
    }
    head.push('\n');
    let risky: Vec<&Change> = plan.changes.iter().filter(|c| matches!(c.action, Action::Delete | Action::Replace)).collect();
    if !risky.is_empty() {
        head.push_str("> [!WARNING]\n> **Destroys and replaces:**\n");
        for c in risky.iter().take(50) {
            let why: Vec<&str> = c.fields.iter().filter(|f| f.forces_replacement).map(|f| f.field.as_str()).collect();
            let why = if why.is_empty() { String::new() } else { format!(" ({} forces replacement)", why.join(", ")) };
            let _ = writeln!(head, "> - {} {} {}{why}", code(icon(c.action)), code(&c.address.to_string()), code(&c.name));
        }
        if risky.len() > 50 {
            let _ = writeln!(head, "> - and {} more (see the details below)", risky.len() - 50);
        }
        head.push('\n');
    }
    // A small plan's order, as a picture GitHub draws: what changes, and what waits for what.
    if plan.changes.len() <= MERMAID_CHANGES {
        let picture = super::graph::plan(plan).render(super::graph::GraphFormat::Mermaid);
        let _ = writeln!(head, "<details><summary>The order of the changes</summary>\n\n```mermaid\n{picture}```\n</details>\n");
    }

    let blocks: Vec<String> = groups(plan).iter().map(|(a, diff, cs)| details(*a, diff, cs)).collect();
    let mut body = head;
    let mut left_out = 0;
    for (i, block) in blocks.iter().enumerate() {
        // Keep room for the note that says what was left out.
        if body.len() + block.len() + 400 > limit {
            left_out = blocks.len() - i;
            break;
        }
        body.push_str(block);
    }
    if left_out > 0 {
        let _ = writeln!(
            body,
            "_{left_out} more group(s) of changes are left out to stay within GitHub's comment limit; \
             the full plan is in `converge plan --format json`._"
        );
    }
    body
}
