//! The level-triggered loop (the shape of kube-rs's controller runtime): observe, plan, apply or report,
//! requeue. [`Reconcile::reconcile`] returns an [`Action`] (when to look again); a separate
//! [`ErrorPolicy`] decides the wait after a failure, on the failure's [`Class`]: a retryable one (throttled,
//! transient) backs off (jittered, exponential, capped); any other (denied, invalid, conflict, ...) cannot be
//! fixed by trying again soon, and waits the normal interval. One loop owns the whole fleet, so two
//! reconciles of the same object never run at once.

pub mod chat;
pub mod event;
pub mod metrics;
pub mod queue;

use std::future::Future;
use std::time::Duration;

use crate::error::{Class, Classify};

/// A pass runs on the loop's own task, so its future need not be `Send`.
pub type PassFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + 'a>>;

/// What the loop does next after a successful reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    pub requeue_after: Duration,
}

impl Action {
    pub fn requeue(after: Duration) -> Action {
        Action { requeue_after: after }
    }
}

/// One pass over the fleet. Implemented by the CLI on top of `planner::plan` and `apply::apply`; by a fake
/// in tests.
pub trait Reconcile {
    /// What a failed pass says, and its class (whether trying again soon may help).
    type Error: std::fmt::Display + Classify;
    fn reconcile(&self) -> PassFuture<'_, Result<Action, Self::Error>>;
}

/// The wait after a failed pass. After the `n`-th consecutive retryable failure (throttled, transient):
/// `base * 2^(n-1)`, capped at `max`, with up to 20% jitter taken off so that many loops restarted together
/// do not hit the API in step. After a failure of any other class: `interval`, the loop's normal wait,
/// since retrying sooner cannot fix it (and it restarts the backoff).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorPolicy {
    pub base: Duration,
    pub max: Duration,
    pub interval: Duration,
}

impl ErrorPolicy {
    /// The wait after a failure of `class`, the `retries`-th retryable one in a row (1-based).
    pub fn wait(&self, class: Class, retries: u32, jitter: f64) -> Duration {
        if class.retryable() { self.backoff(retries, jitter) } else { self.interval }
    }

    /// The wait after the `failures`-th consecutive failure (1-based); `jitter` in [0, 1).
    pub fn backoff(&self, failures: u32, jitter: f64) -> Duration {
        let exp = self.base.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)));
        let capped = exp.min(self.max);
        capped.mul_f64(1.0 - 0.2 * jitter.clamp(0.0, 1.0))
    }
}

/// What happened in one pass, for the caller to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pass {
    Done { next: Duration },
    Failed { error: String, class: Class, failures: u32, next: Duration },
}

/// A source of jitter in [0, 1): what spreads retries and passes.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    pub fn new(seed: u64) -> Jitter {
        Jitter(seed | 1)
    }

    pub fn sample(&mut self) -> f64 {
        jitter(&mut self.0)
    }
}

/// A cheap, dependency-free jitter source; quality does not matter here, spreading does.
fn jitter(seed: &mut u64) -> f64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed % 10_000) as f64 / 10_000.0
}

/// Runs passes until `stop` completes. A pass is never cut off half-way (an apply inside it has its own
/// way to stop cleanly); `stop` ends the wait between passes. `on_pass` sees each pass.
pub async fn run<R: Reconcile>(reconciler: &R, policy: ErrorPolicy, stop: impl Future<Output = ()>, mut on_pass: impl FnMut(&Pass)) {
    let mut stop = std::pin::pin!(stop);
    let mut failures = 0u32;
    // Consecutive retryable failures: the backoff's exponent.
    let mut retries = 0u32;
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0x9E37_79B9, |d| d.as_nanos() as u64) | 1;
    loop {
        let pass = match reconciler.reconcile().await {
            Ok(action) => {
                failures = 0;
                retries = 0;
                Pass::Done { next: action.requeue_after }
            }
            Err(e) => {
                failures += 1;
                let class = e.class();
                retries = if class.retryable() { retries + 1 } else { 0 };
                Pass::Failed { error: e.to_string(), class, failures, next: policy.wait(class, retries, jitter(&mut seed)) }
            }
        };
        on_pass(&pass);
        let wait = match pass {
            Pass::Done { next } | Pass::Failed { next, .. } => next,
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = &mut stop => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jitter_only_shortens() {
        let p = ErrorPolicy { base: Duration::from_secs(1), max: Duration::from_secs(60), interval: Duration::from_secs(300) };
        assert_eq!(p.backoff(1, 0.0), Duration::from_secs(1));
        assert_eq!(p.backoff(4, 0.0), Duration::from_secs(8));
        assert_eq!(p.backoff(30, 0.0), Duration::from_secs(60));
        assert_eq!(p.backoff(4, 0.999), Duration::from_secs(8).mul_f64(1.0 - 0.2 * 0.999));
    }

    #[test]
    fn only_a_retryable_class_backs_off_the_others_wait_the_interval() {
        let p = ErrorPolicy { base: Duration::from_secs(1), max: Duration::from_secs(60), interval: Duration::from_secs(300) };
        assert_eq!(p.wait(Class::Throttled, 3, 0.0), Duration::from_secs(4));
        assert_eq!(p.wait(Class::Transient, 1, 0.0), Duration::from_secs(1));
        for permanent in [Class::Denied, Class::Invalid, Class::Conflict, Class::NotFound, Class::Failed, Class::Internal] {
            assert_eq!(p.wait(permanent, 1, 0.5), Duration::from_secs(300), "{permanent:?}");
        }
    }

    /// A failure in tests: its class and its words.
    #[derive(Debug, Clone)]
    struct Oops(Class, &'static str);

    impl std::fmt::Display for Oops {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.1)
        }
    }

    impl Classify for Oops {
        fn class(&self) -> Class {
            self.0
        }
    }

    struct Script(Mutex<Vec<Result<Action, Oops>>>);

    impl Reconcile for Script {
        type Error = Oops;
        fn reconcile(&self) -> PassFuture<'_, Result<Action, Oops>> {
            let next = self.0.lock().unwrap().remove(0);
            Box::pin(async move { next })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_and_success_resets_them() {
        let ms = Duration::from_millis;
        let throttled = || Err(Oops(Class::Throttled, "throttled"));
        let script = Script(Mutex::new(vec![throttled(), throttled(), Ok(Action::requeue(ms(500))), throttled()]));
        let policy = ErrorPolicy { base: ms(100), max: ms(1000), interval: ms(5000) };
        let mut passes = Vec::new();
        let stop = tokio::time::sleep(ms(100 + 200 + 500 + 1));
        run(&script, policy, stop, |p| passes.push(p.clone())).await;
        assert_eq!(passes.len(), 4, "{passes:?}");
        assert!(matches!(&passes[1], Pass::Failed { failures: 2, next, .. } if *next <= ms(200) && *next >= ms(160)));
        assert_eq!(passes[2], Pass::Done { next: ms(500) });
        assert!(matches!(&passes[3], Pass::Failed { failures: 1, .. }), "a success resets the count: {passes:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_waits_the_interval_and_restarts_the_backoff() {
        let ms = Duration::from_millis;
        let throttled = || Err(Oops(Class::Throttled, "throttled"));
        let script = Script(Mutex::new(vec![throttled(), throttled(), Err(Oops(Class::Denied, "denied")), throttled()]));
        let policy = ErrorPolicy { base: ms(100), max: ms(1000), interval: ms(5000) };
        let mut passes = Vec::new();
        let stop = tokio::time::sleep(ms(100 + 200 + 5000 + 1));
        run(&script, policy, stop, |p| passes.push(p.clone())).await;
        assert_eq!(passes.len(), 4, "{passes:?}");
        assert!(matches!(&passes[1], Pass::Failed { class: Class::Throttled, failures: 2, next, .. } if *next >= ms(160)), "{passes:?}");
        assert!(matches!(&passes[2], Pass::Failed { class: Class::Denied, failures: 3, next, .. } if *next == ms(5000)), "{passes:?}");
        assert!(matches!(&passes[3], Pass::Failed { failures: 4, next, .. } if *next <= ms(100)), "the backoff starts again: {passes:?}");
    }
}
