//! Targeting (`--target`): plan and apply only some objects and what they need. Pure.

use std::collections::BTreeSet;

use crate::model::{Fleet, did_you_mean};
use crate::resource::{Address, Desired, Kind};

use super::{Action, Conflict, Plan, site_paths};
use crate::live::Live;

/// Turns `site.NAME`, `pool.NAME` or a resource address into the addresses it stands for.
pub fn resolve_targets(fleet: &Fleet, targets: &[String]) -> Result<BTreeSet<Address>, String> {
    let paths = site_paths(fleet);
    let mut out = BTreeSet::new();
    for t in targets {
        let (kind, name) = t.split_once('.').ok_or_else(|| format!("--target {t}: expected site.NAME, pool.NAME or an address such as load_balancer.NAME"))?;
        match kind {
            "site" => {
                if !fleet.sites.contains_key(name) {
                    return Err(unknown(t, "site", name, fleet.sites.keys()));
                }
                out.extend(paths.iter().filter(|(_, sites)| sites.contains(name)).map(|(a, _)| a.clone()));
            }
            "pool" => {
                let pool = fleet.pools.get(name).ok_or_else(|| unknown(t, "pool", name, fleet.pools.keys()))?;
                out.extend(pool.security_groups.iter().map(|g| Address::new(Kind::SecurityGroup, &g.value)));
                out.insert(Address::new(Kind::LaunchTemplate, name));
                out.insert(Address::new(Kind::AutoScalingGroup, name));
            }
            _ => {
                out.insert(t.parse::<Address>().map_err(|e| format!("--target {t}: {e}"))?);
            }
        }
    }
    Ok(out)
}

fn unknown<'a>(target: &str, kind: &str, name: &str, names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&String> = names.collect();
    let hint = did_you_mean(name, names.iter().map(|n| n.as_str())).map(|s| format!(" (did you mean {kind}.{s}?)")).unwrap_or_default();
    format!("--target {target}: no {kind} named {name}{hint}")
}

/// The addresses a targeted run reads one object at a time: the targets and what they refer to, transitively,
/// as the desired state says (see `Wanted::focused` in the AWS layer). `None` when a target is not desired:
/// its deletion's path runs through what refers to it in AWS, which only a full read finds.
pub fn read_path(desired: &Desired, targets: &BTreeSet<Address>) -> Option<BTreeSet<Address>> {
    targets.iter().all(|t| desired.contains_key(t)).then(|| reach(targets, |a| desired.get(a).map(|s| s.references()).unwrap_or_default()))
}

/// `start` and everything `next` leads to from it.
fn reach(start: &BTreeSet<Address>, next: impl Fn(&Address) -> BTreeSet<Address>) -> BTreeSet<Address> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<Address> = start.iter().cloned().collect();
    while let Some(a) = todo.pop() {
        if seen.insert(a.clone()) {
            todo.extend(next(&a));
        }
    }
    seen
}

/// Keeps only the changes to `targets` and what they need: the objects they refer to (transitively), and
/// for a deletion, the changes that make others let go of it. Conflicts about other objects are dropped;
/// a target that is neither desired nor live becomes one (a typo must not plan nothing quietly).
pub fn restrict(plan: &Plan, desired: &Desired, live: &Live, targets: &BTreeSet<Address>) -> Plan {
    let keep = reach(targets, |a| {
        let mut next = desired.get(a).map(|s| s.references()).unwrap_or_default();
        if plan.change(a).is_some_and(|c| c.action == Action::Delete) {
            next.extend(live.users_of(a).cloned());
        }
        next
    });
    let mut out = plan.clone();
    out.changes.retain(|c| keep.contains(&c.address));
    out.held.retain(|h| keep.contains(&h.change.address));
    out.conflicts.retain(|c| c.address.as_ref().is_none_or(|a| keep.contains(a)));
    for t in targets {
        if !desired.contains_key(t) && !live.objects.contains_key(t) {
            let known: Vec<String> = desired.keys().chain(live.objects.keys()).filter(|a| a.kind == t.kind).map(|a| a.name.clone()).collect();
            let hint = did_you_mean(&t.name, known.iter().map(String::as_str)).map(|s| format!("did you mean {}.{s}?", t.kind.as_str()));
            out.conflicts.push(Conflict {
                address: Some(t.clone()),
                message: "--target names an object that is neither in the desired state nor in AWS".into(),
                help: hint.unwrap_or_else(|| "check the address with `converge plan`".into()),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PlanOptions, plan};
    use crate::testing::{FLEET, desired_of, fleet_of};

    #[test]
    fn a_targeted_read_follows_references_and_a_target_to_delete_reads_everything() {
        let desired = desired_of(FLEET);
        let path = read_path(&desired, &BTreeSet::from(["load_balancer.shared".parse().unwrap()])).expect("desired");
        assert_eq!(path.iter().map(ToString::to_string).collect::<Vec<_>>(), ["security_group.lb", "load_balancer.shared"]);
        assert_eq!(read_path(&desired, &BTreeSet::from(["load_balancer.gone".parse().unwrap()])), None);
    }

    #[test]
    fn a_target_brings_what_it_refers_to_and_nothing_else() {
        let desired = desired_of(FLEET);
        let p = plan("agency", &desired, &Live::default(), &PlanOptions::default());
        assert_eq!(p.changes.len(), 3);
        let only = restrict(&p, &desired, &Live::default(), &BTreeSet::from(["load_balancer.shared".parse().unwrap()]));
        let kept: Vec<String> = only.changes.iter().map(|c| c.address.to_string()).collect();
        assert_eq!(kept, vec!["security_group.lb", "load_balancer.shared"]);
    }

    #[test]
    fn targets_name_sites_pools_and_addresses_and_unknown_ones_are_explained() {
        let fleet = fleet_of(&format!(
            "{FLEET}[pool.web]\nimage = \"n\"\ninstance_type = \"t3.large\"\nsecurity_groups = [\"web\"]\nmin = 1\nmax = 2\n[image.n]\nname = \"x-*\"\n\
             [site.acme]\ndomain = \"acme.example\"\npool = \"web\"\nload_balancer = \"shared\"\nrepo = \"git@x:a.git\"\ncommit = \"4f2a9c1e0b\"\n"
        ));
        let site = resolve_targets(&fleet, &["site.acme".into()]).unwrap();
        let site: Vec<String> = site.iter().map(ToString::to_string).collect();
        assert_eq!(site, vec!["security_group.lb", "security_group.web", "load_balancer.shared", "launch_template.web", "auto_scaling_group.web"]);
        assert_eq!(resolve_targets(&fleet, &["site.acne".into()]).unwrap_err(), "--target site.acne: no site named acne (did you mean site.acme?)");
        // With DNS and a media bucket, a site's own records and bucket are on its path too.
        let text = format!(
            "{}\n[site.acme]\ndomain = \"www.acme.example\"\naliases = [\"acme.example\"]\npool = \"web\"\nload_balancer = \"shared\"\nrepo = \"git@x:a.git\"\ncommit = \"4f2a9c1e0b\"\ndns = \"managed\"\nmedia_bucket = \"agency-acme-media\"\n",
            FLEET.replace("region = \"eu-west-1\"", "region = \"eu-west-1\"\ndns_zone = \"sites.agency.net\"")
        ) + "[pool.web]\nimage = \"n\"\ninstance_type = \"t3.large\"\nsecurity_groups = [\"web\"]\nmin = 1\nmax = 2\n[image.n]\nname = \"x-*\"\n";
        let site = resolve_targets(&fleet_of(&text), &["site.acme".into()]).unwrap();
        for a in ["dns_record.acme.sites.agency.net", "dns_record.www.acme.example", "dns_record.acme.example", "bucket.agency-acme-media"] {
            assert!(site.contains(&a.parse().unwrap()), "{a} in {site:?}");
        }
        assert!(resolve_targets(&fleet, &["bucket".into()]).is_err());
    }
}
