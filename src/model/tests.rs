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
fn protocols_by_number_and_icmp_types_and_codes_are_read() {
    let rules = "ingress = [{ protocol = 50, cidr = \"10.0.0.0/8\" }, { protocol = \"6\", ports = 22, cidr = \"10.0.0.0/8\" }, \
        { protocol = \"icmp\", icmp_type = 3, icmp_code = 4, cidr = \"10.0.0.0/8\" }, { protocol = \"ICMPv6\", icmp_type = 128, cidr = \"::/0\" }, \
        { protocol = \"icmp\", icmp_type = -1, cidr = \"10.0.0.0/8\" }]";
    let fleet = load(&[("f.toml", &format!("{FLEET}[security_group.a]\n{rules}\n"))]).unwrap_or_else(|d| panic!("{d}"));
    let got: Vec<_> = fleet.security_groups["a"].ingress.iter().map(|r| (r.protocol.clone(), r.ports, r.icmp)).collect();
    assert_eq!(
        got,
        vec![
            (Protocol::Number(50), None, None),
            (Protocol::Tcp, Some((22, 22)), None),
            (Protocol::Icmp, None, Some((3, Some(4)))),
            (Protocol::Icmpv6, None, Some((128, None))),
            (Protocol::Icmp, None, None),
        ]
    );
}

#[test]
fn a_peer_has_one_description_per_rule() {
    let rules = "ingress = [{ ports = 22, cidr = \"10.0.0.0/8\", description = \"office\" }, \
        { ports = 22, cidr = [\"10.0.0.0/8\", \"10.1.0.0/16\"], description = \"VPN\" }, { ports = 22, cidr = \"10.1.0.0/16\", description = \"VPN\" }]";
    let text = errors(&[("f.toml", &format!("{FLEET}[security_group.a]\n{rules}\n"))]);
    has_all(
        &text,
        &[
            "f.toml:5:73: error: security_group.a.ingress[1]: `10.0.0.0/8` is in security_group.a.ingress[0] too, for the same traffic, with another description",
        ],
    );
    assert_eq!(text.matches("error:").count(), 1, "the same description twice is no conflict: {text}");
    let bad = errors(&[("f.toml", &format!("{FLEET}[security_group.a]\ningress = [{{ ports = 22, cidr = \"10.0.0.0/8\", description = \"caf\u{e9}\" }}]\n"))]);
    assert!(bad.contains("security_group.a.ingress[0].description"), "{bad}");
}

#[test]
fn icmp_fields_belong_to_icmp_rules_and_a_code_to_a_type() {
    let rules = "ingress = [{ protocol = 256, cidr = \"10.0.0.0/8\" }, { ports = 22, icmp_type = 8, cidr = \"10.0.0.0/8\" }, \
        { protocol = \"icmp\", icmp_code = 1, cidr = \"10.0.0.0/8\" }, { protocol = \"icmp\", icmp_type = 300, cidr = \"10.0.0.0/8\" }, \
        { protocol = \"icmp\", ports = 8, cidr = \"10.0.0.0/8\" }, { protocol = 50, ports = 500, cidr = \"10.0.0.0/8\" }]";
    let text = errors(&[("f.toml", &format!("{FLEET}[security_group.a]\n{rules}\n"))]);
    has_all(
        &text,
        &[
            "f.toml:5:25: error: security_group.a.ingress[0].protocol: unknown protocol `256`: expected tcp, udp, icmp, icmpv6, all or an IP protocol number (0-255)",
            "f.toml:5:79: error: security_group.a.ingress[1].icmp_type: icmp_type applies to icmp and icmpv6 rules only",
            "f.toml:5:138: error: security_group.a.ingress[2].icmp_code: an ICMP code belongs to one ICMP type",
            "  help: write icmp_type as well (every type takes every code)",
            "f.toml:5:197: error: security_group.a.ingress[3].icmp_type: 300 is out of range: expected -1 to 255",
            "f.toml:5:225: error: security_group.a.ingress[4].ports: ports apply to tcp and udp rules only",
            "  help: an ICMP rule takes icmp_type and icmp_code",
            "f.toml:5:280: error: security_group.a.ingress[5].ports: ports apply to tcp and udp rules only",
        ],
    );
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
    // Without the placeholder, the script is the user data as it is while the pool deploys no site (a site
    // without repo and commit is served, not deployed)...
    let served = "[site.acme]\ndomain = \"acme.example\"\npool = \"web\"\n";
    std::fs::write(dir.path().join("fleet.toml"), format!("{FLEET}{pool}{served}")).unwrap();
    let fleet = load_dir(dir.path()).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(fleet.user_data("web").unwrap().text, "#!/bin/sh\necho hello\n");
    assert!(fleet.sites["acme"].deploy.is_none());
    // ...and an error once one is.
    std::fs::write(dir.path().join("fleet.toml"), format!("{FLEET}{pool}{served}repo = \"git@x:acme.git\"\ncommit = \"4f2a9c1e0b\"\n")).unwrap();
    let text = load_dir(dir.path()).unwrap_err().to_string();
    assert!(text.contains("pool.web.bootstrap: the bootstrap has no {{manifest}} placeholder"), "{text}");
    std::fs::write(dir.path().join("fleet.toml"), format!("{FLEET}{pool}{served}branch = \"main\"\n")).unwrap();
    let text = load_dir(dir.path()).unwrap_err().to_string();
    assert!(text.contains("site.acme.branch: a branch without a repo and a commit deploys nothing"), "{text}");
    std::fs::write(dir.path().join("fleet.toml"), format!("{FLEET}{pool}")).unwrap();

    std::fs::write(dir.path().join("boot/web.sh"), "#!/bin/sh\ncat > /etc/sites <<'EOF'\n{{manifest}}\nEOF\n").unwrap();
    let fleet = load_dir(dir.path()).unwrap_or_else(|d| panic!("{d}"));
    assert!(fleet.user_data("web").unwrap().text.contains("# converge deploy manifest"));
}

/// Asserts that `text` has each of `lines` (a diagnostic's first line, or its help line).
#[track_caller]
fn has_all(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(text.lines().any(|l| l == *line), "missing:\n{line}\nin:\n{text}");
    }
}

#[test]
fn a_bad_port_does_not_hide_the_rest_of_its_rule() {
    let text = errors(&[(
        "f.toml",
        &format!(
            "{FLEET}[security_group.a]\ningress = [{{ ports = \"99999\", cidr = [\"10.0.0.1/8\"], from = \"nope\" }}, {{ protocol = \"tcpp\", ports = 80, from = [\"b\"] }}]\n"
        ),
    )]);
    has_all(
        &text,
        &[
            "f.toml:5:22: error: security_group.a.ingress[0].ports: `99999` is not a port (1-65535) or a range `from-to`",
            "f.toml:5:39: error: security_group.a.ingress[0].cidr: `10.0.0.1/8` has host bits set",
            "f.toml:5:61: error: security_group.a.ingress.from: security_group.nope does not exist",
            "f.toml:5:84: error: security_group.a.ingress[1].protocol: unknown protocol `tcpp`: expected tcp, udp, icmp, icmpv6, all or an IP protocol number (0-255)",
            "f.toml:5:112: error: security_group.a.ingress.from: security_group.b does not exist",
        ],
    );
}

#[test]
fn a_parameter_may_be_held_for_the_next_reboot() {
    let group = "[db_parameter_group.sites]\nfamily = \"mysql8.0\"\n[db_parameter_group.sites.parameters]\nmax_connections = 600\n";
    let held = format!("{FLEET}{group}long_query_time = {{ value = \"2\", apply = \"pending-reboot\" }}\n");
    let fleet = load(&[("f.toml", &held)]).unwrap_or_else(|d| panic!("{d}"));
    let g = &fleet.db_parameter_groups["sites"];
    assert_eq!(g.parameters, BTreeMap::from([("long_query_time".to_string(), "2".to_string()), ("max_connections".to_string(), "600".to_string())]));
    assert_eq!(g.at_reboot, std::collections::BTreeSet::from(["long_query_time".to_string()]));
    let text = errors(&[(
        "f.toml",
        &format!("{FLEET}{group}long_query_time = {{ value = \"2\", apply = \"immediate\" }}\nslow_query_log = {{ apply = \"pending-reboot\" }}\n"),
    )]);
    has_all(
        &text,
        &[
            "f.toml:8:42: error: db_parameter_group.sites.parameters.long_query_time.apply: `immediate` is not an apply method converge can be told",
            "f.toml:9:18: error: db_parameter_group.sites.parameters.slow_query_log.value: missing required field",
        ],
    );
}

#[test]
fn termination_policies_are_aws_names_or_lambda_arns_each_once() {
    let pool = "[image.nightly]\nid = \"ami-0123456789abcdef0\"\n[pool.web]\nimage = \"nightly\"\ninstance_type = \"t3.large\"\nmin = 1\nmax = 2\n";
    let ok = format!("{FLEET}{pool}termination_policies = [\"OldestLaunchTemplate\", \"arn:aws:lambda:eu-west-1:123456789012:function:pick\"]\n");
    let fleet = load(&[("f.toml", &ok)]).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(fleet.pools["web"].termination_policies, ["OldestLaunchTemplate", "arn:aws:lambda:eu-west-1:123456789012:function:pick"]);
    let text = errors(&[("f.toml", &format!("{FLEET}{pool}termination_policies = [\"OldestInstanse\", \"Default\", \"Default\"]\n"))]);
    has_all(
        &text,
        &[
            "f.toml:11:25: error: pool.web.termination_policies: `OldestInstanse` is not a termination policy",
            "  help: did you mean `OldestInstance`?",
            "f.toml:11:54: error: pool.web.termination_policies: `Default` is listed twice",
        ],
    );
}

#[test]
fn a_pool_with_a_mistyped_number_still_has_its_references_and_fields_checked() {
    let text = errors(&[(
        "f.toml",
        &format!(
            "{FLEET}[pool.web]\nimage = \"nightly\"\ninstance_type = \"T3.large\"\nsecurity_groups = [\"web\"]\nmin = \"2\"\nmax = 8\nhealth_check = \"ELB\"\nrefresh = 5\n[load_balancer.lb]\npool = \"wbe\"\nsecurity_groups = [\"lb\"]\nlisteners = [{{ port = 80, protocol = \"http\", instance_port = 80 }}]\nhealth_check = 30\n"
        ),
    )]);
    insta::assert_snapshot!(text, @r"
    f.toml:5:9: error: pool.web.image: image.nightly does not exist
      help: no image is defined; add [image.nightly]
    f.toml:6:17: error: pool.web.instance_type: `T3.large` is not a valid EC2 instance type: instance types are lower case
      help: an EC2 instance type is a family and a size in lower case, e.g. t3.large, m7g.xlarge, c6i.metal
    f.toml:7:20: error: pool.web.security_groups: security_group.web does not exist
      help: no security_group is defined; add [security_group.web]
    f.toml:8:7: error: pool.web.min: expected an integer, found a string
    f.toml:10:16: error: pool.web.health_check: expected a table, found a string
    f.toml:11:11: error: pool.web.refresh: expected a table, found an integer
    f.toml:13:8: error: load_balancer.lb.pool: pool.wbe does not exist
      help: did you mean `web`?
    f.toml:14:20: error: load_balancer.lb.security_groups: security_group.lb does not exist
      help: no security_group is defined; add [security_group.lb]
    f.toml:16:16: error: load_balancer.lb.health_check: expected a table, found an integer
    9 problems found in the desired state
    ");
}

#[test]
fn an_incomplete_site_or_database_still_has_its_names_and_references_checked() {
    let text = errors(&[(
        "f.toml",
        &format!(
            "{FLEET}[site.acme]\ndomain = \"www..acme.com\"\npool = \"api\"\nload_balancer = \"lb\"\ncommit = \"4f2a9c1e0b\"\nmedia_bucket = \"Acme\"\n\
             [pool.web]\nimage = \"n\"\ninstance_type = \"t3.large\"\nmin = 1\nmax = 2\n[pool.api]\nimage = \"n\"\ninstance_type = \"t3.large\"\nmin = 1\nmax = 2\n[image.n]\nname = \"x-*\"\n\
             [load_balancer.lb]\npool = \"web\"\nsecurity_groups = [\"lb\"]\nlisteners = [{{ port = 80, protocol = \"http\", instance_port = 80 }}]\n[security_group.lb]\ningress = []\n\
             [db_parameter_group.p]\nfamily = \"mysql5.7\"\n[database.main]\nengine = \"mysql\"\nversion = \"8.0.39\"\nstorage_gb = 20\nusername = \"admin\"\npassword_env = \"P\"\nparameter_group = \"pp\"\n[database.other]\nengine = \"mysql\"\nversion = \"8.0.39\"\nstorage_gb = 20\nusername = \"admin\"\npassword_env = \"P\"\nparameter_group = \"p\"\n"
        ),
    )]);
    has_all(
        &text,
        &[
            "f.toml:4:1: error: site.acme.repo: missing required field",
            "f.toml:5:10: error: site.acme.domain: `www..acme.com` is not a valid DNS name: it has an empty label (two dots in a row, or a dot at the start)",
            "f.toml:7:17: error: site.acme.load_balancer: load_balancer.lb sends traffic to pool.web, but the site is served by pool.api",
            "f.toml:9:16: error: site.acme.media_bucket: `Acme` is not a valid S3 bucket name: upper-case letters are not allowed",
            "f.toml:30:1: error: database.main.class: missing required field",
            "f.toml:36:19: error: database.main.parameter_group: db_parameter_group.pp does not exist",
            "f.toml:37:1: error: database.other.class: missing required field",
            "f.toml:43:19: error: database.other.parameter_group: db_parameter_group.p is of family mysql5.7, but the database runs mysql 8.0.39 (family mysql8.0)",
        ],
    );
}

#[test]
fn a_listener_with_a_bad_field_still_counts_for_duplicate_ports() {
    let text = errors(&[(
        "f.toml",
        &format!(
            "{FLEET}[security_group.lb]\ningress = []\n[load_balancer.lb]\nsecurity_groups = [\"lb\"]\nlisteners = [\n  {{ port = 443, protocol = \"httpz\", instance_port = 80 }},\n  {{ port = 443, protocol = \"https\", instance_port = 80, certificate = \"arn:aws:acm:us-east-1:123456789012:certificate/abc\" }},\n]\n"
        ),
    )]);
    has_all(
        &text,
        &[
            "f.toml:9:28: error: load_balancer.lb.listeners[0].protocol: `httpz` is not a listener protocol: expected http, https, tcp or ssl",
            "f.toml:10:3: error: load_balancer.lb.listeners[1].port: two listeners on port 443",
            "  help: the other is at f.toml:9:3",
            "f.toml:10:71: error: load_balancer.lb.listeners[1].certificate: the certificate is in us-east-1, but the load balancer is in eu-west-1 (fleet.region)",
        ],
    );
}

#[test]
fn dns_names_of_sites_and_of_the_fleets_zone() {
    let site = |name: &str, body: &str| format!("[site.{name}]\npool = \"web\"\nrepo = \"r\"\ncommit = \"4f2a9c1e0b\"\n{body}");
    let text = errors(&[
        (
            "f.toml",
            "[fleet]\nname = \"agency\"\nregion = \"eu-west-1\"\ndns_zone = \"*.sites.agency.net\"\n[image.n]\nname = \"x-*\"\n[pool.web]\nimage = \"n\"\ninstance_type = \"t3.large\"\nmin = 1\nmax = 2\n",
        ),
        ("a.toml", &site("a", "domain = \"*.acme.com\"\naliases = [\"*.acme.com\", \"acme-.com\", \"café.fr\", \"localhost\", \"10.0.0.1\"]\n")),
        ("b.toml", &site("b", &format!("domain = \"{}.b.com\"\naliases = [\"*.b.com\", \"shop.*.b.com\"]\ndns = \"managed\"\n", "x".repeat(64)))),
        ("c.toml", &site("c", "domain = \"www.c.com.\"\naliases = [\"*.c.com\", \"c.com\", \"xn--caf-dma.fr\"]\n")),
    ]);
    insta::assert_snapshot!(text, @r#"
    a.toml:5:10: error: site.a.domain: `*.acme.com` is not a valid DNS name: a wildcard (`*.`) is not allowed here: a site's domain is the one name it is served at; list wildcard names in aliases
      help: a DNS name is labels separated by dots, at most 253 characters; each label 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen
    a.toml:6:26: error: site.a.aliases: `acme-.com` is not a valid DNS name: the label `acme-` starts or ends with a hyphen
      help: a DNS name is labels separated by dots, at most 253 characters; each label 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen
    a.toml:6:39: error: site.a.aliases: `café.fr` is not a valid DNS name: `é` is not allowed in a label
      help: write an internationalised name in its ASCII (punycode) form, e.g. xn--caf-dma.example for café.example
    a.toml:6:50: error: site.a.aliases: `localhost` is not a valid DNS name: it is a single label
      help: a public name has at least a domain and a top-level domain, e.g. example.com
    a.toml:6:63: error: site.a.aliases: `10.0.0.1` is not a valid DNS name: it is an IP address
      help: write the host name the site is served at
    b.toml:5:10: error: site.b.domain: `xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.b.com` is not a valid DNS name: the label `xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx` is 64 characters, over 63
      help: a DNS name is labels separated by dots, at most 253 characters; each label 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen
    b.toml:6:12: error: site.b.aliases: `*.b.com` is not a valid DNS name: a wildcard (`*.`) is not allowed here: converge does not manage wildcard records; with dns = "managed", list each name, or set dns = "client"
      help: a DNS name is labels separated by dots, at most 253 characters; each label 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen
    b.toml:6:23: error: site.b.aliases: `shop.*.b.com` is not a valid DNS name: `*` is not allowed in a label
      help: a wildcard is a whole first label, as in *.example.com
    f.toml:4:12: error: fleet.dns_zone: `*.sites.agency.net` is not a valid DNS name: a wildcard (`*.`) is not allowed here: a hosted zone has one name
      help: a DNS name is labels separated by dots, at most 253 characters; each label 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen
    9 problems found in the desired state
    "#);
}

#[test]
fn a_sites_record_in_the_fleets_zone_must_be_a_dns_name() {
    let long = "s".repeat(64);
    let text = errors(&[(
        "f.toml",
        &format!(
            "[fleet]\nname = \"agency\"\nregion = \"eu-west-1\"\ndns_zone = \"sites.agency.net\"\n[image.n]\nname = \"x-*\"\n[pool.web]\nimage = \"n\"\ninstance_type = \"t3.large\"\nmin = 1\nmax = 2\n\
             [security_group.lb]\ningress = []\n[load_balancer.lb]\nsecurity_groups = [\"lb\"]\nlisteners = [{{ port = 80, protocol = \"http\", instance_port = 80 }}]\n\
             [site.{long}]\ndomain = \"www.acme.com\"\npool = \"web\"\nload_balancer = \"lb\"\nrepo = \"r\"\ncommit = \"4f2a9c1e0b\"\n"
        ),
    )]);
    has_all(
        &text,
        &[&format!(
            "f.toml:17:1: error: site.{long}: the site's record `{long}.sites.agency.net` is not a valid DNS name: the label `{long}` is 64 characters, over 63"
        )],
    );
}

#[test]
fn media_buckets_follow_s3s_rules_and_belong_to_one_site() {
    let site = |name: &str, bucket: &str| {
        format!("[site.{name}]\ndomain = \"{name}.example\"\npool = \"web\"\nrepo = \"r\"\ncommit = \"4f2a9c1e0b\"\nmedia_bucket = \"{bucket}\"\n")
    };
    let pool = "[image.n]\nname = \"x-*\"\n[pool.web]\nimage = \"n\"\ninstance_type = \"t3.large\"\nmin = 1\nmax = 2\n";
    let text = errors(&[(
        "f.toml",
        &format!("{FLEET}{pool}{}{}{}{}", site("a", "agency-media"), site("b", "agency-media"), site("c", "xn--media"), site("d", "media..x")),
    )]);
    has_all(
        &text,
        &[
            "f.toml:22:16: error: site.b.media_bucket: bucket `agency-media` is also the media bucket of site.a",
            "  help: site.a names it at f.toml:16:16; a bucket belongs to one site",
            "f.toml:28:16: error: site.c.media_bucket: `xn--media` is not a valid S3 bucket name: the prefix `xn--` is reserved",
            "f.toml:34:16: error: site.d.media_bucket: `media..x` is not a valid S3 bucket name: it has two dots in a row",
        ],
    );
}

#[test]
fn the_region_its_zones_and_its_certificates() {
    let text = errors(&[("f.toml", "[fleet]\nname = \"agency\"\nregion = \"eu-west-1a\"\n")]);
    has_all(
        &text,
        &[
            "f.toml:3:10: error: fleet.region: `eu-west-1a` is not a valid region name: it is an availability zone",
            "  help: did you mean `eu-west-1`? a region name is a country or area code, a direction and a number, e.g. eu-west-1, us-east-2, ap-southeast-1, us-gov-west-1",
        ],
    );
    let text = errors(&[(
        "f.toml",
        &format!(
            "{FLEET}[network]\nzones = [\"eu-west-1a\", \"us-east-1b\"]\n[database.d]\nengine = \"mysql\"\nversion = \"8.0.39\"\nclass = \"db.t4g.micro\"\nstorage_gb = 20\nusername = \"admin\"\npassword_env = \"P\"\nzone = \"euw1-az1\"\n"
        ),
    )]);
    has_all(
        &text,
        &[
            "f.toml:5:24: error: network.zones: `us-east-1b` is not an availability zone of eu-west-1: it is in another region",
            "  help: the fleet is in eu-west-1 (fleet.region): its zones are named eu-west-1a, eu-west-1b, ...",
            "f.toml:13:8: error: database.d.zone: `euw1-az1` is not an availability zone of eu-west-1: it is not a zone name",
        ],
    );
}

#[test]
fn names_converge_derives_must_fit_aws() {
    let long = "p".repeat(130);
    let text = errors(&[(
        "f.toml",
        &format!(
            "[fleet]\nname = \"9agency\"\nregion = \"eu-west-1\"\n[image.n]\nname = \"x-*\"\n[pool.{long}]\nimage = \"n\"\ninstance_type = \"t3.large\"\nmin = 1\nmax = 2\n\
             [db_parameter_group.p]\nfamily = \"mysql8.0\"\n[database.{db}]\nengine = \"mysql\"\nversion = \"8.0.39\"\nclass = \"db.t4g.micro\"\nstorage_gb = 20\nusername = \"admin\"\npassword_env = \"P\"\n",
            db = "d".repeat(60)
        ),
    )]);
    has_all(
        &text,
        &[
            &format!(
                "f.toml:6:1: error: pool.{long}: `9agency-{long}` is not a valid launch template and auto-scaling group name: it is 138 characters, not 3 to 128"
            ),
            "  help: converge names it <fleet>-<name>; a launch template name is 3 to 128 letters, digits and ( ) . - / _ (and is also the auto-scaling group's name, at most 255 characters, no colon)",
            "f.toml:11:1: error: db_parameter_group.p: `9agency-p` is not a valid DB parameter group name: it must start with a letter",
            &format!(
                "f.toml:13:1: error: database.{db}: `9agency-{db}` is not a valid DB instance identifier: it is 68 characters, not 1 to 63",
                db = "d".repeat(60)
            ),
        ],
    );
    let text = errors(&[(
        "f.toml",
        &format!(
            "{FLEET}[database.a--b]\nengine = \"mysql\"\nversion = \"8.0.39\"\nclass = \"db.t4g.micro\"\nstorage_gb = 20\nusername = \"admin\"\npassword_env = \"P\"\n"
        ),
    )]);
    has_all(&text, &["f.toml:4:1: error: database.a--b: `agency-a--b` is not a valid DB instance identifier: it has two hyphens in a row"]);
}

#[test]
fn databases_windows_classes_engines_users_and_storage() {
    let text = errors(&[(
        "f.toml",
        &format!(
            "{FLEET}[database.main]\nengine = \"MySQL\"\nversion = \"8.0.39\"\nclass = \"r6g.large\"\nstorage_gb = 10\nusername = \"1admin\"\npassword_env = \"P\"\nmulti_az = true\nzone = \"eu-west-1a\"\n\
             backup_retention_days = 0\nmaintenance_window = \"sun:05:00-sun:06:00\"\nbackup_window = \"05:30-06:30\"\n\
             [database.r]\nreplica_of = \"main\"\nclass = \"db.r6g.large\"\nmaintenance_window = \"sunday 5am\"\n\
             [database.s]\nengine = \"mysql\"\nversion = \"8.0.39\"\nclass = \"db.t4g.micro\"\nstorage_gb = 10\nusername = \"admin\"\npassword_env = \"P\"\nbackup_window = \"03:00-03:15\"\n"
        ),
    )]);
    has_all(
        &text,
        &[
            "f.toml:5:10: error: database.main.engine: `MySQL` is not a valid RDS engine: engine names are lower case",
            "f.toml:7:9: error: database.main.class: `r6g.large` is not a valid DB instance class: it does not start with `db.`",
            "  help: did you mean `db.r6g.large`? an RDS DB instance class is db. and an instance type in lower case, e.g. db.r6g.large, db.t4g.micro",
            "f.toml:9:12: error: database.main.username: `1admin` is not a valid master user name: it must start with a letter",
            "f.toml:12:8: error: database.main.zone: a Multi-AZ instance cannot be given a zone",
            "f.toml:15:17: error: database.main.backup_window: the backup window 05:30-06:30 overlaps the maintenance window sun:05:00-sun:06:00",
            "f.toml:17:14: error: database.r.replica_of: database.main keeps no automated backups (backup_retention_days = 0): RDS makes read replicas only of an instance that does",
            "f.toml:19:22: error: database.r.maintenance_window: `sunday 5am` is not a valid maintenance window: it is not ddd:hh24:mi-ddd:hh24:mi",
            "f.toml:24:14: error: database.s.storage_gb: 10 GiB is too small: RDS for mysql needs at least 20 GiB of General Purpose (SSD) storage",
            "f.toml:27:17: error: database.s.backup_window: `03:00-03:15` is not a valid backup window: it is 15 minutes long; RDS needs at least 30",
        ],
    );
}

#[test]
fn ec2_names_ids_and_types() {
    let text = errors(&[(
        "f.toml",
        &format!(
            "{FLEET}[network]\nvpc = \"vpc-1\"\nsubnets = [\"subnet-0123456789abcdef0\", \"subnet-xyz\"]\n[security_group.a]\nname = \"sg-web\"\ndescription = \"the office's SSH\"\ningress = []\n\
             [image.i]\nid = \"ami-xyz\"\n[image.j]\nname = \"n-*\"\nowners = [\"canonical\", \"099720109477\"]\n\
             [pool.web]\nimage = \"j\"\ninstance_type = \"db.t3.large\"\nkey_pair = \"clé\"\nmin = 1\nmax = 2\n"
        ),
    )]);
    has_all(
        &text,
        &[
            "f.toml:5:7: error: network.vpc: `vpc-1` is not a valid VPC id: it is not vpc- and 8 or 17 hexadecimal digits",
            "f.toml:6:40: error: network.subnets: `subnet-xyz` is not a valid subnet id: it is not subnet- and 8 or 17 hexadecimal digits",
            "f.toml:8:8: error: security_group.a.name: `sg-web` is not a valid security group name: it starts with `sg-`, which is for group ids",
            "f.toml:9:15: error: security_group.a.description: `the office's SSH` is not a valid security group description: `'` is not allowed",
            "f.toml:12:6: error: image.i.id: `ami-xyz` is not a valid image id: it is not ami- and 8 or 17 hexadecimal digits",
            "f.toml:15:11: error: image.j.owners: `canonical` is not a valid image owner: it is neither an account id (12 digits) nor an owner alias",
            "f.toml:18:17: error: pool.web.instance_type: `db.t3.large` is not a valid EC2 instance type: it is an RDS instance class",
            "f.toml:19:12: error: pool.web.key_pair: `clé` is not a valid key pair name: `é` is not allowed",
        ],
    );
}

#[test]
fn tags_follow_each_services_rules() {
    let many: Vec<String> = (0..49).map(|i| format!("t{i} = \"v\"")).collect();
    let text = errors(&[(
        "f.toml",
        &format!(
            "{FLEET}[security_group.a]\ningress = []\ntags = {{ team = \"web ops!\", {} = \"x\" }}\n[load_balancer.b]\nsecurity_groups = [\"a\"]\nlisteners = [{{ port = 80, protocol = \"http\", instance_port = 80 }}]\ntags = {{ team = \"web ops!\" }}\n[security_group.c]\ningress = []\ntags = {{ {} }}\n",
            "k".repeat(129),
            many.join(", ")
        ),
    )]);
    has_all(
        &text,
        &[
            &format!(
                "f.toml:6:161: error: security_group.a.tags.{k}: `{k}` is not a valid tag key: the key is 129 characters, not 1 to 128",
                k = "k".repeat(129)
            ),
            "f.toml:10:17: error: load_balancer.b.tags.team: `web ops!` is not a valid tag value: `!` is not allowed in the value",
            "  help: a tag value here (ELB, RDS) is 0 to 256 letters, digits, spaces and _ . : / = + - @",
            "f.toml:13:8: error: security_group.c.tags: 49 tags, and converge adds 2: AWS allows 50 on a resource",
        ],
    );
    assert!(!text.contains("security_group.a.tags.team"), "EC2 takes any characters in a tag: {text}");
}

#[test]
fn a_duplicate_names_both_places() {
    let lb = |name: &str, extra: &str| {
        format!(
            "[load_balancer.{name}]\nsecurity_groups = [\"lb\", \"lb\"]\nlisteners = [{{ port = 80, protocol = \"http\", instance_port = 80 }}, {{ port = 80, protocol = \"tcp\", instance_port = 81 }}]\n{extra}"
        )
    };
    let site = |name: &str, domain: &str| {
        format!("[site.{name}]\ndomain = \"{domain}\"\naliases = [\"{domain}\"]\npool = \"web\"\nrepo = \"r\"\ncommit = \"4f2a9c1e0b\"\n")
    };
    let text = errors(&[
        (
            "a.toml",
            &format!(
                "{FLEET}[network]\nzones = [\"eu-west-1a\"]\n[security_group.lb]\nname = \"Agency-Web\"\ningress = []\n[security_group.web]\ningress = []\n{}",
                lb("a", "name = \"agency-b\"\n")
            ),
        ),
        (
            "b.toml",
            &format!("[fleet]\nname = \"agency\"\n[network]\nzones = [\"us-east-1a\"]\n{}{}{}", lb("b", ""), site("s", "www.s.com"), site("t", "WWW.S.COM.")),
        ),
        (
            "c.toml",
            "[pool.web]\nimage = \"n\"\ninstance_type = \"t3.large\"\nmin = 1\nmax = 2\n[pool.web]\nmax = 3\n[image.n]\nname = \"x-*\"\n[security_group.web]\ningress = [{ ports = 80, from = \"nope\" }]\n",
        ),
    ]);
    insta::assert_snapshot!(text, @r"
    a.toml:9:1: error: security_group.web.name: `agency-web` is also the AWS name of security_group.lb
      help: security group names are unique in a VPC (whatever their case); security_group.lb is at a.toml:7:8
    a.toml:12:26: error: load_balancer.a.security_groups: security_group.lb is listed twice
      help: first listed at a.toml:12:20
    a.toml:13:68: error: load_balancer.a.listeners[1].port: two listeners on port 80
      help: the other is at a.toml:13:14
    b.toml:1:1: error: fleet: [fleet] is defined more than once
      help: first defined at a.toml:1:1
    b.toml:3:1: error: network: [network] is defined more than once
      help: first defined at a.toml:4:1
    b.toml:4:10: error: network.zones: `us-east-1a` is not an availability zone of eu-west-1: it is in another region
      help: the fleet is in eu-west-1 (fleet.region): its zones are named eu-west-1a, eu-west-1b, ...
    b.toml:5:1: error: load_balancer.b.name: `agency-b` is also the AWS name of load_balancer.a
      help: load balancer names are unique in a region (whatever their case); load_balancer.a is at a.toml:14:8
    b.toml:6:26: error: load_balancer.b.security_groups: security_group.lb is listed twice
      help: first listed at b.toml:6:20
    b.toml:7:68: error: load_balancer.b.listeners[1].port: two listeners on port 80
      help: the other is at b.toml:7:14
    b.toml:10:12: error: site.s.aliases: `www.s.com` is listed twice for this site
      help: first listed at b.toml:9:10
    b.toml:15:10: error: site.t.domain: `www.s.com` is also a name of site.s
      help: site.s names it at b.toml:9:10; a name is served by one site
    b.toml:16:12: error: site.t.aliases: `www.s.com` is also a name of site.s
      help: site.s names it at b.toml:9:10; a name is served by one site
    c.toml:6:7: error: TOML syntax error: duplicate key
      help: first defined at c.toml:1:7
    c.toml:7:1: error: TOML syntax error: duplicate key
      help: first defined at c.toml:5:1
    c.toml:10:1: error: security_group.web: duplicate security_group.web
      help: first defined at a.toml:9:1
    c.toml:11:33: error: security_group.web.ingress.from: security_group.nope does not exist
      help: defined: lb, web
    16 problems found in the desired state
    ");
    assert!(!text.contains("missing required field"), "a second definition is checked for what it has, not for what it lacks");
}

#[test]
fn every_top_level_table_has_its_name_and_is_read() {
    for table in load::Table::ALL {
        assert_eq!(load::Table::parse(table.name()), Some(*table));
    }
    let names: Vec<&str> = load::Table::ALL.iter().map(|t| t.name()).collect();
    assert_eq!(names, ["fleet", "network", "security_group", "image", "pool", "load_balancer", "db_parameter_group", "database", "site"]);
    // One of each in the example fleet: all read, none unknown.
    let fleet = load_dir(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/desired-state"))).unwrap_or_else(|d| panic!("{d}"));
    assert!(!fleet.security_groups.is_empty() && !fleet.images.is_empty() && !fleet.db_parameter_groups.is_empty() && !fleet.sites.is_empty());
}

#[test]
fn the_lock_has_defaults_and_its_fields_are_checked_where_written() {
    let fleet = load(&[("f.toml", &format!("{FLEET}[fleet.lock]\nbucket = \"agency-ops\"\n"))]).unwrap_or_else(|d| panic!("{d}"));
    let lock = fleet.settings.lock.expect("[fleet.lock] read");
    assert_eq!((lock.bucket.as_str(), lock.key.as_str(), lock.lease), ("agency-ops", "converge/agency.lock", std::time::Duration::from_secs(120)));
    let fleet = load(&[("f.toml", &format!("{FLEET}lock = {{ bucket = \"agency-ops\", key = \"locks/a.json\", lease = \"90s\" }}\n"))])
        .unwrap_or_else(|d| panic!("{d}"));
    let lock = fleet.settings.lock.expect("an inline lock table read");
    assert_eq!((lock.key.as_str(), lock.lease.as_secs()), ("locks/a.json", 90));
    assert!(load(&[("f.toml", FLEET)]).unwrap().settings.lock.is_none(), "no [fleet.lock]: the local lock file");

    let text = errors(&[("f.toml", &format!("{FLEET}[fleet.lock]\nbucket = \"Agency_Ops\"\nlease = \"10s\"\nkey = \"/abs\"\nleese = \"2m\"\n"))]);
    assert!(text.contains("f.toml:5:10: error: fleet.lock.bucket: `Agency_Ops` is not a valid bucket name"), "{text}");
    assert!(text.contains("f.toml:6:9: error: fleet.lock.lease: a lease of `10s` is out of range: expected 30s to 1h"), "{text}");
    assert!(text.contains("f.toml:7:7: error: fleet.lock.key: `/abs` is not a usable S3 key"), "{text}");
    assert!(text.contains("f.toml:8:1: error: fleet.lock.leese: unknown field"), "{text}");
    assert!(text.contains("did you mean `lease`?"), "{text}");
    let text = errors(&[("f.toml", &format!("{FLEET}[fleet.lock]\nlease = \"two minutes\"\n"))]);
    assert!(text.contains("fleet.lock.bucket: missing required field"), "{text}");
    assert!(text.contains("f.toml:5:9: error: fleet.lock.lease: `two minutes` is not a duration such as 90s, 5m or 1h"), "{text}");
}

#[test]
fn management_policies_are_read_per_entity_and_per_table_and_a_wrong_one_is_named() {
    let text = "[fleet]\nname = \"agency\"\nregion = \"eu-west-1\"\nmanage = { database = \"no-delete\" }\n\
                [security_group.lb]\ningress = []\nmanage = \"observe\"\n[security_group.web]\ningress = []\n";
    let fleet = load(&[("f.toml", text)]).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(fleet.manage("security_group", &fleet.security_groups["lb"].policy), Manage::Observe);
    assert_eq!(fleet.manage("security_group", &fleet.security_groups["web"].policy), Manage::Full);
    assert_eq!(fleet.settings.manage.get("database"), Some(&Manage::NoDelete));
    let text = errors(&[(
        "f.toml",
        "[fleet]\nname = \"agency\"\nregion = \"eu-west-1\"\nmanage = { sites = \"observe\", pool = \"watch\" }\n[security_group.lb]\ningress = []\nmanage = true\n",
    )]);
    has_all(
        &text,
        &[
            "f.toml:4:38: error: fleet.manage.pool: `watch` is not a management policy: expected full, observe, no-delete",
            "f.toml:4:12: error: fleet.manage.sites: unknown field",
            "  help: did you mean `site`?",
            "f.toml:7:10: error: security_group.lb.manage: expected a string, found boolean",
        ],
    );
    assert!(text.contains("fleet.manage.sites"), "{text}");
}

#[test]
fn reconcile_every_is_a_duration_on_an_entity_and_a_wrong_one_is_named() {
    let text = "[fleet]\nname = \"agency\"\nregion = \"eu-west-1\"\n[security_group.lb]\ningress = []\nreconcile_every = \"6h\"\n";
    let fleet = load(&[("f.toml", text)]).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(fleet.security_groups["lb"].policy.reconcile_every, Some(std::time::Duration::from_secs(6 * 3600)));
    let policies = crate::resource::policies(&fleet);
    assert_eq!(policies.reconcile_every.len(), 1, "{policies:?}");
    let text = errors(&[("f.toml", "[fleet]\nname = \"agency\"\nregion = \"eu-west-1\"\n[security_group.lb]\ningress = []\nreconcile_every = \"daily\"\n")]);
    assert!(text.contains("f.toml:6:19: error: security_group.lb.reconcile_every: `daily` is not a duration such as 90s, 5m or 1h"), "{text}");
    assert!(text.contains("help: write it as 90s, 30m or 6h"), "{text}");
}
