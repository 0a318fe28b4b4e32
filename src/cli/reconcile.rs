//! `converge reconcile`: the CLI's reconciler for the library's loop.

use std::cell::{Cell, RefCell};
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
use crate::reconcile::chat::{self, Chat};
use crate::reconcile::event::{Event, LogFormat, PassSummary};
use crate::reconcile::metrics::{Metrics, State};
use crate::reconcile::queue::{Backoffs, Schedule};
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

/// Writes the loop's events in its log format, and posts its chat messages.
struct Log {
    format: LogFormat,
    fleet: String,
    webhook: Option<String>,
}

impl Log {
    fn emit(&self, event: Event<'_>) {
        let ts = if self.format == LogFormat::Json {
            aws_smithy_types::DateTime::from(std::time::SystemTime::now()).fmt(aws_smithy_types::date_time::Format::DateTime).unwrap_or_default()
        } else {
            String::new()
        };
        for line in event.lines(self.format, &ts, &self.fleet) {
            if line.stderr {
                eprintln!("{}", line.text);
            } else {
                println!("{}", line.text);
            }
        }
    }

    /// Posts `message` to the webhook, if there is one and something to say; a failure is logged, and
    /// changes nothing of the pass.
    async fn post(&self, message: Option<String>) {
        let (Some(url), Some(text)) = (&self.webhook, message) else { return };
        if let Err(e) = super::webhook::post_text(url, &text).await {
            self.emit(Event::WebhookFailed { error: &e.to_string() });
        }
    }
}

/// One reconcile pass: plan, then apply (with --apply) or report.
struct FleetLoop<'a> {
    fleet: &'a Fleet,
    aws: Aws,
    args: &'a ReconcileArgs,
    stop: tokio::sync::watch::Receiver<bool>,
    /// Objects whose change failed, each waiting out its own backoff (the loop's clock: `started`).
    backoffs: RefCell<Backoffs>,
    /// Objects with a `reconcile_every`, and when each was last reconciled.
    schedule: RefCell<Schedule>,
    started: Instant,
    metrics: Arc<Metrics>,
    jitter: RefCell<reconcile::Jitter>,
    log: Log,
    chat: RefCell<Chat>,
    /// The person and machine running the loop, for chat messages.
    by: String,
    /// The account, once a pass has learned it.
    account: RefCell<String>,
    /// The current pass's number and what it did.
    pass: Cell<u64>,
    summary: Cell<PassSummary>,
}

impl FleetLoop<'_> {
    /// Posts what `say` has to say to the webhook (if any): who acts, on which fleet, is the first line.
    async fn tell(&self, say: impl FnOnce(&mut Chat, &chat::Who<'_>) -> Option<String>) {
        let account = self.account.borrow().clone();
        let who = chat::Who {
            command: "reconcile",
            fleet: &self.fleet.settings.name,
            account: &account,
            region: &self.aws.region,
            by: &self.by,
            caller: self.aws.caller(),
        };
        let message = say(&mut self.chat.borrow_mut(), &who);
        self.log.post(message).await;
    }

    /// One pass, measured: its result, duration and AWS calls go to the metrics; a run of failed passes
    /// is said in chat when it starts and when it ends.
    async fn measured_pass(&self) -> Result<reconcile::Action, PassError> {
        let started = Instant::now();
        self.pass.set(self.pass.get() + 1);
        self.summary.set(PassSummary::default());
        self.log.emit(Event::PassStarted { pass: self.pass.get() });
        let result = self.pass().await;
        let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        self.metrics.pass(result.is_ok(), started.elapsed(), Instant::now(), unix);
        let calls = self.aws.stats.counts().into_iter().map(|c| (c.service.to_string(), c.operation.to_string(), c.calls));
        self.metrics.aws(calls, self.aws.stats.failed().throttled);
        self.summary.set(PassSummary { calls: self.aws.stats.total(), elapsed: started.elapsed(), ..self.summary.get() });
        match &result {
            Ok(_) => self.tell(|chat, who| chat.pass_ok(who)).await,
            Err(e) => self.tell(|chat, who| chat.pass_failed(who, e.class, &e.message)).await,
        }
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
        // Applying, what cannot be applied now holds back only itself and what needs it: conflicts of one
        // object, objects in backoff, objects whose `reconcile_every` has not come round.
        let now = self.started.elapsed();
        if self.args.apply {
            let mut held = self.backoffs.borrow().waiting(now);
            for (a, why) in self.schedule.borrow().not_due(now) {
                held.entry(a).or_insert(why);
            }
            options.contain = Some(held);
        }
        options.journal = match guard {
            Some(guard) => guard.journal().await,
            None => lock::journal(self.fleet, &self.aws).await,
        };
        let mut planned = crate::planner::plan(&self.aws, self.fleet, &options).await.map_err(|e| PassError::new(e.class(), e))?;
        self.account.replace(planned.account.clone());
        let conflicted: BTreeSet<Address> = planned.plan.conflicts.iter().filter_map(|c| c.address.clone()).collect();
        if self.args.apply {
            // Held by the plan (with what needs them): reported every pass until resolved.
            for conflict in planned.plan.conflicts.iter().filter(|c| c.address.is_some()) {
                self.log.emit(Event::ConflictHeld { conflict });
            }
            planned.plan.conflicts.retain(|c| c.address.is_none());
        }
        let plan = &planned.plan;
        self.summary.set(PassSummary { changes: plan.changes.len(), held: plan.held.len(), conflicts: plan.conflicts.len(), ..self.summary.get() });
        // The next pass comes at the interval (less up to 10%, so that the loops of many fleets started
        // together spread out), or sooner when an object's backoff ends or its `reconcile_every` comes round.
        let interval = self.args.interval.mul_f64(1.0 - 0.1 * self.jitter.borrow_mut().sample());
        let next = || {
            let now = self.started.elapsed();
            let due = [self.backoffs.borrow().next_due(now), self.schedule.borrow().next_due(now)].into_iter().flatten().min();
            reconcile::Action::requeue(due.map_or(interval, |d| d.min(interval)))
        };
        let calls = self.aws.stats.total();
        self.log.emit(Event::Held { held: &plan.held });
        if !plan.conflicts.is_empty() {
            self.record_objects(&planned, &conflicted, &BTreeSet::new(), now);
            self.log.emit(Event::Blocked { conflicts: &plan.conflicts, calls });
            return Ok(next());
        }
        // Converged this pass: no change, none held, no conflict.
        let unchanged = |a: &Address| plan.change(a).is_none() && !plan.held.iter().any(|h| &h.change.address == a) && !conflicted.contains(a);
        // An object in backoff that has converged since (fixed by hand, or its change left the plan) is
        // out of its backoff; chat hears it recovered.
        let settled: Vec<Address> = self.backoffs.borrow().addresses().filter(|a| unchanged(a)).cloned().collect();
        if !settled.is_empty() {
            for a in &settled {
                self.backoffs.borrow_mut().succeeded(a);
            }
            self.tell(|chat, who| chat.settled(who, &settled)).await;
        }
        self.record_objects(&planned, &conflicted, &BTreeSet::new(), now);
        if plan.is_empty() {
            if let Some(guard) = guard.filter(|_| !plan.journal_settled.is_empty()) {
                apply::Journal::begin(guard, &plan.journal_settled, Vec::new()).await.map_err(|e| PassError::new(e.class, e.message))?;
            }
            self.log.emit(Event::NoChanges { calls, elapsed: started.elapsed() });
            self.schedule.borrow_mut().reconciled(planned.desired.keys().filter(|a| unchanged(a)), now);
            return Ok(next());
        }
        self.log.emit(Event::Planned { plan, calls, applying: self.args.apply });
        if !self.args.apply {
            return Ok(next());
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
        self.log.emit(Event::Applied { plan, report: &report });
        self.summary.set(PassSummary { applied: report.applied.len(), failed: report.failed.len(), ..self.summary.get() });
        // A failed object waits out its own backoff; the others converged (or wait for it).
        let now = self.started.elapsed();
        let mut waits = Vec::new();
        {
            let mut backoffs = self.backoffs.borrow_mut();
            for a in &report.applied {
                backoffs.succeeded(a);
                self.metrics.reconciled(a.kind, None);
            }
            for (a, e) in &report.failed {
                self.metrics.reconciled(a.kind, Some(e.class()));
                let wait = backoffs.failed(a, e.class(), now);
                waits.push((a, wait, backoffs.get(a).map_or(1, |b| b.failures), e.class()));
            }
        }
        let reconciled = planned.desired.keys().filter(|a| unchanged(a)).chain(&report.applied);
        self.schedule.borrow_mut().reconciled(reconciled, now);
        // The pass's end state (what it applied converged, what failed waits out its backoff), in the
        // metrics before the log says it.
        self.record_objects(&planned, &conflicted, &report.applied.iter().cloned().collect(), now);
        for (address, wait, failures, class) in waits {
            self.log.emit(Event::Backoff { address, wait, failures, class });
        }
        self.tell(|chat, who| chat.pass(who, plan, &report, &self.backoffs.borrow())).await;
        Ok(next())
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
}

impl reconcile::Reconcile for FleetLoop<'_> {
    type Error = PassError;
    fn reconcile(&self) -> reconcile::PassFuture<'_, Result<reconcile::Action, PassError>> {
        Box::pin(self.measured_pass())
    }
}

pub(super) async fn reconcile(fleet: &Fleet, args: ReconcileArgs) -> Result<ExitCode> {
    let aws = Aws::connect(&fleet.settings.region).await?;
    let log = Log { format: args.log_format, fleet: fleet.settings.name.clone(), webhook: args.webhook.clone() };
    let (tx, rx) = tokio::sync::watch::channel(false);
    // SIGTERM (a service manager's stop) and Ctrl-C alike: the changes running finish, nothing new starts,
    // and the loop ends after the pass.
    let format = args.log_format;
    let name = fleet.settings.name.clone();
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
        Log { format, fleet: name, webhook: None }.emit(Event::Stopping);
        let _ = tx.send(true);
    });
    log.emit(Event::Started { interval: args.interval, applying: args.apply });
    // Throttled or transient: back off from 5 s; anything else waits the regular interval.
    let policy = reconcile::ErrorPolicy { base: Duration::from_secs(5), max: args.interval, interval: args.interval };
    // Each object backs off on its own, from 1 s up to the interval (at most a minute).
    let per_object = reconcile::ErrorPolicy { base: Duration::from_secs(1), max: args.interval.min(Duration::from_secs(60)), interval: args.interval };
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    let metrics = Arc::new(Metrics::new());
    if let Some(addr) = &args.listen {
        let bound = super::serve::serve(addr, metrics.clone(), args.interval).await?;
        log.emit(Event::Listening { addr: bound.to_string() });
    }
    let holder = lock::holder();
    let this = FleetLoop {
        fleet,
        aws,
        args: &args,
        stop: rx.clone(),
        backoffs: RefCell::new(Backoffs::new(per_object, seed)),
        schedule: RefCell::new(Schedule::new(crate::resource::policies(fleet).reconcile_every)),
        started: Instant::now(),
        metrics,
        jitter: RefCell::new(reconcile::Jitter::new(seed.rotate_left(17))),
        log,
        chat: RefCell::new(Chat::default()),
        by: format!("{}@{}", holder.user, holder.host),
        account: RefCell::new(String::new()),
        pass: Cell::new(0),
        summary: Cell::new(PassSummary::default()),
    };
    let mut stop = rx;
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    reconcile::run(&this, policy, stopped, |pass| match pass {
        reconcile::Pass::Done { next } => this.log.emit(Event::PassEnded { pass: this.pass.get(), summary: this.summary.get(), next: *next }),
        reconcile::Pass::Failed { error, class, failures, next } => {
            this.log.emit(Event::PassFailed { pass: this.pass.get(), error, class: *class, failures: *failures, next: *next })
        }
    })
    .await;
    Ok(ExitCode::SUCCESS)
}
