//! The binary: validation messages, exit codes, confirmation, and the example fleet end to end.

use std::path::Path;

use crate::support::*;

/// An endpoint nothing listens on: any AWS call would fail loudly.
const NO_AWS: &str = "http://127.0.0.1:9";

fn validate(files: &[(&str, &str)]) -> (Run, String) {
    let dir = FleetDir::new(files);
    let run = run_converge(dir.path(), &["validate"], Some(NO_AWS), None);
    let text = run.stderr.replace(&format!("{}/", dir.path().display()), "");
    (run, text)
}

#[test]
fn validation_reports_every_problem_with_file_line_column_and_field() {
    let (run, text) = validate(&[
        ("fleet.toml", "[fleet]\nname = \"agency\"\nregion = \"eu-west-1\"\nacount = \"123\"\n"),
        (
            "network.toml",
            r#"
[security_group.lb]
ingress = [{ ports = "80", cidr = ["0.0.0.0/0", "10.0.0.1/8", "nonsense"] }, { ports = "70000", cidr = ["0.0.0.0/0"] }]

[security_group.web]
ingress = [{ ports = "80", from = "lbb" }]

[pool.web]
image = "nightly"
instance_typ = "t3.large"
security_groups = ["web"]
min = "2"
max = 8

[load_balancer.shared]
pool = "web"
security_groups = ["lb"]
listeners = [
  { port = 443, protocol = "https", instance_port = 80 },
  { port = 443, protocol = "http", instance_port = 80 },
]
"#,
        ),
        (
            "sites/acme.toml",
            r#"
[site.acme]
domain = "www.acme.co.uk"
pool = "web"
load_balancer = "sharde"
repo = "git@git.agency.net:sites/acme.git"
commit = "4f2a9c1e0b"
"#,
        ),
        ("sites/dup.toml", "[security_group.web]\ningress = []\n"),
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout, "");
    insta::assert_snapshot!(text);
}

#[test]
fn a_syntax_error_points_at_its_place_and_other_files_are_still_checked() {
    let (run, text) = validate(&[("a.toml", "[fleet]\nname = \"agency\"\nregion = eu-west-1\n"), ("b.toml", "[security_group.lb]\ningres = []\n")]);
    assert_eq!(run.code, 1, "{run:?}");
    insta::assert_snapshot!(text);
}

#[test]
fn a_malformed_timeout_in_the_environment_is_an_error_before_any_aws_call() {
    let dir = FleetDir::new(&[("fleet.toml", FLEET)]);
    let mut cmd = converge_command(dir.path(), &["plan"], Some(NO_AWS));
    cmd.env("CONVERGE_ATTEMPT_TIMEOUT", "soon");
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("CONVERGE_ATTEMPT_TIMEOUT: `soon` is not a duration such as 90s, 5m or 1h"), "{stderr}");
}

#[test]
fn an_invalid_fleet_makes_no_aws_call_for_plan_or_apply() {
    for cmd in ["plan", "apply"] {
        let dir = FleetDir::new(&[("fleet.toml", "[fleet]\nname = \"agency\"\n")]);
        let run = run_converge(dir.path(), &[cmd, "--stats"], Some(NO_AWS), None);
        assert_eq!(run.code, 1, "{run:?}");
        assert!(run.stderr.contains("fleet.region: missing required field"), "{run:?}");
        assert!(!run.stderr.contains("AWS API calls"), "no AWS call when validation fails: {run:?}");
    }
}

#[test]
fn plan_exit_codes_and_a_declined_apply() {
    let moto = Moto::start();
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("g.toml", "[security_group.lb]\ningress = [{ ports = \"80\", cidr = \"0.0.0.0/0\" }]\n")]);
    assert_eq!(moto.converge(dir.path(), &["plan"]).code, 0);
    assert_eq!(moto.converge(dir.path(), &["plan", "--detailed-exitcode"]).code, 2);

    let run = run_converge(dir.path(), &["apply"], Some(&moto.endpoint), Some("no\n"));
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("Apply cancelled; nothing was changed."), "{run:?}");
    assert_eq!(moto.converge(dir.path(), &["plan", "--detailed-exitcode"]).code, 2, "still to do");

    let run = run_converge(dir.path(), &["apply"], Some(&moto.endpoint), Some("yes\n"));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Apply complete! Resources: 1 added, 0 changed, 0 destroyed."), "{run:?}");
    let run = moto.converge(dir.path(), &["plan", "--detailed-exitcode", "--stats"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("No changes."), "{run:?}");
    assert!(run.stderr.contains("EC2 DescribeSecurityGroups"), "--stats lists calls per operation: {run:?}");
}

#[test]
fn the_example_fleet_applies_and_then_plans_no_changes() {
    let moto = Moto::start();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        moto.nightly_image("sites-nightly-2026-11-25").await;
        // The agency's zone, and acme's (its DNS is managed).
        moto.example_zones().await;
    });
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("desired-state");
    assert_eq!(run_converge(&example, &["validate"], Some(NO_AWS), None).code, 0);
    let (url, said) = webhook_receiver();
    let run = moto.converge_with(&example, &["apply", "--auto-approve", "--webhook", &url], &[("SITES_DB_PASSWORD", "example-only")]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Apply complete!"), "{run:?}");
    // The team's chat hears what was applied, for which sites, by whom; never a secret.
    let message: serde_json::Value = serde_json::from_str(&said.recv_timeout(std::time::Duration::from_secs(5)).unwrap()).unwrap();
    let text = message["text"].as_str().unwrap();
    assert!(text.starts_with("converge apply: fleet agency (account 123456789012, eu-west-1), by "), "{text}");
    assert!(text.contains(" as arn:aws:sts::123456789012:") || text.contains(" as arn:aws:iam::123456789012:"), "the AWS identity: {text}");
    assert!(text.contains("\nApplied: ") && text.contains(" added, 0 changed, 0 destroyed, for site(s) acme, globex, initech"), "{text}");
    assert!(text.contains("\n  + db_instance.sites\n") && !text.contains("example-only"), "{text}");
    let run = moto.converge(&example, &["plan", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "{run:?}");
    // The sheet: every site deployed at its commit, nothing to apply (the emulator holds no IAM certificate:
    // that is all that is left).
    let run = moto.converge(&example, &["sites", "--format", "csv", "--resolver", "none"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "a header and three sites: {run:?}");
    assert!(lines[1].starts_with("acme,www.acme.co.uk,") && lines[1].contains(",managed,-,web,acme,"), "{}", lines[1]);
    assert!(lines[1].contains(",web-cpu-high,"), "the alarm of its pool: {}", lines[1]);
    assert!(lines[2].contains(",web-cpu-high shared-unhealthy-hosts,"), "the alarms of its pool and load balancer: {}", lines[2]);
    assert!(lines.iter().skip(1).all(|l| !l.contains("change(s) to apply") && !l.contains("deploy pending")), "{run:?}");
    // Where the public names resolve, asked of a DNS server on loopback: acme's through its record and to
    // its addresses; globex's `www` at its old host and its apex gone; initech's unknown (refused).
    let resolver = dns_server(
        &[("www.acme.co.uk", "acme.sites.agency.net")],
        &[("acme.sites.agency.net", "192.0.2.10"), ("acme.co.uk", "192.0.2.10"), ("www.globex.com", "203.0.113.7")],
        &["globex.com"],
    );
    let run = moto.converge(&example, &["sites", "--format", "json", "--resolver", &resolver]);
    assert_eq!(run.code, 0, "{run:?}");
    let rows: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let points = |site: usize| -> Vec<(String, String)> {
        let checks = rows[site]["resolves"].as_array().unwrap_or_else(|| panic!("{rows}"));
        checks.iter().map(|c| (c["name"].as_str().unwrap().to_string(), c["points"].as_str().unwrap().to_string())).collect()
    };
    let pair = |n: &str, p: &str| (n.to_string(), p.to_string());
    assert_eq!(points(0), [pair("www.acme.co.uk", "here"), pair("acme.co.uk", "here")], "{rows}");
    assert_eq!(points(1), [pair("www.globex.com", "elsewhere"), pair("globex.com", "not_found")], "{rows}");
    assert_eq!(rows[1]["resolves"][0]["detail"], "203.0.113.7");
    assert_eq!(points(2), [pair("initech.example", "unknown")], "{rows}");
    let status = |site: usize| rows[site]["status"].as_str().unwrap().to_string();
    assert!(!status(0).contains("DNS") && !status(2).contains("DNS"), "{rows}");
    assert!(status(1).contains("client to point DNS: www.globex.com globex.com"), "{rows}");
    let pending = moto.converge(&example, &["sites", "--only", "pending", "--format", "json", "--resolver", &resolver]);
    let rows: serde_json::Value = serde_json::from_str(&pending.stdout).unwrap();
    assert!(rows.as_array().unwrap().iter().all(|r| r["status"].as_str().unwrap().contains("certificate")), "{rows}");
}

#[test]
fn reconcile_converges_then_reports_no_changes_and_stops_on_interrupt() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let moto = Moto::start();
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("g.toml", "[security_group.lb]\ningress = [{ ports = \"80\", cidr = \"0.0.0.0/0\" }]\n")]);
    let mut child = converge_command(dir.path(), &["reconcile", "--interval", "1s", "--apply"], Some(&moto.endpoint))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Read on a thread to the end, so the binary never writes into a closed pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(60)) {
        let done = line.starts_with("no changes");
        seen.push(line);
        if done {
            break;
        }
    }
    assert!(seen.iter().any(|l| l.starts_with("Plan: 1 to add")), "{seen:#?}");
    assert!(seen.iter().any(|l| l.starts_with("Apply complete!")), "{seen:#?}");
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn plan_renders_as_json_and_markdown_for_programs_and_reviewers() {
    let moto = Moto::start();
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("g.toml", "[security_group.lb]\ningress = [{ ports = \"80\", cidr = \"0.0.0.0/0\" }]\n")]);
    let run = moto.converge(dir.path(), &["plan", "--format", "json", "--detailed-exitcode"]);
    assert_eq!(run.code, 2, "{run:?}");
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("stdout is JSON alone");
    assert_eq!(v["format_version"], "1");
    assert_eq!(v["target"]["account"], "123456789012");
    assert_eq!(v["summary"]["add"], 1);
    assert_eq!(v["changes"][0]["address"], "security_group.lb");
    assert_eq!(v["changes"][0]["action"], "create");

    let run = moto.converge(dir.path(), &["plan", "--format", "markdown"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("### converge plan for fleet `agency` (account 123456789012, eu-west-1)"), "{run:?}");
    assert!(run.stdout.contains("<details><summary><code>+ security_group.lb</code> create</summary>"), "{run:?}");
}

#[test]
fn diff_between_git_revisions_needs_no_aws() {
    let repo = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .arg("-C")
            .arg(repo.path())
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(ok.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&ok.stderr));
    };
    let state = repo.path().join("desired-state");
    std::fs::create_dir_all(state.join("sites")).unwrap();
    let groups = "[security_group.lb]\ningress = [{ ports = \"443\", cidr = \"0.0.0.0/0\" }]\n";
    std::fs::write(state.join("fleet.toml"), FLEET).unwrap();
    std::fs::write(state.join("groups.toml"), groups).unwrap();
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "one"]);
    std::fs::write(state.join("groups.toml"), groups.replace("\"443\"", "\"8443\"")).unwrap();
    git(&["commit", "-qam", "two"]);

    let run = run_converge(&state, &["diff", "--base", "HEAD~1", "--detailed-exitcode"], Some(NO_AWS), None);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.contains("(offline: nothing was read from AWS)"), "{run:?}");
    assert!(run.stdout.contains("+ ingress = tcp 8443 from 0.0.0.0/0"), "{run:?}");
    assert!(run.stdout.contains("- ingress = tcp 443 from 0.0.0.0/0"), "{run:?}");

    let run = run_converge(&state, &["diff", "--base", "HEAD", "--detailed-exitcode"], Some(NO_AWS), None);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("No differences"), "{run:?}");

    // A broken old state names the revision, not a temporary copy.
    std::fs::write(state.join("groups.toml"), "[security_group.lb]\ningres = []\n").unwrap();
    git(&["commit", "-qam", "broken"]);
    std::fs::write(state.join("groups.toml"), groups).unwrap();
    let run = run_converge(&state, &["diff", "--base", "HEAD"], Some(NO_AWS), None);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("HEAD:desired-state/groups.toml:2:1"), "{run:?}");
}

#[test]
fn target_plans_and_applies_only_what_it_names_and_replace_forces_a_replacement() {
    let moto = Moto::start();
    let objects = r#"
[security_group.lb]
ingress = [{ ports = "80", cidr = "0.0.0.0/0" }]
[security_group.spare]
ingress = []
[load_balancer.one]
security_groups = ["lb"]
listeners = [{ port = 80, protocol = "http", instance_port = 80 }]
[load_balancer.two]
security_groups = ["lb"]
listeners = [{ port = 80, protocol = "http", instance_port = 80 }]
"#;
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("objects.toml", objects)]);
    let run = moto.converge(dir.path(), &["apply", "--auto-approve", "--target", "load_balancer.one"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Plan: 2 to add, 0 to change, 0 to destroy."), "the load balancer and its group: {run:?}");
    let run = moto.converge(dir.path(), &["plan"]);
    assert!(run.stdout.contains("Plan: 2 to add, 0 to change, 0 to destroy."), "two and spare are left: {run:?}");

    let run = moto.converge(dir.path(), &["plan", "--target", "load_balancer.tow"]);
    assert_eq!(run.code, 1, "a typo never plans nothing quietly: {run:?}");
    assert!(run.stdout.contains("did you mean load_balancer.two?"), "{run:?}");

    assert_eq!(moto.converge(dir.path(), &["apply", "--auto-approve"]).code, 0);
    let run = moto.converge(dir.path(), &["apply", "--auto-approve", "--replace", "security_group.spare"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("-/+ security_group.spare"), "{run:?}");
    assert!(run.stdout.contains("# forces replacement   # --replace"), "{run:?}");
    let run = moto.converge(dir.path(), &["apply", "--auto-approve", "--replace", "security_group.lb"]);
    assert_eq!(run.code, 1, "a group in use is not replaced: {run:?}");
    assert!(run.stdout.contains("but load_balancer.one, load_balancer.two still use it"), "{run:?}");
}

#[test]
fn validate_and_apply_speak_json_for_programs() {
    let bad = FleetDir::new(&[("fleet.toml", "[fleet]\nname = \"agency\"\nregion = \"eu-west-1\"\n[security_group.lb]\ningres = []\n")]);
    let run = run_converge(bad.path(), &["validate", "--format", "json"], Some(NO_AWS), None);
    assert_eq!(run.code, 1, "{run:?}");
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["problems"][0]["line"], 5);
    assert_eq!(v["problems"][0]["field"], "security_group.lb.ingres");
    assert_eq!(v["problems"][0]["help"], "did you mean `ingress`?");

    let moto = Moto::start();
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("g.toml", "[security_group.lb]\ningress = [{ ports = \"80\", cidr = \"0.0.0.0/0\" }]\n")]);
    let run = moto.converge(dir.path(), &["apply", "--format", "json"]);
    assert_eq!(run.code, 1, "JSON output has no one to answer the prompt: {run:?}");
    let run = moto.converge(dir.path(), &["apply", "--auto-approve", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("stdout is the JSON result alone");
    assert_eq!(v["plan"]["summary"]["add"], 1);
    assert_eq!(v["result"]["complete"], true);
    assert_eq!(v["result"]["applied"], serde_json::json!(["security_group.lb"]));
    assert!(run.stderr.contains("security_group.lb: Creation complete"), "progress goes to stderr: {run:?}");
}

#[tokio::test]
async fn every_example_scenario_converges_step_by_step() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut scenarios: Vec<_> = std::fs::read_dir(&examples).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    scenarios.sort();
    let mut ran = 0;
    for scenario in scenarios {
        let mut steps: Vec<_> = std::fs::read_dir(&scenario).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
        steps.sort();
        if steps.is_empty() {
            continue; // invalid/ and ci/ are not sequences of states
        }
        let moto = Moto::start();
        let aws = moto.aws();
        for step in steps {
            let fleet = converge::model::load_dir(&step).unwrap_or_else(|d| panic!("{}: {d}", step.display()));
            converge(&aws, &fleet).await;
            ran += 1;
        }
    }
    assert!(ran >= 6, "the scenarios ran: {ran} steps");
    let invalid = converge::model::load_dir(&examples.join("invalid")).unwrap_err();
    assert!(invalid.0.len() >= 5, "examples/invalid shows several mistakes: {invalid}");
}

/// `converge completions SHELL` registers the binary with the shell; the shell then asks the binary, which
/// completes sites and addresses from the desired state of the command line's `--dir`.
#[test]
fn completions_register_with_the_shell_and_complete_sites_and_addresses_from_the_desired_state() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("desired-state");
    for shell in ["bash", "zsh", "fish"] {
        let run = run_converge(&example, &["completions", shell], Some(NO_AWS), None);
        assert_eq!(run.code, 0, "{run:?}");
        assert!(run.stdout.contains("COMPLETE") && run.stdout.contains("converge"), "{shell}: {run:?}");
    }
    let complete = |words: &[&str]| {
        let dir = example.to_str().unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_converge"))
            .env("COMPLETE", "fish")
            .args([&["--", "converge", "--dir", dir][..], words].concat())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split('\t').next().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(complete(&["plan", "--target", "site."]), vec!["site.acme", "site.globex", "site.initech"]);
    assert_eq!(complete(&["forget", "bucket."]), vec!["bucket.agency-acme-media", "bucket.agency-globex-media"]);
    assert!(complete(&["apply", "--replace", "db_instance."]).contains(&"db_instance.sites-replica".to_string()));
}

/// `converge graph` works offline: the reachability of the example fleet marks nothing; a rule that opens
/// the database to the internet is marked, and `--detailed-exitcode` says so.
#[test]
fn graph_draws_reachability_offline_and_marks_a_database_open_to_the_internet() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("desired-state");
    let run = run_converge(&example, &["graph", "--reachability", "--detailed-exitcode"], Some(NO_AWS), None);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("internet") && run.stdout.contains("-> load_balancer.shared") && !run.stdout.contains("not needed"), "{run:?}");
    // By mistake, the database's group also takes MySQL from anywhere.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&example, dir.path());
    let text = std::fs::read_to_string(dir.path().join("security-groups.toml")).unwrap();
    let (head, tail) = text.split_at(text.find("[security_group.db]").unwrap());
    let tail = tail.replacen("ingress = [", "ingress = [{ ports = \"3306\", cidr = \"0.0.0.0/0\" }, ", 1);
    std::fs::write(dir.path().join("security-groups.toml"), format!("{head}{tail}")).unwrap();
    let run = run_converge(dir.path(), &["graph", "--reachability", "--detailed-exitcode"], Some(NO_AWS), None);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.contains("! internet") && run.stdout.contains("not needed: the internet needs to reach only the load balancers"), "{run:?}");
    let run = run_converge(dir.path(), &["graph", "--reachability", "--format", "dot"], Some(NO_AWS), None);
    assert!(run.stdout.starts_with("digraph converge {") && run.stdout.contains("color=red"), "{run:?}");
}
