//! Faults between the SDK and AWS: throttling, server errors and dropped connections. Apply
//! must still converge, or stop cleanly so that the next apply finishes the work.

use converge::apply;
use converge::aws::{Aws, AwsExecutor, Failed};
use converge::error::{Class, Classify};

use crate::proxy::{Fault, Faults, Proxy};
use crate::support::*;

const FLEET_FILES: &str = r#"
[security_group.lb]
ingress = [{ ports = "80", cidr = "0.0.0.0/0" }, { ports = "443", cidr = "0.0.0.0/0" }]
[security_group.web]
ingress = [{ ports = "80", from = "lb" }]
[load_balancer.shared]
security_groups = ["lb"]
listeners = [{ port = 80, protocol = "http", instance_port = 80 }]
[load_balancer.other]
security_groups = ["lb"]
listeners = [{ port = 80, protocol = "http", instance_port = 8080 }]
"#;

fn through(moto: &Moto, proxy: &Proxy) -> Aws {
    let conf = moto.sdk_config().into_builder().endpoint_url(&proxy.endpoint).build();
    Aws::from_conf(&conf, REGION)
}

#[tokio::test]
async fn apply_converges_through_throttling_server_errors_and_dropped_connections() {
    let moto = Moto::start();
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("fleet-objects.toml", FLEET_FILES)]);
    for fault in [Fault::Throttle, Fault::Unavailable, Fault::Drop] {
        let proxy = Proxy::start(&moto.endpoint, Faults { first_attempt: Some(fault), ..Faults::default() }).await;
        let aws = through(&moto, &proxy);
        converge(&aws, &dir.load()).await;
        let injected = proxy.injected.load(std::sync::atomic::Ordering::SeqCst);
        assert!(injected > 0, "{fault:?}: faults were injected");
        // --stats' counters: each faulted attempt counted once, by the kind the SDK retried it for.
        let failed = aws.stats.failed();
        let expected = match fault {
            Fault::Throttle => Failed { throttled: injected as u64, transient: 0, timed_out: 0 },
            _ => Failed { throttled: 0, transient: injected as u64, timed_out: 0 },
        };
        assert_eq!(failed, expected, "{fault:?}: {injected} faulted attempts");
        // The counter sees every attempt: each faulted request counts its failed attempt and its retry, so the
        // retries are visible in --stats.
        let attempts = aws.stats.total();
        assert!(attempts >= 2 * injected as u64, "{fault:?}: {attempts} attempts counted for {injected} faulted requests");
        // Tear down for the next fault kind, through the same faults.
        dir.write("fleet-objects.toml", "");
        converge(&aws, &dir.load()).await;
        dir.write("fleet-objects.toml", FLEET_FILES);
    }
}

#[tokio::test]
async fn a_call_that_keeps_failing_stops_its_change_cleanly_and_the_next_apply_finishes() {
    let moto = Moto::start();
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("fleet-objects.toml", FLEET_FILES)]);
    let fleet = dir.load();
    let proxy = Proxy::start(&moto.endpoint, Faults { always: vec![("ConfigureHealthCheck", Fault::Throttle)], ..Faults::default() }).await;
    let aws = through(&moto, &proxy);
    let planned = plan(&aws, &fleet).await;
    let executor = AwsExecutor::new(aws.clone(), &planned.live, &planned.plan);
    let report = apply::apply(&planned.plan, &executor, 10, std::future::pending(), |_| {}).await.unwrap();
    assert_eq!(report.failed.len(), 2, "both load balancers: {report:?}");
    for (address, error) in &report.failed {
        assert_eq!(address.kind, converge::resource::Kind::LoadBalancer);
        assert!(error.to_string().contains("ConfigureHealthCheck"), "{error:?}");
        // Still throttled after the SDK's last attempt: the report says so, by class.
        assert_eq!(error.error.class, Class::Throttled, "{error:?}");
        assert_eq!(error.error.operation.as_deref(), Some("elasticloadbalancing:ConfigureHealthCheck"), "{error:?}");
        assert_eq!(error.error.code.as_deref(), Some("Throttling"), "{error:?}");
    }
    assert_eq!(report.class(), Some(Class::Throttled));
    assert_eq!(report.applied.len(), 2, "the groups: {report:?}");

    // The load balancers exist but their health checks were never set: the next plan shows exactly that.
    let direct = moto.aws();
    let next = plan(&direct, &fleet).await;
    assert_eq!(next.plan.summary().change, 2, "{}", converge::render::plan_text(&next.plan));
    assert!(
        next.plan
            .changes
            .iter()
            .all(|c| c.fields.iter().all(|f| f.field.starts_with("health_check") || f.field == "cross_zone" || f.field == "connection_draining"))
    );
    converge(&direct, &fleet).await;
}

#[tokio::test]
async fn a_failed_read_is_classified_from_what_came_back() {
    let moto = Moto::start();
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("fleet-objects.toml", FLEET_FILES)]);
    let fleet = dir.load();
    for (fault, class) in [(Fault::Throttle, Class::Throttled), (Fault::Unavailable, Class::Transient), (Fault::Drop, Class::Transient)] {
        let proxy = Proxy::start(&moto.endpoint, Faults { always: vec![("DescribeSecurityGroups", fault)], ..Faults::default() }).await;
        // One attempt: the SDK's retries would only make the test slower; what fails is classified the same.
        let conf = moto
            .sdk_config()
            .into_builder()
            .endpoint_url(&proxy.endpoint)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
            .build();
        let aws = Aws::from_conf(&conf, REGION);
        let Err(e) = converge::planner::plan(&aws, &fleet, &Default::default()).await else { panic!("{fault:?}: the read succeeded") };
        assert_eq!(e.class(), class, "{fault:?}: {e}");
        assert_eq!(e.operation().as_deref(), Some("ec2:DescribeSecurityGroups"), "{fault:?}: {e}");
    }
}

/// A hung connection (the request read, never answered) is cut by the attempt timeout and retried: the real
/// binary, with a 2-second `CONVERGE_ATTEMPT_TIMEOUT`, applies through a proxy that hangs the first attempt of
/// every request, and `--stats` counts the timed-out attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_attempt_is_cut_by_the_attempt_timeout_and_retried() {
    let moto = Moto::start();
    let groups = "[security_group.lb]\ningress = [{ ports = \"80\", cidr = \"0.0.0.0/0\" }]\n";
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("fleet-objects.toml", groups)]);
    let proxy = Proxy::start(&moto.endpoint, Faults { first_attempt: Some(Fault::Hang), ..Faults::default() }).await;
    let (path, endpoint) = (dir.path().to_path_buf(), proxy.endpoint.clone());
    let started = std::time::Instant::now();
    let run = tokio::task::spawn_blocking(move || {
        let mut cmd = converge_command(&path, &["apply", "--auto-approve", "--stats"], Some(&endpoint));
        cmd.env("CONVERGE_ATTEMPT_TIMEOUT", "2s").stdin(std::process::Stdio::null());
        let out = cmd.output().expect("running converge");
        Run { code: out.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&out.stdout).into(), stderr: String::from_utf8_lossy(&out.stderr).into() }
    })
    .await
    .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(run.code, 0, "{run:?}");
    let injected = proxy.injected.load(std::sync::atomic::Ordering::SeqCst) as u64;
    assert!(injected >= 3, "the reads and the writes each hung once: {injected}");
    // Each hung attempt timed out (a slow emulator may add some of its own), and nothing waited a minute.
    let line = run.stderr.lines().find(|l| l.contains("attempts retried:")).unwrap_or_else(|| panic!("--stats: {run:?}"));
    let timed_out: u64 = line.rsplit_once('(').and_then(|(_, t)| t.split_whitespace().next()?.parse().ok()).unwrap_or_else(|| panic!("{line}"));
    assert!(timed_out >= injected, "{injected} hung attempts, {line}");
    assert!(elapsed < std::time::Duration::from_secs(60), "no attempt waited for the hung connection: {elapsed:?}");
    let again = moto.converge(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "converged: {again:?}");
}

/// The SDK's standard retries draw from a quota shared by the process (500 tokens, 5 per throttled retry,
/// given back only when the retry succeeds), which a burst of throttling drains, so that later calls fail on
/// their first error. converge's clients have their own, unlimited: two plans of fifty load balancers, every
/// request throttled three times (with a 500-token bucket, the first plan's attribute reads fail with
/// `Throttling`), all succeed, and every throttled attempt was retried.
#[tokio::test]
async fn a_burst_of_throttling_does_not_drain_a_retry_quota() {
    let moto = Moto::start();
    let mut balancers = String::from("[security_group.lb]\ningress = [{ ports = \"80\", cidr = \"0.0.0.0/0\" }]\n");
    for i in 0..50 {
        balancers.push_str(&format!(
            "[load_balancer.site{i:02}]\nsecurity_groups = [\"lb\"]\nlisteners = [{{ port = 80, protocol = \"http\", instance_port = 80 }}]\n"
        ));
    }
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("fleet-objects.toml", &balancers)]);
    let fleet = dir.load();
    converge(&moto.aws(), &fleet).await;

    // Each request throttled on its first three attempts: two of its three retries' tokens are never given back.
    let proxy = Proxy::start(&moto.endpoint, Faults { first_attempt: Some(Fault::Throttle), repeat: 2, ..Faults::default() }).await;
    // One set of clients for the two plans, as one long run would have, with converge's retries (8 attempts).
    let conf = moto.sdk_config().into_builder().endpoint_url(&proxy.endpoint).build();
    let aws = Aws::from_conf(&converge::aws::patient(conf, Default::default()), REGION);
    for round in 0..2 {
        // Every request is throttled on its first attempt again.
        proxy.forget_seen();
        let before = aws.stats.failed().throttled;
        let planned = plan(&aws, &fleet).await;
        assert!(planned.plan.is_empty(), "round {round}: {}", converge::render::plan_text(&planned.plan));
        assert!(aws.stats.failed().throttled - before >= 3 * 50, "round {round}: at least the 50 attribute reads, three times each");
    }
    let injected = proxy.injected.load(std::sync::atomic::Ordering::SeqCst) as u64;
    let elb: u64 = ["DescribeLoadBalancers", "DescribeTags", "DescribeLoadBalancerAttributes"].iter().map(|op| aws.stats.calls(op)).sum();
    assert!(elb >= 2 * 50 * 4, "100 ELB reads or more, each throttled three times then answered: {elb} ELB attempts");
    // Every throttled attempt was retried, until the fourth went through.
    assert_eq!(aws.stats.failed(), Failed { throttled: injected, transient: 0, timed_out: 0 });
    let answered = aws.stats.total() - injected;
    assert!(3 * answered >= injected, "{injected} throttled attempts, {answered} answered");
}

/// A wait on the rate budget longer than the SDK's 5-second stall grace and than the attempt timeout (3 s
/// here; with a budget of one ELB read, then one per 12 s, the second read waits 12 s less the first plan's
/// time) is neither a stalled upload nor a timed-out attempt: both reads succeed, and the wait is counted.
#[tokio::test]
async fn a_long_wait_on_the_budget_is_not_a_stalled_or_timed_out_attempt() {
    use converge::aws::budget::{Rate, Rates};
    let moto = Moto::start();
    let mut rates = Rates::default();
    rates.set("elasticloadbalancing", Some(Rate { burst: 1, per_second: 1.0 / 12.0 }), None);
    let conf = converge::aws::patient(moto.sdk_config(), converge::aws::Timeouts { attempt: std::time::Duration::from_secs(3), ..Default::default() });
    let aws = Aws::from_conf_with(&conf, REGION, &rates);
    let started = std::time::Instant::now();
    let dir = FleetDir::new(&[
        ("fleet.toml", FLEET),
        (
            "fleet-objects.toml",
            "[security_group.lb]\ningress = [{ ports = \"80\", cidr = \"0.0.0.0/0\" }]\n[load_balancer.a]\nsecurity_groups = [\"lb\"]\nlisteners = [{ port = 80, protocol = \"http\", instance_port = 80 }]\n",
        ),
    ]);
    // Two plans: the second's DescribeLoadBalancers waits for the budget's next token.
    plan(&aws, &dir.load()).await;
    plan(&aws, &dir.load()).await;
    assert!(started.elapsed() >= std::time::Duration::from_secs(11), "{:?}", started.elapsed());
    let (waited, total) = aws.stats.waited();
    assert!(waited >= 1 && total >= std::time::Duration::from_secs(6), "{waited} waits, {total:?}");
    assert_eq!(aws.stats.failed(), Failed::default(), "no attempt failed");
}
