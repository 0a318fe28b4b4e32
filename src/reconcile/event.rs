//! What the loop says as it runs, one [`Event`] per thing a watcher cares about: a pass starting and
//! ending, what a pass plans, each object applied or failed, a backoff, a conflict, a change held back.
//! Rendered for a person (`--log-format text`: the lines a terminal shows, failures on standard error) or
//! for a log pipeline (`--log-format json`: one JSON object per line on standard output, every line with
//! `ts`, `level`, `event` and `fleet`; the fields of each event are in the README). Pure: the caller stamps
//! the time and writes the lines.

use std::time::Duration;

use serde_json::{Value, json};

use crate::apply::Report;
use crate::error::Class;
use crate::plan::{Conflict, Held, Plan};
use crate::resource::Address;

/// How the loop writes its events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for a terminal; failures on standard error.
    #[default]
    Text,
    /// One JSON object per line on standard output, for a log pipeline; diagnostics too, on standard error.
    Json,
}

/// One thing that happened in the loop.
#[derive(Debug)]
pub enum Event<'a> {
    Started {
        interval: Duration,
        applying: bool,
    },
    Listening {
        addr: String,
    },
    PassStarted {
        pass: u64,
    },
    /// Changes held back this pass: by a management policy, a conflict, a backoff or `reconcile_every`, or
    /// because what they need is held.
    Held {
        held: &'a [Held],
    },
    /// A conflict of one object: held until it is resolved, the rest converges.
    ConflictHeld {
        conflict: &'a Conflict,
    },
    /// Conflicts of the whole plan (the delete limit): nothing is applied.
    Blocked {
        conflicts: &'a [Conflict],
        calls: u64,
    },
    NoChanges {
        calls: u64,
        elapsed: Duration,
    },
    Planned {
        plan: &'a Plan,
        calls: u64,
        applying: bool,
    },
    /// What the pass's apply did, object by object.
    Applied {
        plan: &'a Plan,
        report: &'a Report,
    },
    Backoff {
        address: &'a Address,
        wait: Duration,
        failures: u32,
        class: Class,
    },
    PassEnded {
        pass: u64,
        summary: PassSummary,
        next: Duration,
    },
    PassFailed {
        pass: u64,
        error: &'a str,
        class: Class,
        failures: u32,
        next: Duration,
    },
    WebhookFailed {
        error: &'a str,
    },
    Stopping,
}

/// What one pass did, in numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassSummary {
    pub changes: usize,
    pub applied: usize,
    pub failed: usize,
    pub held: usize,
    pub conflicts: usize,
    pub calls: u64,
    pub elapsed: Duration,
}

/// One line to write, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub stderr: bool,
    pub text: String,
}

fn out(text: impl Into<String>) -> Line {
    Line { stderr: false, text: text.into() }
}

fn err(text: impl Into<String>) -> Line {
    Line { stderr: true, text: text.into() }
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

impl Event<'_> {
    /// The lines this event writes in `format`; JSON lines carry `ts` (RFC 3339) and `fleet`.
    pub fn lines(&self, format: LogFormat, ts: &str, fleet: &str) -> Vec<Line> {
        match format {
            LogFormat::Text => self.text(fleet),
            LogFormat::Json => self
                .json()
                .into_iter()
                .map(|(level, event, fields)| {
                    let mut line = json!({ "ts": ts, "level": level, "event": event, "fleet": fleet });
                    if let (Some(line), Value::Object(fields)) = (line.as_object_mut(), fields) {
                        line.extend(fields);
                    }
                    out(line.to_string())
                })
                .collect(),
        }
    }

    fn text(&self, fleet: &str) -> Vec<Line> {
        match self {
            Event::Started { interval, applying } => {
                let mode = if *applying { "converging" } else { "reporting" };
                vec![out(format!("reconciling fleet {fleet} every {}s ({mode}); SIGTERM or Ctrl-C stops after the current pass", interval.as_secs()))]
            }
            Event::Listening { addr } => vec![out(format!("serving /metrics, /healthz and /readyz on http://{addr}"))],
            Event::PassStarted { .. } => Vec::new(),
            Event::Held { held: [] } => Vec::new(),
            Event::Held { held } => {
                let list: Vec<String> = held.iter().map(|h| format!("{} ({})", h.change.address, h.reason)).collect();
                vec![out(format!("{} change(s) held back, not applied this pass: {}", held.len(), list.join(", ")))]
            }
            Event::ConflictHeld { conflict } => {
                let address = conflict.address.as_ref().map(ToString::to_string).unwrap_or_default();
                vec![out(format!("conflict, held until resolved: {address}: {}", conflict.message))]
            }
            Event::Blocked { conflicts, calls } => {
                // Not transient: waiting the interval is right, backing off is not.
                let mut lines = vec![out(format!("{} conflict(s) block the plan ({calls} calls); nothing applied:", conflicts.len()))];
                lines.extend(conflicts.iter().map(|c| out(format!("  ! {}", c.message))));
                lines
            }
            Event::NoChanges { calls, elapsed } => vec![out(format!("no changes to apply ({calls} calls, {:.1}s)", elapsed.as_secs_f64()))],
            Event::Planned { plan, calls, applying } => {
                let addresses: Vec<String> = plan.changes.iter().map(|c| c.address.to_string()).collect();
                let mut lines = vec![out(format!("{} ({calls} calls): {}", crate::render::summary_line(plan), addresses.join(", ")))];
                if !applying {
                    lines.push(out("  not applied: run with --apply to converge"));
                }
                lines
            }
            Event::Applied { plan, report } => crate::render::report_text(plan, report).lines().map(out).collect(),
            Event::Backoff { address, wait, failures, class } => {
                vec![out(format!("  {address}: backing off {:.1}s after {failures} failure(s) ({class})", wait.as_secs_f64()))]
            }
            Event::PassEnded { next, .. } => vec![out(format!("  next pass in {}s", next.as_secs()))],
            Event::PassFailed { error, class, failures, next, .. } => {
                let retry = if class.retryable() {
                    format!("  retrying in {:.1}s", next.as_secs_f64())
                } else {
                    format!("  not retryable: next pass in {:.1}s", next.as_secs_f64())
                };
                vec![err(format!("pass failed ({failures} in a row, {class}): {error}")), err(retry)]
            }
            Event::WebhookFailed { error } => vec![err(format!("Warning: the webhook failed: {error}"))],
            Event::Stopping => vec![err("Stop requested: the changes running finish, then the loop stops.")],
        }
    }

    /// Each line's level, event name and fields: one per object for the events about several.
    fn json(&self) -> Vec<(&'static str, &'static str, Value)> {
        match self {
            Event::Started { interval, applying } => vec![("info", "started", json!({ "interval_seconds": interval.as_secs(), "apply": applying }))],
            Event::Listening { addr } => vec![("info", "listening", json!({ "addr": addr }))],
            Event::PassStarted { pass } => vec![("info", "pass_started", json!({ "pass": pass }))],
            Event::Held { held } => held
                .iter()
                .map(|h| ("info", "held", json!({ "address": h.change.address.to_string(), "action": h.change.action, "reason": h.reason })))
                .collect(),
            Event::ConflictHeld { conflict } => {
                vec![(
                    "warn",
                    "conflict",
                    json!({ "address": conflict.address.as_ref().map(ToString::to_string), "message": conflict.message, "help": conflict.help }),
                )]
            }
            Event::Blocked { conflicts, .. } => conflicts
                .iter()
                .map(|c| ("warn", "blocked", json!({ "address": c.address.as_ref().map(ToString::to_string), "message": c.message, "help": c.help })))
                .collect(),
            Event::NoChanges { .. } => vec![("info", "planned", json!({ "changes": 0 }))],
            Event::Planned { plan, applying, .. } => {
                let changes: Vec<Value> =
                    plan.changes.iter().map(|c| json!({ "address": c.address.to_string(), "action": c.action, "sites": c.sites })).collect();
                vec![("info", "planned", json!({ "changes": plan.changes.len(), "apply": applying, "objects": changes }))]
            }
            Event::Applied { plan, report } => {
                let mut lines = Vec::new();
                for a in &report.applied {
                    let change = plan.change(a);
                    let fields = json!({ "address": a.to_string(), "action": change.map(|c| c.action), "sites": change.map(|c| c.sites.clone()) });
                    lines.push(("info", "applied", fields));
                }
                for (a, e) in &report.failed {
                    let f = &e.error;
                    let fields = json!({
                        "address": a.to_string(), "class": f.class.as_str(), "operation": f.operation, "code": f.code,
                        "error": f.message, "operations_done": e.done, "operations": e.total,
                    });
                    lines.push(("error", "failed", fields));
                }
                for (a, because) in &report.skipped {
                    lines.push(("warn", "not_attempted", json!({ "address": a.to_string(), "waits_for": because.to_string() })));
                }
                for a in &report.cancelled {
                    lines.push(("warn", "not_attempted", json!({ "address": a.to_string(), "stopped": true })));
                }
                lines
            }
            Event::Backoff { address, wait, failures, class } => {
                vec![("warn", "backoff", json!({ "address": address.to_string(), "wait_seconds": secs(*wait), "failures": failures, "class": class.as_str() }))]
            }
            Event::PassEnded { pass, summary: s, next } => {
                let fields = json!({
                    "pass": pass, "result": "ok", "changes": s.changes, "applied": s.applied, "failed": s.failed, "held": s.held,
                    "conflicts": s.conflicts, "calls": s.calls, "duration_seconds": secs(s.elapsed), "next_seconds": secs(*next),
                });
                vec![("info", "pass_ended", fields)]
            }
            Event::PassFailed { pass, error, class, failures, next } => {
                let fields = json!({
                    "pass": pass, "result": "error", "class": class.as_str(), "error": error, "failures": failures, "next_seconds": secs(*next),
                });
                vec![("error", "pass_ended", fields)]
            }
            Event::WebhookFailed { error } => vec![("warn", "webhook_failed", json!({ "error": error }))],
            Event::Stopping => vec![("info", "stopping", json!({}))],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[Line]) -> Vec<Value> {
        lines.iter().map(|l| serde_json::from_str(&l.text).unwrap()).collect()
    }

    #[test]
    fn json_lines_are_one_object_each_with_the_common_fields_first() {
        let a: Address = "load_balancer.shared".parse().unwrap();
        let e = Event::Backoff { address: &a, wait: Duration::from_millis(1_900), failures: 2, class: Class::Transient };
        let lines = e.lines(LogFormat::Json, "2026-12-02T12:00:00Z", "agency");
        assert_eq!(lines.len(), 1);
        assert!(!lines[0].stderr && !lines[0].text.contains('\n'));
        assert!(lines[0].text.starts_with(r#"{"ts":"2026-12-02T12:00:00Z","level":"warn","event":"backoff","fleet":"agency","#), "{}", lines[0].text);
        let v = &parse(&lines)[0];
        assert_eq!(v["address"], "load_balancer.shared");
        assert_eq!(v["wait_seconds"], 1.9);
        assert_eq!(v["class"], "transient");
    }

    #[test]
    fn a_failed_pass_is_an_error_line_in_json_and_two_lines_on_stderr_in_text() {
        let e = Event::PassFailed { pass: 3, error: "denied", class: Class::Denied, failures: 1, next: Duration::from_secs(300) };
        let text = e.lines(LogFormat::Text, "", "agency");
        assert!(text.iter().all(|l| l.stderr) && text.len() == 2, "{text:?}");
        assert_eq!(text[0].text, "pass failed (1 in a row, access denied): denied");
        let json = parse(&e.lines(LogFormat::Json, "t", "agency"));
        assert_eq!((json[0]["level"].as_str(), json[0]["result"].as_str(), json[0]["class"].as_str()), (Some("error"), Some("error"), Some("denied")));
    }
}
