//! Every renderer on the same plans. Ids are redacted so the snapshots speak of what people read.

use crate::plan::{Plan, PlanOptions, mark_affected_sites, plan};
use crate::render::{COMMENT_LIMIT, Target, plan_json, plan_markdown, plan_text};
use crate::testing::{desired_of, fleet_of, live_of};

const BEFORE: &str = r#"
[fleet]
name = "agency"
region = "eu-west-1"

[security_group.lb]
description = "HTTP(S) from anywhere"
ingress = [{ ports = "80", cidr = "0.0.0.0/0" }, { ports = "443", cidr = "0.0.0.0/0" }]
[security_group.web]
ingress = [{ ports = "80", from = "lb" }]
[security_group.legacy]
ingress = [{ ports = "8080", cidr = "0.0.0.0/0" }]

[pool.web]
image = "nightly"
instance_type = "t3.large"
security_groups = ["web"]
min = 2
max = 8
[image.nightly]
name = "sites-nightly-*"

[load_balancer.one]
security_groups = ["lb"]
listeners = [{ port = 443, protocol = "https", instance_port = 80, certificate = "arn:aws:iam::123456789012:server-certificate/wild-2026" }]
[load_balancer.two]
security_groups = ["lb"]
listeners = [{ port = 443, protocol = "https", instance_port = 80, certificate = "arn:aws:iam::123456789012:server-certificate/wild-2026" }]
[load_balancer.three]
security_groups = ["lb"]
listeners = [{ port = 443, protocol = "https", instance_port = 80, certificate = "arn:aws:iam::123456789012:server-certificate/wild-2026" }]
[load_balancer.legacy]
security_groups = ["legacy"]
listeners = [{ port = 80, protocol = "http", instance_port = 80 }]

[site.acme]
domain = "www.acme.co.uk"
pool = "web"
load_balancer = "one"
repo = "git@git.agency.net:sites/acme.git"
commit = "4f2a9c1e0b"
[site.globex]
domain = "www.globex.com"
pool = "web"
load_balancer = "two"
repo = "git@git.agency.net:sites/globex.git"
commit = "9b1d2e3f4a"
"#;

/// The certificate rotated on both load balancers, the legacy ones gone, a new group, a scheme change, and
/// acme deployed at a new commit.
fn after() -> String {
    let legacy_lb = BEFORE.find("[load_balancer.legacy]").unwrap();
    let legacy_end = BEFORE[legacy_lb..].find("\n[").map(|i| legacy_lb + i + 1).unwrap();
    let mut text = format!("{}{}", &BEFORE[..legacy_lb], &BEFORE[legacy_end..]);
    text = text.replace(
        "[security_group.legacy]\ningress = [{ ports = \"8080\", cidr = \"0.0.0.0/0\" }]\n",
        "[security_group.admin]\ningress = [{ ports = \"22\", cidr = \"10.0.0.0/8\" }]\n",
    );
    text = text.replace("wild-2026", "wild-2027").replace("4f2a9c1e0b", "5e6f7a8b9c");
    text.replace("[load_balancer.two]", "[load_balancer.two]\nscheme = \"internal\"")
}

fn the_plan() -> Plan {
    let after = after();
    let live = crate::testing::pools_applied(live_of(BEFORE), 3, 4);
    let mut p = plan("agency", &desired_of(&after), &live, &PlanOptions::default());
    mark_affected_sites(&fleet_of(&after), &mut p);
    p
}

const TARGET: Target<'static> = Target { account: "123456789012", region: "eu-west-1" };

fn redacted(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split("sg-").enumerate() {
        if i == 0 {
            out.push_str(part);
            continue;
        }
        let id_len = part.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(part.len());
        out.push_str("[sg-id]");
        out.push_str(&part[id_len..]);
    }
    out
}

#[test]
fn text() {
    insta::assert_snapshot!(redacted(&plan_text(&the_plan())));
}

#[test]
fn text_by_site() {
    let sites = vec![
        ("acme".to_string(), "www.acme.co.uk".to_string()),
        ("globex".to_string(), "www.globex.com".to_string()),
        ("initech".to_string(), "initech.example".to_string()),
    ];
    insta::assert_snapshot!(redacted(&crate::render::plan_by_site(&the_plan(), &sites)));
}

#[test]
fn markdown() {
    insta::assert_snapshot!(redacted(&plan_markdown(&the_plan(), Some(TARGET), COMMENT_LIMIT)));
}

#[test]
fn json() {
    insta::assert_snapshot!(redacted(&plan_json(&the_plan(), Some(TARGET))));
}

#[test]
fn json_is_stable_and_parses() {
    let a = plan_json(&the_plan(), Some(TARGET));
    assert_eq!(a, plan_json(&the_plan(), Some(TARGET)));
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    assert_eq!(v["format_version"], "1");
    assert_eq!(v["summary"]["destroy"], 3);
    assert_eq!(v["sites_affected"], serde_json::json!(["acme", "globex"]));
}

#[test]
fn markdown_of_three_hundred_changed_sites_stays_under_the_comment_limit() {
    let mut before = String::from("[fleet]\nname = \"agency\"\nregion = \"eu-west-1\"\n[security_group.lb]\ningress = []\n");
    for i in 0..300 {
        before.push_str(&format!(
            "[load_balancer.site{i:03}]\nsecurity_groups = [\"lb\"]\nlisteners = [{{ port = 443, protocol = \"https\", instance_port = 80, certificate = \"arn:aws:iam::123456789012:server-certificate/site{i:03}-2026\" }}]\n\
             [site.site{i:03}]\ndomain = \"www.site{i:03}.example\"\npool = \"web\"\nload_balancer = \"site{i:03}\"\nrepo = \"git@x:s.git\"\ncommit = \"4f2a9c1e0b\"\n"
        ));
    }
    before.push_str("[pool.web]\nimage = \"n\"\ninstance_type = \"t3.large\"\nmin = 1\nmax = 2\n[image.n]\nname = \"x-*\"\n");
    let after = before.replace("-2026", "-2027");
    let mut p = plan("agency", &desired_of(&after), &live_of(&before), &PlanOptions::default());
    mark_affected_sites(&fleet_of(&after), &mut p);
    assert_eq!(p.summary().change, 300);
    let md = plan_markdown(&p, Some(TARGET), COMMENT_LIMIT);
    assert!(md.chars().count() <= COMMENT_LIMIT, "{} characters", md.chars().count());
    assert!(md.contains("300 sites affected"));
    assert!(md.contains("left out to stay within GitHub's comment limit"), "says what it left out");
}

#[test]
fn identical_changes_are_shown_once_with_their_objects() {
    let md = plan_markdown(&the_plan(), None, COMMENT_LIMIT);
    assert!(md.contains("2 objects, the same change: <code>load_balancer.one</code>, <code>load_balancer.three</code>"), "{md}");
    assert_eq!(md.matches("+ listener 443 certificate = arn:aws:iam::123456789012:server-certificate/wild-2027").count(), 1, "{md}");
}

#[test]
fn an_apply_failure_in_json_carries_its_class_call_resource_and_code() {
    use crate::apply::{ChangeError, Report};
    use crate::error::{Class, Failure};
    let plan = the_plan();
    let address = plan.changes[0].address.clone();
    let error = Failure {
        class: Class::Throttled,
        operation: Some("elasticloadbalancing:ConfigureHealthCheck".into()),
        resource: Some("agency-one".into()),
        code: Some("Throttling".into()),
        message: "elasticloadbalancing:ConfigureHealthCheck for agency-one failed: Throttling: Rate exceeded".into(),
    };
    let report = Report { failed: vec![(address.clone(), ChangeError { done: 1, total: 3, error })], ..Report::default() };
    let v: serde_json::Value = serde_json::from_str(&crate::render::apply_json(&plan, None, &report)).unwrap();
    assert_eq!(
        v["result"]["failed"][0],
        serde_json::json!({
            "address": address.to_string(),
            "error": "elasticloadbalancing:ConfigureHealthCheck for agency-one failed: Throttling: Rate exceeded",
            "class": "throttled",
            "operation": "elasticloadbalancing:ConfigureHealthCheck",
            "resource": "agency-one",
            "code": "Throttling",
            "operations_done": 1,
            "operations": 3,
        })
    );
}

/// The report people read after an apply that did not complete: counts, each failure with its class and
/// how far it got, what was not attempted and why.
#[test]
fn apply_report_text() {
    use crate::apply::{ChangeError, Report};
    use crate::error::{Class, Failure};
    let plan = the_plan();
    let [first, second, third, fourth, ..] = &plan.changes[..] else { panic!("the plan has at least four changes") };
    let failure = Failure {
        class: Class::Throttled,
        operation: Some("ec2:AuthorizeSecurityGroupIngress".into()),
        resource: Some(first.address.to_string()),
        code: Some("RequestLimitExceeded".into()),
        message: format!("ec2:AuthorizeSecurityGroupIngress for {} failed: RequestLimitExceeded: Request limit exceeded.", first.address),
    };
    let report = Report {
        applied: vec![second.address.clone()],
        failed: vec![(first.address.clone(), ChangeError { done: 1, total: 3, error: failure })],
        skipped: vec![(third.address.clone(), first.address.clone())],
        cancelled: vec![fourth.address.clone()],
    };
    insta::assert_snapshot!(redacted(&crate::render::report_text(&plan, &report)));
    let done = Report { applied: plan.changes.iter().map(|c| c.address.clone()).collect(), ..Report::default() };
    insta::assert_snapshot!("apply_report_text_complete", crate::render::report_text(&plan, &done));
}
