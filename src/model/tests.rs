//! Loading on plain text: the schema, defaults, and the messages people read.

use super::*;

fn load(files: &[(&str, &str)]) -> Result<Fleet, Diagnostics> {
    let sources: Vec<SourceFile> = files.iter().map(|(p, t)| SourceFile::new((*p).into(), (*t).into())).collect();
    load_sources(&sources)
}

fn errors(files: &[(&str, &str)]) -> String {
    load(files).expect_err("expected problems").to_string()
}

const FLEET: &str = "[fleet]\nname = \"agency\"\nregion = \"eu-west-1\"\n";

#[test]
fn the_example_fleet_loads_with_its_values_and_defaults() {
    let fleet = load_dir(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/desired-state"))).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(fleet.settings.account.as_deref(), Some("123456789012"));
    assert_eq!(fleet.settings.max_deletes, DEFAULT_MAX_DELETES);
    let pool = &fleet.pools["web"];
    assert_eq!((pool.min, pool.max, pool.desired), (2, 8, Some(2)));
    assert_eq!(pool.health_check, PoolHealthCheck { kind: "ELB".into(), grace_seconds: 120 });
    let shared = &fleet.load_balancers["shared"];
    assert_eq!(shared.listeners[1].instance_protocol, "HTTP", "the back end defaults to HTTP behind HTTPS");
    assert!(fleet.load_balancers["acme"].cross_zone, "cross_zone defaults to true");
    assert_eq!(fleet.databases["sites-replica"].replica_of.as_ref().map(|r| r.value.as_str()), Some("sites"));
    assert_eq!(fleet.sites["initech"].dns, DnsMode::Client);
    assert_eq!(fleet.sites["acme"].dns, DnsMode::Managed);
    assert_eq!(fleet.security_groups["db"].egress.as_ref().map(Vec::len), Some(0));
    assert!(fleet.security_groups["lb"].egress.is_none(), "omitted egress stays AWS's default");
}

#[test]
fn ports_and_peers_take_the_forms_people_write() {
    let fleet = load(&[(
        "f.toml",
        &format!("{FLEET}[security_group.a]\ningress = [{{ ports = 443, cidr = \"0.0.0.0/0\" }}, {{ ports = \"all\", from = [\"a\"] }}, {{ protocol = \"ALL\", from = \"a\" }}]\n"),
    )])
    .unwrap_or_else(|d| panic!("{d}"));
    let rules = &fleet.security_groups["a"].ingress;
    assert_eq!(rules[0].ports, Some((443, 443)));
    assert_eq!(rules[1].ports, Some((0, 65535)));
    assert_eq!((rules[2].protocol.clone(), rules[2].ports), (Protocol::All, None));
}

#[test]
fn a_replica_may_not_restate_what_it_takes_from_its_primary() {
    let text = errors(&[(
        "db.toml",
        &format!("{FLEET}[database.r]\nreplica_of = \"p\"\nclass = \"db.r6g.large\"\nengine = \"mysql\"\n[database.p]\nreplica_of = \"r\"\nclass = \"x\"\n"),
    )]);
    assert!(text.contains("db.toml:7:10: error: database.r.engine: a replica takes this from its primary"), "{text}");
    assert!(text.contains("database.p is itself a replica") || text.contains("database.r is itself a replica"), "{text}");
}

#[test]
fn a_missing_fleet_and_an_unknown_top_level_table_are_reported() {
    let text = errors(&[("x.toml", "[sites.acme]\ndomain = \"a\"\n")]);
    insta::assert_snapshot!(text, @r"
    x.toml:1:1: error: fleet: missing the [fleet] table
      help: add [fleet] with name and region
    x.toml:1:2: error: .sites: unknown field
      help: did you mean `site`?
    2 problems found in the desired state
    ");
}

#[test]
fn names_must_fit_aws_and_tags_must_not_claim_ours() {
    let text = errors(&[(
        "f.toml",
        &format!(
            "{FLEET}[security_group.Web_1]\ningress = []\ntags = {{ \"converge:fleet\" = \"other\" }}\n[load_balancer.a-very-long-name-for-a-load-balancer]\nsecurity_groups = [\"x\"]\nlisteners = [{{ port = 80, protocol = \"http\", instance_port = 80 }}]\n"
        ),
    )]);
    insta::assert_snapshot!(text, @r"
    f.toml:4:1: error: security_group.Web_1: invalid name `Web_1`
      help: use lower-case letters, digits and hyphens, not at the start or end
    f.toml:6:29: error: security_group.Web_1.tags.converge:fleet: tag keys starting with `converge:` are reserved
    f.toml:7:1: error: load_balancer.a-very-long-name-for-a-load-balancer.name: `agency-a-very-long-name-for-a-load-balancer` is not a valid load balancer name
      help: at most 32 letters, digits and hyphens, not starting or ending with a hyphen; set `name` to a shorter one
    f.toml:8:20: error: load_balancer.a-very-long-name-for-a-load-balancer.security_groups: security_group.x does not exist
      help: defined: Web_1
    4 problems found in the desired state
    ");
}

#[test]
fn bootstraps_are_read_from_the_folder_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let pool = "[image.n]\nname = \"x-*\"\n[pool.web]\nimage = \"n\"\ninstance_type = \"t3.large\"\nmin = 1\nmax = 2\nbootstrap = \"boot/web.sh\"\n";
    std::fs::write(dir.path().join("fleet.toml"), format!("{FLEET}{pool}")).unwrap();
    let text = load_dir(dir.path()).unwrap_err().to_string();
    assert!(text.contains("fleet.toml:11:13: error: pool.web.bootstrap: cannot read"), "{text}");

    std::fs::create_dir(dir.path().join("boot")).unwrap();
    std::fs::write(dir.path().join("boot/web.sh"), "#!/bin/sh\necho hello\n").unwrap();
    let text = load_dir(dir.path()).unwrap_err().to_string();
    assert!(text.contains("pool.web.bootstrap: the bootstrap has no {{manifest}} placeholder"), "{text}");

    std::fs::write(dir.path().join("boot/web.sh"), "#!/bin/sh\ncat > /etc/sites <<'EOF'\n{{manifest}}\nEOF\n").unwrap();
    let fleet = load_dir(dir.path()).unwrap_or_else(|d| panic!("{d}"));
    assert!(fleet.user_data("web").unwrap().text.contains("# converge deploy manifest"));
}
