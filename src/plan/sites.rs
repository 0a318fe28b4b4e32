//! Which sites a change affects: engineers think in sites. A site's path is its DNS records, its media
//! bucket, its load
//! balancer, that load balancer's security groups, its pool (launch template and auto-scaling group) and
//! the pool's security groups.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::Fleet;
use crate::resource::{Address, Kind};

use super::Plan;

/// Every address on each site's path, inverted: address -> sites.
pub fn site_paths(fleet: &Fleet) -> BTreeMap<Address, BTreeSet<String>> {
    let mut out: BTreeMap<Address, BTreeSet<String>> = BTreeMap::new();
    for (site, s) in &fleet.sites {
        let mut path = Vec::new();
        if let Some(lb) = &s.load_balancer {
            path.push(Address::new(Kind::LoadBalancer, &lb.value));
            if let Some(lb) = fleet.load_balancers.get(&lb.value) {
                path.extend(lb.security_groups.iter().map(|g| Address::new(Kind::SecurityGroup, &g.value)));
            }
        }
        if let (Some(zone), Some(_)) = (&fleet.settings.dns_zone, &s.load_balancer) {
            path.push(Address::new(Kind::DnsRecord, format!("{site}.{}", zone.trim_end_matches('.').to_ascii_lowercase())));
            if s.dns == crate::model::DnsMode::Managed {
                path.extend(std::iter::once(&s.domain).chain(&s.aliases).map(|n| Address::new(Kind::DnsRecord, n.trim_end_matches('.').to_ascii_lowercase())));
            }
        }
        path.extend(s.media_bucket.iter().map(|b| Address::new(Kind::Bucket, b)));
        if let Some(pool) = fleet.pools.get(&s.pool.value) {
            path.push(Address::new(Kind::LaunchTemplate, &s.pool.value));
            path.push(Address::new(Kind::AutoScalingGroup, &s.pool.value));
            path.extend(pool.security_groups.iter().map(|g| Address::new(Kind::SecurityGroup, &g.value)));
        }
        for a in path {
            out.entry(a).or_default().insert(site.clone());
        }
    }
    out
}

/// Records on each change the sites it affects.
pub fn mark_affected_sites(fleet: &Fleet, plan: &mut Plan) {
    let paths = site_paths(fleet);
    for c in &mut plan.changes {
        c.sites = paths.get(&c.address).map(|s| s.iter().cloned().collect()).unwrap_or_default();
    }
}

impl Plan {
    /// Every site some change affects.
    pub fn affected_sites(&self) -> BTreeSet<&str> {
        self.changes.iter().flat_map(|c| c.sites.iter().map(String::as_str)).collect()
    }
}
