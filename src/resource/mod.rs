//! Resource kinds: for each kind (one module each) its normalised spec (the same type for desired and live,
//! so comparing them is `==` after normalisation), how desired differs from live, which fields force a
//! replacement, the operations that close the gap, and its answers to the engine's policy questions (the
//! [`ResourceKind`] trait). The [registry](registry) lists the kinds once and generates every closed enum
//! and dispatch from that list. Pure: no IO, no AWS types.

pub mod alarm;
pub mod auto_scaling_group;
pub mod bucket;
pub mod db_instance;
pub mod db_parameter_group;
pub mod dns_record;
mod kind;
pub mod launch_template;
pub mod load_balancer;
mod registry;
pub mod security_group;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::Fleet;

pub use alarm::{AlarmOp, AlarmSpec};
pub use auto_scaling_group::{AsgOp, AutoScalingGroupSpec, GroupUpdate, RefreshPrefs, TemplateVersion};
pub use bucket::{BucketOp, BucketSpec};
pub use db_instance::{DbInstanceSpec, DbModify, DbOp};
pub use db_parameter_group::{DbParameterGroupSpec, ParameterValue, PgOp};
pub use dns_record::{DnsOp, DnsRecordSpec, RecordChange};
pub use kind::{Context, Observation, Phases, Refusal, ResourceKind};
pub use launch_template::{ImageRef, LaunchTemplateSpec, LtOp, TemplateData};
pub use load_balancer::{LbOp, LoadBalancerSpec};
pub use registry::{Kind, Op, Reads, Spec, desired, policies};
pub use security_group::{GroupRef, SecurityGroupSpec, SgOp};

/// Tag that scopes an object to a fleet.
pub const FLEET_TAG: &str = "converge:fleet";
/// Tag that names the address an object realises.
pub const ADDRESS_TAG: &str = "converge:address";

/// `kind.name`: the identity of a managed object, recorded on it in the `converge:address` tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Address {
    pub kind: Kind,
    pub name: String,
}

impl Address {
    pub fn new(kind: Kind, name: impl Into<String>) -> Self {
        Address { kind, name: name.into() }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind.as_str(), self.name)
    }
}

impl std::str::FromStr for Address {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, name) = s.split_once('.').ok_or_else(|| format!("`{s}` is not an address (kind.name)"))?;
        let kind = Kind::ALL.iter().copied().find(|k| k.as_str() == kind).ok_or_else(|| format!("`{kind}` is not a resource kind"))?;
        if name.is_empty() {
            return Err(format!("`{s}` has no name"));
        }
        Ok(Address::new(kind, name))
    }
}

impl From<Address> for String {
    fn from(a: Address) -> String {
        a.to_string()
    }
}

impl TryFrom<String> for Address {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// One changed field, for people: `old -> new`, `+ new` or `- old`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
    /// This field cannot change in place: the object is replaced.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub forces_replacement: bool,
    /// A note on how the change is made (e.g. "listener re-created").
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub note: Option<String>,
    /// For long text (user data): a unified diff of old and new, the changed lines with context.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub diff: Option<String>,
}

impl FieldChange {
    pub fn changed(field: impl Into<String>, old: impl fmt::Display, new: impl fmt::Display) -> Self {
        FieldChange { field: field.into(), old: Some(old.to_string()), new: Some(new.to_string()), forces_replacement: false, note: None, diff: None }
    }
    pub fn added(field: impl Into<String>, new: impl fmt::Display) -> Self {
        FieldChange { field: field.into(), old: None, new: Some(new.to_string()), forces_replacement: false, note: None, diff: None }
    }
    pub fn removed(field: impl Into<String>, old: impl fmt::Display) -> Self {
        FieldChange { field: field.into(), old: Some(old.to_string()), new: None, forces_replacement: false, note: None, diff: None }
    }
    pub fn forcing(mut self) -> Self {
        self.forces_replacement = true;
        self
    }
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
    pub fn diff(mut self, diff: impl Into<String>) -> Self {
        self.diff = Some(diff.into());
        self
    }
}

/// What desired differs from live in, and how to close the gap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    pub fields: Vec<FieldChange>,
    pub ops: Vec<Op>,
}

impl Diff {
    pub fn forces_replacement(&self) -> bool {
        self.fields.iter().any(|f| f.forces_replacement)
    }
}

/// Facts about the account that turn the model into specs (the VPC, its zones, the images resolved).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    pub vpc_id: String,
    /// Whether the VPC has an IPv6 block (AWS's default egress of a new group is then dual-stack); read
    /// only when the fleet has security groups.
    pub vpc_ipv6: bool,
    pub zones: Vec<String>,
    /// The fleet's images (`[image.NAME]`) as resolved: by id, or the newest matching image.
    pub images: BTreeMap<String, ImageRef>,
    /// Per parameter group family, the engine's parameters and whether each is static (applies only at a
    /// reboot); read only for families with parameters to change.
    pub static_parameters: BTreeMap<String, BTreeMap<String, bool>>,
    /// The account's public hosted zones: name (lower case, no trailing dot) -> id.
    pub hosted_zones: BTreeMap<String, String>,
    /// The private hosted zones of the fleet's VPC (read when a database has a hostname): name -> id.
    pub private_zones: BTreeMap<String, String>,
    /// Load balancers' DNS names, by AWS name (for the records pointing at them).
    pub balancer_dns: BTreeMap<String, String>,
    /// Database instances' endpoints, by identifier (for their hostnames).
    pub db_endpoints: BTreeMap<String, String>,
    pub region: String,
}

/// Where an object of the default VPC (or the fleet's) runs, from its own `zones`/`subnets`, else the
/// network's, else the VPC's zones: (zones, subnets), exactly one of them non-empty. Explicit subnets decide
/// the zones, so then `zones` is empty and not compared.
pub(crate) fn placement(zones: &[String], subnets: &[String], fleet: &Fleet, env: &Environment) -> (BTreeSet<String>, BTreeSet<String>) {
    let subnets: &[String] = if !subnets.is_empty() {
        subnets
    } else if zones.is_empty() {
        &fleet.network.subnets
    } else {
        &[]
    };
    if !subnets.is_empty() {
        return (BTreeSet::new(), subnets.iter().cloned().collect());
    }
    let zones = if !zones.is_empty() {
        zones
    } else if !fleet.network.zones.is_empty() {
        &fleet.network.zones
    } else {
        &env.zones
    };
    (zones.iter().cloned().collect(), BTreeSet::new())
}

/// The desired state as specs, by address.
pub type Desired = BTreeMap<Address, Spec>;

/// Tags as the AWS CLI's shorthand takes them: `Key=converge:fleet,Value=agency Key=...`.
pub(crate) fn cli_tags(tags: &[(&str, &str)]) -> String {
    tags.iter().map(|(k, v)| format!("Key={k},Value={v}")).collect::<Vec<_>>().join(" ")
}

/// Our ownership tags plus the user's tags.
/// What the declarations say of how converge takes their objects ([`policies`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    /// Addresses whose declaration says `adopt = true`.
    pub adopt: BTreeSet<Address>,
    /// Management policies declared on an entity.
    pub manage: BTreeMap<Address, crate::model::Manage>,
    /// Management policies declared for a whole table (`[fleet] manage`): they also cover objects no longer
    /// declared, which only their kind names.
    pub by_kind: BTreeMap<Kind, crate::model::Manage>,
    /// `reconcile_every` declared on an entity: the loop acts on its objects at most this often.
    pub reconcile_every: BTreeMap<Address, std::time::Duration>,
}

impl Policies {
    /// The management policy of the object at `address`.
    pub fn manage_of(&self, address: &Address) -> crate::model::Manage {
        self.manage.get(address).or_else(|| self.by_kind.get(&address.kind)).copied().unwrap_or_default()
    }
}

/// The tag keys that make an object the fleet's: what `converge forget` removes.
pub fn ownership_keys() -> Vec<String> {
    vec![FLEET_TAG.to_string(), ADDRESS_TAG.to_string()]
}

pub fn owned_tags(fleet: &str, address: &Address, user: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut tags = user.clone();
    tags.insert(FLEET_TAG.to_string(), fleet.to_string());
    tags.insert(ADDRESS_TAG.to_string(), address.to_string());
    tags
}

/// Tags compare without AWS's own (`aws:*`), which nobody can set.
pub fn comparable_tags(tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    tags.iter().filter(|(k, _)| !k.starts_with("aws:")).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Field changes and the (add, remove) sets for a tag map.
pub fn diff_tags(
    desired: &BTreeMap<String, String>,
    live: &BTreeMap<String, String>,
    fields: &mut Vec<FieldChange>,
) -> Option<(BTreeMap<String, String>, Vec<String>)> {
    diff_map("tags", desired, live, fields)
}

/// `[a, b]`: how a set reads in a plan.
pub(crate) fn list<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    format!("[{}]", items.join(", "))
}

/// Field changes (`prefix.key`) and the (add, remove) sets for a map of tags, without AWS's own.
pub fn diff_map(
    prefix: &str,
    desired: &BTreeMap<String, String>,
    live: &BTreeMap<String, String>,
    fields: &mut Vec<FieldChange>,
) -> Option<(BTreeMap<String, String>, Vec<String>)> {
    let live = comparable_tags(live);
    let mut add = BTreeMap::new();
    let mut remove = Vec::new();
    for (k, v) in desired {
        match live.get(k) {
            Some(old) if old == v => {}
            Some(old) => {
                fields.push(FieldChange::changed(format!("{prefix}.{k}"), old, v));
                add.insert(k.clone(), v.clone());
            }
            None => {
                fields.push(FieldChange::added(format!("{prefix}.{k}"), v));
                add.insert(k.clone(), v.clone());
            }
        }
    }
    for (k, v) in &live {
        if !desired.contains_key(k) {
            fields.push(FieldChange::removed(format!("{prefix}.{k}"), v));
            remove.push(k.clone());
        }
    }
    (!add.is_empty() || !remove.is_empty()).then_some((add, remove))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_named_alike_in_addresses_json_and_sentences() {
        for &kind in Kind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str(), "the serde name and ResourceKind::NAME of {kind:?} agree");
            assert_eq!(format!("{}.x", kind.as_str()).parse::<Address>().unwrap().kind, kind);
            assert!(!kind.noun().is_empty());
        }
        let mut sorted = Kind::ALL.to_vec();
        sorted.sort();
        assert_eq!(sorted, Kind::ALL, "Kind::ALL is in the registry's order, the order a plan lists kinds");
    }

    #[test]
    fn addresses_round_trip() {
        let a: Address = "load_balancer.shared".parse().unwrap();
        assert_eq!(a, Address::new(Kind::LoadBalancer, "shared"));
        assert_eq!(a.to_string(), "load_balancer.shared");
        assert!("nonsense.x".parse::<Address>().is_err());
        assert!("security_group".parse::<Address>().is_err());
    }

    #[test]
    fn tag_diff_ignores_aws_tags_and_reports_each_key() {
        let desired = BTreeMap::from([("team".to_string(), "web".to_string()), ("env".to_string(), "prod".to_string())]);
        let live = BTreeMap::from([
            ("team".to_string(), "ops".to_string()),
            ("aws:cloudformation:stack".to_string(), "x".to_string()),
            ("old".to_string(), "1".to_string()),
        ]);
        let mut fields = Vec::new();
        let (add, remove) = diff_tags(&desired, &live, &mut fields).unwrap();
        assert_eq!(add.len(), 2);
        assert_eq!(remove, vec!["old".to_string()]);
        assert_eq!(fields.len(), 3);
    }
}
