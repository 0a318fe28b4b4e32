//! Apply: executes exactly a plan's changes, in dependency order, independent ones concurrently up to a
//! bound. It never re-diffs. A failed change stops the changes that wait for it; independent work finishes;
//! the [`Report`] says what was applied, what failed and what was not attempted, and why.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::Serialize;

use crate::plan::{Action, Change, Plan};
use crate::resource::Address;

/// A change that failed part-way: `done` of its `total` operations were applied before `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{error}")]
pub struct ChangeError {
    pub done: usize,
    pub total: usize,
    pub error: String,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Carries out one change's operations (the AWS provider; a recording fake in unit tests).
pub trait Executor: Sync {
    fn execute<'a>(&'a self, change: &'a Change) -> BoxFuture<'a, Result<(), ChangeError>>;
}

/// Progress, for the terminal or a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Started { address: Address, action: Action },
    Finished { address: Address, action: Action, elapsed: Duration },
    Failed { address: Address, action: Action, error: ChangeError },
    Skipped { address: Address, because: Address },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub applied: Vec<Address>,
    pub failed: Vec<(Address, ChangeError)>,
    /// Not attempted, with the failed change it waited for.
    pub skipped: Vec<(Address, Address)>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApplyError {
    #[error("the plan has {0} conflict(s); nothing was applied")]
    Conflicts(usize),
}

/// Applies `plan` through `executor`, at most `parallelism` changes at a time.
pub async fn apply(plan: &Plan, executor: &dyn Executor, parallelism: usize, mut on_event: impl FnMut(Event)) -> Result<Report, ApplyError> {
    if !plan.conflicts.is_empty() {
        return Err(ApplyError::Conflicts(plan.conflicts.len()));
    }
    let parallelism = parallelism.max(1);
    let in_plan: BTreeSet<&Address> = plan.changes.iter().map(|c| &c.address).collect();
    let mut pending: BTreeMap<&Address, &Change> = plan.changes.iter().map(|c| (&c.address, c)).collect();
    let mut succeeded: BTreeSet<&Address> = BTreeSet::new();
    // Failed or skipped, with the root failure to name.
    let mut blocked: BTreeMap<&Address, &Address> = BTreeMap::new();
    let mut report = Report::default();
    let mut running = FuturesUnordered::new();

    loop {
        // Skip whatever waits on a failure, transitively, before starting anything new.
        loop {
            let newly: Vec<(&Address, &Address)> = pending
                .iter()
                .filter_map(|(a, c)| c.after.iter().find_map(|d| blocked.get(d)).map(|root| (*a, *root)))
                .collect();
            if newly.is_empty() {
                break;
            }
            for (a, root) in newly {
                pending.remove(a);
                blocked.insert(a, root);
                report.skipped.push((a.clone(), root.clone()));
                on_event(Event::Skipped { address: a.clone(), because: root.clone() });
            }
        }
        let ready: Vec<&Address> = pending
            .iter()
            .filter(|(_, c)| c.after.iter().all(|d| succeeded.contains(d) || !in_plan.contains(d)))
            .map(|(a, _)| *a)
            .take(parallelism - running.len())
            .collect();
        for a in ready {
            let change = pending.remove(a).expect("ready changes are pending");
            on_event(Event::Started { address: a.clone(), action: change.action });
            running.push(async move {
                let start = Instant::now();
                let result = executor.execute(change).await;
                (change, result, start.elapsed())
            });
        }
        let Some((change, result, elapsed)) = running.next().await else { break };
        let address = &change.address;
        match result {
            Ok(()) => {
                succeeded.insert(address);
                report.applied.push(address.clone());
                on_event(Event::Finished { address: address.clone(), action: change.action, elapsed });
            }
            Err(error) => {
                blocked.insert(address, address);
                report.failed.push((address.clone(), error.clone()));
                on_event(Event::Failed { address: address.clone(), action: change.action, error });
            }
        }
    }
    // Only a dependency cycle leaves changes pending; the plan reports those as conflicts, so this is a guard.
    for (a, c) in pending {
        let because = c.after.iter().next().cloned().unwrap_or_else(|| a.clone());
        report.skipped.push((a.clone(), because));
    }
    Ok(report)
}

#[cfg(test)]
mod tests;
