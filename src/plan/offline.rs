//! The offline, semantic difference between two desired states: a plan from one to the other, made with
//! no AWS access, for reviewers and CI without credentials. Pure.

use crate::live::{Live, LiveObject};
use crate::model::Fleet;
use crate::plan::{self, Plan, PlanOptions};
use crate::resource::{self, Environment};

/// What an offline plan knows of the account: the VPC and zones the desired state names, or placeholders
/// (the same on both sides, so they never show as a change).
fn offline_environment(fleet: &Fleet) -> Environment {
    Environment {
        vpc_id: fleet.network.vpc.clone().unwrap_or_else(|| "(default VPC)".to_string()),
        zones: vec!["(the VPC's zones)".to_string()],
        ..Default::default()
    }
}

/// The changes that take the `old` desired state to `new`, as a plan (deletions are not limited).
pub fn diff(old: &Fleet, new: &Fleet) -> Plan {
    let mut live = Live::default();
    for (address, spec) in resource::desired(old, &offline_environment(old)) {
        live.insert(address, LiveObject { id: spec.aws_name().to_string(), spec });
    }
    let desired = resource::desired(new, &offline_environment(new));
    let mut plan = plan::plan(&new.settings.name, &desired, &live, &PlanOptions { max_deletes: usize::MAX, allow_destroy: true, ..PlanOptions::default() });
    // Sites of deleted objects are found in the old state, the others in the new.
    let mut old_sites = plan.clone();
    plan::mark_affected_sites(old, &mut old_sites);
    plan::mark_affected_sites(new, &mut plan);
    for (c, before) in plan.changes.iter_mut().zip(old_sites.changes) {
        for site in before.sites {
            if !c.sites.contains(&site) {
                c.sites.push(site);
            }
        }
        c.sites.sort();
    }
    plan
}

#[cfg(test)]
mod tests {
    use crate::plan::Action;
    use crate::testing::fleet_of;

    const OLD: &str = r#"
[fleet]
name = "agency"
region = "eu-west-1"
[security_group.lb]
ingress = [{ ports = "443", cidr = "0.0.0.0/0" }]
[load_balancer.shared]
security_groups = ["lb"]
listeners = [{ port = 443, protocol = "https", instance_port = 80, certificate = "arn:aws:iam::1:server-certificate/a" }]
[pool.web]
image = "n"
instance_type = "t3.large"
min = 1
max = 2
[image.n]
name = "x-*"
[site.acme]
domain = "acme.example"
pool = "web"
load_balancer = "shared"
repo = "git@x:acme.git"
commit = "4f2a9c1e0b"
"#;

    #[test]
    fn identical_states_have_no_diff_and_a_change_names_its_sites() {
        assert!(super::diff(&fleet_of(OLD), &fleet_of(OLD)).is_empty());
        let new = OLD.replace("server-certificate/a", "server-certificate/b");
        let p = super::diff(&fleet_of(OLD), &fleet_of(&new));
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.changes[0].action, Action::Update);
        assert_eq!(p.changes[0].sites, vec!["acme".to_string()]);
    }
}
