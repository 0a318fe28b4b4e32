//! The database against the emulator (with status transitions and pending modifications, see
//! tests/moto/launcher.py): a parameter group, a MySQL primary and its read replica; a password that never
//! shows; parameters changed one by one; replicas changed first; deletion guarded and snapshotted.

use converge::apply::{self, Event};
use converge::aws::AwsExecutor;
use converge::plan::{Action, PlanOptions};
use converge::planner;
use converge::resource::{Op, PgOp};

use crate::support::*;

const PASSWORD_VAR: &str = "CONVERGE_TEST_DB_PASSWORD";
const PASSWORD: &str = "Sup3r-s3cret-do-not-print";

const DATABASE: &str = r#"
[security_group.db]
ingress = [{ ports = "3306", cidr = "10.0.0.0/8" }]

[db_parameter_group.sites]
family = "mysql8.0"
parameters = { max_connections = "600", slow_query_log = "1", innodb_log_file_size = "268435456" }

[database.sites]
engine = "mysql"
version = "8.0.39"
class = "db.r6g.large"
storage_gb = 200
parameter_group = "sites"
security_groups = ["db"]
username = "admin"
password_env = "CONVERGE_TEST_DB_PASSWORD"
backup_retention_days = 7
maintenance_window = "sun:05:00-sun:06:00"

[database.sites-replica]
replica_of = "sites"
class = "db.r6g.large"
parameter_group = "sites"
security_groups = ["db"]
"#;

fn fleet_dir() -> FleetDir {
    FleetDir::new(&[("fleet.toml", FLEET), ("database.toml", DATABASE)])
}

/// Applies the database with the binary (the password comes from its environment).
fn create(moto: &Moto, dir: &FleetDir) -> Run {
    let run = moto.converge_with(dir.path(), &["apply", "--auto-approve"], &[(PASSWORD_VAR, PASSWORD)]);
    assert_eq!(run.code, 0, "{run:?}");
    run
}

/// Plans and applies with the library; returns the order in which changes finished.
async fn apply_in_order(aws: &converge::aws::Aws, dir: &FleetDir, opts: &PlanOptions) -> Vec<String> {
    let planned = planner::plan(aws, &dir.load(), opts).await.expect("plan");
    assert!(planned.plan.conflicts.is_empty(), "{}", converge::render::plan_text(&planned.plan));
    let executor = AwsExecutor::new(aws.clone(), &planned.live, &planned.plan);
    let mut finished = Vec::new();
    let report = apply::apply(&planned.plan, &executor, 10, std::future::pending(), |e| {
        if let Event::Finished { address, .. } = e {
            finished.push(address.to_string());
        }
    })
    .await
    .expect("apply");
    assert!(report.ok(), "{report:?}");
    finished
}

#[tokio::test]
async fn primary_replica_and_parameter_group_converge_and_the_password_never_shows() {
    let moto = Moto::start();
    let dir = fleet_dir();
    let with_password = [(PASSWORD_VAR, PASSWORD)];
    let out = tempfile::tempdir().unwrap();
    let plan_file = out.path().join("plan.json");
    let plan = moto.converge_with(dir.path(), &["plan", "--out", plan_file.to_str().unwrap()], &with_password);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(plan.stdout.contains("password") && plan.stdout.contains(&format!("from ${PASSWORD_VAR} (never shown)")), "{plan:?}");
    // Without the password the saved plan is refused before anything, and stays unused.
    let refused = moto.converge(dir.path(), &["apply", plan_file.to_str().unwrap()]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("needs its master password in $CONVERGE_TEST_DB_PASSWORD; nothing was applied"), "{refused:?}");
    let apply = moto.converge_with(dir.path(), &["apply", plan_file.to_str().unwrap()], &with_password);
    assert_eq!(apply.code, 0, "{apply:?}");
    // The waiter polled through the emulator's transitions.
    assert!(apply.stdout.contains("db_instance.sites: status backing-up") && apply.stdout.contains("db_instance.sites: available"), "{apply:?}");
    let replica_created = apply.stdout.find("db_instance.sites-replica: Creating...").expect("replica created");
    let primary_available = apply.stdout.find("db_instance.sites: available").unwrap();
    assert!(primary_available < replica_created, "the replica is created once its primary is available: {apply:?}");

    let again = moto.converge_with(dir.path(), &["plan", "--detailed-exitcode", "--format", "json"], &with_password);
    assert_eq!(again.code, 0, "{again:?}");
    let drift = moto.converge_with(dir.path(), &["drift"], &with_password);
    assert_eq!(drift.code, 0, "{drift:?}");
    let saved = std::fs::read_to_string(&plan_file).unwrap();
    for (what, text) in [
        ("plan stdout", &plan.stdout),
        ("plan stderr", &plan.stderr),
        ("apply stdout", &apply.stdout),
        ("apply stderr", &apply.stderr),
        ("json plan", &again.stdout),
        ("drift", &drift.stdout),
        ("saved plan", &saved),
    ] {
        assert!(!text.contains(PASSWORD), "the password appears in the {what}");
    }

    let db = moto.rds().describe_db_instances().db_instance_identifier("agency-sites-replica").send().await.unwrap();
    let replica = &db.db_instances()[0];
    assert_eq!(replica.read_replica_source_db_instance_identifier(), Some("agency-sites"));
    assert_eq!(replica.db_parameter_groups()[0].db_parameter_group_name(), Some("agency-sites"));
    let params = moto.rds().describe_db_parameters().db_parameter_group_name("agency-sites").send().await.unwrap();
    let mut names: Vec<&str> = params.parameters().iter().filter_map(|p| p.parameter_name()).collect();
    names.sort();
    assert_eq!(names, vec!["innodb_log_file_size", "max_connections", "slow_query_log"]);
}

#[tokio::test]
async fn a_missing_password_variable_is_named_before_anything_is_applied() {
    let moto = Moto::start();
    let dir = fleet_dir();
    let run = moto.converge(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("creating a database needs its master password in $CONVERGE_TEST_DB_PASSWORD; nothing was applied"), "{run:?}");
    assert!(moto.rds().describe_db_instances().send().await.unwrap().db_instances().is_empty());
    assert!(
        moto.rds()
            .describe_db_parameter_groups()
            .send()
            .await
            .unwrap()
            .db_parameter_groups()
            .iter()
            .all(|g| g.db_parameter_group_name().unwrap().starts_with("default."))
    );
}

/// The library's apply (what `reconcile --apply` runs) checks the password before its first call too: a
/// database added while the loop runs never leaves the rest of the fleet half-applied around it.
#[tokio::test]
async fn the_library_apply_refuses_a_missing_password_before_its_first_call() {
    let moto = Moto::start();
    let dir = fleet_dir();
    let aws = moto.aws();
    let planned = planner::plan(&aws, &dir.load(), &PlanOptions::default()).await.expect("plan");
    let executor = AwsExecutor::new(aws.clone(), &planned.live, &planned.plan);
    let refused = apply::apply(&planned.plan, &executor, 10, std::future::pending(), |_| {}).await.unwrap_err();
    assert_eq!(refused, apply::ApplyError::MissingSecrets(vec![PASSWORD_VAR.to_string()]));
    assert_eq!(aws.stats.calls("CreateSecurityGroup"), 0, "nothing was applied");
    assert_eq!(aws.stats.calls("CreateDBParameterGroup"), 0, "nothing was applied");
}

#[tokio::test]
async fn one_changed_parameter_is_one_call_with_that_parameter_alone() {
    let moto = Moto::start();
    let dir = fleet_dir();
    create(&moto, &dir);
    let aws = moto.aws();

    dir.write("database.toml", &DATABASE.replace("max_connections = \"600\"", "max_connections = \"800\""));
    let planned = plan(&aws, &dir.load()).await;
    let changed: Vec<&Op> = planned.plan.changes.iter().flat_map(|c| &c.ops).collect();
    assert!(
        matches!(changed.as_slice(), [Op::DbParameterGroup(PgOp::ModifyParameters { parameters })] if parameters.len() == 1 && parameters[0].name == "max_connections" && !parameters[0].at_reboot),
        "{changed:?}"
    );
    let text = converge::render::plan_text(&planned.plan);
    assert!(text.contains("~ parameters.max_connections = 600 -> 800   # dynamic: takes effect now"), "{text}");
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    assert_eq!(aws.stats.calls("ModifyDBParameterGroup"), 1);
    assert_eq!(aws.stats.calls("ModifyDBInstance"), 0);
}

/// The group is the fleet's: a parameter set in it but not declared (taken out of the TOML, or set by hand) is
/// drift, reset to the engine's default as the parameter applies, both in one call.
#[tokio::test]
async fn a_parameter_taken_out_of_the_toml_or_set_by_hand_is_reset_to_the_default() {
    use aws_sdk_rds::types::{ApplyMethod, Parameter};
    let moto = Moto::start();
    let dir = fleet_dir();
    create(&moto, &dir);
    let aws = moto.aws();
    let by_hand = Parameter::builder().parameter_name("long_query_time").parameter_value("5").apply_method(ApplyMethod::Immediate).build();
    moto.rds().modify_db_parameter_group().db_parameter_group_name("agency-sites").parameters(by_hand).send().await.unwrap();

    dir.write("database.toml", &DATABASE.replace(", innodb_log_file_size = \"268435456\"", ""));
    let planned = plan(&aws, &dir.load()).await;
    let text = converge::render::plan_text(&planned.plan);
    for line in [
        "- parameters.innodb_log_file_size = 268435456   # reset to the engine's default; static: takes effect at the next reboot of each database using it",
        "- parameters.long_query_time      = 5   # reset to the engine's default; dynamic: takes effect now",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    let ops: Vec<&Op> = planned.plan.changes.iter().flat_map(|c| &c.ops).collect();
    let reset = |name: &str, at_reboot| converge::resource::db_parameter_group::ParameterReset { name: name.into(), at_reboot };
    let want = PgOp::ResetParameters { parameters: vec![reset("innodb_log_file_size", true), reset("long_query_time", false)] };
    assert_eq!(ops, vec![&Op::DbParameterGroup(want)]);
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    assert_eq!(aws.stats.calls("ResetDBParameterGroup"), 1);
    assert_eq!(aws.stats.calls("ModifyDBParameterGroup"), 0);

    let read = moto.rds().describe_db_parameters().db_parameter_group_name("agency-sites").source("user").send().await.unwrap();
    let set: Vec<(&str, &str)> = read.parameters().iter().map(|p| (p.parameter_name().unwrap(), p.parameter_value().unwrap())).collect();
    assert_eq!(set, vec![("max_connections", "600"), ("slow_query_log", "1")], "AWS holds what the TOML says, and only that");
}

/// A dynamic parameter declared `apply = "pending-reboot"` is sent so; the others as the engine says.
#[tokio::test]
async fn a_parameter_held_for_the_next_reboot_is_sent_pending_reboot() {
    use aws_sdk_rds::types::ApplyMethod;
    let moto = Moto::start();
    let group = "[db_parameter_group.sites]\nfamily = \"mysql8.0\"\n[db_parameter_group.sites.parameters]\nmax_connections = \"600\"\n";
    let held = format!("{group}long_query_time = {{ value = \"2\", apply = \"pending-reboot\" }}\n");
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("database.toml", &held)]);
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;
    let read = moto.rds().describe_db_parameters().db_parameter_group_name("agency-sites").source("user").send().await.unwrap();
    let sent: Vec<(&str, &str, Option<&ApplyMethod>)> =
        read.parameters().iter().map(|p| (p.parameter_name().unwrap(), p.parameter_value().unwrap(), p.apply_method())).collect();
    assert_eq!(sent, vec![("long_query_time", "2", Some(&ApplyMethod::PendingReboot)), ("max_connections", "600", Some(&ApplyMethod::Immediate))]);
}

#[tokio::test]
async fn a_class_change_on_both_goes_to_the_replica_first_and_then_shows_as_pending() {
    let moto = Moto::start();
    let dir = fleet_dir();
    create(&moto, &dir);
    let aws = moto.aws();

    dir.write("database.toml", &DATABASE.replace("class = \"db.r6g.large\"", "class = \"db.r6g.xlarge\""));
    let order = apply_in_order(&aws, &dir, &PlanOptions::default()).await;
    assert_eq!(order, vec!["db_instance.sites-replica", "db_instance.sites"], "replica first");

    // Scheduled for the maintenance window: pending in AWS, observed, not a change still to make.
    let planned = plan(&aws, &dir.load()).await;
    assert!(planned.plan.is_empty(), "{}", converge::render::plan_text(&planned.plan));
    let pending: Vec<(String, String, String)> = planned.plan.observed_counted().map(|o| (o.address.to_string(), o.field.clone(), o.value.clone())).collect();
    assert_eq!(
        pending,
        vec![
            ("db_instance.sites".into(), "class".into(), "db.r6g.xlarge".into()),
            ("db_instance.sites-replica".into(), "class".into(), "db.r6g.xlarge".into()),
        ]
    );

    // --apply-immediately applies now, and the plan says what that means.
    dir.write("database.toml", &DATABASE.replace("class = \"db.r6g.large\"", "class = \"db.r6g.2xlarge\""));
    let now = PlanOptions { apply_immediately: true, ..PlanOptions::default() };
    let planned = planner::plan(&aws, &dir.load(), &now).await.unwrap();
    let text = converge::render::plan_text(&planned.plan);
    assert!(text.contains("~ class = db.r6g.xlarge -> db.r6g.2xlarge   # now: the instance restarts (downtime)"), "{text}");
    apply_in_order(&aws, &dir, &now).await;
    let db = moto.rds().describe_db_instances().db_instance_identifier("agency-sites").send().await.unwrap();
    assert_eq!(db.db_instances()[0].db_instance_class(), Some("db.r6g.2xlarge"));
    assert!(plan(&aws, &dir.load()).await.plan.is_empty());
}

#[tokio::test]
async fn deleting_needs_allow_destroy_then_snapshots_the_primary_after_its_replica() {
    let moto = Moto::start();
    let dir = fleet_dir();
    create(&moto, &dir);
    let aws = moto.aws();

    let groups_only = "[security_group.db]\ningress = [{ ports = \"3306\", cidr = \"10.0.0.0/8\" }]\n";
    dir.write("database.toml", groups_only);
    let run = moto.converge(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("! db_instance.sites: is no longer in the desired state: deleting database agency-sites needs --allow-destroy"), "{run:?}");
    assert!(run.stdout.contains("a final snapshot `agency-sites-final` is taken"), "{run:?}");
    assert_eq!(moto.rds().describe_db_instances().send().await.unwrap().db_instances().len(), 2, "both intact");

    let order = apply_in_order(&aws, &dir, &PlanOptions { allow_destroy: true, ..PlanOptions::default() }).await;
    let position = |a: &str| order.iter().position(|o| o == a).unwrap_or_else(|| panic!("{a} not applied: {order:?}"));
    assert!(position("db_instance.sites-replica") < position("db_instance.sites"), "{order:?}");
    assert!(position("db_instance.sites") < position("db_parameter_group.sites"), "the group goes once no database uses it: {order:?}");
    assert!(moto.rds().describe_db_instances().send().await.unwrap().db_instances().is_empty());
    let snapshots = moto.rds().describe_db_snapshots().db_snapshot_identifier("agency-sites-final").send().await.unwrap();
    assert_eq!(snapshots.db_snapshots().len(), 1, "a final snapshot of the primary");
}

#[tokio::test]
async fn deletion_protection_is_reported_with_the_step_to_lift_it() {
    let moto = Moto::start();
    let dir = fleet_dir();
    dir.write("database.toml", &DATABASE.replace("maintenance_window", "deletion_protection = true\nmaintenance_window"));
    create(&moto, &dir);

    // Both databases removed; the group and the parameter group stay.
    dir.write("database.toml", DATABASE.split("[database.sites]").next().unwrap());
    let run = moto.converge(dir.path(), &["plan", "--allow-destroy"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("database agency-sites has deletion protection on"), "{run:?}");
    assert!(run.stdout.contains("aws rds modify-db-instance --db-instance-identifier agency-sites --no-deletion-protection --apply-immediately"), "{run:?}");
    let planned = planner::plan(&moto.aws(), &dir.load(), &PlanOptions { allow_destroy: true, ..PlanOptions::default() }).await.unwrap();
    let replica = planned.plan.change(&"db_instance.sites-replica".parse().unwrap()).expect("the unprotected replica may go");
    assert_eq!(replica.action, Action::Delete);
}

#[tokio::test]
async fn promoting_the_replica_says_replication_stops_and_then_stands_alone() {
    let moto = Moto::start();
    let dir = fleet_dir();
    create(&moto, &dir);
    let aws = moto.aws();

    dir.write("database.toml", &DATABASE.replace("replica_of = \"sites\"", "replica_of = \"sites\"\npromote = true"));
    let planned = plan(&aws, &dir.load()).await;
    let text = converge::render::plan_text(&planned.plan);
    assert!(text.contains("- replica_of            = db_instance.sites   # promoted: replication from the primary stops for good"), "{text}");
    // The promoted replica takes a primary's default retention, with the promotion.
    assert!(text.contains("~ backup_retention_days = 0 -> 1   # with the promotion"), "{text}");
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    assert_eq!(aws.stats.calls("PromoteReadReplica"), 1);
    assert_eq!(aws.stats.calls("ModifyDBInstance"), 0, "the retention goes with the promotion");
    let db = moto.rds().describe_db_instances().db_instance_identifier("agency-sites-replica").send().await.unwrap();
    assert_eq!(db.db_instances()[0].read_replica_source_db_instance_identifier(), None);
    assert_eq!(db.db_instances()[0].backup_retention_period(), Some(1));
}

/// A primary and its replica that leave what they can to their defaults, and a standalone primary that
/// declares no security group or parameter group.
const DEFAULTS: &str = r#"
[security_group.db]
ingress = [{ ports = "3306", cidr = "10.0.0.0/8" }]

[database.sites]
engine = "mysql"
version = "8.0.39"
class = "db.r6g.large"
storage_gb = 200
security_groups = ["db"]
username = "admin"
password_env = "CONVERGE_TEST_DB_PASSWORD"

[database.sites-replica]
replica_of = "sites"
class = "db.r6g.large"

[database.legacy]
engine = "mysql"
version = "8.0.39"
class = "db.t3.medium"
storage_gb = 20
username = "admin"
password_env = "CONVERGE_TEST_DB_PASSWORD"
"#;

#[tokio::test]
async fn omitted_fields_settle_on_their_defaults_and_backups_disabled_by_hand_are_drift() {
    let moto = Moto::start();
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("database.toml", DEFAULTS)]);
    create(&moto, &dir);
    let aws = moto.aws();
    let rds = moto.rds();
    let described = |id: &'static str| {
        let rds = rds.clone();
        async move { rds.describe_db_instances().db_instance_identifier(id).send().await.unwrap().db_instances()[0].clone() }
    };

    // converge's own defaults, as created: backups kept a day on the primary, off on the replica (as RDS
    // creates replicas); the replica in its primary's security group.
    let (primary, replica, legacy) = (described("agency-sites").await, described("agency-sites-replica").await, described("agency-legacy").await);
    assert_eq!((primary.backup_retention_period(), replica.backup_retention_period()), (Some(1), Some(0)));
    let groups =
        |db: &aws_sdk_rds::types::DbInstance| db.vpc_security_groups().iter().filter_map(|g| g.vpc_security_group_id()).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(groups(&replica), groups(&primary));
    assert_eq!(groups(&legacy).len(), 1, "AWS's default group of the VPC");
    assert_ne!(groups(&legacy), groups(&primary));

    // Planned again: nothing to change; what AWS assigned is observed for reference, and does not count.
    let planned = plan(&aws, &dir.load()).await;
    assert!(planned.plan.is_empty(), "{}", converge::render::plan_text(&planned.plan));
    let info: Vec<(String, &str)> = planned.plan.observed.iter().filter(|o| o.info).map(|o| (o.address.to_string(), o.field.as_str())).collect();
    for (address, field) in [
        ("db_instance.sites", "maintenance_window"),
        ("db_instance.sites", "backup_window"),
        ("db_instance.sites", "zone"),
        ("db_instance.sites", "parameter_group"),
        ("db_instance.sites-replica", "parameter_group"),
        ("db_instance.legacy", "security_groups"),
    ] {
        assert!(info.contains(&(address.to_string(), field)), "{address} {field} not observed: {info:?}");
    }
    assert_eq!(planned.plan.observed_counted().count(), 0, "{:?}", planned.plan.observed);
    let run = moto.converge(dir.path(), &["drift", "--fail-on", "observed"]);
    assert_eq!(run.code, 0, "{run:?}");

    // A window AWS assigned, changed by hand: still observed, never changed back.
    rds.modify_db_instance().db_instance_identifier("agency-legacy").preferred_maintenance_window("mon:03:00-mon:03:30").send().await.unwrap();
    let planned = plan(&aws, &dir.load()).await;
    assert!(planned.plan.is_empty(), "{}", converge::render::plan_text(&planned.plan));
    assert!(
        planned
            .plan
            .observed
            .iter()
            .any(|o| o.address.to_string() == "db_instance.legacy" && o.field == "maintenance_window" && o.value == "mon:03:00-mon:03:30")
    );

    // Backups disabled by hand: drift, and put back.
    rds.modify_db_instance().db_instance_identifier("agency-sites").backup_retention_period(0).apply_immediately(true).send().await.unwrap();
    let run = moto.converge(dir.path(), &["drift"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.contains("db_instance.sites backup_retention_days"), "{run:?}");
    let run = moto.converge(dir.path(), &["plan"]);
    assert!(run.stdout.contains("~ backup_retention_days = 0 -> 1"), "{run:?}");
    let now = PlanOptions { apply_immediately: true, ..PlanOptions::default() };
    apply_in_order(&aws, &dir, &now).await;
    assert_eq!(described("agency-sites").await.backup_retention_period(), Some(1));
    assert!(plan(&aws, &dir.load()).await.plan.is_empty());
}

/// The one hostname every site uses: a CNAME converge owns, in a private zone here, that follows the
/// database through a cut-over.
#[tokio::test]
async fn the_hostname_points_at_the_primary_and_a_cut_over_moves_it_only_once_the_promotion_is_done() {
    let moto = Moto::start();
    let vpc = moto.ec2().describe_vpcs().send().await.unwrap().vpcs()[0].vpc_id().unwrap().to_string();
    let private = aws_sdk_route53::types::HostedZoneConfig::builder().private_zone(true).build();
    let in_vpc = aws_sdk_route53::types::Vpc::builder().vpc_id(vpc).vpc_region(aws_sdk_route53::types::VpcRegion::EuWest1).build();
    let zone =
        moto.route53().create_hosted_zone().name("sites.internal").caller_reference("internal").hosted_zone_config(private).vpc(in_vpc).send().await.unwrap();
    let zone_id = zone.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_string();
    let on_primary =
        DATABASE.replace("maintenance_window = \"sun:05:00-sun:06:00\"\n", "maintenance_window = \"sun:05:00-sun:06:00\"\nhostname = \"db.sites.internal\"\n");
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("database.toml", &on_primary)]);
    create(&moto, &dir);
    let endpoint = |id: &'static str| {
        let rds = moto.rds();
        async move {
            let out = rds.describe_db_instances().db_instance_identifier(id).send().await.unwrap();
            out.db_instances()[0].endpoint().unwrap().address().unwrap().to_ascii_lowercase()
        }
    };
    let record = || {
        let route53 = moto.route53();
        let zone_id = zone_id.clone();
        async move {
            let sets = route53.list_resource_record_sets().hosted_zone_id(zone_id).send().await.unwrap();
            let set = sets.resource_record_sets().iter().find(|s| s.name() == "db.sites.internal." && s.r#type().as_str() == "CNAME").cloned().unwrap();
            let owner = sets.resource_record_sets().iter().any(|s| s.name() == "_converge.db.sites.internal.");
            (set.resource_records()[0].value().trim_end_matches('.').to_string(), set.ttl(), owner)
        }
    };
    assert_eq!(record().await, (endpoint("agency-sites").await, Some(60), true), "a CNAME to the primary, with its ownership");
    let run = moto.converge(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "{run:?}");

    // The cut-over: the replica is promoted and takes the hostname, in one plan.
    let moved = on_primary
        .replace("hostname = \"db.sites.internal\"\n", "")
        .replace("replica_of = \"sites\"\n", "replica_of = \"sites\"\npromote = true\nhostname = \"db.sites.internal\"\nhostname_ttl = 30\n");
    dir.write("database.toml", &moved);
    let run = moto.converge(dir.path(), &["plan"]);
    assert!(run.stdout.contains("CNAME database.sites-replica") || run.stdout.contains("(database.sites-replica)"), "{run:?}");
    let proxy = crate::proxy::Proxy::start(&moto.endpoint, crate::proxy::Faults::default()).await;
    let aws = converge::aws::Aws::from_conf(&moto.sdk_config().into_builder().endpoint_url(&proxy.endpoint).build(), REGION);
    let report = converge(&aws, &dir.load()).await;
    assert!(report.ok(), "{report:?}");
    let calls = proxy.calls.lock().unwrap().clone();
    let at = |call: &str| calls.iter().position(|c| c.as_str() == call).unwrap_or_else(|| panic!("no {call}: {calls:#?}"));
    let promote = at("PromoteReadReplica");
    let moved_at = calls.iter().rposition(|c| c.starts_with("POST ") && c.ends_with("/rrset")).expect("the record moved");
    assert!(promote < moved_at, "promoted first: {calls:#?}");
    // Between them: the promotion's wait, until the instance is available and no longer a replica; then
    // the endpoint read again, refused unless the instance is available and alone.
    let describes = calls[promote..moved_at].iter().filter(|c| *c == "DescribeDBInstances").count();
    assert!(describes >= 2, "the promotion waited for, then the endpoint read: {calls:#?}");
    assert_eq!(record().await, (endpoint("agency-sites-replica").await, Some(30), true), "the hostname now names the promoted replica");
    let run = moto.converge(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "{run:?}");
}
