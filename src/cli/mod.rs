//! The command line: the grammar (`args`), what the terminal shows (`words`), exit codes, and each command
//! as a few lines that call the library (`apply` and `reconcile` have their own files).

mod apply;
mod args;
mod complete;
mod import;
mod lock;
mod plan_file;
mod reconcile;
mod resolve;
mod serve;
mod webhook;
mod words;

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};

pub use args::{Cli, Command, Format};
use args::{Common, DiffArgs, DriftArgs, FailOn, PlanArgs, ValidateArgs};
pub use complete::VAR as COMPLETE_VAR;
use words::{inventory, print_stats, target_line};

use crate::aws::Aws;
use crate::model::{self, Fleet};
use crate::plan::PlanOptions;
use crate::plan::saved::SavedPlan;
use crate::render;

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
    let plan = crate::plan::offline::diff(&old, &new);
    match document(args.format, &plan, None) {
        Some(doc) => print!("{doc}"),
        None => print!("{}", render::diff_text(&plan, &old_name, &new_name)),
    }
    Ok(if args.detailed_exitcode && !plan.is_empty() { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

fn validate(dir: &std::path::Path, args: &ValidateArgs) -> Result<ExitCode> {
    let result = model::load_dir(dir);
    // Online, the listeners' certificates are checked too: a gap is an error here.
    let gaps = match (&result, args.online) {
        (Ok(fleet), true) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
            runtime.block_on(async { crate::planner::certificate_gaps(&Aws::connect(&fleet.settings.region).await?, fleet).await })?
        }
        _ => Vec::new(),
    };
    match (args.format, &result) {
        (Format::Json, Ok(_)) => print!("{}", render::diagnostics_json(&[])),
        (Format::Json, Err(diags)) => print!("{}", render::diagnostics_json(&diags.0)),
        (_, Ok(fleet)) if gaps.is_empty() => println!("{} is valid: fleet {} with {}.", dir.display(), fleet.settings.name, inventory(fleet)),
        (_, Ok(_)) => {}
        (_, Err(diags)) => eprintln!("{diags}"),
    }
    for g in &gaps {
        eprintln!("error: site.{}: {}\n  certificate: {}", g.site, g.message, g.certificate);
    }
    if !gaps.is_empty() {
        eprintln!("{} certificate problem(s) found", gaps.len());
    }
    Ok(if result.is_ok() && gaps.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Diff(args) => return diff(&cli.dir, args),
        Command::Validate(args) => return validate(&cli.dir, &args),
        Command::Import(args) => return import::import(&cli.dir, &args),
        Command::Completions(args) => {
            complete::registration(args.shell, &mut std::io::stdout().lock())?;
            return Ok(ExitCode::SUCCESS);
        }
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
        Command::Apply(args) => runtime.block_on(apply::apply(&fleet, args)),
        Command::Forget(args) => runtime.block_on(apply::forget(&fleet, args)),
        Command::Reconcile(args) => runtime.block_on(reconcile::reconcile(&fleet, args)),
        Command::Drift(args) => runtime.block_on(drift(&fleet, args)),
        Command::Graph(args) => runtime.block_on(graph(&fleet, &args)),
        Command::Sites(args) => runtime.block_on(sites(&fleet, &args)),
        Command::Lock => runtime.block_on(lock::show(&fleet)),
        Command::Unlock(args) => runtime.block_on(lock::unlock(&fleet, &args)),
        Command::Diff(_) | Command::Validate(_) | Command::Import(_) | Command::Completions(_) => unreachable!("handled above: they need no desired state"),
    }
}

fn options(fleet: &Fleet, common: &Common) -> Result<PlanOptions> {
    let targets = if common.target.is_empty() { None } else { Some(crate::plan::resolve_targets(fleet, &common.target).map_err(anyhow::Error::msg)?) };
    Ok(PlanOptions {
        max_deletes: common.max_deletes.unwrap_or(fleet.settings.max_deletes),
        replace: common.replace.iter().cloned().collect(),
        targets,
        allow_destroy: common.allow_destroy,
        apply_immediately: common.apply_immediately,
        // The lock's journal is read by the caller; `adopt` comes from the fleet, in `planner::plan`.
        ..PlanOptions::default()
    })
}

/// Connects, reads and plans; prints `--stats` (also when planning failed).
async fn read_and_plan(fleet: &Fleet, common: &Common) -> Result<crate::planner::Planned> {
    let started = Instant::now();
    let aws = Aws::connect(&fleet.settings.region).await?;
    let opts = PlanOptions { journal: lock::journal(fleet, &aws).await, ..options(fleet, common)? };
    let planned = crate::planner::plan(&aws, fleet, &opts).await;
    if common.stats {
        print_stats(&aws.stats, started.elapsed());
    }
    Ok(planned?)
}

/// Asks `question` and reads the answer from standard input: true only for `yes`.
fn confirm(question: &str) -> Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        eprintln!("(reading the answer from standard input)");
    }
    print!("\n{question}\n  Enter a value: ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(line.trim() == "yes")
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
        None if args.by.is_some() => {
            let sites: Vec<(String, String)> = fleet.sites.iter().map(|(n, s)| (n.clone(), s.domain.clone())).collect();
            print!("{}{}", target_line(fleet, &planned), render::plan_by_site(&planned.plan, &sites));
        }
        None => print!("{}{}", target_line(fleet, &planned), render::plan_text(&planned.plan)),
    }
    if let Some(out) = &args.out {
        if !planned.plan.conflicts.is_empty() {
            eprintln!("Error: a plan with conflicts cannot be applied; not saved to {}.", out.display());
            return Ok(ExitCode::from(1));
        }
        let saved = SavedPlan::new(&planned.plan, &planned.live, &planned.account, &planned.region, plan_file::digest_dir(&fleet.dir)?);
        plan_file::write(&saved, out)?;
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

/// `converge sites`: the sheet, from a plan (which reads AWS).
async fn sites(fleet: &Fleet, args: &args::SitesArgs) -> Result<ExitCode> {
    let planned = read_and_plan(fleet, &args.common).await?;
    let balancer_dns = &planned.env.balancer_dns;
    let names = render::sites::names_to_look_up(fleet, &planned.live, balancer_dns);
    let lookups = resolve::look_up(names, args.resolver).await?;
    let resolution = lookups.as_ref().map(|lookups| render::sites::Resolution { lookups, balancer_dns });
    let mut rows = render::sites::rows(fleet, &planned.plan, &planned.live, &planned.certificate_days, resolution);
    if args.only == Some(args::Only::Pending) {
        rows.retain(|r| r.pending);
    }
    print!("{}", render::sites::render(&rows, args.format));
    Ok(ExitCode::SUCCESS)
}

/// `converge graph`: offline from the desired state, or from a plan (`--plan`, which reads AWS).
async fn graph(fleet: &Fleet, args: &args::GraphArgs) -> Result<ExitCode> {
    use crate::render::graph;
    let picture = if args.plan {
        graph::plan(&read_and_plan(fleet, &args.common).await?.plan)
    } else {
        let desired = crate::resource::desired(fleet, &Default::default());
        if args.reachability { graph::reachability(&desired) } else { graph::dependencies(&desired) }
    };
    print!("{}", picture.render(args.format));
    let marked = picture.edges.iter().any(|e| e.marked.is_some());
    Ok(if args.detailed_exitcode && marked { ExitCode::from(2) } else { ExitCode::SUCCESS })
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
    // What a management policy holds back (`manage = "observe"`) is drift all the same.
    let drifted = !plan.changes.is_empty()
        || !plan.held.is_empty()
        || !plan.conflicts.is_empty()
        || (args.fail_on.contains(&FailOn::Unmanaged) && !plan.unmanaged.is_empty())
        || (args.fail_on.contains(&FailOn::Observed) && plan.observed_counted().next().is_some());
    if drifted && let Some(url) = &args.webhook {
        let text = format!("converge: fleet {} (account {}, {}): {line}", fleet.settings.name, planned.account, planned.region);
        webhook::post_text(url, &text).await?;
    }
    Ok(if drifted { ExitCode::from(2) } else { ExitCode::SUCCESS })
}
