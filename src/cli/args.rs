//! The command line's grammar: clap definitions only.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use clap_complete::engine::ArgValueCompleter;

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
    /// Show the apply lock: who holds it, doing what, since when, and its journal.
    Lock,
    /// Remove the apply lock ([fleet.lock]) after confirmation, only if its ID is still ID.
    Unlock(UnlockArgs),
    /// Let objects go without deleting them: remove this fleet's ownership (tags, a record's TXT) after
    /// confirmation; the objects stay as they are.
    Forget(ForgetArgs),
    /// Write a desired state into --dir for what the account already holds (objects of no fleet, and the
    /// fleet's own): its plan adopts each object with tags only.
    Import(ImportArgs),
    /// The migration sheet, live: one row per site (names, record, DNS control, pool and load balancer, the
    /// commit deployed against the desired one, media bucket, certificate, integrations) and what is left.
    Sites(SitesArgs),
    /// Pictures of the fleet: the desired state's dependency graph, a plan's order (--plan), or who can
    /// reach whom on which ports (--reachability), as text, DOT or Mermaid.
    Graph(GraphArgs),
    /// Print the shell's completion registration: `source <(converge completions bash)`; addresses and
    /// sites are completed from the desired state.
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct SitesArgs {
    #[arg(long, value_enum, default_value_t = crate::render::sites::SheetFormat::Text)]
    pub format: crate::render::sites::SheetFormat,
    /// `pending`: only the sites with something left to do.
    #[arg(long, value_enum)]
    pub only: Option<Only>,
    /// Where the sites' public names are looked up: `system` (/etc/resolv.conf), a server (`IP` or
    /// `IP:PORT`, nothing else asked), or `none` (no lookups: the resolves column is left empty).
    #[arg(long, default_value = "system", value_name = "system|none|ADDR")]
    pub resolver: super::resolve::Choice,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    Pending,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The plan's changes (read from AWS), each with an arrow to the changes that wait for it.
    #[arg(long, conflicts_with = "reachability")]
    pub plan: bool,
    /// Who can reach whom on which ports (internet, load balancers, pools, databases), from the security
    /// groups' ingress rules, with the paths the tiers do not need marked (offline).
    #[arg(long)]
    pub reachability: bool,
    #[arg(long, value_enum, default_value_t = crate::render::graph::GraphFormat::Text)]
    pub format: crate::render::graph::GraphFormat,
    /// With --reachability: exit 2 when a path is marked (for CI).
    #[arg(long, requires = "reachability")]
    pub detailed_exitcode: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: super::complete::Shell,
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// The addresses to let go (`bucket.acme-media`, `dns_record.acme.sites.agency.net`).
    #[arg(required = true, value_parser = parse_address, add = ArgValueCompleter::new(super::complete::addresses))]
    pub addresses: Vec<crate::resource::Address>,
    /// Forget without asking for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// When another applier holds the lock, wait for it up to this long (90s, 5m, 1h) instead of exiting.
    #[arg(long, value_parser = parse_wait)]
    pub lock_timeout: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The fleet the imported objects become part of.
    #[arg(long)]
    pub fleet: String,
    /// The fleet's DNS zone: a record <site>.<zone> pointing at a load balancer becomes a site.
    #[arg(long)]
    pub dns_zone: Option<String>,
    /// Only objects whose AWS name starts with this, which the names in the fleet leave out (repeatable).
    #[arg(long, value_name = "PREFIX")]
    pub name_prefix: Vec<String>,
    /// Only this object (an address, e.g. load_balancer.shared) and the security groups it refers to
    /// (repeatable).
    #[arg(long, value_name = "ADDRESS", value_parser = parse_address)]
    pub only: Vec<crate::resource::Address>,
    /// Only objects carrying this tag, KEY=VALUE (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tag: Vec<(String, String)>,
    /// The VPC to read (default: the region's default VPC).
    #[arg(long)]
    pub vpc: Option<String>,
    /// The region, when the environment and the profile do not say.
    #[arg(long)]
    pub region: Option<String>,
    /// Overwrite files that exist already.
    #[arg(long)]
    pub force: bool,
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("`{s}` is not KEY=VALUE"))
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The lock's ID, as `converge lock` shows it.
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Objects in the fleet's scope that converge does not own (e.g. a hand-made load balancer using one
    /// of the fleet's security groups).
    Unmanaged,
    /// Values owned by AWS or a policy that differ from the declaration (a group's desired capacity set by
    /// its scaling policy, an instance refresh still running); not values AWS assigned where the desired state
    /// leaves them to AWS (a database's maintenance window), which are shown for reference only.
    Observed,
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

#[derive(Debug, Default, Args)]
pub struct Common {
    /// Print how many AWS API calls the run made, per service and operation, and the wall time.
    #[arg(long)]
    pub stats: bool,
    /// Refuse plans deleting more than this many objects (default: fleet.max_deletes, or 20).
    #[arg(long)]
    pub max_deletes: Option<usize>,
    /// Only this and what it needs: site.NAME, pool.NAME or an address (repeatable).
    #[arg(long, value_name = "TARGET", add = ArgValueCompleter::new(super::complete::targets))]
    pub target: Vec<String>,
    /// Replace this object even though nothing forces it (repeatable).
    #[arg(long, value_name = "ADDRESS", value_parser = parse_address, add = ArgValueCompleter::new(super::complete::addresses))]
    pub replace: Vec<crate::resource::Address>,
    /// Allow deleting databases and media buckets removed from the desired state (a final snapshot is taken
    /// of a primary database; a bucket goes only when empty).
    #[arg(long)]
    pub allow_destroy: bool,
    /// Database changes take effect now instead of in the maintenance window (may restart or fail over).
    #[arg(long)]
    pub apply_immediately: bool,
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
    /// `site`: the text plan read by site, each site with the changes on its path (JSON and markdown
    /// already say which sites each change affects).
    #[arg(long, value_enum)]
    pub by: Option<By>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    Site,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// text, or json (the problems as a list; markdown is not offered here).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also check, against AWS, that each site's listener certificate covers its names and stays valid for
    /// fleet.certificate_horizon_days (default 21).
    #[arg(long)]
    pub online: bool,
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
    /// Start instance refreshes and return, instead of waiting for them to finish (`converge drift` shows
    /// one still running).
    #[arg(long)]
    pub no_wait: bool,
    /// text, or json: the plan and the result as one document on stdout (progress goes to stderr);
    /// needs --auto-approve or a saved plan.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// When another applier holds the lock, wait for it up to this long (90s, 5m, 1h) instead of exiting.
    #[arg(long, value_parser = parse_wait)]
    pub lock_timeout: Option<Duration>,
    /// POST a Slack-compatible message ({"text": ...}) here saying what was applied, for which sites and by
    /// whom, and what failed.
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
}

impl Cli {
    /// The log format the command asks for: JSON diagnostics go with JSON events.
    pub fn log_format(&self) -> crate::reconcile::event::LogFormat {
        match &self.command {
            Command::Reconcile(args) => args.log_format,
            _ => crate::reconcile::event::LogFormat::Text,
        }
    }
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
    /// With --apply, when another applier holds the lock, wait for it up to this long before the pass
    /// gives up (default: give up at once; the next pass tries again).
    #[arg(long, value_parser = parse_wait)]
    pub lock_timeout: Option<Duration>,
    /// Serve /metrics (Prometheus), /healthz and /readyz here, e.g. 127.0.0.1:9090.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// How the loop writes what it does.
    #[arg(long, value_enum, default_value_t = crate::reconcile::event::LogFormat::Text)]
    pub log_format: crate::reconcile::event::LogFormat,
    /// POST a Slack-compatible message ({"text": ...}) here when the loop corrects drift, when an object
    /// fails or its backoff grows, when it recovers, and when passes start or stop failing.
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = crate::lock::parse_duration(s)?;
    if d.is_zero() {
        return Err("the interval must be at least one second".into());
    }
    Ok(d)
}

fn parse_wait(s: &str) -> Result<Duration, String> {
    crate::lock::parse_duration(s)
}
