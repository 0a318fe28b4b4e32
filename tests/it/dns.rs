//! Sites' DNS records against the emulator: a record per site in the agency's zone, the client's own names
//! for managed sites, ownership TXT records, one batch per zone, hand-made records left alone.

use std::collections::BTreeSet;

use converge::plan::Action;

use crate::support::*;

const OBJECTS: &str = r#"
[fleet]
name = "agency"
region = "eu-west-1"
dns_zone = "sites.agency.net"

[network]
zones = ["eu-west-1a", "eu-west-1b"]

[security_group.lb]
ingress = [{ ports = "80", cidr = "0.0.0.0/0" }]


[load_balancer.shared]
pool = "web"
security_groups = ["lb"]
listeners = [{ port = 80, protocol = "http", instance_port = 80 }]

[load_balancer.own]
pool = "web"
security_groups = ["lb"]
listeners = [{ port = 80, protocol = "http", instance_port = 80 }]
"#;

const MANAGED: [&str; 3] = ["acme", "globex", "initech"];

/// The i-th of twenty sites: the first three are the managed ones.
fn site_name(i: usize) -> String {
    MANAGED.get(i).map_or_else(|| format!("site{i:02}"), |m| m.to_string())
}

/// Twenty sites on the shared load balancer; acme, globex and initech have their DNS managed.
fn sites() -> String {
    let mut out = String::new();
    for i in 0..20 {
        let name = site_name(i);
        let dns = if i < MANAGED.len() { "dns = \"managed\"\n" } else { "" };
        out.push_str(&format!(
            "[site.{name}]\ndomain = \"www.{name}.example\"\naliases = [\"{name}.example\"]\npool = \"web\"\nload_balancer = \"shared\"\nrepo = \"git@x:{name}.git\"\ncommit = \"abc{i:04}\"\n{dns}\n"
        ));
    }
    out
}

struct Dns {
    moto: Moto,
    dir: FleetDir,
    agency_zone: String,
}

async fn setup() -> Dns {
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-2026-11-25").await;
    let r53 = moto.route53();
    let mut agency_zone = String::new();
    for (i, zone) in ["sites.agency.net", "acme.example", "globex.example", "initech.example"].iter().enumerate() {
        let z = r53.create_hosted_zone().name(*zone).caller_reference(format!("zone-{i}")).send().await.unwrap();
        if i == 0 {
            agency_zone = z.hosted_zone().unwrap().id().to_string();
        }
    }
    let dir = FleetDir::new(&[("fleet.toml", OBJECTS), ("pool.toml", NIGHTLY_POOL), ("sites.toml", &sites())]);
    Dns { moto, dir, agency_zone }
}

/// Every CNAME, A and TXT record of a zone, as `type name -> value`.
async fn records(moto: &Moto, zone_name: &str) -> BTreeSet<String> {
    let r53 = moto.route53();
    let zones = r53.list_hosted_zones().send().await.unwrap();
    let id = zones.hosted_zones().iter().find(|z| z.name().trim_end_matches('.') == zone_name).unwrap().id().to_string();
    let sets = r53.list_resource_record_sets().hosted_zone_id(id).send().await.unwrap();
    sets.resource_record_sets()
        .iter()
        .filter(|s| matches!(s.r#type().as_str(), "CNAME" | "A" | "TXT"))
        .map(|s| {
            let value = match s.alias_target() {
                Some(a) => format!("alias {}", a.dns_name().trim_end_matches('.')),
                None => s.resource_records().iter().map(|r| r.value().to_string()).collect::<Vec<_>>().join(" "),
            };
            format!("{} {} -> {value}", s.r#type().as_str(), s.name().trim_end_matches('.'))
        })
        .collect()
}

#[tokio::test]
async fn twenty_sites_three_managed_get_exactly_their_records_with_ownership() {
    let Dns { moto, dir, .. } = setup().await;
    let aws = moto.aws();
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    let lb = moto.elb().describe_load_balancers().load_balancer_names("agency-shared").send().await.unwrap();
    let lb_dns = lb.load_balancer_descriptions()[0].dns_name().unwrap().to_string();

    let mut expected = BTreeSet::new();
    for name in (0..20).map(site_name) {
        expected.insert(format!("CNAME {name}.sites.agency.net -> {lb_dns}"));
        expected.insert(format!("TXT _converge.{name}.sites.agency.net -> \"converge:fleet=agency,address=dns_record.{name}.sites.agency.net\""));
    }
    assert_eq!(records(&moto, "sites.agency.net").await, expected);
    let acme = records(&moto, "acme.example").await;
    assert_eq!(
        acme,
        BTreeSet::from([
            format!("A acme.example -> alias {lb_dns}"),
            "CNAME www.acme.example -> acme.sites.agency.net".to_string(),
            "TXT _converge.acme.example -> \"converge:fleet=agency,address=dns_record.acme.example\"".to_string(),
            "TXT _converge.www.acme.example -> \"converge:fleet=agency,address=dns_record.www.acme.example\"".to_string(),
        ])
    );
    assert_eq!(aws.stats.calls("ChangeResourceRecordSets"), 4, "one batch per zone");
}

#[tokio::test]
async fn a_hand_made_record_on_a_desired_name_is_reported_and_left_alone() {
    let Dns { moto, dir, agency_zone } = setup().await;
    let set = aws_sdk_route53::types::ResourceRecordSet::builder()
        .name("site05.sites.agency.net")
        .r#type(aws_sdk_route53::types::RrType::Cname)
        .ttl(60)
        .resource_records(aws_sdk_route53::types::ResourceRecord::builder().value("old-host.example.net").build().unwrap())
        .build()
        .unwrap();
    let change = aws_sdk_route53::types::Change::builder().action(aws_sdk_route53::types::ChangeAction::Upsert).resource_record_set(set).build().unwrap();
    moto.route53()
        .change_resource_record_sets()
        .hosted_zone_id(&agency_zone)
        .change_batch(aws_sdk_route53::types::ChangeBatch::builder().changes(change).build().unwrap())
        .send()
        .await
        .unwrap();

    let planned = plan(&moto.aws(), &dir.load()).await;
    let conflict = planned.plan.conflicts.iter().find(|c| c.address == Some("dns_record.site05.sites.agency.net".parse().unwrap())).expect("a conflict");
    assert!(conflict.message.contains("already exists and is not managed by this fleet"), "{conflict:?}");
    let run = moto.converge(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(records(&moto, "sites.agency.net").await.contains("CNAME site05.sites.agency.net -> old-host.example.net"));
}

#[tokio::test]
async fn a_site_moved_to_another_load_balancer_is_one_upsert_and_a_removed_site_loses_its_records() {
    let Dns { moto, dir, .. } = setup().await;
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;

    dir.write(
        "sites.toml",
        &sites().replace(
            "[site.site04]\ndomain = \"www.site04.example\"\naliases = [\"site04.example\"]\npool = \"web\"\nload_balancer = \"shared\"",
            "[site.site04]\ndomain = \"www.site04.example\"\naliases = [\"site04.example\"]\npool = \"web\"\nload_balancer = \"own\"",
        ),
    );
    let planned = plan(&aws, &dir.load()).await;
    let changes: Vec<(String, Action)> = planned.plan.changes.iter().map(|c| (c.address.to_string(), c.action)).collect();
    assert_eq!(changes, vec![("dns_record.site04.sites.agency.net".to_string(), Action::Update)]);
    let by_site = moto.converge(dir.path(), &["plan", "--by", "site"]);
    assert!(by_site.stdout.contains("site site04 (www.site04.example): 1 change\n  ~ dns_record.site04.sites.agency.net (target)"), "{by_site:?}");
    assert!(by_site.stdout.contains("1 site affected, 19 unaffected."), "{by_site:?}");
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    assert_eq!(aws.stats.calls("ChangeResourceRecordSets"), 1);

    // acme goes: its records in both zones, with their ownership records.
    let without_acme: String =
        sites().split("[site.").filter(|s| !s.starts_with("acme]")).map(|s| if s.is_empty() { String::new() } else { format!("[site.{s}") }).collect();
    dir.write("sites.toml", &without_acme);
    converge(&aws, &dir.load()).await;
    assert!(records(&moto, "acme.example").await.is_empty());
    assert!(!records(&moto, "sites.agency.net").await.iter().any(|r| r.contains("acme")));
}

/// Every CNAME and A record of a zone: name -> (TTL, EvaluateTargetHealth).
async fn settings(moto: &Moto, zone_id: &str) -> std::collections::BTreeMap<String, (Option<i64>, Option<bool>)> {
    let sets = moto.route53().list_resource_record_sets().hosted_zone_id(zone_id).send().await.unwrap();
    sets.resource_record_sets()
        .iter()
        .filter(|s| matches!(s.r#type().as_str(), "CNAME" | "A"))
        .map(|s| (s.name().trim_end_matches('.').to_string(), (s.ttl(), s.alias_target().map(|a| a.evaluate_target_health()))))
        .collect()
}

async fn upsert(moto: &Moto, zone_id: &str, set: aws_sdk_route53::types::ResourceRecordSet) {
    let change = aws_sdk_route53::types::Change::builder().action(aws_sdk_route53::types::ChangeAction::Upsert).resource_record_set(set).build().unwrap();
    let batch = aws_sdk_route53::types::ChangeBatch::builder().changes(change).build().unwrap();
    moto.route53().change_resource_record_sets().hosted_zone_id(zone_id).change_batch(batch).send().await.unwrap();
}

#[tokio::test]
async fn a_ttl_or_evaluate_target_health_changed_by_hand_is_drift_and_put_back() {
    let Dns { moto, dir, agency_zone } = setup().await;
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;
    assert!(plan(&aws, &dir.load()).await.plan.is_empty());
    let zones = moto.route53().list_hosted_zones().send().await.unwrap();
    let acme_zone = zones.hosted_zones().iter().find(|z| z.name() == "acme.example.").unwrap().id().to_string();
    assert_eq!(settings(&moto, &agency_zone).await["site05.sites.agency.net"], (Some(300), None), "a CNAME's TTL is converge's 300");
    assert_eq!(settings(&moto, &acme_zone).await["acme.example"], (None, Some(false)), "an alias: no TTL, target health not evaluated");

    // By hand: a shorter TTL on a CNAME, and target health evaluated on the apex alias, same targets.
    let lb = moto.elb().describe_load_balancers().load_balancer_names("agency-shared").send().await.unwrap();
    let lb_dns = lb.load_balancer_descriptions()[0].dns_name().unwrap().to_string();
    let cname = aws_sdk_route53::types::ResourceRecordSet::builder()
        .name("site05.sites.agency.net")
        .r#type(aws_sdk_route53::types::RrType::Cname)
        .ttl(60)
        .resource_records(aws_sdk_route53::types::ResourceRecord::builder().value(&lb_dns).build().unwrap())
        .build()
        .unwrap();
    upsert(&moto, &agency_zone, cname).await;
    let alias = aws_sdk_route53::types::AliasTarget::builder().dns_name(&lb_dns).hosted_zone_id("Z32O12XQLNTSW2").evaluate_target_health(true).build().unwrap();
    let apex = aws_sdk_route53::types::ResourceRecordSet::builder()
        .name("acme.example")
        .r#type(aws_sdk_route53::types::RrType::A)
        .alias_target(alias)
        .build()
        .unwrap();
    upsert(&moto, &acme_zone, apex).await;

    let run = moto.converge(dir.path(), &["drift"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.contains("dns_record.site05.sites.agency.net ttl"), "{run:?}");
    assert!(run.stdout.contains("dns_record.acme.example evaluate_target_health"), "{run:?}");
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    assert_eq!(aws.stats.calls("ChangeResourceRecordSets"), 2, "one UPSERT batch per zone");
    assert_eq!(settings(&moto, &agency_zone).await["site05.sites.agency.net"], (Some(300), None));
    assert_eq!(settings(&moto, &acme_zone).await["acme.example"], (None, Some(false)));
    assert!(plan(&aws, &dir.load()).await.plan.is_empty());
}

/// More load balancers created in one apply than the emulator's default page (50; AWS's is 400): every
/// record still finds its load balancer's DNS name, read across pages.
#[tokio::test]
async fn records_find_their_load_balancers_across_pages_of_the_describe() {
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-2026-11-25").await;
    moto.route53().create_hosted_zone().name("sites.agency.net").caller_reference("zone").send().await.unwrap();
    let mut objects = OBJECTS.split("\n[load_balancer.shared]").next().unwrap().to_string();
    for i in 0..60 {
        objects.push_str(&format!(
            "\n[load_balancer.lb{i:02}]\nsecurity_groups = [\"lb\"]\nlisteners = [{{ port = 80, protocol = \"http\", instance_port = 80 }}]\n\
             [site.s{i:02}]\ndomain = \"www.s{i:02}.example\"\npool = \"web\"\nload_balancer = \"lb{i:02}\"\n"
        ));
    }
    let dir = FleetDir::new(&[("fleet.toml", &objects), ("pool.toml", NIGHTLY_POOL)]);
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;
    let cnames: Vec<String> = records(&moto, "sites.agency.net").await.into_iter().filter(|r| r.starts_with("CNAME")).collect();
    assert_eq!(cnames.len(), 60);
    assert!(cnames.iter().all(|r| r.contains("agency-lb")), "{cnames:?}");
}

/// A zone with more of the fleet's records than a page holds (160 sites: 320 record sets with their ownership
/// records) is read in two ranges side by side, one page each, and the plan after apply is empty: no record
/// was missed at the ranges' seam, or read twice.
#[tokio::test]
async fn a_zone_with_more_than_a_page_of_records_is_read_in_ranges_side_by_side() {
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-2026-11-25").await;
    moto.route53().create_hosted_zone().name("sites.agency.net").caller_reference("zone").send().await.unwrap();
    let mut objects = OBJECTS.split("\n[load_balancer.shared]").next().unwrap().to_string();
    objects.push_str("\n[load_balancer.lb]\nsecurity_groups = [\"lb\"]\nlisteners = [{ port = 80, protocol = \"http\", instance_port = 80 }]\n");
    for i in 0..160 {
        objects.push_str(&format!("\n[site.s{i:03}]\ndomain = \"www.s{i:03}.example\"\npool = \"web\"\nload_balancer = \"lb\"\n"));
    }
    let dir = FleetDir::new(&[("fleet.toml", &objects), ("pool.toml", NIGHTLY_POOL)]);
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;
    // Every record is there (read here page after page, as a plain client would).
    let r53 = moto.route53();
    let zone = r53.list_hosted_zones().send().await.unwrap().hosted_zones()[0].id().to_string();
    let (mut cnames, mut next) = (0, None::<(String, aws_sdk_route53::types::RrType)>);
    loop {
        let mut req = r53.list_resource_record_sets().hosted_zone_id(&zone);
        if let Some((name, kind)) = next.take() {
            req = req.start_record_name(name).start_record_type(kind);
        }
        let page = req.send().await.unwrap();
        cnames += page.resource_record_sets().iter().filter(|s| s.r#type().as_str() == "CNAME").count();
        match (page.next_record_name(), page.next_record_type()) {
            (Some(name), Some(kind)) if page.is_truncated() => next = Some((name.to_string(), kind.clone())),
            _ => break,
        }
    }
    assert_eq!(cnames, 160);
    aws.stats.reset();
    let again = plan(&aws, &dir.load()).await;
    assert!(again.plan.is_empty(), "{}", converge::render::plan_text(&again.plan));
    assert_eq!(aws.stats.calls("ListResourceRecordSets"), 2, "two ranges of one page each");
    assert_eq!(aws.stats.round_trips().chain.iter().filter(|c| c.contains("ListResourceRecordSets")).count(), 1, "side by side");
}
