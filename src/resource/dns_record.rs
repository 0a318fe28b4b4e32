//! DNS records in Route 53: each site's `<site>.<dns_zone>` CNAME to its load balancer and, for sites whose
//! DNS the agency manages, the client's own names (the apex as an alias A record to the load balancer, the
//! others as CNAMEs to the site's record).
//!
//! Route 53 records carry no tags, so ownership is recorded as external-dns does it: a TXT record at
//! `_converge.<name>` saying `converge:fleet=<fleet>,address=dns_record.<name>`, written and deleted with
//! the record. A record without it is never changed. All of a zone's changes in a plan go out together, in
//! as few ChangeResourceRecordSets batches as Route 53's limits allow (see `plan::batch_dns`).
//!
//! Besides its target, a record's TTL (a CNAME's: 300 s; an alias has none) and an alias's
//! `EvaluateTargetHealth` (false) are converge's and compared: a change by hand is drift, and an UPSERT
//! puts it back.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Address, Diff, Environment, FieldChange, Kind, Op, ResourceKind};
use crate::model::{Fleet, Site};

/// The TTL of the CNAME and TXT records converge writes.
pub const TTL: i64 = 300;
/// An alias record's `EvaluateTargetHealth`: the load balancer's health does not decide the answer.
pub const EVALUATE_TARGET_HEALTH: bool = false;
/// Where a record's ownership is written.
pub const OWNERSHIP_PREFIX: &str = "_converge.";

/// Route 53's hosted zone id for classic load balancers, per region (the API does not say; neither does
/// moto). From AWS's "Elastic Load Balancing endpoints and quotas" table.
pub fn elb_hosted_zone_id(region: &str) -> Option<&'static str> {
    Some(match region {
        "us-east-1" => "Z35SXDOTRQ7X7K",
        "us-east-2" => "Z3AADJGX6KTTL2",
        "us-west-1" => "Z368ELLRRE2KJ0",
        "us-west-2" => "Z1H1FL5HABSF5",
        "ca-central-1" => "ZQSVJUPU6J1EY",
        "eu-west-1" => "Z32O12XQLNTSW2",
        "eu-west-2" => "ZHURV8PSTC4K8",
        "eu-west-3" => "Z3Q77PNBQS71R4",
        "eu-central-1" => "Z215JYRZR1TBD5",
        "eu-north-1" => "Z23TAZ7KFAR7FT",
        "eu-south-1" => "Z3ULH7SSC9OV64",
        "ap-southeast-1" => "Z1LMS91P8CMLE5",
        "ap-southeast-2" => "Z1GM3OXH4ZPM65",
        "ap-northeast-1" => "Z14GRHDCWA56QT",
        "ap-northeast-2" => "ZWKZPGTI48KDX",
        "ap-south-1" => "ZP97RAFLXTNZK",
        "sa-east-1" => "Z2P70J7HTTTPLU",
        _ => return None,
    })
}

/// Where a record points.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Cname(String),
    /// An alias A record (the only way to point a zone's apex at a load balancer).
    Alias {
        dns_name: String,
        hosted_zone_id: String,
    },
    /// Desired only: a load balancer (AWS name, and its name in the fleet) created in the same apply,
    /// whose DNS name is known only then.
    LoadBalancer {
        name: String,
        balancer: String,
        alias: bool,
    },
    /// Desired only: a database's endpoint (a CNAME), by its identifier and its name in the fleet; the
    /// endpoint as last read, when the instance exists. The change waits for the database's own (a
    /// promotion, a creation), and apply reads the endpoint again, refusing an instance not available.
    Database {
        identifier: String,
        database: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<String>,
    },
}

impl Target {
    /// The record type Route 53 keeps it as.
    pub fn record_type(&self) -> &'static str {
        match self {
            Target::Cname(_) | Target::LoadBalancer { alias: false, .. } | Target::Database { .. } => "CNAME",
            Target::Alias { .. } | Target::LoadBalancer { alias: true, .. } => "A",
        }
    }

    /// For comparing: lower case, no trailing dot, no `dualstack.` (Route 53 adds it to ELB aliases).
    fn normalised(&self) -> Target {
        let n = crate::model::dns_name;
        match self {
            Target::Cname(v) => Target::Cname(n(v)),
            Target::Alias { dns_name, hosted_zone_id } => {
                Target::Alias { dns_name: n(dns_name).trim_start_matches("dualstack.").to_string(), hosted_zone_id: hosted_zone_id.clone() }
            }
            Target::Database { endpoint: Some(e), .. } => Target::Cname(n(e)),
            other => other.clone(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Cname(v) => write!(f, "CNAME {v}"),
            Target::Alias { dns_name, .. } => write!(f, "A alias {dns_name}"),
            Target::LoadBalancer { name, alias, .. } => {
                write!(f, "{} load balancer {name} (its DNS name, once it exists)", if *alias { "A alias" } else { "CNAME" })
            }
            Target::Database { database, endpoint: Some(e), .. } => write!(f, "CNAME {e} (database.{database})"),
            Target::Database { database, .. } => write!(f, "CNAME database.{database} (its endpoint, once it is available)"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecordSpec {
    /// Lower case, no trailing dot.
    pub name: String,
    pub zone: String,
    pub zone_id: String,
    pub target: Target,
    /// Seconds; a CNAME's (default [`TTL`]). `None` for an alias, which takes its target's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    /// An alias's `EvaluateTargetHealth` (default [`EVALUATE_TARGET_HEALTH`]); `None` for a CNAME.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluate_target_health: Option<bool>,
    /// The ownership TXT value (`converge:fleet=...,address=...`).
    pub owner: String,
}

/// One record change inside a zone's batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordChange {
    /// UPSERT (never CREATE: it is idempotent) or DELETE (of exactly what was read).
    pub delete: bool,
    pub name: String,
    pub target: Target,
    /// As in [`DnsRecordSpec`]: a DELETE carries exactly what was read (Route 53 deletes only a match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluate_target_health: Option<bool>,
    pub owner: String,
    /// Only the ownership record: a DELETE of it lets the record go and leaves the record itself
    /// (`converge forget`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ownership_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum DnsOp {
    /// A record change with its ownership record; `plan::batch_dns` gathers a zone's into one `Batch`.
    Change { zone_id: String, change: RecordChange },
    /// ChangeResourceRecordSets for one zone, split only where Route 53's limits require.
    Batch { zone_id: String, changes: Vec<RecordChange> },
}

/// The ownership TXT value of a record.
pub fn owner_value(fleet: &str, name: &str) -> String {
    format!("converge:fleet={fleet},address={}", Address::new(Kind::DnsRecord, name))
}

/// Reads an ownership TXT value: (fleet, address).
pub fn parse_owner(value: &str) -> Option<(String, Address)> {
    let value = value.trim_matches('"');
    let mut fleet = None;
    let mut address = None;
    for part in value.split(',') {
        match part.split_once('=') {
            Some(("converge:fleet", f)) => fleet = Some(f.to_string()),
            Some(("address", a)) => address = a.parse().ok(),
            _ => {}
        }
    }
    Some((fleet?, address?))
}

impl ResourceKind for DnsRecordSpec {
    const KIND: Kind = Kind::DnsRecord;
    const NAME: &'static str = "dns_record";
    const NOUN: &'static str = "DNS record";
    const TABLE: &'static str = "site";
    const ADOPT_IN: &'static str = "the site's declaration";
    type Op = DnsOp;

    fn desired(fleet: &Fleet, env: &Environment) -> Vec<(String, Self)> {
        desired(fleet, env)
    }

    fn policies(fleet: &Fleet) -> Vec<(String, crate::model::Policy)> {
        // A site's records: the one in the fleet's zone and, with managed DNS, its own names; a database's
        // hostname goes with its database.
        let sites = fleet.sites.iter().flat_map(|(n, s)| Self::on_site_path(fleet, n, s).into_iter().map(|r| (r, s.policy)));
        sites.chain(fleet.databases.values().filter_map(|d| Some((d.hostname.as_ref()?.value.clone(), d.policy)))).collect()
    }

    fn tag_command(name: &str, _id: &str, tags: &[(&str, &str)]) -> String {
        // Records carry no tags: ownership is the TXT record beside it.
        let fleet = tags.iter().find(|(k, _)| *k == super::FLEET_TAG).map_or("", |(_, v)| *v);
        let value = owner_value(fleet, name);
        format!(
            "aws route53 change-resource-record-sets --hosted-zone-id <the id of {name}'s zone> --change-batch '{{\"Changes\":[{{\"Action\":\"UPSERT\",\"ResourceRecordSet\":{{\"Name\":\"{OWNERSHIP_PREFIX}{name}\",\"Type\":\"TXT\",\"TTL\":{TTL},\"ResourceRecords\":[{{\"Value\":\"\\\"{value}\\\"\"}}]}}}}]}}'"
        )
    }

    fn aws_name(&self) -> &str {
        &self.name
    }

    /// The site's record in the fleet's zone and, when the agency manages its DNS, its own names.
    fn on_site_path(fleet: &Fleet, site: &str, s: &Site) -> Vec<String> {
        let (Some(zone), Some(_)) = (&fleet.settings.dns_zone, &s.load_balancer) else { return Vec::new() };
        let mut out = vec![format!("{site}.{}", crate::model::dns_name(zone))];
        if s.dns == crate::model::DnsMode::Managed {
            out.extend(std::iter::once(&s.domain).chain(&s.aliases).map(|n| crate::model::dns_name(n)));
        }
        out
    }

    /// Route 53 applies a batch atomically, and each call counts: a zone's changes go out together. A
    /// database's hostname goes alone: it waits for its database (a promotion), which the zone's other
    /// records must not wait for, and its endpoint check must not fail them.
    fn batch_key(op: &DnsOp) -> Option<&str> {
        match op {
            DnsOp::Change { change, .. } if matches!(change.target, Target::Database { .. }) => None,
            DnsOp::Change { zone_id, .. } | DnsOp::Batch { zone_id, .. } => Some(zone_id),
        }
    }

    fn batch(zone_id: &str, ops: Vec<DnsOp>) -> Vec<DnsOp> {
        let changes = ops
            .into_iter()
            .flat_map(|op| match op {
                DnsOp::Change { change, .. } => vec![change],
                DnsOp::Batch { changes, .. } => changes,
            })
            .collect();
        vec![DnsOp::Batch { zone_id: zone_id.to_string(), changes }]
    }

    /// A load balancer created in the same apply, a database's change (its creation, its promotion): the
    /// record waits for it.
    fn references(&self) -> BTreeSet<Address> {
        match &self.target {
            Target::LoadBalancer { balancer, .. } => BTreeSet::from([Address::new(Kind::LoadBalancer, balancer)]),
            Target::Database { database, .. } => BTreeSet::from([Address::new(Kind::DbInstance, database)]),
            _ => BTreeSet::new(),
        }
    }

    /// A hostname moves to its database once that database's change is done: after a promotion, never
    /// before (references cover only creations).
    fn waits_for_changes(&self) -> BTreeSet<Address> {
        self.references().into_iter().filter(|a| a.kind == Kind::DbInstance).collect()
    }

    fn describe(&self) -> Vec<(String, String)> {
        let mut out = vec![("name".into(), self.name.clone()), ("zone".into(), self.zone.clone()), ("target".into(), self.target.to_string())];
        // A TTL other than the default is shown (a database's hostname has a short one).
        if let Some(ttl) = self.ttl.filter(|t| *t != TTL) {
            out.push(("ttl".into(), ttl.to_string()));
        }
        out
    }

    fn create_ops(&self) -> Vec<Op> {
        vec![self.change(false)]
    }

    fn delete_ops(&self, _id: &str) -> Vec<Op> {
        vec![self.change(true)]
    }

    fn forget_ops(&self, _id: &str) -> Vec<Op> {
        // Only the ownership record goes; the record itself stays as it is.
        let Op::DnsRecord(DnsOp::Change { zone_id, mut change }) = self.change(true) else { unreachable!("a record's change") };
        change.ownership_only = true;
        vec![Op::DnsRecord(DnsOp::Change { zone_id, change })]
    }

    fn diff(&self, live: &DnsRecordSpec) -> Diff {
        let mut d = Diff::default();
        if self.zone_id != live.zone_id {
            d.fields.push(FieldChange::changed("zone", &live.zone, &self.zone).forcing());
            return d;
        }
        if self.target.normalised() != live.target.normalised() {
            d.fields.push(FieldChange::changed("target", &live.target, &self.target));
        }
        // Compared as the record type has them: a CNAME its TTL, an alias its EvaluateTargetHealth (a
        // change of type shows as a change of target).
        let same_type = self.target.record_type() == live.target.record_type();
        let show = |v: Option<String>| v.unwrap_or_else(|| "none".into());
        if same_type && self.ttl != live.ttl {
            d.fields.push(FieldChange::changed("ttl", show(live.ttl.map(|t| t.to_string())), show(self.ttl.map(|t| t.to_string()))));
        }
        if same_type && self.evaluate_target_health != live.evaluate_target_health {
            d.fields.push(FieldChange::changed(
                "evaluate_target_health",
                show(live.evaluate_target_health.map(|e| e.to_string())),
                show(self.evaluate_target_health.map(|e| e.to_string())),
            ));
        }
        // A record adopted has no ownership record yet: the UPSERT writes it beside the record (unchanged
        // when nothing else differs), in the zone's batch.
        if self.owner != live.owner {
            d.fields.push(FieldChange::added("ownership", format!("TXT {OWNERSHIP_PREFIX}{} \"{}\"", self.name, self.owner)));
        }
        if !d.fields.is_empty() {
            // A CNAME and an A record cannot share a name: a change of type deletes the old one in the
            // same batch.
            if !same_type {
                d.ops.push(live.change(true));
            }
            d.ops.push(self.change(false));
        }
        d
    }
}

impl DnsRecordSpec {
    fn change(&self, delete: bool) -> Op {
        Op::DnsRecord(DnsOp::Change {
            zone_id: self.zone_id.clone(),
            change: RecordChange {
                delete,
                name: self.name.clone(),
                target: self.target.clone(),
                ttl: self.ttl,
                evaluate_target_health: self.evaluate_target_health,
                owner: self.owner.clone(),
                ownership_only: false,
            },
        })
    }
}

/// Whether `name` is in the zone named `zone` (the zone's apex, or a name below it).
pub fn in_zone(name: &str, zone: &str) -> bool {
    name == zone || name.strip_suffix(zone).is_some_and(|head| head.ends_with('.'))
}

/// The zone of `zones` (name -> id) that holds `name`: the longest one, if any.
fn zone_in(name: &str, zones: &std::collections::BTreeMap<String, String>) -> Option<(String, String)> {
    zones.iter().filter(|(zone, _)| in_zone(name, zone)).max_by_key(|(zone, _)| zone.len()).map(|(z, id)| (z.clone(), id.clone()))
}

/// The public hosted zone (name, id) a name belongs to: the longest zone name it ends with. Offline (no
/// zones read), the shortest of `names` stands in for the zone.
fn zone_of(name: &str, names: &[String], env: &super::Environment) -> (String, String) {
    zone_in(name, &env.hosted_zones).unwrap_or_else(|| {
        let zone = names.iter().min_by_key(|n| n.len()).cloned().unwrap_or_else(|| name.to_string());
        (zone.clone(), format!("(hosted zone {zone})"))
    })
}

/// A record's TTL and EvaluateTargetHealth, as converge writes them for its type: (Some(300), None) for a
/// CNAME, (None, Some(false)) for an alias.
pub fn defaults(target: &Target) -> (Option<i64>, Option<bool>) {
    match target.record_type() {
        "CNAME" => (Some(TTL), None),
        _ => (None, Some(EVALUATE_TARGET_HEALTH)),
    }
}

/// Every record the fleet's sites and databases need, by address.
fn desired(fleet: &Fleet, env: &Environment) -> Vec<(String, DnsRecordSpec)> {
    let mut out = Vec::new();
    // Each database's hostname: a CNAME to its endpoint, in whichever hosted zone holds the name.
    for (database, db) in &fleet.databases {
        let Some(hostname) = &db.hostname else { continue };
        let name = hostname.value.clone();
        // A private zone of the fleet's VPC first: a database's name is for the instances.
        let (zone, zone_id) = zone_in(&name, &env.private_zones).unwrap_or_else(|| zone_of(&name, std::slice::from_ref(&name), env));
        let identifier = fleet.database_identifier(database);
        let target = Target::Database { endpoint: env.db_endpoints.get(&identifier).cloned(), identifier, database: database.clone() };
        let owner = owner_value(&fleet.settings.name, &name);
        let spec = DnsRecordSpec { name: name.clone(), zone, zone_id, target, ttl: Some(i64::from(db.hostname_ttl)), evaluate_target_health: None, owner };
        out.push((name, spec));
    }
    let Some(dns_zone) = fleet.settings.dns_zone.as_deref() else { return out };
    let dns_zone = crate::model::dns_name(dns_zone);
    let mut push = |name: String, zone: (String, String), target: Target| {
        let owner = owner_value(&fleet.settings.name, &name);
        let (ttl, evaluate_target_health) = defaults(&target);
        out.push((name.clone(), DnsRecordSpec { name, zone: zone.0, zone_id: zone.1, target, ttl, evaluate_target_health, owner }));
    };
    for (site_name, site) in &fleet.sites {
        let Some(lb) = &site.load_balancer else { continue };
        let lb_name = fleet.load_balancer_name(&lb.value);
        let to_balancer = |alias: bool| match env.balancer_dns.get(&lb_name) {
            Some(dns) if alias => {
                Target::Alias { dns_name: dns.clone(), hosted_zone_id: elb_hosted_zone_id(&env.region).unwrap_or("(unknown region)").to_string() }
            }
            Some(dns) => Target::Cname(dns.clone()),
            None => Target::LoadBalancer { name: lb_name.clone(), balancer: lb.value.clone(), alias },
        };
        let record = format!("{site_name}.{dns_zone}");
        push(record.clone(), zone_of(&record, std::slice::from_ref(&dns_zone), env), to_balancer(false));
        if site.dns == crate::model::DnsMode::Managed {
            let names: Vec<String> = std::iter::once(&site.domain).chain(&site.aliases).map(|n| crate::model::dns_name(n)).collect();
            for name in &names {
                let zone = zone_of(name, &names, env);
                let target = if *name == zone.0 { to_balancer(true) } else { Target::Cname(record.clone()) };
                push(name.clone(), zone, target);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_round_trips_and_foreign_text_is_not_ours() {
        let v = owner_value("agency", "acme.sites.agency.net");
        assert_eq!(v, "converge:fleet=agency,address=dns_record.acme.sites.agency.net");
        let (fleet, address) = parse_owner(&format!("\"{v}\"")).unwrap();
        assert_eq!((fleet.as_str(), address.to_string().as_str()), ("agency", "dns_record.acme.sites.agency.net"));
        assert!(parse_owner("\"v=spf1 -all\"").is_none());
    }

    fn record(target: Target) -> DnsRecordSpec {
        let (ttl, evaluate_target_health) = defaults(&target);
        DnsRecordSpec {
            name: "acme.example".into(),
            zone: "acme.example".into(),
            zone_id: "Z1".into(),
            target,
            ttl,
            evaluate_target_health,
            owner: owner_value("agency", "acme.example"),
        }
    }

    #[test]
    fn a_ttl_or_evaluate_target_health_changed_by_hand_is_drift_put_back_by_one_upsert() {
        let want = record(Target::Cname("acme.sites.agency.net".into()));
        assert_eq!((want.ttl, want.evaluate_target_health), (Some(300), None), "a CNAME's defaults");
        let mut live = want.clone();
        live.ttl = Some(60);
        let d = want.diff(&live);
        assert_eq!(d.fields, vec![FieldChange::changed("ttl", "60", "300")]);
        assert!(matches!(&d.ops[..], [Op::DnsRecord(DnsOp::Change { change, .. })] if !change.delete && change.ttl == Some(300)), "{d:?}");

        let alias = Target::Alias { dns_name: "agency-acme-1.eu-west-1.elb.amazonaws.com".into(), hosted_zone_id: "Z32O12XQLNTSW2".into() };
        let want = record(alias);
        assert_eq!((want.ttl, want.evaluate_target_health), (None, Some(false)), "an alias's defaults");
        let mut live = want.clone();
        live.evaluate_target_health = Some(true);
        let d = want.diff(&live);
        assert_eq!(d.fields, vec![FieldChange::changed("evaluate_target_health", "true", "false")]);
        assert!(matches!(&d.ops[..], [Op::DnsRecord(DnsOp::Change { change, .. })] if change.evaluate_target_health == Some(false)), "{d:?}");
        assert!(want.diff(&want.clone()).ops.is_empty());
    }

    #[test]
    fn a_change_of_type_deletes_exactly_what_was_read() {
        let want = record(Target::Alias { dns_name: "lb.example".into(), hosted_zone_id: "Z32O12XQLNTSW2".into() });
        let mut live = record(Target::Cname("lb.example".into()));
        live.ttl = Some(60);
        let d = want.diff(&live);
        assert_eq!(d.fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), vec!["target"], "no ttl change shown across types");
        assert!(
            matches!(&d.ops[..], [Op::DnsRecord(DnsOp::Change { change: old, .. }), Op::DnsRecord(DnsOp::Change { change: new, .. })]
                if old.delete && old.ttl == Some(60) && !new.delete && new.evaluate_target_health == Some(false)),
            "{d:?}"
        );
    }

    #[test]
    fn aliases_compare_without_dualstack_case_or_dot() {
        let a = Target::Alias { dns_name: "dualstack.Agency-Acme-1.eu-west-1.elb.amazonaws.com.".into(), hosted_zone_id: "Z32O12XQLNTSW2".into() };
        let b = Target::Alias { dns_name: "agency-acme-1.eu-west-1.elb.amazonaws.com".into(), hosted_zone_id: "Z32O12XQLNTSW2".into() };
        assert_eq!(a.normalised(), b.normalised());
    }
}
