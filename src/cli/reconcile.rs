//! `converge reconcile`: the CLI's reconciler for the library's loop.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::args::ReconcileArgs;
use super::lock;
use super::options;
use crate::apply;
use crate::aws::lock::Guard;
use crate::aws::{Aws, AwsExecutor};
use crate::error::{Class, Classify};
use crate::model::Fleet;
use crate::reconcile;
use crate::reconcile::metrics::{Metrics, State};
use crate::reconcile::queue::Backoffs;
use crate::render;
use crate::render::report_text;
use crate::resource::Address;

/// Why a pass failed, with the class the loop's error policy decides on.
#[derive(Debug)]
struct PassError {
    class: Class,
    message: String,
}

impl PassError {
    fn new(class: Class, message: impl std::fmt::Display) -> PassError {
        PassError { class, message: message.to_string() }
    }
}

impl std::fmt::Display for PassError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Classify for PassError {
    fn class(&self) -> Class {
        self.class
    }
}

/// One reconcile pass: plan, then apply (with --apply) or report.
struct FleetLoop<'a> {
    fleet: &'a Fleet,
    aws: Aws,
    args: &'a ReconcileArgs,
    stop: tokio::sync::watch::Receiver<bool>,
    /// Objects whose change failed, each waiting out its own backoff (the loop's clock: `started`).
    backoffs: std::cell::RefCell<Backoffs>,
    started: Instant,
    metrics: Arc<Metrics>,
    jitter: std::cell::RefCell<reconcile::Jitter>,
}

impl FleetLoop<'_> {
    /// One pass, measured: its result, duration and AWS calls go to the metrics.
    async fn measured_pass(&self) -> Result<reconcile::Action, PassError> {
        let started = Instant::now();
        let result = self.pass().await;
        let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        self.metrics.pass(result.is_ok(), started.elapsed(), Instant::now(), unix);
        let calls = self.aws.stats.counts().into_iter().map(|c| (c.service.to_string(), c.operation.to_string(), c.calls));
        self.metrics.aws(calls, self.aws.stats.failed().throttled);
        result
    }

    /// One pass; with --apply, holding the fleet's lock from before the plan until the apply ends. A lock
    /// held by another applier fails the pass as a conflict (the next pass tries again at the interval).
    async fn pass(&self) -> Result<reconcile::Action, PassError> {
        if !self.args.apply {
            return self.planned_pass(None).await;
        }
        self.aws.stats.reset();
        let guard = match lock::take(self.fleet, &self.aws, "reconcile --apply", self.args.lock_timeout).await {
            Ok(Ok(guard)) => guard,
            Ok(Err(refusal)) => return Err(PassError::new(Class::Conflict, format!("{refusal}; this pass applied nothing"))),
            Err(e) => {
                let class = e.downcast_ref::<crate::aws::AwsError>().map_or(Class::Internal, Classify::class);
                return Err(PassError::new(class, format!("taking the apply lock: {e:#}")));
            }
        };
        let result = self.planned_pass(Some(&guard)).await;
        let lost = guard.lost_reason().await;
        let released = guard.release().await;
        if let Some(reason) = lost {
            return Err(PassError::new(Class::PreconditionFailed, format!("the apply lock was lost: {reason}; no new change was started")));
        }
        if let Err(e) = released {
            return Err(PassError::new(e.class(), format!("releasing the apply lock: {e}")));
        }
        result
    }

    async fn planned_pass(&self, guard: Option<&Guard>) -> Result<reconcile::Action, PassError> {
        if guard.is_none() {
            self.aws.stats.reset();
        }
        let started = Instant::now();
        // A --target that matches nothing stays so until the desired state changes.
        let mut options = options(self.fleet, &self.args.common).map_err(|e| PassError::new(Class::Invalid, format!("{e:#}")))?;
        options.journal = match guard {
            Some(guard) => guard.journal().await,
            None => lock::journal(self.fleet, &self.aws).await,
        };
        let mut planned = crate::planner::plan(&self.aws, self.fleet, &options).await.map_err(|e| PassError::new(e.class(), e))?;
        let now = self.started.elapsed();
        let conflicted: BTreeSet<Address> = planned.plan.conflicts.iter().filter_map(|c| c.address.clone()).collect();
        if self.args.apply {
            self.contain(&mut planned, now);
        }
        self.record_objects(&planned, &conflicted, &BTreeSet::new(), now);
        let plan = &planned.plan;
        // The next pass comes at the interval (less up to 10%, so that the loops of many fleets started
        // together spread out), or sooner when an object's backoff ends first.
        let interval = self.args.interval.mul_f64(1.0 - 0.1 * self.jitter.borrow_mut().sample());
        let next = |backoffs: &Backoffs| {
            let due = backoffs.next_due(self.started.elapsed()).map_or(interval, |d| d.min(interval));
            reconcile::Action::requeue(due)
        };
        let calls = self.aws.stats.total();
        if !plan.held.is_empty() {
            let held: Vec<String> = plan.held.iter().map(|h| format!("{} ({})", h.change.address, h.reason)).collect();
            println!("{} change(s) held by a management policy, never applied: {}", plan.held.len(), held.join(", "));
        }
        if !plan.conflicts.is_empty() {
            // Not transient: waiting the interval is right, backing off is not.
            println!("{} conflict(s) block the plan ({calls} calls); nothing applied:", plan.conflicts.len());
            for c in &plan.conflicts {
                println!("  ! {}", c.message);
            }
            return Ok(next(&self.backoffs.borrow()));
        }
        if plan.is_empty() {
            if let Some(guard) = guard.filter(|_| !plan.journal_settled.is_empty()) {
                apply::Journal::begin(guard, &plan.journal_settled, Vec::new()).await.map_err(|e| PassError::new(e.class, e.message))?;
            }
            println!("no changes to apply ({calls} calls, {:.1}s)", started.elapsed().as_secs_f64());
            return Ok(next(&self.backoffs.borrow()));
        }
        let addresses: Vec<String> = plan.changes.iter().map(|c| c.address.to_string()).collect();
        println!("{} ({calls} calls): {}", render::summary_line(plan), addresses.join(", "));
        if !self.args.apply {
            println!("  not applied: run with --apply to converge");
            return Ok(next(&self.backoffs.borrow()));
        }
        // A pass never blocks on a rolling refresh: the next pass sees it running (observed) until it ends.
        let executor = AwsExecutor::new(self.aws.clone(), &planned.live, &planned.plan).no_wait();
        let mut stop = self.stop.clone();
        let lost = guard.map(Guard::lost);
        let stopped = async move {
            let lost = async move {
                match lost {
                    Some(lost) => lost.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop.wait_for(|s| *s) => {}
                () = lost => {}
            }
        };
        let report = match guard {
            Some(journal) => apply::apply(plan, &apply::Journaled { executor: &executor, journal }, self.args.parallelism.into(), stopped, |_| {}).await,
            None => apply::apply(plan, &executor, self.args.parallelism.into(), stopped, |_| {}).await,
        }
        .map_err(|e| PassError::new(e.class(), e))?;
        print!("{}", report_text(plan, &report));
        // A failed object waits out its own backoff; the others converged (or wait for it).
        let mut backoffs = self.backoffs.borrow_mut();
        let now = self.started.elapsed();
        for a in &report.applied {
            backoffs.succeeded(a);
            self.metrics.reconciled(a.kind, None);
        }
        for (a, e) in &report.failed {
            self.metrics.reconciled(a.kind, Some(e.class()));
            let wait = backoffs.failed(a, e.class(), now);
            let failures = backoffs.get(a).map_or(1, |b| b.failures);
            println!("  {a}: backing off {:.1}s after {failures} failure(s) ({})", wait.as_secs_f64(), e.class());
        }
        drop(backoffs);
        // The pass's end state: what it applied converged, what failed waits out its backoff.
        self.record_objects(&planned, &conflicted, &report.applied.iter().cloned().collect(), now);
        Ok(next(&self.backoffs.borrow()))
    }

    /// Each object's state at the end of the plan, by kind, for `converge_objects`.
    fn record_objects(&self, planned: &crate::planner::Planned, conflicted: &BTreeSet<Address>, applied: &BTreeSet<Address>, now: Duration) {
        let plan = &planned.plan;
        let backoff = self.backoffs.borrow().waiting(now);
        let changed: BTreeSet<&Address> = plan.changes.iter().map(|c| &c.address).collect();
        let held: BTreeSet<&Address> = plan.held.iter().map(|h| &h.change.address).collect();
        let all: BTreeSet<&Address> = planned.desired.keys().chain(changed.iter().copied()).chain(held.iter().copied()).collect();
        let mut counts: BTreeMap<(crate::resource::Kind, State), i64> = BTreeMap::new();
        for a in all {
            let state = if conflicted.contains(a) {
                State::Conflicted
            } else if backoff.contains_key(a) {
                State::Backoff
            } else if held.contains(a) {
                State::Held
            } else if changed.contains(a) && !applied.contains(a) {
                State::Drifted
            } else {
                State::Converged
            };
            *counts.entry((a.kind, state)).or_default() += 1;
        }
        self.metrics.objects(&counts, plan.changes.len());
    }

    /// Contains what cannot be applied now to itself and what depends on it: the objects of conflicts
    /// (reported every pass until resolved) and those in backoff are held, so that everything else
    /// converges. A conflict of the whole plan (the delete limit) still blocks the pass.
    fn contain(&self, planned: &mut crate::planner::Planned, now: Duration) {
        let plan = &mut planned.plan;
        let mut reasons: BTreeMap<Address, String> =
            plan.conflicts.iter().filter_map(|c| Some((c.address.clone()?, format!("conflict: {}", c.message)))).collect();
        let changed: BTreeSet<&Address> = plan.changes.iter().map(|c| &c.address).collect();
        reasons.extend(self.backoffs.borrow().waiting(now).into_iter().filter(|(a, _)| changed.contains(a)));
        for c in plan.conflicts.iter().filter(|c| c.address.is_some()) {
            println!("conflict, held until resolved: {}: {}", c.address.as_ref().map(ToString::to_string).unwrap_or_default(), c.message);
        }
        crate::plan::withhold(plan, &planned.desired, reasons);
        plan.conflicts.retain(|c| c.address.is_none());
    }
}

impl reconcile::Reconcile for FleetLoop<'_> {
    type Error = PassError;
    fn reconcile(&self) -> reconcile::PassFuture<'_, Result<reconcile::Action, PassError>> {
        Box::pin(self.measured_pass())
    }
}

pub(super) async fn reconcile(fleet: &Fleet, args: ReconcileArgs) -> Result<ExitCode> {
    let aws = Aws::connect(&fleet.settings.region).await?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    // SIGTERM (a service manager's stop) and Ctrl-C alike: the changes running finish, nothing new starts,
    // and the loop ends after the pass.
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => drop(s.recv().await),
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            r = tokio::signal::ctrl_c() => if r.is_err() { return },
            () = terminate => {}
        }
        eprintln!("Stop requested: the changes running finish, then the loop stops.");
        let _ = tx.send(true);
    });
    let mode = if args.apply { "converging" } else { "reporting" };
    println!("reconciling fleet {} every {}s ({mode}); SIGTERM or Ctrl-C stops after the current pass", fleet.settings.name, args.interval.as_secs());
    // Throttled or transient: back off from 5 s; anything else waits the regular interval.
    let policy = reconcile::ErrorPolicy { base: Duration::from_secs(5), max: args.interval, interval: args.interval };
    // Each object backs off on its own, from 1 s up to the interval (at most a minute).
    let per_object = reconcile::ErrorPolicy { base: Duration::from_secs(1), max: args.interval.min(Duration::from_secs(60)), interval: args.interval };
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    let backoffs = std::cell::RefCell::new(Backoffs::new(per_object, seed));
    let metrics = Arc::new(Metrics::new());
    if let Some(addr) = &args.listen {
        let bound = super::serve::serve(addr, metrics.clone(), args.interval).await?;
        println!("serving /metrics, /healthz and /readyz on http://{bound}");
    }
    let jitter = std::cell::RefCell::new(reconcile::Jitter::new(seed.rotate_left(17)));
    let this = FleetLoop { fleet, aws, args: &args, stop: rx.clone(), backoffs, started: Instant::now(), metrics, jitter };
    let mut stop = rx;
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    reconcile::run(&this, policy, stopped, |pass| match pass {
        reconcile::Pass::Done { next } => println!("  next pass in {}s", next.as_secs()),
        reconcile::Pass::Failed { error, class, failures, next } => {
            eprintln!("pass failed ({failures} in a row, {class}): {error}");
            if class.retryable() {
                eprintln!("  retrying in {:.1}s", next.as_secs_f64());
            } else {
                eprintln!("  not retryable: next pass in {:.1}s", next.as_secs_f64());
            }
        }
    })
    .await;
    Ok(ExitCode::SUCCESS)
}
