//! Renderers of plans and applies for people and programs: text for terminals, markdown for pull requests,
//! JSON for programs. Pure: they return strings.

pub mod graph;
pub mod json;
pub mod markdown;
pub mod report;
pub mod sites;
pub mod text;

pub use json::{Target, apply_json, diagnostics_json, plan_json};
pub use markdown::{COMMENT_LIMIT, plan_markdown};
pub use report::{applied_counts, event_line, report_text};
pub use text::{diff_text, drift_line, names, plan_by_site, plan_text, sites_line, summary_line};

#[cfg(test)]
mod tests;
