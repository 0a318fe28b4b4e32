//! The plan engine on plain data: fleets written as TOML, live state built by hand.

use super::*;
use crate::render::plan_text;
use crate::resource::Kind;
use crate::resource::{LbOp, SgOp};
use crate::testing::{FLEET, desired_of, live_of, plan_of};

#[test]
fn empty_account_creates_everything_in_dependency_order() {
    let p = plan_of(FLEET, &Live::default());
    assert_eq!(p.summary(), Summary { adopt: 0, forget: 0, add: 3, change: 0, destroy: 0 });
    // web's rule from lb waits only for lb to exist (phase two); the load balancer waits for lb complete.
    let web = p.change(&"security_group.web".parse().unwrap()).unwrap();
    assert!(web.after.is_empty());
    assert_eq!(web.then_after, BTreeSet::from(["security_group.lb".parse().unwrap()]));
    assert!(matches!(web.then.as_slice(), [Op::SecurityGroup(SgOp::AuthorizeIngress { rules })] if rules.len() == 1));
    let lb = p.change(&"load_balancer.shared".parse().unwrap()).unwrap();
    assert_eq!(lb.after, BTreeSet::from(["security_group.lb".parse().unwrap()]));
    insta::assert_snapshot!(plan_text(&p));
}

#[test]
fn applied_fleet_has_no_changes() {
    let p = plan_of(FLEET, &live_of(FLEET));
    assert!(p.is_empty(), "{}", plan_text(&p));
    assert_eq!(plan_text(&p), "No changes. Live AWS matches the desired state.\n");
}

#[test]
fn certificate_rotation_and_new_rule_are_in_place() {
    let changed = FLEET
        .replace("shared-2026", "shared-2027")
        .replace(r#"ingress = [{ ports = "80", from = "lb" }]"#, r#"ingress = [{ ports = "80", from = "lb" }, { ports = "22", cidr = ["10.0.0.0/8"] }]"#);
    let p = plan_of(&changed, &live_of(FLEET));
    assert_eq!(p.summary(), Summary { adopt: 0, forget: 0, add: 0, change: 2, destroy: 0 });
    let lb = p.change(&"load_balancer.shared".parse().unwrap()).unwrap();
    assert!(matches!(lb.ops.as_slice(), [Op::LoadBalancer(LbOp::SetCertificate { port: 443, .. })]));
    let web = p.change(&"security_group.web".parse().unwrap()).unwrap();
    assert!(matches!(web.ops.as_slice(), [Op::SecurityGroup(SgOp::AuthorizeIngress { rules })] if rules.len() == 1));
    insta::assert_snapshot!(plan_text(&p));
}

#[test]
fn removed_load_balancer_and_group_delete_load_balancer_first() {
    let remaining = r#"
[fleet]
name = "agency"
region = "eu-west-1"

[security_group.web]
ingress = [{ ports = "80", cidr = "10.0.0.0/8" }]
"#;
    let p = plan_of(remaining, &live_of(FLEET));
    let sg = p.change(&"security_group.lb".parse().unwrap()).unwrap();
    assert_eq!(sg.action, Action::Delete);
    // The load balancer uses the group, and web's rule refers to it: both let go before it is deleted.
    assert_eq!(sg.then_after, BTreeSet::from(["load_balancer.shared".parse().unwrap(), "security_group.web".parse().unwrap()]));
    assert!(matches!(sg.then.as_slice(), [Op::SecurityGroup(SgOp::Delete { .. })]));
    assert!(sg.ops.is_empty());
    insta::assert_snapshot!(plan_text(&p));
}

#[test]
fn scheme_change_is_a_replace_naming_the_field() {
    let internal = FLEET.replace("[load_balancer.shared]", "[load_balancer.shared]\nscheme = \"internal\"");
    let p = plan_of(&internal, &live_of(FLEET));
    let lb = p.change(&"load_balancer.shared".parse().unwrap()).unwrap();
    assert_eq!(lb.action, Action::Replace);
    assert!(matches!(lb.ops.first(), Some(Op::LoadBalancer(LbOp::Delete { .. }))));
    assert_eq!(p.summary(), Summary { adopt: 0, forget: 0, add: 1, change: 0, destroy: 1 });
    insta::assert_snapshot!(plan_text(&p));
}

#[test]
fn hand_made_look_alike_is_a_conflict_not_a_change() {
    let mut live = Live::default();
    live.foreign.push(Foreign { kind: Kind::LoadBalancer, name: "agency-shared".into(), id: "agency-shared".into(), fleet: None, spec: None });
    let p = plan_of(FLEET, &live);
    assert!(p.change(&"load_balancer.shared".parse().unwrap()).is_none());
    assert_eq!(p.conflicts.len(), 1);
    insta::assert_snapshot!(plan_text(&p));
}

#[test]
fn deletions_beyond_the_limit_block_the_plan() {
    let none = "[fleet]\nname = \"agency\"\nregion = \"eu-west-1\"\n";
    let p = plan("agency", &desired_of(none), &live_of(FLEET), &PlanOptions { max_deletes: 2, ..PlanOptions::default() });
    assert_eq!(p.summary().destroy, 3);
    assert!(p.conflicts.iter().any(|c| c.message.contains("more than the limit of 2")));
}

const MUTUAL: &str = r#"
[fleet]
name = "agency"
region = "eu-west-1"
[security_group.a]
ingress = [{ ports = "80", from = "b" }]
[security_group.b]
ingress = [{ ports = "80", from = "a" }, { ports = "22", cidr = "10.0.0.0/8" }]
"#;

#[test]
fn groups_referring_to_each_other_are_created_in_two_phases() {
    let p = plan_of(MUTUAL, &Live::default());
    assert!(p.conflicts.is_empty(), "{:?}", p.conflicts);
    let (a, b) = (p.change(&"security_group.a".parse().unwrap()).unwrap(), p.change(&"security_group.b".parse().unwrap()).unwrap());
    assert_eq!(a.then_after, BTreeSet::from(["security_group.b".parse().unwrap()]));
    assert_eq!(b.then_after, BTreeSet::from(["security_group.a".parse().unwrap()]));
    // b's rule from a CIDR goes in with the group; only the rule from a waits.
    assert!(matches!(b.ops.as_slice(), [Op::SecurityGroup(SgOp::Create { .. }), Op::SecurityGroup(SgOp::AuthorizeIngress { rules })] if rules.len() == 1));
    assert!(find_cycle(&p.changes).is_none());
}

#[test]
fn groups_referring_to_each_other_are_deleted_after_revoking_those_rules() {
    let none = "[fleet]\nname = \"agency\"\nregion = \"eu-west-1\"\n";
    let p = plan_of(none, &live_of(MUTUAL));
    assert!(p.conflicts.is_empty(), "{:?}", p.conflicts);
    let a = p.change(&"security_group.a".parse().unwrap()).unwrap();
    assert!(matches!(a.ops.as_slice(), [Op::SecurityGroup(SgOp::RevokeIngress { rules })] if rules.len() == 1));
    assert!(matches!(a.then.as_slice(), [Op::SecurityGroup(SgOp::Delete { .. })]));
    assert_eq!(a.then_after, BTreeSet::from(["security_group.b".parse().unwrap()]));
}

#[test]
fn a_renamed_address_keeping_its_aws_name_deletes_before_it_creates() {
    let renamed = FLEET.replace("[load_balancer.shared]", "[load_balancer.main]\nname = \"agency-shared\"");
    let p = plan_of(&renamed, &live_of(FLEET));
    let main = p.change(&"load_balancer.main".parse().unwrap()).unwrap();
    assert_eq!(main.action, Action::Create);
    assert!(main.after.contains(&"load_balancer.shared".parse().unwrap()), "{main:?}");
    assert!(find_cycle(&p.changes).is_none());
}

#[test]
fn replacing_a_group_still_in_use_is_a_conflict_not_an_outage() {
    let changed = FLEET.replace("HTTP(S) from anywhere", "HTTP and HTTPS from anywhere");
    let p = plan_of(&changed, &live_of(FLEET));
    assert!(p.change(&"security_group.lb".parse().unwrap()).is_none());
    insta::assert_snapshot!(p.conflicts[0].message, @"must be replaced (description cannot change in place), but security_group.web, load_balancer.shared still use it");
    // A group nobody uses is simply replaced.
    let unused = changed
        .replace("[security_group.web]\ningress = [{ ports = \"80\", from = \"lb\" }]", "[security_group.web]\ningress = []")
        .replace("security_groups = [\"lb\"]", "security_groups = [\"web\"]");
    let live = live_of(
        &FLEET
            .replace("[security_group.web]\ningress = [{ ports = \"80\", from = \"lb\" }]", "[security_group.web]\ningress = []")
            .replace("security_groups = [\"lb\"]", "security_groups = [\"web\"]"),
    );
    let p = plan_of(&unused, &live);
    assert!(p.conflicts.is_empty(), "{:?}", p.conflicts);
    assert_eq!(p.change(&"security_group.lb".parse().unwrap()).unwrap().action, Action::Replace);
}

#[test]
fn a_group_replaced_while_its_only_user_is_deleted_waits_for_that_deletion() {
    let changed = FLEET
        .replace("HTTP(S) from anywhere", "HTTP and HTTPS from anywhere")
        .replace("[security_group.web]\ningress = [{ ports = \"80\", from = \"lb\" }]", "[security_group.web]\ningress = []");
    let without_lb = &changed[..changed.find("[load_balancer.shared]").unwrap()];
    let p = plan_of(without_lb, &live_of(FLEET));
    assert!(p.conflicts.is_empty(), "{:?}", p.conflicts);
    let lb = p.change(&"security_group.lb".parse().unwrap()).unwrap();
    assert_eq!(lb.action, Action::Replace);
    assert!(lb.after.contains(&"load_balancer.shared".parse().unwrap()), "{lb:?}");
    assert!(find_cycle(&p.changes).is_none());
}

const POOLS: &str = r#"
[fleet]
name = "agency"
region = "eu-west-1"

[security_group.web]
ingress = [{ ports = "80", cidr = "10.0.0.0/8" }]

[image.nightly]
owners = ["self"]
name = "sites-nightly-*"

[pool.web]
image = "nightly"
instance_type = "t3.large"
security_groups = ["web"]
min = 2
max = 8
cpu_target = 60
refresh = { min_healthy_percent = 90, warmup_seconds = 120 }

[load_balancer.shared]
pool = "web"
security_groups = ["web"]
listeners = [{ port = 80, protocol = "http", instance_port = 80 }]

[site.acme]
domain = "www.acme.example"
pool = "web"
load_balancer = "shared"
repo = "git@git.agency.net:sites/acme.git"
commit = "1111111"

[site.globex]
domain = "www.globex.example"
pool = "web"
load_balancer = "shared"
repo = "git@git.agency.net:sites/globex.git"
commit = "2222222"
"#;

/// `POOLS` as applied: template versions 1 to 5, the group on 5, scaled by its policy to 5.
fn pools_live() -> Live {
    crate::testing::pools_applied(live_of(POOLS), 5, 5)
}

#[test]
fn an_applied_pool_pins_its_group_and_shows_the_policy_owned_capacity_as_observed() {
    let p = plan_of(POOLS, &pools_live());
    assert!(p.is_empty(), "{}", plan_text(&p));
    assert_eq!(p.observed.len(), 1);
    assert_eq!(p.observed[0].value, "5");
}

#[test]
fn a_new_commit_is_a_new_template_version_rolled_out_by_a_refresh() {
    let changed = POOLS.replace("1111111", "3333333");
    let mut p = plan_of(&changed, &pools_live());
    mark_affected_sites(&crate::testing::fleet_of(&changed), &mut p);
    assert_eq!(p.summary(), Summary { adopt: 0, forget: 0, add: 0, change: 2, destroy: 0 });
    let lt = p.change(&"launch_template.web".parse().unwrap()).unwrap();
    assert!(
        matches!(lt.ops.as_slice(), [Op::LaunchTemplate(resource::LtOp::CreateVersion { .. }), Op::LaunchTemplate(resource::LtOp::DeleteVersions { versions })] if versions == &vec![2])
    );
    let asg = p.change(&"auto_scaling_group.web".parse().unwrap()).unwrap();
    assert_eq!(asg.after, BTreeSet::from(["launch_template.web".parse().unwrap()]), "the group waits for the new version");
    assert!(matches!(asg.ops.last(), Some(Op::AutoScalingGroup(resource::AsgOp::StartRefresh { .. }))));
    assert_eq!(asg.sites, vec!["acme".to_string(), "globex".to_string()]);
    insta::assert_snapshot!(plan_text(&p));
}

#[test]
fn a_refresh_already_running_blocks_the_next_one() {
    let mut live = pools_live();
    if let Spec::AutoScalingGroup(g) = &mut live.objects.get_mut(&"auto_scaling_group.web".parse().unwrap()).unwrap()[0].spec {
        g.refreshing = Some("InProgress, 40% done".into());
    }
    let p = plan_of(&POOLS.replace("1111111", "3333333"), &live);
    assert_eq!(p.conflicts.len(), 1, "{}", plan_text(&p));
    assert!(p.conflicts[0].message.contains("already running"));
    assert_eq!(p.observed.iter().map(|o| o.field.as_str()).collect::<Vec<_>>(), vec!["desired_capacity", "instance_refresh"]);
}

#[test]
fn a_zones_record_changes_go_out_as_one_batch_and_a_record_moving_zones_keeps_its_create_in_the_new_zone() {
    use crate::resource::dns_record::Target;
    use crate::resource::{DnsOp, RecordChange};
    let record = |zone: &str, name: &str, delete: bool| {
        Op::DnsRecord(DnsOp::Change {
            zone_id: zone.into(),
            change: RecordChange {
                delete,
                name: name.into(),
                target: Target::Cname("lb.example".into()),
                ttl: Some(300),
                evaluate_target_health: None,
                owner: "o".into(),
                ownership_only: false,
            },
        })
    };
    let change = |name: &str, action: Action, ops: Vec<Op>| Change::new(&Address::new(Kind::DnsRecord, name), action, name, None, vec![], ops);
    let mut p = Plan {
        changes: vec![
            change("a.example", Action::Create, vec![record("Z1", "a.example", false)]),
            change("b.example", Action::Create, vec![record("Z1", "b.example", false)]),
            change("c.example", Action::Replace, vec![record("Z1", "c.example", true), record("Z2", "c.example", false)]),
        ],
        ..Plan::default()
    };
    p.changes[1].after.insert("load_balancer.shared".parse().unwrap());
    batch(&mut p);
    let carrier: Address = "dns_record.a.example".parse().unwrap();
    let Op::DnsRecord(DnsOp::Batch { zone_id, changes }) = &p.changes[0].ops[0] else { panic!("{:?}", p.changes[0].ops) };
    assert_eq!(zone_id, "Z1");
    let names: Vec<(&str, bool)> = changes.iter().map(|c| (c.name.as_str(), c.delete)).collect();
    assert_eq!(names, vec![("a.example", false), ("b.example", false), ("c.example", true)]);
    assert_eq!(p.changes[0].ops.len(), 1);
    assert!(p.changes[0].after.contains(&"load_balancer.shared".parse().unwrap()), "the batch waits for what its records wait for");
    assert!(p.changes[1].ops.is_empty() && p.changes[1].after == BTreeSet::from([carrier.clone()]));
    assert_eq!(p.changes[2].ops, vec![record("Z2", "c.example", false)], "the create in the new zone stays with its change");
    assert_eq!(p.changes[2].after, BTreeSet::from([carrier]));
}

#[test]
fn values_aws_assigned_are_observed_for_reference_and_not_counted_as_drift() {
    let fleet = format!(
        "{FLEET}\n[database.sites]\nengine = \"mysql\"\nversion = \"8.0.39\"\nclass = \"db.r6g.large\"\nstorage_gb = 200\nsecurity_groups = [\"web\"]\nusername = \"admin\"\npassword_env = \"P\"\n"
    );
    let mut live = live_of(&fleet);
    let address: Address = "db_instance.sites".parse().unwrap();
    if let Spec::DbInstance(db) = &mut live.objects.get_mut(&address).unwrap()[0].spec {
        db.maintenance_window = Some("wed:06:38-wed:07:08".into());
        db.zone = Some("eu-west-1a".into());
    }
    let p = plan_of(&fleet, &live);
    assert!(p.is_empty(), "{}", plan_text(&p));
    assert_eq!(p.observed.iter().map(|o| (o.field.as_str(), o.info)).collect::<Vec<_>>(), vec![("maintenance_window", true), ("zone", true)]);
    assert_eq!(p.observed_counted().count(), 0);
    assert_eq!(crate::render::drift_line(&p), "no drift: live AWS matches the desired state");
    assert!(plan_text(&p).contains("= db_instance.sites maintenance_window = wed:06:38-wed:07:08   # assigned by AWS (not declared)"), "{}", plan_text(&p));

    // A value changed by hand (backups off) is drift; a zone moved from the declared one is observed, and counts.
    if let Spec::DbInstance(db) = &mut live.objects.get_mut(&address).unwrap()[0].spec {
        db.backup_retention_days = Some(0);
    }
    let declared = fleet.replace("password_env = \"P\"", "password_env = \"P\"\nzone = \"eu-west-1b\"");
    let p = plan_of(&declared, &live);
    assert_eq!(p.change(&address).unwrap().fields[0].field, "backup_retention_days");
    assert_eq!(p.observed_counted().map(|o| o.field.as_str()).collect::<Vec<_>>(), vec!["zone"]);
    assert!(crate::render::drift_line(&p).contains("1 observed: db_instance.sites zone eu-west-1a"), "{}", crate::render::drift_line(&p));
}

/// security_group.web as a create cut off before its tags and its rule would leave it: untagged, no rules.
fn web_left_untagged() -> (Live, JournalEntry) {
    let mut live = live_of(FLEET);
    let web: Address = "security_group.web".parse().unwrap();
    let Spec::SecurityGroup(mut spec) = live.objects.remove(&web).unwrap().remove(0).spec else { unreachable!() };
    spec.tags.clear();
    spec.ingress.clear();
    let entry = JournalEntry { address: web.to_string(), aws_name: spec.name.clone() };
    live.foreign.push(Foreign { kind: Kind::SecurityGroup, name: spec.name.clone(), id: "sg-web".into(), fleet: None, spec: Some(spec.into()) });
    (live, entry)
}

#[test]
fn an_untagged_object_the_journal_created_is_adopted_with_its_tags_and_the_rest_of_its_create() {
    let (live, entry) = web_left_untagged();
    let opts = PlanOptions { journal: vec![entry.clone()], ..PlanOptions::default() };
    let p = plan("agency", &desired_of(FLEET), &live, &opts);
    assert!(p.conflicts.is_empty(), "{:?}", p.conflicts);
    let web = p.change(&"security_group.web".parse().unwrap()).unwrap();
    assert_eq!((web.action, web.id.as_deref()), (Action::Adopt, Some("sg-web")));
    assert!(web.ops.iter().any(
        |op| matches!(op, Op::SecurityGroup(SgOp::AddTags { tags }) if tags.get(resource::ADDRESS_TAG).map(String::as_str) == Some("security_group.web"))
    ));
    assert!(web.ops.iter().any(|op| matches!(op, Op::SecurityGroup(SgOp::AuthorizeIngress { .. }))), "{:?}", web.ops);
    assert_eq!(p.summary(), Summary { adopt: 1, forget: 0, add: 0, change: 0, destroy: 0 });
    let text = plan_text(&p);
    assert!(text.contains(" <- security_group.web") || text.contains("security_group.web will be adopted"), "{text}");
    assert!(text.contains("Plan: 1 to adopt, 0 to add, 0 to change, 0 to destroy."), "{text}");
    assert!(p.journal_settled.is_empty(), "the adopted entry stays until the adoption completes");
}

#[test]
fn an_untagged_look_alike_in_no_journal_stays_a_conflict() {
    let (live, entry) = web_left_untagged();
    assert_eq!(plan_of(FLEET, &live).conflicts.len(), 1);
    // A journal entry for another address, or another name, does not make it ours.
    for other in [JournalEntry { address: "security_group.lb".into(), ..entry.clone() }, JournalEntry { aws_name: "other".into(), ..entry }] {
        let p = plan("agency", &desired_of(FLEET), &live, &PlanOptions { journal: vec![other], ..PlanOptions::default() });
        assert_eq!(p.conflicts.len(), 1, "{:?}", p.changes);
    }
}

#[test]
fn journal_entries_of_complete_creates_and_of_nothing_are_settled() {
    let complete = JournalEntry { address: "security_group.lb".into(), aws_name: "agency-lb".into() };
    let nothing = JournalEntry { address: "security_group.gone".into(), aws_name: "agency-gone".into() };
    let (live, pending) = web_left_untagged();
    let opts = PlanOptions { journal: vec![complete.clone(), nothing.clone(), pending], ..PlanOptions::default() };
    let p = plan("agency", &desired_of(FLEET), &live, &opts);
    assert_eq!(p.journal_settled, vec![complete, nothing]);
}

#[test]
fn every_kinds_conflict_names_the_one_command_that_adopts_the_look_alike() {
    for &kind in Kind::ALL {
        let address = Address::new(kind, "x");
        let tags = [(resource::FLEET_TAG, "agency"), (resource::ADDRESS_TAG, "ADDRESS")];
        let command = kind.tag_command("agency-x", "id-1", &tags);
        assert!(command.starts_with("aws "), "{address}: {command}");
        // A record's ownership is its TXT record, whose value names its address itself.
        let named = if kind == Kind::DnsRecord { command.contains("address=dns_record.agency-x") } else { command.contains("ADDRESS") };
        assert!(named && command.contains("agency") && command.contains(resource::FLEET_TAG), "{address}: {command}");
    }
}

#[test]
fn adopt_true_takes_an_untagged_look_alike_with_its_tags_only_and_leaves_another_fleets_alone() {
    // A hand-built web group, as the desired state declares it but without the converge tags.
    let (mut live, _) = web_left_untagged();
    let Some(Foreign { spec: Some(Spec::SecurityGroup(spec)), .. }) = live.foreign.last_mut() else { unreachable!() };
    spec.ingress = match desired_of(FLEET).get(&"security_group.web".parse().unwrap()) {
        Some(Spec::SecurityGroup(want)) => want.ingress.clone(),
        _ => unreachable!(),
    };
    spec.tags.insert("team".into(), "web".into());
    let web: Address = "security_group.web".parse().unwrap();
    let opts = PlanOptions { policies: resource::Policies { adopt: BTreeSet::from([web.clone()]), ..Default::default() }, ..PlanOptions::default() };
    let p = plan("agency", &desired_of(FLEET), &live, &opts);
    assert!(p.conflicts.is_empty(), "{:?}", p.conflicts);
    let c = p.change(&web).unwrap();
    assert_eq!((c.action, c.id.as_deref()), (Action::Adopt, Some("sg-web")));
    // Only tags: the converge tags added, the hand-made one removed (the declaration has no tags).
    assert!(c.ops.iter().all(|op| matches!(op, Op::SecurityGroup(SgOp::AddTags { .. } | SgOp::RemoveTags { .. }))), "nothing but tags is written: {:?}", c.ops);
    assert_eq!(p.summary(), Summary { adopt: 1, forget: 0, add: 0, change: 0, destroy: 0 });

    // Another fleet's group is never adopted, whatever the declaration says.
    let mut theirs = live.clone();
    theirs.foreign.last_mut().unwrap().fleet = Some("other".into());
    let p = plan("agency", &desired_of(FLEET), &theirs, &opts);
    assert!(p.change(&web).is_none());
    assert!(p.conflicts[0].message.contains("it belongs to fleet `other`"), "{:?}", p.conflicts);
}

#[test]
fn adopt_true_refuses_a_look_alike_that_differs_where_it_cannot_change_in_place() {
    let (mut live, _) = web_left_untagged();
    let Some(Foreign { spec: Some(Spec::SecurityGroup(spec)), .. }) = live.foreign.last_mut() else { unreachable!() };
    spec.description = "made by hand".into();
    let web: Address = "security_group.web".parse().unwrap();
    let p = plan(
        "agency",
        &desired_of(FLEET),
        &live,
        &PlanOptions { policies: resource::Policies { adopt: BTreeSet::from([web]), ..Default::default() }, ..PlanOptions::default() },
    );
    assert!(p.changes.iter().all(|c| c.action != Action::Adopt));
    let c = &p.conflicts[0];
    assert!(c.message.contains("to adopt differs where it cannot change in place: description"), "{}", c.message);
    assert!(c.help.contains("converge import"), "{}", c.help);
}

#[test]
fn forget_lets_owned_objects_go_by_their_ownership_only_and_refuses_what_is_not_owned() {
    let live = live_of(FLEET);
    let (web, stranger): (Address, Address) = ("security_group.web".parse().unwrap(), "security_group.nobody".parse().unwrap());
    let p = forget("agency", &live, &BTreeSet::from([web.clone(), stranger.clone()]));
    let c = p.change(&web).unwrap();
    assert_eq!(c.action, Action::Forget);
    assert_eq!(c.ops, vec![Op::SecurityGroup(SgOp::RemoveTags { keys: resource::ownership_keys() })], "nothing but the ownership tags");
    assert_eq!(p.summary(), Summary { forget: 1, ..Summary::default() });
    assert_eq!(p.conflicts.len(), 1);
    assert_eq!(p.conflicts[0].address.as_ref(), Some(&stranger));
    let text = plan_text(&p);
    assert!(text.contains(" -> security_group.web") && text.contains("will be forgotten"), "{text}");
    assert!(text.contains("Plan: 1 to forget, 0 to add, 0 to change, 0 to destroy."), "{text}");
}

#[test]
fn every_kind_forgets_without_a_call_that_deletes_or_changes_its_object() {
    for (address, spec) in desired_of(FLEET) {
        for op in spec.forget_ops("id-1") {
            let json = serde_json::to_value(&op).unwrap();
            let name = json["op"].as_str().unwrap_or_default().to_string();
            assert!(matches!(name.as_str(), "remove_tags" | "put_tags" | "change"), "{address}: {name}");
        }
    }
}

fn with_policies(text: &str) -> PlanOptions {
    PlanOptions { policies: resource::policies(&crate::testing::fleet_of(text)), ..PlanOptions::default() }
}

#[test]
fn observe_holds_every_change_of_its_object_and_what_waits_for_it() {
    // web observed: its new rule is held, reported as drift, never applied.
    let observed = FLEET.replace(
        r#"ingress = [{ ports = "80", from = "lb" }]"#,
        "ingress = [{ ports = \"80\", from = \"lb\" }, { ports = \"22\", cidr = \"10.0.0.0/8\" }]\nmanage = \"observe\"",
    );
    let p = plan("agency", &desired_of(&observed), &live_of(FLEET), &with_policies(&observed));
    assert!(p.changes.is_empty(), "{:?}", p.changes);
    assert_eq!(p.held.len(), 1);
    assert_eq!(p.held[0].change.address.to_string(), "security_group.web");
    assert!(p.held[0].reason.contains("observe"), "{}", p.held[0].reason);
    let text = plan_text(&p);
    assert!(text.contains("No changes to apply.") && text.contains("Held by a management policy"), "{text}");
    assert!(crate::render::drift_line(&p).starts_with("drift: 1 resource"), "{}", crate::render::drift_line(&p));

    // Nothing exists yet: lb observed is not created, and the load balancer that needs it waits with it.
    let lb_observed = FLEET.replace("description = \"HTTP(S) from anywhere\"", "description = \"HTTP(S) from anywhere\"\nmanage = \"observe\"");
    let p = plan("agency", &desired_of(&lb_observed), &Live::default(), &with_policies(&lb_observed));
    let held: BTreeSet<String> = p.held.iter().map(|h| h.change.address.to_string()).collect();
    // web's rule from lb, and the load balancer, need lb: they wait with it.
    assert_eq!(held, BTreeSet::from(["security_group.lb", "security_group.web", "load_balancer.shared"].map(String::from)));
    assert!(p.held.iter().any(|h| h.reason == "waits for security_group.lb, which is held"), "{:?}", p.held);
    assert!(p.changes.is_empty());
}

#[test]
fn no_delete_holds_a_deletion_refuses_a_replacement_and_lets_the_rest_through() {
    let without_lb = format!("{}\n[fleet.manage]\nload_balancer = \"no-delete\"\n", FLEET.split("[load_balancer.shared]").next().unwrap())
        .replace("[fleet]\nname = \"agency\"\nregion = \"eu-west-1\"\n", "[fleet]\nname = \"agency\"\nregion = \"eu-west-1\"\n");
    let p = plan("agency", &desired_of(&without_lb), &live_of(FLEET), &with_policies(&without_lb));
    assert!(p.change(&"load_balancer.shared".parse().unwrap()).is_none());
    assert_eq!(p.held.len(), 1, "{:?}", p.held);
    assert_eq!(p.held[0].reason, "manage = \"no-delete\": never deleted");

    let internal = FLEET.replace("[load_balancer.shared]", "[load_balancer.shared]\nscheme = \"internal\"\nmanage = \"no-delete\"");
    let p = plan("agency", &desired_of(&internal), &live_of(FLEET), &with_policies(&internal));
    assert!(p.conflicts.iter().any(|c| c.message.contains("\"no-delete\"")), "{:?}", p.conflicts);
    let certificate = FLEET.replace("shared-2026", "shared-2027").replace("[load_balancer.shared]", "[load_balancer.shared]\nmanage = \"no-delete\"");
    let p = plan("agency", &desired_of(&certificate), &live_of(FLEET), &with_policies(&certificate));
    assert_eq!(p.summary().change, 1, "an update goes through");
}

#[test]
fn a_cut_over_promotes_the_replica_then_moves_the_hostname_in_one_plan() {
    let db = "engine = \"mysql\"\nversion = \"8.0.39\"\nclass = \"db.r6g.large\"\nstorage_gb = 200\nusername = \"admin\"\npassword_env = \"P\"\n";
    let before = format!(
        "{FLEET}\n[database.sites]\n{db}hostname = \"db.sites.internal\"\n[database.sites-replica]\nreplica_of = \"sites\"\nclass = \"db.r6g.large\"\n"
    );
    let after = format!(
        "{FLEET}\n[database.sites]\n{db}\n[database.sites-replica]\nreplica_of = \"sites\"\nclass = \"db.r6g.large\"\npromote = true\nhostname = \"db.sites.internal\"\nhostname_ttl = 30\n"
    );
    let p = plan_of(&after, &live_of(&before));
    let record: Address = "dns_record.db.sites.internal".parse().unwrap();
    let replica: Address = "db_instance.sites-replica".parse().unwrap();
    assert_eq!(p.changes.iter().map(|c| c.address.to_string()).collect::<Vec<_>>(), vec![replica.to_string(), record.to_string()], "{}", plan_text(&p));
    let moved = p.change(&record).unwrap();
    assert!(moved.after.contains(&replica), "the hostname moves once the promotion is done: {moved:?}");
    let text = plan_text(&p);
    assert!(text.contains("CNAME database.sites-replica (its endpoint, once it is available)"), "{text}");
    assert!(text.contains("ttl") && text.contains("60") && text.contains("30"), "the TTL is shown: {text}");
    // Applied, both read back: nothing left.
    assert!(plan_of(&after, &live_of(&after)).is_empty());
}

/// The loop holds what cannot be applied before the plan is batched: a held record's operations never
/// travel in its zone's batch, and holding the first record of a zone does not hold the others.
#[test]
fn a_record_held_by_the_loop_stays_out_of_its_zones_batch() {
    use crate::resource::DnsOp;
    let sites = "[fleet]\nname = \"agency\"\nregion = \"eu-west-1\"\ndns_zone = \"sites.agency.net\"\n\
                 [security_group.lb]\n[load_balancer.shared]\nsecurity_groups = [\"lb\"]\nlisteners = [{ port = 80, protocol = \"http\", instance_port = 80 }]\n\
                 [pool.web]\nimage = \"nightly\"\ninstance_type = \"t3.large\"\nmin = 1\nmax = 2\n[image.nightly]\nid = \"ami-12345678\"\n\
                 [site.a]\ndomain = \"a.example\"\npool = \"web\"\nload_balancer = \"shared\"\n\
                 [site.b]\ndomain = \"b.example\"\npool = \"web\"\nload_balancer = \"shared\"\n\
                 [site.c]\ndomain = \"c.example\"\npool = \"web\"\nload_balancer = \"shared\"\n";
    let desired = desired_of(sites);
    let mut live = live_of(sites);
    for s in ["a", "b", "c"] {
        live.objects.remove(&format!("dns_record.{s}.sites.agency.net").parse::<Address>().unwrap());
    }
    for held in ["a", "b"] {
        let mut p = plan("agency", &desired, &live, &PlanOptions::default());
        let address: Address = format!("dns_record.{held}.sites.agency.net").parse().unwrap();
        contain(&mut p, &desired, &live, &BTreeMap::from([(address.clone(), "in backoff".to_string())]));
        batch(&mut p);
        assert_eq!(p.held.iter().map(|h| h.change.address.clone()).collect::<Vec<_>>(), vec![address.clone()], "only itself");
        let batched: Vec<String> = p
            .changes
            .iter()
            .flat_map(|c| &c.ops)
            .flat_map(|op| match op {
                Op::DnsRecord(DnsOp::Batch { changes, .. }) => changes.iter().map(|c| c.name.clone()).collect(),
                Op::DnsRecord(DnsOp::Change { change, .. }) => vec![change.name.clone()],
                _ => vec![],
            })
            .collect();
        assert_eq!(batched.len(), 2, "{batched:?}");
        assert!(!batched.contains(&format!("{held}.sites.agency.net")), "the held record is not written: {batched:?}");
    }
}

/// An object whose adoption is held is not the fleet's: what refers to it waits with it.
#[test]
fn what_refers_to_an_object_whose_adoption_is_held_is_held_with_it() {
    let text = "[fleet]\nname = \"agency\"\nregion = \"eu-west-1\"\n\
                [security_group.lb]\nadopt = true\nmanage = \"observe\"\n\
                [load_balancer.shared]\nsecurity_groups = [\"lb\"]\nlisteners = [{ port = 80, protocol = \"http\", instance_port = 80 }]\n";
    let fleet = crate::testing::fleet_of(text);
    let desired = desired_of(text);
    let mut live = live_of(text);
    let group: Address = "security_group.lb".parse().unwrap();
    let lb: Address = "load_balancer.shared".parse().unwrap();
    let mut by_hand = live.objects.remove(&group).unwrap().remove(0);
    live.objects.remove(&lb);
    if let crate::resource::Spec::SecurityGroup(g) = &mut by_hand.spec {
        g.tags.clear();
    }
    live.foreign.push(crate::live::Foreign { kind: Kind::SecurityGroup, name: "agency-lb".into(), id: by_hand.id, fleet: None, spec: Some(by_hand.spec) });
    let p = plan("agency", &desired, &live, &PlanOptions { policies: crate::resource::policies(&fleet), ..PlanOptions::default() });
    let held: Vec<(String, String)> = p.held.iter().map(|h| (h.change.address.to_string(), h.reason.clone())).collect();
    assert_eq!(
        held,
        vec![
            ("security_group.lb".to_string(), "manage = \"observe\": read and reported, never written".to_string()),
            ("load_balancer.shared".to_string(), "waits for security_group.lb, which is held".to_string())
        ],
        "{}",
        plan_text(&p)
    );
    assert!(p.changes.is_empty());
}
