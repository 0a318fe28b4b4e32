//! Live state: what the provider read, as the engine sees it. Owned objects by address, look-alikes the
//! fleet does not own, and objects outside the fleet that reach into it. Pure: the `aws` module fills a
//! [`Reads`] (one [`Found`] per kind) and turns it into [`Live`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::resource::{Address, Kind, ResourceKind, Spec};

pub use crate::resource::Reads;

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
    /// Its spec, normalised as an owned object's, when the reader could build it (what an adoption diffs
    /// against); `None` for objects of other fleets, which are never adopted.
    pub spec: Option<Spec>,
}

/// An object converge does not own but that reaches into the fleet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Unmanaged {
    pub kind: Kind,
    pub name: String,
    /// How it reaches into the fleet, e.g. `uses security_group.lb`.
    pub reason: String,
}

/// A look-alike as a reader found it: AWS name, id, the fleet tag it carries, its spec when it could be read.
pub type Look<S> = (String, String, Option<String>, Option<S>);

/// What a reader found of one kind.
#[derive(Debug, Clone)]
pub struct Found<S> {
    /// Owned objects: the address their tags name, their id, their spec.
    pub owned: Vec<(Address, String, S)>,
    /// Look-alikes: (AWS name, id, the fleet tag they carry, their spec when it could be read).
    pub foreign: Vec<Look<S>>,
    /// Objects in the fleet's scope it does not own: (AWS name, how they reach into the fleet).
    pub unmanaged: Vec<(String, String)>,
}

impl<S> Default for Found<S> {
    fn default() -> Self {
        Found { owned: Vec::new(), foreign: Vec::new(), unmanaged: Vec::new() }
    }
}

impl<S: ResourceKind> Found<S> {
    pub fn own(&mut self, address: Address, id: impl Into<String>, spec: S) {
        self.owned.push((address, id.into(), spec));
    }

    pub fn foreign(&mut self, name: impl Into<String>, id: impl Into<String>, fleet: Option<String>, spec: Option<S>) {
        self.foreign.push((name.into(), id.into(), fleet, spec));
    }

    pub fn unmanaged(&mut self, name: impl Into<String>, reason: impl Into<String>) {
        self.unmanaged.push((name.into(), reason.into()));
    }

    /// Owned objects' ids -> their names in the fleet (other objects name them by id).
    pub fn ids(&self) -> BTreeMap<String, String> {
        self.owned.iter().map(|(a, id, _)| (id.clone(), a.name.clone())).collect()
    }

    /// Owned objects' AWS names -> their names in the fleet.
    pub fn aws_names(&self) -> BTreeMap<String, String> {
        self.owned.iter().map(|(a, _, s)| (s.aws_name().to_string(), a.name.clone())).collect()
    }
}

/// Everything the provider read.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// Owned objects by the address in their `converge:address` tag (several if tags were copied by hand).
    pub objects: BTreeMap<Address, Vec<LiveObject>>,
    pub foreign: Vec<Foreign>,
    /// Objects in the fleet's scope that converge does not own, e.g. a hand-made load balancer that uses
    /// one of the fleet's security groups. Reported, never touched.
    pub unmanaged: Vec<Unmanaged>,
}

impl Live {
    pub fn insert(&mut self, address: Address, object: LiveObject) {
        self.objects.entry(address).or_default().push(object);
    }

    /// Adds what a reader found of one kind.
    pub fn absorb<S: ResourceKind>(&mut self, found: Found<S>) {
        for (address, id, spec) in found.owned {
            self.insert(address, LiveObject { id, spec: spec.into() });
        }
        self.foreign.extend(found.foreign.into_iter().map(|(name, id, fleet, spec)| Foreign { kind: S::KIND, name, id, fleet, spec: spec.map(Into::into) }));
        self.unmanaged.extend(found.unmanaged.into_iter().map(|(name, reason)| Unmanaged { kind: S::KIND, name, reason }));
    }

    /// The live spec at `address` (the first, when several objects claim it: the plan makes that a conflict).
    pub fn spec(&self, address: &Address) -> Option<&Spec> {
        self.objects.get(address).and_then(|o| o.first()).map(|o| &o.spec)
    }

    /// A same-kind object with this AWS name that this fleet does not own.
    pub fn look_alike(&self, kind: Kind, name: &str) -> Option<&Foreign> {
        self.foreign.iter().find(|f| f.kind == kind && f.name == name)
    }

    /// Objects (other than `address` itself) whose live specs refer to `address`.
    pub fn users_of<'a>(&'a self, address: &'a Address) -> impl Iterator<Item = &'a Address> + 'a {
        self.objects.iter().filter(move |(a, objs)| *a != address && objs.iter().any(|o| o.spec.references().contains(address))).map(|(a, _)| a)
    }

    /// Live ids of this fleet's objects of `kind` -> their names in the fleet (for turning ids into
    /// addresses: security groups are named by id).
    pub fn ids_of(&self, kind: Kind) -> BTreeMap<String, String> {
        self.objects.iter().filter(|(a, _)| a.kind == kind).flat_map(|(a, objs)| objs.iter().map(|o| (o.id.clone(), a.name.clone()))).collect()
    }
}
