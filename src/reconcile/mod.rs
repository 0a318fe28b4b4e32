//! The level-triggered loop (the shape of kube-rs's controller runtime): observe, plan, apply or report,
//! requeue. [`Reconcile::reconcile`] returns an [`Action`] (when to look again); a separate
//! [`ErrorPolicy`] decides the backoff after a failure (jittered, exponential, capped). One loop owns the
//! whole fleet, so two reconciles of the same object never run at once.

use std::future::Future;
use std::time::Duration;

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
    type Error: std::fmt::Display;
    fn reconcile(&self) -> PassFuture<'_, Result<Action, Self::Error>>;
}

/// Backoff after consecutive failures: `base * 2^(n-1)`, capped at `max`, with up to 20% jitter taken off
/// so that many loops restarted together do not hit the API in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorPolicy {
    pub base: Duration,
    pub max: Duration,
}

impl ErrorPolicy {
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
    Failed { error: String, failures: u32, next: Duration },
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
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0x9E37_79B9, |d| d.as_nanos() as u64) | 1;
    loop {
        let pass = match reconciler.reconcile().await {
            Ok(action) => {
                failures = 0;
                Pass::Done { next: action.requeue_after }
            }
            Err(e) => {
                failures += 1;
                Pass::Failed { error: e.to_string(), failures, next: policy.backoff(failures, jitter(&mut seed)) }
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
        let p = ErrorPolicy { base: Duration::from_secs(1), max: Duration::from_secs(60) };
        assert_eq!(p.backoff(1, 0.0), Duration::from_secs(1));
        assert_eq!(p.backoff(4, 0.0), Duration::from_secs(8));
        assert_eq!(p.backoff(30, 0.0), Duration::from_secs(60));
        assert_eq!(p.backoff(4, 0.999), Duration::from_secs(8).mul_f64(1.0 - 0.2 * 0.999));
    }

    struct Script(Mutex<Vec<Result<Action, String>>>);

    impl Reconcile for Script {
        type Error = String;
        fn reconcile(&self) -> PassFuture<'_, Result<Action, String>> {
            let next = self.0.lock().unwrap().remove(0);
            Box::pin(async move { next })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_and_success_resets_them() {
        let ms = Duration::from_millis;
        let script = Script(Mutex::new(vec![Err("throttled".into()), Err("throttled".into()), Ok(Action::requeue(ms(500))), Err("again".into())]));
        let policy = ErrorPolicy { base: ms(100), max: ms(1000) };
        let mut passes = Vec::new();
        let stop = tokio::time::sleep(ms(100 + 200 + 500 + 1));
        run(&script, policy, stop, |p| passes.push(p.clone())).await;
        assert_eq!(passes.len(), 4, "{passes:?}");
        assert!(matches!(&passes[1], Pass::Failed { failures: 2, next, .. } if *next <= ms(200) && *next >= ms(160)));
        assert_eq!(passes[2], Pass::Done { next: ms(500) });
        assert!(matches!(&passes[3], Pass::Failed { failures: 1, .. }), "a success resets the count: {passes:?}");
    }
}
