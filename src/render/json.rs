//! The plan as JSON, for programs: a versioned schema documented in docs/plan-json.md. Ordering is stable
//! (changes by address, fields as the kind lists them), so two runs diff cleanly.

use serde::Serialize;

use crate::plan::{Action, Plan};

/// Bumped on any change a consumer could notice; additions of optional keys keep it.
pub const FORMAT_VERSION: &str = "1";

/// Where a plan was made, when it was made against AWS.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Target<'a> {
    pub account: &'a str,
    pub region: &'a str,
}

#[derive(Serialize)]
struct JsonPlan<'a> {
    format_version: &'static str,
    fleet: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<Target<'a>>,
    summary: JsonSummary,
    conflicts: Vec<JsonConflict<'a>>,
    changes: Vec<JsonChange<'a>>,
    sites_affected: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unmanaged: Vec<JsonUnmanaged<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    observed: Vec<JsonObserved<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    certificate_gaps: &'a [crate::plan::coverage::Gap],
    /// Changes a management policy holds back: drift, never applied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    held: Vec<JsonHeld<'a>>,
}

#[derive(Serialize)]
struct JsonHeld<'a> {
    #[serde(flatten)]
    change: JsonChange<'a>,
    held_because: &'a str,
}

#[derive(Serialize)]
struct JsonObserved<'a> {
    address: String,
    field: &'a str,
    value: &'a str,
    note: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    info: bool,
}

#[derive(Serialize)]
struct JsonUnmanaged<'a> {
    kind: &'static str,
    name: &'a str,
    reason: &'a str,
}

#[derive(Serialize)]
struct JsonSummary {
    adopt: usize,
    forget: usize,
    add: usize,
    change: usize,
    destroy: usize,
    conflicts: usize,
}

#[derive(Serialize)]
struct JsonConflict<'a> {
    address: Option<String>,
    message: &'a str,
    help: &'a str,
}

#[derive(Serialize)]
struct JsonChange<'a> {
    address: String,
    kind: &'static str,
    action: Action,
    aws_name: &'a str,
    id: Option<&'a str>,
    /// Fields that force the replacement, for `replace`.
    replace_because: Vec<&'a str>,
    fields: Vec<JsonField<'a>>,
    depends_on: Vec<String>,
    sites: &'a [String],
}

#[derive(Serialize)]
struct JsonField<'a> {
    field: &'a str,
    before: Option<&'a str>,
    after: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    forces_replacement: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    /// A unified diff of `before` and `after` texts (user data).
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<&'a str>,
}

/// The plan as pretty-printed JSON.
pub fn plan_json(plan: &Plan, target: Option<Target<'_>>) -> String {
    pretty(&plan_value(plan, target))
}

fn pretty(v: &serde_json::Value) -> String {
    let mut out = serde_json::to_string_pretty(v).expect("JSON values serialise");
    out.push('\n');
    out
}

/// What an apply did, with the plan it applied: `{format_version, plan, result}`.
pub fn apply_json(plan: &Plan, target: Option<Target<'_>>, report: &crate::apply::Report) -> String {
    let failed: Vec<serde_json::Value> = report
        .failed
        .iter()
        .map(|(a, e)| {
            let f = &e.error;
            serde_json::json!({
                "address": a.to_string(),
                "error": f.message,
                "class": f.class,
                "operation": f.operation,
                "resource": f.resource,
                "code": f.code,
                "operations_done": e.done,
                "operations": e.total,
            })
        })
        .collect();
    let skipped: Vec<serde_json::Value> =
        report.skipped.iter().map(|(a, because)| serde_json::json!({ "address": a.to_string(), "waits_for": because.to_string() })).collect();
    pretty(&serde_json::json!({
        "format_version": FORMAT_VERSION,
        "plan": plan_value(plan, target),
        "result": {
            "complete": report.ok(),
            "applied": report.applied.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "failed": failed,
            "skipped": skipped,
            "cancelled": report.cancelled.iter().map(ToString::to_string).collect::<Vec<_>>(),
        },
    }))
}

/// Every problem of an invalid desired state: `{format_version, valid, problems}`.
pub fn diagnostics_json(diags: &[crate::model::Diagnostic]) -> String {
    let problems: Vec<serde_json::Value> = diags
        .iter()
        .map(|d| {
            serde_json::json!({
                "file": d.loc.file.display().to_string(),
                "line": d.loc.line,
                "column": d.loc.col,
                "field": d.field,
                "message": d.message,
                "help": d.help,
            })
        })
        .collect();
    pretty(&serde_json::json!({ "format_version": FORMAT_VERSION, "valid": diags.is_empty(), "problems": problems }))
}

fn plan_value(plan: &Plan, target: Option<Target<'_>>) -> serde_json::Value {
    let s = plan.summary();
    let doc = JsonPlan {
        format_version: FORMAT_VERSION,
        fleet: &plan.fleet,
        target,
        summary: JsonSummary { adopt: s.adopt, forget: s.forget, add: s.add, change: s.change, destroy: s.destroy, conflicts: plan.conflicts.len() },
        conflicts: plan
            .conflicts
            .iter()
            .map(|c| JsonConflict { address: c.address.as_ref().map(ToString::to_string), message: &c.message, help: &c.help })
            .collect(),
        changes: plan.changes.iter().map(json_change).collect(),
        held: plan.held.iter().map(|h| JsonHeld { change: json_change(&h.change), held_because: &h.reason }).collect(),
        sites_affected: plan.affected_sites().into_iter().collect(),
        unmanaged: plan.unmanaged.iter().map(|u| JsonUnmanaged { kind: u.kind.as_str(), name: &u.name, reason: &u.reason }).collect(),
        observed: plan
            .observed
            .iter()
            .map(|o| JsonObserved { address: o.address.to_string(), field: &o.field, value: &o.value, note: &o.note, info: o.info })
            .collect(),
        certificate_gaps: &plan.certificate_gaps,
    };
    serde_json::to_value(&doc).expect("plans serialise")
}

/// One change as the JSON plan shows it.
fn json_change(c: &crate::plan::Change) -> JsonChange<'_> {
    let mut depends_on: Vec<String> = c.after.iter().chain(&c.then_after).map(ToString::to_string).collect();
    depends_on.sort();
    depends_on.dedup();
    JsonChange {
        address: c.address.to_string(),
        kind: c.address.kind.as_str(),
        action: c.action,
        aws_name: &c.name,
        id: c.id.as_deref(),
        replace_because: c.fields.iter().filter(|f| f.forces_replacement).map(|f| f.field.as_str()).collect(),
        fields: c
            .fields
            .iter()
            .map(|f| JsonField {
                field: &f.field,
                before: f.old.as_deref(),
                after: f.new.as_deref(),
                forces_replacement: f.forces_replacement,
                note: f.note.as_deref(),
                diff: f.diff.as_deref(),
            })
            .collect(),
        depends_on,
        sites: &c.sites,
    }
}
