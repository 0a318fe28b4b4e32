//! `converge apply`: a fresh plan confirmed by a person, or a saved plan checked for staleness.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;

use std::collections::BTreeSet;

use super::args::{ApplyArgs, ForgetArgs};
use super::lock;
use super::options;
use super::plan_file;
use super::words::{Out, print_stats, target_line};
use crate::apply::{self, Report};
use crate::aws::lock::Guard;
use crate::aws::{Aws, AwsExecutor};
use crate::model::Fleet;
use crate::plan::saved;
use crate::render;
use crate::render::{event_line, report_text};
use crate::resource::Address;

/// What an apply applies: the plan of the desired state, or the letting go of objects.
enum What<'a> {
    Plan,
    Forget(&'a BTreeSet<Address>),
}

pub(super) async fn apply(fleet: &Fleet, args: ApplyArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let aws = Aws::connect(&fleet.settings.region).await?;
    let result = locked(fleet, &args, &aws, What::Plan).await;
    if args.common.stats {
        print_stats(&aws.stats, started.elapsed());
    }
    result
}

/// `converge forget`: an apply whose plan lets the objects go, confirmed and locked as any apply.
pub(super) async fn forget(fleet: &Fleet, args: ForgetArgs) -> Result<ExitCode> {
    let aws = Aws::connect(&fleet.settings.region).await?;
    let addresses: BTreeSet<Address> = args.addresses.into_iter().collect();
    let apply = ApplyArgs {
        plan: None,
        common: Default::default(),
        auto_approve: args.auto_approve,
        parallelism: 10,
        no_wait: false,
        format: super::Format::Text,
        lock_timeout: args.lock_timeout,
        webhook: None,
    };
    let code = locked(fleet, &apply, &aws, What::Forget(&addresses)).await?;
    let desired = crate::resource::desired(fleet, &Default::default());
    let declared: Vec<String> = addresses.iter().filter(|a| desired.contains_key(*a)).map(ToString::to_string).collect();
    if code == ExitCode::SUCCESS && !declared.is_empty() {
        println!(
            "Still declared in {}: {}. Remove it from the desired state, or the next plan reports the object as a look-alike it does not own.",
            fleet.dir.display(),
            declared.join(", ")
        );
    }
    Ok(code)
}

/// The apply, holding the fleet's lock from before the plan is made (or the saved plan checked) until the
/// last change ends. A lock lost meanwhile fails the run.
async fn locked(fleet: &Fleet, args: &ApplyArgs, aws: &Aws, what: What<'_>) -> Result<ExitCode> {
    let operation = match (&args.plan, &what) {
        (_, What::Forget(_)) => "forget".to_string(),
        (Some(path), _) => format!("apply {}", path.display()),
        (None, _) => "apply".to_string(),
    };
    let guard = match lock::take(fleet, aws, &operation, args.lock_timeout).await? {
        Ok(guard) => guard,
        Err(refusal) => return Ok(lock::refused(&refusal)),
    };
    let result = apply_inner(fleet, args, aws, &guard, what).await;
    let lost = guard.lost_reason().await;
    let released = guard.release().await;
    if let Some(reason) = lost {
        eprintln!("Error: the apply lock was lost ({reason}); changes already running finished, no new one started. Run `converge plan` to see what is left.");
        return Ok(ExitCode::from(1));
    }
    if let Err(e) = released {
        eprintln!("Error: releasing the apply lock: {e}");
        return Ok(ExitCode::from(1));
    }
    result
}

/// Applies a saved plan after checking that it is still what was reviewed.
async fn apply_saved(fleet: &Fleet, path: &std::path::Path, args: &ApplyArgs, aws: &Aws, guard: &Guard) -> Result<ExitCode> {
    let mut saved = plan_file::read(path)?;
    if let Some(applied) = &saved.applied {
        anyhow::bail!("{} was already applied (at {} seconds since the epoch); make a new plan", path.display(), applied.at);
    }
    anyhow::ensure!(saved.plan.fleet == fleet.settings.name, "{} is a plan for fleet {}, not {}", path.display(), saved.plan.fleet, fleet.settings.name);
    let changed = saved.desired_changes(&plan_file::digest_dir(&fleet.dir)?);
    if !changed.is_empty() {
        return Ok(refuse(&format!("the desired state changed since {} was made", path.display()), &changed, "Make a new plan."));
    }
    let (account, live) = aws.guarded(fleet.settings.account.as_deref(), aws.read_again(fleet, &saved.touched())).await?;
    anyhow::ensure!(
        account == saved.account && aws.region == saved.region,
        "{} was made for account {} in {}, but this run is in account {account} in {}",
        path.display(),
        saved.account,
        saved.region,
        aws.region
    );
    let stale = saved.stale_objects(&live);
    if !stale.is_empty() {
        return Ok(refuse(&format!("{} is stale: what it changes was changed since it was made", path.display()), &stale, "Make a new plan."));
    }
    let out = Out::for_format(args.format);
    out.say(&render::plan_text(&saved.plan));
    if let Some(code) = cannot_run(&saved.plan) {
        return Ok(code);
    }
    if saved.plan.is_empty() {
        return execute(&saved.plan, &live, aws, args, out, None, guard).await;
    }
    // Recorded before the first call: a plan file is never applied twice, even if this run dies.
    let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    saved.applied = Some(saved::Applied { at, complete: false });
    plan_file::write(&saved, path)?;
    let target = render::Target { account: &saved.account, region: &saved.region };
    let code = execute(&saved.plan, &live, aws, args, out, Some(target), guard).await?;
    saved.applied = Some(saved::Applied { at, complete: code == ExitCode::SUCCESS });
    plan_file::write(&saved, path)?;
    Ok(code)
}

/// The apply's preconditions ([`apply::preflight`]), checked before anything is asked: nobody confirms an
/// apply that cannot run.
fn cannot_run(plan: &crate::plan::Plan) -> Option<ExitCode> {
    let e = apply::preflight(plan, crate::aws::has_secret).err()?;
    eprintln!("Error: {e}.");
    Some(ExitCode::from(1))
}

/// Runs a plan that is ready (confirmed, or saved and still fresh), reporting progress and the result.
async fn execute(
    plan: &crate::plan::Plan,
    live: &crate::live::Live,
    aws: &Aws,
    args: &ApplyArgs,
    out: Out,
    target: Option<render::Target<'_>>,
    guard: &Guard,
) -> Result<ExitCode> {
    let report = if plan.is_empty() {
        // Nothing to apply; entries the plan found settled still leave the journal.
        if !plan.journal_settled.is_empty() {
            apply::Journal::begin(guard, &plan.journal_settled, Vec::new()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        Report::default()
    } else {
        out.say("\n");
        let mut executor = AwsExecutor::new(aws.clone(), live, plan).on_progress(Arc::new(move |a, m| out.say(&format!("{a}: {m}\n"))));
        if args.no_wait {
            executor = executor.no_wait();
        }
        // Nothing new starts once interrupted, or once the lock is lost.
        let lost = guard.lost();
        let stop = async move {
            tokio::select! {
                () = interrupted() => {}
                () = lost => {}
            }
        };
        let executor = apply::Journaled { executor: &executor, journal: guard };
        let report = apply::apply(plan, &executor, args.parallelism.into(), stop, |e| match e {
            apply::Event::Stopping { running } if guard.is_lost() => {
                out.say(&format!("The apply lock was lost: waiting for {running} running change(s) to finish; nothing new will start.\n"))
            }
            e => out.say(&format!("{}\n", event_line(e))),
        })
        .await?;
        out.say(&report_text(plan, &report));
        if let (Some(url), Some(target)) = (&args.webhook, &target) {
            notify(url, aws, plan, target, &report).await;
        }
        report
    };
    if out.json {
        print!("{}", render::apply_json(plan, target, &report));
    }
    Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Tells the team's chat what this apply did; a webhook that fails is a warning (the apply is done).
async fn notify(url: &str, aws: &Aws, plan: &crate::plan::Plan, target: &render::Target<'_>, report: &Report) {
    let holder = lock::holder();
    let by = format!("{}@{}", holder.user, holder.host);
    let who =
        crate::reconcile::chat::Who { command: "apply", fleet: &plan.fleet, account: target.account, region: target.region, by: &by, caller: aws.caller() };
    let Some(text) = crate::reconcile::chat::applied(&who, plan, report) else { return };
    if let Err(e) = super::webhook::post_text(url, &text).await {
        eprintln!("Warning: the webhook failed: {e}");
    }
}

async fn apply_inner(fleet: &Fleet, args: &ApplyArgs, aws: &Aws, guard: &Guard, what: What<'_>) -> Result<ExitCode> {
    if let Some(path) = &args.plan {
        return apply_saved(fleet, path, args, aws, guard).await;
    }
    let out = Out::for_format(args.format);
    anyhow::ensure!(!out.json || args.auto_approve, "--format json needs --auto-approve (or a saved plan): there is no one to answer the prompt");
    let again = match what {
        What::Plan => "Run `converge apply` again for a new plan.",
        What::Forget(_) => "Run `converge forget` again for a new plan.",
    };
    let planned = match what {
        What::Plan => {
            let opts = crate::plan::PlanOptions { journal: guard.journal().await, ..options(fleet, &args.common)? };
            crate::planner::plan(aws, fleet, &opts).await?
        }
        What::Forget(addresses) => crate::planner::forget(aws, fleet, addresses).await?,
    };
    let plan = &planned.plan;
    out.say(&format!("{}{}", target_line(fleet, &planned), render::plan_text(plan)));
    if !plan.conflicts.is_empty() {
        eprintln!("Error: the plan has conflicts; nothing was applied.");
        return Ok(ExitCode::from(1));
    }
    if let Some(code) = cannot_run(plan) {
        return Ok(code);
    }
    let target = render::Target { account: &planned.account, region: &planned.region };
    if plan.is_empty() || args.auto_approve {
        return execute(plan, &planned.live, aws, args, out, Some(target), guard).await;
    }
    if !super::confirm("Do you want to perform these actions? Only 'yes' will be accepted.")? {
        println!("Apply cancelled; nothing was changed.");
        return Ok(ExitCode::from(1));
    }
    // The answer may have come any time later: what the changes read is read again (those objects, and
    // the listings that name them), and the apply runs on that, or refuses as a stale saved plan does.
    let reviewed = saved::Reviewed::of(plan, &planned.live);
    let live = aws.read_again(fleet, &reviewed.touched(plan)).await?;
    let stale = reviewed.stale(&live);
    if !stale.is_empty() {
        return Ok(refuse("what this plan changes was changed while it waited for an answer", &stale, again));
    }
    execute(plan, &live, aws, args, out, Some(target), guard).await
}

/// Completes on the first Ctrl-C; a second one exits at once.
pub(super) async fn interrupted() {
    if tokio::signal::ctrl_c().await.is_err() {
        return std::future::pending().await;
    }
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("Second interrupt: exiting now. Run `converge plan` to see what is left.");
            std::process::exit(130);
        }
    });
}

/// Refuses a plan gone stale (saved, or confirmed after a wait): why, each thing that changed, and what to do.
fn refuse(why: &str, what: &[String], next: &str) -> ExitCode {
    eprintln!("Error: {why}; nothing was applied:");
    for w in what {
        eprintln!("  {w}");
    }
    eprintln!("{next}");
    ExitCode::from(1)
}
