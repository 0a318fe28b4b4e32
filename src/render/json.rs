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
}

#[derive(Serialize)]
struct JsonUnmanaged<'a> {
    kind: &'static str,
    name: &'a str,
    reason: &'a str,
}

#[derive(Serialize)]
struct JsonSummary {
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
}

/// The plan as pretty-printed JSON.
pub fn plan_json(plan: &Plan, target: Option<Target<'_>>) -> String {
    let s = plan.summary();
    let doc = JsonPlan {
        format_version: FORMAT_VERSION,
        fleet: &plan.fleet,
        target,
        summary: JsonSummary { add: s.add, change: s.change, destroy: s.destroy, conflicts: plan.conflicts.len() },
        conflicts: plan
            .conflicts
            .iter()
            .map(|c| JsonConflict { address: c.address.as_ref().map(ToString::to_string), message: &c.message, help: &c.help })
            .collect(),
        changes: plan
            .changes
            .iter()
            .map(|c| {
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
                        })
                        .collect(),
                    depends_on,
                    sites: &c.sites,
                }
            })
            .collect(),
        sites_affected: plan.affected_sites().into_iter().collect(),
        unmanaged: plan.unmanaged.iter().map(|u| JsonUnmanaged { kind: u.kind.as_str(), name: &u.name, reason: &u.reason }).collect(),
    };
    let mut out = serde_json::to_string_pretty(&doc).expect("plans serialise");
    out.push('\n');
    out
}
