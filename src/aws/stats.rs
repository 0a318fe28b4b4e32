//! Counting API calls: an SDK interceptor that records every HTTP attempt by service and operation, and how
//! many attempts were throttled or failed transiently (timeouts included), as the SDK's retry classifiers
//! judged them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction, RetryReason};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
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

    pub fn reset(&self) {
        self.0.calls.lock().expect("stats lock").clear();
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
        Ok(())
    }

    // Once per attempt, after it ended (a timed-out attempt included): the same classifiers, in the same
    // order, as the retry strategy runs to decide whether to retry it.
    fn read_after_attempt(&self, context: &FinalizerInterceptorContextRef<'_>, components: &RuntimeComponents, _: &mut ConfigBag) -> Result<(), BoxError> {
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
}
