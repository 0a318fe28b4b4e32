//! Loading: find every `*.toml` below a folder, parse each with spans, and build the typed [`Fleet`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::de::DeTable;

use super::diag::{Diagnostic, Diagnostics, Loc, Located, SourceFile};
use super::walk::{Fields, Value, Walker};
use super::*;

/// Declares the top-level tables: each variant with its name, and the list of them, from one list.
macro_rules! tables {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// The top-level tables of the desired state. The variants, their names and [`Table::ALL`] come from one
        /// list, and the reader matches on the variant exhaustively: a table left out of the reader is a compile
        /// error, never a panic on user input.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub(super) enum Table {
            $($(#[$doc])* $variant,)*
        }

        impl Table {
            pub const ALL: &'static [Table] = &[$(Table::$variant,)*];

            /// The table's name in TOML (`[pool.web]`: `pool`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Table::$variant => $name,)*
                }
            }
        }
    };
}

tables! {
    /// `[fleet]`, exactly once.
    Fleet = "fleet",
    /// `[network]`, at most once.
    Network = "network",
    SecurityGroup = "security_group",
    Image = "image",
    Pool = "pool",
    LoadBalancer = "load_balancer",
    DbParameterGroup = "db_parameter_group",
    Database = "database",
    Site = "site",
}

impl Table {
    pub fn parse(name: &str) -> Option<Table> {
        Table::ALL.iter().copied().find(|t| t.name() == name)
    }
}

/// Loads and validates every `*.toml` below `dir` (sorted, so errors come in a stable order).
pub fn load_dir(dir: &Path) -> Result<Fleet, Diagnostics> {
    let mut files = Vec::new();
    let mut diags = Vec::new();
    collect(dir, &mut files, &mut diags);
    files.sort();
    if files.is_empty() && diags.is_empty() {
        diags.push(
            Diagnostic::new(Loc { file: std::sync::Arc::from(dir), line: 0, col: 0 }, "", "no *.toml files found")
                .help("point --dir at the folder that holds the fleet's desired state"),
        );
    }
    let mut sources = Vec::new();
    for path in files {
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.push(SourceFile::new(path, text)),
            Err(e) => diags.push(Diagnostic::new(Loc { file: std::sync::Arc::from(path.as_path()), line: 0, col: 0 }, "", format!("cannot read: {e}"))),
        }
    }
    let fleet = load(&sources, Some(dir)).map_err(|d| {
        let mut all = diags.clone();
        all.extend(d.0);
        Diagnostics(all)
    })?;
    if !diags.is_empty() {
        return Err(Diagnostics(diags));
    }
    Ok(fleet)
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>, diags: &mut Vec<Diagnostic>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            diags.push(Diagnostic::new(Loc { file: std::sync::Arc::from(dir), line: 0, col: 0 }, "", format!("cannot read the desired-state folder: {e}")));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files, diags);
        } else if path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
}

/// Parses and validates already-read sources: all problems at once, or the fleet. Bootstrap scripts are
/// not read (there is no folder); see [`load_dir`].
pub fn load_sources(sources: &[SourceFile]) -> Result<Fleet, Diagnostics> {
    load(sources, None)
}

fn load(sources: &[SourceFile], dir: Option<&Path>) -> Result<Fleet, Diagnostics> {
    let mut diags = Vec::new();
    let mut fleet = Fleet { dir: dir.map(Path::to_path_buf).unwrap_or_default(), ..Fleet::default() };
    let mut seen = Seen::default();
    for src in sources {
        let (table, errors) = DeTable::parse_recoverable(&src.text);
        for e in &errors {
            let loc = src.loc(e.span().map_or(0, |s| s.start));
            diags.push(Diagnostic::new(loc, "", format!("TOML syntax error: {}", e.message().trim())));
        }
        let mut w = Walker { src, diags: &mut diags };
        let loc = src.loc(0);
        let known: Vec<&str> = Table::ALL.iter().map(|t| t.name()).collect();
        let top = w.table_fields(table.get_ref(), loc, "", &known);
        read_top(&mut w, &top, &mut fleet, &mut seen);
    }
    if seen.fleet.is_none() {
        let loc = sources.first().map_or_else(Loc::none, |s| s.loc(0));
        diags.push(Diagnostic::new(loc, "fleet", "missing the [fleet] table").help("add [fleet] with name and region"));
    }
    if let Some(dir) = dir {
        read_bootstraps(&mut fleet, dir, &mut diags);
    }
    // Cross-entity checks run even when some entity failed to parse: references are checked against
    // everything declared, so a broken table does not also make every reference to it an error.
    let declared = seen.entities.keys().cloned().collect();
    super::validate::validate(&fleet, &declared, &mut diags);
    if diags.is_empty() {
        Ok(fleet)
    } else {
        diags.sort();
        diags.dedup();
        Err(Diagnostics(diags))
    }
}

/// Reads each pool's bootstrap script (relative to the desired-state folder).
fn read_bootstraps(fleet: &mut Fleet, dir: &Path, diags: &mut Vec<Diagnostic>) {
    for (name, pool) in &mut fleet.pools {
        let Some(b) = &pool.bootstrap else { continue };
        let path = dir.join(&b.value);
        match std::fs::read_to_string(&path) {
            Ok(text) => pool.bootstrap_text = Some(text),
            Err(e) => diags.push(
                Diagnostic::new(b.loc.clone(), format!("pool.{name}.bootstrap"), format!("cannot read {}: {e}", path.display()))
                    .help("bootstrap paths are relative to the desired-state folder"),
            ),
        }
    }
}

#[derive(Default)]
struct Seen {
    fleet: Option<Loc>,
    network: Option<Loc>,
    entities: BTreeMap<String, Loc>,
}

fn read_top(w: &mut Walker<'_>, top: &Fields<'_, '_>, fleet: &mut Fleet, seen: &mut Seen) {
    for (key, value) in top.entries() {
        // Unknown tables were reported (with a suggestion) when the fields were opened.
        let Some(table) = Table::parse(key) else { continue };
        match table {
            Table::Fleet => {
                if once(w, &mut seen.fleet, table, value)
                    && let Some(s) = read_fleet(w, value)
                {
                    fleet.settings = s;
                }
            }
            Table::Network => {
                if once(w, &mut seen.network, table, value)
                    && let Some(n) = read_network(w, value)
                {
                    fleet.network = n;
                }
            }
            Table::SecurityGroup => each(w, table, value, seen, |w, v, name, path| {
                if let Some(x) = read_security_group(w, v, path) {
                    fleet.security_groups.insert(name, x);
                }
            }),
            Table::Image => each(w, table, value, seen, |w, v, name, path| {
                if let Some(x) = read_image(w, v, path) {
                    fleet.images.insert(name, x);
                }
            }),
            Table::Pool => each(w, table, value, seen, |w, v, name, path| {
                if let Some(x) = read_pool(w, v, path) {
                    fleet.pools.insert(name, x);
                }
            }),
            Table::LoadBalancer => each(w, table, value, seen, |w, v, name, path| {
                if let Some(x) = read_load_balancer(w, v, path) {
                    fleet.load_balancers.insert(name, x);
                }
            }),
            Table::DbParameterGroup => each(w, table, value, seen, |w, v, name, path| {
                if let Some(x) = read_db_parameter_group(w, v, path) {
                    fleet.db_parameter_groups.insert(name, x);
                }
            }),
            Table::Database => each(w, table, value, seen, |w, v, name, path| {
                if let Some(x) = read_database(w, v, path) {
                    fleet.databases.insert(name, x);
                }
            }),
            Table::Site => each(w, table, value, seen, |w, v, name, path| {
                if let Some(x) = read_site(w, v, path) {
                    fleet.sites.insert(name, x);
                }
            }),
        }
    }
}

/// A table defined at most once: false (and a diagnostic naming both places) for a second definition.
fn once(w: &mut Walker<'_>, slot: &mut Option<Loc>, table: Table, value: &Value<'_>) -> bool {
    let key = table.name();
    let loc = w.loc(value);
    if let Some(first) = slot {
        let first = first.clone();
        w.diags.push(Diagnostic::new(loc, key, format!("[{key}] is defined more than once")).help(format!("first defined at {first}")));
        return false;
    }
    *slot = Some(loc);
    true
}

/// The named entities of one table (`[pool.NAME]`), each handed to `read` with its name and path.
fn each(w: &mut Walker<'_>, table: Table, value: &Value<'_>, seen: &mut Seen, mut read: impl FnMut(&mut Walker<'_>, &Value<'_>, String, &str)) {
    let kind = table.name();
    let Some(entities) = value.get_ref().as_table() else {
        let found = value.get_ref().type_str();
        let loc = w.loc(value);
        w.error(loc, kind, format!("expected a table of named {kind}s ([{kind}.NAME]), found {found}"));
        return;
    };
    for (name, v) in entities.iter() {
        let name = name.get_ref().to_string();
        let path = format!("{kind}.{name}");
        let loc = w.loc(v);
        if let Some(first) = seen.entities.get(&path) {
            let first = first.clone();
            w.diags.push(Diagnostic::new(loc, &path, format!("duplicate {path}")).help(format!("first defined at {first}")));
            continue;
        }
        seen.entities.insert(path.clone(), loc.clone());
        check_name(w, &name, &path, loc);
        read(w, v, name, &path);
    }
}

/// Names become parts of AWS names and addresses: keep them to what every AWS API accepts.
fn check_name(w: &mut Walker<'_>, name: &str, path: &str, loc: Loc) {
    let ok =
        !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') && !name.starts_with('-') && !name.ends_with('-');
    if !ok {
        w.diags.push(Diagnostic::new(loc, path, format!("invalid name `{name}`")).help("use lower-case letters, digits and hyphens, not at the start or end"));
    }
}

fn u32_of(v: Option<Located<i64>>) -> Option<u32> {
    v.map(|v| v.value as u32)
}

fn read_fleet(w: &mut Walker<'_>, v: &Value<'_>) -> Option<FleetSettings> {
    let f = w.fields(v, "fleet", &["name", "region", "account", "dns_zone", "max_deletes", "certificate_horizon_days"])?;
    let name = w.req_string(&f, "name");
    if let Some(n) = &name {
        check_name(w, n, "fleet.name", n.loc.clone());
    }
    let region = w.req_string(&f, "region");
    let account = w.opt_string(&f, "account");
    if let Some(a) = &account
        && (a.len() != 12 || !a.chars().all(|c| c.is_ascii_digit()))
    {
        w.error(a.loc.clone(), "fleet.account", format!("`{}` is not an AWS account id (12 digits)", a.value));
    }
    let dns_zone = w.opt_string(&f, "dns_zone").map(|z| z.value.trim_end_matches('.').to_string());
    let max_deletes = w.opt_int(&f, "max_deletes", 0..=100_000).map_or(DEFAULT_MAX_DELETES, |n| n.value as usize);
    let certificate_horizon_days = w.opt_int(&f, "certificate_horizon_days", 0..=365).map_or(DEFAULT_CERTIFICATE_HORIZON_DAYS, |n| n.value as u32);
    Some(FleetSettings { name: name?.value, region: region?.value, account: account.map(|a| a.value), dns_zone, max_deletes, certificate_horizon_days })
}

fn read_network(w: &mut Walker<'_>, v: &Value<'_>) -> Option<Network> {
    let f = w.fields(v, "network", &["vpc", "zones", "subnets"])?;
    Some(Network { vpc: w.opt_string(&f, "vpc").map(|v| v.value), zones: plain(w.opt_strings(&f, "zones")), subnets: plain(w.opt_strings(&f, "subnets")) })
}

fn plain(v: Vec<Located<String>>) -> Vec<String> {
    v.into_iter().map(|s| s.value).collect()
}

fn tags(w: &mut Walker<'_>, f: &Fields<'_, '_>) -> Tags {
    let Some(v) = f.get("tags") else { return Tags::new() };
    let field = f.field("tags");
    let mut out = Tags::new();
    for (k, val) in w.string_map(v, &field) {
        if k.starts_with("converge:") || k.starts_with("aws:") {
            let prefix = if k.starts_with("aws:") { "aws:" } else { "converge:" };
            w.error(val.loc.clone(), format!("{field}.{k}"), format!("tag keys starting with `{prefix}` are reserved"));
            continue;
        }
        out.insert(k, val.value);
    }
    out
}

fn read_security_group(w: &mut Walker<'_>, v: &Value<'_>, path: &str) -> Option<SecurityGroup> {
    let f = w.fields(v, path, &["name", "description", "ingress", "egress", "tags"])?;
    let name = w.opt_string(&f, "name");
    if let Some(n) = &name
        && (n.is_empty() || n.len() > 255 || n.starts_with("sg-"))
    {
        w.error(n.loc.clone(), f.field("name"), "a security group name must be 1 to 255 characters and not start with `sg-`");
    }
    let description = w.opt_string(&f, "description");
    if let Some(d) = &description
        && (d.len() > 255 || !d.is_ascii())
    {
        w.error(d.loc.clone(), f.field("description"), "a security group description must be at most 255 ASCII characters");
    }
    let rules = |w: &mut Walker<'_>, key: &str, peer: &str| -> Option<Vec<Rule>> {
        let v = f.get(key)?;
        let field = f.field(key);
        Some(w.tables(v, &field).into_iter().filter_map(|(p, item)| read_rule(w, item, &p, peer)).collect())
    };
    let ingress = rules(w, "ingress", "from").unwrap_or_default();
    let egress = rules(w, "egress", "to");
    let tags = tags(w, &f);
    Some(SecurityGroup { loc: f.loc.clone(), name: name.map(|n| n.value), description: description.map(|d| d.value), ingress, egress, tags })
}

fn read_rule(w: &mut Walker<'_>, v: &Value<'_>, path: &str, peer: &str) -> Option<Rule> {
    let f = w.fields(v, path, &["ports", "protocol", "cidr", peer])?;
    let protocol = match w.opt_string(&f, "protocol") {
        None => Some(Protocol::Tcp),
        Some(p) => match p.to_ascii_lowercase().as_str() {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            "icmp" => Some(Protocol::Icmp),
            "all" | "-1" => Some(Protocol::All),
            other => {
                w.error(p.loc.clone(), f.field("protocol"), format!("unknown protocol `{other}`: expected tcp, udp, icmp or all"));
                None
            }
        },
    };
    let ports = match f.get("ports") {
        None => None,
        Some(v) => Some(read_ports(w, v, &f.field("ports"))?),
    };
    let ports = match (&protocol, ports) {
        (Some(Protocol::Tcp | Protocol::Udp), None) => {
            w.error(f.loc.clone(), f.field("ports"), "missing required field for tcp and udp rules")
                .set_help("write ports = \"443\", ports = \"8000-8100\" or ports = \"all\"");
            None
        }
        (Some(Protocol::All | Protocol::Icmp), Some(Some(_))) => {
            w.error(f.loc.clone(), f.field("ports"), "ports apply to tcp and udp rules only");
            None
        }
        (Some(Protocol::Tcp | Protocol::Udp), Some(None)) => Some((0, 65535)),
        (_, Some(p)) => p,
        (_, None) => None,
    };
    let mut cidrs = Vec::new();
    if let Some(c) = f.get("cidr") {
        for s in w.strings(c, &f.field("cidr"), true) {
            match s.parse::<ipnet::IpNet>() {
                Ok(net) if net.trunc() == net => cidrs.push(net),
                Ok(net) => {
                    w.error(s.loc.clone(), f.field("cidr"), format!("`{}` has host bits set", s.value)).set_help(format!("did you mean `{}`?", net.trunc()))
                }
                Err(_) => w
                    .error(s.loc.clone(), f.field("cidr"), format!("`{}` is not a CIDR block", s.value))
                    .set_help("write an address and prefix length, e.g. 10.0.0.0/16 or 0.0.0.0/0"),
            }
        }
    }
    let groups = match f.get(peer) {
        Some(v) => w.strings(v, &f.field(peer), true),
        None => Vec::new(),
    };
    if f.get("cidr").is_none() && groups.is_empty() {
        w.error(f.loc.clone(), path, format!("a rule needs `cidr` or `{peer}`"));
    }
    Some(Rule { loc: f.loc.clone(), protocol: protocol?, ports, cidrs, groups })
}

/// `"80"`, `80`, `"8000-8100"` or `"all"` (`Some(None)`).
fn read_ports(w: &mut Walker<'_>, v: &Value<'_>, field: &str) -> Option<Option<(u16, u16)>> {
    let loc = w.loc(v);
    let text = match v.get_ref() {
        toml::de::DeValue::Integer(i) => i.as_str().to_string(),
        toml::de::DeValue::String(s) => s.to_string(),
        other => {
            w.error(loc, field, format!("expected a port or range such as \"443\" or \"8000-8100\", found {}", other.type_str()));
            return None;
        }
    };
    if text == "all" {
        return Some(None);
    }
    let port = |s: &str| s.trim().parse::<u32>().ok().filter(|p| (1..=65535).contains(p)).map(|p| p as u16);
    let range = match text.split_once('-') {
        Some((a, b)) => port(a).zip(port(b)),
        None => port(&text).map(|p| (p, p)),
    };
    match range {
        Some((a, b)) if a <= b => Some(Some((a, b))),
        _ => {
            w.error(loc, field, format!("`{text}` is not a port (1-65535) or a range `from-to`"));
            None
        }
    }
}

fn read_image(w: &mut Walker<'_>, v: &Value<'_>, path: &str) -> Option<Image> {
    let f = w.fields(v, path, &["id", "owners", "name"])?;
    let id = w.opt_string(&f, "id");
    let owners = w.opt_strings(&f, "owners");
    let name = w.opt_string(&f, "name");
    match (id, name) {
        (Some(id), None) if owners.is_empty() => {
            if !id.starts_with("ami-") {
                w.error(id.loc.clone(), f.field("id"), format!("`{}` is not an image id (ami-...)", id.value));
            }
            Some(Image::Id { loc: f.loc.clone(), id: id.value })
        }
        (None, Some(name)) => {
            Some(Image::Lookup { loc: f.loc.clone(), owners: if owners.is_empty() { vec!["self".into()] } else { plain(owners) }, name: name.value })
        }
        _ => {
            w.error(f.loc.clone(), path, "an image is either `id = \"ami-...\"` or `name` (a pattern) with optional `owners`");
            None
        }
    }
}

fn read_pool(w: &mut Walker<'_>, v: &Value<'_>, path: &str) -> Option<Pool> {
    let f = w.fields(
        v,
        path,
        &[
            "image",
            "instance_type",
            "security_groups",
            "key_pair",
            "bootstrap",
            "min",
            "max",
            "desired",
            "cpu_target",
            "health_check",
            "refresh",
            "zones",
            "subnets",
            "tags",
        ],
    )?;
    let image = w.req_string(&f, "image");
    let instance_type = w.req_string(&f, "instance_type");
    let security_groups = w.opt_strings(&f, "security_groups");
    let key_pair = w.opt_string(&f, "key_pair").map(|k| k.value);
    let bootstrap = w.opt_string(&f, "bootstrap");
    let min = w.req_int(&f, "min", 0..=10_000);
    let max = w.req_int(&f, "max", 0..=10_000);
    let desired = w.opt_int(&f, "desired", 0..=10_000);
    let cpu_target = w.opt_int(&f, "cpu_target", 1..=100);
    let health_check = match f.get("health_check") {
        None => PoolHealthCheck { kind: "EC2".into(), grace_seconds: 300 },
        Some(v) => {
            let p = f.field("health_check");
            let h = w.fields(v, &p, &["type", "grace_seconds"])?;
            let kind = match w.opt_string(&h, "type") {
                None => "EC2".to_string(),
                Some(t) if matches!(t.to_ascii_uppercase().as_str(), "EC2" | "ELB") => t.to_ascii_uppercase(),
                Some(t) => {
                    w.error(t.loc.clone(), h.field("type"), format!("`{}` is not a health check type: expected EC2 or ELB", t.value));
                    "EC2".to_string()
                }
            };
            PoolHealthCheck { kind, grace_seconds: u32_of(w.opt_int(&h, "grace_seconds", 0..=7200)).unwrap_or(300) }
        }
    };
    let refresh = match f.get("refresh") {
        None => Refresh { min_healthy_percent: 90, warmup_seconds: None, auto_rollback: true },
        Some(v) => {
            let p = f.field("refresh");
            let r = w.fields(v, &p, &["min_healthy_percent", "warmup_seconds", "auto_rollback"])?;
            Refresh {
                min_healthy_percent: u32_of(w.opt_int(&r, "min_healthy_percent", 0..=100)).unwrap_or(90),
                warmup_seconds: u32_of(w.opt_int(&r, "warmup_seconds", 0..=3600)),
                auto_rollback: w.opt_bool(&r, "auto_rollback").unwrap_or(true),
            }
        }
    };
    let zones = plain(w.opt_strings(&f, "zones"));
    let subnets = plain(w.opt_strings(&f, "subnets"));
    let tags = tags(w, &f);
    let (min, max) = (min?, max?);
    if min.value > max.value {
        w.error(min.loc.clone(), f.field("min"), format!("min ({}) is greater than max ({})", min.value, max.value));
    }
    if let Some(d) = &desired
        && (d.value < min.value || d.value > max.value)
    {
        w.error(d.loc.clone(), f.field("desired"), format!("desired ({}) is outside min..max ({}..{})", d.value, min.value, max.value));
    }
    Some(Pool {
        loc: f.loc.clone(),
        image: image?,
        instance_type: instance_type?.value,
        security_groups,
        key_pair,
        bootstrap,
        bootstrap_text: None,
        min: min.value as u32,
        max: max.value as u32,
        desired: u32_of(desired),
        cpu_target: u32_of(cpu_target),
        health_check,
        refresh,
        zones,
        subnets,
        tags,
    })
}

fn read_load_balancer(w: &mut Walker<'_>, v: &Value<'_>, path: &str) -> Option<LoadBalancer> {
    let f = w.fields(
        v,
        path,
        &[
            "name",
            "pool",
            "scheme",
            "security_groups",
            "listeners",
            "health_check",
            "cross_zone",
            "idle_timeout",
            "connection_draining",
            "zones",
            "subnets",
            "tags",
        ],
    )?;
    let name = w.opt_string(&f, "name");
    let pool = w.opt_string(&f, "pool");
    let internal = match w.opt_string(&f, "scheme") {
        None => false,
        Some(s) if s.value == "internet-facing" => false,
        Some(s) if s.value == "internal" => true,
        Some(s) => {
            w.error(s.loc.clone(), f.field("scheme"), format!("`{}` is not a scheme: expected internet-facing or internal", s.value));
            false
        }
    };
    let security_groups = w.opt_strings(&f, "security_groups");
    let mut listeners = Vec::new();
    let mut ports: BTreeMap<u16, Loc> = BTreeMap::new();
    if let Some(v) = w.required(&f, "listeners") {
        let field = f.field("listeners");
        for (p, item) in w.tables(v, &field) {
            let Some(l) = read_listener(w, item, &p) else { continue };
            if let Some(first) = ports.get(&l.port) {
                let first = first.clone();
                w.diags.push(
                    Diagnostic::new(l.loc.clone(), format!("{p}.port"), format!("two listeners on port {}", l.port)).help(format!("the other is at {first}")),
                );
            }
            ports.insert(l.port, l.loc.clone());
            listeners.push(l);
        }
        if listeners.is_empty() && v.get_ref().as_array().is_some_and(|a| a.is_empty()) {
            w.error(w.loc(v), field, "a load balancer needs at least one listener");
        }
    }
    let health_check = match f.get("health_check") {
        None => None,
        Some(v) => {
            let p = f.field("health_check");
            let h = w.fields(v, &p, &["target", "interval", "timeout", "healthy", "unhealthy"])?;
            let target = w.req_string(&h, "target");
            if let Some(t) = &target
                && !valid_health_target(t)
            {
                w.error(t.loc.clone(), h.field("target"), format!("`{}` is not a health check target", t.value))
                    .set_help("write PROTOCOL:PORT for TCP and SSL, PROTOCOL:PORT/PATH for HTTP and HTTPS, e.g. HTTP:80/healthz");
            }
            let interval = w.opt_int(&h, "interval", 5..=300).map_or(30, |n| n.value as u32);
            let timeout = w.opt_int(&h, "timeout", 2..=60).map_or(5, |n| n.value as u32);
            if timeout >= interval {
                w.error(h.loc.clone(), h.field("timeout"), format!("timeout ({timeout}s) must be less than interval ({interval}s)"));
            }
            Some(LbHealthCheck {
                target: target?.value,
                interval,
                timeout,
                healthy: w.opt_int(&h, "healthy", 2..=10).map_or(10, |n| n.value as u32),
                unhealthy: w.opt_int(&h, "unhealthy", 2..=10).map_or(2, |n| n.value as u32),
            })
        }
    };
    let cross_zone = w.opt_bool(&f, "cross_zone").unwrap_or(true);
    let idle_timeout = u32_of(w.opt_int(&f, "idle_timeout", 1..=4000)).unwrap_or(60);
    let connection_draining = u32_of(w.opt_int(&f, "connection_draining", 0..=3600)).unwrap_or(300);
    let zones = plain(w.opt_strings(&f, "zones"));
    let subnets = plain(w.opt_strings(&f, "subnets"));
    if !zones.is_empty() && !subnets.is_empty() {
        w.error(f.loc.clone(), path, "give either `zones` or `subnets`, not both");
    }
    let tags = tags(w, &f);
    Some(LoadBalancer {
        loc: f.loc.clone(),
        name,
        pool,
        internal,
        security_groups,
        listeners,
        health_check,
        cross_zone,
        idle_timeout,
        connection_draining,
        zones,
        subnets,
        tags,
    })
}

fn valid_health_target(t: &str) -> bool {
    let Some((proto, rest)) = t.split_once(':') else { return false };
    let (port, path) = match rest.split_once('/') {
        Some((p, path)) => (p, Some(path)),
        None => (rest, None),
    };
    let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
    match proto {
        "HTTP" | "HTTPS" => port_ok && path.is_some(),
        "TCP" | "SSL" => port_ok && path.is_none(),
        _ => false,
    }
}

fn read_listener(w: &mut Walker<'_>, v: &Value<'_>, path: &str) -> Option<Listener> {
    let f = w.fields(v, path, &["port", "protocol", "instance_port", "instance_protocol", "certificate"])?;
    let port = w.req_int(&f, "port", 1..=65535);
    let instance_port = w.req_int(&f, "instance_port", 1..=65535);
    let protocol = |w: &mut Walker<'_>, key: &str| {
        let p = w.opt_string(&f, key)?;
        let upper = p.to_ascii_uppercase();
        if matches!(upper.as_str(), "HTTP" | "HTTPS" | "TCP" | "SSL") {
            Some(upper)
        } else {
            w.error(p.loc.clone(), f.field(key), format!("`{}` is not a listener protocol: expected http, https, tcp or ssl", p.value));
            None
        }
    };
    let proto = protocol(w, "protocol");
    if f.get("protocol").is_none() {
        w.required(&f, "protocol");
    }
    let instance_protocol = protocol(w, "instance_protocol");
    let certificate = w.opt_string(&f, "certificate");
    let proto = proto?;
    let secure = matches!(proto.as_str(), "HTTPS" | "SSL");
    match &certificate {
        None if secure => {
            w.error(f.loc.clone(), f.field("certificate"), format!("an {} listener needs a certificate", proto.to_ascii_lowercase()))
                .set_help("set certificate to an ACM certificate ARN or an IAM server certificate ARN");
        }
        Some(c) if !secure => {
            w.error(
                c.loc.clone(),
                f.field("certificate"),
                format!("a certificate is only used by https and ssl listeners, not {}", proto.to_ascii_lowercase()),
            );
        }
        Some(c) if !c.starts_with("arn:") => {
            w.error(c.loc.clone(), f.field("certificate"), format!("`{}` is not a certificate ARN", c.value));
        }
        _ => {}
    }
    // AWS's default back-end protocol: HTTP behind HTTP(S) listeners, TCP behind TCP/SSL ones.
    let instance_protocol = instance_protocol.unwrap_or_else(|| if matches!(proto.as_str(), "HTTP" | "HTTPS") { "HTTP".into() } else { "TCP".into() });
    let http_front = matches!(proto.as_str(), "HTTP" | "HTTPS");
    let http_back = matches!(instance_protocol.as_str(), "HTTP" | "HTTPS");
    if http_front != http_back {
        w.error(f.loc.clone(), f.field("instance_protocol"), format!("{proto} listeners cannot forward to {instance_protocol} instances"))
            .set_help("pair http/https with http/https, and tcp/ssl with tcp/ssl");
    }
    Some(Listener {
        loc: f.loc.clone(),
        port: port?.value as u16,
        protocol: proto,
        instance_port: instance_port?.value as u16,
        instance_protocol,
        certificate: certificate.map(|c| c.value),
    })
}

fn read_db_parameter_group(w: &mut Walker<'_>, v: &Value<'_>, path: &str) -> Option<DbParameterGroup> {
    let f = w.fields(v, path, &["family", "description", "parameters", "tags"])?;
    let family = w.req_string(&f, "family");
    let description = w.opt_string(&f, "description").map(|d| d.value);
    let parameters = match f.get("parameters") {
        Some(v) => w.string_map(v, &f.field("parameters")).into_iter().map(|(k, v)| (k, v.value)).collect(),
        None => BTreeMap::new(),
    };
    let tags = tags(w, &f);
    Some(DbParameterGroup { loc: f.loc.clone(), family: family?.value, description, parameters, tags })
}

fn read_database(w: &mut Walker<'_>, v: &Value<'_>, path: &str) -> Option<Database> {
    let f = w.fields(
        v,
        path,
        &[
            "replica_of",
            "engine",
            "version",
            "class",
            "storage_gb",
            "multi_az",
            "parameter_group",
            "security_groups",
            "subnet_group",
            "zone",
            "backup_retention_days",
            "maintenance_window",
            "backup_window",
            "deletion_protection",
            "username",
            "password_env",
            "apply_immediately",
            "allow_major_version_upgrade",
            "promote",
            "tags",
        ],
    )?;
    let replica_of = w.opt_string(&f, "replica_of");
    let s = |w: &mut Walker<'_>, k: &str| w.opt_string(&f, k).map(|v| v.value);
    let engine = s(w, "engine");
    let version = s(w, "version");
    let class = w.req_string(&f, "class");
    let storage_gb = u32_of(w.opt_int(&f, "storage_gb", 5..=65_536));
    let username = s(w, "username");
    let password_env = s(w, "password_env");
    if replica_of.is_some() {
        for key in ["engine", "version", "storage_gb", "username", "password_env", "backup_window"] {
            if let Some(v) = f.get(key) {
                let loc = w.loc(v);
                w.error(loc, f.field(key), "a replica takes this from its primary (replica_of); remove it");
            }
        }
    } else {
        for key in ["engine", "version", "storage_gb", "username", "password_env"] {
            w.required(&f, key);
        }
        if f.get("promote").is_some() {
            let loc = w.loc(f.get("promote").unwrap());
            w.error(loc, f.field("promote"), "only a replica (replica_of) can be promoted");
        }
    }
    let db = Database {
        loc: f.loc.clone(),
        replica_of,
        engine,
        version,
        class: class?.value,
        storage_gb,
        multi_az: w.opt_bool(&f, "multi_az").unwrap_or(false),
        parameter_group: w.opt_string(&f, "parameter_group"),
        security_groups: w.opt_strings(&f, "security_groups"),
        subnet_group: s(w, "subnet_group"),
        zone: s(w, "zone"),
        backup_retention_days: u32_of(w.opt_int(&f, "backup_retention_days", 0..=35)),
        maintenance_window: s(w, "maintenance_window"),
        backup_window: s(w, "backup_window"),
        deletion_protection: w.opt_bool(&f, "deletion_protection").unwrap_or(false),
        username,
        password_env,
        apply_immediately: w.opt_bool(&f, "apply_immediately").unwrap_or(false),
        allow_major_version_upgrade: w.opt_bool(&f, "allow_major_version_upgrade").unwrap_or(false),
        promote: w.opt_bool(&f, "promote").unwrap_or(false),
        tags: tags(w, &f),
    };
    Some(db)
}

fn read_site(w: &mut Walker<'_>, v: &Value<'_>, path: &str) -> Option<Site> {
    let f = w.fields(v, path, &["domain", "aliases", "pool", "load_balancer", "repo", "branch", "commit", "dns", "media_bucket", "notify"])?;
    let domain = w.req_string(&f, "domain");
    let aliases = plain(w.opt_strings(&f, "aliases"));
    let pool = w.req_string(&f, "pool");
    let load_balancer = w.opt_string(&f, "load_balancer");
    let repo = w.req_string(&f, "repo");
    let branch = w.opt_string(&f, "branch").map_or_else(|| "main".to_string(), |b| b.value);
    let commit = w.req_string(&f, "commit");
    if let Some(c) = &commit
        && (c.len() < 7 || c.len() > 40 || !c.chars().all(|ch| ch.is_ascii_hexdigit()))
    {
        w.error(c.loc.clone(), f.field("commit"), format!("`{}` is not a git commit (7 to 40 hex digits)", c.value));
    }
    let dns = match w.opt_string(&f, "dns") {
        None => DnsMode::Client,
        Some(d) if d.value == "client" => DnsMode::Client,
        Some(d) if d.value == "managed" => DnsMode::Managed,
        Some(d) => {
            w.error(d.loc.clone(), f.field("dns"), format!("`{}` is not a DNS mode: expected client or managed", d.value));
            DnsMode::Client
        }
    };
    let media_bucket = w.opt_string(&f, "media_bucket").map(|b| b.value);
    let notify = plain(w.opt_strings(&f, "notify"));
    Some(Site {
        loc: f.loc.clone(),
        domain: domain?.value.to_ascii_lowercase(),
        aliases: aliases.into_iter().map(|a| a.to_ascii_lowercase()).collect(),
        pool: pool?,
        load_balancer,
        repo: repo?.value,
        branch,
        commit: commit?.value,
        dns,
        media_bucket,
        notify,
    })
}
