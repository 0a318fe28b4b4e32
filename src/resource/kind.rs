//! What every resource kind answers: the [`ResourceKind`] trait. The engine (`plan`) asks these questions
//! of a spec and never names a kind; the [registry](super::registry) turns the answers into the closed
//! [`Kind`], [`Spec`] and [`Op`] enums and their dispatch.

use std::collections::BTreeSet;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Address, Desired, Diff, Environment, Kind, Op, Spec};
use crate::model::{Fleet, Policy, Site};

/// Why the engine will not do something to an object, and what the user can do: becomes a plan conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    pub help: String,
}

impl Refusal {
    pub fn new(message: impl Into<String>, help: impl Into<String>) -> Refusal {
        Refusal { message: message.into(), help: help.into() }
    }
}

/// A value AWS or a policy owns, reported beside the plan and never changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub field: String,
    pub value: String,
    pub note: String,
    /// For reference only: a value AWS assigned because the desired state leaves it to AWS (a database's
    /// maintenance window, its zone). Shown, but never counted by `drift --fail-on observed`.
    pub info: bool,
}

impl Observation {
    /// A value that differs from the declaration, or was changed outside converge: counts for
    /// `drift --fail-on observed`.
    pub fn new(field: impl Into<String>, value: impl Into<String>, note: impl Into<String>) -> Observation {
        Observation { field: field.into(), value: value.into(), note: note.into(), info: false }
    }

    /// A value AWS assigned where the desired state leaves it to AWS: shown for reference only.
    pub fn info(field: impl Into<String>, value: impl Into<String>, note: impl Into<String>) -> Observation {
        Observation { info: true, ..Observation::new(field, value, note) }
    }
}

/// What a kind's [`ResourceKind::prepare`] may look at: the other desired specs and the live specs by
/// address, and the plan's options that concern specs.
pub struct Context<'a> {
    pub desired: &'a Desired,
    pub live: &'a dyn Fn(&Address) -> Option<&'a Spec>,
    /// `--apply-immediately`.
    pub apply_immediately: bool,
}

/// How a create splits into two phases (see `plan::Change::then`): what runs at once, what runs once
/// `waits` have done their first phase.
pub struct Phases {
    pub now: Vec<Op>,
    pub later: Vec<Op>,
    pub waits: BTreeSet<Address>,
}

/// One kind of object converge manages. The spec type is the same for desired and live (normalised), so
/// that after a successful apply `diff` is empty. Pure: no IO, no AWS types.
///
/// Only the first block of items is required; the rest are policy hooks with the common answer as their
/// default, overridden by the kinds they concern.
pub trait ResourceKind: Sized + Clone + PartialEq + Serialize + DeserializeOwned + Into<Spec> {
    /// The kind as the registry names it.
    const KIND: Kind;
    /// The kind in addresses, tags and JSON: `security_group`.
    const NAME: &'static str;
    /// The kind in sentences: `security group`.
    const NOUN: &'static str;
    /// The table its objects are declared in, as `[fleet] manage` names it (`database`).
    const TABLE: &'static str;
    /// Where `adopt = true` goes for an object of this kind, for a conflict's help.
    const ADOPT_IN: &'static str = "its declaration";
    /// Its operations: the `aws` module turns each into API calls.
    type Op: Clone + PartialEq + Serialize + DeserializeOwned + Into<Op>;

    /// Every desired object of this kind, by the name in its address.
    fn desired(fleet: &Fleet, env: &Environment) -> Vec<(String, Self)>;
    /// The policy each desired object's declaration states (`adopt`, `manage`), by the name in its
    /// address: an untagged look-alike of one that says `adopt = true` is adopted
    /// ([`crate::plan::Action::Adopt`]) instead of a conflict; `manage` holds changes back.
    fn policies(fleet: &Fleet) -> Vec<(String, Policy)>;
    /// The AWS name (what a hand-made look-alike would clash on).
    fn aws_name(&self) -> &str;
    /// Attributes shown when the object is created or deleted.
    fn describe(&self) -> Vec<(String, String)>;
    /// Field changes for people and the operations that take `live` to `self`.
    fn diff(&self, live: &Self) -> Diff;
    /// The operations that create the object from nothing.
    fn create_ops(&self) -> Vec<Op>;
    /// The operations that delete the live object whose id is `id`.
    fn delete_ops(&self, id: &str) -> Vec<Op>;
    /// The operations that let the live object whose id is `id` go without deleting it: its ownership
    /// (the fleet and address tags; a record's TXT) removed, nothing else touched (`converge forget`).
    fn forget_ops(&self, id: &str) -> Vec<Op>;

    /// Other addresses this object refers to: they must exist before it, and outlive it.
    fn references(&self) -> BTreeSet<Address> {
        BTreeSet::new()
    }
    /// Objects whose change of any kind (not only their creation) must come first.
    fn waits_for_changes(&self) -> BTreeSet<Address> {
        BTreeSet::new()
    }
    /// Makes the desired spec what this plan applies, from the rest of the desired and live state (a
    /// group pinned to a template version; a database's changes applied now).
    fn prepare(&mut self, _cx: &Context<'_>) {}
    /// Values AWS or a policy owns that differ from the declaration: shown, never changed.
    fn observe(&self, _live: &Self) -> Vec<Observation> {
        Vec::new()
    }
    /// Why `diff` cannot be applied now (a refresh already running).
    fn blocked(&self, _diff: &Diff, _live: &Self) -> Option<Refusal> {
        None
    }
    /// Why the object must not be replaced even though `forced` fields cannot change in place.
    fn refuse_replacement(&self, _forced: &[&str]) -> Option<Refusal> {
        None
    }
    /// Why the live object must not be deleted now (`allow_destroy`: `--allow-destroy` was given).
    fn guard_deletion(&self, _allow_destroy: bool) -> Option<Refusal> {
        None
    }
    /// A create's two phases, when objects of this kind created together refer to each other
    /// (`together`: the names of the others created in this plan).
    fn split_create(ops: Vec<Op>, _together: &BTreeSet<String>) -> Phases {
        Phases { now: ops, later: Vec::new(), waits: BTreeSet::new() }
    }
    /// Operations that let go of other objects of this kind being deleted with it (`gone`), before its
    /// own deletion waits for them: two objects that refer to each other can then both go.
    fn let_go(&self, _gone: &BTreeSet<String>) -> Vec<Op> {
        Vec::new()
    }
    /// The one command (the AWS CLI's) that gives the existing object named `name`, with id `id`, the
    /// `tags`: what a conflict over a hand-made look-alike tells the user to run to adopt it.
    fn tag_command(name: &str, id: &str, tags: &[(&str, &str)]) -> String;
    /// The names of the objects of this kind on a site's path (the site's changes affect them).
    fn on_site_path(_fleet: &Fleet, _site: &str, _s: &Site) -> Vec<String> {
        Vec::new()
    }
    /// The environment variable an operation reads when it runs (a master password), checked before an
    /// apply starts.
    fn reads_env(_op: &Self::Op) -> Option<&str> {
        None
    }
    /// Operations with the same key go out as one call ([`ResourceKind::batch`]): a zone's record changes.
    fn batch_key(_op: &Self::Op) -> Option<&str> {
        None
    }
    /// The one operation that carries `ops` (all with `key`).
    fn batch(_key: &str, ops: Vec<Self::Op>) -> Vec<Self::Op> {
        ops
    }
}
