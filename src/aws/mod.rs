//! The provider: the only module that names `aws_sdk_*` types. It reads live state into normalised specs
//! (batched, paginated, concurrent, counted) and executes the operations a plan decided on.

pub mod budget;
mod certs;
mod cloudwatch;
mod ec2;
mod elb;
mod errors;
mod executor;
pub mod lock;
mod pool_ops;
mod pools;
mod rds;
mod rds_ops;
mod route53;
mod s3;
mod stats;
mod tagging;

use std::collections::{BTreeMap, BTreeSet};

use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::{BehaviorVersion, Region};

pub use errors::{AwsError, Missing, Unresolved};
pub(crate) use errors::{built, call};
pub use executor::{AwsExecutor, Progress};

/// Whether the secret in environment variable `var` (a master password) is set: what apply's preflight asks.
pub fn has_secret(var: &str) -> bool {
    rds_ops::secret(var).is_some()
}
pub use stats::{CallCount, Failed, Stats};

use crate::live::{Found, Live, Reads};
use crate::model::Fleet;
use crate::resource::{ADDRESS_TAG, Address, Environment, FLEET_TAG, Kind, ResourceKind};

/// Who owns an object, from its tags: this fleet (at the address it names), or someone else. The one
/// ownership rule every kind's reader applies.
pub(crate) enum Owner {
    Us(Address),
    /// No converge tags, and the AWS name of a desired object (at this address): a look-alike that may be
    /// adopted (`adopt = true`, or the intent journal), so it is read in full, as an owned object is, and
    /// the objects that refer to it name it as the fleet does.
    Unowned(Address),
    Other(Option<String>),
}

impl Owner {
    /// The address in the fleet: ours, or the one an adoption would give it.
    pub(crate) fn address(&self) -> Option<&Address> {
        match self {
            Owner::Us(a) | Owner::Unowned(a) => Some(a),
            Owner::Other(_) => None,
        }
    }
}

pub(crate) fn owner(fleet: &str, kind: Kind, tags: &BTreeMap<String, String>) -> Owner {
    let address = tags.get(ADDRESS_TAG).and_then(|a| a.parse::<Address>().ok());
    match (tags.get(FLEET_TAG), address) {
        (Some(f), Some(a)) if f == fleet && a.kind == kind => Owner::Us(a),
        (f, _) => Owner::Other(f.cloned()),
    }
}

/// The AWS names of the fleet's desired objects, by kind (AWS name -> the name in its address): what tells a
/// reader which objects it does not own are look-alikes, and which of those may be adopted.
#[derive(Debug, Clone, Default)]
pub(crate) struct Wanted {
    names: BTreeMap<Kind, BTreeMap<String, String>>,
    /// `converge import`: every object of no fleet is wanted, at the name its AWS name gives it.
    every: Option<crate::import::Options>,
    /// `--target`: the addresses on the targets' path. The reads AWS makes one object at a time (a bucket's
    /// configuration, a load balancer's attributes, a template's versions, a group's instance refreshes)
    /// are made for these only; an object of those kinds off the path is left out of what is read.
    focus: Option<BTreeSet<Address>>,
    /// A re-check of a reviewed plan ([`Wanted::rechecking`]): only these kinds are read at all.
    kinds: Option<BTreeSet<Kind>>,
}

impl Wanted {
    /// From the desired state (names never depend on what AWS holds).
    pub(crate) fn of(fleet: &Fleet) -> Wanted {
        let mut names: BTreeMap<Kind, BTreeMap<String, String>> = BTreeMap::new();
        for (address, spec) in crate::resource::desired(fleet, &Environment::default()) {
            names.entry(address.kind).or_default().insert(spec.aws_name().to_string(), address.name);
        }
        Wanted { names, every: None, focus: None, kinds: None }
    }

    /// As [`Wanted::of`], reading one object at a time only those on `path` (`--target`).
    pub(crate) fn focused(fleet: &Fleet, path: &BTreeSet<Address>) -> Wanted {
        Wanted { focus: Some(path.clone()), ..Wanted::of(fleet) }
    }

    /// As [`Wanted::focused`] on `touched` (what a reviewed plan changes), and of the other kinds only those
    /// whose listings the touched kinds' readers name objects through: nothing else can make the plan stale,
    /// and the apply needs nothing else.
    pub(crate) fn rechecking(fleet: &Fleet, touched: &BTreeSet<Address>) -> Wanted {
        let mut kinds: BTreeSet<Kind> = touched.iter().map(|a| a.kind).collect();
        let through: Vec<Kind> = kinds.iter().flat_map(|k| names_through(*k)).copied().collect();
        kinds.extend(through);
        Wanted { kinds: Some(kinds), ..Wanted::focused(fleet, touched) }
    }

    /// Whether this is a re-check of a reviewed plan: only live state is wanted, no part of the environment
    /// that shapes desired specs.
    pub(crate) fn rechecks(&self) -> bool {
        self.kinds.is_some()
    }

    /// Whether any of `kinds` is read at all (every kind is, but in a re-check).
    pub(crate) fn reads_kinds(&self, kinds: &[Kind]) -> bool {
        self.kinds.as_ref().is_none_or(|read| kinds.iter().any(|k| read.contains(k)))
    }

    /// Whether an object of a desired AWS name is read on its own before its owner is known (a bucket the
    /// tag index does not hold): a desired name, on the path when there is a focus.
    pub(crate) fn reads_desired(&self, kind: Kind, name: &str) -> bool {
        match (&self.focus, self.names.get(&kind).and_then(|n| n.get(name))) {
            (Some(focus), Some(fleet_name)) => focus.contains(&Address::new(kind, fleet_name)),
            (Some(_), None) => false,
            (None, _) => self.contains(kind, name),
        }
    }

    /// Whether an object found in a listing is read further, one call (or a few) for it alone: ours and
    /// look-alikes, unless a focus leaves it off the path.
    pub(crate) fn reads(&self, owner: &Owner) -> bool {
        match owner {
            Owner::Us(a) | Owner::Unowned(a) => self.focus.as_ref().is_none_or(|f| f.contains(a)),
            Owner::Other(_) => false,
        }
    }

    /// Every object of no fleet, named as an import names it.
    pub(crate) fn every(opts: &crate::import::Options) -> Wanted {
        Wanted { names: BTreeMap::new(), every: Some(opts.clone()), focus: None, kinds: None }
    }

    /// Whether every object is wanted (an import): readers then list them all, not only desired names.
    pub(crate) fn all(&self) -> bool {
        self.every.is_some()
    }

    /// The desired AWS names of `kind`.
    pub(crate) fn names(&self, kind: Kind) -> Vec<String> {
        self.names.get(&kind).map(|n| n.keys().cloned().collect()).unwrap_or_default()
    }

    pub(crate) fn contains(&self, kind: Kind, name: &str) -> bool {
        self.all() || self.names.get(&kind).is_some_and(|n| n.contains_key(name))
    }

    /// [`owner`], with an untagged object that has a desired name as [`Owner::Unowned`] at that address.
    pub(crate) fn owner(&self, fleet: &str, kind: Kind, name: &str, tags: &BTreeMap<String, String>) -> Owner {
        match owner(fleet, kind, tags) {
            Owner::Other(None) => match (&self.every, self.names.get(&kind).and_then(|n| n.get(name))) {
                (Some(opts), _) => Owner::Unowned(Address::new(kind, crate::import::fleet_name(name, opts))),
                (None, Some(fleet_name)) => Owner::Unowned(Address::new(kind, fleet_name)),
                (None, None) => Owner::Other(None),
            },
            o => o,
        }
    }
}

/// The kinds whose listings a reader of `kind` needs to name what its objects refer to: security groups
/// (objects hold their ids) and load balancers (a group holds their AWS names). Every kind is listed: a new
/// one does not compile until its reader's needs are said.
fn names_through(kind: Kind) -> &'static [Kind] {
    match kind {
        Kind::LoadBalancer | Kind::LaunchTemplate | Kind::DbInstance => &[Kind::SecurityGroup],
        Kind::AutoScalingGroup => &[Kind::LoadBalancer],
        Kind::SecurityGroup | Kind::DbParameterGroup | Kind::DnsRecord | Kind::Bucket | Kind::Alarm => &[],
    }
}

/// `read`, or nothing read (the reader's empty result) when `wanted` reads none of `kinds`.
async fn read_kinds<T: Default>(wanted: &Wanted, kinds: &[Kind], read: impl Future<Output = Result<T, AwsError>>) -> Result<T, AwsError> {
    if wanted.reads_kinds(kinds) { read.await } else { Ok(T::default()) }
}

impl<S: ResourceKind> Found<S> {
    /// Files an object read in full by its owner: ours, a look-alike that may be adopted (with its spec),
    /// or (when its name is desired) another's look-alike.
    pub(crate) fn file(&mut self, owner: Owner, id: impl Into<String>, spec: S) {
        match owner {
            Owner::Us(address) => self.own(address, id, spec),
            Owner::Unowned(_) => self.foreign(spec.aws_name().to_string(), id, None, Some(spec)),
            Owner::Other(fleet) => self.foreign(spec.aws_name().to_string(), id, fleet, None),
        }
    }
}

/// Per-object reads started at once, per kind: neither what paces them (every attempt waits on its
/// service's rate budget) nor what bounds the open sockets (the run's [`budget::Connections`]), only the
/// memory a large fleet's reads hold at once (about 40 KiB a call in flight, its connection included). A
/// fleet-200's four reads per bucket all start together; a fleet-500's buckets go in three waves.
pub(crate) const READS_IN_FLIGHT: usize = 200;

/// Look-alikes whose spec was not read: this kind creates its objects with their tags in one call, so a
/// crash or a lost response never leaves one of ours untagged, and there is nothing to adopt.
pub(crate) fn unread<S>(found: Vec<(String, String, Option<String>)>) -> Vec<crate::live::Look<S>> {
    found.into_iter().map(|(name, id, fleet)| (name, id, fleet, None)).collect()
}

/// How long one HTTP attempt, and one call with all its retries, may take before the SDK gives up on it.
///
/// The attempt timeout (default 30 s) bounds a hung connection: the largest single answers converge asks for
/// (a `DescribeLoadBalancers` page of 400, a `ListResourceRecordSets` page of 300, a `ChangeResourceRecordSets`
/// batch of up to 1,000 changes) come back in a few seconds, so 30 s only ever cuts an attempt that is stuck;
/// a timed-out attempt is transient and retried like a 503. The operation timeout (default 5 min) bounds a
/// call with its 8 attempts and the jittered backoff between them (at most 20 s each): a call whose every
/// attempt hangs fails within five minutes, after seven or eight of them, instead of hanging the run.
/// Long waits (an instance refresh, a database becoming available) are converge's own polling loops of short
/// calls, never one call, so no call needs more. `CONVERGE_ATTEMPT_TIMEOUT` and `CONVERGE_OPERATION_TIMEOUT`
/// (`30s`, `2m`, `1h`, or bare seconds) override them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub attempt: std::time::Duration,
    pub operation: std::time::Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts { attempt: std::time::Duration::from_secs(30), operation: std::time::Duration::from_secs(300) }
    }
}

impl Timeouts {
    pub const ATTEMPT_VAR: &'static str = "CONVERGE_ATTEMPT_TIMEOUT";
    pub const OPERATION_VAR: &'static str = "CONVERGE_OPERATION_TIMEOUT";

    /// From the process environment.
    pub fn from_env() -> Result<Timeouts, AwsError> {
        Timeouts::from_vars(|name| std::env::var(name).ok())
    }

    /// From variables looked up by `var`: unset or empty takes the default; a value must be a duration of at
    /// least one second, and the attempt timeout no longer than the operation timeout.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Timeouts, AwsError> {
        let read = |name: &'static str, default: std::time::Duration| -> Result<std::time::Duration, AwsError> {
            let bad = |message: String| AwsError::Setting { variable: name.to_string(), message };
            match var(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => match crate::lock::parse_duration(&v) {
                    Ok(d) if d.is_zero() => Err(bad(format!("`{v}`: a timeout must be at least 1s"))),
                    Ok(d) => Ok(d),
                    Err(e) => Err(bad(e)),
                },
            }
        };
        let defaults = Timeouts::default();
        let attempt = read(Timeouts::ATTEMPT_VAR, defaults.attempt)?;
        let operation = read(Timeouts::OPERATION_VAR, defaults.operation)?;
        if attempt > operation {
            return Err(AwsError::Setting {
                variable: Timeouts::ATTEMPT_VAR.to_string(),
                message: format!(
                    "the attempt timeout ({}s) is longer than the operation timeout ({}s, {}): no attempt could use it",
                    attempt.as_secs(),
                    operation.as_secs(),
                    Timeouts::OPERATION_VAR
                ),
            });
        }
        Ok(Timeouts { attempt, operation })
    }
}

/// AWS's default of 3 attempts gives up too soon when a fleet's worth of control-plane reads meets API
/// throttling. Unless the user chose (`AWS_MAX_ATTEMPTS`, or a profile's `max_attempts` other than 3),
/// converge makes up to 8, with the SDK's jittered exponential backoff between them. The attempt and
/// operation timeouts are `timeouts`; the SDK's connect timeout (3.1 s) stays.
pub fn patient(conf: aws_config::SdkConfig, timeouts: Timeouts) -> aws_config::SdkConfig {
    const ATTEMPTS: u32 = 8;
    let chosen = std::env::var_os("AWS_MAX_ATTEMPTS").is_some() || conf.retry_config().is_some_and(|r| r.max_attempts() != 3);
    let retry = if chosen {
        conf.retry_config().cloned()
    } else {
        Some(conf.retry_config().cloned().unwrap_or_else(aws_config::retry::RetryConfig::standard).with_max_attempts(ATTEMPTS))
    };
    let mut timeout = aws_config::timeout::TimeoutConfig::builder().operation_attempt_timeout(timeouts.attempt).operation_timeout(timeouts.operation).build();
    if let Some(sdk) = conf.timeout_config() {
        timeout.take_defaults_from(sdk);
    }
    let mut builder = conf.into_builder();
    builder.set_retry_config(retry);
    builder.timeout_config(timeout).build()
}

/// The retry quota of one client. The SDK's standard retries draw from a token bucket shared by every client
/// of a region and service in the process (500 tokens; 5 per throttled retry, 10 per transient one; a retry
/// that succeeds gives its tokens back, but a call retried more than once keeps all but the last for good):
/// once a burst of throttling has drained it, every later call fails on its first error with no retry at
/// all. (Measured: fifty load balancers' reads, each throttled three times, drain it within one plan.) That protects a long-lived service from retry storms; converge is a bounded
/// run whose every call is already bounded (8 attempts with jittered exponential backoff, the attempt and
/// operation timeouts), and a fleet-sized read is throttled by design (classic ELB allows a burst of 40,
/// then 10 per second). So each client gets its own partition with an unlimited bucket: retries cost no
/// quota and never run dry; their number per call, their backoff and what is retried (throttled and
/// transient errors only, per the SDK's classifiers) are unchanged. Pacing belongs to the rate budget, not
/// to a quota that fails calls.
fn retry_partition(service: &'static str) -> aws_sdk_ec2::config::retry::RetryPartition {
    use aws_sdk_ec2::config::retry::{RetryPartition, TokenBucket};
    RetryPartition::custom(format!("converge-{service}")).token_bucket(TokenBucket::unlimited()).build()
}

/// The SDK clients of one run, sharing one configuration and one call counter.
#[derive(Clone)]
pub struct Aws {
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) elb: aws_sdk_elasticloadbalancing::Client,
    pub(crate) autoscaling: aws_sdk_autoscaling::Client,
    pub(crate) rds: aws_sdk_rds::Client,
    pub(crate) route53: aws_sdk_route53::Client,
    pub(crate) s3: aws_sdk_s3::Client,
    pub(crate) acm: aws_sdk_acm::Client,
    pub(crate) iam: aws_sdk_iam::Client,
    pub(crate) sts: aws_sdk_sts::Client,
    pub(crate) cloudwatch: aws_sdk_cloudwatch::Client,
    pub(crate) tagging: aws_sdk_resourcegroupstagging::Client,
    pub stats: Stats,
    pub region: String,
    /// The attempt timeout the clients' HTTP connectors hold (see [`Aws::from_conf_with`]).
    pub attempt_timeout: Option<std::time::Duration>,
    /// The caller's ARN, as the first [`Aws::account`] learned it (what chat messages say applied).
    caller: std::sync::Arc<std::sync::OnceLock<String>>,
}

impl Aws {
    /// Loads the standard chain (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`, SSO, credential_process, ...),
    /// with the fleet's region as the default.
    /// The timeouts come from the environment ([`Timeouts`]); a malformed one is an error before any call.
    pub async fn connect(default_region: &str) -> Result<Aws, AwsError> {
        let timeouts = Timeouts::from_env()?;
        let rates = budget::Rates::from_env()?;
        // The environment and the profile may choose the region; otherwise the fleet's. Not IMDS: the
        // fleet's region is a better default than the region of whatever machine runs converge.
        let region = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
            .or_else(ProfileFileRegionProvider::new())
            .or_else(Region::new(default_region.to_string()));
        let conf = aws_config::defaults(BehaviorVersion::latest()).region(region).load().await;
        Ok(Aws::from_conf_with(&patient(conf, timeouts), default_region, &rates))
    }

    /// Clients from an explicit SDK configuration (tests point this at their own emulator), with the default
    /// rate budget.
    pub fn from_conf(conf: &aws_config::SdkConfig, default_region: &str) -> Aws {
        Aws::from_conf_with(conf, default_region, &budget::Rates::default())
    }

    /// Clients from an explicit SDK configuration, each with its own unlimited retry quota
    /// ([`retry_partition`]), its service's rate budget ([`budget`]: the HTTP client paces every attempt,
    /// then holds it to the attempt timeout, which it takes over from the SDK so that waiting on the budget
    /// never times an attempt out), and the run's call counter.
    pub fn from_conf_with(conf: &aws_config::SdkConfig, default_region: &str, rates: &budget::Rates) -> Aws {
        let stats = Stats::default();
        let attempt = conf.timeout_config().and_then(|t| t.operation_attempt_timeout());
        let timeouts = conf.timeout_config().map(|t| t.to_builder().disable_operation_attempt_timeout().build());
        let http = conf.http_client().unwrap_or_else(|| {
            use aws_smithy_http_client::tls;
            aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc)).build_https()
        });
        // The SDK's upload stall check starts its clock when the request body is wrapped, before the paced
        // client waits on the budget: a wait of over 5 s would read as a stalled upload. Requests here are
        // small and sent whole, and the attempt timeout cuts any attempt that hangs; downloads stay checked.
        let stall = aws_smithy_runtime_api::client::stalled_stream_protection::StalledStreamProtectionConfig::enabled().upload_enabled(false).build();
        let connections = budget::Connections::new(rates.connections);
        macro_rules! client {
            ($krate:ident, $service:literal) => {{
                let paced = budget::Paced::new(http.clone(), rates.budget($service, stats.budget_waits()), connections.clone(), attempt);
                let mut b = $krate::config::Builder::from(conf).retry_partition(retry_partition($service)).interceptor(stats.clone()).interceptor(budget::Tag);
                b.set_timeout_config(timeouts.clone());
                // Every client retries alike: an older client (CloudWatch's, pinned) takes no retries from a
                // configuration that names none.
                b.set_retry_config(Some(conf.retry_config().cloned().unwrap_or_else(aws_smithy_types::retry::RetryConfig::standard)));
                b.stalled_stream_protection(stall.clone()).http_client(paced)
            }};
        }
        let ec2 = aws_sdk_ec2::Client::from_conf(client!(aws_sdk_ec2, "ec2").build());
        let elb = aws_sdk_elasticloadbalancing::Client::from_conf(client!(aws_sdk_elasticloadbalancing, "elasticloadbalancing").build());
        let autoscaling = aws_sdk_autoscaling::Client::from_conf(client!(aws_sdk_autoscaling, "autoscaling").build());
        let rds = aws_sdk_rds::Client::from_conf(client!(aws_sdk_rds, "rds").build());
        let route53 = aws_sdk_route53::Client::from_conf(client!(aws_sdk_route53, "route53").build());
        // An endpoint override (an emulator) cannot serve virtual-hosted bucket names: address by path.
        let s3 = aws_sdk_s3::Client::from_conf(client!(aws_sdk_s3, "s3").force_path_style(conf.endpoint_url().is_some()).build());
        let acm = aws_sdk_acm::Client::from_conf(client!(aws_sdk_acm, "acm").build());
        let iam = aws_sdk_iam::Client::from_conf(client!(aws_sdk_iam, "iam").build());
        let sts = aws_sdk_sts::Client::from_conf(client!(aws_sdk_sts, "sts").build());
        let cloudwatch = aws_sdk_cloudwatch::Client::from_conf(client!(aws_sdk_cloudwatch, "monitoring").build());
        let tagging = aws_sdk_resourcegroupstagging::Client::from_conf(client!(aws_sdk_resourcegroupstagging, "tagging").build());
        let region = conf.region().map_or_else(|| default_region.to_string(), |r| r.to_string());
        Aws { ec2, elb, autoscaling, rds, route53, s3, acm, iam, sts, cloudwatch, tagging, stats, region, attempt_timeout: attempt, caller: Default::default() }
    }

    /// The caller's ARN, once [`Aws::account`] has asked for it (no call of its own).
    pub fn caller(&self) -> Option<&str> {
        self.caller.get().map(String::as_str)
    }

    /// The caller's account; refuses to go on when `expected` (`fleet.account`) is set and differs.
    pub async fn account(&self, expected: Option<&str>) -> Result<String, AwsError> {
        let who = self.sts.get_caller_identity().send().await.map_err(call("sts", "GetCallerIdentity", "the caller"))?;
        let actual = who.account().unwrap_or_default().to_string();
        if let Some(arn) = who.arn() {
            let _ = self.caller.set(arn.to_string());
        }
        match expected {
            Some(expected) if expected != actual => Err(AwsError::WrongAccount { expected: expected.to_string(), actual }),
            _ => Ok(actual),
        }
    }

    /// The caller's account (as [`Aws::account`]) and `reads`, run side by side: the identity costs no round
    /// trip of its own. A wrong account's error wins over whatever its reads said, and stops them: they are
    /// dropped unanswered or unread. Nothing but reads may run here; a write always waits for the account.
    pub async fn guarded<T>(&self, expected: Option<&str>, reads: impl std::future::Future<Output = Result<T, AwsError>>) -> Result<(String, T), AwsError> {
        let (mut account, mut reads) = (std::pin::pin!(self.account(expected)), std::pin::pin!(reads));
        tokio::select! {
            biased;
            account = &mut account => {
                let account = account?;
                Ok((account, reads.await?))
            }
            read = &mut reads => {
                let account = account.await?;
                Ok((account, read?))
            }
        }
    }

    /// Reads the environment and every kind's live state, concurrently.
    pub async fn read(&self, fleet: &Fleet) -> Result<(Environment, Live), AwsError> {
        self.read_wanted(fleet, &Wanted::of(fleet)).await
    }

    /// Like [`Aws::read`], but of the kinds read one object at a time, only the objects at `focus` (see
    /// [`Wanted::focused`]); the kinds read in batches are read whole. What `--target` reads (its path), and
    /// what re-checking a saved plan reads (the objects it touches).
    pub async fn read_focused(&self, fleet: &Fleet, focus: &BTreeSet<Address>) -> Result<(Environment, Live), AwsError> {
        self.read_wanted(fleet, &Wanted::focused(fleet, focus)).await
    }

    /// What re-checking a reviewed plan reads (see [`Wanted::rechecking`]): the objects it touches, as
    /// [`Aws::read_focused`] reads them, and of the other kinds only what naming them needs.
    pub async fn read_again(&self, fleet: &Fleet, touched: &BTreeSet<Address>) -> Result<Live, AwsError> {
        Ok(self.read_wanted(fleet, &Wanted::rechecking(fleet, touched)).await?.1)
    }

    /// What `converge import` reads: every object of no fleet in the region (the fleet's own too), each read
    /// in full as an adoption takes it, named as `opts` names them; the fleet's zone and every other hosted
    /// zone with its records when `opts.dns_zone` is given.
    pub async fn read_for_import(&self, opts: &crate::import::Options) -> Result<(Environment, Live), AwsError> {
        let mut fleet = Fleet::default();
        fleet.settings.name = opts.fleet.clone();
        fleet.settings.region = opts.region.clone();
        fleet.settings.dns_zone = opts.dns_zone.clone();
        fleet.network.vpc = opts.vpc.clone();
        self.read_wanted(&fleet, &Wanted::every(opts)).await
    }

    async fn read_wanted(&self, fleet: &Fleet, wanted: &Wanted) -> Result<(Environment, Live), AwsError> {
        let name = &fleet.settings.name;
        // The zones' records as soon as the environment names the zones, beside the other kinds' reads.
        let env_and_records = async {
            let env = self.environment(fleet, wanted).await?;
            let zones: Vec<(String, String)> = env.hosted_zones.iter().chain(&env.private_zones).map(|(n, id)| (n.clone(), id.clone())).collect();
            let has_records = fleet.settings.dns_zone.is_some() || fleet.has_hostnames();
            let records = if has_records && wanted.reads_kinds(&[Kind::DnsRecord]) { Some(self.read_zones(zones, wanted).await?) } else { None };
            Ok::<_, AwsError>((env, records))
        };
        // Each on the heap: side by side, their futures (the SDK's are large) would not fit a thread's stack.
        let ((mut env, records), groups, balancers, pools, rds, buckets, alarms) = tokio::try_join!(
            Box::pin(env_and_records),
            Box::pin(read_kinds(wanted, &[Kind::SecurityGroup], self.read_security_groups(name, wanted))),
            Box::pin(read_kinds(wanted, &[Kind::LoadBalancer], self.read_load_balancers(name, wanted))),
            Box::pin(read_kinds(wanted, &[Kind::LaunchTemplate, Kind::AutoScalingGroup], self.read_pools(fleet, wanted))),
            Box::pin(read_kinds(wanted, &[Kind::DbParameterGroup, Kind::DbInstance], self.read_rds(fleet, wanted))),
            Box::pin(read_kinds(wanted, &[Kind::Bucket], self.read_buckets(fleet, wanted))),
            Box::pin(read_kinds(wanted, &[Kind::Alarm], self.read_alarms(fleet, wanted))),
        )?;
        // Objects name security groups by id and load balancers by AWS name: these say which are the fleet's
        // (ours, and look-alikes that may be adopted).
        let group_ids = groups.names(&env.vpc_id);
        let security_groups = groups.found(&env.vpc_id, env.vpc_ipv6, &group_ids);
        env.balancer_dns = balancers.dns_names();
        env.db_endpoints = rds.endpoints();
        let balancer_names = balancers.names();
        let load_balancers = balancers.found(&group_ids);
        // The second round, concurrently: names of the images live templates use (those the fleet resolved
        // are known already), the engine defaults of parameter groups with changes.
        let known: BTreeMap<String, String> = env.images.values().filter_map(|i| Some((i.id.clone(), i.name.clone()?))).collect();
        let unknown = pools.image_ids().into_iter().filter(|id| !known.contains_key(id)).collect();
        // (A re-check needs no defaults: they shape desired specs, and its plan was made.)
        let families = if wanted.rechecks() { BTreeSet::new() } else { rds.families_to_change(fleet) };
        let (mut names, static_parameters) = tokio::try_join!(self.image_names(unknown), self.static_parameters(families))?;
        names.extend(known);
        let (launch_templates, auto_scaling_groups) = pools.found(&names, &group_ids, &balancer_names);
        env.static_parameters = static_parameters;
        let (db_parameter_groups, db_instances) = rds.found(&group_ids);
        let dns_records = match records {
            Some(records) => records.found(fleet, wanted),
            None => Found::default(),
        };
        // One field per kind of the registry: a kind this function does not read does not compile.
        let reads = Reads {
            security_group: security_groups,
            load_balancer: load_balancers,
            launch_template: launch_templates,
            auto_scaling_group: auto_scaling_groups,
            db_parameter_group: db_parameter_groups,
            db_instance: db_instances,
            dns_record: dns_records,
            bucket: buckets.found(),
            alarm: alarms,
        };
        Ok((env, Live::from(reads)))
    }

    /// The VPC (given, or the default one) and, when some load balancer needs them, its zones. A re-check
    /// reads only what the readers of its kinds use: the VPC for security groups, the hosted zones for
    /// records (the rest shapes desired specs, and its plan was made).
    async fn environment(&self, fleet: &Fleet, wanted: &Wanted) -> Result<Environment, AwsError> {
        let records = wanted.reads_kinds(&[Kind::DnsRecord]);
        let needs_vpc = wanted.reads_kinds(&[Kind::SecurityGroup, Kind::DnsRecord]);
        let needs_zones = !wanted.rechecks()
            && fleet.network.zones.is_empty()
            && fleet.network.subnets.is_empty()
            && (fleet.load_balancers.values().any(|lb| lb.zones.is_empty() && lb.subnets.is_empty())
                || fleet.pools.values().any(|p| p.zones.is_empty() && p.subnets.is_empty()));
        // The VPC, then (with database hostnames) the private zones associated with it.
        let vpc = async {
            if !needs_vpc {
                return Ok((String::new(), false, BTreeMap::new()));
            }
            let (vpc, ipv6) = match &fleet.network.vpc {
                Some(v) => (v.clone(), None),
                None => {
                    let (vpc, ipv6) = self.default_vpc().await?;
                    (vpc, Some(ipv6))
                }
            };
            // A given VPC is described only for its security groups' default egress.
            let ipv6 = async {
                match ipv6 {
                    Some(known) => Ok(known),
                    None if !fleet.security_groups.is_empty() => self.vpc_ipv6(&vpc).await,
                    None => Ok(false),
                }
            };
            let private = async { if records && fleet.has_hostnames() { self.private_zones(&vpc).await } else { Ok(BTreeMap::new()) } };
            let (ipv6, private) = tokio::try_join!(ipv6, private)?;
            Ok::<_, AwsError>((vpc, ipv6, private))
        };
        let zones = async { if needs_zones { self.zones().await } else { Ok(Vec::new()) } };
        let hosted = async {
            if !records || (fleet.settings.dns_zone.is_none() && !fleet.has_hostnames()) {
                return Ok(Default::default());
            }
            let zones = self.hosted_zones().await?;
            let within = |name: &str| zones.keys().any(|z| crate::resource::dns_record::in_zone(name, z));
            let Some(zone) = &fleet.settings.dns_zone else { return Ok(zones) };
            let zone = crate::model::dns_name(zone);
            if !zones.contains_key(&zone) {
                return Err(Missing::FleetZone { zone }.into());
            }
            for (name, site) in fleet.sites.iter().filter(|(_, s)| s.dns == crate::model::DnsMode::Managed) {
                let domain = crate::model::dns_name(&site.domain);
                if !within(&domain) {
                    return Err(Missing::SiteZone { site: name.clone(), domain }.into());
                }
            }
            Ok(zones)
        };
        // (A re-check names its templates' images by their ids, in the second round.)
        let images = async { if wanted.rechecks() { Ok(Default::default()) } else { self.resolve_images(fleet).await } };
        let ((vpc_id, vpc_ipv6, private_zones), zones, images, hosted_zones) = tokio::try_join!(vpc, zones, images, hosted)?;
        // A hostname is in a private zone of the VPC, else in a public zone.
        let within = |zones: &BTreeMap<String, String>, name: &str| zones.keys().any(|z| crate::resource::dns_record::in_zone(name, z));
        for (database, db) in fleet.databases.iter().filter(|_| records) {
            if let Some(h) = db.hostname.as_ref().filter(|h| !within(&private_zones, &h.value) && !within(&hosted_zones, &h.value)) {
                return Err(Missing::HostnameZone { database: database.clone(), hostname: h.value.clone() }.into());
            }
        }
        Ok(Environment { vpc_id, vpc_ipv6, zones, images, hosted_zones, private_zones, region: self.region.clone(), ..Environment::default() })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::{Class, Classify};

    fn timeouts(vars: &[(&str, &str)]) -> Result<Timeouts, AwsError> {
        Timeouts::from_vars(|name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn a_recheck_reads_the_kinds_it_touches_and_those_they_are_named_through_alone() {
        let deploy: BTreeSet<Address> = [Address::new(Kind::LaunchTemplate, "web"), Address::new(Kind::AutoScalingGroup, "web")].into();
        let wanted = Wanted::rechecking(&Fleet::default(), &deploy);
        assert!(wanted.rechecks());
        for kind in [Kind::LaunchTemplate, Kind::AutoScalingGroup, Kind::SecurityGroup, Kind::LoadBalancer] {
            assert!(wanted.reads_kinds(&[kind]), "{kind:?}");
        }
        for kind in [Kind::Bucket, Kind::DnsRecord, Kind::DbInstance, Kind::DbParameterGroup, Kind::Alarm] {
            assert!(!wanted.reads_kinds(&[kind]), "{kind:?}");
        }
        let group: BTreeSet<Address> = [Address::new(Kind::AutoScalingGroup, "web")].into();
        let wanted = Wanted::rechecking(&Fleet::default(), &group);
        assert!(wanted.reads_kinds(&[Kind::LaunchTemplate, Kind::AutoScalingGroup]), "one reader reads both");
        assert!(!wanted.reads_kinds(&[Kind::SecurityGroup]), "a group names no security group");
        let plan = Wanted::of(&Fleet::default());
        assert!(plan.reads_kinds(&[Kind::Bucket]) && !plan.rechecks(), "a plan reads every kind");
    }

    #[test]
    fn timeouts_default_to_30s_per_attempt_and_5m_per_call() {
        assert_eq!(timeouts(&[]).unwrap(), Timeouts { attempt: Duration::from_secs(30), operation: Duration::from_secs(300) });
        assert_eq!(timeouts(&[("CONVERGE_ATTEMPT_TIMEOUT", " ")]).unwrap(), Timeouts::default(), "empty is unset");
    }

    #[test]
    fn timeouts_are_read_as_durations_from_the_environment() {
        let t = timeouts(&[("CONVERGE_ATTEMPT_TIMEOUT", "10s"), ("CONVERGE_OPERATION_TIMEOUT", "2m")]).unwrap();
        assert_eq!(t, Timeouts { attempt: Duration::from_secs(10), operation: Duration::from_secs(120) });
        assert_eq!(timeouts(&[("CONVERGE_OPERATION_TIMEOUT", "1h")]).unwrap().operation, Duration::from_secs(3600));
        assert_eq!(timeouts(&[("CONVERGE_ATTEMPT_TIMEOUT", "45")]).unwrap().attempt, Duration::from_secs(45), "bare seconds");
    }

    #[test]
    fn a_malformed_timeout_is_an_invalid_setting_naming_its_variable() {
        for (vars, words) in [
            (vec![("CONVERGE_ATTEMPT_TIMEOUT", "soon")], "CONVERGE_ATTEMPT_TIMEOUT: `soon` is not a duration"),
            (vec![("CONVERGE_OPERATION_TIMEOUT", "0s")], "CONVERGE_OPERATION_TIMEOUT: `0s`: a timeout must be at least 1s"),
            (vec![("CONVERGE_OPERATION_TIMEOUT", "5ms")], "CONVERGE_OPERATION_TIMEOUT: `5ms` is not a duration"),
            (vec![("CONVERGE_ATTEMPT_TIMEOUT", "10m")], "CONVERGE_ATTEMPT_TIMEOUT: the attempt timeout (600s) is longer than the operation timeout (300s"),
        ] {
            let e = timeouts(&vars).unwrap_err();
            assert!(e.to_string().starts_with(words), "{e}");
            assert_eq!(e.class(), Class::Invalid);
            assert_eq!(e.resource(), vars[0].0);
        }
    }

    fn emulator() -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder().behavior_version(BehaviorVersion::latest()).region(Region::new("eu-west-1")).build()
    }

    #[test]
    fn every_client_gets_the_timeouts_and_8_attempts() {
        let timeouts = Timeouts { attempt: Duration::from_secs(7), operation: Duration::from_secs(70) };
        let sdk =
            emulator().into_builder().timeout_config(aws_config::timeout::TimeoutConfig::builder().connect_timeout(Duration::from_secs(2)).build()).build();
        let conf = patient(sdk, timeouts);
        let t = conf.timeout_config().unwrap();
        assert_eq!(t.operation_attempt_timeout(), Some(Duration::from_secs(7)));
        assert_eq!(t.operation_timeout(), Some(Duration::from_secs(70)));
        assert_eq!(t.connect_timeout(), Some(Duration::from_secs(2)), "the SDK's connect timeout stays");
        if std::env::var_os("AWS_MAX_ATTEMPTS").is_none() {
            assert_eq!(conf.retry_config().unwrap().max_attempts(), 8);
        }
        let aws = Aws::from_conf(&conf, "eu-west-1");
        let ec2 = aws.ec2.config().timeout_config().unwrap();
        // The attempt timeout moves to the paced HTTP client, after the wait on the rate budget.
        assert_eq!((ec2.operation_attempt_timeout(), aws.attempt_timeout), (None, Some(Duration::from_secs(7))));
        assert_eq!(aws.route53.config().timeout_config().unwrap().operation_timeout(), Some(Duration::from_secs(70)));
        assert_eq!(aws.elb.config().retry_config().map(|r| r.max_attempts()), conf.retry_config().map(|r| r.max_attempts()));
    }

    #[test]
    fn every_client_has_its_own_retry_partition() {
        let aws = Aws::from_conf(&emulator(), "eu-west-1");
        assert_eq!(aws.ec2.config().retry_partition().unwrap().to_string(), "converge-ec2");
        assert_eq!(aws.elb.config().retry_partition().unwrap().to_string(), "converge-elasticloadbalancing");
        assert_eq!(aws.s3.config().retry_partition().unwrap().to_string(), "converge-s3");
        assert_eq!(aws.sts.config().retry_partition().unwrap().to_string(), "converge-sts");
    }
}
