//! Executing a plan's operations: each [`Op`] goes to its kind's writer (beside the kind's reader: `ec2.rs`,
//! `elb.rs`, `pool_ops.rs`, `rds_ops.rs`, `route53.rs`, `s3.rs`), which turns it into its API call(s).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::{Aws, AwsError, Unresolved};
use crate::apply::{BoxFuture, ChangeError, Executor};
use crate::error::{Class, Classify, Failure};
use crate::live::Live;
use crate::plan::{Action, Change, Plan};
use crate::resource::{Address, FLEET_TAG, GroupRef, Kind, Op};

/// Progress of a long wait, for people (`auto_scaling_group.web: instance refresh 50%`).
pub type Progress = Arc<dyn Fn(&Address, &str) + Send + Sync>;

pub struct AwsExecutor {
    pub(super) aws: Aws,
    /// This fleet's security groups: name in the fleet -> id (ours, and those the plan adopts). Grows as
    /// groups are created.
    pub(super) group_ids: Mutex<BTreeMap<String, String>>,
    /// Launch template versions created in this apply, by template name: what a group moving to its
    /// template's new version is pinned to.
    pub(super) new_versions: Mutex<BTreeMap<String, u64>>,
    /// Wait for instance refreshes to finish (`--no-wait` turns it off).
    pub(super) wait: bool,
    pub(super) progress: Option<Progress>,
    /// Unique to this apply: what idempotency tokens mix in (see `pool_ops::client_token`).
    pub(super) run: String,
}

impl AwsExecutor {
    /// The executor of `plan`, made against `live`.
    pub fn new(aws: Aws, live: &Live, plan: &Plan) -> Self {
        let mut group_ids: BTreeMap<String, String> = live.ids_of(Kind::SecurityGroup).into_iter().map(|(id, name)| (name, id)).collect();
        // Groups this plan adopts are the fleet's from the start: what refers to one resolves it, whatever
        // the order the changes run in.
        let adopted = plan.changes.iter().filter(|c| c.action == Action::Adopt && c.address.kind == Kind::SecurityGroup);
        group_ids.extend(adopted.filter_map(|c| Some((c.address.name.clone(), c.id.clone()?))));
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let run = format!("{}-{nanos}", std::process::id());
        AwsExecutor { aws, group_ids: Mutex::new(group_ids), new_versions: Mutex::default(), wait: true, progress: None, run }
    }

    /// Return once an instance refresh has started, instead of waiting for it.
    pub fn no_wait(mut self) -> Self {
        self.wait = false;
        self
    }

    pub fn on_progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    pub(super) fn report(&self, address: &Address, message: &str) {
        tracing::info!(%address, "{message}");
        if let Some(p) = &self.progress {
            p(address, message);
        }
    }

    pub(super) fn resolve(&self, g: &GroupRef) -> Result<String, AwsError> {
        match g {
            GroupRef::Id(id) => Ok(id.clone()),
            GroupRef::Fleet(name) => self.group_ids.lock().expect("ids lock").get(name).cloned().ok_or_else(|| Unresolved::Group { name: name.clone() }.into()),
        }
    }

    async fn run(&self, change: &Change, op: &Op, id: &mut Option<String>) -> Result<(), AwsError> {
        match op {
            Op::SecurityGroup(op) => self.run_sg(change, op, id).await,
            Op::LoadBalancer(op) => self.run_lb(change, op).await,
            Op::LaunchTemplate(op) => self.run_lt(change, op, id).await,
            Op::AutoScalingGroup(op) => self.run_asg(change, op).await,
            Op::DbParameterGroup(op) => self.run_pg(change, op).await,
            Op::DbInstance(op) => self.run_db(change, op).await,
            Op::DnsRecord(op) => self.run_dns(change, op).await,
            Op::Bucket(op) => self.run_bucket(change, op).await,
            Op::Alarm(op) => self.run_alarm(change, op).await,
        }
    }
}

/// A create's "already exists" answer, and a delete's or revoke's "not found": a step whose effect is there
/// already (the answer to an earlier attempt was lost, and the SDK retried), or someone else's object.
pub(super) enum Answer<T> {
    Done(T),
    AlreadyExists(AwsError),
}

/// Sorts a create's result: an "already exists" answer is looked into by the caller (see
/// [`AwsExecutor::ours_already`]); any other failure stays a failure.
pub(super) fn created<T>(r: Result<T, AwsError>) -> Result<Answer<T>, AwsError> {
    match r {
        Ok(v) => Ok(Answer::Done(v)),
        Err(e) if e.class() == Class::AlreadyExists => Ok(Answer::AlreadyExists(e)),
        Err(e) => Err(e),
    }
}

/// A step whose effect is there already is done: a rule authorised twice (`InvalidPermission.Duplicate`),
/// revoked twice (`InvalidPermission.NotFound`), an object deleted twice.
pub(super) fn idempotent(r: Result<(), AwsError>, already: Class) -> Result<(), AwsError> {
    match r {
        Err(e) if e.class() == already => {
            tracing::info!("{e}: already done");
            Ok(())
        }
        r => r,
    }
}

impl AwsExecutor {
    /// After a create answered "already exists" (`answer`): the object found under the name (with `found`,
    /// its tags) is the one this change creates if it carries the tags the create gives it (`want`: this
    /// fleet's, at this address), because an earlier attempt created it and its answer was lost. Where the
    /// create and its tagging are two calls (`untagged_ours`: a bucket), an object without a fleet tag is
    /// ours too: the journal recorded this create before it started, and the rest of the change tags it.
    /// Anything else is someone else's: an error that touches nothing.
    pub(super) fn ours_already(
        &self,
        change: &Change,
        call: &'static str,
        want: &BTreeMap<String, String>,
        found: Option<&BTreeMap<String, String>>,
        untagged_ours: bool,
        answer: AwsError,
    ) -> Result<(), AwsError> {
        let fleet = want.get(FLEET_TAG).map(String::as_str).unwrap_or_default();
        let owner = match found.map(|t| super::owner(fleet, change.address.kind, t)) {
            Some(super::Owner::Us(a)) if a == change.address => None,
            Some(super::Owner::Other(None) | super::Owner::Unowned(_)) if untagged_ours => None,
            Some(super::Owner::Us(a)) => Some(format!("its tags name {a}")),
            Some(super::Owner::Other(Some(other))) => Some(format!("it belongs to fleet `{other}`")),
            Some(super::Owner::Other(None) | super::Owner::Unowned(_)) => Some("it has no converge tags".to_string()),
            None => Some("it could not be found".to_string()),
        };
        match owner {
            None => {
                tracing::info!(address = %change.address, "{call}: created already ({answer}); carrying on");
                Ok(())
            }
            Some(owner) => {
                Err(AwsError::Taken { address: change.address.to_string(), call, noun: change.address.kind.noun(), name: change.name.clone(), owner })
            }
        }
    }
}

impl Executor for AwsExecutor {
    fn execute<'a>(&'a self, change: &'a Change, ops: &'a [Op]) -> BoxFuture<'a, Result<(), ChangeError>> {
        Box::pin(async move {
            // A group created in this apply has its id here by the time its second phase runs.
            let known = self.group_ids.lock().expect("ids lock").get(&change.address.name).cloned();
            let mut id = match change.address.kind {
                Kind::SecurityGroup => known.or_else(|| change.id.clone()),
                _ => change.id.clone(),
            };
            let total = ops.len();
            for (done, op) in ops.iter().enumerate() {
                self.run(change, op, &mut id).await.map_err(|e| ChangeError { done, total, error: Failure::from(&e) })?;
            }
            Ok(())
        })
    }

    fn has_secret(&self, var: &str) -> bool {
        super::has_secret(var)
    }
}
