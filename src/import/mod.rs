//! `converge import`: the desired state of what an account already holds, written in the project's layout
//! so that its plan adopts every object with tags only.
//!
//! Pure: the provider reads the account ([`crate::aws::Aws::read_for_import`]: every object of no fleet, read
//! in full as an adoption would take it, and the fleet's own); this module decides what is in scope, names
//! each object, and writes the files (`fleet.toml`, `security-groups.toml`, `load-balancers.toml`,
//! `pools.toml` with the images and one bootstrap script per pool, `database.toml`, `sites/<name>.toml`).
//! The output is deterministic (sorted, stable names); a value converge had to guess is commented, and what
//! it cannot express is listed in [`Imported::notes`] and at the top of the file it concerns.

mod write;

use std::collections::{BTreeMap, BTreeSet};

use crate::live::Live;
use crate::resource::dns_record::Target;
use crate::resource::{
    Address, AutoScalingGroupSpec, DbInstanceSpec, DbParameterGroupSpec, DnsRecordSpec, Environment, Kind, LaunchTemplateSpec, LoadBalancerSpec,
    SecurityGroupSpec, Spec,
};

/// What to import, and as which fleet.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub fleet: String,
    pub region: String,
    pub account: Option<String>,
    /// The fleet's zone: a record `<site>.<dns_zone>` pointing at a load balancer is a site.
    pub dns_zone: Option<String>,
    /// Only objects whose AWS name starts with one of these; the prefix is left out of the names in the
    /// fleet (`agency-web` becomes `web`). Without any, `<fleet>-` is left out where a name has it.
    pub name_prefixes: Vec<String>,
    /// Only these addresses (`load_balancer.shared`), and the security groups they refer to.
    pub only: BTreeSet<Address>,
    /// Only objects carrying these tags (key, value).
    pub tags: Vec<(String, String)>,
    /// The VPC read (`None`: the default VPC).
    pub vpc: Option<String>,
}

/// The files of an imported desired state, by path relative to its folder, and what could not be imported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    pub files: BTreeMap<String, String>,
    /// For people: what was left out or guessed, one line each.
    pub notes: Vec<String>,
}

/// An object found: its spec, and whether it is ours already (then it is not marked `adopt`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Object<'a> {
    pub spec: &'a Spec,
    pub ours: bool,
}

/// The name in the fleet that an AWS name becomes: a prefix left out, then [`sanitized`].
pub fn fleet_name(aws_name: &str, opts: &Options) -> String {
    let own = format!("{}-", opts.fleet);
    let rest = opts.name_prefixes.iter().find_map(|p| aws_name.strip_prefix(p.as_str())).or_else(|| aws_name.strip_prefix(own.as_str())).unwrap_or(aws_name);
    sanitized(rest)
}

/// A pool's name: what its group's and its template's names share, up to a hyphen (`web-asg` and
/// `web-template` make `web`), else the group's.
fn pool_name(group: &str, template: &str, opts: &Options) -> String {
    let (g, t) = (fleet_name(group, opts), fleet_name(template, opts));
    let shared: Vec<&str> = g.split('-').zip(t.split('-')).take_while(|(a, b)| a == b).map(|(a, _)| a).collect();
    if shared.is_empty() || g == t { g } else { shared.join("-") }
}

/// Lower-case letters, digits and hyphens, never two hyphens in a row or one at an end: what entity names
/// allow.
pub(crate) fn sanitized(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' };
        if !(c == '-' && (out.is_empty() || out.ends_with('-'))) {
            out.push(c);
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() { "imported".to_string() } else { out }
}

/// Everything read, by kind: the fleet's own objects and the look-alikes read in full (no fleet's).
fn objects(live: &Live) -> BTreeMap<Kind, Vec<Object<'_>>> {
    let mut out: BTreeMap<Kind, Vec<Object<'_>>> = BTreeMap::new();
    for o in live.objects.values().flatten() {
        out.entry(o.spec.kind()).or_default().push(Object { spec: &o.spec, ours: true });
    }
    for f in live.foreign.iter().filter(|f| f.fleet.is_none()) {
        if let Some(spec) = &f.spec {
            out.entry(f.kind).or_default().push(Object { spec, ours: false });
        }
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| a.spec.aws_name().cmp(b.spec.aws_name()));
        list.dedup_by(|a, b| a.spec.aws_name() == b.spec.aws_name());
    }
    out
}

fn tags_of(spec: &Spec) -> &BTreeMap<String, String> {
    match spec {
        Spec::SecurityGroup(s) => &s.tags,
        Spec::LoadBalancer(s) => &s.tags,
        Spec::LaunchTemplate(s) => &s.tags,
        Spec::AutoScalingGroup(s) => &s.tags,
        Spec::DbParameterGroup(s) => &s.tags,
        Spec::DbInstance(s) => &s.tags,
        Spec::Bucket(s) => &s.tags,
        Spec::Alarm(s) => &s.tags,
        Spec::DnsRecord(_) => {
            static NONE: BTreeMap<String, String> = BTreeMap::new();
            &NONE
        }
    }
}

/// Whether an object is in the scope the options draw (its address in the fleet is `address`).
fn in_scope(opts: &Options, spec: &Spec, address: &Address) -> bool {
    let name = spec.aws_name();
    let prefixed = opts.name_prefixes.is_empty() || opts.name_prefixes.iter().any(|p| name.starts_with(p.as_str()));
    let tagged = opts.tags.iter().all(|(k, v)| tags_of(spec).get(k) == Some(v));
    let listed = opts.only.is_empty() || opts.only.contains(address);
    prefixed && tagged && listed
}

/// The typed specs of one kind.
macro_rules! specs {
    ($objects:expr, $kind:ident) => {
        $objects.get(&Kind::$kind).into_iter().flatten().filter_map(|o| match o.spec {
            Spec::$kind(s) => Some((s, o.ours)),
            _ => None,
        })
    };
}

/// What is imported, named as the fleet names it: the inputs of [`write`].
#[derive(Default)]
pub(crate) struct Selection<'a> {
    pub groups: BTreeMap<String, (&'a SecurityGroupSpec, bool)>,
    pub balancers: BTreeMap<String, (&'a LoadBalancerSpec, bool)>,
    /// Pool name -> its group, and its template when one was found.
    pub pools: BTreeMap<String, (&'a AutoScalingGroupSpec, Option<&'a LaunchTemplateSpec>, bool)>,
    pub parameter_groups: BTreeMap<String, (&'a DbParameterGroupSpec, bool)>,
    pub databases: BTreeMap<String, (&'a DbInstanceSpec, bool)>,
    pub sites: BTreeMap<String, write::SiteOut>,
    /// AWS names of the load balancers imported -> their names in the fleet.
    pub balancer_names: BTreeMap<String, String>,
    /// Parameter groups imported: AWS name -> name in the fleet.
    pub parameter_group_names: BTreeMap<String, String>,
    /// Databases imported: identifier -> name in the fleet.
    pub database_names: BTreeMap<String, String>,
    pub notes: Vec<String>,
}

/// Imports what `live` holds (read with [`crate::aws::Aws::read_for_import`]) into files.
pub fn import(opts: &Options, env: &Environment, live: &Live) -> Imported {
    let objects = objects(live);
    let mut sel = Selection::default();
    let address = |kind: Kind, aws_name: &str| Address::new(kind, fleet_name(aws_name, opts));

    // Pools: a group and the template it launches from (the template by its own name).
    let templates: BTreeMap<&str, (&LaunchTemplateSpec, bool)> = specs!(objects, LaunchTemplate).map(|(t, ours)| (t.name.as_str(), (t, ours))).collect();
    for (g, ours) in specs!(objects, AutoScalingGroup) {
        let pool = pool_name(&g.name, &g.launch_template, opts);
        let a = Address::new(Kind::AutoScalingGroup, &pool);
        if !in_scope(opts, &Spec::AutoScalingGroup(g.clone()), &a) && !opts.only.contains(&Address::new(Kind::LaunchTemplate, &pool)) {
            continue;
        }
        let template = templates.get(g.launch_template.as_str()).map(|(t, _)| *t);
        if template.is_none() {
            sel.notes.push(format!(
                "auto-scaling group {}: its launch template `{}` was not found (a launch configuration is not imported)",
                g.name, g.launch_template
            ));
            continue;
        }
        sel.pools.insert(pool, (g, template, ours));
    }
    for (lb, ours) in specs!(objects, LoadBalancer) {
        let a = address(Kind::LoadBalancer, &lb.name);
        // A load balancer a pool serves from is in scope with its pool.
        let serving: Vec<&str> = sel.pools.iter().filter(|(_, (g, _, _))| g.load_balancers.contains_key(&lb.name)).map(|(p, _)| p.as_str()).collect();
        if serving.len() > 1 {
            // A fleet's load balancer serves one pool: adopting it would detach it from the others.
            sel.notes.push(format!(
                "load balancer {}: attached to several pools ({}), and a load balancer of the fleet serves one; not imported, nor its sites (adopting it would detach it from the others; the pools keep it, as attached by hand)",
                lb.name,
                serving.join(", ")
            ));
            continue;
        }
        if in_scope(opts, &Spec::LoadBalancer(lb.clone()), &a) || (!serving.is_empty() && opts.only.is_empty()) {
            sel.balancer_names.insert(lb.name.clone(), a.name.clone());
            sel.balancers.insert(a.name, (lb, ours));
        }
    }
    for (pg, ours) in specs!(objects, DbParameterGroup) {
        let a = address(Kind::DbParameterGroup, &pg.name);
        if in_scope(opts, &Spec::DbParameterGroup(pg.clone()), &a) {
            sel.parameter_group_names.insert(pg.name.clone(), a.name.clone());
            sel.parameter_groups.insert(a.name, (pg, ours));
        }
    }
    for (db, ours) in specs!(objects, DbInstance) {
        let a = address(Kind::DbInstance, &db.identifier);
        if in_scope(opts, &Spec::DbInstance(db.clone()), &a) {
            sel.database_names.insert(db.identifier.clone(), a.name.clone());
            sel.databases.insert(a.name, (db, ours));
        }
    }
    // A replica is declared by its primary's name: one whose primary is not imported is not either (nor,
    // then, a replica of it).
    loop {
        let orphans: Vec<(String, String)> = sel
            .databases
            .iter()
            .filter_map(|(name, (db, _))| {
                db.replica_of.as_ref().filter(|(_, source)| !sel.database_names.contains_key(source)).map(|(_, s)| (name.clone(), s.clone()))
            })
            .collect();
        if orphans.is_empty() {
            break;
        }
        for (name, source) in orphans {
            sel.notes.push(format!("database {name}: a replica of {source}, which is not imported; not imported either (import its primary with it)"));
            if let Some((db, _)) = sel.databases.remove(&name) {
                sel.database_names.remove(&db.identifier);
            }
        }
    }
    // Security groups: those in scope, and those the imported objects refer to (a declaration names a group
    // of the fleet, never an id). The VPC's default group is AWS's and never imported.
    let mut referenced: BTreeSet<String> = BTreeSet::new();
    for (lb, _) in sel.balancers.values() {
        referenced.extend(lb.security_groups.iter().filter_map(|g| g.address()).map(|a| a.name));
    }
    for (_, t, _) in sel.pools.values() {
        referenced.extend(t.iter().flat_map(|t| &t.data.security_groups).filter_map(|g| g.address()).map(|a| a.name));
    }
    for (db, _) in sel.databases.values() {
        referenced.extend(db.security_groups.iter().filter_map(|g| g.address()).map(|a| a.name));
    }
    let groups: Vec<(&SecurityGroupSpec, bool)> = specs!(objects, SecurityGroup).filter(|(g, _)| g.name != "default" && g.vpc_id == env.vpc_id).collect();
    loop {
        let before = sel.groups.len();
        for &(g, ours) in &groups {
            let a = address(Kind::SecurityGroup, &g.name);
            if sel.groups.contains_key(&a.name) || !(in_scope(opts, &Spec::SecurityGroup(g.clone()), &a) || referenced.contains(&a.name)) {
                continue;
            }
            // Rules between groups pull the groups they name in too.
            referenced.extend(g.ingress.iter().chain(&g.egress).filter_map(|r| r.group()?.address()).map(|a| a.name));
            sel.groups.insert(a.name, (g, ours));
        }
        if sel.groups.len() == before {
            break;
        }
    }
    sites(opts, env, &objects, &mut sel);

    let mut out = Imported { notes: std::mem::take(&mut sel.notes), ..Imported::default() };
    write::files(opts, env, &sel, &mut out);
    out
}

/// Sites: a record `<site>.<dns_zone>` pointing at an imported load balancer that a pool serves. Its names
/// are the records of other zones pointing at it (a CNAME to the site's record, or, at a zone's apex, an
/// alias to its load balancer in a zone that also names the site): then the agency manages its DNS.
/// Its media bucket is the one whose name carries the site's name.
fn sites(opts: &Options, env: &Environment, objects: &BTreeMap<Kind, Vec<Object<'_>>>, sel: &mut Selection<'_>) {
    let Some(zone) = opts.dns_zone.as_deref().map(crate::model::dns_name) else { return };
    let by_dns: BTreeMap<String, &String> =
        env.balancer_dns.iter().filter(|(name, _)| sel.balancer_names.contains_key(*name)).map(|(n, d)| (crate::model::dns_name(d), n)).collect();
    let pool_of = |lb: &str| sel.pools.iter().find(|(_, (g, _, _))| g.load_balancers.contains_key(lb)).map(|(p, _)| p.clone());
    let records: Vec<(&DnsRecordSpec, bool)> = specs!(objects, DnsRecord).collect();
    let points_at = |r: &DnsRecordSpec| match &r.target {
        Target::Cname(v) => Some(crate::model::dns_name(v)),
        Target::Alias { dns_name, .. } => Some(crate::model::dns_name(dns_name)),
        Target::LoadBalancer { .. } | Target::Database { .. } => None,
    };
    for (r, ours) in records.iter().filter(|(r, _)| r.zone == zone) {
        let Some(label) = r.name.strip_suffix(&format!(".{zone}")).filter(|l| !l.contains('.')) else { continue };
        let Some(lb) = points_at(r).and_then(|t| by_dns.get(&t).map(|n| n.to_string())) else { continue };
        let site = sanitized(label);
        if !opts.only.is_empty() && !opts.only.contains(&Address::new(Kind::DnsRecord, &r.name)) {
            continue;
        }
        let Some(pool) = pool_of(&lb) else {
            sel.notes.push(format!("record {}: its load balancer {lb} is served by no imported pool; the site is not imported", r.name));
            continue;
        };
        // Other zones' records that point at the site's record, and the apex aliases of those zones.
        let mut names: Vec<(&DnsRecordSpec, bool)> =
            records.iter().filter(|(o, _)| o.zone != zone && points_at(o).as_deref() == Some(r.name.as_str())).copied().collect();
        let zones: BTreeSet<&str> = names.iter().map(|(o, _)| o.zone.as_str()).collect();
        let lb_dns = env.balancer_dns.get(&lb).map(|d| crate::model::dns_name(d));
        names.extend(records.iter().filter(|(o, _)| o.name == o.zone && zones.contains(o.zone.as_str()) && points_at(o) == lb_dns).copied());
        names.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        names.dedup_by(|a, b| a.0.name == b.0.name);
        let mut all: Vec<String> = names.iter().map(|(o, _)| o.name.clone()).collect();
        let domain = all.iter().position(|n| n.starts_with("www.")).or_else(|| (!all.is_empty()).then_some(0)).map(|i| all.remove(i));
        let ours_all = *ours && names.iter().all(|(_, o)| *o);
        // What the schema cannot say: the adoption converges it to converge's own, which the plan shows.
        for (o, _) in std::iter::once(&(*r, *ours)).chain(&names) {
            if matches!(o.target, Target::Alias { .. }) && o.name == r.name {
                sel.notes.push(format!(
                    "record {}: an alias A record; converge keeps a site's record as a CNAME, and the adoption replaces it by one (in one batch)",
                    o.name
                ));
            }
            if let Some(ttl) = o.ttl.filter(|t| *t != crate::resource::dns_record::TTL) {
                sel.notes.push(format!("record {}: TTL {ttl}; converge's records have {}, which the adoption sets", o.name, crate::resource::dns_record::TTL));
            }
            if o.evaluate_target_health == Some(true) {
                sel.notes.push(format!("record {}: evaluates target health; converge's aliases do not, which the adoption sets", o.name));
            }
        }
        sel.sites.insert(
            site.clone(),
            write::SiteOut {
                pool,
                load_balancer: sel.balancer_names[&lb].clone(),
                managed: domain.is_some(),
                domain: domain.unwrap_or_else(|| r.name.clone()),
                aliases: all,
                bucket: None,
                ours: ours_all,
            },
        );
    }
    // A bucket goes to the site with the longest name it carries (`acme-shop` over `acme`), one per site.
    for (b, ours) in specs!(objects, Bucket) {
        let site = sel.sites.iter_mut().filter(|(name, s)| s.bucket.is_none() && b.name.contains(name.as_str())).max_by_key(|(name, _)| name.len());
        if let Some((_, s)) = site {
            s.bucket = Some(b.name.clone());
            s.ours &= ours;
        }
    }
}

#[cfg(test)]
mod tests;
