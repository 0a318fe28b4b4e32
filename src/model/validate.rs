//! Checks across entities: references that name nothing, and rules that span more than one table.

use std::collections::BTreeSet;

use super::diag::{Diagnostic, Located, did_you_mean};
use super::{DnsMode, Fleet, Map};

/// Every `kind.name` declared in the desired state, including tables that failed to parse.
pub(super) type Declared = BTreeSet<String>;

struct Check<'a> {
    declared: &'a Declared,
    diags: &'a mut Vec<Diagnostic>,
}

impl Check<'_> {
    fn reference<T>(&mut self, field: &str, r: &Located<String>, kind: &str, map: &Map<T>) {
        if !self.declared.contains(&format!("{kind}.{}", r.value)) {
            reference(self.diags, field, r, kind, map);
        }
    }
}

fn reference<T>(diags: &mut Vec<Diagnostic>, field: &str, r: &Located<String>, kind: &str, map: &Map<T>) {
    let mut d = Diagnostic::new(r.loc.clone(), field, format!("{kind}.{} does not exist", r.value));
    d = match did_you_mean(&r.value, map.keys().map(String::as_str)) {
        Some(s) => d.help(format!("did you mean `{s}`?")),
        None if map.is_empty() => d.help(format!("no {kind} is defined; add [{kind}.{}]", r.value)),
        None => d.help(format!("defined: {}", map.keys().cloned().collect::<Vec<_>>().join(", "))),
    };
    diags.push(d);
}

pub(super) fn validate(fleet: &Fleet, declared: &Declared, diags: &mut Vec<Diagnostic>) {
    let mut check = Check { declared, diags };
    let sgs = &fleet.security_groups;
    for (name, sg) in sgs {
        let rules = sg.ingress.iter().map(|r| ("ingress", "from", r));
        let rules = rules.chain(sg.egress.iter().flatten().map(|r| ("egress", "to", r)));
        for (dir, peer, rule) in rules {
            for g in &rule.groups {
                check.reference(&format!("security_group.{name}.{dir}.{peer}"), g, "security_group", sgs);
            }
        }
    }
    for (name, pool) in &fleet.pools {
        check.reference(&format!("pool.{name}.image"), &pool.image, "image", &fleet.images);
        for g in &pool.security_groups {
            check.reference(&format!("pool.{name}.security_groups"), g, "security_group", sgs);
        }
        if let Err(problem) = fleet.user_data(name) {
            let loc = pool.bootstrap.as_ref().map_or_else(|| pool.loc.clone(), |b| b.loc.clone());
            check.diags.push(Diagnostic::new(loc, format!("pool.{name}.bootstrap"), problem.message).help(problem.help));
        }
    }
    for (name, lb) in &fleet.load_balancers {
        if let Some(p) = &lb.pool {
            check.reference(&format!("load_balancer.{name}.pool"), p, "pool", &fleet.pools);
        }
        for g in &lb.security_groups {
            check.reference(&format!("load_balancer.{name}.security_groups"), g, "security_group", sgs);
        }
        if fleet.network.vpc.is_some() && lb.subnets.is_empty() && fleet.network.subnets.is_empty() {
            check.diags.push(
                Diagnostic::new(lb.loc.clone(), format!("load_balancer.{name}.subnets"), "a load balancer outside the default VPC needs subnets")
                    .help("set subnets on the load balancer, or network.subnets for all of them"),
            );
        }
        if lb.security_groups.is_empty() {
            check.diags.push(
                Diagnostic::new(lb.loc.clone(), format!("load_balancer.{name}.security_groups"), "a load balancer needs at least one security group")
                    .help("without one, AWS attaches the VPC's default group, which converge does not manage"),
            );
        }
        let aws_name = fleet.load_balancer_name(name);
        // Without a fleet name (reported on its own) the default name would be misleading.
        let ok = (fleet.settings.name.is_empty() && lb.name.is_none())
            || aws_name.len() <= 32
                && aws_name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !aws_name.starts_with('-')
                && !aws_name.ends_with('-');
        if !ok {
            let loc = lb.name.as_ref().map_or_else(|| lb.loc.clone(), |n| n.loc.clone());
            check.diags.push(
                Diagnostic::new(loc, format!("load_balancer.{name}.name"), format!("`{aws_name}` is not a valid load balancer name"))
                    .help("at most 32 letters, digits and hyphens, not starting or ending with a hyphen; set `name` to a shorter one"),
            );
        }
    }
    for (name, db) in &fleet.databases {
        if let Some(r) = &db.replica_of {
            check.reference(&format!("database.{name}.replica_of"), r, "database", &fleet.databases);
            if let Some(primary) = fleet.databases.get(&r.value)
                && primary.replica_of.is_some()
            {
                check.diags.push(Diagnostic::new(r.loc.clone(), format!("database.{name}.replica_of"), format!("database.{} is itself a replica", r.value)));
            }
        }
        if let Some(p) = &db.parameter_group {
            check.reference(&format!("database.{name}.parameter_group"), p, "db_parameter_group", &fleet.db_parameter_groups);
        }
        for g in &db.security_groups {
            check.reference(&format!("database.{name}.security_groups"), g, "security_group", sgs);
        }
    }
    for (name, site) in &fleet.sites {
        check.reference(&format!("site.{name}.pool"), &site.pool, "pool", &fleet.pools);
        if let Some(lb_ref) = &site.load_balancer {
            check.reference(&format!("site.{name}.load_balancer"), lb_ref, "load_balancer", &fleet.load_balancers);
            if let Some(lb) = fleet.load_balancers.get(&lb_ref.value)
                && let Some(lb_pool) = &lb.pool
                && fleet.pools.contains_key(&site.pool.value)
                && lb_pool.value != site.pool.value
            {
                check.diags.push(Diagnostic::new(
                    lb_ref.loc.clone(),
                    format!("site.{name}.load_balancer"),
                    format!("load_balancer.{} sends traffic to pool.{}, but the site is served by pool.{}", lb_ref.value, lb_pool.value, site.pool.value),
                ));
            }
        }
        if site.dns == DnsMode::Managed && fleet.settings.dns_zone.is_none() {
            check.diags.push(Diagnostic::new(site.loc.clone(), format!("site.{name}.dns"), "managed DNS needs fleet.dns_zone for the site's own record"));
        }
    }
    let mut buckets: Map<&str> = Map::new();
    for (name, site) in &fleet.sites {
        if let Some(b) = &site.media_bucket
            && let Some(other) = buckets.insert(b.clone(), name)
        {
            check.diags.push(Diagnostic::new(
                site.loc.clone(),
                format!("site.{name}.media_bucket"),
                format!("bucket `{b}` is also the media bucket of site.{other}"),
            ));
        }
    }
}
