//! Import on plain data: what a fleet's own objects import as must plan to nothing against them.

use super::*;
use crate::plan::{PlanOptions, plan};
use crate::testing::{FLEET, env, live_of};

fn opts() -> Options {
    Options { fleet: "agency".into(), region: "eu-west-1".into(), ..Options::default() }
}

#[test]
fn names_in_the_fleet_leave_the_prefix_out_and_keep_to_what_entity_names_allow() {
    assert_eq!(fleet_name("agency-web", &opts()), "web");
    assert_eq!(fleet_name("Web_Servers (old)", &opts()), "web-servers-old");
    assert_eq!(fleet_name("prod-db", &Options { name_prefixes: vec!["prod-".into()], ..opts() }), "db");
    assert_eq!(fleet_name("---", &opts()), "imported");
    assert_eq!(pool_name("web-asg", "web-template", &opts()), "web");
    assert_eq!(pool_name("frontend", "lt-frontend", &opts()), "frontend", "nothing shared: the group's name");
}

#[test]
fn a_fleet_imported_from_its_own_objects_plans_to_nothing_and_is_not_marked_adopt() {
    let live = live_of(FLEET);
    let imported = import(&opts(), &env(), &live);
    let dir = tempfile::tempdir().unwrap();
    for (file, text) in &imported.files {
        let path = dir.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let fleet = crate::model::load_dir(dir.path()).unwrap_or_else(|d| panic!("{d}"));
    let p = plan("agency", &crate::resource::desired(&fleet, &env()), &live, &PlanOptions::default());
    assert!(p.is_empty() && p.conflicts.is_empty(), "{}", crate::render::plan_text(&p));
    let groups = &imported.files["security-groups.toml"];
    assert!(!groups.contains("adopt = true"), "ours already:\n{groups}");
    insta::assert_snapshot!(groups, @r#"
    # Written by `converge import`. Review it, then `converge plan`: each object it found is adopted (tags only).

    [security_group.lb]
    description = "HTTP(S) from anywhere"
    ingress = [
      { ports = "80", cidr = "0.0.0.0/0" },
      { ports = "443", cidr = "0.0.0.0/0" },
    ]

    [security_group.web]
    description = "security_group.web of fleet agency"
    ingress = [{ ports = "80", from = "lb" }]
    "#);
}

#[test]
fn only_narrows_the_import_to_an_object_and_the_groups_it_refers_to() {
    let live = live_of(FLEET);
    let only = Options { only: BTreeSet::from(["load_balancer.shared".parse().unwrap()]), ..opts() };
    let imported = import(&only, &env(), &live);
    let groups = &imported.files["security-groups.toml"];
    assert!(groups.contains("[security_group.lb]") && !groups.contains("[security_group.web]"), "{groups}");
    assert!(imported.files["load-balancers.toml"].contains("[load_balancer.shared]"));
    let by_tag = Options { tags: vec![("team".into(), "none".into())], ..opts() };
    assert_eq!(import(&by_tag, &env(), &live).files.keys().collect::<Vec<_>>(), vec!["fleet.toml"], "nothing carries the tag");
}

#[test]
fn a_load_balancer_two_pools_use_and_a_replica_without_its_primary_are_left_out_with_a_note() {
    let text = format!(
        "{FLEET}\n[load_balancer.shared]\npool = \"a\"\n[pool.a]\nimage = \"i\"\ninstance_type = \"t3.large\"\nmin = 1\nmax = 2\n\
         [pool.b]\nimage = \"i\"\ninstance_type = \"t3.large\"\nmin = 1\nmax = 2\n[image.i]\nid = \"ami-12345678\"\n\
         [database.main]\nengine = \"mysql\"\nversion = \"8.0.39\"\nclass = \"db.r6g.large\"\nstorage_gb = 20\nusername = \"admin\"\npassword_env = \"P\"\n\
         [database.copy]\nreplica_of = \"main\"\nclass = \"db.r6g.large\"\n"
    )
    .replacen("[load_balancer.shared]\nsecurity_groups", "[load_balancer.shared-old]\nsecurity_groups", 1)
    .replace(
        "[load_balancer.shared]\npool = \"a\"\n",
        "[load_balancer.shared]\npool = \"a\"\nsecurity_groups = [\"lb\"]\nlisteners = [{ port = 80, protocol = \"http\", instance_port = 80 }]\n",
    );
    let mut live = live_of(&text);
    // Pool b's group uses the load balancer too (attached by hand); the primary is out of scope.
    let b: Address = "auto_scaling_group.b".parse().unwrap();
    if let Spec::AutoScalingGroup(g) = &mut live.objects.get_mut(&b).unwrap()[0].spec {
        g.load_balancers.insert("agency-shared".into(), None);
    }
    live.objects.remove(&"db_instance.main".parse::<Address>().unwrap());
    let imported = import(&opts(), &env(), &live);
    let notes = imported.notes.join("\n");
    assert!(notes.contains("load balancer agency-shared: attached to several pools (a, b)"), "{notes}");
    assert!(!imported.files["load-balancers.toml"].contains("[load_balancer.shared]"), "{}", imported.files["load-balancers.toml"]);
    assert!(notes.contains("database agency-copy") || notes.contains("database copy"), "{notes}");
    assert!(!imported.files.get("database.toml").is_some_and(|d| d.contains("replica_of")), "{:?}", imported.files.get("database.toml"));
}
