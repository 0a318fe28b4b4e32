//! The command line: clap definitions, the terminal, exit codes. Each command is a few lines that call
//! the library.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::apply::{self, Event, Report};
use crate::reconcile;
use crate::saved::{self, SavedPlan};
use crate::aws::{Aws, AwsExecutor, Stats};
use crate::model::{self, Fleet};
use crate::plan::{Action, PlanOptions};
use crate::render;

#[derive(Debug, Parser)]
#[command(name = "converge", version, about = "Converge an AWS account to the fleet described in desired-state/")]
pub struct Cli {
    /// The folder holding the desired state; every *.toml below it is merged.
    #[arg(long, global = true, default_value = "desired-state", env = "CONVERGE_DIR")]
    pub dir: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the desired state offline: every problem at once, with file:line:col.
    Validate(ValidateArgs),
    /// Read live AWS state and show what apply would change.
    Plan(PlanArgs),
    /// Plan, confirm, and converge AWS to the desired state.
    Apply(ApplyArgs),
    /// Keep watching: plan every interval and report drift, or converge it with --apply.
    Reconcile(ReconcileArgs),
    /// For cron: a read-only plan. Exit 0 when live matches the desired state, 2 when it drifted, 1 on error.
    Drift(DriftArgs),
    /// The semantic difference between two desired states, offline (no AWS access): `diff OLD NEW`, or
    /// `diff --base REV` for the desired state at a git revision against --dir.
    Diff(DiffArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Objects in the fleet's scope that converge does not own (e.g. a hand-made load balancer using one
    /// of the fleet's security groups).
    Unmanaged,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    #[command(flatten)]
    pub common: Common,
    /// One line for an alert (text), or the full report.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// POST a Slack-compatible message ({"text": ...}) here when drift is found.
    #[arg(long)]
    pub webhook: Option<String>,
    /// Also count these as drift (exit 2, webhook).
    #[arg(long, value_enum)]
    pub fail_on: Vec<FailOn>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The old desired-state folder (then NEW is required).
    #[arg(conflicts_with = "base", requires = "new")]
    pub old: Option<PathBuf>,
    /// The new desired-state folder.
    pub new: Option<PathBuf>,
    /// A git revision: compare the desired state in --dir as it was there with the work tree's.
    #[arg(long, required_unless_present = "old")]
    pub base: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit 0 when the two are the same, 2 when they differ, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Args)]
pub struct Common {
    /// Print how many AWS API calls the run made, per service and operation, and the wall time.
    #[arg(long)]
    pub stats: bool,
    /// Refuse plans deleting more than this many objects (default: fleet.max_deletes, or 20).
    #[arg(long)]
    pub max_deletes: Option<usize>,
    /// Only this and what it needs: site.NAME, pool.NAME or an address (repeatable).
    #[arg(long, value_name = "TARGET")]
    pub target: Vec<String>,
    /// Replace this object even though nothing forces it (repeatable).
    #[arg(long, value_name = "ADDRESS", value_parser = parse_address)]
    pub replace: Vec<crate::resource::Address>,
}

fn parse_address(s: &str) -> Result<crate::resource::Address, String> {
    s.parse()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For terminals.
    Text,
    /// For programs: the schema in docs/plan-json.md.
    Json,
    /// For pull-request comments (at most 65,535 characters).
    Markdown,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub common: Common,
    /// How to print the plan.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Save the plan here; `converge apply FILE` then applies exactly it, or refuses if it went stale.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// text, or json (the problems as a list; markdown is not offered here).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved with `converge plan --out`: apply exactly it (no prompt), or refuse if what it touches
    /// changed since.
    pub plan: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
    /// Apply without asking for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// How many independent changes run at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub parallelism: u16,
    /// text, or json: the plan and the result as one document on stdout (progress goes to stderr);
    /// needs --auto-approve or a saved plan.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub common: Common,
    /// Time between passes: 90s, 5m, 1h.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub interval: Duration,
    /// Apply the changes each pass finds (otherwise they are only reported).
    #[arg(long)]
    pub apply: bool,
    /// How many independent changes run at once when applying.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub parallelism: u16,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number.parse().map_err(|_| format!("`{s}` is not a duration such as 90s, 5m or 1h"))?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("`{s}` is not a duration such as 90s, 5m or 1h")),
    };
    if seconds == 0 {
        return Err("the interval must be at least one second".into());
    }
    Ok(Duration::from_secs(seconds))
}

fn load_or_report(dir: &std::path::Path) -> Result<Fleet, ExitCode> {
    model::load_dir(dir).map_err(|diags| {
        eprintln!("{diags}");
        ExitCode::from(1)
    })
}

fn diff(dir: &std::path::Path, args: DiffArgs) -> Result<ExitCode> {
    let (old, new, old_name, new_name) = match (&args.old, &args.new, &args.base) {
        (Some(old), Some(new), None) => {
            let (Ok(o), Ok(n)) = (load_or_report(old), load_or_report(new)) else { return Ok(ExitCode::from(1)) };
            (o, n, old.display().to_string(), new.display().to_string())
        }
        (None, _, Some(rev)) => {
            let old = model::load_at_revision(dir, rev)?;
            let Ok(new) = load_or_report(dir) else { return Ok(ExitCode::from(1)) };
            (old, new, format!("{rev}:{}", dir.display()), dir.display().to_string())
        }
        _ => anyhow::bail!("give two folders (converge diff OLD NEW) or a revision (converge diff --base REV)"),
    };
    let plan = crate::diff::diff(&old, &new);
    match document(args.format, &plan, None) {
        Some(doc) => print!("{doc}"),
        None => print!("{}", render::diff_text(&plan, &old_name, &new_name)),
    }
    Ok(if args.detailed_exitcode && !plan.is_empty() { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

fn validate(dir: &std::path::Path, args: &ValidateArgs) -> ExitCode {
    let result = model::load_dir(dir);
    match (args.format, &result) {
        (Format::Json, Ok(_)) => print!("{}", render::diagnostics_json(&[])),
        (Format::Json, Err(diags)) => print!("{}", render::diagnostics_json(&diags.0)),
        (_, Ok(fleet)) => println!("{} is valid: fleet {} with {}.", dir.display(), fleet.settings.name, inventory(fleet)),
        (_, Err(diags)) => eprintln!("{diags}"),
    }
    if result.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Diff(args) => return diff(&cli.dir, args),
        Command::Validate(args) => return Ok(validate(&cli.dir, &args)),
        _ => {}
    }
    let fleet = match model::load_dir(&cli.dir) {
        Ok(f) => f,
        Err(diags) => {
            eprintln!("{diags}");
            return Ok(ExitCode::from(1));
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    match cli.command {
        Command::Plan(args) => runtime.block_on(plan(&fleet, args)),
        Command::Apply(args) => runtime.block_on(apply(&fleet, args)),
        Command::Reconcile(args) => runtime.block_on(reconcile(&fleet, args)),
        Command::Drift(args) => runtime.block_on(drift(&fleet, args)),
        Command::Diff(_) | Command::Validate(_) => unreachable!("handled above: they need no AWS"),
    }
}

/// Where the plan was made: worth a glance before typing `yes`.
fn target_line(fleet: &Fleet, planned: &crate::session::Planned) -> String {
    format!("Fleet {} in account {}, region {}.\n\n", fleet.settings.name, planned.account, planned.region)
}

/// `4 security groups, 2 load balancers, 1 pool, ...`: what a fleet declares.
fn inventory(fleet: &Fleet) -> String {
    let counts = [
        (fleet.security_groups.len(), "security group"),
        (fleet.load_balancers.len(), "load balancer"),
        (fleet.images.len(), "image"),
        (fleet.pools.len(), "pool"),
        (fleet.db_parameter_groups.len(), "DB parameter group"),
        (fleet.databases.len(), "database"),
        (fleet.sites.len(), "site"),
    ];
    let parts = plural_counts(&counts);
    if parts.is_empty() { "nothing declared yet".to_string() } else { parts.join(", ") }
}

fn plural_counts(counts: &[(usize, &str)]) -> Vec<String> {
    counts.iter().filter(|(n, _)| *n > 0).map(|(n, what)| format!("{n} {what}{}", if *n == 1 { "" } else { "s" })).collect()
}

/// Says which parts of the desired state this version validates but does not converge yet.
fn note_unconverged(fleet: &Fleet) {
    let counts = [
        (fleet.pools.len(), "pool"),
        (fleet.db_parameter_groups.len(), "DB parameter group"),
        (fleet.databases.len(), "database"),
        (fleet.sites.len(), "site"),
    ];
    let parts = plural_counts(&counts);
    if !parts.is_empty() {
        eprintln!("note: this version converges security groups and load balancers; {} are validated but not yet converged.", parts.join(", "));
    }
}

fn options(fleet: &Fleet, common: &Common) -> Result<PlanOptions> {
    let targets = if common.target.is_empty() {
        None
    } else {
        Some(crate::plan::resolve_targets(fleet, &common.target).map_err(anyhow::Error::msg)?)
    };
    Ok(PlanOptions {
        max_deletes: common.max_deletes.unwrap_or(fleet.settings.max_deletes),
        replace: common.replace.iter().cloned().collect(),
        targets,
    })
}

/// Connects, reads and plans; prints `--stats` (also when planning failed).
async fn read_and_plan(fleet: &Fleet, common: &Common) -> Result<crate::session::Planned> {
    let started = Instant::now();
    let aws = Aws::connect(&fleet.settings.region).await;
    let planned = crate::session::plan(&aws, fleet, &options(fleet, common)?).await;
    if common.stats {
        print_stats(&aws.stats, started.elapsed());
    }
    Ok(planned?)
}

/// The plan for programs (JSON) or reviewers (markdown); `None` for text, which each command words itself.
fn document(format: Format, plan: &crate::plan::Plan, target: Option<render::Target<'_>>) -> Option<String> {
    match format {
        Format::Text => None,
        Format::Json => Some(render::plan_json(plan, target)),
        Format::Markdown => Some(render::plan_markdown(plan, target, render::COMMENT_LIMIT)),
    }
}

async fn plan(fleet: &Fleet, args: PlanArgs) -> Result<ExitCode> {
    let planned = read_and_plan(fleet, &args.common).await?;
    let target = render::Target { account: &planned.account, region: &planned.region };
    match document(args.format, &planned.plan, Some(target)) {
        Some(doc) => print!("{doc}"),
        None => print!("{}{}", target_line(fleet, &planned), render::plan_text(&planned.plan)),
    }
    note_unconverged(fleet);
    if let Some(out) = &args.out {
        if !planned.plan.conflicts.is_empty() {
            eprintln!("Error: a plan with conflicts cannot be applied; not saved to {}.", out.display());
            return Ok(ExitCode::from(1));
        }
        let saved = SavedPlan::new(&planned.plan, &planned.live, &planned.account, &planned.region, saved::digest_dir(&fleet.dir)?);
        saved.write(out)?;
        eprintln!("Saved the plan to {}. Apply exactly this plan with: converge apply {}", out.display(), out.display());
    }
    Ok(if !planned.plan.conflicts.is_empty() {
        ExitCode::from(1)
    } else if args.detailed_exitcode && !planned.plan.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

async fn apply(fleet: &Fleet, args: ApplyArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let aws = Aws::connect(&fleet.settings.region).await;
    let result = apply_inner(fleet, &args, &aws).await;
    if args.common.stats {
        print_stats(&aws.stats, started.elapsed());
    }
    result
}

/// Applies a saved plan after checking that it is still what was reviewed.
async fn apply_saved(fleet: &Fleet, path: &std::path::Path, args: &ApplyArgs, aws: &Aws) -> Result<ExitCode> {
    let mut saved = SavedPlan::read(path)?;
    if let Some(applied) = &saved.applied {
        anyhow::bail!("{} was already applied (at {} seconds since the epoch); make a new plan", path.display(), applied.at);
    }
    anyhow::ensure!(saved.plan.fleet == fleet.settings.name, "{} is a plan for fleet {}, not {}", path.display(), saved.plan.fleet, fleet.settings.name);
    let changed = saved.desired_changes(&saved::digest_dir(&fleet.dir)?);
    if !changed.is_empty() {
        eprintln!("Error: the desired state changed since {} was made; nothing was applied:", path.display());
        for c in changed {
            eprintln!("  {c}");
        }
        eprintln!("Make a new plan.");
        return Ok(ExitCode::from(1));
    }
    let account = aws.account(fleet.settings.account.as_deref()).await?;
    anyhow::ensure!(
        account == saved.account && aws.region == saved.region,
        "{} was made for account {} in {}, but this run is in account {account} in {}",
        path.display(),
        saved.account,
        saved.region,
        aws.region
    );
    let (_, live) = aws.read_scoped(fleet, Some(&saved.load_balancer_names())).await?;
    let stale = saved.stale_objects(&live);
    if !stale.is_empty() {
        eprintln!("Error: {} is stale: what it changes was changed since it was made; nothing was applied:", path.display());
        for s in stale {
            eprintln!("  {s}");
        }
        eprintln!("Make a new plan.");
        return Ok(ExitCode::from(1));
    }
    let out = Out::for_format(args.format);
    out.say(&render::plan_text(&saved.plan));
    if saved.plan.is_empty() {
        return Ok(execute(&saved.plan, &live, aws, args, out, None).await?);
    }
    // Recorded before the first call: a plan file is never applied twice, even if this run dies.
    let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    saved.applied = Some(saved::Applied { at, complete: false });
    saved.write(path)?;
    let target = render::Target { account: &saved.account, region: &saved.region };
    let code = execute(&saved.plan, &live, aws, args, out, Some(target)).await?;
    saved.applied = Some(saved::Applied { at, complete: code == ExitCode::SUCCESS });
    saved.write(path)?;
    Ok(code)
}

/// Where apply's words go: stdout for people; stderr when stdout carries the JSON result.
#[derive(Clone, Copy)]
struct Out {
    json: bool,
}

impl Out {
    fn for_format(format: Format) -> Out {
        Out { json: format == Format::Json }
    }

    fn say(&self, text: &str) {
        if self.json {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
    }
}

/// Runs a plan that is ready (confirmed, or saved and still fresh), reporting progress and the result.
async fn execute(plan: &crate::plan::Plan, live: &crate::plan::Live, aws: &Aws, args: &ApplyArgs, out: Out, target: Option<render::Target<'_>>) -> Result<ExitCode> {
    let report = if plan.is_empty() {
        Report::default()
    } else {
        out.say("\n");
        let executor = AwsExecutor::new(aws.clone(), live);
        let report = apply::apply(plan, &executor, args.parallelism.into(), interrupted(), |e| out.say(&format!("{}\n", event_line(e)))).await?;
        out.say(&report_text(plan, &report));
        report
    };
    if out.json {
        print!("{}", render::apply_json(plan, target, &report));
    }
    Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

async fn apply_inner(fleet: &Fleet, args: &ApplyArgs, aws: &Aws) -> Result<ExitCode> {
    if let Some(path) = &args.plan {
        return apply_saved(fleet, path, args, aws).await;
    }
    let out = Out::for_format(args.format);
    anyhow::ensure!(!out.json || args.auto_approve, "--format json needs --auto-approve (or a saved plan): there is no one to answer the prompt");
    let planned = crate::session::plan(aws, fleet, &options(fleet, &args.common)?).await?;
    let plan = &planned.plan;
    out.say(&format!("{}{}", target_line(fleet, &planned), render::plan_text(plan)));
    note_unconverged(fleet);
    if !plan.conflicts.is_empty() {
        eprintln!("Error: the plan has conflicts; nothing was applied.");
        return Ok(ExitCode::from(1));
    }
    if !plan.is_empty() && !args.auto_approve && !confirm()? {
        println!("Apply cancelled; nothing was changed.");
        return Ok(ExitCode::from(1));
    }
    let target = render::Target { account: &planned.account, region: &planned.region };
    execute(plan, &planned.live, aws, args, out, Some(target)).await
}

/// Completes on the first Ctrl-C; a second one exits at once.
async fn interrupted() {
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

async fn drift(fleet: &Fleet, args: DriftArgs) -> Result<ExitCode> {
    let planned = read_and_plan(fleet, &args.common).await?;
    let plan = &planned.plan;
    let target = render::Target { account: &planned.account, region: &planned.region };
    let line = render::drift_line(plan);
    match document(args.format, plan, Some(target)) {
        Some(doc) => print!("{doc}"),
        None => println!("{line}"),
    }
    let drifted = !plan.changes.is_empty()
        || !plan.conflicts.is_empty()
        || (args.fail_on.contains(&FailOn::Unmanaged) && !plan.unmanaged.is_empty());
    if drifted && let Some(url) = &args.webhook {
        let text = format!("converge: fleet {} (account {}, {}): {line}", fleet.settings.name, planned.account, planned.region);
        crate::notify::post_text(url, &text).await?;
    }
    Ok(if drifted { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// One reconcile pass: plan, then apply (with --apply) or report.
struct FleetLoop<'a> {
    fleet: &'a Fleet,
    aws: Aws,
    args: &'a ReconcileArgs,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl FleetLoop<'_> {
    async fn pass(&self) -> Result<reconcile::Action> {
        self.aws.stats.reset();
        let started = Instant::now();
        let planned = crate::session::plan(&self.aws, self.fleet, &options(self.fleet, &self.args.common)?).await?;
        let plan = &planned.plan;
        let next = reconcile::Action::requeue(self.args.interval);
        let calls = self.aws.stats.total();
        if !plan.conflicts.is_empty() {
            // Not transient: waiting the interval is right, backing off is not.
            println!("{} conflict(s) block the plan ({calls} calls); nothing applied:", plan.conflicts.len());
            for c in &plan.conflicts {
                println!("  ! {}", c.message);
            }
            return Ok(next);
        }
        if plan.is_empty() {
            println!("no changes ({calls} calls, {:.1}s)", started.elapsed().as_secs_f64());
            return Ok(next);
        }
        let addresses: Vec<String> = plan.changes.iter().map(|c| c.address.to_string()).collect();
        println!("{} ({calls} calls): {}", render::summary_line(plan), addresses.join(", "));
        if !self.args.apply {
            println!("  not applied: run with --apply to converge");
            return Ok(next);
        }
        let executor = AwsExecutor::new(self.aws.clone(), &planned.live);
        let mut stop = self.stop.clone();
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let report = apply::apply(plan, &executor, self.args.parallelism.into(), stopped, |_| {}).await?;
        print!("{}", report_text(plan, &report));
        anyhow::ensure!(report.ok(), "the apply did not complete");
        Ok(next)
    }
}

impl reconcile::Reconcile for FleetLoop<'_> {
    type Error = String;
    fn reconcile(&self) -> reconcile::PassFuture<'_, Result<reconcile::Action, String>> {
        Box::pin(async move { self.pass().await.map_err(|e| format!("{e:#}")) })
    }
}

async fn reconcile(fleet: &Fleet, args: ReconcileArgs) -> Result<ExitCode> {
    let aws = Aws::connect(&fleet.settings.region).await;
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("Interrupt received: stopping after the current pass.");
            let _ = tx.send(true);
        }
    });
    let mode = if args.apply { "converging" } else { "reporting" };
    println!("reconciling fleet {} every {}s ({mode}); Ctrl-C stops after the current pass", fleet.settings.name, args.interval.as_secs());
    let policy = reconcile::ErrorPolicy { base: Duration::from_secs(5), max: args.interval };
    let this = FleetLoop { fleet, aws, args: &args, stop: rx.clone() };
    let mut stop = rx;
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    reconcile::run(&this, policy, stopped, |pass| match pass {
        reconcile::Pass::Done { next } => println!("  next pass in {}s", next.as_secs()),
        reconcile::Pass::Failed { error, failures, next } => {
            eprintln!("pass failed ({failures} in a row): {error}");
            eprintln!("  retrying in {:.1}s", next.as_secs_f64());
        }
    })
    .await;
    Ok(ExitCode::SUCCESS)
}

fn confirm() -> Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        eprintln!("(reading the answer from standard input)");
    }
    print!("\nDo you want to perform these actions? Only 'yes' will be accepted.\n  Enter a value: ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(line.trim() == "yes")
}

fn progress_verbs(action: Action) -> (&'static str, &'static str) {
    match action {
        Action::Create => ("Creating...", "Creation complete"),
        Action::Update => ("Modifying...", "Modifications complete"),
        Action::Replace => ("Replacing...", "Replacement complete"),
        Action::Delete => ("Destroying...", "Destruction complete"),
    }
}

fn event_line(e: Event) -> String {
    match e {
        Event::Started { address, action } => format!("{address}: {}", progress_verbs(action).0),
        Event::Finished { address, action, elapsed } => format!("{address}: {} after {:.1}s", progress_verbs(action).1, elapsed.as_secs_f64()),
        Event::Failed { address, error, .. } => format!("{address}: FAILED: {error}"),
        Event::Skipped { address, because } => format!("{address}: not attempted: it waits for {because}, which failed"),
        Event::Stopping { running } => {
            format!("Interrupt received: waiting for {running} running change(s) to finish; nothing new will start. Ctrl-C again exits at once.")
        }
    }
}

fn report_text(plan: &crate::plan::Plan, report: &Report) -> String {
    use std::fmt::Write as _;
    let done = |a: Action| report.applied.iter().filter(|x| plan.change(x).is_some_and(|c| c.action == a)).count();
    let (added, changed, destroyed) = (done(Action::Create) + done(Action::Replace), done(Action::Update), done(Action::Delete) + done(Action::Replace));
    let mut out = String::from("\n");
    if report.ok() {
        let _ = writeln!(out, "Apply complete! Resources: {added} added, {changed} changed, {destroyed} destroyed.");
        return out;
    }
    let what = if report.failed.is_empty() { "stopped" } else { "failed" };
    let _ = writeln!(out, "Apply {what}. Applied: {added} added, {changed} changed, {destroyed} destroyed.");
    for (address, e) in &report.failed {
        let partial = if e.done > 0 { format!(" ({} of {} operations had been applied)", e.done, e.total) } else { String::new() };
        let _ = writeln!(out, "  failed: {address}{partial}: {}", e.error);
    }
    for (address, because) in &report.skipped {
        let _ = writeln!(out, "  not attempted: {address} (waits for {because})");
    }
    for address in &report.cancelled {
        let _ = writeln!(out, "  not attempted: {address} (stopped)");
    }
    out.push_str("Nothing else was changed. Run `converge plan` to see what is left.\n");
    out
}

fn print_stats(stats: &Stats, elapsed: Duration) {
    let counts = stats.counts();
    let width = counts.iter().map(|c| c.service.len() + c.operation.len() + 1).max().unwrap_or(0);
    eprintln!("AWS API calls: {} in {:.2}s (every HTTP attempt, retries included)", stats.total(), elapsed.as_secs_f64());
    for c in counts {
        eprintln!("  {:width$}  {}", format!("{} {}", c.service, c.operation), c.calls);
    }
}
