//! Apply: executes exactly a plan's changes, in dependency order, independent ones concurrently up to a
//! bound. It never re-diffs. A failed change stops the changes that wait for it; independent work finishes;
//! the [`Report`] says what was applied, what failed and what was not attempted, and why.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use serde::Serialize;

use crate::error::{Class, Classify, Failure};
use crate::lock::JournalEntry;
use crate::plan::{Action, Change, Node, Plan, graph};
use crate::resource::{Address, Op};

/// A change that failed part-way: `done` of its `total` operations were applied before `error` (its class,
/// the API call and resource, AWS's code, the words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{error}")]
pub struct ChangeError {
    pub done: usize,
    pub total: usize,
    pub error: Failure,
}

impl Classify for ChangeError {
    fn class(&self) -> Class {
        self.error.class
    }
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Carries out operations of one change (the AWS provider; a recording fake in unit tests). A change
/// arrives in one or two calls, one per phase (`Change::ops`, then `Change::then`).
pub trait Executor: Sync {
    fn execute<'a>(&'a self, change: &'a Change, ops: &'a [Op]) -> BoxFuture<'a, Result<(), ChangeError>>;

    /// Whether the secret an operation reads when it runs ([`Op::reads_env`], a master password) is there
    /// to be read. Asked for every such secret before the first call (see [`preflight`]).
    fn has_secret(&self, var: &str) -> bool;

    /// Where creates are recorded before they start (the lock's intent journal); `None`: nowhere (tests).
    fn journal(&self) -> Option<&dyn Journal> {
        None
    }
}

/// The intent journal, as the scheduler uses it: every object the apply may create under a name is
/// recorded, durably, before its first call, and cleared once it is complete, so that an object a crash or
/// a lost response left without its tags is still recognised as this fleet's (see `plan`'s adopt).
pub trait Journal: Sync {
    /// Makes the journal what it held, without `settled`, plus `entries`; written durably before it returns.
    fn begin<'a>(&'a self, settled: &'a [JournalEntry], entries: Vec<JournalEntry>) -> BoxFuture<'a, Result<(), Failure>>;
    /// Clears the entry of a create that completed, or never started. It need not be written at once: an
    /// entry for an object that carries its tags changes nothing.
    fn done(&self, address: &Address);
}

/// An executor whose creates are recorded in `journal` (the lock the apply holds).
pub struct Journaled<'a> {
    pub executor: &'a dyn Executor,
    pub journal: &'a dyn Journal,
}

impl Executor for Journaled<'_> {
    fn execute<'a>(&'a self, change: &'a Change, ops: &'a [Op]) -> BoxFuture<'a, Result<(), ChangeError>> {
        self.executor.execute(change, ops)
    }

    fn has_secret(&self, var: &str) -> bool {
        self.executor.has_secret(var)
    }

    fn journal(&self) -> Option<&dyn Journal> {
        Some(self.journal)
    }
}

/// Progress, for the terminal or a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Started {
        address: Address,
        action: Action,
    },
    Finished {
        address: Address,
        action: Action,
        elapsed: Duration,
    },
    Failed {
        address: Address,
        action: Action,
        error: ChangeError,
    },
    Skipped {
        address: Address,
        because: Address,
    },
    /// The stop signal arrived: nothing new starts; what runs finishes.
    Stopping {
        running: usize,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub applied: Vec<Address>,
    pub failed: Vec<(Address, ChangeError)>,
    /// Not attempted, with the failed change it waited for.
    pub skipped: Vec<(Address, Address)>,
    /// Not started (or only partly done) because the run was stopped.
    pub cancelled: Vec<Address>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && self.cancelled.is_empty()
    }

    /// The class of the apply's failures taken together ([`Class::of_all`]: retryable only if every failure
    /// is); `None` when nothing failed.
    pub fn class(&self) -> Option<Class> {
        Class::of_all(self.failed.iter().map(|(_, e)| e.class()))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApplyError {
    #[error("the plan has {0} conflict(s); nothing was applied")]
    Conflicts(usize),
    /// Creating a database reads its master password: one that is missing would fail that change half-way
    /// through the apply, with the rest applied around it.
    #[error("creating a database needs its master password in {}; nothing was applied", .0.iter().map(|v| format!("${v}")).collect::<Vec<_>>().join(", "))]
    MissingSecrets(Vec<String>),
    /// The creates could not be recorded in the journal before the first call: nothing was started.
    #[error("recording the creates in the lock's journal failed, so nothing was applied: {0}")]
    Journal(Failure),
}

impl Classify for ApplyError {
    fn class(&self) -> Class {
        match self {
            // Neither goes away by itself: a person resolves the conflict or sets the variable.
            ApplyError::Conflicts(_) => Class::Conflict,
            ApplyError::MissingSecrets(_) => Class::Invalid,
            ApplyError::Journal(f) => f.class,
        }
    }
}

/// What must hold before an apply makes its first call: no conflicts, and every secret the plan's
/// operations read is there (`has_secret`). [`apply`] checks it; the CLI also checks it before asking for
/// confirmation, so that nobody confirms an apply that cannot run.
pub fn preflight(plan: &Plan, has_secret: impl Fn(&str) -> bool) -> Result<(), ApplyError> {
    if !plan.conflicts.is_empty() {
        return Err(ApplyError::Conflicts(plan.conflicts.len()));
    }
    let missing: Vec<String> = plan.password_vars().into_iter().filter(|v| !has_secret(v)).map(str::to_string).collect();
    if !missing.is_empty() {
        return Err(ApplyError::MissingSecrets(missing));
    }
    Ok(())
}

/// Applies `plan` through `executor`, at most `parallelism` operation lists at a time. When `stop`
/// completes (Ctrl-C), nothing new starts and what is running finishes: no call is cut off half-way.
pub async fn apply(
    plan: &Plan,
    executor: &dyn Executor,
    parallelism: usize,
    stop: impl Future<Output = ()>,
    mut on_event: impl FnMut(Event),
) -> Result<Report, ApplyError> {
    preflight(plan, |var| executor.has_secret(var))?;
    let parallelism = parallelism.max(1);
    let changes: BTreeMap<&Address, &Change> = plan.changes.iter().map(|c| (&c.address, c)).collect();
    let mut pending: BTreeMap<Node<'_>, Vec<Node<'_>>> = graph(&plan.changes).into_iter().collect();
    let mut done: BTreeSet<Node<'_>> = BTreeSet::new();
    // Failed or skipped addresses, with the failure at the root.
    let mut blocked: BTreeMap<&Address, &Address> = BTreeMap::new();
    let mut started: BTreeMap<&Address, Instant> = BTreeMap::new();
    let mut report = Report::default();
    let mut running = FuturesUnordered::new();
    let mut stop = std::pin::pin!(stop);
    // A stop that has already come (a lost lock, Ctrl-C before the first change) starts nothing.
    let mut stopping = stop.as_mut().now_or_never().is_some();
    if stopping {
        on_event(Event::Stopping { running: 0 });
    }
    // Every object this apply may create, recorded before the first call; cleared as each completes.
    let creates: BTreeSet<&Address> = plan.changes.iter().filter(|c| c.action.creates()).map(|c| &c.address).collect();
    let journal = executor.journal().filter(|_| !stopping);
    if let Some(j) = journal {
        let entries = plan.changes.iter().filter(|c| c.action.creates()).map(|c| JournalEntry { address: c.address.to_string(), aws_name: c.name.clone() });
        j.begin(&plan.journal_settled, entries.collect()).await.map_err(ApplyError::Journal)?;
    }

    loop {
        // Skip whatever waits on a failure, transitively, before starting anything new.
        loop {
            let newly: Vec<(Node<'_>, &Address)> =
                pending.iter().filter_map(|(n, waits)| waits.iter().find_map(|w| blocked.get(w.address)).map(|root| (*n, *root))).collect();
            if newly.is_empty() {
                break;
            }
            for (n, root) in newly {
                pending.remove(&n);
                if !blocked.contains_key(n.address) {
                    blocked.insert(n.address, root);
                    report.skipped.push((n.address.clone(), root.clone()));
                    on_event(Event::Skipped { address: n.address.clone(), because: root.clone() });
                }
            }
        }
        // A stop that came while the last changes finished starts nothing more.
        if !stopping && stop.as_mut().now_or_never().is_some() {
            stopping = true;
            on_event(Event::Stopping { running: running.len() });
        }
        let ready: Vec<Node<'_>> = pending
            .iter()
            .filter(|(_, waits)| !stopping && waits.iter().all(|w| done.contains(w)))
            .map(|(n, _)| *n)
            .take(parallelism - running.len())
            .collect();
        for n in ready {
            pending.remove(&n);
            let change = changes[n.address];
            let ops = if n.second { &change.then } else { &change.ops };
            // An empty phase (a deletion with nothing to revoke first) completes without a call or an event.
            if !ops.is_empty() && !started.contains_key(n.address) {
                started.insert(n.address, Instant::now());
                on_event(Event::Started { address: n.address.clone(), action: change.action });
            }
            running.push(async move {
                let result = if ops.is_empty() { Ok(()) } else { executor.execute(change, ops).await };
                (n, change, result)
            });
        }
        if running.is_empty() {
            break;
        }
        let next = tokio::select! {
            next = running.next() => next,
            () = &mut stop, if !stopping => {
                stopping = true;
                on_event(Event::Stopping { running: running.len() });
                continue;
            }
        };
        let Some((n, change, result)) = next else { break };
        let address = &change.address;
        match result {
            Ok(()) => {
                done.insert(n);
                if n.second || change.then.is_empty() {
                    report.applied.push(address.clone());
                    if let Some(j) = journal.filter(|_| creates.contains(address)) {
                        j.done(address);
                    }
                    let elapsed = started.get(address).map_or(Duration::ZERO, Instant::elapsed);
                    on_event(Event::Finished { address: address.clone(), action: change.action, elapsed });
                }
            }
            Err(mut error) => {
                // The change's first call failed with a definite answer (not throttled or transient, whose
                // effect may have happened): nothing was created, and its journal entry goes.
                if let Some(j) = journal.filter(|_| !n.second && error.done == 0 && !error.error.class.retryable() && creates.contains(address)) {
                    j.done(address);
                }
                if n.second {
                    error.done += change.ops.len();
                }
                error.total = change.ops.len() + change.then.len();
                blocked.insert(address, address);
                report.failed.push((address.clone(), error.clone()));
                on_event(Event::Failed { address: address.clone(), action: change.action, error });
            }
        }
    }
    // Creates never started leave nothing behind: their entries go.
    if let Some(j) = journal {
        for a in creates.iter().filter(|a| !started.contains_key(**a)) {
            j.done(a);
        }
    }
    // Left pending: stopped, or (a guard: the plan reports cycles as conflicts) waiting in a cycle.
    for (n, waits) in pending {
        if blocked.contains_key(n.address) || report.cancelled.contains(n.address) {
            continue;
        }
        if stopping {
            report.cancelled.push(n.address.clone());
        } else {
            let because = waits.first().map_or_else(|| n.address.clone(), |w| w.address.clone());
            blocked.insert(n.address, n.address);
            report.skipped.push((n.address.clone(), because));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests;
