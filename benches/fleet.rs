//! Benchmark: plan and apply of a generated fleet against the emulator behind a proxy that adds a
//! region-like round trip to every call. Reports wall time and API calls; it asserts nothing about time.
//!
//!     scripts/setup-emulator && CONVERGE_MOTO_PYTHON=.venv/bin/python cargo bench --bench fleet
//!     BENCH_BALANCERS=200 BENCH_LATENCY_MS=40 cargo bench --bench fleet

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

#[tokio::main]
async fn main() {
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
