//! Security groups against the emulator: rule normalisation, deltas, ownership.

use converge::plan::Action;

use crate::support::*;

const GROUPS: &str = r#"
[security_group.lb]
description = "HTTP(S) from anywhere"
ingress = [{ ports = "80", cidr = ["0.0.0.0/0", "::/0"] }, { ports = 443, cidr = "0.0.0.0/0" }]

[security_group.web]
ingress = [
  { ports = "80", from = "lb" },
  { ports = "8000-8100", protocol = "udp", cidr = ["10.0.0.0/8"] },
  { protocol = "all", from = "web" },
  { protocol = "icmp", cidr = ["10.1.0.0/16"] },
]
egress = [{ ports = "443", cidr = ["0.0.0.0/0"] }, { ports = "53", protocol = "udp", cidr = ["10.0.0.2/32"] }]

[security_group.db]
ingress = [{ ports = "3306", from = "web" }]
egress = []
"#;

fn ingress_ports(group: &aws_sdk_ec2::types::SecurityGroup) -> Vec<(String, Option<i32>)> {
    let mut v: Vec<_> = group.ip_permissions().iter().map(|p| (p.ip_protocol().unwrap_or_default().to_string(), p.from_port())).collect();
    v.sort();
    v
}

async fn group(moto: &Moto, name: &str) -> aws_sdk_ec2::types::SecurityGroup {
    let out =
        moto.ec2().describe_security_groups().filters(aws_sdk_ec2::types::Filter::builder().name("group-name").values(name).build()).send().await.unwrap();
    out.security_groups()[0].clone()
}

#[tokio::test]
async fn every_rule_form_converges_with_no_second_diff() {
    let moto = Moto::start();
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("groups.toml", GROUPS)]);
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;
    let db = group(&moto, "agency-db").await;
    assert!(db.ip_permissions_egress().is_empty(), "egress = [] removes AWS's default egress rule");
    let tags: Vec<_> = db.tags().iter().map(|t| (t.key().unwrap(), t.value().unwrap())).collect();
    assert!(tags.contains(&("converge:fleet", "agency")) && tags.contains(&("converge:address", "security_group.db")));
}

#[tokio::test]
async fn adding_a_rule_is_one_authorize_call_and_removing_one_is_one_revoke() {
    let moto = Moto::start();
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("groups.toml", GROUPS)]);
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;
    let before = ingress_ports(&group(&moto, "agency-lb").await);

    dir.write(
        "groups.toml",
        &GROUPS.replace(r#"{ ports = 443, cidr = "0.0.0.0/0" }"#, r#"{ ports = 443, cidr = "0.0.0.0/0" }, { ports = "8443", cidr = "0.0.0.0/0" }"#),
    );
    let planned = plan(&aws, &dir.load()).await;
    assert_eq!(planned.plan.changes.len(), 1);
    assert_eq!(planned.plan.changes[0].action, Action::Update);
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    assert_eq!(aws.stats.calls("AuthorizeSecurityGroupIngress"), 1);
    assert_eq!(aws.stats.calls("RevokeSecurityGroupIngress"), 0);
    let after = ingress_ports(&group(&moto, "agency-lb").await);
    assert!(after.contains(&("tcp".into(), Some(8443))));
    assert!(before.iter().all(|p| after.contains(p)), "other rules untouched");

    dir.write("groups.toml", &GROUPS.replace(r#", { ports = 443, cidr = "0.0.0.0/0" }"#, ""));
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    assert_eq!(aws.stats.calls("RevokeSecurityGroupIngress"), 1);
    assert_eq!(aws.stats.calls("AuthorizeSecurityGroupIngress"), 0);
    let left = ingress_ports(&group(&moto, "agency-lb").await);
    assert!(!left.contains(&("tcp".into(), Some(443))) && left.contains(&("tcp".into(), Some(80))));
}

#[tokio::test]
async fn a_removed_group_is_deleted_and_a_hand_made_one_never_touched() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    // Same name as a desired group, no tags: someone made it by hand.
    let vpc = ec2.describe_vpcs().send().await.unwrap().vpcs()[0].vpc_id().unwrap().to_string();
    let hand = ec2.create_security_group().group_name("agency-web").description("by hand").vpc_id(&vpc).send().await.unwrap();
    let hand_id = hand.group_id().unwrap().to_string();

    let dir = FleetDir::new(&[
        ("fleet.toml", FLEET),
        ("groups.toml", "[security_group.lb]\ningress = [{ ports = \"80\", cidr = \"0.0.0.0/0\" }]\n[security_group.old]\ningress = []\n"),
    ]);
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;

    dir.write("groups.toml", "[security_group.lb]\ningress = [{ ports = \"80\", cidr = \"0.0.0.0/0\" }]\n[security_group.web]\ningress = []\n");
    let planned = plan(&aws, &dir.load()).await;
    assert_eq!(planned.plan.conflicts.len(), 1, "{:?}", planned.plan.conflicts);
    assert!(planned.plan.conflicts[0].message.contains("agency-web"));
    let old = planned.plan.change(&"security_group.old".parse().unwrap()).expect("old is planned for deletion");
    assert_eq!(old.action, Action::Delete);

    let run = moto.converge(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("conflicts; nothing was applied"), "{run:?}");
    let still = ec2.describe_security_groups().group_ids(&hand_id).send().await.unwrap();
    assert_eq!(still.security_groups()[0].description(), Some("by hand"));
    assert!(still.security_groups()[0].tags().is_empty());
    // Nothing was applied, not even the unrelated deletion.
    assert_eq!(group(&moto, "agency-old").await.group_name(), Some("agency-old"));
}

#[tokio::test]
async fn groups_that_refer_to_each_other_are_created_and_deleted_together() {
    let moto = Moto::start();
    // The load balancers' group may only send to the web servers, which only accept from it.
    let mutual = r#"
[security_group.lb]
ingress = [{ ports = "443", cidr = "0.0.0.0/0" }]
egress = [{ ports = "80", to = "web" }]
[security_group.web]
ingress = [{ ports = "80", from = "lb" }]
"#;
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("groups.toml", mutual)]);
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;
    let lb = group(&moto, "agency-lb").await;
    let web = group(&moto, "agency-web").await;
    let to_web = lb.ip_permissions_egress()[0].user_id_group_pairs()[0].group_id();
    assert_eq!(to_web, web.group_id());

    dir.write("groups.toml", "");
    let planned = plan(&aws, &dir.load()).await;
    assert!(planned.plan.conflicts.is_empty(), "{:?}", planned.plan.conflicts);
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    assert_eq!(aws.stats.calls("DeleteSecurityGroup"), 2);
    assert_eq!(aws.stats.calls("RevokeSecurityGroupIngress") + aws.stats.calls("RevokeSecurityGroupEgress"), 2, "each revokes its reference first");
}

#[tokio::test]
async fn tags_and_egress_change_in_place_and_converge() {
    let moto = Moto::start();
    let before = "[security_group.app]\ningress = [{ ports = \"80\", cidr = \"10.0.0.0/8\" }]\ntags = { team = \"web\", tier = \"app\" }\n";
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("groups.toml", before)]);
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;

    let after = "[security_group.app]\ningress = [{ ports = \"80\", cidr = \"10.0.0.0/8\" }]\negress = [{ ports = \"443\", cidr = \"0.0.0.0/0\" }]\ntags = { team = \"platform\" }\n";
    dir.write("groups.toml", after);
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    for (op, n) in [("CreateTags", 1), ("DeleteTags", 1), ("AuthorizeSecurityGroupEgress", 1), ("RevokeSecurityGroupEgress", 1), ("CreateSecurityGroup", 0)] {
        assert_eq!(aws.stats.calls(op), n, "{op}");
    }
    let g = group(&moto, "agency-app").await;
    let tags: Vec<(&str, &str)> = g.tags().iter().map(|t| (t.key().unwrap(), t.value().unwrap())).filter(|(k, _)| !k.starts_with("converge:")).collect();
    assert_eq!(tags, vec![("team", "platform")]);
    assert_eq!(g.ip_permissions_egress().len(), 1);
    assert_eq!(g.ip_permissions_egress()[0].from_port(), Some(443));
}

#[tokio::test]
async fn a_namesake_in_another_vpc_is_no_conflict() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let other = ec2.create_vpc().cidr_block("10.99.0.0/16").send().await.unwrap();
    let other = other.vpc().unwrap().vpc_id().unwrap().to_string();
    ec2.create_security_group().group_name("agency-web").description("elsewhere").vpc_id(&other).send().await.unwrap();
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("groups.toml", "[security_group.web]\ningress = [{ ports = \"80\", cidr = \"10.0.0.0/8\" }]\n")]);
    let aws = moto.aws();
    let planned = plan(&aws, &dir.load()).await;
    assert!(planned.plan.conflicts.is_empty(), "{:?}", planned.plan.conflicts);
    converge(&aws, &dir.load()).await;
}

/// In a VPC with an IPv6 block AWS gives a new group two default egress rules (to `0.0.0.0/0` and `::/0`):
/// the default, `egress = []` and an IPv6 rule of one's own all converge in one apply, without a duplicate.
#[tokio::test]
async fn a_dual_stack_vpc_has_a_dual_stack_default_egress() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let vpc = ec2.create_vpc().cidr_block("10.20.0.0/16").amazon_provided_ipv6_cidr_block(true).send().await.unwrap();
    let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let fleet = format!("[fleet]\nname = \"agency\"\nregion = \"eu-west-1\"\n\n[network]\nvpc = \"{vpc}\"\nzones = [\"eu-west-1a\"]\n");
    let groups = r#"
[security_group.open]
ingress = [{ ports = "443", cidr = ["0.0.0.0/0", "::/0"] }]

[security_group.closed]
ingress = []
egress = []

[security_group.v6]
ingress = []
egress = [{ protocol = "all", cidr = "::/0" }]
"#;
    let dir = FleetDir::new(&[("fleet.toml", &fleet), ("groups.toml", groups)]);
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;
    assert_eq!(aws.stats.calls("AuthorizeSecurityGroupEgress"), 0, "the IPv6 rule is the default already");
    assert_eq!(aws.stats.calls("RevokeSecurityGroupEgress"), 2, "closed revokes both defaults, v6 the IPv4 one");

    let egress = |g: aws_sdk_ec2::types::SecurityGroup| -> Vec<(String, String)> {
        let mut out = Vec::new();
        for p in g.ip_permissions_egress() {
            let protocol = p.ip_protocol().unwrap_or_default().to_string();
            out.extend(p.ip_ranges().iter().map(|r| (protocol.clone(), r.cidr_ip().unwrap().to_string())));
            out.extend(p.ipv6_ranges().iter().map(|r| (protocol.clone(), r.cidr_ipv6().unwrap().to_string())));
        }
        out.sort();
        out
    };
    let all = |cidr: &str| ("-1".to_string(), cidr.to_string());
    assert_eq!(egress(group(&moto, "agency-open").await), vec![all("0.0.0.0/0"), all("::/0")]);
    assert_eq!(egress(group(&moto, "agency-closed").await), vec![]);
    assert_eq!(egress(group(&moto, "agency-v6").await), vec![all("::/0")]);

    // Narrowing the default: exactly the two new rules and the two defaults, in one call each way.
    dir.write(
        "groups.toml",
        &groups.replace(
            "ingress = [{ ports = \"443\", cidr = [\"0.0.0.0/0\", \"::/0\"] }]",
            "ingress = []\negress = [{ ports = \"443\", cidr = [\"0.0.0.0/0\", \"::/0\"] }]",
        ),
    );
    let planned = plan(&aws, &dir.load()).await;
    let fields: Vec<String> = planned.plan.changes.iter().flat_map(|c| &c.fields).map(|f| format!("{} {:?} {:?}", f.field, f.old, f.new)).collect();
    assert_eq!(
        fields,
        vec![
            "ingress Some(\"tcp 443 from 0.0.0.0/0\") None",
            "ingress Some(\"tcp 443 from ::/0\") None",
            "egress None Some(\"tcp 443 to 0.0.0.0/0\")",
            "egress None Some(\"tcp 443 to ::/0\")",
            "egress Some(\"all traffic to 0.0.0.0/0\") None",
            "egress Some(\"all traffic to ::/0\") None",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    );
    converge(&aws, &dir.load()).await;
}

/// Rules by protocol number and ICMP rules by type and code: applied as written, read back as AWS answers
/// (names for the numbers of tcp, udp, icmp and icmpv6), and a changed code is exactly that change.
#[tokio::test]
async fn protocol_numbers_and_icmp_types_converge() {
    let moto = Moto::start();
    let groups = r#"
[security_group.vpn]
ingress = [
  { protocol = 50, cidr = "10.0.0.0/8" },
  { protocol = "17", ports = "500", cidr = "10.0.0.0/8" },
  { protocol = "icmp", icmp_type = 8, icmp_code = 0, cidr = "10.0.0.0/8" },
  { protocol = "icmp", icmp_type = 3, cidr = "10.0.0.0/8" },
  { protocol = "icmpv6", icmp_type = 128, cidr = "::/0" },
  { protocol = 58, cidr = "fd00::/8" },
]
"#;
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("groups.toml", groups)]);
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;
    let g = group(&moto, "agency-vpn").await;
    let mut read: Vec<(String, Option<i32>, Option<i32>)> =
        g.ip_permissions().iter().map(|p| (p.ip_protocol().unwrap_or_default().to_string(), p.from_port(), p.to_port())).collect();
    read.sort();
    let rule = |p: &str, from: i32, to: i32| (p.to_string(), Some(from), Some(to));
    let esp = read.iter().find(|r| r.0 == "50").expect("an ESP rule");
    assert!(matches!((esp.1, esp.2), (None | Some(-1), None | Some(-1))), "ESP has no ports: {esp:?}");
    for want in [rule("icmp", 3, -1), rule("icmp", 8, 0), rule("icmpv6", -1, -1), rule("icmpv6", 128, -1), rule("udp", 500, 500)] {
        assert!(read.contains(&want), "{want:?} in {read:?}");
    }

    dir.write("groups.toml", &groups.replace("icmp_type = 8, icmp_code = 0,", "icmp_type = 8,"));
    let planned = plan(&aws, &dir.load()).await;
    let fields: Vec<String> = planned.plan.changes.iter().flat_map(|c| &c.fields).map(|f| format!("{} {:?} {:?}", f.field, f.old, f.new)).collect();
    assert_eq!(fields, vec!["ingress None Some(\"icmp type 8 from 10.0.0.0/8\")", "ingress Some(\"icmp type 8 code 0 from 10.0.0.0/8\") None"]);
    converge(&aws, &dir.load()).await;
}

/// Rule descriptions: set beside each peer, read back equal; a new description, or none, is one update per
/// direction that keeps the rules.
#[tokio::test]
async fn rule_descriptions_are_set_changed_and_removed_in_place() {
    let moto = Moto::start();
    let groups = r#"
[security_group.admin]
ingress = [
  { ports = "22", cidr = ["203.0.113.7/32", "198.51.100.0/24"], description = "office VPN" },
  { ports = "443", from = "admin", description = "peers" },
]
egress = [{ ports = "443", cidr = "0.0.0.0/0", description = "updates" }]
"#;
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("groups.toml", groups)]);
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;
    // Per direction: (port, CIDR or "group", description), sorted.
    type Described = Vec<(i32, String, Option<String>)>;
    let described = |g: &aws_sdk_ec2::types::SecurityGroup| -> (Described, Described) {
        let read = |perms: &[aws_sdk_ec2::types::IpPermission]| {
            let mut out = Vec::new();
            for p in perms {
                let port = p.from_port().unwrap_or(-1);
                out.extend(p.ip_ranges().iter().map(|r| (port, r.cidr_ip().unwrap().to_string(), r.description().map(str::to_string))));
                out.extend(p.user_id_group_pairs().iter().map(|r| (port, "group".to_string(), r.description().map(str::to_string))));
            }
            out.sort();
            out
        };
        (read(g.ip_permissions()), read(g.ip_permissions_egress()))
    };
    let d = |s: &str| Some(s.to_string());
    let (ingress, egress) = described(&group(&moto, "agency-admin").await);
    assert_eq!(
        ingress,
        vec![(22, "198.51.100.0/24".into(), d("office VPN")), (22, "203.0.113.7/32".into(), d("office VPN")), (443, "group".into(), d("peers"))]
    );
    assert_eq!(egress, vec![(443, "0.0.0.0/0".into(), d("updates"))]);

    let changed = groups.replace("\"office VPN\"", "\"office VPN, 2027\"").replace(", description = \"updates\"", "").replace("\"peers\"", "\"admin peers\"");
    dir.write("groups.toml", &changed);
    let planned = plan(&aws, &dir.load()).await;
    let fields: Vec<String> = planned.plan.changes.iter().flat_map(|c| &c.fields).map(|f| format!("{}: {:?} -> {:?}", f.field, f.old, f.new)).collect();
    assert_eq!(
        fields,
        [
            r#"ingress: Some("tcp 22 from 198.51.100.0/24 (\"office VPN\")") -> Some("tcp 22 from 198.51.100.0/24 (\"office VPN, 2027\")")"#,
            r#"ingress: Some("tcp 22 from 203.0.113.7/32 (\"office VPN\")") -> Some("tcp 22 from 203.0.113.7/32 (\"office VPN, 2027\")")"#,
            r#"ingress: Some("tcp 443 from security_group.admin (\"peers\")") -> Some("tcp 443 from security_group.admin (\"admin peers\")")"#,
            r#"egress: Some("tcp 443 to 0.0.0.0/0 (\"updates\")") -> Some("tcp 443 to 0.0.0.0/0")"#,
        ]
    );
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    for (op, n) in [
        ("UpdateSecurityGroupRuleDescriptionsIngress", 1),
        ("UpdateSecurityGroupRuleDescriptionsEgress", 1),
        ("AuthorizeSecurityGroupIngress", 0),
        ("RevokeSecurityGroupIngress", 0),
        ("AuthorizeSecurityGroupEgress", 0),
        ("RevokeSecurityGroupEgress", 0),
    ] {
        assert_eq!(aws.stats.calls(op), n, "{op}");
    }
    let (ingress, egress) = described(&group(&moto, "agency-admin").await);
    assert_eq!(ingress[0].2, d("office VPN, 2027"));
    assert_eq!(ingress[2].2, d("admin peers"));
    assert_eq!(egress, vec![(443, "0.0.0.0/0".into(), None)]);
}
