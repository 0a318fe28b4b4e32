//! Resource kinds: for each kind its normalised spec (the same type for desired and live, so comparing them
//! is `==` after normalisation), how desired differs from live, which fields force a replacement, and the
//! operations that close the gap. Pure: no IO, no AWS types.

pub mod auto_scaling_group;
pub mod bucket;
pub mod db_instance;
pub mod db_parameter_group;
pub mod dns_record;
pub mod launch_template;
pub mod load_balancer;
pub mod security_group;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::Fleet;

pub use auto_scaling_group::{AsgOp, AutoScalingGroupSpec, GroupUpdate, Observation, RefreshPrefs, TemplateVersion};
pub use bucket::{BucketOp, BucketSpec};
pub use db_instance::{DbInstanceSpec, DbModify, DbOp};
pub use db_parameter_group::{DbParameterGroupSpec, ParameterValue, PgOp};
pub use dns_record::{DnsOp, DnsRecordSpec, RecordChange};
pub use launch_template::{ImageRef, LaunchTemplateSpec, LtOp, TemplateData};
pub use load_balancer::{LbOp, LoadBalancerSpec};
pub use security_group::{SecurityGroupSpec, SgOp};

/// Tag that scopes an object to a fleet.
pub const FLEET_TAG: &str = "converge:fleet";
/// Tag that names the address an object realises.
pub const ADDRESS_TAG: &str = "converge:address";

/// Every kind of the design (DESIGN.md §2), in the order a plan lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    SecurityGroup,
    LoadBalancer,
    LaunchTemplate,
    AutoScalingGroup,
    DbParameterGroup,
    DbInstance,
    DnsRecord,
    Bucket,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SecurityGroup => "security_group",
            Kind::LoadBalancer => "load_balancer",
            Kind::LaunchTemplate => "launch_template",
            Kind::AutoScalingGroup => "auto_scaling_group",
            Kind::DbParameterGroup => "db_parameter_group",
            Kind::DbInstance => "db_instance",
            Kind::DnsRecord => "dns_record",
            Kind::Bucket => "bucket",
        }
    }

    const ALL: [Kind; 8] = [
        Kind::SecurityGroup,
        Kind::LoadBalancer,
        Kind::LaunchTemplate,
        Kind::AutoScalingGroup,
        Kind::DbParameterGroup,
        Kind::DbInstance,
        Kind::DnsRecord,
        Kind::Bucket,
    ];
}

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
        let kind = Kind::ALL.into_iter().find(|k| k.as_str() == kind).ok_or_else(|| format!("`{kind}` is not a resource kind"))?;
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

/// A security group as other objects refer to it: one of this fleet's by address, or any other by id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupRef {
    Fleet(String),
    Id(String),
}

impl GroupRef {
    pub fn address(&self) -> Option<Address> {
        match self {
            GroupRef::Fleet(name) => Some(Address::new(Kind::SecurityGroup, name)),
            GroupRef::Id(_) => None,
        }
    }

    /// Live objects name groups by id: ours become addresses, others stay ids.
    pub fn from_id(id: &str, ours: &BTreeMap<String, String>) -> GroupRef {
        match ours.get(id) {
            Some(name) => GroupRef::Fleet(name.clone()),
            None => GroupRef::Id(id.to_string()),
        }
    }
}

impl fmt::Display for GroupRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupRef::Fleet(name) => write!(f, "security_group.{name}"),
            GroupRef::Id(id) => f.write_str(id),
        }
    }
}

/// The spec of one object, desired or live, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
// A plan holds one spec per object (hundreds at most): boxing the big variants would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Spec {
    SecurityGroup(SecurityGroupSpec),
    LoadBalancer(LoadBalancerSpec),
    LaunchTemplate(LaunchTemplateSpec),
    AutoScalingGroup(AutoScalingGroupSpec),
    DbParameterGroup(DbParameterGroupSpec),
    DbInstance(DbInstanceSpec),
    DnsRecord(DnsRecordSpec),
    Bucket(BucketSpec),
}

impl Spec {
    /// The AWS name of the object (what a hand-made look-alike would clash on).
    pub fn aws_name(&self) -> &str {
        match self {
            Spec::SecurityGroup(s) => &s.name,
            Spec::LoadBalancer(s) => &s.name,
            Spec::LaunchTemplate(s) => &s.name,
            Spec::AutoScalingGroup(s) => &s.name,
            Spec::DbParameterGroup(s) => &s.name,
            Spec::DbInstance(s) => &s.identifier,
            Spec::DnsRecord(s) => &s.name,
            Spec::Bucket(s) => &s.name,
        }
    }

    /// Other addresses this object refers to: they must exist before it, and outlive it.
    pub fn references(&self) -> BTreeSet<Address> {
        match self {
            Spec::SecurityGroup(s) => s.references(),
            Spec::LoadBalancer(s) => s.references(),
            Spec::LaunchTemplate(s) => s.references(),
            Spec::AutoScalingGroup(s) => s.references(),
            Spec::DbParameterGroup(_) => BTreeSet::new(),
            Spec::DbInstance(s) => s.references(),
            Spec::DnsRecord(s) => s.references(),
            Spec::Bucket(_) => BTreeSet::new(),
        }
    }

    /// Objects whose change of any kind (not only their creation) must come first: a group moving to the
    /// version its template's change creates; a primary database after its replicas.
    pub fn waits_for_changes(&self) -> BTreeSet<Address> {
        match self {
            Spec::AutoScalingGroup(s) if s.version == TemplateVersion::New => BTreeSet::from([Address::new(Kind::LaunchTemplate, &s.pool)]),
            Spec::DbInstance(s) => s.waits_for_changes(),
            _ => BTreeSet::new(),
        }
    }

    /// Attributes shown when the object is created or deleted.
    pub fn describe(&self) -> Vec<(String, String)> {
        match self {
            Spec::SecurityGroup(s) => s.describe(),
            Spec::LoadBalancer(s) => s.describe(),
            Spec::LaunchTemplate(s) => s.describe(),
            Spec::AutoScalingGroup(s) => s.describe(),
            Spec::DbParameterGroup(s) => s.describe(),
            Spec::DbInstance(s) => s.describe(),
            Spec::DnsRecord(s) => s.describe(),
            Spec::Bucket(s) => s.describe(),
        }
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

/// An AWS operation the plan decided on; the `aws` module turns each into its API calls, nothing more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum Op {
    SecurityGroup(SgOp),
    LoadBalancer(LbOp),
    LaunchTemplate(LtOp),
    AutoScalingGroup(AsgOp),
    DbParameterGroup(PgOp),
    DbInstance(DbOp),
    DnsRecord(DnsOp),
    Bucket(BucketOp),
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

/// Compares desired with live (same kind, both normalised).
pub fn diff(desired: &Spec, live: &Spec) -> Diff {
    match (desired, live) {
        (Spec::SecurityGroup(d), Spec::SecurityGroup(l)) => d.diff(l),
        (Spec::LoadBalancer(d), Spec::LoadBalancer(l)) => d.diff(l),
        (Spec::LaunchTemplate(d), Spec::LaunchTemplate(l)) => d.diff(l),
        (Spec::AutoScalingGroup(d), Spec::AutoScalingGroup(l)) => d.diff(l),
        (Spec::DbParameterGroup(d), Spec::DbParameterGroup(l)) => d.diff(l),
        (Spec::DbInstance(d), Spec::DbInstance(l)) => d.diff(l),
        (Spec::DnsRecord(d), Spec::DnsRecord(l)) => d.diff(l),
        (Spec::Bucket(d), Spec::Bucket(l)) => d.diff(l),
        _ => unreachable!("an address has one kind"),
    }
}

/// Values AWS or a policy owns that differ from the declaration (shown, never changed).
pub fn observe(desired: &Spec, live: &Spec) -> Vec<Observation> {
    match (desired, live) {
        (Spec::AutoScalingGroup(d), Spec::AutoScalingGroup(l)) => d.observe(l),
        (Spec::DbInstance(d), Spec::DbInstance(l)) => d.observe(l),
        _ => Vec::new(),
    }
}

/// Why a diff cannot be applied now (message, help): e.g. a refresh already running on the group.
pub fn blocked(desired: &Spec, diff: &Diff, live: &Spec) -> Option<(String, String)> {
    match (desired, live) {
        (Spec::AutoScalingGroup(d), Spec::AutoScalingGroup(l)) => d.blocked(diff, l),
        (Spec::DbInstance(d), Spec::DbInstance(l)) => d.blocked(diff, l),
        _ => None,
    }
}

/// The operations that create an object from nothing.
pub fn create_ops(desired: &Spec) -> Vec<Op> {
    match desired {
        Spec::SecurityGroup(s) => s.create_ops(),
        Spec::LoadBalancer(s) => s.create_ops(),
        Spec::LaunchTemplate(s) => s.create_ops(),
        Spec::AutoScalingGroup(s) => s.create_ops(),
        Spec::DbParameterGroup(s) => s.create_ops(),
        Spec::DbInstance(s) => s.create_ops(),
        Spec::DnsRecord(s) => s.create_ops(),
        Spec::Bucket(s) => s.create_ops(),
    }
}

/// The operation that deletes a live object.
pub fn delete_ops(live: &Spec, id: &str) -> Vec<Op> {
    match live {
        Spec::SecurityGroup(_) => vec![Op::SecurityGroup(SgOp::Delete { id: id.to_string() })],
        Spec::LoadBalancer(s) => vec![Op::LoadBalancer(LbOp::Delete { name: s.name.clone() })],
        Spec::LaunchTemplate(_) => vec![Op::LaunchTemplate(LtOp::Delete { id: id.to_string() })],
        Spec::AutoScalingGroup(s) => vec![Op::AutoScalingGroup(AsgOp::Delete { name: s.name.clone() })],
        Spec::DbParameterGroup(s) => vec![Op::DbParameterGroup(PgOp::Delete { name: s.name.clone() })],
        Spec::DbInstance(s) => s.delete_ops(),
        Spec::DnsRecord(s) => s.delete_ops(),
        Spec::Bucket(s) => vec![Op::Bucket(BucketOp::Delete { name: s.name.clone() })],
    }
}

/// Facts about the account that turn the model into specs (the VPC, its zones, the images resolved).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    pub vpc_id: String,
    pub zones: Vec<String>,
    /// The fleet's images (`[image.NAME]`) as resolved: by id, or the newest matching image.
    pub images: BTreeMap<String, ImageRef>,
    /// Per parameter group family, the engine's parameters and whether each is static (applies only at a
    /// reboot); read only for families with parameters to change.
    pub static_parameters: BTreeMap<String, BTreeMap<String, bool>>,
    /// The account's hosted zones: name (lower case, no trailing dot) -> id.
    pub hosted_zones: BTreeMap<String, String>,
    /// Load balancers' DNS names, by AWS name (for the records pointing at them).
    pub balancer_dns: BTreeMap<String, String>,
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

/// Builds every desired spec of the kinds converge manages today from the model.
pub fn desired(fleet: &Fleet, env: &Environment) -> Desired {
    let mut out = Desired::new();
    for name in fleet.security_groups.keys() {
        out.insert(Address::new(Kind::SecurityGroup, name), Spec::SecurityGroup(SecurityGroupSpec::from_model(fleet, name, env)));
    }
    for name in fleet.load_balancers.keys() {
        out.insert(Address::new(Kind::LoadBalancer, name), Spec::LoadBalancer(LoadBalancerSpec::from_model(fleet, name, env)));
    }
    for name in fleet.db_parameter_groups.keys() {
        out.insert(Address::new(Kind::DbParameterGroup, name), Spec::DbParameterGroup(DbParameterGroupSpec::from_model(fleet, name, env)));
    }
    for name in fleet.databases.keys() {
        out.insert(Address::new(Kind::DbInstance, name), Spec::DbInstance(DbInstanceSpec::from_model(fleet, name, env)));
    }
    out.extend(dns_record::desired(fleet, env).into_iter().map(|(a, s)| (a, Spec::DnsRecord(s))));
    out.extend(BucketSpec::desired(fleet, env).into_iter().map(|(a, s)| (a, Spec::Bucket(s))));
    for name in fleet.pools.keys() {
        out.insert(Address::new(Kind::LaunchTemplate, name), Spec::LaunchTemplate(LaunchTemplateSpec::from_model(fleet, name, env)));
        out.insert(Address::new(Kind::AutoScalingGroup, name), Spec::AutoScalingGroup(AutoScalingGroupSpec::from_model(fleet, name, env)));
    }
    out
}

/// Our ownership tags plus the user's tags.
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
