//! The files of an import, as text: one writer per file, in the vocabulary of README's "The desired state".
//! Values equal to converge's defaults are left out; anything else is written as AWS holds it, so that the
//! plan of the files adopts every object with tags only.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::{Imported, Options, Selection};
use crate::resource::security_group::{Peer, RuleSpec};
use crate::resource::{Environment, GroupRef, SecurityGroupSpec, TemplateVersion};

/// A site as found: the inputs of its file.
#[derive(Debug, Clone)]
pub(crate) struct SiteOut {
    pub pool: String,
    pub load_balancer: String,
    /// Whether its own names were found in zones of the account (`dns = "managed"`).
    pub managed: bool,
    pub domain: String,
    pub aliases: Vec<String>,
    pub bucket: Option<String>,
    /// Whether everything of it is the fleet's already.
    pub ours: bool,
}

/// A TOML string.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML key: bare when it can be.
fn key(k: &str) -> String {
    if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') { k.to_string() } else { q(k) }
}

fn list<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    format!("[{}]", items.into_iter().map(|s| q(s)).collect::<Vec<_>>().join(", "))
}

/// The user's tags: what is left once converge's and AWS's own are taken out.
fn user_tags(tags: &BTreeMap<String, String>) -> BTreeMap<&String, &String> {
    tags.iter().filter(|(k, _)| !k.starts_with("converge:") && !k.starts_with("aws:")).collect()
}

fn tag_table(tags: &BTreeMap<&String, &String>) -> String {
    format!("{{ {} }}", tags.iter().map(|(k, v)| format!("{} = {}", key(k), q(v))).collect::<Vec<_>>().join(", "))
}

fn put_tags(out: &mut String, field: &str, tags: &BTreeMap<String, String>) {
    let tags = user_tags(tags);
    if !tags.is_empty() {
        let _ = writeln!(out, "{field} = {}", tag_table(&tags));
    }
}

/// `name = "..."` when the AWS name is not the one converge would derive (`<fleet>-<name>`).
fn put_name(out: &mut String, field: &str, opts: &Options, fleet_name: &str, aws_name: &str) {
    if aws_name != format!("{}-{fleet_name}", opts.fleet) {
        let _ = writeln!(out, "{field} = {}", q(aws_name));
    }
}

fn put_adopt(out: &mut String, ours: bool) {
    if !ours {
        out.push_str("adopt = true\n");
    }
}

const HEADER: &str = "# Written by `converge import`. Review it, then `converge plan`: each object it found is adopted (tags only).\n";

pub(super) fn files(opts: &Options, env: &Environment, sel: &Selection<'_>, out: &mut Imported) {
    out.files.insert("fleet.toml".into(), fleet(opts, env));
    if !sel.groups.is_empty() {
        let text = security_groups(opts, sel, &mut out.notes);
        out.files.insert("security-groups.toml".into(), text);
    }
    if !sel.balancers.is_empty() {
        let text = load_balancers(opts, sel);
        out.files.insert("load-balancers.toml".into(), text);
    }
    if !sel.pools.is_empty() {
        pools(opts, sel, out);
    }
    if !sel.parameter_groups.is_empty() || !sel.databases.is_empty() {
        let text = database(opts, sel, &mut out.notes);
        out.files.insert("database.toml".into(), text);
    }
    for (name, s) in &sel.sites {
        out.files.insert(format!("sites/{name}.toml"), site(name, s));
    }
}

fn fleet(opts: &Options, env: &Environment) -> String {
    let mut out = String::from(HEADER);
    out.push_str("\n[fleet]\n");
    let _ = writeln!(out, "name = {}", q(&opts.fleet));
    let _ = writeln!(out, "region = {}", q(&opts.region));
    if let Some(a) = &opts.account {
        let _ = writeln!(out, "account = {}   # converge refuses to run against any other account", q(a));
    }
    if let Some(z) = &opts.dns_zone {
        let _ = writeln!(out, "dns_zone = {}", q(z));
    }
    if let Some(vpc) = &opts.vpc {
        let _ = writeln!(out, "\n[network]\nvpc = {}", q(vpc));
    } else if !env.vpc_id.is_empty() {
        let _ = writeln!(out, "\n# The default VPC ({}).", env.vpc_id);
    }
    out
}

/// A tcp or udp rule's port range as the schema writes it, or `None` for every port.
fn ports(from: i32, to: i32) -> Option<String> {
    match (from, to) {
        (-1, _) => None,
        (a, b) if a == b => Some(a.to_string()),
        (a, b) => Some(format!("{a}-{b}")),
    }
}

/// Rules grouped as a person writes them: one line per protocol and ports (or ICMP type and code) and
/// description, with its CIDRs and groups. What the schema cannot say (a prefix list) is returned apart.
fn rule_lines(rules: &BTreeSet<RuleSpec>, peer_key: &str) -> (Vec<String>, Vec<String>) {
    // (protocol, first port, last port, description) -> (CIDRs, groups), in port order.
    type Peers = (Vec<String>, Vec<String>);
    let mut grouped: BTreeMap<(String, i32, i32, Option<String>), Peers> = BTreeMap::new();
    let mut refused = Vec::new();
    for r in rules {
        let protocol = if r.protocol == "-1" { "all" } else { r.protocol.as_str() };
        let entry = grouped.entry((protocol.to_string(), r.from_port, r.to_port, r.description.clone())).or_default();
        match &r.peer {
            Peer::Cidr(c) => entry.0.push(c.clone()),
            Peer::Group(GroupRef::Fleet(g)) => entry.1.push(g.clone()),
            Peer::Group(GroupRef::Id(id)) => entry.1.push(id.clone()),
            Peer::PrefixList(_) => refused.push(r.to_string()),
        }
    }
    let mut lines = Vec::new();
    for ((protocol, from, to, description), (cidrs, groups)) in grouped {
        let mut parts = Vec::new();
        match protocol.as_str() {
            "tcp" | "udp" => parts.extend(ports(from, to).map(|p| format!("ports = {}", q(&p)))),
            "icmp" | "icmpv6" => {
                parts.extend((from >= 0).then(|| format!("icmp_type = {from}")));
                parts.extend((from >= 0 && to >= 0).then(|| format!("icmp_code = {to}")));
            }
            _ => {}
        }
        match protocol.as_str() {
            "tcp" => {}
            "udp" | "icmp" | "icmpv6" | "all" => parts.push(format!("protocol = {}", q(&protocol))),
            number => parts.push(format!("protocol = {number}")),
        }
        // One peer is written as a string, several as a list.
        let one_or_list = |items: &[String]| if let [one] = items { q(one) } else { list(items) };
        if !cidrs.is_empty() {
            parts.push(format!("cidr = {}", one_or_list(&cidrs)));
        }
        if !groups.is_empty() {
            parts.push(format!("{peer_key} = {}", one_or_list(&groups)));
        }
        if let Some(d) = description {
            parts.push(format!("description = {}", q(&d)));
        }
        lines.push(format!("{{ {} }}", parts.join(", ")));
    }
    (lines, refused)
}

fn put_rules(out: &mut String, field: &str, lines: &[String]) {
    match lines {
        [] => {
            let _ = writeln!(out, "{field} = []");
        }
        [one] => {
            let _ = writeln!(out, "{field} = [{one}]");
        }
        many => {
            let _ = writeln!(out, "{field} = [");
            for l in many {
                let _ = writeln!(out, "  {l},");
            }
            out.push_str("]\n");
        }
    }
}

fn security_groups(opts: &Options, sel: &Selection<'_>, notes: &mut Vec<String>) -> String {
    let mut out = String::from(HEADER);
    for (name, (g, ours)) in &sel.groups {
        let g: &SecurityGroupSpec = g;
        let _ = writeln!(out, "\n[security_group.{name}]");
        put_name(&mut out, "name", opts, name, &g.name);
        let _ = writeln!(out, "description = {}", q(&g.description));
        let (ingress, mut refused) = rule_lines(&g.ingress, "from");
        put_rules(&mut out, "ingress", &ingress);
        if g.egress != RuleSpec::default_egress(g.dual_stack) {
            let (egress, more) = rule_lines(&g.egress, "to");
            refused.extend(more);
            put_rules(&mut out, "egress", &egress);
        }
        for r in refused {
            let _ = writeln!(out, "# not imported (the schema cannot say it yet; the plan would revoke it): {r}");
            notes.push(format!("security_group.{name}: the rule `{r}` cannot be written; the plan would revoke it"));
        }
        put_tags(&mut out, "tags", &g.tags);
        put_adopt(&mut out, *ours);
    }
    out
}

fn groups_list(groups: &BTreeSet<GroupRef>) -> String {
    let names: Vec<String> = groups
        .iter()
        .map(|g| match g {
            GroupRef::Fleet(n) => n.clone(),
            GroupRef::Id(id) => id.clone(),
        })
        .collect();
    list(&names)
}

fn load_balancers(opts: &Options, sel: &Selection<'_>) -> String {
    let mut out = String::from(HEADER);
    for (name, (lb, ours)) in &sel.balancers {
        let _ = writeln!(out, "\n[load_balancer.{name}]");
        put_name(&mut out, "name", opts, name, &lb.name);
        if lb.internal {
            out.push_str("scheme = \"internal\"\n");
        }
        let pools: Vec<&String> = sel.pools.iter().filter(|(_, (g, _, _))| g.load_balancers.contains_key(&lb.name)).map(|(p, _)| p).collect();
        // One at most: a load balancer several pools use is not imported.
        if let Some(first) = pools.first() {
            let _ = writeln!(out, "pool = {}", q(first));
        }
        let _ = writeln!(out, "security_groups = {}", groups_list(&lb.security_groups));
        let listeners: Vec<String> = lb
            .listeners
            .values()
            .map(|l| {
                let mut parts = vec![
                    format!("port = {}", l.port),
                    format!("protocol = {}", q(&l.protocol.to_ascii_lowercase())),
                    format!("instance_port = {}", l.instance_port),
                ];
                let default_back = if matches!(l.protocol.as_str(), "HTTP" | "HTTPS") { "HTTP" } else { "TCP" };
                if l.instance_protocol != default_back {
                    parts.push(format!("instance_protocol = {}", q(&l.instance_protocol.to_ascii_lowercase())));
                }
                if let Some(c) = &l.certificate {
                    parts.push(format!("certificate = {}", q(c)));
                }
                format!("{{ {} }}", parts.join(", "))
            })
            .collect();
        put_rules(&mut out, "listeners", &listeners);
        let h = &lb.health_check;
        let _ = writeln!(
            out,
            "health_check = {{ target = {}, interval = {}, timeout = {}, healthy = {}, unhealthy = {} }}",
            q(&h.target),
            h.interval,
            h.timeout,
            h.healthy,
            h.unhealthy
        );
        let a = &lb.attributes;
        if !a.cross_zone {
            out.push_str("cross_zone = false\n");
        }
        if a.idle_timeout != 60 {
            let _ = writeln!(out, "idle_timeout = {}", a.idle_timeout);
        }
        if a.connection_draining != 300 {
            let _ = writeln!(out, "connection_draining = {}", a.connection_draining);
        }
        if lb.subnets.is_empty() {
            let _ = writeln!(out, "zones = {}", list(&lb.zones));
        } else {
            let _ = writeln!(out, "subnets = {}", list(&lb.subnets));
        }
        put_tags(&mut out, "tags", &lb.tags);
        put_adopt(&mut out, *ours);
    }
    out
}

fn pools(opts: &Options, sel: &Selection<'_>, out: &mut Imported) {
    let mut text = String::from(HEADER);
    text.push_str(
        "#\n# A pool's bootstrap is its launch template's user data, as it is. To deploy sites with converge, put\n\
         # {{manifest}} where the script expects the site list, and give each site its repo, branch and commit.\n",
    );
    // One image per AMI the templates launch, named after it.
    let image_name = |t: &crate::resource::LaunchTemplateSpec| super::sanitized(t.data.image.name.as_deref().unwrap_or(&t.data.image.id));
    let images: BTreeMap<String, &crate::resource::ImageRef> = sel.pools.values().filter_map(|(_, t, _)| t.map(|t| (image_name(t), &t.data.image))).collect();
    for (name, image) in &images {
        let _ = writeln!(text, "\n[image.{name}]");
        let about = image.name.as_ref().map(|n| format!("   # {n}; to follow new images, give owners and a name pattern instead")).unwrap_or_default();
        let _ = writeln!(text, "id = {}{about}", q(&image.id));
    }
    for (name, (g, t, ours)) in &sel.pools {
        let Some(t) = t else { continue };
        let d = &t.data;
        let _ = writeln!(text, "\n[pool.{name}]");
        put_name(&mut text, "name", opts, name, &g.name);
        if t.name != g.name {
            let _ = writeln!(text, "template_name = {}", q(&t.name));
        }
        let _ = writeln!(text, "image = {}", q(&image_name(t)));
        let _ = writeln!(text, "instance_type = {}", q(&d.instance_type));
        let _ = writeln!(text, "security_groups = {}", groups_list(&d.security_groups));
        if let Some(k) = &d.key_pair {
            let _ = writeln!(text, "key_pair = {}", q(k));
        }
        let script = format!("bootstrap/{name}.sh");
        let _ = writeln!(text, "bootstrap = {}", q(&script));
        if d.gzip {
            out.notes.push(format!("pool.{name}: the user data was gzipped; the bootstrap holds it unzipped, and converge gzips it again only over 16 KB"));
        }
        out.files.insert(script, d.user_data.clone());
        let _ = writeln!(text, "min = {}\nmax = {}\ndesired = {}", g.min, g.max, g.desired_capacity);
        let all: std::collections::BTreeSet<String> = crate::resource::auto_scaling_group::NOTIFICATIONS.iter().map(|n| n.to_string()).collect();
        match g.notifications.iter().collect::<Vec<_>>().as_slice() {
            [] => {}
            [(topic, types)] if **types == all => {
                let _ = writeln!(text, "notify_topic = {}", q(topic));
            }
            _ => out.notes.push(format!("pool.{name}: its notifications are not one topic for launches and terminations; the plan sets notify_topic's (none)")),
        }
        if let Some(c) = g.cpu_target {
            let _ = writeln!(text, "cpu_target = {c}");
        }
        if g.health_check != "EC2" || g.grace_seconds != 300 {
            let _ = writeln!(text, "health_check = {{ type = {}, grace_seconds = {} }}", q(&g.health_check), g.grace_seconds);
        }
        if g.termination_policies != crate::resource::auto_scaling_group::default_termination() {
            let _ = writeln!(text, "termination_policies = {}", list(&g.termination_policies));
        }
        if g.subnets.is_empty() {
            let _ = writeln!(text, "zones = {}", list(&g.zones));
        } else {
            let _ = writeln!(text, "subnets = {}", list(&g.subnets));
        }
        // The pool's tags go on the group and the template alike: the group's win, the template's own are noted.
        put_tags(&mut text, "tags", &g.tags);
        if user_tags(&t.tags) != user_tags(&g.tags) {
            out.notes.push(format!("pool.{name}: the launch template's tags differ from the group's; the plan gives it the group's"));
        }
        // converge's own instance tags are the fleet tag, a Name and the pool's tags: written only when the
        // template's differ.
        let mut ours_by_default = g.tags.iter().filter(|(k, _)| !k.starts_with("converge:")).map(|(k, v)| (k.clone(), v.clone())).collect::<BTreeMap<_, _>>();
        ours_by_default.insert(crate::resource::FLEET_TAG.to_string(), opts.fleet.clone());
        ours_by_default.insert("Name".to_string(), g.name.clone());
        if d.instance_tags != ours_by_default {
            let _ = writeln!(text, "instance_tags = {}", tag_table(&user_tags(&d.instance_tags)));
            if d.instance_tags.keys().any(|k| k.starts_with("converge:")) {
                out.notes.push(format!("pool.{name}: the template's instance tags carry converge tags of their own; the plan leaves them out"));
            }
        }
        if matches!(g.version, TemplateVersion::Current) {
            out.notes.push(format!("pool.{name}: the group launches the template's default version; the plan pins it to the newest, an instance refresh"));
        }
        for (lb, ours) in &g.load_balancers {
            if ours.is_none() && !sel.balancer_names.contains_key(lb) {
                out.notes.push(format!("pool.{name}: the load balancer {lb} it serves is not imported; it stays attached, observed"));
            }
        }
        put_adopt(&mut text, *ours);
    }
    out.files.insert("pools.toml".into(), text);
}

fn database(opts: &Options, sel: &Selection<'_>, notes: &mut Vec<String>) -> String {
    let mut out = String::from(HEADER);
    for (name, (pg, ours)) in &sel.parameter_groups {
        let _ = writeln!(out, "\n[db_parameter_group.{name}]");
        put_name(&mut out, "name", opts, name, &pg.name);
        let _ = writeln!(out, "family = {}", q(&pg.family));
        let _ = writeln!(out, "description = {}", q(&pg.description));
        let params: Vec<String> = pg.parameters.iter().map(|(k, v)| format!("{} = {}", key(k), q(v))).collect();
        let _ = writeln!(out, "parameters = {{ {} }}", params.join(", "));
        put_tags(&mut out, "tags", &pg.tags);
        put_adopt(&mut out, *ours);
    }
    for (name, (db, ours)) in &sel.databases {
        let _ = writeln!(out, "\n[database.{name}]");
        put_name(&mut out, "name", opts, name, &db.identifier);
        match &db.replica_of {
            // Only replicas whose primary is imported are selected.
            Some((_, source)) => {
                let _ = writeln!(out, "replica_of = {}", q(&sel.database_names[source]));
            }
            None => {
                let show = |v: &Option<String>| q(v.as_deref().unwrap_or_default());
                let _ = writeln!(out, "engine = {}\nversion = {}", show(&db.engine), show(&db.version));
                let _ = writeln!(out, "storage_gb = {}", db.storage_gb.unwrap_or_default());
                let _ = writeln!(out, "username = {}", show(&db.username));
                let var = format!("{}_DB_PASSWORD", name.to_ascii_uppercase().replace('-', "_"));
                let _ = writeln!(out, "password_env = {}   # guessed: read only if converge ever creates the instance again", q(&var));
            }
        }
        let _ = writeln!(out, "class = {}", q(&db.class));
        if db.multi_az {
            out.push_str("multi_az = true\n");
        }
        if let Some(pg) = &db.parameter_group {
            match sel.parameter_group_names.get(pg) {
                Some(fleet) => {
                    let _ = writeln!(out, "parameter_group = {}", q(fleet));
                }
                None if pg.starts_with("default.") => {}
                None => notes.push(format!("database.{name}: its parameter group {pg} is not imported; it stays, observed")),
            }
        }
        if !db.security_groups.is_empty() {
            let _ = writeln!(out, "security_groups = {}", groups_list(&db.security_groups));
        }
        if let Some(r) = db.backup_retention_days {
            let _ = writeln!(out, "backup_retention_days = {r}");
        }
        if let Some(w) = &db.maintenance_window {
            let _ = writeln!(out, "maintenance_window = {}", q(w));
        }
        if let (Some(w), None) = (&db.backup_window, &db.replica_of) {
            let _ = writeln!(out, "backup_window = {}", q(w));
        }
        if db.deletion_protection {
            out.push_str("deletion_protection = true\n");
        }
        put_tags(&mut out, "tags", &db.tags);
        put_adopt(&mut out, *ours);
    }
    out
}

fn site(name: &str, s: &SiteOut) -> String {
    let mut out = String::from(HEADER);
    let _ = writeln!(out, "\n[site.{name}]");
    if s.managed {
        let _ = writeln!(out, "domain = {}", q(&s.domain));
    } else {
        let _ = writeln!(out, "domain = {}   # guessed: its own names are in no zone of this account; set the site's domain", q(&s.domain));
    }
    if !s.aliases.is_empty() {
        let _ = writeln!(out, "aliases = {}", list(&s.aliases));
    }
    let _ = writeln!(out, "pool = {}\nload_balancer = {}", q(&s.pool), q(&s.load_balancer));
    let _ = writeln!(out, "dns = {}", q(if s.managed { "managed" } else { "client" }));
    if let Some(b) = &s.bucket {
        let _ = writeln!(out, "media_bucket = {}", q(b));
    }
    out.push_str("# Not deployed by converge yet: add repo, branch and commit (and {{manifest}} to the pool's bootstrap).\n");
    put_adopt(&mut out, s.ours);
    out
}
