//! Saved plans: `plan --out plan.json`, then `apply plan.json` applies exactly that plan, or refuses.
//!
//! The file records the digest of every file of the desired state it was made from and the live objects it
//! read for its changes (their normalised specs: no secret is ever part of one). Apply re-reads only those
//! objects and refuses, naming each object and field, if any changed; unrelated changes elsewhere do not
//! make it stale. A plan records that it was applied, and is never applied twice. Pure: the file itself is
//! read and written by the CLI (`cli::plan_file`).
//!
//! The same check ([`Reviewed`]) guards a plan confirmed at a prompt: what its changes read is read again
//! once the answer is given, since the person may have taken any time to give it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::live::Live;
use crate::plan::Plan;
use crate::resource::{Address, Spec};

pub const FORMAT: &str = "converge-plan/1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectState {
    pub id: String,
    pub spec: Spec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format: String,
    pub account: String,
    pub region: String,
    /// sha256 of each file below the desired-state folder, by relative path.
    pub desired: BTreeMap<String, String>,
    /// The live state of every object the plan changes (`null`: it did not exist).
    pub live: Reviewed,
    pub plan: Plan,
    /// Set once an apply of this plan has run (whatever its outcome).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<Applied>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// Seconds since the Unix epoch.
    pub at: u64,
    pub complete: bool,
}

impl SavedPlan {
    pub fn new(plan: &Plan, live: &Live, account: &str, region: &str, desired: BTreeMap<String, String>) -> SavedPlan {
        SavedPlan {
            format: FORMAT.to_string(),
            account: account.to_string(),
            region: region.to_string(),
            desired,
            live: Reviewed::of(plan, live),
            plan: plan.clone(),
            applied: None,
        }
    }

    /// Files of the desired state added, removed or changed since the plan was made.
    pub fn desired_changes(&self, now: &BTreeMap<String, String>) -> Vec<String> {
        let mut out = Vec::new();
        for (path, digest) in now {
            match self.desired.get(path) {
                None => out.push(format!("{path} (added)")),
                Some(d) if d != digest => out.push(format!("{path} (changed)")),
                Some(_) => {}
            }
        }
        out.extend(self.desired.keys().filter(|p| !now.contains_key(*p)).map(|p| format!("{p} (removed)")));
        out
    }

    /// The objects the plan touches, then and now: all that a re-read needs one object at a time.
    pub fn touched(&self) -> std::collections::BTreeSet<Address> {
        self.live.touched(&self.plan)
    }

    /// Objects whose live state differs from what the plan read, each with the fields that changed.
    pub fn stale_objects(&self, live: &Live) -> Vec<String> {
        self.live.stale(live)
    }
}

/// What a plan's changes read of live AWS, by address (`None`: the object did not exist): the state a person
/// reviewed, which an apply reads again and compares before it changes anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Reviewed(pub BTreeMap<Address, Option<ObjectState>>);

impl Reviewed {
    /// The live state of each object `plan` changes, as `live` (what the plan was made from) holds it.
    pub fn of(plan: &Plan, live: &Live) -> Reviewed {
        let objects = plan
            .changes
            .iter()
            .map(|c| {
                let state = live.objects.get(&c.address).and_then(|o| o.first()).map(|o| ObjectState { id: o.id.clone(), spec: o.spec.clone() });
                (c.address.clone(), state)
            })
            .collect();
        Reviewed(objects)
    }

    /// What to read again to check it: these objects and each of `plan`'s changes.
    pub fn touched(&self, plan: &Plan) -> std::collections::BTreeSet<Address> {
        self.0.keys().cloned().chain(plan.changes.iter().map(|c| c.address.clone())).collect()
    }

    /// Objects whose live state differs from what was reviewed, each with the fields that changed.
    pub fn stale(&self, live: &Live) -> Vec<String> {
        let mut out = Vec::new();
        for (address, then) in &self.0 {
            let now = live.objects.get(address).and_then(|o| o.first());
            match (then, now) {
                (None, None) => {}
                (None, Some(o)) => out.push(format!("{address}: now exists ({})", o.id)),
                (Some(t), None) => out.push(format!("{address}: no longer exists ({})", t.id)),
                (Some(t), Some(n)) if t.id != n.id => out.push(format!("{address}: is now a different object ({} instead of {})", n.id, t.id)),
                (Some(t), Some(n)) => {
                    // What the plan read is "desired" here: the diff names what changed since.
                    let fields: Vec<String> = t.spec.diff(&n.spec).fields.into_iter().map(|f| f.field).collect();
                    if !fields.is_empty() {
                        out.push(format!("{address}: changed since the plan ({})", dedup(fields).join(", ")));
                    }
                }
            }
        }
        out
    }
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    v.retain(|x| seen.insert(x.clone()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::LiveObject;
    use crate::testing::{FLEET, live_of, plan_of};

    fn saved() -> (SavedPlan, Live) {
        let live = live_of(FLEET);
        let changed = FLEET.replace("shared-2026", "shared-2027");
        let plan = plan_of(&changed, &live);
        (SavedPlan::new(&plan, &live, "123456789012", "eu-west-1", BTreeMap::from([("fleet.toml".into(), "abc".into())])), live)
    }

    #[test]
    fn a_plan_file_round_trips() {
        let (s, _) = saved();
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<SavedPlan>(&text).unwrap(), s);
        assert_eq!(s.live.0.len(), 1, "only the objects the plan changes");
    }

    #[test]
    fn only_a_change_to_an_object_the_plan_touches_makes_it_stale() {
        let (s, live) = saved();
        assert!(s.stale_objects(&live).is_empty());
        let mut other = live.clone();
        let web: Address = "security_group.web".parse().unwrap();
        other.objects.remove(&web);
        assert!(s.stale_objects(&other).is_empty(), "security_group.web is not in the plan");
        let mut touched = live.clone();
        let lb: Address = "load_balancer.shared".parse().unwrap();
        let mut obj: LiveObject = touched.objects[&lb][0].clone();
        if let Spec::LoadBalancer(spec) = &mut obj.spec {
            spec.attributes.idle_timeout = 300;
        }
        touched.objects.insert(lb, vec![obj]);
        assert_eq!(s.stale_objects(&touched), vec!["load_balancer.shared: changed since the plan (idle_timeout)".to_string()]);
    }

    #[test]
    fn desired_state_changes_are_named_by_file() {
        let (s, _) = saved();
        let now = BTreeMap::from([("fleet.toml".into(), "def".into()), ("sites/new.toml".into(), "1".into())]);
        assert_eq!(s.desired_changes(&now), vec!["fleet.toml (changed)".to_string(), "sites/new.toml (added)".to_string()]);
    }
}
