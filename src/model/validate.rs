//! Checks across entities and files: references that name nothing, names AWS derives from `<fleet>-<name>`,
//! values that must agree with the fleet's region, and anything defined twice. They run on what the loader
//! [`Seen`] as well as on the fleet, so an entity with a bad field still has its references and names checked.

use std::collections::{BTreeMap, BTreeSet};

use super::constraints;
use super::diag::{Diagnostic, Loc, Located, did_you_mean};
use super::load::{Table, valid_name};
use super::{DnsMode, Fleet};

/// An entity: its table and its name.
pub(super) type EntityId = (Table, String);

/// One reference to another entity, as written, whether or not the entity holding it could be built.
#[derive(Debug, Clone)]
pub(super) struct Reference {
    pub from: EntityId,
    /// The field's key within its entity (`pool`, `security_groups`, `ingress.from`).
    pub key: &'static str,
    /// The field path shown in diagnostics.
    pub field: String,
    pub to: Table,
    pub target: Located<String>,
}

/// What the loader saw beyond the typed fleet: every entity declared (even one whose table is broken), every
/// reference and every value whose check needs every file read (the fleet's name and region may come last).
#[derive(Debug, Default)]
pub(super) struct Seen {
    pub fleet: Option<Loc>,
    pub network: Option<Loc>,
    pub entities: BTreeMap<EntityId, Loc>,
    pub refs: Vec<Reference>,
    /// Explicit AWS names (`name = ...` of security groups and load balancers).
    pub names: BTreeMap<EntityId, Located<String>>,
    /// Availability zones written anywhere, with their field.
    pub zones: Vec<(String, Located<String>)>,
    /// ACM certificates of listeners: field, ARN, the certificate's region.
    pub acm_certificates: Vec<(String, Located<String>, String)>,
    /// Every site's names (domain and aliases; lower case, no trailing dot): site, field, name.
    pub hosts: Vec<(String, String, Located<String>)>,
    /// Media buckets: site, bucket.
    pub buckets: Vec<(String, Located<String>)>,
    /// Entities kept with a placeholder for a bad field (each has a diagnostic: the fleet is never returned).
    pub incomplete: BTreeSet<EntityId>,
}

impl Seen {
    pub fn reference(&mut self, from: &EntityId, key: &'static str, field: String, to: Table, target: &Located<String>) {
        self.refs.push(Reference { from: from.clone(), key, field, to, target: target.clone() });
    }

    /// The first reference `key` of `from`, if one was written.
    fn reference_of(&self, from: &EntityId, key: &str) -> Option<&Reference> {
        self.refs.iter().find(|r| &r.from == from && r.key == key)
    }

    fn declared(&self, table: Table, name: &str) -> bool {
        self.entities.contains_key(&(table, name.to_string()))
    }

    fn names_of(&self, table: Table) -> impl Iterator<Item = &str> {
        self.entities.keys().filter(move |(t, _)| *t == table).map(|(_, n)| n.as_str())
    }
}

fn reference(seen: &Seen, r: &Reference) -> Option<Diagnostic> {
    if seen.declared(r.to, &r.target.value) {
        return None;
    }
    let kind = r.to.name();
    let d = Diagnostic::new(r.target.loc.clone(), &r.field, format!("{kind}.{} does not exist", r.target.value));
    let names: Vec<&str> = seen.names_of(r.to).collect();
    Some(match did_you_mean(&r.target.value, names.iter().copied()) {
        Some(s) => d.help(format!("did you mean `{s}`?")),
        None if names.is_empty() => d.help(format!("no {kind} is defined; add [{kind}.{}]", r.target.value)),
        None => d.help(format!("defined: {}", names.join(", "))),
    })
}

pub(super) fn validate(fleet: &Fleet, seen: &Seen, diags: &mut Vec<Diagnostic>) {
    references(seen, diags);
    databases(fleet, seen, diags);
    for (name, pool) in &fleet.pools {
        if let Err(problem) = fleet.user_data(name) {
            let loc = pool.bootstrap.as_ref().map_or_else(|| pool.loc.clone(), |b| b.loc.clone());
            diags.push(Diagnostic::new(loc, format!("pool.{name}.bootstrap"), problem.message).help(problem.help));
        }
    }
    for (name, lb) in &fleet.load_balancers {
        if fleet.network.vpc.is_some() && lb.subnets.is_empty() && fleet.network.subnets.is_empty() {
            diags.push(
                Diagnostic::new(lb.loc.clone(), format!("load_balancer.{name}.subnets"), "a load balancer outside the default VPC needs subnets")
                    .help("set subnets on the load balancer, or network.subnets for all of them"),
            );
        }
    }
    sites(fleet, seen, diags);
    aws_names(fleet, seen, diags);
    regional(fleet, seen, diags);
}

fn references(seen: &Seen, diags: &mut Vec<Diagnostic>) {
    let mut listed: BTreeMap<(&EntityId, &str, &str), &Loc> = BTreeMap::new();
    for r in &seen.refs {
        diags.extend(reference(seen, r));
        // A list naming the same entity twice (security_groups = ["web", "web"]).
        if r.key == "security_groups"
            && let Some(first) = listed.insert((&r.from, r.key, &r.target.value), &r.target.loc)
        {
            diags.push(
                Diagnostic::new(r.target.loc.clone(), &r.field, format!("{}.{} is listed twice", r.to.name(), r.target.value))
                    .help(format!("first listed at {first}")),
            );
        }
    }
}

fn databases(fleet: &Fleet, seen: &Seen, diags: &mut Vec<Diagnostic>) {
    // One hostname names one database: a cut-over moves it.
    let mut hostnames: std::collections::BTreeMap<&str, &str> = std::collections::BTreeMap::new();
    for (name, db) in &fleet.databases {
        let Some(h) = &db.hostname else { continue };
        if let Some(first) = hostnames.insert(&h.value, name) {
            diags.push(
                Diagnostic::new(h.loc.clone(), format!("database.{name}.hostname"), format!("`{}` is database.{first}'s hostname already", h.value))
                    .help("a hostname names one database: to cut over to a replica, move the hostname to it and set promote = true there"),
            );
        }
        if db.replica_of.is_some() && !db.promote {
            diags.push(
                Diagnostic::new(
                    h.loc.clone(),
                    format!("database.{name}.hostname"),
                    "a replica is read-only: the hostname the sites write through moves to it only with its promotion",
                )
                .help("set promote = true on this replica (the cut-over), or keep the hostname on its primary"),
            );
        }
        // Not a name a site's records take (its record in the fleet's zone, its own names when managed).
        let zone = fleet.settings.dns_zone.as_deref().map(super::dns_name);
        let taken = fleet.sites.iter().find(|(s, site)| {
            zone.as_ref().is_some_and(|z| h.value == format!("{s}.{z}"))
                || (site.dns == super::DnsMode::Managed
                    && std::iter::once(&site.domain).chain(&site.aliases).any(|n| n.trim_end_matches('.').eq_ignore_ascii_case(&h.value)))
        });
        if let Some((site, _)) = taken {
            diags.push(Diagnostic::new(h.loc.clone(), format!("database.{name}.hostname"), format!("`{}` is a record of site.{site}", h.value)));
        }
    }
    for (name, db) in &fleet.databases {
        let me = (Table::Database, name.clone());
        let primary = seen.reference_of(&me, "replica_of").map(|r| &r.target);
        if let Some(p) = primary {
            let theirs = (Table::Database, p.value.clone());
            if seen.reference_of(&theirs, "replica_of").is_some() {
                diags.push(Diagnostic::new(p.loc.clone(), format!("database.{name}.replica_of"), format!("database.{} is itself a replica", p.value)));
            }
            if fleet.databases.get(&p.value).is_some_and(|d| d.backup_retention_days == Some(0)) {
                diags.push(
                    Diagnostic::new(
                        p.loc.clone(),
                        format!("database.{name}.replica_of"),
                        format!(
                            "database.{} keeps no automated backups (backup_retention_days = 0): RDS makes read replicas only of an instance that does",
                            p.value
                        ),
                    )
                    .help(format!("set backup_retention_days on database.{} to 1 or more", p.value)),
                );
            }
        }
        // The engine and version are the primary's for a replica.
        let source = match primary {
            Some(p) => fleet.databases.get(&p.value),
            None => Some(db),
        };
        let (Some(engine), Some(version)) = (source.and_then(|s| s.engine.as_deref()), source.and_then(|s| s.version.as_deref())) else { continue };
        let Some(expected) = constraints::db_parameter_group_family(engine, version) else { continue };
        let Some(group) = seen.reference_of(&me, "parameter_group").map(|r| &r.target) else { continue };
        if let Some(pg) = fleet.db_parameter_groups.get(&group.value)
            && !pg.family.is_empty()
            && pg.family != expected
        {
            diags.push(
                Diagnostic::new(
                    group.loc.clone(),
                    format!("database.{name}.parameter_group"),
                    format!("db_parameter_group.{} is of family {}, but the database runs {engine} {version} (family {expected})", group.value, pg.family),
                )
                .help(format!("RDS applies a parameter group only of the instance's family: set family = \"{expected}\" on it, or use a group of that family")),
            );
        }
    }
}

fn sites(fleet: &Fleet, seen: &Seen, diags: &mut Vec<Diagnostic>) {
    for (name, site) in &fleet.sites {
        let me = (Table::Site, name.clone());
        if let (Some(pool), Some(lb_ref)) = (seen.reference_of(&me, "pool"), seen.reference_of(&me, "load_balancer"))
            && let Some(lb_pool) = seen.reference_of(&(Table::LoadBalancer, lb_ref.target.value.clone()), "pool")
            && seen.declared(Table::Pool, &pool.target.value)
            && lb_pool.target.value != pool.target.value
        {
            diags.push(Diagnostic::new(
                lb_ref.target.loc.clone(),
                format!("site.{name}.load_balancer"),
                format!(
                    "load_balancer.{} sends traffic to pool.{}, but the site is served by pool.{}",
                    lb_ref.target.value, lb_pool.target.value, pool.target.value
                ),
            ));
        }
        if site.dns == DnsMode::Managed && fleet.settings.dns_zone.is_none() {
            diags.push(Diagnostic::new(site.loc.clone(), format!("site.{name}.dns"), "managed DNS needs fleet.dns_zone for the site's own record"));
        }
    }
    let mut buckets: BTreeMap<&str, (&str, &Loc)> = BTreeMap::new();
    for (site, b) in &seen.buckets {
        match buckets.get(b.value.as_str()) {
            Some((other, first)) => diags.push(
                Diagnostic::new(b.loc.clone(), format!("site.{site}.media_bucket"), format!("bucket `{}` is also the media bucket of site.{other}", b.value))
                    .help(format!("site.{other} names it at {first}; a bucket belongs to one site")),
            ),
            None => {
                buckets.insert(&b.value, (site, &b.loc));
            }
        }
    }
    let mut hosts: BTreeMap<&str, (&str, &Loc)> = BTreeMap::new();
    for (site, field, host) in &seen.hosts {
        match hosts.get(host.value.as_str()) {
            Some((other, first)) if other == site => diags.push(
                Diagnostic::new(host.loc.clone(), field, format!("`{}` is listed twice for this site", host.value)).help(format!("first listed at {first}")),
            ),
            Some((other, first)) => diags.push(
                Diagnostic::new(host.loc.clone(), field, format!("`{}` is also a name of site.{other}", host.value))
                    .help(format!("site.{other} names it at {first}; a name is served by one site")),
            ),
            None => {
                hosts.insert(&host.value, (site, &host.loc));
            }
        }
    }
}

/// The AWS names converge derives from `<fleet>-<name>` (or takes from `name`): each must be one AWS accepts, and
/// no two alike where AWS wants them unique.
fn aws_names(fleet: &Fleet, seen: &Seen, diags: &mut Vec<Diagnostic>) {
    // Without a valid fleet name (reported on its own) derived names would only repeat that problem.
    let derived = valid_name(&fleet.settings.name);
    let fleet_name = &fleet.settings.name;
    let entity_loc = |table: Table, name: &str| seen.entities.get(&(table, name.to_string())).cloned().unwrap_or_else(Loc::none);
    let mut derived_name = |table: Table, what: &str, name: &str, check: fn(&str) -> Result<(), constraints::Broken>| {
        if !derived {
            return;
        }
        let aws = format!("{fleet_name}-{name}");
        if let Err(b) = check(&aws) {
            let field = format!("{}.{name}", table.name());
            diags.push(
                Diagnostic::new(entity_loc(table, name), field, format!("`{aws}` is not a valid {what}: {}", b.why))
                    .help(format!("converge names it <fleet>-<name>; {}", b.help)),
            );
        }
    };
    for (name, _) in fleet.pools.iter().filter(|(_, p)| p.name.is_none() || p.template_name.is_none()) {
        derived_name(Table::Pool, "launch template and auto-scaling group name", name, constraints::launch_template_name);
    }
    for (name, _) in fleet.databases.iter().filter(|(_, d)| d.name.is_none()) {
        derived_name(Table::Database, "DB instance identifier", name, constraints::db_instance_identifier);
    }
    for (name, _) in fleet.db_parameter_groups.iter().filter(|(_, g)| g.name.is_none()) {
        derived_name(Table::DbParameterGroup, "DB parameter group name", name, constraints::db_parameter_group_name);
    }
    for (name, sg) in &fleet.security_groups {
        if sg.name.is_none() {
            derived_name(Table::SecurityGroup, "security group name", name, constraints::security_group_name);
        }
    }
    for (name, lb) in &fleet.load_balancers {
        let aws_name = fleet.load_balancer_name(name);
        if (derived || lb.name.is_some()) && constraints::load_balancer_name(&aws_name).is_err() {
            let loc = lb.name.as_ref().map_or_else(|| lb.loc.clone(), |n| n.loc.clone());
            diags.push(
                Diagnostic::new(loc, format!("load_balancer.{name}.name"), format!("`{aws_name}` is not a valid load balancer name"))
                    .help("at most 32 letters, digits and hyphens, not starting or ending with a hyphen; set `name` to a shorter one"),
            );
        }
    }
    // Security group names are unique in a VPC and load balancer names in a region, both case-insensitively.
    for (table, what, scope) in [(Table::SecurityGroup, "security group", "in a VPC"), (Table::LoadBalancer, "load balancer", "in a region")] {
        let mut taken: BTreeMap<String, (&str, Loc)> = BTreeMap::new();
        let names: Vec<&String> = match table {
            Table::SecurityGroup => fleet.security_groups.keys().collect(),
            _ => fleet.load_balancers.keys().collect(),
        };
        for name in names {
            let id = (table, name.clone());
            let (aws, loc) = match seen.names.get(&id) {
                Some(n) => (n.value.clone(), n.loc.clone()),
                None if derived => (format!("{fleet_name}-{name}"), entity_loc(table, name)),
                None => continue,
            };
            match taken.get(&aws.to_ascii_lowercase()) {
                Some((other, first)) => diags.push(
                    Diagnostic::new(loc, format!("{}.{name}.name", table.name()), format!("`{aws}` is also the AWS name of {}.{other}", table.name()))
                        .help(format!("{what} names are unique {scope} (whatever their case); {}.{other} is at {first}", table.name())),
                ),
                None => {
                    taken.insert(aws.to_ascii_lowercase(), (name, loc));
                }
            }
        }
    }
    // Each site with a load balancer gets the record <site>.<dns_zone>.
    if let Some(zone) = &fleet.settings.dns_zone
        && constraints::dns_name(zone, constraints::Wildcard::Refused("")).is_ok()
    {
        for (name, site) in fleet.sites.iter().filter(|(_, s)| s.load_balancer.is_some()) {
            let record = format!("{name}.{zone}");
            if let Err(b) = constraints::dns_name(&record, constraints::Wildcard::Refused("")) {
                diags.push(
                    Diagnostic::new(site.loc.clone(), format!("site.{name}"), format!("the site's record `{record}` is not a valid DNS name: {}", b.why))
                        .help(format!("each site with a load balancer gets the record <site>.<fleet.dns_zone>; {}", b.help)),
                );
            }
        }
    }
}

/// Zones and ACM certificates belong to the fleet's region.
fn regional(fleet: &Fleet, seen: &Seen, diags: &mut Vec<Diagnostic>) {
    let region = &fleet.settings.region;
    if constraints::region(region).is_err() {
        return;
    }
    for (field, zone) in &seen.zones {
        if let Err(b) = constraints::availability_zone(zone, region) {
            diags.push(Diagnostic::new(zone.loc.clone(), field, format!("`{}` is not an availability zone of {region}: {}", zone.value, b.why)).help(b.help));
        }
    }
    for (field, arn, cert_region) in &seen.acm_certificates {
        if cert_region != region {
            diags.push(
                Diagnostic::new(arn.loc.clone(), field, format!("the certificate is in {cert_region}, but the load balancer is in {region} (fleet.region)"))
                    .help(format!("a load balancer takes ACM certificates of its own region only: request or import the certificate in {region}")),
            );
        }
    }
}
