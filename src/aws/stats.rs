//! Counting API calls: an SDK interceptor that records every HTTP attempt by service and operation, how
//! many attempts were throttled or failed transiently (timeouts included), as the SDK's retry classifiers
//! judged them, and when each attempt was sent and answered: the round trips the run waited on
//! ([`Stats::round_trips`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction, RetryReason};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use aws_smithy_types::retry::ErrorKind;
use serde::Serialize;

/// Calls made so far, shared by every client of a run.
#[derive(Debug, Clone, Default)]
pub struct Stats(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    calls: Mutex<BTreeMap<(String, String), u64>>,
    throttled: AtomicU64,
    transient: AtomicU64,
    timed_out: AtomicU64,
    /// Time spent waiting on the rate budget.
    waits: Arc<super::budget::Waits>,
    /// Every attempt that was sent: its operation, and when it was sent and ended.
    attempts: Mutex<Vec<Attempt>>,
}

#[derive(Debug, Clone)]
struct Attempt {
    call: String,
    sent: Instant,
    ended: Instant,
}

/// When the attempt in flight was sent (kept in the operation's config bag between the two hooks).
#[derive(Debug, Clone)]
struct Sent(Instant);

impl Storable for Sent {
    type Storer = StoreReplace<Self>;
}

/// The longest chain of attempts each sent after the one before it was answered: the sequential round trips
/// a run waited on, whatever ran beside them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RoundTrips {
    /// The chain's attempts, first to last (`Service Operation`).
    pub chain: Vec<String>,
}

impl RoundTrips {
    pub fn count(&self) -> usize {
        self.chain.len()
    }
}

/// The longest chain of intervals, each starting at or after the end of the one before it.
fn longest_chain(attempts: &[Attempt]) -> RoundTrips {
    let mut order: Vec<usize> = (0..attempts.len()).collect();
    order.sort_by_key(|&i| attempts[i].sent);
    let mut by_end: Vec<usize> = order.clone();
    by_end.sort_by_key(|&i| attempts[i].ended);
    // depth[i]: the longest chain ending with attempt i; before[i]: the attempt before it in that chain.
    let (mut depth, mut before) = (vec![0usize; attempts.len()], vec![None; attempts.len()]);
    let (mut ended, mut best): (usize, Option<usize>) = (0, None);
    for &i in &order {
        while ended < by_end.len() && attempts[by_end[ended]].ended <= attempts[i].sent {
            let j = by_end[ended];
            // On a tie, the one that ended last: what the next attempt was most likely waiting for.
            if best.is_none_or(|b| depth[j] >= depth[b]) {
                best = Some(j);
            }
            ended += 1;
        }
        depth[i] = best.map_or(1, |b| depth[b] + 1);
        before[i] = best;
    }
    let mut chain = Vec::new();
    let mut at = (0..attempts.len()).max_by_key(|&i| depth[i]);
    while let Some(i) = at {
        chain.push(attempts[i].call.clone());
        at = before[i];
    }
    chain.reverse();
    RoundTrips { chain }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallCount {
    pub service: String,
    pub operation: String,
    pub calls: u64,
}

/// How attempts failed in a way the SDK retries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Failed {
    /// Throttled (`Throttling`, `RequestLimitExceeded`, `SlowDown`, 429, ...).
    pub throttled: u64,
    /// Failed transiently: 5xx, a dropped connection, a timed-out attempt, ...
    pub transient: u64,
    /// Of the transient ones, those cut by the attempt (or operation) timeout.
    pub timed_out: u64,
}

impl Stats {
    pub fn counts(&self) -> Vec<CallCount> {
        let map = self.0.calls.lock().expect("stats lock");
        map.iter().map(|((service, operation), calls)| CallCount { service: service.clone(), operation: operation.clone(), calls: *calls }).collect()
    }

    /// Calls of one operation, e.g. `stats.calls("AuthorizeSecurityGroupIngress")`.
    pub fn calls(&self, operation: &str) -> u64 {
        self.0.calls.lock().expect("stats lock").iter().filter(|((_, op), _)| op == operation).map(|(_, n)| n).sum()
    }

    pub fn total(&self) -> u64 {
        self.0.calls.lock().expect("stats lock").values().sum()
    }

    /// Attempts that were throttled or failed transiently, so far.
    pub fn failed(&self) -> Failed {
        Failed {
            throttled: self.0.throttled.load(Ordering::Relaxed),
            transient: self.0.transient.load(Ordering::Relaxed),
            timed_out: self.0.timed_out.load(Ordering::Relaxed),
        }
    }

    /// The waits on the rate budget the clients share.
    pub(crate) fn budget_waits(&self) -> Arc<super::budget::Waits> {
        self.0.waits.clone()
    }

    /// Attempts that waited on the rate budget, and how long they waited in all.
    pub fn waited(&self) -> (u64, std::time::Duration) {
        let w = &self.0.waits;
        (w.attempts.load(Ordering::Relaxed), std::time::Duration::from_micros(w.micros.load(Ordering::Relaxed)))
    }

    /// The sequential round trips so far: the longest chain of attempts each sent after the previous one ended.
    pub fn round_trips(&self) -> RoundTrips {
        longest_chain(&self.0.attempts.lock().expect("stats lock"))
    }

    pub fn reset(&self) {
        self.0.calls.lock().expect("stats lock").clear();
        self.0.attempts.lock().expect("stats lock").clear();
        for n in [&self.0.throttled, &self.0.transient, &self.0.timed_out, &self.0.waits.attempts, &self.0.waits.micros] {
            n.store(0, Ordering::Relaxed);
        }
    }

    /// Counts one attempt's outcome, as the SDK's retry classifiers would judge it.
    fn record(&self, verdict: &RetryAction, timed_out: bool) {
        let counter = match verdict {
            RetryAction::RetryIndicated(RetryReason::RetryableError { kind: ErrorKind::ThrottlingError, .. }) => &self.0.throttled,
            RetryAction::RetryIndicated(_) => &self.0.transient,
            // A timed-out attempt is always transient (the SDK retries it); count it even if no classifier
            // spoke, e.g. when the operation timeout ended the call.
            _ if timed_out => &self.0.transient,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if timed_out {
            self.0.timed_out.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Intercept for Stats {
    fn name(&self) -> &'static str {
        "converge-call-stats"
    }

    // Once per HTTP attempt, so retries count: they cost rate limit like any other call.
    fn read_before_transmit(&self, _: &BeforeTransmitInterceptorContextRef<'_>, _: &RuntimeComponents, cfg: &mut ConfigBag) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            *self.0.calls.lock().expect("stats lock").entry((m.service().to_string(), m.name().to_string())).or_default() += 1;
        }
        cfg.interceptor_state().store_put(Sent(Instant::now()));
        Ok(())
    }

    // Once per attempt, after it ended (a timed-out attempt included): the same classifiers, in the same
    // order, as the retry strategy runs to decide whether to retry it.
    fn read_after_attempt(&self, context: &FinalizerInterceptorContextRef<'_>, components: &RuntimeComponents, cfg: &mut ConfigBag) -> Result<(), BoxError> {
        // An attempt that was sent (one that failed before, a retry's included, has no `Sent` of its own).
        if let (Some(Sent(sent)), Some(m)) = (cfg.load::<Sent>().cloned(), cfg.load::<Metadata>()) {
            let call = format!("{} {}", m.service(), m.name());
            self.0.attempts.lock().expect("stats lock").push(Attempt { call, sent, ended: Instant::now() });
        }
        cfg.interceptor_state().unset::<Sent>();
        let ctx = context.inner();
        let Some(Err(error)) = ctx.output_or_error() else { return Ok(()) };
        let mut verdict = RetryAction::NoActionIndicated;
        for classifier in components.retry_classifiers() {
            let next = classifier.classify_retry_v2(ctx, &verdict);
            if next == RetryAction::NoActionIndicated {
                continue;
            }
            verdict = next;
            if verdict == RetryAction::RetryForbidden {
                break;
            }
        }
        // Cut by the operation timeout (the SDK's), or by the attempt timeout (the paced connector's).
        let timed_out = error.is_timeout_error() || error.as_connector_error().is_some_and(|c| c.is_timeout());
        self.record(&verdict, timed_out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(kind: ErrorKind) -> RetryAction {
        RetryAction::retryable_error(kind)
    }

    #[test]
    fn failed_attempts_are_counted_by_the_kind_the_sdk_retries_them_for() {
        let stats = Stats::default();
        stats.record(&retry(ErrorKind::ThrottlingError), false);
        stats.record(&retry(ErrorKind::ThrottlingError), false);
        stats.record(&retry(ErrorKind::ServerError), false);
        stats.record(&retry(ErrorKind::TransientError), true);
        // A timeout no classifier spoke for is still a transient failure.
        stats.record(&RetryAction::NoActionIndicated, true);
        // Not retried: not a throttled or transient attempt.
        stats.record(&RetryAction::NoActionIndicated, false);
        stats.record(&RetryAction::RetryForbidden, false);
        assert_eq!(stats.failed(), Failed { throttled: 2, transient: 3, timed_out: 2 });
        stats.reset();
        assert_eq!(stats.failed(), Failed::default());
    }

    #[test]
    fn the_round_trips_are_the_longest_chain_of_attempts_each_sent_after_the_last_ended() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + std::time::Duration::from_millis(ms);
        let attempt = |call: &str, sent: u64, ended: u64| Attempt { call: call.into(), sent: at(sent), ended: at(ended) };
        // The identity, then three reads side by side, then one that waited for the slowest, beside a
        // long one that waited for nothing.
        let attempts = [
            attempt("STS GetCallerIdentity", 0, 40),
            attempt("EC2 DescribeVpcs", 40, 80),
            attempt("S3 ListBuckets", 41, 120),
            attempt("EC2 DescribeSecurityGroups", 42, 82),
            attempt("S3 GetBucketVersioning", 120, 160),
            attempt("RDS DescribeDBInstances", 0, 150),
        ];
        let trips = longest_chain(&attempts);
        assert_eq!(trips.chain, ["STS GetCallerIdentity", "S3 ListBuckets", "S3 GetBucketVersioning"]);
        assert_eq!(longest_chain(&[]).count(), 0);
    }
}
