//! Benchmark: plans of generated fleets against the emulator behind a proxy that adds a region-like round
//! trip to every call. Reports calls, sequential round trips, wall time and peak memory; it asserts
//! nothing about time.
//!
//!     scripts/setup-emulator && CONVERGE_MOTO_PYTHON=.venv/bin/python cargo bench --bench fleet
//!     BENCH_FLEETS=200,500 BENCH_LATENCIES_MS=0,40 cargo bench --bench fleet
//!
//! The default scenario builds, per size in `BENCH_FLEETS`, a fleet with every kind (`full_fleet`: a pool
//! per ten sites with scaling notifications and a CPU alarm, a load balancer per five with an
//! unhealthy-hosts alarm, a record and a media bucket per site, a database with its replica and parameter
//! group), applies it with the converge binary, then runs `converge plan --stats` (the binary, a process
//! of its own) through the proxy at each latency of `BENCH_LATENCIES_MS`: its calls, the round trips it
//! waited on, its wall time and its peak resident memory (the process's, from `wait4`).
//!
//! `BENCH_SCENARIO=balancers` is the earlier one: `BENCH_BALANCERS` load balancers (default 100), applied
//! and planned in-process at `BENCH_LATENCY_MS` (default 20).
//!
//! `BENCH_SCENARIO=faults` instead measures the fault-safety work: an apply of a fleet of `BENCH_SITES`
//! sites (default 200: a record and a media bucket each, a load balancer per five, one pool) with no faults
//! and with 20% of requests throttled, side by side; then plans of `BENCH_PLAN_SITES` sites (default 500,
//! a load balancer each) behind a proxy that throttles classic ELB as AWS does (a bucket of 40, 10 per
//! second), with converge's rate budget and without it, counting the throttled attempts.

#[path = "../tests/it/proxy.rs"]
#[allow(dead_code)]
mod proxy;
#[path = "../tests/it/support.rs"]
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use converge::aws::Aws;
use support::{FLEET, FleetDir, Moto, REGION};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn fleet(balancers: u64) -> String {
    let mut text = String::from("[security_group.lb]\ningress = [{ ports = \"80\", cidr = \"0.0.0.0/0\" }, { ports = \"443\", cidr = \"0.0.0.0/0\" }]\n");
    text.push_str("[security_group.web]\ningress = [{ ports = \"80\", from = \"lb\" }]\n");
    for i in 0..balancers {
        text.push_str(&format!(
            "[load_balancer.site{i:03}]\nsecurity_groups = [\"lb\"]\nlisteners = [{{ port = 80, protocol = \"http\", instance_port = 80 }}, {{ port = 443, protocol = \"https\", instance_port = 80, certificate = \"arn:aws:iam::123456789012:server-certificate/site{i:03}\" }}]\n"
        ));
    }
    text
}

/// `sites` sites, a load balancer per `per_balancer` of them, every site with a record and a media bucket.
fn sites_fleet(sites: u64, per_balancer: u64) -> String {
    let mut text = String::from(
        "[fleet]\nname = \"bench\"\nregion = \"eu-west-1\"\ndns_zone = \"sites.bench.net\"\n[network]\nzones = [\"eu-west-1a\", \"eu-west-1b\"]\n",
    );
    text.push_str(support::NIGHTLY_POOL);
    text.push_str("[security_group.lb]\ningress = [{ ports = \"80\", cidr = \"0.0.0.0/0\" }]\n");
    for b in 0..sites.div_ceil(per_balancer) {
        text.push_str(&format!(
            "[load_balancer.lb{b:03}]\npool = \"web\"\nsecurity_groups = [\"lb\"]\nlisteners = [{{ port = 80, protocol = \"http\", instance_port = 80 }}]\n"
        ));
    }
    for i in 0..sites {
        text.push_str(&format!(
            "[site.s{i:03}]\ndomain = \"www.s{i:03}.example\"\npool = \"web\"\nload_balancer = \"lb{:03}\"\nrepo = \"git@x:s{i:03}.git\"\ncommit = \"abc{i:04}\"\nmedia_bucket = \"bench-s{i:03}-media\"\n",
            i / per_balancer
        ));
    }
    text
}

async fn apply_sites(sites: u64, faults: proxy::Faults) -> (Duration, u64, converge::aws::Failed) {
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-1").await;
    moto.route53().create_hosted_zone().name("sites.bench.net").caller_reference("bench").send().await.unwrap();
    let proxy = proxy::Proxy::start(&moto.endpoint, faults).await;
    let aws = Aws::from_conf(&converge::aws::patient(moto.sdk_config().into_builder().endpoint_url(&proxy.endpoint).build(), Default::default()), REGION);
    let dir = FleetDir::new(&[("fleet.toml", &sites_fleet(sites, 5))]);
    let start = Instant::now();
    let (_, report) = support::apply(&aws, &dir.load()).await;
    assert!(report.ok(), "{report:?}");
    (start.elapsed(), aws.stats.total(), aws.stats.failed())
}

async fn faults() {
    let sites = env("BENCH_SITES", 200);
    let added = Duration::from_millis(env("BENCH_LATENCY_MS", 20));
    let latency = Some(added);
    println!("apply of {sites} sites ({} load balancers, a record and a media bucket each), {}ms added to every call", sites.div_ceil(5), added.as_millis());
    let applies = [
        ("no faults", proxy::Faults { latency, ..Default::default() }),
        ("20% throttled", proxy::Faults { latency, throttle_every: Some(5), ..Default::default() }),
    ];
    // BENCH_SITES=0: the plans only.
    for (name, faults) in applies.into_iter().filter(|_| sites > 0) {
        let (took, calls, failed) = apply_sites(sites, faults).await;
        println!("  {name:<14} {:>7.2}s {calls:>6} calls, {} throttled attempts retried", took.as_secs_f64(), failed.throttled);
    }

    let sites = env("BENCH_PLAN_SITES", 500);
    let moto = Moto::start();
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("objects.toml", &fleet(sites))]);
    let fleet = dir.load();
    support::converge(&moto.aws(), &fleet).await;
    println!("plan of {sites} load balancers, classic ELB throttled as AWS does (40, then 10 per second)");
    let unlimited = {
        let mut r = converge::aws::budget::Rates::default();
        r.set("elasticloadbalancing", None, None);
        r
    };
    for (name, rates) in [("with the budget", converge::aws::budget::Rates::default()), ("without it", unlimited)] {
        let proxy = proxy::Proxy::start(&moto.endpoint, proxy::Faults { latency, limit: Some(("Version=2012-06-01", 40, 10.0)), ..Default::default() }).await;
        let conf = converge::aws::patient(moto.sdk_config().into_builder().endpoint_url(&proxy.endpoint).build(), Default::default());
        let aws = Aws::from_conf_with(&conf, REGION, &rates);
        let start = Instant::now();
        let outcome = match converge::planner::plan(&aws, &fleet, &Default::default()).await {
            Ok(planned) if planned.plan.is_empty() => "no changes".to_string(),
            Ok(_) => "changes?".to_string(),
            Err(e) => format!("FAILED: {e}"),
        };
        let (waited, wait) = aws.stats.waited();
        println!(
            "  {name:<16} {:>7.2}s {:>5} calls, {} throttled attempts; {waited} attempts waited on the budget ({:.1}s summed); {outcome}",
            start.elapsed().as_secs_f64(),
            aws.stats.total(),
            aws.stats.failed().throttled,
            wait.as_secs_f64()
        );
    }
}

/// Every kind, at `sites` sites: a pool per ten (notifications, a CPU alarm), a load balancer per five (an
/// unhealthy-hosts alarm), a record and a media bucket per site, a database, its replica, their group.
fn full_fleet(sites: u64) -> String {
    const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:ops";
    let mut text = String::from(
        "[fleet]\nname = \"bench\"\nregion = \"eu-west-1\"\ndns_zone = \"sites.bench.net\"\n[network]\nzones = [\"eu-west-1a\", \"eu-west-1b\"]\n",
    );
    text.push_str("[image.nightly]\nowners = [\"self\"]\nname = \"sites-nightly-*\"\n");
    text.push_str("[security_group.lb]\ningress = [{ ports = \"80\", cidr = \"0.0.0.0/0\" }]\n");
    text.push_str("[security_group.web]\ningress = [{ ports = \"80\", from = \"lb\" }]\n");
    text.push_str("[security_group.db]\ningress = [{ ports = \"3306\", from = \"web\" }]\n");
    let (pools, balancers) = (sites.div_ceil(10), sites.div_ceil(5));
    for p in 0..pools {
        text.push_str(&format!(
            "[pool.p{p:03}]\nimage = \"nightly\"\ninstance_type = \"t3.small\"\nsecurity_groups = [\"web\"]\nmin = 1\nmax = 2\nnotify_topic = \"{TOPIC}\"\nalarms = {{ cpu_above = 80, topic = \"{TOPIC}\" }}\n"
        ));
    }
    for b in 0..balancers {
        text.push_str(&format!(
            "[load_balancer.lb{b:03}]\npool = \"p{:03}\"\nsecurity_groups = [\"lb\"]\nlisteners = [{{ port = 80, protocol = \"http\", instance_port = 80 }}]\nalarms = {{ unhealthy_hosts_above = 0, topic = \"{TOPIC}\" }}\n",
            b / 2
        ));
    }
    for i in 0..sites {
        text.push_str(&format!(
            "[site.s{i:03}]\ndomain = \"www.s{i:03}.example\"\npool = \"p{:03}\"\nload_balancer = \"lb{:03}\"\nrepo = \"git@x:s{i:03}.git\"\ncommit = \"abc{i:04}\"\nmedia_bucket = \"bench-s{i:03}-media\"\n",
            i / 10,
            i / 5
        ));
    }
    text.push_str("[db_parameter_group.sites]\nfamily = \"mysql8.0\"\nparameters = { max_connections = \"600\" }\n");
    text.push_str("[database.sites]\nengine = \"mysql\"\nversion = \"8.0.39\"\nclass = \"db.r6g.large\"\nstorage_gb = 100\nparameter_group = \"sites\"\nsecurity_groups = [\"db\"]\nusername = \"admin\"\npassword_env = \"BENCH_DB_PASSWORD\"\n");
    text.push_str("[database.sites-replica]\nreplica_of = \"sites\"\nclass = \"db.r6g.large\"\nparameter_group = \"sites\"\n");
    text
}

/// One run of the converge binary, given `answer` on its standard input: its exit code, stderr, and peak
/// resident memory in MiB.
// The child is reaped with `wait4` (which `Child` does not offer), for its resource usage.
#[allow(clippy::zombie_processes)]
fn run_measured(mut cmd: std::process::Command, answer: &'static str) -> (i32, String, f64) {
    use std::io::{Read, Write};
    use std::process::Stdio;
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("converge");
    child.stdin.take().unwrap().write_all(answer.as_bytes()).expect("stdin");
    let mut stdout = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let out = out.join().unwrap_or_default();
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    // SAFETY: waits for this child only, once; `status` and `usage` are plain out-parameters.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4");
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    // A failed run says why on either stream: keep the end of its output with its errors.
    if code != 0 && code != 2 {
        let said: Vec<&str> = out.lines().filter(|l| !l.starts_with("  not attempted:")).collect();
        stderr.push_str(&format!("\n--- its output, but for what was not attempted ---\n{}", said[said.len().saturating_sub(60)..].join("\n")));
    }
    (code, stderr, usage.ru_maxrss as f64 / 1024.0)
}

/// `AWS API calls: N in S.SSs` and `round trips waited on: K (...)` from `--stats`.
fn parse_stats(stderr: &str) -> (u64, f64, u64) {
    let line = stderr.lines().find_map(|l| l.strip_prefix("AWS API calls: ")).unwrap_or_else(|| panic!("no stats: {stderr}"));
    let mut words = line.split_whitespace();
    let calls = words.next().unwrap().parse().unwrap();
    let secs = words.nth(1).unwrap().trim_end_matches('s').parse().unwrap();
    let trips = stderr.lines().find_map(|l| l.trim().strip_prefix("round trips waited on: ")).and_then(|l| l.split_whitespace().next()?.parse().ok()).unwrap();
    (calls, secs, trips)
}

fn list(name: &str, default: &str) -> Vec<u64> {
    std::env::var(name).unwrap_or_else(|_| default.into()).split(',').map(|v| v.trim().parse().expect(name)).collect()
}

async fn fleets() {
    println!("| fleet | added latency | calls | round trips | wall time | peak memory |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for sites in list("BENCH_FLEETS", "200,500") {
        let moto = Moto::start();
        moto.nightly_image("sites-nightly-1").await;
        moto.route53().create_hosted_zone().name("sites.bench.net").caller_reference("bench").send().await.unwrap();
        let dir = FleetDir::new(&[("fleet.toml", &full_fleet(sites))]);
        let mut apply = support::converge_command(dir.path(), &["apply", "--auto-approve", "--no-wait"], Some(&moto.endpoint));
        apply.env("BENCH_DB_PASSWORD", "bench-only");
        let (code, stderr, _) = tokio::task::spawn_blocking(move || run_measured(apply, "")).await.unwrap();
        assert_eq!(code, 0, "apply: {stderr}");
        for latency in list("BENCH_LATENCIES_MS", "0,40") {
            let faults = proxy::Faults { latency: Some(Duration::from_millis(latency)), ..Default::default() };
            let proxy = proxy::Proxy::start(&moto.endpoint, faults).await;
            let plan = support::converge_command(dir.path(), &["plan", "--stats", "--detailed-exitcode"], Some(&proxy.endpoint));
            let (code, stderr, mib) = tokio::task::spawn_blocking(move || run_measured(plan, "")).await.unwrap();
            // 0: no changes (a database still settling may leave some: 2).
            assert!(code == 0 || code == 2, "plan: {stderr}");
            let (calls, secs, trips) = parse_stats(&stderr);
            println!("| {sites} sites | {latency} ms | {calls} | {trips} | {secs:.2} s | {mib:.0} MiB |");
            if latency == 40 {
                eprintln!("{sites} sites, 40 ms:\n{}", stderr.lines().filter(|l| l.starts_with("  ")).collect::<Vec<_>>().join("\n"));
            }
        }
        // A one-site deploy's plan: `--target` reads one object at a time only the site's path.
        let targeted = support::converge_command(dir.path(), &["plan", "--stats", "--target", "site.s000"], Some(&moto.endpoint));
        let (code, stderr, mib) = tokio::task::spawn_blocking(move || run_measured(targeted, "")).await.unwrap();
        assert!(code == 0 || code == 2, "targeted plan: {stderr}");
        let (calls, secs, trips) = parse_stats(&stderr);
        println!("| {sites} sites, `plan --target site.s000` | 0 ms | {calls} | {trips} | {secs:.2} s | {mib:.0} MiB |");
        // ... and the deploy itself: a new commit, applied to that site alone (its pool's new template version
        // and the refresh's start).
        dir.write("fleet.toml", &full_fleet(sites).replace("commit = \"abc0000\"", "commit = \"def0000\""));
        let deploy = support::converge_command(dir.path(), &["apply", "--auto-approve", "--no-wait", "--stats", "--target", "site.s000"], Some(&moto.endpoint));
        let (code, stderr, mib) = tokio::task::spawn_blocking(move || run_measured(deploy, "")).await.unwrap();
        assert_eq!(code, 0, "targeted deploy: {stderr}");
        let (calls, secs, trips) = parse_stats(&stderr);
        println!("| {sites} sites, `apply --target site.s000` (a new commit) | 0 ms | {calls} | {trips} | {secs:.2} s | {mib:.0} MiB |");
        // ... and another site's (another pool: the first one's refresh is still running), confirmed at the
        // prompt, which reads again what the changes read once answered.
        dir.write(
            "fleet.toml",
            &full_fleet(sites).replace("commit = \"abc0000\"", "commit = \"def0000\"").replace("commit = \"abc0010\"", "commit = \"def0010\""),
        );
        let deploy = support::converge_command(dir.path(), &["apply", "--no-wait", "--stats", "--target", "site.s010"], Some(&moto.endpoint));
        let (code, stderr, mib) = tokio::task::spawn_blocking(move || run_measured(deploy, "yes\n")).await.unwrap();
        assert_eq!(code, 0, "confirmed deploy: {stderr}");
        let (calls, secs, trips) = parse_stats(&stderr);
        println!(
            "| {sites} sites, `apply --target site.s010` (a new commit), confirmed at the prompt | 0 ms | {calls} | {trips} | {secs:.2} s | {mib:.0} MiB |"
        );
    }
}

#[tokio::main]
async fn main() {
    match std::env::var("BENCH_SCENARIO").as_deref() {
        Ok("faults") => return faults().await,
        Ok("balancers") => {}
        _ => return fleets().await,
    }
    let balancers = env("BENCH_BALANCERS", 100);
    let latency = Duration::from_millis(env("BENCH_LATENCY_MS", 20));
    let moto = Moto::start();
    let proxy = proxy::Proxy::start(&moto.endpoint, proxy::Faults { latency: Some(latency), ..Default::default() }).await;
    let aws = Aws::from_conf(&moto.sdk_config().into_builder().endpoint_url(&proxy.endpoint).build(), REGION);
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("objects.toml", &fleet(balancers))]);
    let fleet = dir.load();
    println!("fleet: {balancers} load balancers, 2 security groups; {}ms added to every call", latency.as_millis());

    let start = Instant::now();
    let (planned, report) = support::apply(&aws, &fleet).await;
    assert!(report.ok(), "{report:?}");
    println!("apply (create all): {:>7.2}s {:>5} calls, {} changes", start.elapsed().as_secs_f64(), aws.stats.total(), planned.plan.changes.len());

    for run in 1..=3 {
        aws.stats.reset();
        let start = Instant::now();
        let planned = support::plan(&aws, &fleet).await;
        assert!(planned.plan.is_empty());
        println!("plan (no changes) #{run}: {:>5.2}s {:>5} calls", start.elapsed().as_secs_f64(), aws.stats.total());
    }
    for c in aws.stats.counts() {
        println!("    {:<24} {:<34} {:>4}", c.service, c.operation, c.calls);
    }
}
