//! One run against AWS: check the account, read live state, plan. Shared by the CLI and the tests.

use crate::aws::{Aws, AwsError};
use crate::live::Live;
use crate::model::Fleet;
use crate::plan::{self, Plan, PlanOptions};
use crate::resource::{self, Environment};

pub struct Planned {
    /// The account and region the plan was made against.
    pub account: String,
    pub region: String,
    pub plan: Plan,
    pub live: Live,
    pub env: Environment,
    /// The desired specs the plan was made from (what each object refers to).
    pub desired: resource::Desired,
    /// Days until each site's soonest certificate expiry (`plan::coverage::days_left`).
    pub certificate_days: std::collections::BTreeMap<String, i64>,
}

/// Learns the account (refusing a wrong one when `fleet.account` is set) while it reads every kind
/// concurrently ([`Aws::guarded`]: a wrong account's reads are dropped), then plans.
pub async fn plan(aws: &Aws, fleet: &Fleet, opts: &PlanOptions) -> Result<Planned, AwsError> {
    let in_use = crate::plan::coverage::certificates_in_use(fleet);
    // With --target, what AWS reads one object at a time is read only for the targets' path.
    let mut path = opts.targets.as_ref().and_then(|t| plan::read_path(&resource::desired(fleet, &Environment::default()), t));
    let opts = &PlanOptions { policies: resource::policies(fleet), ..opts.clone() };
    let first = async {
        match &path {
            Some(path) => aws.read_focused(fleet, path).await,
            None => aws.read(fleet).await,
        }
    };
    let (account, (mut read, certificates)) =
        aws.guarded(fleet.settings.account.as_deref(), async { Ok(tokio::join!(first, aws.certificates(&in_use))) }).await?;
    let (mut plan, live, env, desired) = loop {
        let (env, live) = read?;
        let desired = resource::desired(fleet, &env);
        let mut plan = plan::plan(&fleet.settings.name, &desired, &live, opts);
        if let Some(targets) = &opts.targets {
            plan = plan::restrict(&plan, &desired, &live, targets);
        }
        // Replacing or deleting an object needs everything that refers to it, which only a full read finds.
        if path.is_some() && plan.changes.iter().any(|c| matches!(c.action, plan::Action::Replace | plan::Action::Delete)) {
            path = None;
            read = aws.read(fleet).await;
            continue;
        }
        break (plan, live, env, desired);
    };
    if let Some(extra) = &opts.contain {
        plan::contain(&mut plan, &desired, &live, extra);
    }
    plan::batch(&mut plan);
    plan::mark_affected_sites(fleet, &mut plan);
    let now = now();
    plan.certificate_gaps = crate::plan::coverage::check(fleet, &certificates, now);
    let certificate_days = crate::plan::coverage::days_left(fleet, &certificates, now);
    Ok(Planned { account, region: aws.region.clone(), plan, live, env, desired, certificate_days })
}

/// `converge forget`: the account check, the read, and the plan that lets `addresses` go (see
/// [`plan::forget`]).
pub async fn forget(aws: &Aws, fleet: &Fleet, addresses: &std::collections::BTreeSet<resource::Address>) -> Result<Planned, AwsError> {
    let (account, (env, live)) = aws.guarded(fleet.settings.account.as_deref(), aws.read(fleet)).await?;
    let mut plan = plan::forget(&fleet.settings.name, &live, addresses);
    plan::mark_affected_sites(fleet, &mut plan);
    let desired = resource::desired(fleet, &env);
    Ok(Planned { account, region: aws.region.clone(), plan, live, env, desired, certificate_days: Default::default() })
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The certificate check on its own (`validate --online`): the account guard beside one read per certificate.
pub async fn certificate_gaps(aws: &Aws, fleet: &Fleet) -> Result<Vec<crate::plan::coverage::Gap>, AwsError> {
    let reads = async { Ok(aws.certificates(&crate::plan::coverage::certificates_in_use(fleet)).await) };
    let (_, certificates) = aws.guarded(fleet.settings.account.as_deref(), reads).await?;
    Ok(crate::plan::coverage::check(fleet, &certificates, now()))
}
