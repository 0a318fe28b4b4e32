//! The rate budget: client-side token buckets per service and class of call (describe, mutate), with AWS's
//! documented request rates, so that converge paces itself instead of relying on being throttled. Every HTTP
//! attempt (retries included: AWS counts them too) takes a token before it is sent; when the bucket is
//! empty it waits for the next one. The wait happens before the attempt's timeout starts (this connector
//! holds the attempt timeout, in place of the SDK's), so a long queue never times an attempt out; the
//! operation timeout still bounds the whole call.
//!
//! Defaults (burst, then tokens per second), from AWS's published limits where it publishes them:
//!
//! | service       | describe  | mutate   | source                                                        |
//! |---------------|-----------|----------|---------------------------------------------------------------|
//! | EC2           | 100 / 20  | 50 / 5   | EC2 API request throttling: each API has a bucket (non-mutating ones 100 / 20); one bucket for all of them here, mutations well below AWS's |
//! | classic ELB   | 40 / 10   | 40 / 10  | Elastic Load Balancing API throttling                          |
//! | RDS           | 300 / 12, one bucket for both | RDS API request throttling (per-account token bucket) |
//! | Route 53      | 5 / 5, one bucket for both    | Route 53 quotas: five requests per second per account |
//! | Auto Scaling  | 40 / 10   | 20 / 5   | not published: chosen below EC2's                              |
//! | S3 (buckets)  | 1000 / 500 | 100 / 50 | not published for bucket configuration calls (objects: 3,500 writes and 5,500 reads per second per prefix, and each bucket is its own): reads at a tenth of that, so a fleet's four reads per bucket go out in one round trip; writes well below |
//! | IAM, ACM, STS | 20 / 10   | 10 / 5   | not published as buckets; ACM's is 10-20 per second            |
//! | Tagging API   | 20 / 10   | 10 / 5   | not published: the default (converge only reads, one `GetResources` per 100 objects) |
//!
//! `CONVERGE_RATE_<SERVICE>_<CLASS>` (`CONVERGE_RATE_EC2_DESCRIBE=200/40`; services `EC2`, `ELB`,
//! `AUTOSCALING`, `S3`, `IAM`, `ACM`, `STS`, `CLOUDWATCH`, `TAGGING`), or `CONVERGE_RATE_ROUTE53` / `CONVERGE_RATE_RDS` for the
//! services with one bucket, overrides one; `0` turns a budget off.
//!
//! The budget paces attempts; what bounds how many are open at once is the run's connections
//! ([`Connections`]): every attempt of every service holds one while it is sent and answered. So a fleet's
//! per-object reads (four per bucket) all go out in the round trip the rate allows, not in waves of a fixed
//! size, and a run never opens more sockets than the process may: by default half of what the open-file
//! limit leaves after 256 for everything else (the other half holds the connections kept alive between
//! calls), at most 1,024. The binary raises its soft open-file limit to the hard one first, as Go programs
//! do. `CONVERGE_CONNECTIONS` overrides it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, Metadata};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use tokio::time::Instant;

use super::AwsError;

/// A token bucket's size and refill.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub burst: u32,
    pub per_second: f64,
}

impl Rate {
    const fn new(burst: u32, per_second: u32) -> Rate {
        Rate { burst, per_second: per_second as f64 }
    }

    /// `100/20` (burst, then per second), or `0` (no budget).
    pub fn parse(s: &str) -> Result<Option<Rate>, String> {
        if s.trim() == "0" {
            return Ok(None);
        }
        let bad = || format!("`{s}` is not a rate such as 100/20 (a burst of 100, then 20 per second), or 0 for none");
        let (burst, per) = s.split_once('/').ok_or_else(bad)?;
        let burst: u32 = burst.trim().parse().map_err(|_| bad())?;
        let per_second: f64 = per.trim().parse().map_err(|_| bad())?;
        // At least one per 1,000 seconds, and a finite rate: a wait must stay a duration.
        if burst == 0 || !per_second.is_finite() || per_second < 0.001 {
            return Err(bad());
        }
        Ok(Some(Rate { burst, per_second }))
    }
}

/// The two classes of call a budget tells apart: AWS throttles reads and writes separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallClass {
    Describe,
    Mutate,
}

impl CallClass {
    /// A call that only reads: `Describe*`, `List*`, `Get*`, `Head*`.
    pub fn of(operation: &str) -> CallClass {
        if ["Describe", "List", "Get", "Head"].iter().any(|p| operation.starts_with(p)) { CallClass::Describe } else { CallClass::Mutate }
    }
}

/// The defaults of one service (see the table above): describe, mutate.
pub fn defaults(service: &str) -> (Rate, Rate) {
    match service {
        "ec2" => (Rate::new(100, 20), Rate::new(50, 5)),
        "elasticloadbalancing" => (Rate::new(40, 10), Rate::new(40, 10)),
        "rds" => (Rate::new(300, 12), Rate::new(300, 12)),
        "route53" => (Rate::new(5, 5), Rate::new(5, 5)),
        "autoscaling" => (Rate::new(40, 10), Rate::new(20, 5)),
        "s3" => (Rate::new(1000, 500), Rate::new(100, 50)),
        // CloudWatch: DescribeAlarms and ListTagsForResource about 10 a second, PutMetricAlarm 3.
        "monitoring" => (Rate::new(10, 9), Rate::new(3, 3)),
        _ => (Rate::new(20, 10), Rate::new(10, 5)),
    }
}

/// Services whose limit is one bucket for every call, read or write: Route 53 (five requests per second
/// per account) and RDS (one token bucket per account for its API).
pub fn shared(service: &str) -> bool {
    matches!(service, "route53" | "rds")
}

/// The environment variable that overrides a service's budget of one class (of both, for a shared one:
/// `CONVERGE_RATE_ROUTE53`).
pub fn variable(service: &str, class: CallClass) -> String {
    let name = match service {
        "elasticloadbalancing" => "ELB".to_string(),
        "monitoring" => "CLOUDWATCH".to_string(),
        s => s.to_ascii_uppercase(),
    };
    if shared(service) {
        return format!("CONVERGE_RATE_{name}");
    }
    let class = match class {
        CallClass::Describe => "DESCRIBE",
        CallClass::Mutate => "MUTATE",
    };
    format!("CONVERGE_RATE_{name}_{class}")
}

/// A token bucket, as plain arithmetic on instants: [`Bucket::reserve`] takes the next token and says how
/// long to wait for it. Reservations queue up (the bucket may go below zero), so waiters are served in the
/// order they came, each one refill interval after the last.
#[derive(Debug)]
pub struct Bucket {
    rate: Rate,
    /// Tokens at `at` (negative: reserved ahead).
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn new(rate: Rate, now: Instant) -> Bucket {
        Bucket { rate, tokens: f64::from(rate.burst), at: now }
    }

    /// Takes a token at `now`: how long the caller waits before sending.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate.per_second).min(f64::from(self.rate.burst));
        self.at = now.max(self.at);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-self.tokens / self.rate.per_second) }
    }
}

/// One service's budget: a bucket per class (none where turned off), and what waiting on it cost.
#[derive(Debug)]
pub struct Budget {
    describe: Option<Arc<std::sync::Mutex<Bucket>>>,
    mutate: Option<Arc<std::sync::Mutex<Bucket>>>,
    waits: Arc<Waits>,
}

/// Time spent waiting on the budget, over every service: for `--stats`.
#[derive(Debug, Default)]
pub struct Waits {
    pub attempts: AtomicU64,
    pub micros: AtomicU64,
}

/// The services converge calls, as their clients name them.
pub const SERVICES: [&str; 11] = ["ec2", "elasticloadbalancing", "autoscaling", "rds", "route53", "s3", "acm", "iam", "sts", "monitoring", "tagging"];

/// Every service's rates (describe, mutate; `None`: no budget), and the connections a run may hold open
/// at once, chosen once per run.
#[derive(Debug, Clone, PartialEq)]
pub struct Rates {
    services: std::collections::BTreeMap<&'static str, (Option<Rate>, Option<Rate>)>,
    pub connections: usize,
}

impl Default for Rates {
    fn default() -> Rates {
        let services = SERVICES.iter().map(|s| (*s, defaults(s))).map(|(s, (d, m))| (s, (Some(d), Some(m)))).collect();
        Rates { services, connections: connections_for(open_files_limit()) }
    }
}

/// Overrides how many connections a run holds open at once ([`Connections`]).
pub const CONNECTIONS_VAR: &str = "CONVERGE_CONNECTIONS";

/// The connections a run may hold open for `open_files` (the soft open-file limit, `None` where unknown):
/// half of what it leaves after 256, between 16 and 1,024.
pub fn connections_for(open_files: Option<u64>) -> usize {
    let spare = open_files.map_or(1024, |n| n.saturating_sub(256) / 2);
    usize::try_from(spare).unwrap_or(usize::MAX).clamp(16, 1024)
}

/// The process's soft limit of open files.
pub fn open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes the struct it is given.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            #[allow(clippy::unnecessary_cast)] // rlim_t is narrower on some targets
            return Some(limit.rlim_cur as u64);
        }
    }
    None
}

/// Raises the soft limit of open files to the hard one (at most `OPEN_MAX` on macOS, which refuses more):
/// what Go programs do at startup. For the binary, before any thread starts; failing leaves the limit as it was.
pub fn raise_open_files_limit() {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit and setrlimit read and write the struct they are given.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return;
            }
            #[cfg(target_os = "macos")]
            let wanted = limit.rlim_max.min(libc::OPEN_MAX as libc::rlim_t);
            #[cfg(not(target_os = "macos"))]
            let wanted = limit.rlim_max;
            if wanted > limit.rlim_cur {
                limit.rlim_cur = wanted;
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            }
        }
    }
}

/// The connections of one run, shared by every client: an attempt holds one from just before it is sent
/// (after its wait on the rate budget) until it is answered or times out.
#[derive(Debug, Clone)]
pub struct Connections(Arc<tokio::sync::Semaphore>);

impl Connections {
    pub fn new(n: usize) -> Connections {
        Connections(Arc::new(tokio::sync::Semaphore::new(n.max(1))))
    }
}

impl Rates {
    /// The defaults, with what the environment overrides. A malformed rate is an error before any call.
    pub fn from_env() -> Result<Rates, AwsError> {
        let mut rates = Rates::default();
        for (service, (describe, mutate)) in &mut rates.services {
            for (class, rate) in [(CallClass::Describe, describe), (CallClass::Mutate, mutate)] {
                let var = variable(service, class);
                if let Ok(v) = std::env::var(&var) {
                    *rate = Rate::parse(&v).map_err(|message| AwsError::Setting { variable: var, message })?;
                }
            }
        }
        // (A shared service's one variable set both: its one bucket is the describe rate's.)
        if let Ok(v) = std::env::var(CONNECTIONS_VAR) {
            let bad = || AwsError::Setting { variable: CONNECTIONS_VAR.to_string(), message: format!("`{v}` is not a number of connections (at least 1)") };
            rates.connections = v.trim().parse().ok().filter(|n| *n > 0).ok_or_else(bad)?;
        }
        Ok(rates)
    }

    /// Sets both budgets of `service` (`None`: off, as `CONVERGE_RATE_<SERVICE>_<CLASS>=0` does).
    pub fn set(&mut self, service: &str, describe: Option<Rate>, mutate: Option<Rate>) {
        if let Some(s) = SERVICES.iter().copied().find(|s| *s == service) {
            self.services.insert(s, (describe, mutate));
        }
    }

    /// The budget of one service, counting its waits in `waits`.
    pub fn budget(&self, service: &str, waits: Arc<Waits>) -> Budget {
        let (describe, mutate) = self.services.get(service).copied().unwrap_or((None, None));
        if shared(service) {
            let one = describe.map(|r| Arc::new(std::sync::Mutex::new(Bucket::new(r, Instant::now()))));
            return Budget { describe: one.clone(), mutate: one, waits };
        }
        Budget::new(describe, mutate, waits)
    }
}

impl Budget {
    pub fn new(describe: Option<Rate>, mutate: Option<Rate>, waits: Arc<Waits>) -> Budget {
        let now = Instant::now();
        let bucket = |r: Option<Rate>| r.map(|r| Arc::new(std::sync::Mutex::new(Bucket::new(r, now))));
        Budget { describe: bucket(describe), mutate: bucket(mutate), waits }
    }

    /// Waits for a token of `class`.
    pub async fn take(&self, class: CallClass) {
        let bucket = match class {
            CallClass::Describe => &self.describe,
            CallClass::Mutate => &self.mutate,
        };
        let Some(bucket) = bucket else { return };
        let wait = bucket.lock().expect("budget lock").reserve(Instant::now());
        if wait > Duration::ZERO {
            self.waits.attempts.fetch_add(1, Ordering::Relaxed);
            self.waits.micros.fetch_add(wait.as_micros() as u64, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
    }
}

/// The operation an attempt is for, put on the request by [`Tag`] for the connector to read.
#[derive(Debug, Clone)]
struct Operation(CallClass);

/// Puts each attempt's class of call on its request, from the operation's name.
#[derive(Debug)]
pub struct Tag;

impl Intercept for Tag {
    fn name(&self) -> &'static str {
        "converge-rate-budget"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let class = cfg.load::<Metadata>().map_or(CallClass::Mutate, |m| CallClass::of(m.name()));
        context.request_mut().add_extension(Operation(class));
        Ok(())
    }
}

/// The HTTP client of one service: takes a token of the budget and one of the run's connections, then
/// sends through `inner` within the attempt timeout.
#[derive(Debug, Clone)]
pub struct Paced {
    inner: SharedHttpClient,
    budget: Arc<Budget>,
    connections: Connections,
    attempt: Option<Duration>,
}

impl Paced {
    pub fn new(inner: SharedHttpClient, budget: Budget, connections: Connections, attempt: Option<Duration>) -> Paced {
        Paced { inner, budget: Arc::new(budget), connections, attempt }
    }
}

impl HttpClient for Paced {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        let inner = self.inner.http_connector(settings, components);
        SharedHttpConnector::new(PacedConnector { inner, budget: self.budget.clone(), connections: self.connections.clone(), attempt: self.attempt })
    }
}

#[derive(Debug)]
struct PacedConnector {
    inner: SharedHttpConnector,
    budget: Arc<Budget>,
    connections: Connections,
    attempt: Option<Duration>,
}

impl HttpConnector for PacedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let class = request.extension::<Operation>().map_or(CallClass::Mutate, |o| o.0);
        let (inner, budget, connections, attempt) = (self.inner.clone(), self.budget.clone(), self.connections.clone(), self.attempt);
        HttpConnectorFuture::new(async move {
            budget.take(class).await;
            // Never closed: a permit always comes.
            let _open = connections.0.acquire().await.map_err(|e| ConnectorError::other(e.into(), None))?;
            let call = inner.call(request);
            match attempt {
                None => call.await,
                // A timed-out attempt is transient: the SDK retries it, as it would its own attempt timeout.
                Some(limit) => match tokio::time::timeout(limit, call).await {
                    Ok(answer) => answer,
                    Err(_) => Err(ConnectorError::timeout(format!("no answer within the attempt timeout of {}s", limit.as_secs_f64()).into())),
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_serves_its_burst_at_once_then_one_token_per_interval_in_order() {
        let start = Instant::now();
        let mut b = Bucket::new(Rate::new(3, 10), start);
        let waits: Vec<Duration> = (0..6).map(|_| b.reserve(start)).collect();
        assert_eq!(&waits[..3], &[Duration::ZERO; 3]);
        let ms: Vec<u128> = waits[3..].iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 300], "queued: each one interval after the last");
        // After a quiet second the bucket is full again, never more than its burst.
        let later = start + Duration::from_secs(5);
        assert_eq!((0..3).map(|_| b.reserve(later)).collect::<Vec<_>>(), vec![Duration::ZERO; 3]);
        assert!(b.reserve(later) > Duration::ZERO);
    }

    #[test]
    fn calls_are_describes_or_mutations_by_their_name() {
        for op in ["DescribeSecurityGroups", "ListBuckets", "GetBucketTagging", "HeadObject"] {
            assert_eq!(CallClass::of(op), CallClass::Describe, "{op}");
        }
        for op in ["CreateSecurityGroup", "PutBucketTagging", "ModifyDBInstance", "ChangeResourceRecordSets", "AuthorizeSecurityGroupIngress"] {
            assert_eq!(CallClass::of(op), CallClass::Mutate, "{op}");
        }
    }

    #[test]
    fn rates_read_as_burst_slash_per_second_and_zero_turns_a_budget_off() {
        assert_eq!(Rate::parse("100/20"), Ok(Some(Rate::new(100, 20))));
        assert_eq!(Rate::parse("10/0.5"), Ok(Some(Rate { burst: 10, per_second: 0.5 })));
        assert_eq!(Rate::parse("0"), Ok(None));
        for bad in ["100", "a/b", "0/5", "5/0", "-1/2", "5/inf", "5/1e-20", "5/NaN"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(variable("elasticloadbalancing", CallClass::Describe), "CONVERGE_RATE_ELB_DESCRIBE");
        assert_eq!(variable("ec2", CallClass::Mutate), "CONVERGE_RATE_EC2_MUTATE");
        assert_eq!(variable("route53", CallClass::Mutate), "CONVERGE_RATE_ROUTE53", "one bucket, one variable");
        assert_eq!(defaults("ec2"), (Rate::new(100, 20), Rate::new(50, 5)));
    }

    #[test]
    fn connections_are_half_of_what_the_open_file_limit_leaves_between_16_and_1024() {
        assert_eq!(connections_for(Some(1024)), 384, "a common default soft limit");
        assert_eq!(connections_for(Some(256)), 16, "macOS's default: the floor");
        assert_eq!(connections_for(Some(1_048_576)), 1024);
        assert_eq!(connections_for(None), 1024);
    }

    #[tokio::test(start_paused = true)]
    async fn taking_past_the_burst_waits_and_the_wait_is_counted() {
        let waits = Arc::new(Waits::default());
        let budget = Budget::new(Some(Rate::new(2, 4)), None, waits.clone());
        let started = Instant::now();
        for _ in 0..4 {
            budget.take(CallClass::Describe).await;
        }
        assert_eq!(started.elapsed().as_millis(), 500, "two at once, then two at 4 per second");
        assert_eq!(waits.attempts.load(Ordering::Relaxed), 2);
        // Mutations have no budget here: never wait.
        let before = Instant::now();
        budget.take(CallClass::Mutate).await;
        assert_eq!(before.elapsed(), Duration::ZERO);
    }
}
