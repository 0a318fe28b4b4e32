//! What the loop tells its watchers (`reconcile --listen`): Prometheus metrics in the OpenMetrics text
//! format (prometheus-client), and readiness. Pure: the CLI records what each pass did and serves the
//! text; nothing here does IO or knows AWS beyond names.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::error::Class;
use crate::resource::Kind;

type Labels = Vec<(&'static str, String)>;

/// What an object is at the end of a pass, for the `converge_objects` gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// Live matches the desired state.
    Converged,
    /// A change is planned (applied in this pass, or reported without `--apply`).
    Drifted,
    /// Waiting out its backoff after a failure.
    Backoff,
    /// In a conflict (a look-alike it does not own, a refusal).
    Conflicted,
    /// Held back by a management policy, or waiting for what is held.
    Held,
}

impl State {
    pub const ALL: [State; 5] = [State::Converged, State::Drifted, State::Backoff, State::Conflicted, State::Held];

    fn as_str(self) -> &'static str {
        match self {
            State::Converged => "converged",
            State::Drifted => "drifted",
            State::Backoff => "backoff",
            State::Conflicted => "conflicted",
            State::Held => "held",
        }
    }
}

/// The loop's metrics, named as Prometheus's conventions ask (`converge_` prefix, `_total` counters,
/// `_seconds` durations).
pub struct Metrics {
    registry: Registry,
    passes: Family<Labels, Counter>,
    reconciles: Family<Labels, Counter>,
    errors: Family<Labels, Counter>,
    objects: Family<Labels, Gauge>,
    queue: Gauge,
    duration: Histogram,
    calls: Family<Labels, Counter>,
    throttled: Counter,
    last_success: Gauge<f64, AtomicU64>,
    /// When the last pass ended, whatever its result: what readiness is judged on.
    last_pass: Mutex<Option<Instant>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("converge");
        let passes = Family::<Labels, Counter>::default();
        registry.register("passes", "Reconcile passes, by result (ok, failed)", passes.clone());
        let reconciles = Family::<Labels, Counter>::default();
        registry.register("reconcile", "Per-object reconciles applied, by kind and result (applied, failed)", reconciles.clone());
        let errors = Family::<Labels, Counter>::default();
        registry.register("reconcile_errors", "Per-object failures, by kind and error class", errors.clone());
        let objects = Family::<Labels, Gauge>::default();
        registry.register("objects", "Objects at the end of the last pass, by kind and state", objects.clone());
        let queue = Gauge::default();
        registry.register("queue_depth", "Changes the last pass had to apply", queue.clone());
        let duration = Histogram::new(exponential_buckets(0.5, 2.0, 12));
        registry.register("pass_duration_seconds", "How long each pass took", duration.clone());
        let calls = Family::<Labels, Counter>::default();
        registry.register("aws_calls", "AWS API calls (every HTTP attempt), by service and operation", calls.clone());
        let throttled = Counter::default();
        registry.register("aws_throttled_attempts", "AWS API attempts answered with throttling", throttled.clone());
        let last_success = Gauge::<f64, AtomicU64>::default();
        registry.register("last_success_timestamp_seconds", "When the last successful pass ended (Unix time)", last_success.clone());
        Metrics { registry, passes, reconciles, errors, objects, queue, duration, calls, throttled, last_success, last_pass: Mutex::new(None) }
    }

    /// A pass ended (`ok`: it did not fail as a whole), taking `took`, at `now` (Unix seconds `unix`).
    pub fn pass(&self, ok: bool, took: Duration, now: Instant, unix: f64) {
        self.passes.get_or_create(&vec![("result", if ok { "ok" } else { "failed" }.to_string())]).inc();
        self.duration.observe(took.as_secs_f64());
        if ok {
            self.last_success.set(unix);
        }
        *self.last_pass.lock().expect("metrics lock") = Some(now);
    }

    /// An object's change was applied, or failed with `class`.
    pub fn reconciled(&self, kind: Kind, failed: Option<Class>) {
        let result = if failed.is_some() { "failed" } else { "applied" };
        self.reconciles.get_or_create(&vec![("kind", kind.as_str().to_string()), ("result", result.to_string())]).inc();
        if let Some(class) = failed {
            self.errors.get_or_create(&vec![("kind", kind.as_str().to_string()), ("class", class.as_str().to_string())]).inc();
        }
    }

    /// The objects of the fleet at the end of a pass, by kind and state, and the changes it had to apply.
    pub fn objects(&self, counts: &BTreeMap<(Kind, State), i64>, queue: usize) {
        for &kind in Kind::ALL {
            for state in State::ALL {
                let n = counts.get(&(kind, state)).copied().unwrap_or(0);
                self.objects.get_or_create(&vec![("kind", kind.as_str().to_string()), ("state", state.as_str().to_string())]).set(n);
            }
        }
        self.queue.set(queue as i64);
    }

    /// A pass's AWS calls (`service`, `operation`, attempts) and its throttled attempts.
    pub fn aws(&self, calls: impl IntoIterator<Item = (String, String, u64)>, throttled: u64) {
        for (service, operation, n) in calls {
            self.calls.get_or_create(&vec![("service", service), ("operation", operation)]).inc_by(n);
        }
        self.throttled.inc_by(throttled);
    }

    /// Ready: a pass has ended within two intervals of `now`.
    pub fn ready(&self, now: Instant, interval: Duration) -> bool {
        self.last_pass.lock().expect("metrics lock").is_some_and(|at| now.saturating_duration_since(at) <= interval * 2)
    }

    /// The metrics in the OpenMetrics text format (what `/metrics` serves; Prometheus reads it).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a string");
        out
    }
}

/// The content type of [`Metrics::encode`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_parses_as_prometheus_metrics_with_the_conventional_names() {
        let m = Metrics::new();
        m.reconciled(Kind::LoadBalancer, None);
        m.reconciled(Kind::LoadBalancer, Some(Class::Transient));
        m.objects(&BTreeMap::from([((Kind::LoadBalancer, State::Backoff), 1), ((Kind::SecurityGroup, State::Converged), 2)]), 3);
        m.aws([("elasticloadbalancing".to_string(), "DescribeLoadBalancers".to_string(), 4)], 1);
        let now = Instant::now();
        assert!(!m.ready(now, Duration::from_secs(60)), "not ready before a pass");
        m.pass(true, Duration::from_secs(2), now, 1_800_000_000.0);
        assert!(m.ready(now + Duration::from_secs(119), Duration::from_secs(60)));
        assert!(!m.ready(now + Duration::from_secs(121), Duration::from_secs(60)), "two intervals without a pass");

        let text = m.encode();
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text");
        let value = |name: &str, labels: &[(&str, &str)]| {
            scrape.samples.iter().find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))).map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
        };
        assert_eq!(value("converge_passes_total", &[("result", "ok")]), Some(1.0), "{text}");
        assert_eq!(value("converge_reconcile_total", &[("kind", "load_balancer"), ("result", "failed")]), Some(1.0), "{text}");
        assert_eq!(value("converge_reconcile_errors_total", &[("kind", "load_balancer"), ("class", "transient")]), Some(1.0), "{text}");
        assert_eq!(value("converge_objects", &[("kind", "load_balancer"), ("state", "backoff")]), Some(1.0), "{text}");
        assert_eq!(value("converge_objects", &[("kind", "bucket"), ("state", "converged")]), Some(0.0), "every kind and state is shown");
        assert_eq!(value("converge_queue_depth", &[]), Some(3.0));
        assert_eq!(value("converge_aws_calls_total", &[("operation", "DescribeLoadBalancers")]), Some(4.0));
        assert_eq!(value("converge_aws_throttled_attempts_total", &[]), Some(1.0));
        assert_eq!(value("converge_last_success_timestamp_seconds", &[]), Some(1_800_000_000.0));
        assert!(scrape.samples.iter().any(|s| s.metric.starts_with("converge_pass_duration_seconds")), "{text}");
    }
}
