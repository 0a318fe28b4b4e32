//! Loading: find every `*.toml` below a folder, parse each with spans, and build the typed [`Fleet`].
//!
//! A bad field never hides another problem: each reader checks every field of its table and keeps the entity
//! (a required field that is missing or mistyped gets a placeholder, and the entity is marked
//! [`Seen::incomplete`]; such a fleet is never returned, it has a diagnostic). References, and values whose
//! checks need every file read, are recorded in [`Seen`] as they are read, so `validate` checks them whether or
//! not their entity could be built.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::de::DeTable;

use super::constraints::{self, Broken, TagRules, Wildcard};
use super::diag::{Diagnostic, Diagnostics, Loc, Located, SourceFile};
use super::validate::{EntityId, Seen};
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
    let known: Vec<&str> = Table::ALL.iter().map(|t| t.name()).collect();
    for src in sources {
        let (table, errors) = DeTable::parse_recoverable(&src.text);
        for e in &errors {
            let at = e.span().map_or(0, |s| s.start);
            let mut d = Diagnostic::new(src.loc(at), "", format!("TOML syntax error: {}", e.message().trim()));
            // The parser names only the second place of a key defined twice in one file.
            if e.message().trim() == "duplicate key"
                && let Some(first) = super::keys::first_definition(&src.text, at)
            {
                d.set_help(format!("first defined at {}", src.loc(first)));
            }
            diags.push(d);
        }
        let mut w = Walker { src, diags: &mut diags, second_definition: false };
        let top = w.table_fields(table.get_ref(), src.loc(0), "", &known);
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
    super::validate::validate(&fleet, &seen, &mut diags);
    debug_assert!(seen.incomplete.is_empty() || !diags.is_empty(), "an entity kept with a placeholder has a diagnostic: {:?}", seen.incomplete);
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

fn read_top(w: &mut Walker<'_>, top: &Fields<'_, '_>, fleet: &mut Fleet, seen: &mut Seen) {
    for (key, value) in top.entries() {
        // Unknown tables were reported (with a suggestion) when the fields were opened.
        let Some(table) = Table::parse(key) else { continue };
        match table {
            Table::Fleet => {
                // A second [fleet] is reported, and what it has checked, but not used.
                let first = once(w, &mut seen.fleet, table, value);
                w.second_definition = !first;
                if let Some(s) = read_fleet(w, value)
                    && first
                {
                    fleet.settings = s;
                }
                w.second_definition = false;
            }
            Table::Network => {
                let first = once(w, &mut seen.network, table, value);
                w.second_definition = !first;
                if let Some(n) = read_network(w, value, seen)
                    && first
                {
                    fleet.network = n;
                }
                w.second_definition = false;
            }
            Table::SecurityGroup => each(w, table, value, seen, |w, v, e, seen| {
                if let Some(x) = read_security_group(w, v, e, seen)
                    && e.first
                {
                    fleet.security_groups.insert(e.name().to_string(), x);
                }
            }),
            Table::Image => each(w, table, value, seen, |w, v, e, _| {
                if let Some(x) = read_image(w, v, &e.path)
                    && e.first
                {
                    fleet.images.insert(e.name().to_string(), x);
                }
            }),
            Table::Pool => each(w, table, value, seen, |w, v, e, seen| {
                if let Some(x) = read_pool(w, v, e, seen)
                    && e.first
                {
                    fleet.pools.insert(e.name().to_string(), x);
                }
            }),
            Table::LoadBalancer => each(w, table, value, seen, |w, v, e, seen| {
                if let Some(x) = read_load_balancer(w, v, e, seen)
                    && e.first
                {
                    fleet.load_balancers.insert(e.name().to_string(), x);
                }
            }),
            Table::DbParameterGroup => each(w, table, value, seen, |w, v, e, seen| {
                if let Some(x) = read_db_parameter_group(w, v, e, seen)
                    && e.first
                {
                    fleet.db_parameter_groups.insert(e.name().to_string(), x);
                }
            }),
            Table::Database => each(w, table, value, seen, |w, v, e, seen| {
                if let Some(x) = read_database(w, v, e, seen)
                    && e.first
                {
                    fleet.databases.insert(e.name().to_string(), x);
                }
            }),
            Table::Site => each(w, table, value, seen, |w, v, e, seen| {
                if let Some(x) = read_site(w, v, e, seen)
                    && e.first
                {
                    fleet.sites.insert(e.name().to_string(), x);
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

/// The entity being read: its id, its path (`pool.web`), and whether this is its first definition.
struct Entity {
    id: EntityId,
    path: String,
    first: bool,
}

impl Entity {
    fn name(&self) -> &str {
        &self.id.1
    }

    /// Records a reference from this entity's field `key`, shown as `field`.
    fn reference(&self, seen: &mut Seen, key: &'static str, field: String, to: Table, target: &Located<String>) {
        // A security group may also be named by its id: an existing group outside the fleet (the VPC's
        // default, another team's), referred to and never managed.
        if to == Table::SecurityGroup && super::is_group_id(&target.value) {
            return;
        }
        seen.reference(&self.id, key, field, to, target);
    }
}

/// The named entities of one table (`[pool.NAME]`), each handed to `read`. A second definition of an entity is
/// reported naming both places, and read too (every field it has checked, every reference recorded), but not
/// kept.
fn each(w: &mut Walker<'_>, table: Table, value: &Value<'_>, seen: &mut Seen, mut read: impl FnMut(&mut Walker<'_>, &Value<'_>, &Entity, &mut Seen)) {
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
        let id = (table, name.clone());
        if let Some(first) = seen.entities.get(&id) {
            let first = first.clone();
            w.diags.push(Diagnostic::new(loc, &path, format!("duplicate {path}")).help(format!("first defined at {first}")));
            // Only its references and regional values join the checks across entities: its names are the
            // first definition's, and would only be reported again as duplicates.
            let mut scratch = Seen::default();
            w.second_definition = true;
            read(w, v, &Entity { id, path, first: false }, &mut scratch);
            w.second_definition = false;
            seen.refs.append(&mut scratch.refs);
            seen.zones.append(&mut scratch.zones);
            seen.acm_certificates.append(&mut scratch.acm_certificates);
            continue;
        }
        seen.entities.insert(id.clone(), loc.clone());
        check_name(w, &name, &path, loc);
        read(w, v, &Entity { id, path, first: true }, seen);
    }
}

/// Whether `name` is a valid name for the fleet or an entity: lower-case letters, digits and hyphens, not at
/// either end. Names become parts of AWS names and addresses: they are kept to what every AWS API accepts.
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') && !name.starts_with('-') && !name.ends_with('-')
}

fn check_name(w: &mut Walker<'_>, name: &str, path: &str, loc: Loc) {
    if !valid_name(name) {
        w.diags.push(Diagnostic::new(loc, path, format!("invalid name `{name}`")).help("use lower-case letters, digits and hyphens, not at the start or end"));
    }
}

/// Reports `v` if it breaks an AWS rule, as "`v` is not a valid WHAT: why", with the rule as help.
fn aws_rule(w: &mut Walker<'_>, v: &Located<String>, field: &str, what: &str, checked: Result<(), Broken>) -> bool {
    match checked {
        Ok(()) => true,
        Err(b) => {
            w.error(v.loc.clone(), field, format!("`{}` is not a valid {what}: {}", v.value, b.why)).set_help(b.help);
            false
        }
    }
}

fn u32_of(v: Option<Located<i64>>) -> Option<u32> {
    v.map(|v| v.value as u32)
}

/// A placeholder for a required string that is missing or mistyped (reported): the entity is incomplete.
fn placeholder(seen: &mut Seen, e: &Entity, f: &Fields<'_, '_>, v: Option<Located<String>>) -> Located<String> {
    v.unwrap_or_else(|| {
        seen.incomplete.insert(e.id.clone());
        Located { value: String::new(), loc: f.loc.clone() }
    })
}

fn read_fleet(w: &mut Walker<'_>, v: &Value<'_>) -> Option<FleetSettings> {
    let f = w.fields(v, "fleet", &["name", "region", "account", "dns_zone", "max_deletes", "certificate_horizon_days", "lock", "manage"])?;
    let name = w.req_string(&f, "name");
    if let Some(n) = &name {
        check_name(w, n, "fleet.name", n.loc.clone());
    }
    let region = w.req_string(&f, "region");
    if let Some(r) = &region {
        aws_rule(w, r, "fleet.region", "region name", constraints::region(r));
    }
    let account = w.opt_string(&f, "account");
    if let Some(a) = &account
        && (a.len() != 12 || !a.chars().all(|c| c.is_ascii_digit()))
    {
        w.error(a.loc.clone(), "fleet.account", format!("`{}` is not an AWS account id (12 digits)", a.value));
    }
    let dns_zone = w.opt_string(&f, "dns_zone");
    if let Some(z) = &dns_zone {
        aws_rule(w, z, "fleet.dns_zone", "DNS name", constraints::dns_name(z, Wildcard::Refused("a hosted zone has one name")));
    }
    let max_deletes = w.opt_int(&f, "max_deletes", 0..=100_000).map_or(DEFAULT_MAX_DELETES, |n| n.value as usize);
    let certificate_horizon_days = w.opt_int(&f, "certificate_horizon_days", 0..=365).map_or(DEFAULT_CERTIFICATE_HORIZON_DAYS, |n| n.value as u32);
    let lock = f.get("lock").and_then(|l| read_lock(w, l, name.as_ref().map_or("", |n| n.value.as_str())));
    let mut defaults = BTreeMap::new();
    if let Some(m) = f.get("manage")
        && let Some(tables) = w.fields(m, "fleet.manage", &MANAGED_TABLES)
    {
        for table in MANAGED_TABLES {
            if let Some(policy) = manage(w, tables.get(table), &format!("fleet.manage.{table}")) {
                defaults.insert(table.to_string(), policy);
            }
        }
    }
    // Missing values are reported; what was read is kept for the checks that need the fleet's name or region.
    Some(FleetSettings {
        name: name.map(|n| n.value).unwrap_or_default(),
        region: region.map(|r| r.value).unwrap_or_default(),
        account: account.map(|a| a.value),
        dns_zone: dns_zone.map(|z| z.value.trim_end_matches('.').to_string()),
        max_deletes,
        certificate_horizon_days,
        lock,
        manage: defaults,
    })
}

/// `[fleet.lock]`: the user's bucket (a valid bucket name), the key, and the lease as a duration from 30s
/// to 1h. `None` when the bucket is missing or invalid (reported).
fn read_lock(w: &mut Walker<'_>, v: &Value<'_>, fleet: &str) -> Option<LockSettings> {
    let f = w.fields(v, "fleet.lock", &["bucket", "key", "lease"])?;
    let bucket = w.req_string(&f, "bucket");
    let bucket_ok = bucket.as_ref().is_some_and(|b| aws_rule(w, b, "fleet.lock.bucket", "bucket name", constraints::bucket_name(b)));
    let key = w.opt_string(&f, "key");
    if let Some(k) = &key
        && (k.value.is_empty() || k.value.len() > 1024 || k.value.starts_with('/'))
    {
        w.error(k.loc.clone(), "fleet.lock.key", format!("`{}` is not a usable S3 key", k.value))
            .set_help("an S3 key is 1 to 1024 bytes; write it without a leading `/`, e.g. converge/agency.lock");
    }
    let lease = match w.opt_string(&f, "lease") {
        None => Some(crate::lock::DEFAULT_LEASE),
        Some(l) => match crate::lock::parse_duration(&l.value) {
            Ok(d) if (crate::lock::MIN_LEASE..=crate::lock::MAX_LEASE).contains(&d) => Some(d),
            Ok(_) => {
                w.error(l.loc.clone(), "fleet.lock.lease", format!("a lease of `{}` is out of range: expected 30s to 1h", l.value))
                    .set_help("the lease is renewed every third of it; the default is 2m");
                None
            }
            Err(e) => {
                w.error(l.loc.clone(), "fleet.lock.lease", e).set_help("write it as 90s, 2m or 1h");
                None
            }
        },
    };
    let key = key.map_or_else(|| crate::lock::default_key(fleet), |k| k.value);
    match (bucket, bucket_ok, lease) {
        (Some(b), true, Some(lease)) => Some(LockSettings { bucket: b.value, key, lease }),
        _ => None,
    }
}

/// `zones`: availability zones, checked against the fleet's region once every file is read.
fn zones(w: &mut Walker<'_>, f: &Fields<'_, '_>, seen: &mut Seen) -> Vec<String> {
    let zones = w.opt_strings(f, "zones");
    seen.zones.extend(zones.iter().map(|z| (f.field("zones"), z.clone())));
    plain(zones)
}

/// `subnets`: subnet ids.
fn subnets(w: &mut Walker<'_>, f: &Fields<'_, '_>) -> Vec<String> {
    let subnets = w.opt_strings(f, "subnets");
    for s in &subnets {
        aws_rule(w, s, &f.field("subnets"), "subnet id", constraints::resource_id(s, "subnet", "subnet"));
    }
    plain(subnets)
}

fn read_network(w: &mut Walker<'_>, v: &Value<'_>, seen: &mut Seen) -> Option<Network> {
    let f = w.fields(v, "network", &["vpc", "zones", "subnets"])?;
    let vpc = w.opt_string(&f, "vpc");
    if let Some(id) = &vpc {
        aws_rule(w, id, "network.vpc", "VPC id", constraints::resource_id(id, "vpc", "VPC"));
    }
    Some(Network { vpc: vpc.map(|v| v.value), zones: zones(w, &f, seen), subnets: subnets(w, &f) })
}

fn plain(v: Vec<Located<String>>) -> Vec<String> {
    v.into_iter().map(|s| s.value).collect()
}

/// `tags`: the user's tags, which converge adds `ours` of its own to, on a resource whose service follows `rules`.
fn tags(w: &mut Walker<'_>, f: &Fields<'_, '_>, rules: TagRules, ours: usize) -> Tags {
    tags_at(w, f, "tags", rules, ours)
}

/// A tag map under `key`.
fn tags_at(w: &mut Walker<'_>, f: &Fields<'_, '_>, key: &str, rules: TagRules, ours: usize) -> Tags {
    let Some(v) = f.get(key) else { return Tags::new() };
    let field = f.field(key);
    let mut out = Tags::new();
    for (k, val) in w.string_map(v, &field) {
        let key_field = format!("{field}.{k}");
        if k.starts_with("converge:") || k.starts_with("aws:") {
            let prefix = if k.starts_with("aws:") { "aws:" } else { "converge:" };
            w.error(val.loc.clone(), key_field, format!("tag keys starting with `{prefix}` are reserved"));
            continue;
        }
        aws_rule(w, &Located { value: k.clone(), loc: val.loc.clone() }, &key_field, "tag key", constraints::tag_key(&k, rules));
        aws_rule(w, &val, &key_field, "tag value", constraints::tag_value(&val, rules));
        out.insert(k, val.value);
    }
    if out.len() + ours > constraints::MAX_TAGS {
        let loc = w.loc(v);
        w.error(loc, field, format!("{} tags, and converge adds {ours}: AWS allows {} on a resource", out.len(), constraints::MAX_TAGS))
            .set_help(format!("keep it to {} tags", constraints::MAX_TAGS - ours));
    }
    out
}

/// `adopt` and `manage`: how converge takes the entity's objects.
fn policy(w: &mut Walker<'_>, f: &Fields<'_, '_>) -> Policy {
    Policy { adopt: w.opt_bool(f, "adopt").unwrap_or(false), manage: manage(w, f.get("manage"), &f.field("manage")), reconcile_every: reconcile_every(w, f) }
}

/// An SNS topic's ARN (`notify_topic`, an alarm's `topic`).
fn sns_topic(w: &mut Walker<'_>, f: &Fields<'_, '_>, key: &str) -> Option<String> {
    let t = w.opt_string(f, key)?;
    aws_rule(w, &t, &f.field(key), "SNS topic ARN", constraints::sns_topic_arn(&t.value)).then_some(t.value)
}

/// `hostname = "db.sites.internal"`: the name every site reaches the database by, lower case.
fn hostname(w: &mut Walker<'_>, f: &Fields<'_, '_>) -> Option<Located<String>> {
    let h = w.opt_string(f, "hostname")?;
    let ok = aws_rule(w, &h, &f.field("hostname"), "DNS name", constraints::dns_name(&h.value, Wildcard::Refused("a database has one hostname")));
    ok.then(|| Located { value: super::dns_name(&h.value), loc: h.loc })
}

/// `reconcile_every = "1h"`: how often the loop acts on the entity's objects (default: every pass).
fn reconcile_every(w: &mut Walker<'_>, f: &Fields<'_, '_>) -> Option<std::time::Duration> {
    let every = w.opt_string(f, "reconcile_every")?;
    match crate::lock::parse_duration(&every.value) {
        Ok(d) if !d.is_zero() => Some(d),
        Ok(_) => {
            w.error(every.loc, f.field("reconcile_every"), "`0s` is no period").set_help("leave it out to reconcile at every pass of the loop");
            None
        }
        Err(e) => {
            w.error(every.loc, f.field("reconcile_every"), e).set_help("write it as 90s, 30m or 6h");
            None
        }
    }
}

/// A management policy: `full`, `observe` or `no-delete`.
fn manage(w: &mut Walker<'_>, v: Option<&Value<'_>>, field: &str) -> Option<Manage> {
    let v = v?;
    let loc = w.loc(v);
    let Some(text) = v.get_ref().as_str() else {
        w.error(loc, field, format!("expected a string, found {}", v.get_ref().type_str()));
        return None;
    };
    let found = Manage::parse(text);
    if found.is_none() {
        w.error(loc, field, format!("`{text}` is not a management policy: expected {}", Manage::NAMES.join(", ")));
    }
    found
}

/// Whether `key` is written with something in it (not absent, not `[]`).
fn written(f: &Fields<'_, '_>, key: &str) -> bool {
    f.get(key).is_some_and(|v| !v.get_ref().as_array().is_some_and(|a| a.is_empty()))
}

fn read_security_group(w: &mut Walker<'_>, v: &Value<'_>, e: &Entity, seen: &mut Seen) -> Option<SecurityGroup> {
    let f = w.fields(v, &e.path, &["name", "description", "ingress", "egress", "tags", "adopt", "manage", "reconcile_every"])?;
    let name = w.opt_string(&f, "name");
    if let Some(n) = &name {
        aws_rule(w, n, &f.field("name"), "security group name", constraints::security_group_name(n));
        seen.names.insert(e.id.clone(), n.clone());
    }
    let description = w.opt_string(&f, "description");
    if let Some(d) = &description {
        aws_rule(w, d, &f.field("description"), "security group description", constraints::security_group_description(d));
    }
    let mut rules = |w: &mut Walker<'_>, key: &'static str, peer: &'static str| -> Option<Vec<Rule>> {
        let v = f.get(key)?;
        let field = f.field(key);
        let peers = Peers { key: if key == "ingress" { "ingress.from" } else { "egress.to" }, name: peer, field: format!("{}.{key}.{peer}", e.path) };
        Some(w.tables(v, &field).into_iter().filter_map(|(p, item)| read_rule(w, item, &p, e, &peers, seen)).collect())
    };
    let ingress = rules(w, "ingress", "from").unwrap_or_default();
    let egress = rules(w, "egress", "to");
    one_description_per_peer(w, &ingress, &f.field("ingress"));
    one_description_per_peer(w, egress.as_deref().unwrap_or_default(), &f.field("egress"));
    let tags = tags(w, &f, TagRules::Any, 2);
    let policy = policy(w, &f);
    Some(SecurityGroup { loc: f.loc.clone(), name: name.map(|n| n.value), description: description.map(|d| d.value), ingress, egress, tags, policy })
}

/// Two rules of a direction naming the same traffic and peer must agree on its description: EC2 keeps one
/// per rule and peer.
fn one_description_per_peer(w: &mut Walker<'_>, rules: &[Rule], field: &str) {
    type Atom<'r> = (&'r Protocol, Option<(u16, u16)>, Option<(u8, Option<u8>)>, String);
    let mut seen: BTreeMap<Atom, (usize, Option<&str>)> = BTreeMap::new();
    for (i, r) in rules.iter().enumerate() {
        let peers = r.cidrs.iter().map(|c| c.to_string()).chain(r.groups.iter().map(|g| g.value.clone()));
        for peer in peers {
            let atom = (&r.protocol, r.ports, r.icmp, peer.clone());
            match seen.get(&atom) {
                Some(&(j, d)) if d != r.description.as_deref() => {
                    let e = w.error(
                        r.loc.clone(),
                        format!("{field}[{i}]"),
                        format!("`{peer}` is in {field}[{j}] too, for the same traffic, with another description"),
                    );
                    e.set_help("EC2 keeps one description per rule and peer: give both the same one, or write the peer once");
                }
                Some(_) => {}
                None => {
                    seen.insert(atom, (i, r.description.as_deref()));
                }
            }
        }
    }
}

/// A rule's peer groups: `from` (ingress) or `to` (egress), the reference's key and its field as shown.
struct Peers {
    key: &'static str,
    name: &'static str,
    field: String,
}

/// A rule: every field is checked; the rule is returned only when its protocol and ports are valid (its
/// groups are recorded as references either way).
fn read_rule(w: &mut Walker<'_>, v: &Value<'_>, path: &str, e: &Entity, peers: &Peers, seen: &mut Seen) -> Option<Rule> {
    let peer = peers.name;
    let f = w.fields(v, path, &["ports", "protocol", "icmp_type", "icmp_code", "cidr", peer, "description"])?;
    let description = w.opt_string(&f, "description");
    if let Some(d) = &description {
        aws_rule(w, d, &f.field("description"), "rule description", constraints::rule_description(d));
    }
    let protocol = match f.get("protocol") {
        None => Some(Protocol::Tcp),
        Some(v) => read_protocol(w, v, &f.field("protocol")),
    };
    let icmp = read_icmp(w, &f, protocol.as_ref());
    // `None`: a bad value (reported); `Some(None)`: not written.
    let ports = match f.get("ports") {
        None => Some(None),
        Some(v) => read_ports(w, v, &f.field("ports")).map(Some),
    };
    let ports = match (&protocol, ports) {
        (Some(Protocol::Tcp | Protocol::Udp), Some(None)) => {
            w.error(f.loc.clone(), f.field("ports"), "missing required field for tcp and udp rules")
                .set_help("write ports = \"443\", ports = \"8000-8100\" or ports = \"all\"");
            None
        }
        (Some(p), Some(Some(Some(_)))) if !matches!(p, Protocol::Tcp | Protocol::Udp) => {
            let e = w.error(f.loc.clone(), f.field("ports"), "ports apply to tcp and udp rules only");
            if matches!(p, Protocol::Icmp | Protocol::Icmpv6) {
                e.set_help("an ICMP rule takes icmp_type and icmp_code");
            }
            None
        }
        (Some(Protocol::Tcp | Protocol::Udp), Some(Some(None))) => Some(Some((0, 65535))),
        (Some(_), Some(Some(p))) => Some(p),
        (Some(_), Some(None)) => Some(None),
        (None, _) | (_, None) => None,
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
    for g in &groups {
        e.reference(seen, peers.key, peers.field.clone(), Table::SecurityGroup, g);
    }
    if !written(&f, "cidr") && !written(&f, peer) {
        w.error(f.loc.clone(), path, format!("a rule needs `cidr` or `{peer}`"));
    }
    Some(Rule { loc: f.loc.clone(), protocol: protocol?, ports: ports?, icmp: icmp?, cidrs, groups, description: description.map(|d| d.value) })
}

/// `tcp`, `udp`, `icmp`, `icmpv6`, `all` (or `-1`), or an IP protocol number, as a string or an integer.
/// The numbers of the named protocols (6, 17, 1, 58) are those protocols, as AWS reports them.
fn read_protocol(w: &mut Walker<'_>, v: &Value<'_>, field: &str) -> Option<Protocol> {
    let loc = w.loc(v);
    let text = text_or_integer(w, v, field, "a protocol such as \"tcp\" or 50")?.to_ascii_lowercase();
    let protocol = match text.as_str() {
        "tcp" | "6" => Protocol::Tcp,
        "udp" | "17" => Protocol::Udp,
        "icmp" | "1" => Protocol::Icmp,
        "icmpv6" | "58" => Protocol::Icmpv6,
        "all" | "-1" => Protocol::All,
        n => match n.parse::<u8>() {
            Ok(n) if n.to_string() == text => Protocol::Number(n),
            _ => {
                w.error(loc, field, format!("unknown protocol `{text}`: expected tcp, udp, icmp, icmpv6, all or an IP protocol number (0-255)"));
                return None;
            }
        },
    };
    Some(protocol)
}

/// An ICMP rule's `icmp_type` and `icmp_code` (each 0-255, or -1 for all, as EC2 writes it); `Some(None)` for
/// every type. Every type takes every code; other protocols take neither.
fn read_icmp(w: &mut Walker<'_>, f: &Fields<'_, '_>, protocol: Option<&Protocol>) -> Option<Option<(u8, Option<u8>)>> {
    let icmp = matches!(protocol, Some(Protocol::Icmp | Protocol::Icmpv6));
    let mut valid = true;
    let mut read = |w: &mut Walker<'_>, key: &str| -> Option<Located<i64>> {
        let v = f.get(key)?;
        if protocol.is_some() && !icmp {
            w.error(w.loc(v), f.field(key), format!("{key} applies to icmp and icmpv6 rules only"));
            valid = false;
            return None;
        }
        let n = w.int(v, &f.field(key), -1..=255);
        valid &= n.is_some();
        n.filter(|n| n.value >= 0)
    };
    let (kind, code) = (read(w, "icmp_type"), read(w, "icmp_code"));
    let found = match (kind, code) {
        (Some(t), code) => Some((t.value as u8, code.map(|c| c.value as u8))),
        (None, Some(c)) => {
            w.error(c.loc, f.field("icmp_code"), "an ICMP code belongs to one ICMP type").set_help("write icmp_type as well (every type takes every code)");
            return None;
        }
        (None, None) => None,
    };
    valid.then_some(found)
}

/// A value written as a string or an integer (`ports = 443`, `protocol = 50`), as its text; anything else is
/// an error saying `expected`.
fn text_or_integer(w: &mut Walker<'_>, v: &Value<'_>, field: &str, expected: &str) -> Option<String> {
    match v.get_ref() {
        toml::de::DeValue::Integer(i) => Some(i.as_str().to_string()),
        toml::de::DeValue::String(s) => Some(s.to_string()),
        other => {
            let found = other.type_str();
            w.error(w.loc(v), field, format!("expected {expected}, found {found}"));
            None
        }
    }
}

/// `"80"`, `80`, `"8000-8100"` or `"all"` (`Some(None)`).
fn read_ports(w: &mut Walker<'_>, v: &Value<'_>, field: &str) -> Option<Option<(u16, u16)>> {
    let loc = w.loc(v);
    let text = text_or_integer(w, v, field, "a port or range such as \"443\" or \"8000-8100\"")?;
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
    if let Some(i) = &id {
        aws_rule(w, i, &f.field("id"), "image id", constraints::resource_id(i, "ami", "image"));
    }
    for o in &owners {
        aws_rule(w, o, &f.field("owners"), "image owner", constraints::image_owner(o));
    }
    match (id, name) {
        (Some(id), None) if owners.is_empty() => Some(Image::Id { loc: f.loc.clone(), id: id.value }),
        (None, Some(name)) => {
            Some(Image::Lookup { loc: f.loc.clone(), owners: if owners.is_empty() { vec!["self".into()] } else { plain(owners) }, name: name.value })
        }
        _ => {
            w.error(f.loc.clone(), path, "an image is either `id = \"ami-...\"` or `name` (a pattern) with optional `owners`");
            None
        }
    }
}

fn read_pool(w: &mut Walker<'_>, v: &Value<'_>, e: &Entity, seen: &mut Seen) -> Option<Pool> {
    let f = w.fields(
        v,
        &e.path,
        &[
            "name",
            "template_name",
            "image",
            "instance_type",
            "security_groups",
            "key_pair",
            "bootstrap",
            "min",
            "max",
            "desired",
            "cpu_target",
            "notify_topic",
            "alarms",
            "health_check",
            "termination_policies",
            "refresh",
            "zones",
            "subnets",
            "tags",
            "instance_tags",
            "adopt",
            "manage",
            "reconcile_every",
        ],
    )?;
    let aws_name = |w: &mut Walker<'_>, key: &str, what: &str| {
        let n = w.opt_string(&f, key)?;
        aws_rule(w, &n, &f.field(key), what, constraints::launch_template_name(&n));
        Some(n.value)
    };
    let name = aws_name(w, "name", "auto-scaling group name");
    let template_name = aws_name(w, "template_name", "launch template name");
    let image = w.req_string(&f, "image");
    if let Some(i) = &image {
        e.reference(seen, "image", f.field("image"), Table::Image, i);
    }
    let instance_type = w.req_string(&f, "instance_type");
    if let Some(t) = &instance_type {
        aws_rule(w, t, &f.field("instance_type"), "EC2 instance type", constraints::instance_type(t));
    }
    let security_groups = w.opt_strings(&f, "security_groups");
    for g in &security_groups {
        e.reference(seen, "security_groups", f.field("security_groups"), Table::SecurityGroup, g);
    }
    let key_pair = w.opt_string(&f, "key_pair");
    if let Some(k) = &key_pair {
        aws_rule(w, k, &f.field("key_pair"), "key pair name", constraints::key_pair_name(k));
    }
    let bootstrap = w.opt_string(&f, "bootstrap");
    let min = w.req_int(&f, "min", 0..=10_000);
    let max = w.req_int(&f, "max", 0..=10_000);
    let desired = w.opt_int(&f, "desired", 0..=10_000);
    let cpu_target = w.opt_int(&f, "cpu_target", 1..=100);
    let notify_topic = sns_topic(w, &f, "notify_topic");
    let alarms = alarms(w, &f, "cpu_above");
    let p = f.field("health_check");
    let health_check = match f.get("health_check").and_then(|v| w.fields(v, &p, &["type", "grace_seconds"])) {
        None => PoolHealthCheck { kind: "EC2".into(), grace_seconds: 300 },
        Some(h) => {
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
    let termination_policies = termination_policies(w, &f);
    let p = f.field("refresh");
    let refresh = match f.get("refresh").and_then(|v| w.fields(v, &p, &["min_healthy_percent", "warmup_seconds", "auto_rollback"])) {
        None => Refresh { min_healthy_percent: 90, warmup_seconds: None, auto_rollback: true },
        Some(r) => Refresh {
            min_healthy_percent: u32_of(w.opt_int(&r, "min_healthy_percent", 0..=100)).unwrap_or(90),
            warmup_seconds: u32_of(w.opt_int(&r, "warmup_seconds", 0..=3600)),
            auto_rollback: w.opt_bool(&r, "auto_rollback").unwrap_or(true),
        },
    };
    let zones = zones(w, &f, seen);
    let subnets = subnets(w, &f);
    // On the group, the template and every instance, which also gets a `Name`.
    let tags = tags(w, &f, TagRules::Any, 3);
    let instance_tags = f.get("instance_tags").map(|_| tags_at(w, &f, "instance_tags", TagRules::Any, 0));
    if let (Some(min), Some(max)) = (&min, &max) {
        if min.value > max.value {
            w.error(min.loc.clone(), f.field("min"), format!("min ({}) is greater than max ({})", min.value, max.value));
        }
        if let Some(d) = &desired
            && (d.value < min.value || d.value > max.value)
        {
            w.error(d.loc.clone(), f.field("desired"), format!("desired ({}) is outside min..max ({}..{})", d.value, min.value, max.value));
        }
    }
    if min.is_none() || max.is_none() {
        seen.incomplete.insert(e.id.clone());
    }
    Some(Pool {
        loc: f.loc.clone(),
        name,
        template_name,
        image: placeholder(seen, e, &f, image),
        instance_type: placeholder(seen, e, &f, instance_type).value,
        security_groups,
        key_pair: key_pair.map(|k| k.value),
        bootstrap,
        bootstrap_text: None,
        min: u32_of(min).unwrap_or(0),
        max: u32_of(max).unwrap_or(0),
        desired: u32_of(desired),
        cpu_target: u32_of(cpu_target),
        notify_topic,
        alarms,
        health_check,
        termination_policies,
        refresh,
        zones,
        subnets,
        tags,
        instance_tags,
        policy: policy(w, &f),
    })
}

/// The termination policies AWS names; a custom one is a Lambda function's ARN.
const TERMINATION_POLICIES: &[&str] =
    &["Default", "AllocationStrategy", "OldestLaunchTemplate", "OldestLaunchConfiguration", "ClosestToNextInstanceHour", "NewestInstance", "OldestInstance"];

/// A pool's `termination_policies`: AWS's names (as AWS spells them) or Lambda ARNs, each once.
fn termination_policies(w: &mut Walker<'_>, f: &Fields<'_, '_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in w.opt_strings(f, "termination_policies") {
        let field = f.field("termination_policies");
        if out.contains(&p.value) {
            w.error(p.loc.clone(), field, format!("`{}` is listed twice", p.value));
        } else if TERMINATION_POLICIES.contains(&p.value.as_str()) || p.value.starts_with("arn:aws:lambda:") {
            out.push(p.value);
        } else {
            let e = w.error(p.loc.clone(), field, format!("`{}` is not a termination policy", p.value));
            match did_you_mean(&p.value, TERMINATION_POLICIES.iter().copied()) {
                Some(near) => e.set_help(format!("did you mean `{near}`?")),
                None => e.set_help(format!("expected one of {}, or a Lambda function's ARN", TERMINATION_POLICIES.join(", "))),
            };
        }
    }
    out
}

fn read_load_balancer(w: &mut Walker<'_>, v: &Value<'_>, e: &Entity, seen: &mut Seen) -> Option<LoadBalancer> {
    let f = w.fields(
        v,
        &e.path,
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
            "alarms",
            "adopt",
            "manage",
            "reconcile_every",
        ],
    )?;
    let name = w.opt_string(&f, "name");
    if let Some(n) = &name {
        seen.names.insert(e.id.clone(), n.clone());
    }
    let pool = w.opt_string(&f, "pool");
    if let Some(p) = &pool {
        e.reference(seen, "pool", f.field("pool"), Table::Pool, p);
    }
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
    for g in &security_groups {
        e.reference(seen, "security_groups", f.field("security_groups"), Table::SecurityGroup, g);
    }
    if !written(&f, "security_groups") && !w.second_definition {
        w.error(f.loc.clone(), f.field("security_groups"), "a load balancer needs at least one security group")
            .set_help("without one, AWS attaches the VPC's default group, which converge does not manage");
    }
    let mut listeners = Vec::new();
    let mut ports: BTreeMap<u16, Loc> = BTreeMap::new();
    if let Some(v) = w.required(&f, "listeners") {
        let field = f.field("listeners");
        for (p, item) in w.tables(v, &field) {
            let (port, listener) = read_listener(w, item, &p, seen);
            // Checked for every listener with a valid port, complete or not.
            if let Some((port, loc)) = port {
                if let Some(first) = ports.get(&port) {
                    let first = first.clone();
                    w.diags.push(
                        Diagnostic::new(loc.clone(), format!("{p}.port"), format!("two listeners on port {port}")).help(format!("the other is at {first}")),
                    );
                }
                ports.insert(port, loc);
            }
            listeners.extend(listener);
        }
        if listeners.is_empty() && v.get_ref().as_array().is_some_and(|a| a.is_empty()) {
            w.error(w.loc(v), field, "a load balancer needs at least one listener");
        }
    }
    let p = f.field("health_check");
    let health_check = match f.get("health_check").and_then(|v| w.fields(v, &p, &["target", "interval", "timeout", "healthy", "unhealthy"])) {
        None => None,
        Some(h) => {
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
            let healthy = w.opt_int(&h, "healthy", 2..=10).map_or(10, |n| n.value as u32);
            let unhealthy = w.opt_int(&h, "unhealthy", 2..=10).map_or(2, |n| n.value as u32);
            target.map(|t| LbHealthCheck { target: t.value, interval, timeout, healthy, unhealthy })
        }
    };
    let cross_zone = w.opt_bool(&f, "cross_zone").unwrap_or(true);
    let idle_timeout = u32_of(w.opt_int(&f, "idle_timeout", 1..=4000)).unwrap_or(60);
    let connection_draining = u32_of(w.opt_int(&f, "connection_draining", 0..=3600)).unwrap_or(300);
    let zones = zones(w, &f, seen);
    let subnets = subnets(w, &f);
    if !zones.is_empty() && !subnets.is_empty() {
        w.error(f.loc.clone(), &e.path, "give either `zones` or `subnets`, not both");
    }
    let tags = tags(w, &f, TagRules::Restricted, 2);
    let alarms = alarms(w, &f, "unhealthy_hosts_above");
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
        alarms,
        policy: policy(w, &f),
    })
}

/// `alarms = { <threshold> = N, topic = "arn:aws:sns:..." }`: the one threshold the table's tier has.
fn alarms(w: &mut Walker<'_>, f: &Fields<'_, '_>, threshold: &str) -> Option<super::Alarms> {
    let v = f.get("alarms")?;
    let a = w.fields(v, &f.field("alarms"), &[threshold, "topic"])?;
    let topic = sns_topic(w, &a, "topic");
    if topic.is_none() && a.get("topic").is_none() {
        w.required(&a, "topic");
    }
    let range = if threshold == "cpu_above" { 1..=99 } else { 0..=1000 };
    let limit = u32_of(w.opt_int(&a, threshold, range));
    if limit.is_none() && a.get(threshold).is_none() {
        w.error(a.loc.clone(), a.field(threshold), format!("alarms without `{threshold}` alarm on nothing"))
            .set_help(format!("add {threshold} = N, or remove alarms"));
    }
    let topic = topic?;
    Some(match threshold {
        "cpu_above" => super::Alarms { cpu_above: limit, unhealthy_hosts_above: None, topic },
        _ => super::Alarms { cpu_above: None, unhealthy_hosts_above: limit, topic },
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

/// A listener: its port and where it is written (for duplicates, whenever the port is valid), and the listener
/// when every field is valid.
fn read_listener(w: &mut Walker<'_>, v: &Value<'_>, path: &str, seen: &mut Seen) -> (Option<(u16, Loc)>, Option<Listener>) {
    let Some(f) = w.fields(v, path, &["port", "protocol", "instance_port", "instance_protocol", "certificate"]) else { return (None, None) };
    let port = w.req_int(&f, "port", 1..=65535).map(|p| p.value as u16);
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
    if let Some(c) = &certificate {
        match constraints::certificate_arn(c) {
            Ok(constraints::CertificateArn::Acm { region }) => seen.acm_certificates.push((f.field("certificate"), c.clone(), region)),
            Ok(constraints::CertificateArn::Iam) => {}
            Err(b) => w.error(c.loc.clone(), f.field("certificate"), format!("`{}` is not a certificate ARN: {}", c.value, b.why)).set_help(b.help),
        }
    }
    let at = port.map(|p| (p, f.loc.clone()));
    let Some(proto) = proto else { return (at, None) };
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
        _ => {}
    }
    // AWS's default back-end protocol: HTTP behind HTTP(S) listeners, TCP behind TCP/SSL ones.
    let instance_protocol = match instance_protocol {
        Some(p) => p,
        None if f.get("instance_protocol").is_some() => return (at, None),
        None if matches!(proto.as_str(), "HTTP" | "HTTPS") => "HTTP".into(),
        None => "TCP".into(),
    };
    let http_front = matches!(proto.as_str(), "HTTP" | "HTTPS");
    let http_back = matches!(instance_protocol.as_str(), "HTTP" | "HTTPS");
    if http_front != http_back {
        w.error(f.loc.clone(), f.field("instance_protocol"), format!("{proto} listeners cannot forward to {instance_protocol} instances"))
            .set_help("pair http/https with http/https, and tcp/ssl with tcp/ssl");
    }
    let (Some(port), Some(instance_port)) = (port, instance_port) else { return (at, None) };
    let listener = Listener {
        loc: f.loc.clone(),
        port,
        protocol: proto,
        instance_port: instance_port.value as u16,
        instance_protocol,
        certificate: certificate.map(|c| c.value),
    };
    (at, Some(listener))
}

fn read_db_parameter_group(w: &mut Walker<'_>, v: &Value<'_>, e: &Entity, seen: &mut Seen) -> Option<DbParameterGroup> {
    let f = w.fields(v, &e.path, &["name", "family", "description", "parameters", "tags", "adopt", "manage", "reconcile_every"])?;
    let name = w.opt_string(&f, "name");
    if let Some(n) = &name {
        aws_rule(w, n, &f.field("name"), "DB parameter group name", constraints::db_parameter_group_name(n));
    }
    let family = w.req_string(&f, "family");
    let description = w.opt_string(&f, "description").map(|d| d.value);
    let (parameters, at_reboot) = parameters(w, &f);
    let tags = tags(w, &f, TagRules::Restricted, 2);
    let policy = policy(w, &f);
    Some(DbParameterGroup {
        loc: f.loc.clone(),
        name: name.map(|n| n.value),
        family: placeholder(seen, e, &f, family).value,
        description,
        parameters,
        at_reboot,
        tags,
        policy,
    })
}

/// A parameter group's `parameters`: name -> value (a string, or a number or boolean as written), or
/// `{ value = ..., apply = "pending-reboot" }`, which holds a change for the next reboot; with the names of
/// those held.
fn parameters(w: &mut Walker<'_>, f: &Fields<'_, '_>) -> (BTreeMap<String, String>, std::collections::BTreeSet<String>) {
    let (mut values, mut at_reboot) = (BTreeMap::new(), std::collections::BTreeSet::new());
    let Some(v) = f.get("parameters") else { return (values, at_reboot) };
    let field = f.field("parameters");
    let Some(table) = v.get_ref().as_table() else {
        w.string_map(v, &field);
        return (values, at_reboot);
    };
    for (k, item) in table.iter() {
        let (key, path) = (k.get_ref().to_string(), format!("{field}.{}", k.get_ref()));
        if !item.get_ref().is_table() {
            values.extend(w.scalar(item, &path).map(|value| (key, value.value)));
            continue;
        }
        let Some(p) = w.fields(item, &path, &["value", "apply"]) else { continue };
        let value = w.required(&p, "value").and_then(|v| w.scalar(v, &p.field("value")));
        match w.opt_string(&p, "apply") {
            None => {}
            Some(a) if a.value == "pending-reboot" => {
                at_reboot.insert(key.clone());
            }
            Some(a) => {
                let e = w.error(a.loc.clone(), p.field("apply"), format!("`{}` is not an apply method converge can be told", a.value));
                e.set_help("write apply = \"pending-reboot\" to hold a change for the next reboot; converge applies dynamic parameters immediately and static ones at the reboot AWS requires");
            }
        }
        values.extend(value.map(|v| (key, v.value)));
    }
    (values, at_reboot)
}

fn read_database(w: &mut Walker<'_>, v: &Value<'_>, e: &Entity, seen: &mut Seen) -> Option<Database> {
    let f = w.fields(
        v,
        &e.path,
        &[
            "name",
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
            "hostname",
            "hostname_ttl",
            "tags",
            "adopt",
            "manage",
            "reconcile_every",
        ],
    )?;
    let name = w.opt_string(&f, "name");
    if let Some(n) = &name {
        aws_rule(w, n, &f.field("name"), "DB instance identifier", constraints::db_instance_identifier(n));
    }
    let replica_of = w.opt_string(&f, "replica_of");
    if let Some(r) = &replica_of {
        e.reference(seen, "replica_of", f.field("replica_of"), Table::Database, r);
    }
    let s = |w: &mut Walker<'_>, k: &str| w.opt_string(&f, k).map(|v| v.value);
    let engine = w.opt_string(&f, "engine");
    if let Some(en) = &engine {
        aws_rule(w, en, &f.field("engine"), "RDS engine", constraints::db_engine(en));
    }
    let engine_name = engine.as_ref().map(|en| en.value.as_str());
    let version = s(w, "version");
    let class = w.req_string(&f, "class");
    if let Some(c) = &class {
        aws_rule(w, c, &f.field("class"), "DB instance class", constraints::db_instance_class(c));
    }
    let storage = w.opt_int(&f, "storage_gb", 5..=65_536);
    if let Some(gb) = &storage
        && let Some(en) = engine_name.filter(|en| matches!(*en, "mysql" | "mariadb" | "postgres"))
        && gb.value < 20
    {
        w.error(
            gb.loc.clone(),
            f.field("storage_gb"),
            format!("{} GiB is too small: RDS for {en} needs at least 20 GiB of General Purpose (SSD) storage", gb.value),
        )
        .set_help("converge creates instances with RDS's default storage type, General Purpose (SSD): 20 to 65536 GiB");
    }
    let username = w.opt_string(&f, "username");
    if let Some(u) = &username {
        aws_rule(w, u, &f.field("username"), "master user name", constraints::db_username(engine_name, u));
    }
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
        if let Some(v) = f.get("promote") {
            let loc = w.loc(v);
            w.error(loc, f.field("promote"), "only a replica (replica_of) can be promoted");
        }
    }
    let parameter_group = w.opt_string(&f, "parameter_group");
    if let Some(p) = &parameter_group {
        e.reference(seen, "parameter_group", f.field("parameter_group"), Table::DbParameterGroup, p);
    }
    let security_groups = w.opt_strings(&f, "security_groups");
    for g in &security_groups {
        e.reference(seen, "security_groups", f.field("security_groups"), Table::SecurityGroup, g);
    }
    let multi_az = w.opt_bool(&f, "multi_az").unwrap_or(false);
    let zone = w.opt_string(&f, "zone");
    if let Some(z) = &zone {
        seen.zones.push((f.field("zone"), z.clone()));
        if multi_az {
            w.error(z.loc.clone(), f.field("zone"), "a Multi-AZ instance cannot be given a zone")
                .set_help("RDS picks the primary's and the standby's zones for a Multi-AZ instance: remove zone, or multi_az");
        }
    }
    let window = |w: &mut Walker<'_>, key: &str, parse: fn(&str) -> Result<constraints::Window, Broken>| {
        let v = w.opt_string(&f, key)?;
        match parse(&v) {
            Ok(window) => Some((v, window)),
            Err(b) => {
                w.error(v.loc.clone(), f.field(key), format!("`{}` is not a valid {}: {}", v.value, key.replace('_', " "), b.why)).set_help(b.help);
                None
            }
        }
    };
    let maintenance_window = window(w, "maintenance_window", constraints::maintenance_window);
    let backup_window = window(w, "backup_window", constraints::backup_window);
    if let (Some((m, mw)), Some((b, bw))) = (&maintenance_window, &backup_window)
        && constraints::windows_overlap(*bw, *mw)
    {
        w.error(b.loc.clone(), f.field("backup_window"), format!("the backup window {} overlaps the maintenance window {}", b.value, m.value))
            .set_help("RDS refuses a backup window that overlaps the maintenance window: move one of them");
    }
    let db = Database {
        loc: f.loc.clone(),
        name: name.map(|n| n.value),
        replica_of,
        engine: engine.map(|en| en.value),
        version,
        class: placeholder(seen, e, &f, class).value,
        storage_gb: u32_of(storage),
        multi_az,
        parameter_group,
        security_groups,
        subnet_group: s(w, "subnet_group"),
        zone: zone.map(|z| z.value),
        backup_retention_days: u32_of(w.opt_int(&f, "backup_retention_days", 0..=35)),
        maintenance_window: maintenance_window
            .map(|(v, _)| v.value)
            .or_else(|| f.get("maintenance_window").and_then(|v| v.get_ref().as_str()).map(str::to_string)),
        backup_window: backup_window.map(|(v, _)| v.value).or_else(|| f.get("backup_window").and_then(|v| v.get_ref().as_str()).map(str::to_string)),
        deletion_protection: w.opt_bool(&f, "deletion_protection").unwrap_or(false),
        username: username.map(|u| u.value),
        password_env,
        apply_immediately: w.opt_bool(&f, "apply_immediately").unwrap_or(false),
        allow_major_version_upgrade: w.opt_bool(&f, "allow_major_version_upgrade").unwrap_or(false),
        promote: w.opt_bool(&f, "promote").unwrap_or(false),
        hostname: hostname(w, &f),
        hostname_ttl: u32_of(w.opt_int(&f, "hostname_ttl", 0..=172_800)).unwrap_or(super::DB_HOSTNAME_TTL),
        tags: tags(w, &f, TagRules::Restricted, 2),
        policy: policy(w, &f),
    };
    Some(db)
}

fn read_site(w: &mut Walker<'_>, v: &Value<'_>, e: &Entity, seen: &mut Seen) -> Option<Site> {
    let f = w.fields(
        v,
        &e.path,
        &["domain", "aliases", "pool", "load_balancer", "repo", "branch", "commit", "dns", "media_bucket", "notify", "adopt", "manage", "reconcile_every"],
    )?;
    let dns = match w.opt_string(&f, "dns") {
        None => DnsMode::Client,
        Some(d) if d.value == "client" => DnsMode::Client,
        Some(d) if d.value == "managed" => DnsMode::Managed,
        Some(d) => {
            w.error(d.loc.clone(), f.field("dns"), format!("`{}` is not a DNS mode: expected client or managed", d.value));
            DnsMode::Client
        }
    };
    let host = |w: &mut Walker<'_>, seen: &mut Seen, key: &str, name: &Located<String>, wildcard: Wildcard| {
        let field = f.field(key);
        if aws_rule(w, name, &field, "DNS name", constraints::dns_name(name, wildcard)) {
            let normal = super::dns_name(name);
            seen.hosts.push((e.name().to_string(), field, Located { value: normal, loc: name.loc.clone() }));
        }
    };
    let domain = w.req_string(&f, "domain");
    if let Some(d) = &domain {
        host(w, seen, "domain", d, Wildcard::Refused("a site's domain is the one name it is served at; list wildcard names in aliases"));
    }
    let aliases = w.opt_strings(&f, "aliases");
    let wildcard = match dns {
        DnsMode::Client => Wildcard::Allowed,
        DnsMode::Managed => Wildcard::Refused("converge does not manage wildcard records; with dns = \"managed\", list each name, or set dns = \"client\""),
    };
    for a in &aliases {
        host(w, seen, "aliases", a, wildcard);
    }
    let pool = w.req_string(&f, "pool");
    if let Some(p) = &pool {
        e.reference(seen, "pool", f.field("pool"), Table::Pool, p);
    }
    let load_balancer = w.opt_string(&f, "load_balancer");
    if let Some(lb) = &load_balancer {
        e.reference(seen, "load_balancer", f.field("load_balancer"), Table::LoadBalancer, lb);
    }
    // A site is deployed by its pool once it names a repo and a commit; without both it is only served.
    let deployed = ["repo", "commit"].iter().any(|k| f.get(k).is_some());
    let (repo, commit) = if deployed { (w.req_string(&f, "repo"), w.req_string(&f, "commit")) } else { (None, None) };
    if !deployed && let Some(b) = f.get("branch") {
        let loc = w.loc(b);
        w.error(loc, f.field("branch"), "a branch without a repo and a commit deploys nothing").set_help("add repo and commit, or remove branch");
    }
    let branch = w.opt_string(&f, "branch").map_or_else(|| "main".to_string(), |b| b.value);
    if let Some(c) = &commit
        && (c.len() < 7 || c.len() > 40 || !c.chars().all(|ch| ch.is_ascii_hexdigit()))
    {
        w.error(c.loc.clone(), f.field("commit"), format!("`{}` is not a git commit (7 to 40 hex digits)", c.value));
    }
    let media_bucket = w.opt_string(&f, "media_bucket");
    if let Some(b) = &media_bucket {
        aws_rule(w, b, &f.field("media_bucket"), "S3 bucket name", constraints::bucket_name(b));
        seen.buckets.push((e.name().to_string(), b.clone()));
    }
    let notify = plain(w.opt_strings(&f, "notify"));
    Some(Site {
        loc: f.loc.clone(),
        domain: placeholder(seen, e, &f, domain).value.to_ascii_lowercase(),
        aliases: aliases.into_iter().map(|a| a.to_ascii_lowercase()).collect(),
        pool: placeholder(seen, e, &f, pool),
        load_balancer,
        deploy: deployed.then(|| Deploy { repo: placeholder(seen, e, &f, repo).value, branch, commit: placeholder(seen, e, &f, commit).value }),
        dns,
        media_bucket: media_bucket.map(|b| b.value),
        notify,
        policy: policy(w, &f),
    })
}
