//! Which sites a change affects: engineers think in sites. A site's path is what each kind says lies on it
//! ([`crate::resource::ResourceKind::on_site_path`]): its DNS records, its media bucket, its load balancer,
//! that load balancer's security groups, its pool (launch template and auto-scaling group) and the pool's
//! security groups.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::Fleet;
use crate::resource::{Address, Kind};

use super::Plan;

/// Every address on each site's path, inverted: address -> sites.
pub fn site_paths(fleet: &Fleet) -> BTreeMap<Address, BTreeSet<String>> {
    let mut out: BTreeMap<Address, BTreeSet<String>> = BTreeMap::new();
    for (site, s) in &fleet.sites {
        for &kind in Kind::ALL {
            for name in kind.on_site_path(fleet, site, s) {
                out.entry(Address::new(kind, name)).or_default().insert(site.clone());
            }
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
