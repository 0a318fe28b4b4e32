//! The plan engine: desired specs + live objects -> a [`Plan`] of changes in a dependency graph.
//!
//! Pure: no IO, no async. Ownership is decided here: a live object is ours only if the provider found it
//! with this fleet's tags; a same-named object without them is a [`Conflict`], never a change.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::resource::{self, Address, Desired, FieldChange, Kind, Op, Spec};

/// An object converge owns in AWS (it carries this fleet's tags), normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveObject {
    pub id: String,
    pub spec: Spec,
}

/// An object with the AWS name of a desired object that this fleet does not own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Foreign {
    pub kind: Kind,
    pub name: String,
    pub id: String,
    /// The `converge:fleet` tag it carries, if another fleet owns it.
    pub fleet: Option<String>,
}

/// Everything the provider read.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// Owned objects by the address in their `converge:address` tag (several if tags were copied by hand).
    pub objects: BTreeMap<Address, Vec<LiveObject>>,
    pub foreign: Vec<Foreign>,
}

impl Live {
    pub fn insert(&mut self, address: Address, object: LiveObject) {
        self.objects.entry(address).or_default().push(object);
    }

    /// Live ids of this fleet's security groups -> their names in the fleet, for turning ids into addresses.
    pub fn group_ids(&self) -> BTreeMap<String, String> {
        self.objects
            .iter()
            .filter(|(a, _)| a.kind == Kind::SecurityGroup)
            .flat_map(|(a, objs)| objs.iter().map(|o| (o.id.clone(), a.name.clone())))
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
}

/// One object's change: what differs (for people) and the operations that close the gap (for apply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub address: Address,
    pub action: Action,
    /// The AWS name (and id when it exists) the change is about.
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Field changes for updates and replaces; all attributes for creates and deletes.
    pub fields: Vec<FieldChange>,
    pub ops: Vec<Op>,
    /// Changes that must finish first.
    pub after: BTreeSet<Address>,
}

/// Something that blocks the plan from being applied; nothing of it is touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    pub message: String,
    pub help: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub fleet: String,
    pub changes: Vec<Change>,
    pub conflicts: Vec<Conflict>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub max_deletes: usize,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions { max_deletes: crate::model::DEFAULT_MAX_DELETES }
    }
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1;
                }
                Action::Delete => s.destroy += 1,
            }
        }
        s
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn change(&self, address: &Address) -> Option<&Change> {
        self.changes.iter().find(|c| &c.address == address)
    }
}

fn attributes(spec: &Spec, created: bool) -> Vec<FieldChange> {
    spec.describe()
        .into_iter()
        .map(|(k, v)| if created { FieldChange::added(k, v) } else { FieldChange::removed(k, v) })
        .collect()
}

fn kind_noun(kind: Kind) -> &'static str {
    match kind {
        Kind::SecurityGroup => "security group",
        Kind::LoadBalancer => "load balancer",
        Kind::LaunchTemplate => "launch template",
        Kind::AutoScalingGroup => "auto-scaling group",
        Kind::DbParameterGroup => "DB parameter group",
        Kind::DbInstance => "DB instance",
        Kind::DnsRecord => "DNS record",
        Kind::Bucket => "bucket",
    }
}

/// Computes the plan. Never fails: what cannot be planned becomes a [`Conflict`].
pub fn plan(fleet: &str, desired: &Desired, live: &Live, opts: &PlanOptions) -> Plan {
    let mut p = Plan { fleet: fleet.to_string(), ..Plan::default() };
    let addresses: BTreeSet<&Address> = desired.keys().chain(live.objects.keys()).collect();
    for address in addresses {
        let want = desired.get(address);
        let have = live.objects.get(address).map(Vec::as_slice).unwrap_or_default();
        if have.len() > 1 {
            let ids: Vec<&str> = have.iter().map(|o| o.id.as_str()).collect();
            p.conflicts.push(Conflict {
                address: Some(address.clone()),
                message: format!("{} objects claim this address: {}", have.len(), ids.join(", ")),
                help: format!("remove the {} tags from all but one of them", resource::ADDRESS_TAG),
            });
            continue;
        }
        let have = have.first();
        let change = match (want, have) {
            (Some(want), None) => {
                let blocker = live.foreign.iter().find(|f| f.kind == address.kind && f.name == want.aws_name());
                if let Some(f) = blocker {
                    p.conflicts.push(foreign_conflict(fleet, address, f));
                    continue;
                }
                Change {
                    address: address.clone(),
                    action: Action::Create,
                    name: want.aws_name().to_string(),
                    id: None,
                    fields: attributes(want, true),
                    ops: resource::create_ops(want),
                    after: BTreeSet::new(),
                }
            }
            (Some(want), Some(have)) => {
                let d = resource::diff(want, &have.spec);
                if d.fields.is_empty() && d.ops.is_empty() {
                    continue;
                }
                if d.forces_replacement() {
                    if want.aws_name() != have.spec.aws_name()
                        && let Some(f) = live.foreign.iter().find(|f| f.kind == address.kind && f.name == want.aws_name())
                    {
                        p.conflicts.push(foreign_conflict(fleet, address, f));
                        continue;
                    }
                    let mut ops = resource::delete_ops(&have.spec, &have.id);
                    ops.extend(resource::create_ops(want));
                    Change {
                        address: address.clone(),
                        action: Action::Replace,
                        name: want.aws_name().to_string(),
                        id: Some(have.id.clone()),
                        fields: d.fields,
                        ops,
                        after: BTreeSet::new(),
                    }
                } else {
                    Change {
                        address: address.clone(),
                        action: Action::Update,
                        name: want.aws_name().to_string(),
                        id: Some(have.id.clone()),
                        fields: d.fields,
                        ops: d.ops,
                        after: BTreeSet::new(),
                    }
                }
            }
            (None, Some(have)) => Change {
                address: address.clone(),
                action: Action::Delete,
                name: have.spec.aws_name().to_string(),
                id: Some(have.id.clone()),
                fields: attributes(&have.spec, false),
                ops: resource::delete_ops(&have.spec, &have.id),
                after: BTreeSet::new(),
            },
            (None, None) => continue,
        };
        p.changes.push(change);
    }
    order(&mut p, desired, live);
    let deletes = p.changes.iter().filter(|c| matches!(c.action, Action::Delete | Action::Replace)).count();
    if deletes > opts.max_deletes {
        p.conflicts.push(Conflict {
            address: None,
            message: format!("the plan deletes {deletes} objects, more than the limit of {}", opts.max_deletes),
            help: "check that desired-state/ is complete; if the deletions are intended, raise fleet.max_deletes or pass --max-deletes".into(),
        });
    }
    p
}

fn foreign_conflict(fleet: &str, address: &Address, f: &Foreign) -> Conflict {
    let noun = kind_noun(address.kind);
    let owner = match &f.fleet {
        Some(other) => format!("it belongs to fleet `{other}`"),
        None => format!("it lacks the {} and {} tags", resource::FLEET_TAG, resource::ADDRESS_TAG),
    };
    Conflict {
        address: Some(address.clone()),
        message: format!("a {noun} named `{}` ({}) already exists and is not managed by this fleet: {owner}", f.name, f.id),
        help: format!(
            "converge will not modify or delete it. To adopt it, tag it {}={fleet} and {}={address}; or set `name` to use another name",
            resource::FLEET_TAG,
            resource::ADDRESS_TAG
        ),
    }
}

/// Dependency edges: creates and updates wait for the creation of what they refer to; deletes wait for
/// every change of an object that still refers to what is deleted. A cycle becomes a conflict.
fn order(p: &mut Plan, desired: &Desired, live: &Live) {
    let actions: BTreeMap<Address, Action> = p.changes.iter().map(|c| (c.address.clone(), c.action)).collect();
    for c in &mut p.changes {
        if let (Action::Create | Action::Update | Action::Replace, Some(want)) = (c.action, desired.get(&c.address)) {
            for dep in want.references() {
                if matches!(actions.get(&dep), Some(Action::Create | Action::Replace)) {
                    c.after.insert(dep);
                }
            }
        }
        if c.action == Action::Delete {
            for (holder, objs) in &live.objects {
                let refers = objs.iter().any(|o| o.spec.references().contains(&c.address));
                if refers && holder != &c.address && actions.contains_key(holder) {
                    c.after.insert(holder.clone());
                }
            }
        }
    }
    if let Some(cycle) = find_cycle(&p.changes) {
        let names: Vec<String> = cycle.iter().map(ToString::to_string).collect();
        p.conflicts.push(Conflict {
            address: cycle.first().cloned(),
            message: format!("these changes depend on each other: {}", names.join(" -> ")),
            help: "create the security groups first without the rules that refer to each other, then add those rules in a second apply".into(),
        });
    }
}

/// A cycle among the changes' `after` edges, if there is one.
pub fn find_cycle(changes: &[Change]) -> Option<Vec<Address>> {
    let edges: BTreeMap<&Address, &BTreeSet<Address>> = changes.iter().map(|c| (&c.address, &c.after)).collect();
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit<'a>(a: &'a Address, edges: &BTreeMap<&'a Address, &'a BTreeSet<Address>>, marks: &mut BTreeMap<&'a Address, Mark>, stack: &mut Vec<&'a Address>) -> Option<Vec<Address>> {
        match marks.get(a) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = stack.iter().position(|s| *s == a).unwrap_or(0);
                let mut cycle: Vec<Address> = stack[start..].iter().map(|s| (*s).clone()).collect();
                cycle.push(a.clone());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(a, Mark::Open);
        stack.push(a);
        for dep in edges.get(a).copied().into_iter().flatten() {
            if let Some((dep, _)) = edges.get_key_value(dep)
                && let Some(c) = visit(dep, edges, marks, stack)
            {
                return Some(c);
            }
        }
        stack.pop();
        marks.insert(a, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    let mut stack = Vec::new();
    for a in edges.keys() {
        if let Some(c) = visit(a, &edges, &mut marks, &mut stack) {
            return Some(c);
        }
    }
    None
}

#[cfg(test)]
mod tests;
