//! The reconcile loop as a controller: a conflict or an object that keeps failing holds back only itself
//! and what depends on it; everything else converges at the first pass, and a failing object is tried
//! again after its own, growing backoff.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use crate::proxy::{Fault, Faults, Proxy};
use crate::support::*;

const FLEET: &str = "[fleet]\nname = \"agency\"\nregion = \"eu-west-1\"\n\n\
    [security_group.lb]\ningress = [{ ports = \"80\", cidr = \"0.0.0.0/0\" }]\n\n\
    [security_group.web]\ningress = [{ ports = \"22\", cidr = \"10.0.0.0/8\" }]\n\n\
    [load_balancer.shared]\nsecurity_groups = [\"lb\"]\nlisteners = [{ port = 80, protocol = \"http\", instance_port = 80 }]\nzones = [\"eu-west-1a\"]\n\
    health_check = { target = \"HTTP:80/healthz\", interval = 30, timeout = 5, healthy = 3, unhealthy = 2 }\n";

/// The loop, started on `dir` against `endpoint` with `args` and `env`, serving its metrics on a free port;
/// its stdout, line by line.
fn start(dir: &std::path::Path, endpoint: &str, args: &[&str], env: &[(&str, &str)]) -> (std::process::Child, Receiver<String>) {
    let mut child = converge_command(dir, &[&["reconcile", "--apply", "--listen", "127.0.0.1:0"], args].concat(), Some(endpoint))
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The loop's failures go to standard error: read with the rest, prefixed.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx2.send(format!("stderr: {line}"));
        }
    });
    (child, rx)
}

/// Lines until one satisfies `until` (included), or the deadline.
fn read_until(rx: &Receiver<String>, deadline: Duration, until: impl Fn(&[String]) -> bool) -> Vec<String> {
    let end = Instant::now() + deadline;
    let mut seen = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push(line);
                if until(&seen) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    seen
}

/// GET `path` from the loop's listener (its address as the loop said it): status line and body.
fn get(seen: &[String], path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let addr = seen
        .iter()
        .find_map(|l| match serde_json::from_str::<serde_json::Value>(l) {
            Ok(event) => event["addr"].as_str().map(str::to_string),
            Err(_) => l.strip_prefix("serving /metrics, /healthz and /readyz on http://").map(str::to_string),
        })
        .expect("the loop says where it listens");
    let addr = addr.as_str();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The value of one sample of a Prometheus scrape, parsed as Prometheus parses it.
fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let scrape = prometheus_parse::Scrape::parse(metrics.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text");
    scrape.samples.iter().find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))).map(|s| match s.value {
        prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
        _ => f64::NAN,
    })
}

/// Stops the loop as a service manager or a person does (`-TERM`, `-INT`): it exits cleanly.
fn stop(mut child: std::process::Child, signal: &str) {
    Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[tokio::test]
async fn a_hand_made_conflict_holds_back_only_its_object_and_what_needs_it() {
    let moto = Moto::start();
    // A hand-made group with lb's AWS name: a conflict, and the load balancer needs lb.
    let vpc = moto.ec2().describe_vpcs().send().await.unwrap().vpcs()[0].vpc_id().unwrap().to_string();
    moto.ec2().create_security_group().group_name("agency-lb").description("by hand").vpc_id(vpc).send().await.unwrap();
    let dir = FleetDir::new(&[("fleet.toml", FLEET)]);
    let (child, rx) = start(dir.path(), &moto.endpoint, &["--interval", "1h"], &[]);
    let seen = read_until(&rx, Duration::from_secs(60), |s| s.iter().any(|l| l.starts_with("Apply complete!") || l.starts_with("Apply failed")));
    stop(child, "-TERM");
    let text = seen.join("\n");
    assert!(text.contains("conflict, held until resolved: security_group.lb"), "{text}");
    assert!(text.contains("load_balancer.shared (waits for security_group.lb, which is held)"), "{text}");
    assert!(text.contains("Apply complete! Resources: 1 added"), "web converges: {text}");
    let web = moto.ec2().describe_security_groups().filters(aws_sdk_ec2::types::Filter::builder().name("group-name").values("agency-web").build());
    assert_eq!(web.send().await.unwrap().security_groups().len(), 1);
    let lbs = moto.elb().describe_load_balancers().send().await.unwrap();
    assert!(lbs.load_balancer_descriptions().is_empty(), "the load balancer waits for its group");
}

// The proxy runs on this test's runtime while the test waits on the loop's output: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_whose_api_always_fails_is_retried_with_growing_gaps_while_the_rest_converges() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint, Faults { always: vec![("ConfigureHealthCheck", Fault::Unavailable)], ..Faults::default() }).await;
    let dir = FleetDir::new(&[("fleet.toml", FLEET)]);
    let (url, said) = webhook_receiver();
    // One attempt per call: the SDK's retries would only slow the test down.
    let (child, rx) = start(dir.path(), &proxy.endpoint, &["--interval", "1h", "--webhook", &url], &[("AWS_MAX_ATTEMPTS", "1")]);
    let started = Instant::now();
    let seen = read_until(&rx, Duration::from_secs(90), |s| s.iter().any(|l| l.contains("after 4 failure(s)")));
    let elapsed = started.elapsed();
    // What a watcher sees meanwhile: the metrics, parsed as Prometheus parses them, and the health checks.
    let (status, metrics) = get(&seen, "/metrics");
    assert!(status.contains("200"), "{status}");
    assert!(get(&seen, "/healthz").0.contains("200") && get(&seen, "/readyz").0.contains("200"));
    stop(child, "-INT");
    let value = |name: &str, labels: &[(&str, &str)]| sample(&metrics, name, labels);
    assert!(value("converge_reconcile_errors_total", &[("kind", "load_balancer"), ("class", "transient")]) >= Some(3.0), "{metrics}");
    assert_eq!(value("converge_objects", &[("kind", "security_group"), ("state", "converged")]), Some(2.0), "{metrics}");
    assert_eq!(value("converge_objects", &[("kind", "load_balancer"), ("state", "backoff")]), Some(1.0), "{metrics}");
    assert!(value("converge_aws_calls_total", &[("operation", "ConfigureHealthCheck")]) >= Some(3.0), "{metrics}");
    assert!(value("converge_passes_total", &[("result", "ok")]) >= Some(3.0), "{metrics}");
    let text = seen.join("\n");
    let waits: Vec<f64> = seen
        .iter()
        .filter(|l| l.contains("load_balancer.shared: backing off"))
        .filter_map(|l| l.split("backing off ").nth(1)?.split('s').next()?.parse().ok())
        .collect();
    assert_eq!(waits.len(), 4, "{text}");
    assert!(waits.windows(2).all(|w| w[1] > w[0]), "each gap longer than the last: {waits:?}\n{text}");
    assert!(text.contains("(transient)"), "the failure's class is said: {text}");
    // Both groups converged at the first pass, whatever the load balancer does; the loop ran on its own
    // backoff, not the hour's interval.
    for name in ["agency-lb", "agency-web"] {
        let filter = aws_sdk_ec2::types::Filter::builder().name("group-name").values(name).build();
        let found = moto.ec2().describe_security_groups().filters(filter).send().await.unwrap();
        assert_eq!(found.security_groups()[0].tags().len(), 2, "{name} is ours");
    }
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
    // Chat hears of the failing object once per backoff step (1, 2, 4, 8 s: each longer), with its class.
    let messages: Vec<String> = std::iter::from_fn(|| said.recv_timeout(Duration::from_secs(2)).ok())
        .map(|m| serde_json::from_str::<serde_json::Value>(&m).unwrap()["text"].as_str().unwrap().to_string())
        .collect();
    let failing: Vec<&String> =
        messages.iter().filter(|m| m.contains("Failed: load_balancer.shared (transient, elasticloadbalancing:ConfigureHealthCheck)")).collect();
    assert_eq!(failing.len(), 4, "{messages:#?}");
    for (i, m) in failing.iter().enumerate() {
        assert!(m.contains(&format!("after {} failure(s)", i + 1)), "{m}");
    }
}

/// Events of the loop's JSON log, each line parsed; a line that is not one JSON object fails the test.
fn events(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .filter(|l| !l.starts_with("stderr: "))
        .map(|l| {
            let event: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"));
            for key in ["ts", "level", "event", "fleet"] {
                assert!(event[key].is_string(), "{key} in every line: {l}");
            }
            event
        })
        .collect()
}

fn is(event: &serde_json::Value, name: &str, address: &str) -> bool {
    event["event"] == name && event["address"] == address
}

// The webhook and the test share the test's threads: two workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_made_by_hand_while_the_loop_runs_is_corrected_at_the_next_pass_logged_counted_and_told() {
    let moto = Moto::start();
    // lb is looked at once an hour; web at every pass.
    let fleet = FLEET.replace("[security_group.lb]\n", "[security_group.lb]\nreconcile_every = \"1h\"\n");
    let dir = FleetDir::new(&[("fleet.toml", &fleet)]);
    let (url, said) = webhook_receiver();
    let (child, rx) = start(dir.path(), &moto.endpoint, &["--interval", "2s", "--log-format", "json", "--webhook", &url], &[]);
    let first = read_until(&rx, Duration::from_secs(60), |s| s.last().is_some_and(|l| l.contains(r#""event":"pass_ended""#)));
    let first_events = events(&first);
    let ended = first_events.last().unwrap();
    assert_eq!((ended["pass"].as_u64(), ended["result"].as_str(), ended["applied"].as_u64()), (Some(1), Some("ok"), Some(3)), "{first:#?}");
    let created: serde_json::Value = serde_json::from_str(&said.recv_timeout(Duration::from_secs(10)).unwrap()).unwrap();
    let created = created["text"].as_str().unwrap();
    assert!(created.starts_with("converge reconcile: fleet agency (account 123456789012, eu-west-1), by "), "{created}");
    assert!(created.contains("\nCorrected drift: 3 added, 0 changed, 0 destroyed\n"), "{created}");
    for object in ["security_group.lb", "security_group.web", "load_balancer.shared"] {
        assert!(created.contains(&format!("\n  + {object}")), "{created}");
    }

    // By hand, between passes: each group loses its rule.
    let ec2 = moto.ec2();
    let group = |name: &str| {
        let filter = aws_sdk_ec2::types::Filter::builder().name("group-name").values(name).build();
        ec2.describe_security_groups().filters(filter).send()
    };
    for (name, port, cidr) in [("agency-web", 22, "10.0.0.0/8"), ("agency-lb", 80, "0.0.0.0/0")] {
        let id = group(name).await.unwrap().security_groups()[0].group_id().unwrap().to_string();
        let range = aws_sdk_ec2::types::IpRange::builder().cidr_ip(cidr).build();
        let rule = aws_sdk_ec2::types::IpPermission::builder().ip_protocol("tcp").from_port(port).to_port(port).ip_ranges(range).build();
        ec2.revoke_security_group_ingress().group_id(id).ip_permissions(rule).send().await.unwrap();
    }
    let drifted = Instant::now();
    let second = read_until(&rx, Duration::from_secs(60), |s| s.last().is_some_and(|l| l.contains(r#""event":"pass_ended""#)));
    let corrected = drifted.elapsed();
    let second_events = events(&second);
    let (status, metrics) = get(&first, "/metrics");
    assert!(status.contains("200"), "{status}");
    stop(child, "-TERM");

    // The next pass, at most one interval later, puts web's rule back; lb's waits for its hour.
    assert_eq!(second_events[0]["event"], "pass_started", "{second:#?}");
    assert_eq!(second_events[0]["pass"], 2, "the first pass after the change: {second:#?}");
    assert!(second_events.iter().any(|e| is(e, "applied", "security_group.web") && e["action"] == "update"), "{second:#?}");
    let held = second_events.iter().find(|e| is(e, "held", "security_group.lb")).expect("lb held");
    assert!(held["reason"].as_str().unwrap().starts_with("reconcile_every 1h: next in 59m"), "{held}");
    assert!(corrected < Duration::from_secs(2) + Duration::from_secs(20), "{corrected:?}");
    let web = group("agency-web").await.unwrap();
    assert_eq!(web.security_groups()[0].ip_permissions().len(), 1, "web's rule is back");
    let lb = group("agency-lb").await.unwrap();
    assert!(lb.security_groups()[0].ip_permissions().is_empty(), "lb is not written before its hour");

    // The metrics count the correction, and the held object.
    let value = |name: &str, labels: &[(&str, &str)]| sample(&metrics, name, labels);
    assert_eq!(value("converge_reconcile_total", &[("kind", "security_group"), ("result", "applied")]), Some(3.0), "{metrics}");
    assert_eq!(value("converge_objects", &[("kind", "security_group"), ("state", "held")]), Some(1.0), "{metrics}");
    assert_eq!(value("converge_objects", &[("kind", "security_group"), ("state", "converged")]), Some(1.0), "{metrics}");
    assert!(value("converge_passes_total", &[("result", "ok")]) >= Some(2.0), "{metrics}");

    // And chat hears of the correction.
    let fixed: serde_json::Value = serde_json::from_str(&said.recv_timeout(Duration::from_secs(10)).unwrap()).unwrap();
    assert!(fixed["text"].as_str().unwrap().ends_with("Corrected drift: 0 added, 1 changed, 0 destroyed\n  ~ security_group.web"), "{fixed}");
}
