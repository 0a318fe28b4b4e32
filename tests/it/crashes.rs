//! The example fleet (every kind: security groups, load balancers, a pool's launch template and group, a
//! parameter group, a primary and its replica, DNS records, media buckets) applied by the real binary
//! through a hostile network, and killed with SIGKILL part-way: the next apply converges with no human
//! step, and nothing is duplicated, orphaned or left untagged.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::proxy::{Faults, Proxy};
use crate::support::*;

const PASSWORD: (&str, &str) = ("SITES_DB_PASSWORD", "example-only");

/// The repository's example fleet in a folder of its own, and what it needs in the account: the nightly
/// image and the hosted zones.
async fn example_fleet(moto: &Moto, lock: Option<&str>) -> tempfile::TempDir {
    moto.nightly_image("sites-nightly-2026-11-25").await;
    moto.example_zones().await;
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("desired-state"), dir.path());
    if let Some(bucket) = lock {
        let cfg = aws_sdk_s3::types::CreateBucketConfiguration::builder().location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1).build();
        moto.s3().create_bucket().bucket(bucket).create_bucket_configuration(cfg).send().await.unwrap();
        let fleet = std::fs::read_to_string(dir.path().join("fleet.toml")).unwrap();
        std::fs::write(dir.path().join("fleet.toml"), format!("{fleet}\n[fleet.lock]\nbucket = \"{bucket}\"\nlease = \"30s\"\n")).unwrap();
    }
    dir
}

fn spawn_apply(dir: &Path, endpoint: &str, extra: &[&str]) -> Child {
    let mut args = vec!["apply", "--auto-approve"];
    args.extend_from_slice(extra);
    let mut cmd = converge_command(dir, &args, Some(endpoint));
    cmd.env(PASSWORD.0, PASSWORD.1).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().expect("running converge")
}

fn finish(child: Child) -> Run {
    let out = child.wait_with_output().unwrap();
    Run { code: out.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&out.stdout).into(), stderr: String::from_utf8_lossy(&out.stderr).into() }
}

fn tags(pairs: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, String> {
    pairs.into_iter().collect()
}

/// Everything the example fleet makes exists once, carries this fleet's tags, and nothing else was made: one
/// version of the launch template, one replica, one of each group and balancer, every bucket tagged.
async fn exactly_the_fleet(moto: &Moto, why: &str) {
    let owned = |t: &BTreeMap<String, String>| t.get("converge:fleet").map(String::as_str) == Some("agency") && t.contains_key("converge:address");

    let ec2 = moto.ec2();
    let groups = ec2.describe_security_groups().send().await.unwrap();
    let mut ours: Vec<&str> = groups.security_groups().iter().filter(|g| g.group_name() != Some("default")).filter_map(|g| g.group_name()).collect();
    ours.sort_unstable();
    assert_eq!(ours, ["agency-db", "agency-lb", "agency-monitoring", "agency-web"], "{why}: security groups");
    for g in groups.security_groups().iter().filter(|g| g.group_name() != Some("default")) {
        let t = tags(g.tags().iter().map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string())));
        assert!(owned(&t), "{why}: {:?} untagged", g.group_name());
    }

    let templates = ec2.describe_launch_templates().send().await.unwrap();
    assert_eq!(templates.launch_templates().len(), 1, "{why}: launch templates");
    let versions =
        ec2.describe_launch_template_versions().launch_template_id(templates.launch_templates()[0].launch_template_id().unwrap()).send().await.unwrap();
    assert_eq!(versions.launch_template_versions().len(), 1, "{why}: one version, never a second for a retried create");

    let asgs = moto.autoscaling().describe_auto_scaling_groups().send().await.unwrap();
    assert_eq!(asgs.auto_scaling_groups().len(), 1, "{why}: auto-scaling groups");

    let lbs = moto.elb().describe_load_balancers().send().await.unwrap();
    let mut names: Vec<&str> = lbs.load_balancer_descriptions().iter().filter_map(|l| l.load_balancer_name()).collect();
    names.sort_unstable();
    assert_eq!(names, ["agency-acme", "agency-shared"], "{why}: load balancers");

    let rds = moto.rds();
    let dbs = rds.describe_db_instances().send().await.unwrap();
    let mut ids: Vec<&str> = dbs.db_instances().iter().filter_map(|d| d.db_instance_identifier()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["agency-sites", "agency-sites-replica"], "{why}: one primary and one replica");
    let pgs = rds.describe_db_parameter_groups().send().await.unwrap();
    let custom: Vec<&str> = pgs.db_parameter_groups().iter().filter_map(|g| g.db_parameter_group_name()).filter(|n| !n.starts_with("default.")).collect();
    assert_eq!(custom, ["agency-sites"], "{why}: parameter groups");

    let s3 = moto.s3();
    let buckets = s3.list_buckets().send().await.unwrap();
    let mut media: Vec<&str> = buckets.buckets().iter().filter_map(|b| b.name()).filter(|n| n.ends_with("-media")).collect();
    media.sort_unstable();
    assert_eq!(media, ["agency-acme-media", "agency-globex-media"], "{why}: the sites' media buckets");
    for b in media {
        let t = s3.get_bucket_tagging().bucket(b).send().await.unwrap_or_else(|e| panic!("{why}: bucket {b} has no tags: {e:?}"));
        assert!(owned(&tags(t.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())))), "{why}: bucket {b} untagged");
    }
}

/// Plans directly against the emulator: nothing left to do.
fn nothing_left(moto: &Moto, dir: &Path, why: &str) {
    let again = moto.converge(dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{why}: the next plan is not empty: {again:?}");
}

/// One applier holding the S3 lock, 20% of all requests throttled and the answer to one write in eight
/// lost after the write was done (the lock's own conditional writes included): the first apply succeeds
/// (each lost answer is retried, and the retry finds the write done), the next plan is empty, and nothing is
/// duplicated or left untagged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_applies_once_through_throttling_and_lost_answers() {
    let moto = Moto::start();
    let dir = example_fleet(&moto, Some("agency-ops")).await;
    let faults = Faults { throttle_every: Some(5), lose_every_write: Some(8), ..Faults::default() };
    let proxy = Proxy::start(&moto.endpoint, faults).await;
    let (path, endpoint) = (dir.path().to_path_buf(), proxy.endpoint.clone());
    let run = tokio::task::spawn_blocking(move || finish(spawn_apply(&path, &endpoint, &["--stats"]))).await.unwrap();
    assert_eq!(run.code, 0, "{run:?}");
    let (lost, writes, throttled) = (proxy.lost.load(Ordering::SeqCst), proxy.writes.load(Ordering::SeqCst), proxy.injected.load(Ordering::SeqCst));
    assert!(lost >= 5, "answers lost: {lost} of {writes} writes");
    assert!(throttled >= 10, "throttled: {throttled}");
    nothing_left(&moto, dir.path(), "after the faulty apply");
    exactly_the_fleet(&moto, "after the faulty apply").await;
}

/// The binary killed with SIGKILL just after the emulator did its n-th write, before converge heard of it,
/// for n spread over the whole write phase; then an apply with no help. Each time: the next plan is empty,
/// and nothing is duplicated, orphaned or untagged. The first kill point is also the S3 lock's case: the
/// killed holder's lease runs out, the next apply (waiting with --lock-timeout) takes the lock over with its
/// journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_at_any_point_of_an_apply_is_converged_by_the_next_apply() {
    // How many writes a whole apply of the example fleet makes, through a proxy that only counts.
    let total = {
        let moto = Moto::start();
        let dir = example_fleet(&moto, None).await;
        let proxy = Proxy::start(&moto.endpoint, Faults::default()).await;
        let (path, endpoint) = (dir.path().to_path_buf(), proxy.endpoint.clone());
        let run = tokio::task::spawn_blocking(move || finish(spawn_apply(&path, &endpoint, &[]))).await.unwrap();
        assert_eq!(run.code, 0, "{run:?}");
        proxy.writes.load(Ordering::SeqCst)
    };
    assert!(total > 30, "{total} writes");
    // Spread over the writes; and the one that used to leave the fleet stuck: a bucket created, not yet tagged.
    let mut points: Vec<(Option<usize>, Option<&str>)> = (1..=6).map(|i| (Some(1 + (total - 1) * i / 7), None)).collect();
    points.push((None, Some("PUT /agency-acme-media")));
    for (i, &(n, request)) in points.iter().enumerate() {
        let with_lock = i == 0;
        let moto = Moto::start();
        let dir = example_fleet(&moto, with_lock.then_some("agency-ops")).await;
        let proxy = Proxy::start(&moto.endpoint, Faults { hold_write: n, hold_request: request, ..Faults::default() }).await;
        let mut child = spawn_apply(dir.path(), &proxy.endpoint, &[]);
        let held = tokio::time::timeout(Duration::from_secs(120), proxy.held.notified()).await;
        child.kill().unwrap();
        let killed = finish(child);
        held.unwrap_or_else(|_| panic!("kill point {n:?} {request:?} of {total}: the write never came: {killed:?}"));
        let why = match n {
            Some(n) => format!("killed after write {n} of {total}"),
            None => "killed after CreateBucket, before its tags".to_string(),
        };

        let path = dir.path().to_path_buf();
        let endpoint = moto.endpoint.clone();
        let extra: &[&str] = if with_lock { &["--lock-timeout", "90s"] } else { &[] };
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let run = tokio::task::spawn_blocking(move || {
            let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
            finish(spawn_apply(&path, &endpoint, &extra))
        })
        .await
        .unwrap();
        assert_eq!(run.code, 0, "{why}: the next apply: {run:?}");
        assert!(run.stderr.contains("Took over the lock of"), "{why}: the dead holder's lock is taken over: {run:?}");
        if request.is_some() {
            // The journal named it: adopted, not a conflict.
            assert!(run.stdout.contains("bucket.agency-acme-media will be adopted"), "{why}: {run:?}");
            assert!(run.stdout.contains(" to adopt,") && run.stdout.contains(" adopted,"), "{why}: {run:?}");
        }
        nothing_left(&moto, dir.path(), &why);
        exactly_the_fleet(&moto, &why).await;
    }
}
