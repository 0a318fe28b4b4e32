//! The plan engine: desired specs + live objects -> a [`Plan`] of changes in a dependency graph.
//!
//! Pure: no IO, no async. Ownership is decided here: a live object is ours only if the provider found it
//! with this fleet's tags; a same-named object without them is a [`Conflict`], never a change, unless the
//! intent journal shows that this fleet created it (a create whose tagging a crash or a lost response cut
//! off): then it is adopted ([`Action::Adopt`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub mod coverage;
pub mod offline;
pub mod saved;
mod sites;
mod target;

pub use sites::{mark_affected_sites, site_paths};
pub use target::{read_path, resolve_targets, restrict};

use crate::live::{Foreign, Live, LiveObject};
use crate::lock::JournalEntry;
use crate::resource::{self, Address, Context, Desired, FieldChange, Op, Refusal, Spec};

pub use crate::live::Unmanaged;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// An existing object without this fleet's tags becomes the fleet's: tagged, and its fields converged.
    Adopt,
    Create,
    Update,
    Replace,
    Delete,
    /// An object stops being the fleet's: its ownership (tags, a record's TXT) removed, the object left as
    /// it is (`converge forget`).
    Forget,
}

impl Action {
    /// Whether the change makes an object this fleet's under its name, so that the intent journal records it
    /// before it starts.
    pub fn creates(self) -> bool {
        matches!(self, Action::Create | Action::Replace | Action::Adopt)
    }
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
    /// The first phase: runs once every change in `after` is complete.
    pub ops: Vec<Op>,
    pub after: BTreeSet<Address>,
    /// The second phase, when there is one: runs after `ops`, once the changes in `then_after` have done
    /// their first phase. This is what untangles references that would otherwise wait on each other: rules
    /// between security groups created together (the groups exist after the first phase), and a deletion
    /// that waits for the objects still referring to it to let go (their first phase).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub then: Vec<Op>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub then_after: BTreeSet<Address>,
    /// Sites on whose path the object lies (see `sites`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<String>,
}

impl Change {
    fn new(address: &Address, action: Action, name: &str, id: Option<&str>, fields: Vec<FieldChange>, ops: Vec<Op>) -> Change {
        Change {
            address: address.clone(),
            action,
            name: name.to_string(),
            id: id.map(str::to_string),
            fields,
            ops,
            after: BTreeSet::new(),
            then: Vec::new(),
            then_after: BTreeSet::new(),
            sites: Vec::new(),
        }
    }
}

/// Something that blocks the plan from being applied; nothing of it is touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    pub message: String,
    pub help: String,
}

/// A value AWS or a policy owns that differs from the declaration (a group's desired capacity under its
/// scaling policy, a refresh running): shown, never changed, and not drift.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Observed {
    pub address: Address,
    pub field: String,
    pub value: String,
    pub note: String,
    /// A value AWS assigned where the desired state leaves it to AWS: shown for reference, never counted by
    /// `drift --fail-on observed` (see [`resource::Observation::info`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub info: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub fleet: String,
    pub changes: Vec<Change>,
    pub conflicts: Vec<Conflict>,
    /// Reported, never changed (see [`Live::unmanaged`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmanaged: Vec<Unmanaged>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observed: Vec<Observed>,
    /// Sites their listener's certificate fails (a name not covered, an expiry within the horizon):
    /// warnings, not changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificate_gaps: Vec<crate::plan::coverage::Gap>,
    /// Changes a management policy holds back (`manage = "observe"`, a deletion under `"no-delete"`, and
    /// what waits for them): shown and counted as drift, never applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<Held>,
    /// Entries of the intent journal this plan found settled (the object carries its tags now, or there is
    /// none and none is desired): the apply drops them from the journal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub journal_settled: Vec<JournalEntry>,
}

/// A change a management policy holds back, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub change: Change,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(default)]
    pub adopt: usize,
    #[serde(default)]
    pub forget: usize,
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub max_deletes: usize,
    /// Objects to replace even though nothing forces it (`--replace`).
    pub replace: BTreeSet<Address>,
    /// Plan only these and what they need (`--target`, resolved by [`resolve_targets`]).
    pub targets: Option<BTreeSet<Address>>,
    /// Databases and buckets may be deleted (`--allow-destroy`); without it, removing one is a conflict.
    pub allow_destroy: bool,
    /// Database changes take effect now rather than in the maintenance window (`--apply-immediately`).
    pub apply_immediately: bool,
    /// The lock's intent journal: creates started and not known to be complete. An untagged object with a
    /// journaled address and name is adopted, not a conflict.
    pub journal: Vec<JournalEntry>,
    /// What the declarations say ([`resource::policies`]): which untagged look-alikes to adopt (`adopt =
    /// true`), and each object's management policy, which holds changes back ([`Plan::held`]).
    pub policies: resource::Policies,
    /// The reconcile loop's containment ([`contain`]): `Some` with the objects it holds back this pass
    /// (in backoff, not due) and why; `None` for `plan` and `apply`, where a conflict blocks the plan.
    pub contain: Option<BTreeMap<Address, String>>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            max_deletes: crate::model::DEFAULT_MAX_DELETES,
            replace: BTreeSet::new(),
            targets: None,
            allow_destroy: false,
            apply_immediately: false,
            journal: Vec::new(),
            policies: resource::Policies::default(),
            contain: None,
        }
    }
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Adopt => s.adopt += 1,
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1;
                }
                Action::Delete => s.destroy += 1,
                Action::Forget => s.forget += 1,
            }
        }
        s
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The observed values that `drift --fail-on observed` counts: all but those shown for reference only.
    pub fn observed_counted(&self) -> impl Iterator<Item = &Observed> {
        self.observed.iter().filter(|o| !o.info)
    }

    pub fn change(&self, address: &Address) -> Option<&Change> {
        self.changes.iter().find(|c| &c.address == address)
    }

    /// Environment variables the apply reads (master passwords of databases it creates), by name.
    pub fn password_vars(&self) -> BTreeSet<&str> {
        self.changes.iter().flat_map(|c| c.ops.iter().chain(&c.then)).filter_map(Op::reads_env).collect()
    }
}

fn attributes(spec: &Spec, created: bool) -> Vec<FieldChange> {
    spec.describe().into_iter().map(|(k, v)| if created { FieldChange::added(k, v) } else { FieldChange::removed(k, v) }).collect()
}

impl Conflict {
    fn refused(address: &Address, r: Refusal) -> Conflict {
        Conflict { address: Some(address.clone()), message: r.message, help: r.help }
    }
}

/// The desired state as this plan applies it: each spec prepared by its kind from the rest of the desired
/// and live state (a group pinned to a template version; a database's changes applied now).
pub fn prepare(desired: &Desired, live: &Live, opts: &PlanOptions) -> Desired {
    // What an adoption takes over counts as live: a group adopted with its template runs the template's
    // version as it is.
    let lookup = |a: &Address| live.spec(a).or_else(|| adoptable(desired.get(a)?, a, live, opts).and_then(|f| f.spec.as_ref()));
    let cx = Context { desired, live: &lookup, apply_immediately: opts.apply_immediately };
    let mut out = desired.clone();
    for spec in out.values_mut() {
        spec.prepare(&cx);
    }
    out
}

/// Computes the plan. Never fails: what cannot be planned becomes a [`Conflict`].
pub fn plan(fleet: &str, desired: &Desired, live: &Live, opts: &PlanOptions) -> Plan {
    let desired = &prepare(desired, live, opts);
    let mut p = Plan { fleet: fleet.to_string(), unmanaged: live.unmanaged.clone(), ..Plan::default() };
    p.unmanaged.sort();
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
        let change = match (want, have.first()) {
            (Some(want), None) => match (adoptable(want, address, live, opts), live.look_alike(address.kind, want.aws_name())) {
                (Some(f), _) => match &f.spec {
                    Some(spec) => adopt(address, want, f, spec, opts.policies.adopt.contains(address)),
                    None => Err(foreign_conflict(fleet, address, f)),
                },
                (None, Some(f)) => Err(foreign_conflict(fleet, address, f)),
                (None, None) => Ok(Change::new(address, Action::Create, want.aws_name(), None, attributes(want, true), want.create_ops())),
            },
            (Some(want), Some(have)) => {
                p.observed.extend(want.observe(&have.spec).into_iter().map(|o| Observed {
                    address: address.clone(),
                    field: o.field,
                    value: o.value,
                    note: o.note,
                    info: o.info,
                }));
                match update_or_replace(fleet, address, want, have, desired, live, opts) {
                    Some(result) => result,
                    None => continue,
                }
            }
            (None, Some(have)) => match have.spec.guard_deletion(opts.allow_destroy) {
                // What converge will not delete, it can still let go of.
                Some(refusal) => Err(Conflict::refused(
                    address,
                    Refusal { help: format!("{}; or keep it and let converge go of it: `converge forget {address}`", refusal.help), ..refusal },
                )),
                None => Ok(Change::new(
                    address,
                    Action::Delete,
                    have.spec.aws_name(),
                    Some(&have.id),
                    attributes(&have.spec, false),
                    have.spec.delete_ops(&have.id),
                )),
            },
            (None, None) => continue,
        };
        match change {
            Ok(c) => p.changes.push(c),
            Err(c) => p.conflicts.push(c),
        }
    }
    p.observed.sort();
    p.journal_settled = settled(&opts.journal, desired, live);
    order(&mut p, desired, live);
    hold(&mut p, desired, live, &opts.policies);
    let deletes = p.changes.iter().filter(|c| matches!(c.action, Action::Delete | Action::Replace)).count();
    if deletes > opts.max_deletes {
        p.conflicts.push(Conflict {
            address: None,
            message: format!("the plan deletes {deletes} objects, more than the limit of {}", opts.max_deletes),
            help: format!("check that desired-state/ is complete; if the deletions are intended, pass --max-deletes {deletes} (or raise fleet.max_deletes)"),
        });
    }
    p
}

/// The look-alike of `want` (at `address`) that this plan adopts: one of no fleet, whose declaration says
/// `adopt = true` or whose create the intent journal recorded.
fn adoptable<'a>(want: &Spec, address: &Address, live: &'a Live, opts: &PlanOptions) -> Option<&'a Foreign> {
    let f = live.look_alike(address.kind, want.aws_name())?;
    (f.fleet.is_none() && (opts.policies.adopt.contains(address) || journaled(&opts.journal, address, &f.name))).then_some(f)
}

/// The plan of `converge forget`: each of `addresses`, an object this fleet owns, lets go of its ownership
/// (its kind's [`resource::ResourceKind::forget_ops`]) and is left as it is. An address the fleet does not
/// own (or that several objects claim) is a conflict: there is nothing to forget.
pub fn forget(fleet: &str, live: &Live, addresses: &BTreeSet<Address>) -> Plan {
    let mut p = Plan { fleet: fleet.to_string(), ..Plan::default() };
    for address in addresses {
        match live.objects.get(address).map(Vec::as_slice).unwrap_or_default() {
            [have] => {
                let fields = vec![
                    FieldChange::removed(format!("tags.{}", resource::FLEET_TAG), fleet),
                    FieldChange::removed(format!("tags.{}", resource::ADDRESS_TAG), address),
                ];
                p.changes.push(Change::new(address, Action::Forget, have.spec.aws_name(), Some(&have.id), fields, have.spec.forget_ops(&have.id)));
            }
            [] => p.conflicts.push(Conflict {
                address: Some(address.clone()),
                message: format!("no {} of fleet {fleet} is at {address}: there is nothing to forget", address.kind.noun()),
                help: "`converge plan` lists what the fleet owns".into(),
            }),
            many => p.conflicts.push(Conflict {
                address: Some(address.clone()),
                message: format!("{} objects claim this address", many.len()),
                help: format!("remove the {} tags from all but one of them", resource::ADDRESS_TAG),
            }),
        }
    }
    p
}

/// Moves the changes the management policies forbid to [`Plan::held`] ([`withhold`]): every change to an
/// object under `observe`, and the deletion of one under `no-delete` (its replacement is a conflict: the
/// new object could not take its name).
fn hold(p: &mut Plan, desired: &Desired, live: &Live, policies: &resource::Policies) {
    use crate::model::Manage;
    let mut reasons: BTreeMap<Address, String> = BTreeMap::new();
    for c in &p.changes {
        match (policies.manage_of(&c.address), c.action) {
            (Manage::Observe, _) => {
                reasons.insert(c.address.clone(), "manage = \"observe\": read and reported, never written".into());
            }
            (Manage::NoDelete, Action::Delete) => {
                reasons.insert(c.address.clone(), "manage = \"no-delete\": never deleted".into());
            }
            (Manage::NoDelete, Action::Replace) => p.conflicts.push(Conflict {
                address: Some(c.address.clone()),
                message: "must be replaced, but its management policy is \"no-delete\": the old object would be deleted".into(),
                help: "keep the fields that force the replacement as they are, or set manage = \"full\" for this apply".into(),
            }),
            _ => {}
        }
    }
    withhold(p, desired, live, reasons);
}

/// The reconcile loop's containment, before the plan is batched: each conflict of one object holds back
/// only that object and what needs it (the conflicts stay in the plan, for the loop to report), and the
/// changes of `extra`'s objects (in backoff, not due) are held with their reasons, with what needs them.
pub fn contain(p: &mut Plan, desired: &Desired, live: &Live, extra: &BTreeMap<Address, String>) {
    let mut reasons: BTreeMap<Address, String> = p.conflicts.iter().filter_map(|c| Some((c.address.clone()?, format!("conflict: {}", c.message)))).collect();
    for (a, why) in extra {
        if p.change(a).is_some() {
            reasons.entry(a.clone()).or_insert_with(|| why.clone());
        }
    }
    withhold(p, desired, live, reasons);
}

/// Holds back the changes of `reasons` (address -> why), and then every change that would run without
/// what it needs: one that waits for a held change, or refers to a held address that is not this fleet's
/// object in AWS (its create or adoption is held, or it is a conflict's). They move to [`Plan::held`],
/// where they are shown and never applied. `desired` gives what each object refers to (a reference to an
/// object whose create is not in the plan has no edge). Runs before [`batch`]: a held change's operations
/// never travel in another change's batch.
fn withhold(p: &mut Plan, desired: &Desired, live: &Live, mut reasons: BTreeMap<Address, String>) {
    let actions: BTreeMap<Address, Action> = p.changes.iter().map(|c| (c.address.clone(), c.action)).collect();
    // Not one object of the fleet's (none, or several claiming the address), or one being created.
    let absent = |a: &Address| live.objects.get(a).is_none_or(|o| o.len() != 1) || matches!(actions.get(a), Some(Action::Create | Action::Replace));
    loop {
        let waiting: Vec<(Address, String)> = p
            .changes
            .iter()
            .filter(|c| !reasons.contains_key(&c.address))
            .filter_map(|c| {
                let refers = desired.get(&c.address).map(Spec::references).unwrap_or_default();
                let waits = c.after.iter().chain(&c.then_after).find(|a| reasons.contains_key(*a));
                let needs = waits.or_else(|| refers.iter().find(|a| reasons.contains_key(*a) && absent(a)));
                needs.map(|a| (c.address.clone(), format!("waits for {a}, which is held")))
            })
            .collect();
        if waiting.is_empty() {
            break;
        }
        reasons.extend(waiting);
    }
    let (held, kept): (Vec<Change>, Vec<Change>) = std::mem::take(&mut p.changes).into_iter().partition(|c| reasons.contains_key(&c.address));
    p.changes = kept;
    p.held.extend(held.into_iter().map(|change| Held { reason: reasons[&change.address].clone(), change }));
}

/// Whether the journal holds a create of `address` under the AWS name `name`.
fn journaled(journal: &[JournalEntry], address: &Address, name: &str) -> bool {
    journal.iter().any(|e| e.aws_name == name && e.address == address.to_string())
}

/// The adoption of `have`, an object without this fleet's tags that its declaration asks to adopt
/// (`asked`), or that this fleet created when a crash or a lost answer cut its tagging off: the diff from it
/// to `want`, which writes the tags (every kind's desired tags are its ownership tags plus the user's) and
/// converges whatever else differs. What an update could not do, an adoption does not do either: a
/// difference that would force a replacement, or one the kind refuses now, is a conflict.
fn adopt(address: &Address, want: &Spec, f: &Foreign, have: &Spec, asked: bool) -> Result<Change, Conflict> {
    let d = want.diff(have);
    if d.forces_replacement() {
        let forced: Vec<&str> = d.fields.iter().filter(|c| c.forces_replacement).map(|c| c.field.as_str()).collect();
        let (what, help) = if asked {
            ("to adopt", format!("declare {} as the object has it (`converge import` writes what it finds)", forced.join(", ")))
        } else {
            ("that an interrupted apply created", format!("delete it (the next apply creates it again), or declare {} as the object has it", forced.join(", ")))
        };
        return Err(Conflict {
            address: Some(address.clone()),
            message: format!("the {} `{}` ({}) {what} differs where it cannot change in place: {}", address.kind.noun(), f.name, f.id, forced.join(", ")),
            help,
        });
    }
    if let Some(refusal) = want.blocked(&d, have) {
        return Err(Conflict::refused(address, refusal));
    }
    Ok(Change::new(address, Action::Adopt, want.aws_name(), Some(&f.id), d.fields, d.ops))
}

/// Journal entries that no longer matter: the object carries its tags now (the create completed), or there
/// is no object of that name and none is desired. The others stay: an untagged object that is adopted now,
/// or one that is no longer desired (reported, never touched, until a person deletes it or declares it again).
fn settled(journal: &[JournalEntry], desired: &Desired, live: &Live) -> Vec<JournalEntry> {
    journal
        .iter()
        .filter(|e| {
            let Ok(address) = e.address.parse::<Address>() else { return true };
            let owned = live.objects.contains_key(&address);
            let exists = live.look_alike(address.kind, &e.aws_name).is_some();
            owned || (!exists && !desired.contains_key(&address))
        })
        .cloned()
        .collect()
}

/// The change that takes `have` to `want`, a conflict that prevents it, or nothing to do.
fn update_or_replace(
    fleet: &str,
    address: &Address,
    want: &Spec,
    have: &LiveObject,
    desired: &Desired,
    live: &Live,
    opts: &PlanOptions,
) -> Option<Result<Change, Conflict>> {
    let mut d = want.diff(&have.spec);
    if opts.replace.contains(address) && !d.forces_replacement() {
        let forced = FieldChange { field: "(object)".into(), old: None, new: None, forces_replacement: true, note: Some("--replace".into()), diff: None };
        d.fields.insert(0, forced);
    }
    if d.fields.is_empty() && d.ops.is_empty() {
        return None;
    }
    if !d.forces_replacement() {
        if let Some(refusal) = want.blocked(&d, &have.spec) {
            return Some(Err(Conflict::refused(address, refusal)));
        }
        return Some(Ok(Change::new(address, Action::Update, want.aws_name(), Some(&have.id), d.fields, d.ops)));
    }
    let forced: Vec<&str> = d.fields.iter().filter(|f| f.forces_replacement).map(|f| f.field.as_str()).collect();
    if let Some(refusal) = want.refuse_replacement(&forced) {
        return Some(Err(Conflict::refused(address, refusal)));
    }
    if want.aws_name() != have.spec.aws_name()
        && let Some(f) = live.look_alike(address.kind, want.aws_name())
    {
        return Some(Err(foreign_conflict(fleet, address, f)));
    }
    // Replacing an object others still use would cut them off (or, in AWS, fail on the delete with
    // DependencyViolation). Say so, and how to do it without an outage. Users that are deleted, or no
    // longer refer to it, let go first (see `order`).
    let users: Vec<String> =
        live.users_of(address).filter(|u| desired.get(*u).is_some_and(|d| d.references().contains(address))).map(ToString::to_string).collect();
    if !users.is_empty() {
        return Some(Err(Conflict {
            address: Some(address.clone()),
            message: format!(
                "must be replaced ({} cannot change in place), but {} still use{} it",
                forced.join(", "),
                users.join(", "),
                if users.len() == 1 { "s" } else { "" }
            ),
            help: format!(
                "keep the old value; or declare the new {} under a new name, point its users at it and apply, then remove {address} and apply again",
                address.kind.noun()
            ),
        }));
    }
    let mut ops = have.spec.delete_ops(&have.id);
    ops.extend(want.create_ops());
    Some(Ok(Change::new(address, Action::Replace, want.aws_name(), Some(&have.id), d.fields, ops)))
}

fn foreign_conflict(fleet: &str, address: &Address, f: &Foreign) -> Conflict {
    let noun = address.kind.noun();
    let owner = match &f.fleet {
        Some(other) => format!("it belongs to fleet `{other}`"),
        None => format!("it lacks the {} and {} tags", resource::FLEET_TAG, resource::ADDRESS_TAG),
    };
    Conflict {
        address: Some(address.clone()),
        message: format!("a {noun} named `{}` ({}) already exists and is not managed by this fleet: {owner}", f.name, f.id),
        help: match &f.fleet {
            Some(_) => {
                format!("converge will not modify or delete it. Give {address} another AWS name (`name = \"...\"`), or remove it from the other fleet first")
            }
            None => {
                let address = address.to_string();
                let tags = [(resource::FLEET_TAG, fleet), (resource::ADDRESS_TAG, address.as_str())];
                format!(
                    "converge will not modify or delete it. To adopt it as {address}, add `adopt = true` to {}, or tag it: `{}`; or give {address} another AWS name (`name = \"...\"`)",
                    f.kind.adopt_in(),
                    f.kind.tag_command(&f.name, &f.id, &tags)
                )
            }
        },
    }
}

/// Operations that a kind batches into one call (a zone's DNS record changes: Route 53 applies a batch
/// atomically, and each call counts) go out together. The first change (by address) with a batch key
/// carries the batch of every change with that key and waits for everything they wait for; the others
/// wait for it, with nothing of their own to run. Called once the plan's changes are final (after
/// `--target`).
pub fn batch(p: &mut Plan) {
    let mut by_key: BTreeMap<(resource::Kind, String), Vec<usize>> = BTreeMap::new();
    for (i, c) in p.changes.iter().enumerate() {
        if let Some(op) = c.ops.first()
            && let Some(key) = op.batch_key()
        {
            by_key.entry((op.kind(), key.to_string())).or_default().push(i);
        }
    }
    for ((kind, key), members) in by_key {
        if members.len() < 2 {
            continue;
        }
        let carrier = p.changes[members[0]].address.clone();
        let mut batched = Vec::new();
        let mut after = BTreeSet::new();
        for &i in &members {
            let c = &mut p.changes[i];
            // Only operations with this key join the batch (a record moving zones keeps its create in the
            // new zone); the rest stay with their change, which runs after the batch.
            let (same, rest): (Vec<Op>, Vec<Op>) =
                std::mem::take(&mut c.ops).into_iter().partition(|op| op.kind() == kind && op.batch_key() == Some(key.as_str()));
            batched.extend(same);
            c.ops = rest;
            after.extend(std::mem::take(&mut c.after));
            if c.address != carrier {
                c.after.insert(carrier.clone());
            }
        }
        let first = &mut p.changes[members[0]];
        let rest = std::mem::replace(&mut first.ops, Op::batch(&key, batched));
        first.ops.extend(rest);
        first.after = after;
    }
}

/// Dependency edges. Creates and updates wait for the creation of what they refer to, except that rules
/// between security groups created (or replaced) together move to a second phase that waits only for the
/// other groups to exist. Deletes wait for every change to an object still referring to them: the deletion
/// itself is a second phase after those changes' first phase, preceded (for a security group) by revoking
/// its own rules that refer to other groups being deleted, so two groups that refer to each other can go.
/// What still forms a cycle becomes a conflict.
fn order(p: &mut Plan, desired: &Desired, live: &Live) {
    let actions: BTreeMap<Address, Action> = p.changes.iter().map(|c| (c.address.clone(), c.action)).collect();
    let new = |a: &Address| matches!(actions.get(a), Some(Action::Create | Action::Replace));
    // Other objects of the same kind created, or deleted, in this plan.
    let others_where = |me: &Address, f: fn(Action) -> bool| -> BTreeSet<String> {
        actions.iter().filter(|(a, act)| a.kind == me.kind && *a != me && f(**act)).map(|(a, _)| a.name.clone()).collect()
    };
    // An object deleted under the same AWS name as one created (an address renamed, keeping `name`) must go
    // first: AWS names are unique.
    let deleted_names: BTreeMap<(resource::Kind, String), Address> =
        p.changes.iter().filter(|c| c.action == Action::Delete).map(|c| ((c.address.kind, c.name.clone()), c.address.clone())).collect();
    for c in &mut p.changes {
        if c.action == Action::Create
            && let Some(gone) = deleted_names.get(&(c.address.kind, c.name.clone()))
        {
            c.after.insert(gone.clone());
        }
        if c.action == Action::Replace {
            // The old object goes first in a replace: its users (deleted, or changed to no longer refer to
            // it; `plan` made a conflict of any other) must have let go by then.
            c.after.extend(live.users_of(&c.address).filter(|u| actions.contains_key(*u)).cloned());
        }
        match (c.action, desired.get(&c.address)) {
            (Action::Create | Action::Update | Action::Replace | Action::Adopt, Some(want)) => {
                if matches!(c.action, Action::Create | Action::Replace) {
                    // References between objects created together (rules between new security groups)
                    // may move to a second phase that waits only for the others' first.
                    let together = others_where(&c.address, |a| matches!(a, Action::Create | Action::Replace));
                    let phases = c.address.kind.split_create(std::mem::take(&mut c.ops), &together);
                    (c.ops, c.then, c.then_after) = (phases.now, phases.later, phases.waits);
                }
                let waits_later = &c.then_after;
                c.after.extend(want.references().into_iter().filter(|d| new(d) && !waits_later.contains(d)));
                // Creations are covered above; an update of theirs (a template's new version, a replica's
                // new class) must come first too.
                c.after.extend(want.waits_for_changes().into_iter().filter(|a| actions.get(a) == Some(&Action::Update)));
            }
            (Action::Delete, _) => {
                let holders: BTreeSet<Address> = live.users_of(&c.address).filter(|h| actions.contains_key(*h)).cloned().collect();
                let gone = others_where(&c.address, |a| matches!(a, Action::Delete | Action::Replace));
                let let_go = live.spec(&c.address).map(|have| have.let_go(&gone)).unwrap_or_default();
                if !holders.is_empty() || !let_go.is_empty() {
                    c.then = std::mem::replace(&mut c.ops, let_go);
                    c.then_after = holders;
                }
            }
            _ => {}
        }
    }
    if let Some(cycle) = find_cycle(&p.changes) {
        let names: Vec<String> = cycle.iter().map(ToString::to_string).collect();
        p.conflicts.push(Conflict {
            address: cycle.first().cloned(),
            message: format!("these changes wait for each other: {}", names.join(" -> ")),
            help: "split the change into two applies: first the objects on their own, then the references between them".into(),
        });
    }
}

/// A node of the apply graph: a change's first (`ops`) or second (`then`) phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Node<'a> {
    pub address: &'a Address,
    pub second: bool,
}

/// The phases of every change and what each waits for: `(node, prerequisites)`. A change's last phase
/// stands for the whole change (what `after` waits for); its first phase, when it has operations, is what
/// `then_after` waits for (the group exists; the references are revoked), else its last.
pub fn graph(changes: &[Change]) -> Vec<(Node<'_>, Vec<Node<'_>>)> {
    let by_address: BTreeMap<&Address, &Change> = changes.iter().map(|c| (&c.address, c)).collect();
    let last = |a: &Address| by_address.get(a).map(|c| Node { address: &c.address, second: !c.then.is_empty() });
    let first = |a: &Address| by_address.get(a).map(|c| Node { address: &c.address, second: c.ops.is_empty() && !c.then.is_empty() });
    let mut out = Vec::new();
    for c in changes {
        out.push((Node { address: &c.address, second: false }, c.after.iter().filter_map(last).collect()));
        if !c.then.is_empty() {
            let mut waits: Vec<Node<'_>> = vec![Node { address: &c.address, second: false }];
            waits.extend(c.then_after.iter().filter_map(first));
            out.push((Node { address: &c.address, second: true }, waits));
        }
    }
    out
}

/// A cycle in the apply graph, by address, if there is one.
pub fn find_cycle(changes: &[Change]) -> Option<Vec<Address>> {
    let edges: BTreeMap<Node<'_>, Vec<Node<'_>>> = graph(changes).into_iter().collect();
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit<'a>(
        n: Node<'a>,
        edges: &BTreeMap<Node<'a>, Vec<Node<'a>>>,
        marks: &mut BTreeMap<Node<'a>, Mark>,
        stack: &mut Vec<Node<'a>>,
    ) -> Option<Vec<Address>> {
        match marks.get(&n) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = stack.iter().position(|s| *s == n).unwrap_or(0);
                let mut cycle: Vec<Address> = stack[start..].iter().map(|s| s.address.clone()).collect();
                cycle.push(n.address.clone());
                cycle.dedup();
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(n, Mark::Open);
        stack.push(n);
        for dep in edges.get(&n).into_iter().flatten() {
            if let Some(c) = visit(*dep, edges, marks, stack) {
                return Some(c);
            }
        }
        stack.pop();
        marks.insert(n, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    let mut stack = Vec::new();
    for n in edges.keys() {
        if let Some(c) = visit(*n, &edges, &mut marks, &mut stack) {
            return Some(c);
        }
    }
    None
}

#[cfg(test)]
mod tests;
