//! Adopting an account built by hand: a fleet made with the SDK, untagged, of every kind (two pools, a
//! shared and an own load balancer, a primary with its replica and a tuned parameter group, the fleet's zone
//! and a client's, media buckets); `converge import` writes its desired state, whose plan adopts every
//! object with tags only; after the apply the plan is empty and every object is as it was, tags aside.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{IpPermission, IpRange, UserIdGroupPair};
use aws_sdk_route53::types::{AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};

use crate::support::*;

const ZONE: &str = "sites.agency.net";

/// The hand-built fleet. Returns the id of another fleet's group, which must never be touched.
async fn build_by_hand(moto: &Moto) -> String {
    let ec2 = moto.ec2();
    let vpc = ec2.describe_vpcs().send().await.unwrap().vpcs().iter().find(|v| v.is_default() == Some(true)).unwrap().vpc_id().unwrap().to_string();
    let group = |name: &'static str, description: &'static str| {
        let ec2 = ec2.clone();
        let vpc = vpc.clone();
        async move { ec2.create_security_group().group_name(name).description(description).vpc_id(vpc).send().await.unwrap().group_id().unwrap().to_string() }
    };
    let lb_sg = group("web-lb", "HTTP(S) from anywhere").await;
    let web_sg = group("web-servers", "Web servers").await;
    let db_sg = group("sites-db", "MySQL from the web servers").await;
    let tcp = |port: i32| IpPermission::builder().ip_protocol("tcp").from_port(port).to_port(port);
    let anywhere = IpRange::builder().cidr_ip("0.0.0.0/0").build();
    for port in [80, 443] {
        ec2.authorize_security_group_ingress().group_id(&lb_sg).ip_permissions(tcp(port).ip_ranges(anywhere.clone()).build()).send().await.unwrap();
    }
    let from = |id: &str| UserIdGroupPair::builder().group_id(id).build();
    ec2.authorize_security_group_ingress().group_id(&web_sg).ip_permissions(tcp(80).user_id_group_pairs(from(&lb_sg)).build()).send().await.unwrap();
    let office = IpRange::builder().cidr_ip("203.0.113.0/24").build();
    ec2.authorize_security_group_ingress().group_id(&web_sg).ip_permissions(tcp(22).ip_ranges(office).build()).send().await.unwrap();
    ec2.authorize_security_group_ingress().group_id(&db_sg).ip_permissions(tcp(3306).user_id_group_pairs(from(&web_sg)).build()).send().await.unwrap();
    let all = IpPermission::builder().ip_protocol("-1").ip_ranges(anywhere.clone()).build();
    ec2.revoke_security_group_egress().group_id(&db_sg).ip_permissions(all).send().await.unwrap();
    // Another fleet's group: never imported, never touched.
    let theirs = group("other-fleet-web", "Another fleet's").await;
    let tag = |k: &str, v: &str| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build();
    ec2.create_tags().resources(&theirs).tags(tag("converge:fleet", "other")).tags(tag("converge:address", "security_group.web")).send().await.unwrap();

    // Two load balancers: the shared one and acme's own (its own certificate).
    let elb = moto.elb();
    let http = aws_sdk_elasticloadbalancing::types::Listener::builder()
        .protocol("HTTP")
        .load_balancer_port(80)
        .instance_protocol("HTTP")
        .instance_port(80)
        .build()
        .unwrap();
    for (name, cert) in [("shared", "shared-2026"), ("acme-ev", "acme-ev-2026")] {
        let https = aws_sdk_elasticloadbalancing::types::Listener::builder()
            .protocol("HTTPS")
            .load_balancer_port(443)
            .instance_protocol("HTTP")
            .instance_port(80)
            .ssl_certificate_id(format!("arn:aws:iam::123456789012:server-certificate/{cert}"))
            .build()
            .unwrap();
        elb.create_load_balancer()
            .load_balancer_name(name)
            .listeners(http.clone())
            .listeners(https)
            .availability_zones("eu-west-1a")
            .availability_zones("eu-west-1b")
            .security_groups(&lb_sg)
            .send()
            .await
            .unwrap();
        let check = aws_sdk_elasticloadbalancing::types::HealthCheck::builder()
            .target("HTTP:80/healthz")
            .interval(30)
            .timeout(5)
            .healthy_threshold(3)
            .unhealthy_threshold(2)
            .build()
            .unwrap();
        elb.configure_health_check().load_balancer_name(name).health_check(check).send().await.unwrap();
    }

    // Two pools, each a template and a group on an explicit version.
    let image = moto.nightly_image("sites-nightly-2026-11-25").await;
    let asg = moto.autoscaling();
    for (pool, lbs) in [("web", vec!["shared"]), ("api", vec!["acme-ev"])] {
        let instance_tags = aws_sdk_ec2::types::LaunchTemplateTagSpecificationRequest::builder()
            .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
            .tags(tag("Name", pool))
            .build();
        let user_data = aws_smithy_types::base64::encode(format!("#!/bin/sh\necho {pool} > /etc/role\n"));
        let data = aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
            .image_id(&image)
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Small)
            .security_group_ids(&web_sg)
            .user_data(user_data)
            .tag_specifications(instance_tags)
            .build();
        ec2.create_launch_template().launch_template_name(format!("{pool}-template")).launch_template_data(data).send().await.unwrap();
        let template = aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder().launch_template_name(format!("{pool}-template")).version("1").build();
        asg.create_auto_scaling_group()
            .auto_scaling_group_name(format!("{pool}-asg"))
            .launch_template(template)
            .min_size(1)
            .max_size(3)
            .desired_capacity(1)
            .availability_zones("eu-west-1a")
            .availability_zones("eu-west-1b")
            .set_load_balancer_names(Some(lbs.iter().map(|s| s.to_string()).collect()))
            .health_check_type("ELB")
            .health_check_grace_period(120)
            .send()
            .await
            .unwrap();
    }

    // The database: a tuned parameter group, a primary and its replica.
    let rds = moto.rds();
    rds.create_db_parameter_group()
        .db_parameter_group_name("sites-mysql")
        .db_parameter_group_family("mysql8.0")
        .description("Tuned for the sites")
        .send()
        .await
        .unwrap();
    let param = |k: &str, v: &str| {
        aws_sdk_rds::types::Parameter::builder().parameter_name(k).parameter_value(v).apply_method(aws_sdk_rds::types::ApplyMethod::PendingReboot).build()
    };
    rds.modify_db_parameter_group()
        .db_parameter_group_name("sites-mysql")
        .parameters(param("max_connections", "600"))
        .parameters(param("slow_query_log", "1"))
        .send()
        .await
        .unwrap();
    rds.create_db_instance()
        .db_instance_identifier("sites-db")
        .engine("mysql")
        .engine_version("8.0.39")
        .db_instance_class("db.t3.medium")
        .allocated_storage(20)
        .master_username("admin")
        .master_user_password("by-hand-only")
        .db_parameter_group_name("sites-mysql")
        .vpc_security_group_ids(&db_sg)
        .backup_retention_period(7)
        .send()
        .await
        .unwrap();
    rds.create_db_instance_read_replica()
        .db_instance_identifier("sites-db-replica")
        .source_db_instance_identifier("sites-db")
        .db_instance_class("db.t3.medium")
        .vpc_security_group_ids(&db_sg)
        .send()
        .await
        .unwrap();

    // DNS: the fleet's zone with a record per site, and acme's own zone, managed by the agency.
    let r53 = moto.route53();
    let mut zones = BTreeMap::new();
    for (i, zone) in [ZONE, "acme.co.uk"].iter().enumerate() {
        let z = r53.create_hosted_zone().name(*zone).caller_reference(format!("zone-{i}")).send().await.unwrap();
        zones.insert(*zone, z.hosted_zone().unwrap().id().to_string());
    }
    let dns = |name: &str| {
        let elb = elb.clone();
        let name = name.to_string();
        async move { elb.describe_load_balancers().load_balancer_names(name).send().await.unwrap().load_balancer_descriptions()[0].dns_name().unwrap().to_string() }
    };
    let cname = |name: &str, value: &str| {
        let set = ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::Cname)
            .ttl(300)
            .resource_records(ResourceRecord::builder().value(value).build().unwrap())
            .build()
            .unwrap();
        Change::builder().action(ChangeAction::Create).resource_record_set(set).build().unwrap()
    };
    let (shared, acme) = (dns("shared").await, dns("acme-ev").await);
    let batch = ChangeBatch::builder()
        .changes(cname(&format!("acme.{ZONE}"), &acme))
        .changes(cname(&format!("globex.{ZONE}"), &shared))
        .changes(cname(&format!("initech.{ZONE}"), &shared))
        .build()
        .unwrap();
    r53.change_resource_record_sets().hosted_zone_id(&zones[ZONE]).change_batch(batch).send().await.unwrap();
    let apex = ResourceRecordSet::builder()
        .name("acme.co.uk")
        .r#type(RrType::A)
        .alias_target(AliasTarget::builder().dns_name(&acme).hosted_zone_id("Z32O12XQLNTSW2").evaluate_target_health(false).build().unwrap())
        .build()
        .unwrap();
    let batch = ChangeBatch::builder()
        .changes(Change::builder().action(ChangeAction::Create).resource_record_set(apex).build().unwrap())
        .changes(cname("www.acme.co.uk", &format!("acme.{ZONE}")))
        .build()
        .unwrap();
    r53.change_resource_record_sets().hosted_zone_id(&zones["acme.co.uk"]).change_batch(batch).send().await.unwrap();

    // Media buckets, as the agency configures them (versioned, public read by policy, ACLs off).
    let s3 = moto.s3();
    for site in ["acme", "globex"] {
        let bucket = format!("agency-{site}-media");
        let cfg = aws_sdk_s3::types::CreateBucketConfiguration::builder().location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1).build();
        s3.create_bucket()
            .bucket(&bucket)
            .create_bucket_configuration(cfg)
            .object_ownership(aws_sdk_s3::types::ObjectOwnership::BucketOwnerEnforced)
            .send()
            .await
            .unwrap();
        let on = aws_sdk_s3::types::VersioningConfiguration::builder().status(aws_sdk_s3::types::BucketVersioningStatus::Enabled).build();
        s3.put_bucket_versioning().bucket(&bucket).versioning_configuration(on).send().await.unwrap();
        let block = aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
            .block_public_acls(true)
            .ignore_public_acls(true)
            .block_public_policy(false)
            .restrict_public_buckets(false)
            .build();
        s3.put_public_access_block().bucket(&bucket).public_access_block_configuration(block).send().await.unwrap();
        s3.put_bucket_policy().bucket(&bucket).policy(converge::resource::bucket::media_policy(&bucket)).send().await.unwrap();
    }
    theirs
}

/// Every object's fields as AWS describes them, tags and ownership records left out: what adoption must
/// not change.
async fn fields(moto: &Moto) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for g in moto.ec2().describe_security_groups().send().await.unwrap().security_groups() {
        let mut rules: Vec<String> = g.ip_permissions().iter().chain(g.ip_permissions_egress()).map(|p| format!("{p:?}")).collect();
        rules.sort();
        out.insert(format!("sg {}", g.group_name().unwrap()), format!("{} {rules:?}", g.description().unwrap()));
    }
    let elb = moto.elb();
    for lb in elb.describe_load_balancers().send().await.unwrap().load_balancer_descriptions() {
        let name = lb.load_balancer_name().unwrap();
        let attributes = elb.describe_load_balancer_attributes().load_balancer_name(name).send().await.unwrap();
        out.insert(
            format!("lb {name}"),
            format!(
                "{:?} {:?} {:?} {:?} {:?}",
                lb.listener_descriptions(),
                lb.health_check(),
                lb.security_groups(),
                lb.availability_zones(),
                attributes.load_balancer_attributes()
            ),
        );
    }
    let ec2 = moto.ec2();
    for t in ec2.describe_launch_templates().send().await.unwrap().launch_templates() {
        let versions = ec2.describe_launch_template_versions().launch_template_id(t.launch_template_id().unwrap()).send().await.unwrap();
        let data: Vec<String> =
            versions.launch_template_versions().iter().map(|v| format!("{} {:?}", v.version_number().unwrap(), v.launch_template_data())).collect();
        out.insert(format!("lt {}", t.launch_template_name().unwrap()), format!("{:?} {data:?}", t.default_version_number()));
    }
    for g in moto.autoscaling().describe_auto_scaling_groups().send().await.unwrap().auto_scaling_groups() {
        out.insert(
            format!("asg {}", g.auto_scaling_group_name().unwrap()),
            format!(
                "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
                g.launch_template(),
                g.min_size(),
                g.max_size(),
                g.desired_capacity(),
                g.health_check_type(),
                g.health_check_grace_period(),
                g.availability_zones(),
                g.load_balancer_names()
            ),
        );
    }
    let rds = moto.rds();
    for db in rds.describe_db_instances().send().await.unwrap().db_instances() {
        out.insert(
            format!("db {}", db.db_instance_identifier().unwrap()),
            format!(
                "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
                db.db_instance_class(),
                db.engine_version(),
                db.allocated_storage(),
                db.db_parameter_groups(),
                db.vpc_security_groups(),
                db.backup_retention_period(),
                db.multi_az(),
                db.read_replica_source_db_instance_identifier(),
                db.deletion_protection()
            ),
        );
    }
    let params = rds.describe_db_parameters().db_parameter_group_name("sites-mysql").source("user").send().await.unwrap();
    out.insert("pg sites-mysql".into(), format!("{:?}", params.parameters().iter().map(|p| (p.parameter_name(), p.parameter_value())).collect::<Vec<_>>()));
    let r53 = moto.route53();
    for z in r53.list_hosted_zones().send().await.unwrap().hosted_zones() {
        let sets = r53.list_resource_record_sets().hosted_zone_id(z.id()).send().await.unwrap();
        for s in sets.resource_record_sets().iter().filter(|s| !s.name().starts_with("_converge.") && matches!(s.r#type(), RrType::Cname | RrType::A)) {
            out.insert(format!("record {}", s.name()), format!("{:?} {:?} {:?} {:?}", s.r#type(), s.ttl(), s.resource_records(), s.alias_target()));
        }
    }
    let s3 = moto.s3();
    for b in s3.list_buckets().send().await.unwrap().buckets() {
        let name = b.name().unwrap();
        let versioning = s3.get_bucket_versioning().bucket(name).send().await.unwrap();
        let policy = s3.get_bucket_policy().bucket(name).send().await.ok().and_then(|p| p.policy().map(str::to_string));
        let block = s3.get_public_access_block().bucket(name).send().await.ok().map(|b| format!("{:?}", b.public_access_block_configuration()));
        out.insert(format!("bucket {name}"), format!("{:?} {policy:?} {block:?}", versioning.status()));
    }
    out
}

#[tokio::test]
async fn a_hand_built_fleet_is_imported_then_adopted_with_tags_only_and_its_next_plan_is_empty() {
    let moto = Moto::start();
    let theirs = build_by_hand(&moto).await;
    let before = fields(&moto).await;
    let dir = tempfile::tempdir().unwrap();

    let run = moto.converge(dir.path(), &["import", "--fleet", "agency", "--dns-zone", ZONE, "--region", REGION]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Imported into"), "{run:?}");
    let mut files: Vec<String> = walk(dir.path());
    files.sort();
    assert_eq!(
        files,
        [
            "bootstrap/api.sh",
            "bootstrap/web.sh",
            "database.toml",
            "fleet.toml",
            "load-balancers.toml",
            "pools.toml",
            "security-groups.toml",
            "sites/acme.toml",
            "sites/globex.toml",
            "sites/initech.toml"
        ]
    );
    let sgs = std::fs::read_to_string(dir.path().join("security-groups.toml")).unwrap();
    assert!(
        !sgs.contains("other-fleet-web") && !sgs.contains("[security_group.default]"),
        "another fleet's group, and the VPC's default, are not imported:\n{sgs}"
    );
    let acme = std::fs::read_to_string(dir.path().join("sites/acme.toml")).unwrap();
    insta::assert_snapshot!("adopt_site_acme", acme);
    insta::with_settings!({ filters => vec![(r"ami-[0-9a-f]+", "ami-[id]")] }, {
        insta::assert_snapshot!("adopt_pools", std::fs::read_to_string(dir.path().join("pools.toml")).unwrap());
    });

    let validate = moto.converge(dir.path(), &["validate"]);
    assert_eq!(validate.code, 0, "{validate:?}");

    // The plan adopts every object, and writes nothing but tags (and the records' ownership).
    let aws = moto.aws();
    let fleet = converge::model::load_dir(dir.path()).unwrap_or_else(|d| panic!("{d}"));
    let planned = plan(&aws, &fleet).await;
    let text = converge::render::plan_text(&planned.plan);
    assert!(planned.plan.conflicts.is_empty(), "{text}");
    let s = planned.plan.summary();
    assert_eq!((s.add, s.change, s.destroy), (0, 0, 0), "{text}");
    // 3 groups, 2 load balancers, 2 templates and 2 groups, a parameter group, 2 databases, 5 records, 2 buckets.
    assert_eq!(s.adopt, 19, "{text}");
    for c in &planned.plan.changes {
        for f in &c.fields {
            assert!(f.field.starts_with("tags") || f.field == "ownership", "{}: {} is not a tag:\n{text}", c.address, f.field);
        }
    }

    let apply = moto.converge(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    let again = plan(&aws, &fleet).await;
    assert!(again.plan.is_empty(), "{}", converge::render::plan_text(&again.plan));
    assert_eq!(fields(&moto).await, before, "adoption changed nothing but tags");

    // Records got their ownership records; another fleet's group kept its own tags.
    let r53 = moto.route53();
    let zone = r53.list_hosted_zones().send().await.unwrap().hosted_zones().iter().find(|z| z.name() == format!("{ZONE}.")).unwrap().id().to_string();
    let sets = r53.list_resource_record_sets().hosted_zone_id(zone).send().await.unwrap();
    assert!(sets.resource_record_sets().iter().any(|s| s.name() == format!("_converge.acme.{ZONE}.")), "the record's ownership was written");
    let g = moto.ec2().describe_security_groups().group_ids(&theirs).send().await.unwrap();
    let tags: BTreeMap<&str, &str> = g.security_groups()[0].tags().iter().map(|t| (t.key().unwrap(), t.value().unwrap())).collect();
    assert_eq!(tags.get("converge:fleet"), Some(&"other"));

    // A second import refuses to overwrite what is there, and writes to another folder to compare.
    let refused = moto.converge(dir.path(), &["import", "--fleet", "agency", "--dns-zone", ZONE, "--region", REGION]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("nothing was written") && refused.stderr.contains("--force"), "{refused:?}");
    let other = tempfile::tempdir().unwrap();
    let again = moto.converge(other.path(), &["import", "--fleet", "agency", "--dns-zone", ZONE, "--region", REGION]);
    assert_eq!(again.code, 0, "{again:?}");
    // Now ours, the objects are imported without `adopt`, and otherwise the same.
    let first = std::fs::read_to_string(dir.path().join("load-balancers.toml")).unwrap();
    let second = std::fs::read_to_string(other.path().join("load-balancers.toml")).unwrap();
    assert_eq!(second, first.replace("adopt = true\n", ""));
    let forced = moto.converge(dir.path(), &["import", "--fleet", "agency", "--dns-zone", ZONE, "--region", REGION, "--force"]);
    assert_eq!(forced.code, 0, "{forced:?}");
    assert_eq!(std::fs::read_to_string(dir.path().join("load-balancers.toml")).unwrap(), second, "--force overwrites");

    // A scoped import holds what is in scope and the groups it refers to, nothing else.
    let scoped = tempfile::tempdir().unwrap();
    let run = moto.converge(scoped.path(), &["import", "--fleet", "agency", "--region", REGION, "--only", "load_balancer.shared"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut files = walk(scoped.path());
    files.sort();
    assert_eq!(files, ["fleet.toml", "load-balancers.toml", "security-groups.toml"]);
    let sgs = std::fs::read_to_string(scoped.path().join("security-groups.toml")).unwrap();
    assert!(sgs.contains("[security_group.web-lb]") && !sgs.contains("web-servers"), "{sgs}");
}

/// The files below `dir`, relative to it.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().to_string();
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk(&entry.path()).into_iter().map(|f| format!("{name}/{f}")));
        } else if !name.starts_with('.') {
            out.push(name);
        }
    }
    out
}

#[tokio::test]
async fn a_retired_sites_bucket_and_record_are_forgotten_not_deleted() {
    let moto = Moto::start();
    build_by_hand(&moto).await;
    let dir = tempfile::tempdir().unwrap();
    let run = moto.converge(dir.path(), &["import", "--fleet", "agency", "--dns-zone", ZONE, "--region", REGION]);
    assert_eq!(run.code, 0, "{run:?}");
    let apply = moto.converge(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(apply.code, 0, "{apply:?}");

    // globex leaves: its bucket is not deleted without --allow-destroy, and the conflict says forget would do.
    std::fs::remove_file(dir.path().join("sites/globex.toml")).unwrap();
    let plan = moto.converge(dir.path(), &["plan"]);
    assert_eq!(plan.code, 1, "a plan with a conflict: {plan:?}");
    assert!(plan.stdout.contains("`converge forget bucket.agency-globex-media`"), "{plan:?}");

    let record = format!("dns_record.globex.{ZONE}");
    let forget = moto.converge(dir.path(), &["forget", "bucket.agency-globex-media", &record, "--auto-approve"]);
    assert_eq!(forget.code, 0, "{forget:?}");
    assert!(forget.stdout.contains(" -> bucket.agency-globex-media"), "{forget:?}");
    assert!(forget.stdout.contains("Plan: 2 to forget, 0 to add, 0 to change, 0 to destroy."), "{forget:?}");

    // Both are still there, without converge's ownership; the plan no longer sees them.
    let tags = moto.s3().get_bucket_tagging().bucket("agency-globex-media").send().await;
    assert!(tags.map(|t| t.tag_set().iter().all(|t| !t.key().starts_with("converge:"))).unwrap_or(true), "the bucket's converge tags are gone");
    assert!(moto.s3().head_bucket().bucket("agency-globex-media").send().await.is_ok(), "the bucket stays");
    let r53 = moto.route53();
    let zone = r53.list_hosted_zones().send().await.unwrap().hosted_zones().iter().find(|z| z.name() == format!("{ZONE}.")).unwrap().id().to_string();
    let sets = r53.list_resource_record_sets().hosted_zone_id(zone).send().await.unwrap();
    let names: Vec<&str> = sets.resource_record_sets().iter().map(|s| s.name()).collect();
    assert!(names.contains(&format!("globex.{ZONE}.").as_str()), "the record stays: {names:?}");
    assert!(!names.contains(&format!("_converge.globex.{ZONE}.").as_str()), "its ownership record is gone: {names:?}");
    let after = moto.converge(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(after.code, 0, "{after:?}");

    // Forgetting what the fleet does not own is refused, touching nothing.
    let refused = moto.converge(dir.path(), &["forget", "bucket.agency-globex-media", "--auto-approve"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stdout.contains("there is nothing to forget"), "{refused:?}");
}
