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

/// The loop, started on `dir` against `endpoint` with `env`, serving its metrics on a free port; its
/// stdout, line by line.
fn start(dir: &std::path::Path, endpoint: &str, interval: &str, env: &[(&str, &str)]) -> (std::process::Child, Receiver<String>) {
    let mut child = converge_command(dir, &["reconcile", "--apply", "--interval", interval, "--listen", "127.0.0.1:0"], Some(endpoint))
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

/// GET `path` from the loop's listener (its address as the loop printed it): status line and body.
fn get(seen: &[String], path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let addr = seen.iter().find_map(|l| l.strip_prefix("serving /metrics, /healthz and /readyz on http://")).expect("the loop says where it listens");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
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
    let (child, rx) = start(dir.path(), &moto.endpoint, "1h", &[]);
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
    // One attempt per call: the SDK's retries would only slow the test down.
    let (child, rx) = start(dir.path(), &proxy.endpoint, "1h", &[("AWS_MAX_ATTEMPTS", "1")]);
    let started = Instant::now();
    let seen = read_until(&rx, Duration::from_secs(90), |s| s.iter().any(|l| l.contains("after 4 failure(s)")));
    let elapsed = started.elapsed();
    // What a watcher sees meanwhile: the metrics, parsed as Prometheus parses them, and the health checks.
    let (status, metrics) = get(&seen, "/metrics");
    assert!(status.contains("200"), "{status}");
    assert!(get(&seen, "/healthz").0.contains("200") && get(&seen, "/readyz").0.contains("200"));
    stop(child, "-INT");
    let scrape = prometheus_parse::Scrape::parse(metrics.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text");
    let value = |name: &str, labels: &[(&str, &str)]| {
        scrape.samples.iter().find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))).map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
    };
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
}
