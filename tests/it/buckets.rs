//! Media buckets against the emulator (path-style): created versioned, public by policy, ACLs off, tagged;
//! deleted only with --allow-destroy and only when empty.

use converge::plan::{Action, PlanOptions};
use converge::planner;

use crate::support::*;

const OBJECTS: &str = r#"

[site.acme]
domain = "www.acme.example"
pool = "web"
repo = "git@x:acme.git"
commit = "abc0001"
media_bucket = "agency-acme-media"

[site.globex]
domain = "www.globex.example"
pool = "web"
repo = "git@x:globex.git"
commit = "abc0002"
media_bucket = "agency-globex-media"
"#;

async fn setup() -> (Moto, FleetDir) {
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-2026-11-25").await;
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("pool.toml", NIGHTLY_POOL), ("objects.toml", OBJECTS)]);
    converge(&moto.aws(), &dir.load()).await;
    (moto, dir)
}

fn without_globex() -> String {
    OBJECTS.split("[site.globex]").next().unwrap().to_string()
}

#[tokio::test]
async fn media_buckets_are_versioned_public_by_policy_and_ours() {
    let (moto, _dir) = setup().await;
    let s3 = moto.s3();
    let versioning = s3.get_bucket_versioning().bucket("agency-acme-media").send().await.unwrap();
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Enabled"));
    let policy = s3.get_bucket_policy().bucket("agency-acme-media").send().await.unwrap();
    assert!(policy.policy().unwrap().contains("arn:aws:s3:::agency-acme-media/*"));
    let block = s3.get_public_access_block().bucket("agency-acme-media").send().await.unwrap();
    let block = block.public_access_block_configuration().unwrap();
    assert_eq!((block.block_public_acls(), block.block_public_policy()), (Some(true), Some(false)));
    let tags = s3.get_bucket_tagging().bucket("agency-acme-media").send().await.unwrap();
    assert!(tags.tag_set().iter().any(|t| t.key() == "converge:address" && t.value() == "bucket.agency-acme-media"));
}

#[tokio::test]
async fn versioning_turned_off_by_hand_is_drift_and_put_back() {
    let (moto, dir) = setup().await;
    let suspended = aws_sdk_s3::types::VersioningConfiguration::builder().status(aws_sdk_s3::types::BucketVersioningStatus::Suspended).build();
    moto.s3().put_bucket_versioning().bucket("agency-globex-media").versioning_configuration(suspended).send().await.unwrap();
    let run = moto.converge(dir.path(), &["drift"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.contains("bucket.agency-globex-media versioning") && run.stdout.contains("1 site affected"), "{run:?}");
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;
    assert_eq!(aws.stats.calls("PutBucketVersioning"), 1);
}

#[tokio::test]
async fn a_removed_sites_bucket_goes_only_with_allow_destroy_and_only_when_empty() {
    let (moto, dir) = setup().await;
    moto.s3().put_object().bucket("agency-globex-media").key("logo.png").body(b"png".to_vec().into()).send().await.unwrap();
    dir.write("objects.toml", &without_globex());

    let run = moto.converge(dir.path(), &["plan"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("deleting bucket agency-globex-media needs --allow-destroy"), "{run:?}");
    let run = moto.converge(dir.path(), &["plan", "--allow-destroy"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("bucket agency-globex-media still holds objects (or old versions of them)"), "{run:?}");

    // Emptied (every version), it goes.
    let s3 = moto.s3();
    let versions = s3.list_object_versions().bucket("agency-globex-media").send().await.unwrap();
    for v in versions.versions() {
        s3.delete_object().bucket("agency-globex-media").key(v.key().unwrap()).set_version_id(v.version_id().map(str::to_string)).send().await.unwrap();
    }
    let aws = moto.aws();
    let planned = planner::plan(&aws, &dir.load(), &PlanOptions { allow_destroy: true, ..PlanOptions::default() }).await.unwrap();
    let change = planned.plan.change(&"bucket.agency-globex-media".parse().unwrap()).expect("planned");
    assert_eq!(change.action, Action::Delete);
    let run = moto.converge(dir.path(), &["apply", "--auto-approve", "--allow-destroy"]);
    assert_eq!(run.code, 0, "{run:?}");
    let left = s3.list_buckets().send().await.unwrap();
    let names: Vec<&str> = left.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, vec!["agency-acme-media"]);
}

#[tokio::test]
async fn public_access_flags_and_object_ownership_changed_by_hand_are_drift_and_put_back() {
    let (moto, dir) = setup().await;
    let aws = moto.aws();
    // Applied, then planned again: no changes, and one read of each configuration per bucket.
    assert!(plan(&aws, &dir.load()).await.plan.is_empty());
    assert_eq!((aws.stats.calls("GetPublicAccessBlock"), aws.stats.calls("GetBucketOwnershipControls")), (2, 2));
    let s3 = moto.s3();
    let ownership = s3.get_bucket_ownership_controls().bucket("agency-acme-media").send().await.unwrap();
    assert_eq!(ownership.ownership_controls().unwrap().rules()[0].object_ownership().as_str(), "BucketOwnerEnforced");

    // RestrictPublicBuckets turned on (every object would answer 403) and ACLs enabled again, by hand.
    let restricted = aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(false)
        .restrict_public_buckets(true)
        .build();
    s3.put_public_access_block().bucket("agency-acme-media").public_access_block_configuration(restricted).send().await.unwrap();
    s3.delete_bucket_ownership_controls().bucket("agency-globex-media").send().await.unwrap();
    let run = moto.converge(dir.path(), &["drift"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.contains("bucket.agency-acme-media restrict_public_buckets"), "{run:?}");
    assert!(run.stdout.contains("bucket.agency-globex-media object_ownership"), "{run:?}");

    let aws = moto.aws();
    converge(&aws, &dir.load()).await;
    assert_eq!((aws.stats.calls("PutPublicAccessBlock"), aws.stats.calls("PutBucketOwnershipControls")), (1, 1));
    let block = s3.get_public_access_block().bucket("agency-acme-media").send().await.unwrap();
    let block = block.public_access_block_configuration().unwrap();
    assert_eq!(
        (block.block_public_acls(), block.ignore_public_acls(), block.block_public_policy(), block.restrict_public_buckets()),
        (Some(true), Some(true), Some(false), Some(false))
    );
    let ownership = s3.get_bucket_ownership_controls().bucket("agency-globex-media").send().await.unwrap();
    assert_eq!(ownership.ownership_controls().unwrap().rules()[0].object_ownership().as_str(), "BucketOwnerEnforced");
    assert!(plan(&aws, &dir.load()).await.plan.is_empty());
}

#[tokio::test]
async fn the_fleets_buckets_are_found_by_their_tags_and_no_other_bucket_is_read() {
    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration, Tag, Tagging};
    let (moto, dir) = setup().await;
    let s3 = moto.s3();
    // The account's other buckets: a client's archive, another fleet's, and a look-alike with a name the
    // fleet is about to want (made by hand, untagged).
    for name in ["client-archive", "other-fleet-media", "agency-initech-media"] {
        let here = CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::EuWest1).build();
        s3.create_bucket().bucket(name).create_bucket_configuration(here).send().await.unwrap();
    }
    let theirs = Tagging::builder().tag_set(Tag::builder().key("converge:fleet").value("other").build().unwrap()).build().unwrap();
    s3.put_bucket_tagging().bucket("other-fleet-media").tagging(theirs).send().await.unwrap();
    let initech = "\n[site.initech]\ndomain = \"initech.example\"\npool = \"web\"\nrepo = \"git@x:initech.git\"\ncommit = \"abc0003\"\nmedia_bucket = \"agency-initech-media\"\n";
    dir.write("objects.toml", &format!("{OBJECTS}{initech}"));
    let aws = moto.aws();
    let planned = plan(&aws, &dir.load()).await;
    // One index call finds the fleet's two; only the look-alike's tags are read, to learn whose it is; the
    // other buckets are never read.
    assert_eq!((aws.stats.calls("ListBuckets"), aws.stats.calls("GetResources")), (1, 1));
    assert_eq!(aws.stats.calls("GetBucketTagging"), 1);
    assert_eq!(aws.stats.calls("GetBucketVersioning"), 3, "the fleet's two and the look-alike (which may be adopted)");
    let conflicts: Vec<String> = planned.plan.conflicts.iter().filter_map(|c| c.address.as_ref().map(|a| a.to_string())).collect();
    assert_eq!(conflicts, ["bucket.agency-initech-media"], "{:#?}", planned.plan.conflicts);
    assert!(
        planned.plan.changes.iter().all(|c| !c.address.to_string().contains("acme") && !c.address.to_string().contains("globex")),
        "{:#?}",
        planned.plan.changes
    );
}
