//! Security groups: a group and its ingress and egress rules, compared rule by rule.
//!
//! Rules are normalised to atoms (one protocol, one port range, one peer), the way EC2 stores them, so a
//! rule written with three CIDRs equals the three permissions AWS reports, whatever the grouping or order.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Address, Diff, Environment, FieldChange, Kind, Op, Phases, ResourceKind, diff_tags, owned_tags};
use crate::model::{self, Fleet, Protocol, Site};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroupSpec {
    pub name: String,
    pub description: String,
    pub vpc_id: String,
    pub ingress: BTreeSet<RuleSpec>,
    pub egress: BTreeSet<RuleSpec>,
    pub tags: BTreeMap<String, String>,
    /// Whether the VPC has an IPv6 block, so that AWS gives a new group an IPv6 default egress rule too: a
    /// fact of the environment (live groups carry it as well), never compared.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dual_stack: bool,
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

    /// A group as the desired state names it: one of the fleet's by name, or any other by its id.
    pub fn declared(name: &str) -> GroupRef {
        if crate::model::is_group_id(name) { GroupRef::Id(name.to_string()) } else { GroupRef::Fleet(name.to_string()) }
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

/// Where a rule lets traffic come from (ingress) or go to (egress).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Peer {
    Cidr(String),
    Group(GroupRef),
    PrefixList(String),
}

/// One permission atom, as EC2 stores it. `protocol` is `tcp`, `udp`, `icmp`, `icmpv6`, `-1` (all) or another
/// protocol's number; `from_port`/`to_port` are the port range (tcp, udp), the ICMP type and code (icmp,
/// icmpv6), and -1 where they do not apply or mean every one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RuleSpec {
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    pub peer: Peer,
    /// What the rule is for, kept by EC2 beside the peer. Not part of what the rule is: a new description
    /// is updated in place, the rule kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl RuleSpec {
    /// Normalises a protocol and port range as EC2 reports them: protocol names or numbers (EC2 answers with
    /// the names of tcp, udp, icmp and icmpv6 however they were written), `-1`, absent ports. Protocols
    /// other than those four have no ports (EC2 opens every one), and every ICMP type takes every code.
    pub fn new(protocol: &str, from: Option<i32>, to: Option<i32>, peer: Peer) -> Self {
        let protocol = match protocol.to_ascii_lowercase().as_str() {
            "6" | "tcp" => "tcp".to_string(),
            "17" | "udp" => "udp".to_string(),
            "1" | "icmp" => "icmp".to_string(),
            "58" | "icmpv6" => "icmpv6".to_string(),
            "-1" | "all" => "-1".to_string(),
            other => other.parse::<u8>().map_or_else(|_| other.to_string(), |n| n.to_string()),
        };
        let (from, to) = (from.unwrap_or(-1), to.unwrap_or(-1));
        let (from_port, to_port) = match protocol.as_str() {
            "tcp" | "udp" => (from, to),
            "icmp" | "icmpv6" if from >= 0 => (from, to),
            _ => (-1, -1),
        };
        RuleSpec { protocol, from_port, to_port, peer, description: None }
    }

    /// The rule with a description (an empty one is none, as EC2 reads).
    pub fn described(self, description: Option<&str>) -> Self {
        RuleSpec { description: description.filter(|d| !d.is_empty()).map(str::to_string), ..self }
    }

    /// What the rule is, without its description: the key rules are matched by.
    fn atom(&self) -> RuleSpec {
        RuleSpec { description: None, ..self.clone() }
    }

    /// AWS's default egress of a new group: all traffic to anywhere, over IPv4, and over IPv6 too in a VPC with
    /// an IPv6 block.
    pub fn default_egress(dual_stack: bool) -> BTreeSet<Self> {
        let all = |cidr: &str| RuleSpec::new("-1", None, None, Peer::Cidr(cidr.into()));
        std::iter::once(all("0.0.0.0/0")).chain(dual_stack.then(|| all("::/0"))).collect()
    }

    /// What traffic the rule lets through, without its peer: `all traffic`, `tcp 443`, `udp all ports`,
    /// `icmp`, `icmp type 3 code 4`, `protocol 50`.
    pub fn traffic(&self) -> String {
        let (from, to) = (self.from_port, self.to_port);
        match self.protocol.as_str() {
            "-1" => "all traffic".to_string(),
            p @ ("tcp" | "udp") => match (from, to) {
                (-1, _) | (0, 65535) => format!("{p} all ports"),
                (a, b) if a == b => format!("{p} {a}"),
                (a, b) => format!("{p} {a}-{b}"),
            },
            p @ ("icmp" | "icmpv6") => match (from, to) {
                (-1, _) => p.to_string(),
                (t, -1) => format!("{p} type {t}"),
                (t, c) => format!("{p} type {t} code {c}"),
            },
            n => format!("protocol {n}"),
        }
    }

    pub fn group(&self) -> Option<&GroupRef> {
        match &self.peer {
            Peer::Group(g) => Some(g),
            _ => None,
        }
    }

    fn display(&self, dir: &str) -> String {
        let peer = match &self.peer {
            Peer::Cidr(c) => c.clone(),
            Peer::Group(g) => g.to_string(),
            Peer::PrefixList(p) => p.clone(),
        };
        match &self.description {
            Some(d) => format!("{} {dir} {peer} ({d:?})", self.traffic()),
            None => format!("{} {dir} {peer}", self.traffic()),
        }
    }
}

impl fmt::Display for RuleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display("/"))
    }
}

/// Builds a rule operation of one kind (direction and verb) from rules.
pub type MakeRuleOp = fn(Vec<RuleSpec>) -> SgOp;

/// One call's worth of rule changes, or a group-level operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum SgOp {
    Create {
        name: String,
        description: String,
        vpc_id: String,
        tags: BTreeMap<String, String>,
    },
    AuthorizeIngress {
        rules: Vec<RuleSpec>,
    },
    RevokeIngress {
        rules: Vec<RuleSpec>,
    },
    AuthorizeEgress {
        rules: Vec<RuleSpec>,
    },
    RevokeEgress {
        rules: Vec<RuleSpec>,
    },
    /// UpdateSecurityGroupRuleDescriptionsIngress: rules kept, with these descriptions (none removes one).
    SetIngressDescriptions {
        rules: Vec<RuleSpec>,
    },
    SetEgressDescriptions {
        rules: Vec<RuleSpec>,
    },
    AddTags {
        tags: BTreeMap<String, String>,
    },
    RemoveTags {
        keys: Vec<String>,
    },
    Delete {
        id: String,
    },
}

fn expand(rules: &[model::Rule]) -> BTreeSet<RuleSpec> {
    let mut out = BTreeSet::new();
    for r in rules {
        let protocol = match r.protocol {
            Protocol::Tcp => "tcp".to_string(),
            Protocol::Udp => "udp".to_string(),
            Protocol::Icmp => "icmp".to_string(),
            Protocol::Icmpv6 => "icmpv6".to_string(),
            Protocol::All => "-1".to_string(),
            Protocol::Number(n) => n.to_string(),
        };
        let (from, to) = match (r.ports, r.icmp) {
            (Some((a, b)), _) => (Some(i32::from(a)), Some(i32::from(b))),
            (None, Some((kind, code))) => (Some(i32::from(kind)), code.map(i32::from)),
            (None, None) => (None, None),
        };
        let peers = r.cidrs.iter().map(|c| Peer::Cidr(c.to_string()));
        let peers = peers.chain(r.groups.iter().map(|g| Peer::Group(GroupRef::declared(&g.value))));
        out.extend(peers.map(|peer| RuleSpec::new(&protocol, from, to, peer).described(r.description.as_deref())));
    }
    out
}

impl ResourceKind for SecurityGroupSpec {
    const KIND: Kind = Kind::SecurityGroup;
    const NAME: &'static str = "security_group";
    const NOUN: &'static str = "security group";
    const TABLE: &'static str = "security_group";
    type Op = SgOp;

    fn desired(fleet: &Fleet, env: &Environment) -> Vec<(String, Self)> {
        fleet.security_groups.keys().map(|name| (name.clone(), Self::from_model(fleet, name, env))).collect()
    }

    fn policies(fleet: &Fleet) -> Vec<(String, crate::model::Policy)> {
        fleet.security_groups.iter().map(|(n, g)| (n.clone(), g.policy)).collect()
    }

    fn tag_command(_name: &str, id: &str, tags: &[(&str, &str)]) -> String {
        format!("aws ec2 create-tags --resources {id} --tags {}", super::cli_tags(tags))
    }
    fn aws_name(&self) -> &str {
        &self.name
    }

    fn references(&self) -> BTreeSet<Address> {
        // A group may refer to itself; that is no dependency. Its own address is in its ownership tag.
        let own = self.tags.get(super::ADDRESS_TAG);
        self.ingress.iter().chain(&self.egress).filter_map(|r| r.group()?.address()).filter(|a| own != Some(&a.to_string())).collect()
    }

    fn describe(&self) -> Vec<(String, String)> {
        let mut out = vec![("name".into(), self.name.clone()), ("description".into(), self.description.clone()), ("vpc".into(), self.vpc_id.clone())];
        out.extend(self.ingress.iter().map(|r| ("ingress".to_string(), r.display("from"))));
        out.extend(self.egress.iter().map(|r| ("egress".to_string(), r.display("to"))));
        out.extend(self.tags.iter().map(|(k, v)| (format!("tags.{k}"), v.clone())));
        out
    }

    fn diff(&self, live: &SecurityGroupSpec) -> Diff {
        let mut d = Diff::default();
        for (field, new, old) in [("name", &self.name, &live.name), ("description", &self.description, &live.description), ("vpc", &self.vpc_id, &live.vpc_id)]
        {
            if new != old {
                let note = if field == "description" { "EC2 cannot change a group's description" } else { "" };
                let mut f = FieldChange::changed(field, old, new).forcing();
                if !note.is_empty() {
                    f = f.note(note);
                }
                d.fields.push(f);
            }
        }
        if d.forces_replacement() {
            return d;
        }
        self.rule_delta(live, &mut d);
        if let Some((add, remove)) = diff_tags(&self.tags, &live.tags, &mut d.fields) {
            if !add.is_empty() {
                d.ops.push(Op::SecurityGroup(SgOp::AddTags { tags: add }));
            }
            if !remove.is_empty() {
                d.ops.push(Op::SecurityGroup(SgOp::RemoveTags { keys: remove }));
            }
        }
        d
    }

    /// A new group: create it (with its tags), then diff its rules against what EC2 gives a new group.
    fn create_ops(&self) -> Vec<Op> {
        let mut ops = vec![Op::SecurityGroup(SgOp::Create {
            name: self.name.clone(),
            description: self.description.clone(),
            vpc_id: self.vpc_id.clone(),
            tags: self.tags.clone(),
        })];
        let fresh = SecurityGroupSpec { ingress: BTreeSet::new(), egress: RuleSpec::default_egress(self.dual_stack), ..self.clone() };
        let mut d = Diff::default();
        self.rule_delta(&fresh, &mut d);
        ops.extend(d.ops);
        ops
    }

    fn delete_ops(&self, id: &str) -> Vec<Op> {
        vec![Op::SecurityGroup(SgOp::Delete { id: id.to_string() })]
    }

    fn forget_ops(&self, _id: &str) -> Vec<Op> {
        vec![Op::SecurityGroup(SgOp::RemoveTags { keys: super::ownership_keys() })]
    }

    /// Rules between groups created together run once the other groups exist.
    fn split_create(ops: Vec<Op>, together: &BTreeSet<String>) -> Phases {
        let (now, later) = split_rule_ops(ops, together);
        let waits = later.iter().flat_map(referenced_groups).filter(|a| together.contains(&a.name)).collect();
        Phases { now, later, waits }
    }

    /// A group being deleted first revokes its rules that refer to other groups being deleted.
    fn let_go(&self, gone: &BTreeSet<String>) -> Vec<Op> {
        revoke_references(self, gone)
    }

    /// The groups of the site's load balancer and of its pool.
    fn on_site_path(fleet: &Fleet, _site: &str, s: &Site) -> Vec<String> {
        let lb = s.load_balancer.as_ref().and_then(|lb| fleet.load_balancers.get(&lb.value)).map(|lb| &lb.security_groups);
        let pool = fleet.pools.get(&s.pool.value).map(|p| &p.security_groups);
        lb.into_iter().chain(pool).flatten().map(|g| g.value.clone()).collect()
    }
}

impl SecurityGroupSpec {
    pub fn from_model(fleet: &Fleet, name: &str, env: &Environment) -> Self {
        let sg = &fleet.security_groups[name];
        let address = Address::new(Kind::SecurityGroup, name);
        SecurityGroupSpec {
            name: fleet.security_group_name(name),
            description: sg.description.clone().unwrap_or_else(|| format!("{address} of fleet {}", fleet.settings.name)),
            vpc_id: env.vpc_id.clone(),
            ingress: expand(&sg.ingress),
            egress: match &sg.egress {
                None => RuleSpec::default_egress(env.vpc_ipv6),
                Some(rules) => expand(rules),
            },
            tags: owned_tags(&fleet.settings.name, &address, &sg.tags),
            dual_stack: env.vpc_ipv6,
        }
    }

    /// Rules change by delta, matched without their descriptions: one authorize call for all added rules of a
    /// direction, one description update for the rules kept whose description changed, one revoke for
    /// removed ones.
    fn rule_delta(&self, live: &SecurityGroupSpec, d: &mut Diff) {
        type Direction<'a> = (&'a str, &'a str, &'a BTreeSet<RuleSpec>, &'a BTreeSet<RuleSpec>, [MakeRuleOp; 3]);
        let dirs: [Direction<'_>; 2] = [
            (
                "ingress",
                "from",
                &self.ingress,
                &live.ingress,
                [|rules| SgOp::AuthorizeIngress { rules }, |rules| SgOp::SetIngressDescriptions { rules }, |rules| SgOp::RevokeIngress { rules }],
            ),
            (
                "egress",
                "to",
                &self.egress,
                &live.egress,
                [|rules| SgOp::AuthorizeEgress { rules }, |rules| SgOp::SetEgressDescriptions { rules }, |rules| SgOp::RevokeEgress { rules }],
            ),
        ];
        for (field, dir, want, have, [authorize, describe, revoke]) in dirs {
            let by_atom = |rules: &BTreeSet<RuleSpec>| rules.iter().map(|r| (r.atom(), r.clone())).collect::<BTreeMap<_, _>>();
            let (want, have) = (by_atom(want), by_atom(have));
            let added: Vec<RuleSpec> = want.iter().filter(|(a, _)| !have.contains_key(*a)).map(|(_, r)| r.clone()).collect();
            let removed: Vec<RuleSpec> = have.iter().filter(|(a, _)| !want.contains_key(*a)).map(|(_, r)| r.clone()).collect();
            let redescribed: Vec<(&RuleSpec, &RuleSpec)> =
                want.iter().filter_map(|(a, r)| Some((have.get(a)?, r))).filter(|(old, new)| old.description != new.description).collect();
            d.fields.extend(added.iter().map(|r| FieldChange::added(field, r.display(dir))));
            d.fields.extend(redescribed.iter().map(|(old, new)| FieldChange::changed(field, old.display(dir), new.display(dir))));
            d.fields.extend(removed.iter().map(|r| FieldChange::removed(field, r.display(dir))));
            // Authorize before revoke: a rule being rewritten never leaves a moment with neither.
            for (rules, make) in [(added, authorize), (redescribed.into_iter().map(|(_, r)| r.clone()).collect(), describe), (removed, revoke)] {
                if !rules.is_empty() {
                    d.ops.push(Op::SecurityGroup(make(rules)));
                }
            }
        }
    }
}

/// Splits rule operations: rules that refer to one of `pending` (fleet group names) move to the second list,
/// each direction and verb keeping one call per list.
pub fn split_rule_ops(ops: Vec<Op>, pending: &BTreeSet<String>) -> (Vec<Op>, Vec<Op>) {
    let refers = |r: &RuleSpec| matches!(r.group(), Some(GroupRef::Fleet(name)) if pending.contains(name));
    let (mut now, mut later) = (Vec::new(), Vec::new());
    for op in ops {
        let Op::SecurityGroup(sg) = op else {
            now.push(op);
            continue;
        };
        let (rules, make): (Vec<RuleSpec>, MakeRuleOp) = match sg {
            SgOp::AuthorizeIngress { rules } => (rules, |rules| SgOp::AuthorizeIngress { rules }),
            SgOp::RevokeIngress { rules } => (rules, |rules| SgOp::RevokeIngress { rules }),
            SgOp::AuthorizeEgress { rules } => (rules, |rules| SgOp::AuthorizeEgress { rules }),
            SgOp::RevokeEgress { rules } => (rules, |rules| SgOp::RevokeEgress { rules }),
            SgOp::SetIngressDescriptions { rules } => (rules, |rules| SgOp::SetIngressDescriptions { rules }),
            SgOp::SetEgressDescriptions { rules } => (rules, |rules| SgOp::SetEgressDescriptions { rules }),
            other => {
                now.push(Op::SecurityGroup(other));
                continue;
            }
        };
        let (second, first): (Vec<RuleSpec>, Vec<RuleSpec>) = rules.into_iter().partition(|r| refers(r));
        if !first.is_empty() {
            now.push(Op::SecurityGroup(make(first)));
        }
        if !second.is_empty() {
            later.push(Op::SecurityGroup(make(second)));
        }
    }
    (now, later)
}

/// The fleet groups that an operation's rules refer to.
pub fn referenced_groups(op: &Op) -> Vec<Address> {
    match op {
        Op::SecurityGroup(
            SgOp::AuthorizeIngress { rules }
            | SgOp::RevokeIngress { rules }
            | SgOp::AuthorizeEgress { rules }
            | SgOp::RevokeEgress { rules }
            | SgOp::SetIngressDescriptions { rules }
            | SgOp::SetEgressDescriptions { rules },
        ) => rules.iter().filter_map(|r| r.group()?.address()).collect(),
        _ => Vec::new(),
    }
}

/// Revokes a live group's rules that refer to any of `groups` (fleet names): what lets two groups that
/// refer to each other be deleted.
pub fn revoke_references(live: &SecurityGroupSpec, groups: &BTreeSet<String>) -> Vec<Op> {
    let refers = |r: &&RuleSpec| matches!(r.group(), Some(GroupRef::Fleet(name)) if groups.contains(name));
    let ingress: Vec<RuleSpec> = live.ingress.iter().filter(refers).cloned().collect();
    let egress: Vec<RuleSpec> = live.egress.iter().filter(refers).cloned().collect();
    let mut ops = Vec::new();
    if !ingress.is_empty() {
        ops.push(Op::SecurityGroup(SgOp::RevokeIngress { rules: ingress }));
    }
    if !egress.is_empty() {
        ops.push(Op::SecurityGroup(SgOp::RevokeEgress { rules: egress }));
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ingress: &[RuleSpec]) -> SecurityGroupSpec {
        SecurityGroupSpec {
            name: "agency-web".into(),
            description: "web".into(),
            vpc_id: "vpc-1".into(),
            ingress: ingress.iter().cloned().collect(),
            egress: RuleSpec::default_egress(false),
            tags: BTreeMap::from([("converge:address".into(), "security_group.web".into())]),
            dual_stack: false,
        }
    }

    fn tcp(port: i32, cidr: &str) -> RuleSpec {
        RuleSpec::new("tcp", Some(port), Some(port), Peer::Cidr(cidr.into()))
    }

    #[test]
    fn protocol_numbers_and_all_traffic_normalise() {
        assert_eq!(RuleSpec::new("6", Some(80), Some(80), Peer::Cidr("x".into())), RuleSpec::new("tcp", Some(80), Some(80), Peer::Cidr("x".into())));
        assert_eq!(RuleSpec::new("-1", Some(0), Some(65535), Peer::Cidr("x".into())), RuleSpec::new("all", None, None, Peer::Cidr("x".into())));
    }

    #[test]
    fn one_added_rule_is_one_authorize_and_nothing_else() {
        let live = spec(&[tcp(80, "0.0.0.0/0")]);
        let desired = spec(&[tcp(80, "0.0.0.0/0"), tcp(443, "0.0.0.0/0")]);
        let d = desired.diff(&live);
        assert_eq!(d.ops, vec![Op::SecurityGroup(SgOp::AuthorizeIngress { rules: vec![tcp(443, "0.0.0.0/0")] })]);
        assert_eq!(d.fields, vec![FieldChange::added("ingress", "tcp 443 from 0.0.0.0/0")]);
    }

    #[test]
    fn one_removed_rule_is_one_revoke() {
        let live = spec(&[tcp(80, "0.0.0.0/0"), tcp(443, "0.0.0.0/0")]);
        let desired = spec(&[tcp(443, "0.0.0.0/0")]);
        assert_eq!(desired.diff(&live).ops, vec![Op::SecurityGroup(SgOp::RevokeIngress { rules: vec![tcp(80, "0.0.0.0/0")] })]);
    }

    #[test]
    fn a_new_rule_description_is_one_update_and_the_rule_is_kept() {
        let live = spec(&[tcp(22, "203.0.113.7/32").described(Some("office"))]);
        let desired = spec(&[tcp(22, "203.0.113.7/32").described(Some("office VPN"))]);
        let d = desired.diff(&live);
        assert_eq!(d.ops, vec![Op::SecurityGroup(SgOp::SetIngressDescriptions { rules: vec![tcp(22, "203.0.113.7/32").described(Some("office VPN"))] })]);
        assert_eq!(d.fields, vec![FieldChange::changed("ingress", "tcp 22 from 203.0.113.7/32 (\"office\")", "tcp 22 from 203.0.113.7/32 (\"office VPN\")")]);
        let undescribed = spec(&[tcp(22, "203.0.113.7/32")]).diff(&live);
        assert_eq!(undescribed.ops, vec![Op::SecurityGroup(SgOp::SetIngressDescriptions { rules: vec![tcp(22, "203.0.113.7/32")] })], "none removes it");
    }

    #[test]
    fn description_change_forces_replacement() {
        let live = spec(&[]);
        let desired = SecurityGroupSpec { description: "new".into(), ..spec(&[]) };
        let d = desired.diff(&live);
        assert!(d.forces_replacement());
        assert!(d.ops.is_empty());
    }

    #[test]
    fn create_keeps_default_egress_when_desired() {
        let ops = spec(&[tcp(80, "10.0.0.0/8")]).create_ops();
        assert_eq!(ops.len(), 2, "create + one authorize: {ops:?}");
    }

    #[test]
    fn self_reference_is_not_a_dependency() {
        let mut s = spec(&[RuleSpec::new("tcp", Some(80), Some(80), Peer::Group(GroupRef::Fleet("web".into())))]);
        assert!(s.references().is_empty());
        s.ingress.insert(RuleSpec::new("tcp", Some(80), Some(80), Peer::Group(GroupRef::Fleet("lb".into()))));
        assert_eq!(s.references(), BTreeSet::from([Address::new(Kind::SecurityGroup, "lb")]));
    }
}
