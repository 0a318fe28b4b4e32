//! Classic load balancers against the emulator: in-place changes by their own API calls, ordering,
//! ownership, batched reads and failure reporting.

use converge::apply::{self, Event};
use converge::aws::AwsExecutor;
use converge::plan::Action;

use crate::support::*;

const GROUPS: &str = r#"
[security_group.lb]
ingress = [{ ports = "80", cidr = "0.0.0.0/0" }, { ports = "443", cidr = "0.0.0.0/0" }]
[security_group.lb2]
ingress = [{ ports = "443", cidr = "0.0.0.0/0" }]
"#;

const BALANCERS: &str = r#"
[load_balancer.shared]
security_groups = ["lb"]
listeners = [
  { port = 80, protocol = "http", instance_port = 80 },
  { port = 443, protocol = "HTTPS", instance_port = 80, certificate = "arn:aws:iam::123456789012:server-certificate/shared-2026" },
]
health_check = { target = "HTTP:80/healthz", interval = 30, timeout = 5, healthy = 3, unhealthy = 2 }
tags = { cost-center = "hosting" }

[load_balancer.plain]
security_groups = ["lb"]
listeners = [{ port = 80, protocol = "http", instance_port = 8080 }]
cross_zone = false
connection_draining = 0
"#;

fn fleet_dir() -> FleetDir {
    FleetDir::new(&[("fleet.toml", FLEET), ("groups.toml", GROUPS), ("balancers.toml", BALANCERS)])
}

async fn describe(moto: &Moto, name: &str) -> aws_sdk_elasticloadbalancing::types::LoadBalancerDescription {
    let out = moto.elb().describe_load_balancers().load_balancer_names(name).send().await.unwrap();
    out.load_balancer_descriptions()[0].clone()
}

#[tokio::test]
async fn certificate_rotation_changes_the_listener_in_place() {
    let moto = Moto::start();
    let dir = fleet_dir();
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;

    dir.write("balancers.toml", &BALANCERS.replace("shared-2026", "shared-2027"));
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    assert_eq!(aws.stats.calls("SetLoadBalancerListenerSSLCertificate"), 1);
    assert_eq!(aws.stats.calls("DeleteLoadBalancerListeners"), 0, "no listener is deleted");
    assert_eq!(aws.stats.calls("CreateLoadBalancerListeners"), 0, "no listener is re-created");
    let lb = describe(&moto, "agency-shared").await;
    let certs: Vec<_> = lb.listener_descriptions().iter().filter_map(|d| d.listener()?.ssl_certificate_id()).collect();
    assert_eq!(certs, vec!["arn:aws:iam::123456789012:server-certificate/shared-2027"]);
}

#[tokio::test]
async fn health_check_attributes_groups_listeners_and_tags_each_use_their_own_call() {
    let moto = Moto::start();
    let dir = fleet_dir();
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;

    let changed = BALANCERS
        .replace("interval = 30", "interval = 10")
        .replace("cross_zone = false", "cross_zone = true\nidle_timeout = 300")
        .replace(
            r#"[load_balancer.plain]
security_groups = ["lb"]"#,
            r#"[load_balancer.plain]
security_groups = ["lb", "lb2"]"#,
        )
        .replace(
            r#"listeners = [{ port = 80, protocol = "http", instance_port = 8080 }]"#,
            r#"listeners = [{ port = 80, protocol = "http", instance_port = 8080 }, { port = 8443, protocol = "tcp", instance_port = 8443 }]"#,
        )
        .replace(r#"tags = { cost-center = "hosting" }"#, r#"tags = { cost-center = "web" }"#);
    dir.write("balancers.toml", &changed);
    let planned = plan(&aws, &dir.load()).await;
    assert!(planned.plan.changes.iter().all(|c| c.action == Action::Update), "{}", converge::render::plan_text(&planned.plan));
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    for (op, n) in [
        ("ConfigureHealthCheck", 1),
        ("ModifyLoadBalancerAttributes", 1),
        ("ApplySecurityGroupsToLoadBalancer", 1),
        ("CreateLoadBalancerListeners", 1),
        ("AddTags", 1),
        ("DeleteLoadBalancerListeners", 0),
        ("CreateLoadBalancer", 0),
        ("DeleteLoadBalancer", 0),
    ] {
        assert_eq!(aws.stats.calls(op), n, "{op}");
    }
    assert_eq!(describe(&moto, "agency-plain").await.security_groups().len(), 2);
}

#[tokio::test]
async fn removing_a_load_balancer_and_its_group_deletes_the_load_balancer_first() {
    let moto = Moto::start();
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("groups.toml", GROUPS), ("balancers.toml", BALANCERS)]);
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;

    dir.write("groups.toml", "[security_group.lb2]\ningress = [{ ports = \"443\", cidr = \"0.0.0.0/0\" }]\n");
    dir.write("balancers.toml", "");
    let planned = plan(&aws, &dir.load()).await;
    assert_eq!(planned.plan.summary().destroy, 3);
    let executor = AwsExecutor::new(aws.clone(), &planned.live, &planned.plan);
    let mut events = Vec::new();
    let report = apply::apply(&planned.plan, &executor, 10, std::future::pending(), |e| events.push(e)).await.unwrap();
    assert!(report.ok(), "{report:?}");
    let position = |f: &dyn Fn(&Event) -> bool| events.iter().position(f).unwrap();
    let sg_started = position(&|e| matches!(e, Event::Started { address, .. } if address.to_string() == "security_group.lb"));
    for lb in ["load_balancer.shared", "load_balancer.plain"] {
        let lb_done = position(&|e| matches!(e, Event::Finished { address, .. } if address.to_string() == lb));
        assert!(lb_done < sg_started, "{lb} deleted before its group: {events:?}");
    }
    let left = moto.elb().describe_load_balancers().send().await.unwrap();
    assert!(left.load_balancer_descriptions().is_empty());
    assert!(plan(&aws, &dir.load()).await.plan.is_empty());
}

#[tokio::test]
async fn a_hand_made_load_balancer_with_a_desired_name_is_a_conflict_and_left_alone() {
    let moto = Moto::start();
    let listener = aws_sdk_elasticloadbalancing::types::Listener::builder().protocol("HTTP").load_balancer_port(80).instance_port(9000).build().unwrap();
    moto.elb().create_load_balancer().load_balancer_name("agency-shared").listeners(listener).availability_zones("eu-west-1a").send().await.unwrap();
    let dir = fleet_dir();

    let run = moto.converge(dir.path(), &["plan"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("! load_balancer.shared: a load balancer named `agency-shared`"), "{run:?}");
    assert!(
        run.stdout.contains("To adopt it as load_balancer.shared, add `adopt = true` to its declaration, or tag it: `aws elb add-tags --load-balancer-names agency-shared --tags Key=converge:fleet,Value=agency Key=converge:address,Value=load_balancer.shared`"),
        "{run:?}"
    );

    let run = moto.converge(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(run.code, 1, "{run:?}");
    let lb = describe(&moto, "agency-shared").await;
    assert_eq!(lb.listener_descriptions().len(), 1);
    assert_eq!(lb.listener_descriptions()[0].listener().unwrap().instance_port(), 9000);
    let tags = moto.elb().describe_tags().load_balancer_names("agency-shared").send().await.unwrap();
    assert!(tags.tag_descriptions()[0].tags().is_empty());
    // Nothing else was applied either.
    assert!(moto.elb().describe_load_balancers().send().await.unwrap().load_balancer_descriptions().len() == 1);
}

#[tokio::test]
async fn reads_are_batched_for_fifty_load_balancers() {
    let moto = Moto::start();
    let mut balancers = String::new();
    for i in 0..50 {
        balancers.push_str(&format!(
            "[load_balancer.site{i:02}]\nsecurity_groups = [\"lb\"]\nlisteners = [{{ port = 80, protocol = \"http\", instance_port = 80 }}]\n"
        ));
    }
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("groups.toml", GROUPS), ("balancers.toml", &balancers)]);
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;

    aws.stats.reset();
    let planned = plan(&aws, &dir.load()).await;
    assert!(planned.plan.is_empty());
    assert_eq!(aws.stats.calls("DescribeLoadBalancers"), 1, "one page per 400 load balancers");
    assert_eq!(aws.stats.calls("DescribeTags"), 3 + 1, "20 names per ELB DescribeTags, and EC2's one for launch templates");
    assert_eq!(aws.stats.calls("DescribeSecurityGroups"), 2, "by tag and by name, not per group");
    assert_eq!(aws.stats.calls("DescribeLoadBalancerAttributes"), 50, "attributes have no batch call");
}

#[tokio::test]
async fn a_failed_change_is_reported_with_its_call_and_the_next_plan_shows_what_is_left() {
    let moto = Moto::start();
    // An ACM certificate that does not exist: CreateLoadBalancer fails; the groups do not depend on it.
    let bad = BALANCERS.replace(
        "arn:aws:iam::123456789012:server-certificate/shared-2026",
        "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000",
    );
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("groups.toml", GROUPS), ("balancers.toml", &bad)]);
    let run = moto.converge(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("load_balancer.shared: FAILED: elasticloadbalancing:CreateLoadBalancer for agency-shared failed"), "{run:?}");
    assert!(run.stdout.contains("Apply failed. Applied: 3 added, 0 changed, 0 destroyed."), "{run:?}");
    assert!(run.stdout.contains("failed: load_balancer.shared"), "{run:?}");
    // The summary says what kind of failure it was: the certificate is not found.
    assert!(run.stdout.contains("failed: load_balancer.shared (not found): elasticloadbalancing:CreateLoadBalancer"), "{run:?}");

    let run = moto.converge(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.contains("Plan: 1 to add, 0 to change, 0 to destroy."), "{run:?}");
}

#[tokio::test]
async fn a_scheme_change_replaces_the_load_balancer() {
    let moto = Moto::start();
    let dir = fleet_dir();
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;

    dir.write("balancers.toml", &BALANCERS.replace("[load_balancer.plain]", "[load_balancer.plain]\nscheme = \"internal\""));
    let planned = plan(&aws, &dir.load()).await;
    let change = planned.plan.change(&"load_balancer.plain".parse().unwrap()).unwrap();
    assert_eq!(change.action, Action::Replace);
    assert!(change.fields.iter().any(|f| f.field == "scheme" && f.forces_replacement));
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    assert_eq!((aws.stats.calls("DeleteLoadBalancer"), aws.stats.calls("CreateLoadBalancer")), (1, 1));
    assert_eq!(describe(&moto, "agency-plain").await.scheme(), Some("internal"));
}

#[tokio::test]
async fn zones_listeners_and_tags_change_by_their_own_calls_and_converge() {
    let moto = Moto::start();
    let dir = fleet_dir();
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;

    // Zones a,b -> a,c; listener 80 re-created as TCP; listener 443 removed; a tag removed.
    let changed = BALANCERS
        .replace(
            r#"[load_balancer.shared]
security_groups = ["lb"]"#,
            r#"[load_balancer.shared]
security_groups = ["lb"]
zones = ["eu-west-1a", "eu-west-1c"]"#,
        )
        .replace(
            r#"  { port = 80, protocol = "http", instance_port = 80 },
  { port = 443, protocol = "HTTPS", instance_port = 80, certificate = "arn:aws:iam::123456789012:server-certificate/shared-2026" },"#,
            r#"  { port = 80, protocol = "tcp", instance_port = 80 },"#,
        )
        .replace(
            r#"health_check = { target = "HTTP:80/healthz", interval = 30, timeout = 5, healthy = 3, unhealthy = 2 }
tags = { cost-center = "hosting" }"#,
            r#"health_check = { target = "HTTP:80/healthz", interval = 30, timeout = 5, healthy = 3, unhealthy = 2 }"#,
        );
    dir.write("balancers.toml", &changed);
    let planned = plan(&aws, &dir.load()).await;
    let shared = planned.plan.change(&"load_balancer.shared".parse().unwrap()).unwrap();
    assert_eq!(shared.action, Action::Update, "{}", converge::render::plan_text(&planned.plan));
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    for (op, n) in [
        ("EnableAvailabilityZonesForLoadBalancer", 1),
        ("DisableAvailabilityZonesForLoadBalancer", 1),
        ("DeleteLoadBalancerListeners", 1),
        ("CreateLoadBalancerListeners", 1),
        ("RemoveTags", 1),
        ("CreateLoadBalancer", 0),
    ] {
        assert_eq!(aws.stats.calls(op), n, "{op}");
    }
    let lb = describe(&moto, "agency-shared").await;
    let mut zones = lb.availability_zones().to_vec();
    zones.sort();
    assert_eq!(zones, vec!["eu-west-1a", "eu-west-1c"]);
    assert_eq!(lb.listener_descriptions().len(), 1);
}

#[tokio::test]
async fn subnets_are_attached_and_detached_by_delta() {
    let moto = Moto::start();
    let subnets = moto.ec2().describe_subnets().send().await.unwrap();
    let mut ids: Vec<String> =
        subnets.subnets().iter().filter(|s| s.default_for_az() == Some(true)).filter_map(|s| s.subnet_id()).map(str::to_string).collect();
    ids.sort();
    assert!(ids.len() >= 3, "moto's default VPC has a subnet per zone: {ids:?}");
    let fleet = |subnets: &[String]| {
        let list: Vec<String> = subnets.iter().map(|s| format!("\"{s}\"")).collect();
        format!(
            "[load_balancer.edge]\nsecurity_groups = [\"lb\"]\nsubnets = [{}]\nlisteners = [{{ port = 80, protocol = \"http\", instance_port = 80 }}]\n",
            list.join(", ")
        )
    };
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("groups.toml", GROUPS), ("balancers.toml", &fleet(&ids[..2]))]);
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;

    dir.write("balancers.toml", &fleet(&ids[1..3]));
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    assert_eq!(aws.stats.calls("AttachLoadBalancerToSubnets"), 1);
    assert_eq!(aws.stats.calls("DetachLoadBalancerFromSubnets"), 1);
    let mut now = describe(&moto, "agency-edge").await.subnets().to_vec();
    now.sort();
    assert_eq!(now, ids[1..3].to_vec());
}

/// A targeted plan that would replace an object reads in full: what still uses it is known only from AWS,
/// and a replacement others use is a conflict, targeted or not.
#[tokio::test]
async fn a_targeted_replacement_still_sees_what_uses_the_object() {
    let moto = Moto::start();
    let objects = "[security_group.lb]\ndescription = \"v1\"\ningress = [{ ports = \"80\", cidr = \"0.0.0.0/0\" }]\n\
        [load_balancer.one]\nsecurity_groups = [\"lb\"]\nlisteners = [{ port = 80, protocol = \"http\", instance_port = 80 }]\n";
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("objects.toml", objects)]);
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;
    dir.write("objects.toml", &objects.replace("\"v1\"", "\"v2\""));
    let fleet = dir.load();
    let opts = converge::plan::PlanOptions { targets: Some(["security_group.lb".parse().unwrap()].into()), ..Default::default() };
    let planned = converge::planner::plan(&aws, &fleet, &opts).await.expect("plan");
    let conflicts: Vec<&str> = planned.plan.conflicts.iter().map(|c| c.message.as_str()).collect();
    assert_eq!(conflicts, ["must be replaced (description cannot change in place), but load_balancer.one still uses it"]);
}
