//! Pools against the emulator: launch templates pinned by explicit version, auto-scaling groups, the
//! nightly image, a site's deploy by a rolling instance refresh, capacity owned by the scaling policy, and
//! load balancers attached by delta.

use converge::plan::Action;

use crate::support::*;

const OBJECTS: &str = r#"
[security_group.lb]
ingress = [{ ports = "80", cidr = "0.0.0.0/0" }]
[security_group.web]
ingress = [{ ports = "80", from = "lb" }]

[image.nightly]
owners = ["self"]
name = "sites-nightly-*"

[pool.web]
image = "nightly"
instance_type = "t3.large"
security_groups = ["web"]
min = 2
max = 6
cpu_target = 60
health_check = { type = "ELB", grace_seconds = 120 }
refresh = { min_healthy_percent = 90, warmup_seconds = 60 }
bootstrap = "web.sh"
tags = { team = "web" }

[pool.edu]
image = "nightly"
instance_type = "t3.medium"
security_groups = ["web"]
min = 1
max = 3

[load_balancer.shared]
pool = "web"
security_groups = ["lb"]
listeners = [{ port = 80, protocol = "http", instance_port = 80 }]

[load_balancer.acme]
pool = "web"
security_groups = ["lb"]
listeners = [{ port = 80, protocol = "http", instance_port = 80 }]

[load_balancer.edu]
pool = "edu"
security_groups = ["lb"]
listeners = [{ port = 80, protocol = "http", instance_port = 80 }]
"#;

const BOOTSTRAP: &str = "#!/bin/sh\nset -eu\ncat > /etc/sites/manifest <<'EOF'\n{{manifest}}\nEOF\n/usr/local/bin/deploy-sites /etc/sites/manifest\n";

/// Ten sites: seven on `web` (acme on its own load balancer), three on `edu`.
fn sites() -> String {
    let mut out = String::new();
    for i in 0..10 {
        let (name, pool, lb) = match i {
            0 => ("acme".to_string(), "web", "acme"),
            1..=6 => (format!("site{i}"), "web", "shared"),
            _ => (format!("school{i}"), "edu", "edu"),
        };
        out.push_str(&format!(
            "[site.{name}]\ndomain = \"www.{name}.example\"\npool = \"{pool}\"\nload_balancer = \"{lb}\"\nrepo = \"git@git.agency.net:sites/{name}.git\"\ncommit = \"{:07x}\"\n\n",
            0x1000000 + i
        ));
    }
    out
}

fn fleet_dir() -> FleetDir {
    FleetDir::new(&[("fleet.toml", FLEET), ("objects.toml", OBJECTS), ("sites.toml", &sites()), ("web.sh", BOOTSTRAP)])
}

async fn group(moto: &Moto, name: &str) -> aws_sdk_autoscaling::types::AutoScalingGroup {
    let out = moto.autoscaling().describe_auto_scaling_groups().auto_scaling_group_names(name).send().await.unwrap();
    out.auto_scaling_groups().first().cloned().unwrap_or_else(|| panic!("no group {name}"))
}

fn pinned(g: &aws_sdk_autoscaling::types::AutoScalingGroup) -> String {
    g.launch_template().and_then(|t| t.version()).unwrap_or_default().to_string()
}

/// Calls that change something in AWS, by name.
fn writes(aws: &converge::aws::Aws) -> Vec<String> {
    let reads = ["Describe", "Get", "List"];
    aws.stats.counts().into_iter().filter(|c| !reads.iter().any(|r| c.operation.starts_with(r))).map(|c| format!("{} x{}", c.operation, c.calls)).collect()
}

#[tokio::test]
async fn two_pools_and_ten_sites_converge_pinned_to_explicit_versions() {
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-2026-11-24").await;
    let newest = moto.nightly_image("sites-nightly-2026-11-25").await;
    let dir = fleet_dir();
    let aws = moto.aws();

    let planned = plan(&aws, &dir.load()).await;
    let text = converge::render::plan_text(&planned.plan);
    assert!(text.contains(&format!("= {newest} (sites-nightly-2026-11-25)\n")), "the plan names the image it resolved:\n{text}");
    converge(&aws, &dir.load()).await;

    // Reads: one call per kind where AWS batches, one per pool where it does not.
    aws.stats.reset();
    assert!(plan(&aws, &dir.load()).await.plan.is_empty());
    assert_eq!(aws.stats.calls("DescribeImages"), 1, "one lookup; the live templates' image is known from it");
    assert_eq!(aws.stats.calls("DescribeLaunchTemplates"), 1);
    assert_eq!(aws.stats.calls("DescribeLaunchTemplateVersions"), 2, "one per template");
    assert_eq!(aws.stats.calls("DescribeAutoScalingGroups"), 2, "ours by tag, look-alikes by name");
    assert_eq!(aws.stats.calls("DescribePolicies"), 1, "every group's policy in one call");
    assert_eq!(aws.stats.calls("DescribeInstanceRefreshes"), 2, "one per group: AWS has no batch form");

    let web = group(&moto, "agency-web").await;
    assert_eq!(pinned(&web), "1", "an explicit version, never $Latest");
    assert_eq!((web.min_size(), web.max_size(), web.desired_capacity()), (Some(2), Some(6), Some(2)));
    let mut lbs = web.load_balancer_names().to_vec();
    lbs.sort();
    assert_eq!(lbs, vec!["agency-acme", "agency-shared"]);
    assert_eq!(pinned(&group(&moto, "agency-edu").await), "1");
    let policies = moto.autoscaling().describe_policies().auto_scaling_group_name("agency-web").send().await.unwrap();
    assert_eq!(policies.scaling_policies()[0].target_tracking_configuration().unwrap().target_value(), Some(60.0));

    // The manifest is in the user data, sorted by site; instances carry the fleet tag and a Name.
    let versions = moto.ec2().describe_launch_template_versions().launch_template_name("agency-web").send().await.unwrap();
    let data = versions.launch_template_versions()[0].launch_template_data().unwrap();
    let user_data = String::from_utf8(aws_smithy_types::base64::decode(data.user_data().unwrap()).unwrap()).unwrap();
    assert!(user_data.starts_with("#!/bin/sh\n"));
    let lines: Vec<&str> = user_data.lines().filter(|l| l.contains('\t')).map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(lines, vec!["acme", "site1", "site2", "site3", "site4", "site5", "site6"]);
    let instance = web.instances()[0].instance_id().unwrap();
    let tags = moto.ec2().describe_tags().filters(aws_sdk_ec2::types::Filter::builder().name("resource-id").values(instance).build()).send().await.unwrap();
    let tags: Vec<(String, String)> = tags.tags().iter().map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string())).collect();
    assert!(tags.contains(&("converge:fleet".into(), "agency".into())), "{tags:?}");
    assert!(tags.contains(&("Name".into(), "agency-web".into())), "{tags:?}");
}

#[tokio::test]
async fn a_new_commit_is_one_new_version_and_a_rolling_refresh() {
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-2026-11-25").await;
    let dir = fleet_dir();
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;

    dir.write("sites.toml", &sites().replace("commit = \"1000000\"", "commit = \"abcdef1\""));
    let planned = plan(&aws, &dir.load()).await;
    let text = converge::render::plan_text(&planned.plan);
    assert!(text.contains("-acme\twww.acme.example\t-\tgit@git.agency.net:sites/acme.git\tmain\t1000000"), "{text}");
    assert!(text.contains("+acme\twww.acme.example\t-\tgit@git.agency.net:sites/acme.git\tmain\tabcdef1"), "{text}");
    assert!(text.contains("launch_template_version = 1 -> (new version)"), "{text}");
    let changed: Vec<String> = planned.plan.changes.iter().map(|c| c.address.to_string()).collect();
    assert_eq!(changed, vec!["launch_template.web", "auto_scaling_group.web"]);

    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    assert_eq!(aws.stats.calls("CreateLaunchTemplateVersion"), 1);
    assert_eq!(aws.stats.calls("UpdateAutoScalingGroup"), 0, "the refresh's desired configuration moves the version");
    assert_eq!(aws.stats.calls("StartInstanceRefresh"), 1);
    assert!(aws.stats.calls("DescribeInstanceRefreshes") >= 2, "apply waited for the refresh");
    assert_eq!(pinned(&group(&moto, "agency-web").await), "2");
    assert_eq!(pinned(&group(&moto, "agency-edu").await), "1", "the other pool is untouched");
}

/// The answer to `StartInstanceRefresh` is lost after the refresh started: the SDK's retry is refused with
/// `InstanceRefreshInProgress`, and apply finds that refresh is its own (to the version it just made) and
/// waits for it, instead of failing the deploy.
#[tokio::test]
async fn a_refresh_whose_start_was_answered_lost_is_found_running_and_waited_for() {
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-2026-11-25").await;
    let dir = fleet_dir();
    converge(&moto.aws(), &dir.load()).await;
    dir.write("sites.toml", &sites().replace("commit = \"1000000\"", "commit = \"abcdef1\""));
    let proxy = crate::proxy::Proxy::start(&moto.endpoint, crate::proxy::Faults { lose_first: Some("StartInstanceRefresh"), ..Default::default() }).await;
    let conf = converge::aws::patient(moto.sdk_config().into_builder().endpoint_url(&proxy.endpoint).build(), Default::default());
    let aws = converge::aws::Aws::from_conf(&conf, REGION);
    let (_, report) = apply(&aws, &dir.load()).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(proxy.lost.load(std::sync::atomic::Ordering::SeqCst), 1, "the start's answer was lost");
    assert_eq!(aws.stats.calls("StartInstanceRefresh"), 2, "started, and retried into InstanceRefreshInProgress");
    assert_eq!(pinned(&group(&moto, "agency-web").await), "2", "the refresh it waited for moved the group");
    let again = plan(&moto.aws(), &dir.load()).await;
    assert!(again.plan.is_empty(), "{}", converge::render::plan_text(&again.plan));
}

#[tokio::test]
async fn a_group_scaled_by_hand_is_observed_not_changed() {
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-2026-11-25").await;
    let dir = fleet_dir();
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;

    moto.autoscaling().set_desired_capacity().auto_scaling_group_name("agency-web").desired_capacity(5).send().await.unwrap();
    let planned = plan(&aws, &dir.load()).await;
    assert!(planned.plan.is_empty(), "{}", converge::render::plan_text(&planned.plan));
    let observed: Vec<(String, String, String)> = planned.plan.observed.iter().map(|o| (o.address.to_string(), o.field.clone(), o.value.clone())).collect();
    assert_eq!(observed, vec![("auto_scaling_group.web".into(), "desired_capacity".into(), "5".into())]);

    // Drift for cron: observed is not drift, unless asked.
    let run = moto.converge(dir.path(), &["drift"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("no drift") && run.stdout.contains("1 observed: auto_scaling_group.web desired_capacity 5"), "{run:?}");
    let run = moto.converge(dir.path(), &["drift", "--fail-on", "observed"]);
    assert_eq!(run.code, 2, "{run:?}");

    // A new maximum below the observed size brings it inside, in the same single call.
    dir.write("objects.toml", &OBJECTS.replace("max = 6", "max = 4"));
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    assert_eq!(writes(&aws), vec!["UpdateAutoScalingGroup x1"]);
    assert_eq!(group(&moto, "agency-web").await.desired_capacity(), Some(4));
}

#[tokio::test]
async fn new_bounds_are_one_update_call_and_nothing_else() {
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-2026-11-25").await;
    let dir = fleet_dir();
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;

    dir.write("objects.toml", &OBJECTS.replace("min = 2\nmax = 6", "min = 3\nmax = 9"));
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    assert_eq!(writes(&aws), vec!["UpdateAutoScalingGroup x1"]);
    let web = group(&moto, "agency-web").await;
    assert_eq!((web.min_size(), web.max_size(), web.desired_capacity()), (Some(3), Some(9), Some(3)));
}

#[tokio::test]
async fn a_load_balancer_moved_between_pools_is_detached_from_one_and_attached_to_the_other() {
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-2026-11-25").await;
    let dir = fleet_dir();
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;

    let moved = OBJECTS.replace("[load_balancer.acme]\npool = \"web\"", "[load_balancer.acme]\npool = \"edu\"");
    dir.write("objects.toml", &moved);
    dir.write("sites.toml", &sites().replace("pool = \"web\"\nload_balancer = \"acme\"", "pool = \"edu\"\nload_balancer = \"acme\""));
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    assert_eq!(aws.stats.calls("DetachLoadBalancers"), 1);
    assert_eq!(aws.stats.calls("AttachLoadBalancers"), 1);
    assert_eq!(aws.stats.calls("DeleteLoadBalancer"), 0, "moved, never deleted");
    assert_eq!(group(&moto, "agency-web").await.load_balancer_names(), ["agency-shared"]);
    let mut edu = group(&moto, "agency-edu").await.load_balancer_names().to_vec();
    edu.sort();
    assert_eq!(edu, vec!["agency-acme", "agency-edu"]);
}

#[tokio::test]
async fn a_new_nightly_image_is_a_template_change_and_old_versions_are_cleaned_up() {
    let moto = Moto::start();
    let old = moto.nightly_image("sites-nightly-2026-11-25").await;
    let dir = fleet_dir();
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;

    // Five nights: each a new version; the window keeps the newest few and the default.
    let mut last = old.clone();
    for night in 26..=30 {
        let image = moto.nightly_image(&format!("sites-nightly-2026-11-{night}")).await;
        let planned = plan(&aws, &dir.load()).await;
        let text = converge::render::plan_text(&planned.plan);
        assert!(text.contains(&format!("= {last} (sites-nightly-2026-11-{}) -> {image} (sites-nightly-2026-11-{night})", night - 1)), "{text}");
        converge(&aws, &dir.load()).await;
        last = image;
    }
    let versions = moto.ec2().describe_launch_template_versions().launch_template_name("agency-web").send().await.unwrap();
    let mut numbers: Vec<i64> = versions.launch_template_versions().iter().filter_map(|v| v.version_number()).collect();
    numbers.sort();
    assert_eq!(numbers, vec![1, 3, 4, 5, 6], "version 2 fell out of the window; 1 is the default");
    assert_eq!(pinned(&group(&moto, "agency-web").await), "6");
}

#[tokio::test]
async fn a_removed_pool_deletes_its_group_then_its_template_and_keeps_its_load_balancer() {
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-2026-11-25").await;
    let dir = fleet_dir();
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;

    let without_edu = OBJECTS
        .replace("[pool.edu]\nimage = \"nightly\"\ninstance_type = \"t3.medium\"\nsecurity_groups = [\"web\"]\nmin = 1\nmax = 3\n", "")
        .replace("[load_balancer.edu]\npool = \"edu\"", "[load_balancer.edu]\npool = \"web\"");
    dir.write("objects.toml", &without_edu);
    dir.write("sites.toml", &sites().replace("pool = \"edu\"", "pool = \"web\""));
    let planned = plan(&aws, &dir.load()).await;
    let actions: Vec<(String, Action)> = planned.plan.changes.iter().map(|c| (c.address.to_string(), c.action)).collect();
    assert!(actions.contains(&("auto_scaling_group.edu".into(), Action::Delete)), "{actions:?}");
    assert!(actions.contains(&("launch_template.edu".into(), Action::Delete)), "{actions:?}");
    let lt = planned.plan.change(&"launch_template.edu".parse().unwrap()).unwrap();
    assert!(lt.then_after.contains(&"auto_scaling_group.edu".parse().unwrap()), "the template goes after its group");
    converge(&aws, &dir.load()).await;
    let left = moto.autoscaling().describe_auto_scaling_groups().auto_scaling_group_names("agency-edu").send().await.unwrap();
    assert!(left.auto_scaling_groups().is_empty());
    let mut web = group(&moto, "agency-web").await.load_balancer_names().to_vec();
    web.sort();
    assert_eq!(web, vec!["agency-acme", "agency-edu", "agency-shared"]);
}

#[tokio::test]
async fn a_refresh_already_running_is_reported_and_not_cancelled() {
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-2026-11-25").await;
    let dir = fleet_dir();
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;

    moto.autoscaling().start_instance_refresh().auto_scaling_group_name("agency-web").send().await.unwrap();
    dir.write("sites.toml", &sites().replace("commit = \"1000000\"", "commit = \"abcdef1\""));
    let run = moto.converge(dir.path(), &["plan"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("auto_scaling_group.web: needs an instance refresh, but one is already running on agency-web"), "{run:?}");
    assert!(run.stdout.contains("aws autoscaling cancel-instance-refresh --auto-scaling-group-name agency-web"), "{run:?}");
    assert!(run.stdout.contains("= auto_scaling_group.web instance_refresh = Pending, 0% done"), "{run:?}");
}

#[tokio::test]
async fn apply_reports_refresh_progress_or_returns_at_once_with_no_wait() {
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-2026-11-25").await;
    let dir = fleet_dir();
    let run = moto.converge(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(run.code, 0, "{run:?}");

    dir.write("sites.toml", &sites().replace("commit = \"1000000\"", "commit = \"abcdef1\""));
    let run = moto.converge(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("launch_template.web: created version 2"), "{run:?}");
    assert!(run.stdout.contains("auto_scaling_group.web: instance refresh Successful, 100% done"), "{run:?}");

    dir.write("sites.toml", &sites().replace("commit = \"1000000\"", "commit = \"abcdef2\""));
    let run = moto.converge(dir.path(), &["apply", "--auto-approve", "--no-wait"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("started; not waiting (--no-wait)"), "{run:?}");
    // The refresh goes on in AWS: the next plan shows it, and no change.
    let run = moto.converge(dir.path(), &["plan"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("No changes.") && run.stdout.contains("instance_refresh = "), "{run:?}");
}

#[tokio::test]
async fn a_deploys_refresh_carries_the_version_as_its_desired_configuration_and_hand_changes_are_observed() {
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-2026-11-25").await;
    let dir = fleet_dir();
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;
    assert!(plan(&aws, &dir.load()).await.plan.is_empty());

    // The emulator refuses what AWS refuses: a rollback with nothing to roll back from.
    let refused = moto
        .autoscaling()
        .start_instance_refresh()
        .auto_scaling_group_name("agency-web")
        .preferences(aws_sdk_autoscaling::types::RefreshPreferences::builder().auto_rollback(true).build())
        .send()
        .await
        .unwrap_err();
    let refused = aws_sdk_autoscaling::error::ProvideErrorMetadata::message(&refused).unwrap_or_default().to_string();
    assert!(refused.contains("The AutoRollback parameter cannot be set to true when the DesiredConfiguration parameter is empty"), "{refused}");

    // A deploy (auto rollback on, the default): the refresh carries the new version; nothing moves it first.
    dir.write("sites.toml", &sites().replace("commit = \"1000000\"", "commit = \"abcdef1\""));
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    let mut written = writes(&aws);
    written.sort();
    assert_eq!(written, vec!["CreateLaunchTemplateVersion x1", "StartInstanceRefresh x1"]);
    let refreshes = moto.autoscaling().describe_instance_refreshes().auto_scaling_group_name("agency-web").send().await.unwrap();
    let refresh = &refreshes.instance_refreshes()[0];
    let desired = refresh.desired_configuration().and_then(|d| d.launch_template()).expect("a desired configuration");
    assert_eq!((desired.launch_template_name(), desired.version()), (Some("agency-web"), Some("2")));
    assert_eq!(refresh.preferences().and_then(|p| p.auto_rollback()), Some(true));
    assert_eq!(pinned(&group(&moto, "agency-web").await), "2", "the group took it when the refresh succeeded");
    assert!(plan(&aws, &dir.load()).await.plan.is_empty());

    // By hand: a load balancer attached, and launches suspended. Observed and left alone; they count only
    // with --fail-on observed.
    let listener = aws_sdk_elasticloadbalancing::types::Listener::builder().protocol("HTTP").load_balancer_port(80).instance_port(80).build().unwrap();
    moto.elb().create_load_balancer().load_balancer_name("hand-made").listeners(listener).availability_zones("eu-west-1a").send().await.unwrap();
    moto.autoscaling().attach_load_balancers().auto_scaling_group_name("agency-web").load_balancer_names("hand-made").send().await.unwrap();
    moto.autoscaling().suspend_processes().auto_scaling_group_name("agency-web").scaling_processes("Launch").send().await.unwrap();
    let planned = plan(&aws, &dir.load()).await;
    assert!(planned.plan.is_empty(), "{}", converge::render::plan_text(&planned.plan));
    let observed: Vec<(String, String, String, bool)> =
        planned.plan.observed.iter().map(|o| (o.address.to_string(), o.field.clone(), o.value.clone(), o.info)).collect();
    assert_eq!(
        observed,
        vec![
            ("auto_scaling_group.web".into(), "load_balancers".into(), "hand-made".into(), false),
            ("auto_scaling_group.web".into(), "suspended_processes".into(), "[Launch]".into(), false),
        ]
    );
    let run = moto.converge(dir.path(), &["drift"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("auto_scaling_group.web load_balancers hand-made (attached outside converge; left alone)"), "{run:?}");
    let run = moto.converge(dir.path(), &["drift", "--fail-on", "observed"]);
    assert_eq!(run.code, 2, "{run:?}");
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    assert!(writes(&aws).is_empty(), "{:?}", writes(&aws));
    assert!(group(&moto, "agency-web").await.load_balancer_names().contains(&"hand-made".to_string()));
}

/// A pool's scaling notifications: set on create, drift by hand found and put back, removed when removed
/// from the TOML.
#[tokio::test]
async fn scaling_notifications_go_to_the_pools_topic_and_follow_the_desired_state() {
    const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:scaling";
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-2026-11-25").await;
    let dir = fleet_dir();
    let with_topic = OBJECTS.replace("cpu_target = 60\n", &format!("cpu_target = 60\nnotify_topic = \"{TOPIC}\"\n"));
    dir.write("objects.toml", &with_topic);
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;
    let configured = || {
        let asg = moto.autoscaling();
        async move {
            let out = asg.describe_notification_configurations().auto_scaling_group_names("agency-web").send().await.unwrap();
            out.notification_configurations().iter().map(|n| format!("{} {}", n.topic_arn().unwrap(), n.notification_type().unwrap())).collect::<Vec<_>>()
        }
    };
    let all: Vec<String> = ["LAUNCH", "LAUNCH_ERROR", "TERMINATE", "TERMINATE_ERROR"].iter().map(|t| format!("{TOPIC} autoscaling:EC2_INSTANCE_{t}")).collect();
    assert_eq!(configured().await, all);
    assert!(plan(&aws, &dir.load()).await.plan.is_empty());

    // By hand: the terminations are no longer sent, and another topic hears launches.
    let types = ["autoscaling:EC2_INSTANCE_LAUNCH".to_string()];
    for topic in [TOPIC, "arn:aws:sns:eu-west-1:123456789012:other"] {
        moto.autoscaling()
            .put_notification_configuration()
            .auto_scaling_group_name("agency-web")
            .topic_arn(topic)
            .set_notification_types(Some(types.to_vec()))
            .send()
            .await
            .unwrap();
    }
    let planned = plan(&aws, &dir.load()).await;
    let text = converge::render::plan_text(&planned.plan);
    assert!(text.contains(&format!("~ notify_topic = {TOPIC} (launch) -> {TOPIC} (launch, launch error, terminate, terminate error)")), "{text}");
    assert!(text.contains("- notify_topic = arn:aws:sns:eu-west-1:123456789012:other (launch)"), "{text}");
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    assert_eq!(writes(&aws), vec!["DeleteNotificationConfiguration x1", "PutNotificationConfiguration x1"]);
    assert_eq!(configured().await, all);

    // Removed from the TOML: removed from AWS.
    dir.write("objects.toml", OBJECTS);
    converge(&aws, &dir.load()).await;
    assert!(configured().await.is_empty());
    assert!(plan(&aws, &dir.load()).await.plan.is_empty());
}

/// A grace period of 0 is kept (as AWS does; see the launcher): apply, then the plan is empty.
#[tokio::test]
async fn a_health_check_grace_period_of_zero_is_applied_and_planned_again_as_zero() {
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-2026-11-25").await;
    let dir = fleet_dir();
    dir.write("objects.toml", &OBJECTS.replace("grace_seconds = 120", "grace_seconds = 0"));
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;
    assert_eq!(group(&moto, "agency-web").await.health_check_grace_period(), Some(0));
    let planned = plan(&aws, &dir.load()).await;
    assert!(planned.plan.is_empty(), "{}", converge::render::plan_text(&planned.plan));
}

/// Termination policies are created as declared, read back in their order, and a new order is one
/// UpdateAutoScalingGroup with that field alone.
#[tokio::test]
async fn termination_policies_are_applied_in_order_and_changed_in_place() {
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-2026-11-25").await;
    let dir = fleet_dir();
    let with = |policies: &str| OBJECTS.replace("health_check = {", &format!("termination_policies = {policies}\nhealth_check = {{"));
    dir.write("objects.toml", &with(r#"["OldestLaunchTemplate", "OldestInstance"]"#));
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;
    assert_eq!(group(&moto, "agency-web").await.termination_policies(), ["OldestLaunchTemplate", "OldestInstance"]);
    assert_eq!(group(&moto, "agency-edu").await.termination_policies(), ["Default"], "AWS's default where none is declared");

    dir.write("objects.toml", &with(r#"["NewestInstance", "Default"]"#));
    let planned = plan(&aws, &dir.load()).await;
    let fields: Vec<String> = planned.plan.changes.iter().flat_map(|c| &c.fields).map(|f| format!("{}: {:?} -> {:?}", f.field, f.old, f.new)).collect();
    assert_eq!(fields, ["termination_policies: Some(\"OldestLaunchTemplate, OldestInstance\") -> Some(\"NewestInstance, Default\")"]);
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    assert_eq!(aws.stats.calls("UpdateAutoScalingGroup"), 1);
    assert_eq!(group(&moto, "agency-web").await.termination_policies(), ["NewestInstance", "Default"]);
}

/// A one-site deploy with `--target` reads one object at a time only what is on the site's path: its pool's
/// template and group, its load balancer; the other pool and load balancers are listed, not read.
#[tokio::test]
async fn a_targeted_deploy_reads_only_the_sites_path_and_converges_it() {
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-2026-11-25").await;
    let dir = fleet_dir();
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;

    dir.write("sites.toml", &sites().replace("commit = \"1000007\"", "commit = \"abcdef7\""));
    let fleet = dir.load();
    let per_object = ["DescribeLoadBalancerAttributes", "DescribeLaunchTemplateVersions", "DescribeInstanceRefreshes"];
    aws.stats.reset();
    let whole = plan(&aws, &fleet).await;
    let counts = |aws: &converge::aws::Aws| per_object.map(|op| aws.stats.calls(op));
    assert_eq!(counts(&aws), [3, 2, 2], "a full plan reads every load balancer, template and group");
    let all_calls = aws.stats.total();

    aws.stats.reset();
    let targets = converge::plan::resolve_targets(&fleet, &["site.school7".to_string()]).unwrap();
    let opts = converge::plan::PlanOptions { targets: Some(targets), ..Default::default() };
    let targeted = converge::planner::plan(&aws, &fleet, &opts).await.expect("plan");
    assert_eq!(counts(&aws), [1, 1, 1], "the edu load balancer, template and group only");
    assert!(aws.stats.total() < all_calls, "{} calls against {all_calls}", aws.stats.total());
    let changed = |p: &converge::plan::Plan| p.changes.iter().map(|c| c.address.to_string()).collect::<Vec<_>>();
    assert_eq!(changed(&targeted.plan), vec!["launch_template.edu", "auto_scaling_group.edu"]);
    assert_eq!(changed(&targeted.plan), changed(&whole.plan), "the same changes as the full plan's");

    // Saved, then applied: the re-check reads one object at a time only what the plan touches.
    let plans = tempfile::tempdir().unwrap();
    let file = plans.path().join("deploy.json");
    let file = file.to_str().unwrap();
    assert_eq!(moto.converge(dir.path(), &["plan", "--target", "site.school7", "--out", file]).code, 0);
    let run = moto.converge(dir.path(), &["apply", file, "--no-wait", "--stats"]);
    assert_eq!(run.code, 0, "{run:?}");
    let calls = |op: &str| -> u64 {
        let line = run.stderr.lines().find(|l| l.trim_end().ends_with(char::is_numeric) && l.contains(&format!(" {op} ")));
        line.and_then(|l| l.split_whitespace().last()?.parse().ok()).unwrap_or(0)
    };
    assert_eq!(per_object.map(calls), [0, 1, 1], "the template and group it changes, nothing else: {}", run.stderr);
    assert!(plan(&aws, &dir.load()).await.plan.is_empty(), "the deploy is complete");

    // The next commit, straight from `apply --target`, once the refresh finished (the emulator's advances a
    // step per describe).
    for _ in 0..3 {
        moto.autoscaling().describe_instance_refreshes().auto_scaling_group_name("agency-edu").send().await.unwrap();
    }
    dir.write("sites.toml", &sites().replace("commit = \"1000007\"", "commit = \"abcdef8\""));
    let run = moto.converge(dir.path(), &["apply", "--auto-approve", "--no-wait", "--target", "site.school7"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Apply complete! Resources: 0 added, 2 changed, 0 destroyed."), "{run:?}");
    assert!(plan(&aws, &dir.load()).await.plan.is_empty(), "the deploy is complete");
}
