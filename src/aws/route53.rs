//! Route 53: the account's hosted zones (ListHostedZones, once), and in each the records this fleet owns,
//! found by their ownership TXT records (ListResourceRecordSets, paginated, per zone). A record at a
//! desired name without our ownership record is a look-alike, reported and never touched. NS and SOA
//! records are never read into anything.
//!
//! Writes: one ChangeResourceRecordSets per zone and plan, split only past Route 53's limit of 1,000
//! records per batch (an UPSERT counts twice; each change carries its ownership record).

use std::collections::BTreeMap;

use aws_sdk_route53::types::{AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
use futures_util::{StreamExt, TryStreamExt, stream};

use super::executor::AwsExecutor;
use super::{Aws, AwsError, Missing, Unresolved, built, call};
use crate::live::Found;
use crate::model::Fleet;
use crate::resource::dns_record::{OWNERSHIP_PREFIX, Target, parse_owner};
use crate::resource::{Address, DnsOp, DnsRecordSpec, Kind, RecordChange};

/// Record changes per ChangeResourceRecordSets: each is two UPSERTs (the record and its ownership), which
/// Route 53 counts as four of its 1,000.
const BATCH: usize = 200;

pub(crate) struct ZonesRead {
    records: Vec<(String, String, Vec<ResourceRecordSet>)>,
}

impl ZonesRead {
    pub(crate) fn found(self, fleet: &Fleet, wanted: &super::Wanted) -> Found<DnsRecordSpec> {
        let mut found = Found::default();
        for (zone, zone_id, sets) in self.records {
            let mut owners: BTreeMap<String, (String, Address)> = BTreeMap::new();
            let mut records: BTreeMap<String, &ResourceRecordSet> = BTreeMap::new();
            for set in &sets {
                let name = crate::model::dns_name(set.name());
                match set.r#type() {
                    RrType::Txt => {
                        if let Some(owned) = name.strip_prefix(OWNERSHIP_PREFIX)
                            && let Some(owner) = set.resource_records().iter().find_map(|r| parse_owner(r.value()))
                        {
                            owners.insert(owned.to_string(), owner);
                        }
                    }
                    RrType::Cname | RrType::A => {
                        records.insert(name, set);
                    }
                    _ => {}
                }
            }
            for (name, set) in records {
                let target = match (set.r#type(), set.alias_target(), set.resource_records().first()) {
                    (_, Some(a), _) => Target::Alias { dns_name: crate::model::dns_name(a.dns_name()), hosted_zone_id: a.hosted_zone_id().to_string() },
                    (RrType::Cname, None, Some(r)) => Target::Cname(crate::model::dns_name(r.value())),
                    _ => continue, // a plain A record (an IP): never one of ours
                };
                // An alias has no TTL of its own; a CNAME no EvaluateTargetHealth.
                let ttl = set.alias_target().is_none().then(|| set.ttl()).flatten();
                let evaluate_target_health = set.alias_target().map(|a| a.evaluate_target_health());
                let spec = |owner: String| DnsRecordSpec {
                    name: name.clone(),
                    zone: zone.clone(),
                    zone_id: zone_id.clone(),
                    target: target.clone(),
                    ttl,
                    evaluate_target_health,
                    owner,
                };
                match owners.get(&name) {
                    Some((f, address)) if f == &fleet.settings.name && address.kind == Kind::DnsRecord => {
                        found.own(address.clone(), &name, spec(crate::resource::dns_record::owner_value(f, &name)));
                    }
                    // No ownership record: a look-alike that may be adopted, read as it is (with no owner).
                    None if wanted.contains(Kind::DnsRecord, &name) => found.foreign(&name, &name, None, Some(spec(String::new()))),
                    Some((other, _)) if wanted.contains(Kind::DnsRecord, &name) => found.foreign(&name, &name, Some(other.clone()), None),
                    _ => {}
                }
            }
        }
        found
    }
}

impl Aws {
    /// Every public hosted zone of the account: name -> id (ListHostedZones pages of 100).
    pub(crate) async fn hosted_zones(&self) -> Result<BTreeMap<String, String>, AwsError> {
        let mut pages = self.route53.list_hosted_zones().into_paginator().send();
        let mut out = BTreeMap::new();
        while let Some(page) = pages.next().await {
            for z in page.map_err(call("route53", "ListHostedZones", "the account's hosted zones"))?.hosted_zones() {
                if !z.config().is_some_and(|c| c.private_zone()) {
                    out.insert(crate::model::dns_name(z.name()), z.id().trim_start_matches("/hostedzone/").to_string());
                }
            }
        }
        Ok(out)
    }

    /// The private hosted zones associated with the fleet's VPC (where its database hostnames may be):
    /// name -> id. A VPC takes at most one private zone of a name, so another VPC's namesake is never chosen.
    pub(crate) async fn private_zones(&self, vpc_id: &str) -> Result<BTreeMap<String, String>, AwsError> {
        let region = aws_sdk_route53::types::VpcRegion::from(self.region.as_str());
        let mut out = BTreeMap::new();
        let mut next: Option<String> = None;
        loop {
            let page =
                self.route53.list_hosted_zones_by_vpc().vpc_id(vpc_id).vpc_region(region.clone()).set_next_token(next.take()).send().await.map_err(call(
                    "route53",
                    "ListHostedZonesByVPC",
                    format!("the private zones of {vpc_id}"),
                ))?;
            for z in page.hosted_zone_summaries() {
                out.insert(crate::model::dns_name(z.name()), z.hosted_zone_id().trim_start_matches("/hostedzone/").to_string());
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    /// The records of these hosted zones, (name, id): the public ones (the agency's and its managed
    /// clients'), and the private ones of the fleet's VPC. A zone holding more than a page of the fleet's
    /// records is read in ranges side by side (see [`ranges`]), so its pages wait on no earlier page.
    pub(crate) async fn read_zones(&self, zones: Vec<(String, String)>, wanted: &super::Wanted) -> Result<ZonesRead, AwsError> {
        let desired = wanted.names(Kind::DnsRecord);
        let records = stream::iter(zones)
            .map(|(zone, id)| {
                let starts = ranges(desired.iter().filter(|n| crate::resource::dns_record::in_zone(n, &zone)).cloned().collect());
                async move {
                    let sets = self.read_zone(&zone, &id, starts).await?;
                    Ok::<_, AwsError>((zone, id, sets))
                }
            })
            .buffer_unordered(super::READS_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(ZonesRead { records })
    }

    /// One zone's record sets, read from the zone's start and from each of `starts` (record names in Route
    /// 53's order) side by side. A range ends where the next one's first record is (whatever order the
    /// names really have in Route 53: a range that never meets it reads on to the end, and the overlap is
    /// dropped), so no record is missed or read twice into the result.
    async fn read_zone(&self, zone: &str, id: &str, starts: Vec<String>) -> Result<Vec<ResourceRecordSet>, AwsError> {
        let first = std::iter::once(None).chain(starts.into_iter().map(Some)).map(|start| async move {
            let start = start.map(|name| (name, None, None));
            self.record_page(zone, id, start).await
        });
        let firsts: Vec<Page> = futures_util::future::try_join_all(first).await?;
        // Each range's end: the first record of the next range that has one.
        let keys: Vec<Option<RecordKey>> = firsts.iter().map(|p| p.sets.first().map(key)).collect();
        let ends: Vec<Option<RecordKey>> = (0..firsts.len()).map(|i| keys[i + 1..].iter().flatten().next().cloned()).collect();
        let ranges = firsts.into_iter().zip(ends).map(|(mut page, end)| async move {
            let mut sets = Vec::new();
            loop {
                for set in page.sets {
                    if end.as_ref() == Some(&key(&set)) {
                        return Ok::<_, AwsError>(sets);
                    }
                    sets.push(set);
                }
                match page.next {
                    Some(next) => page = self.record_page(zone, id, Some(next)).await?,
                    None => return Ok(sets),
                }
            }
        });
        let mut seen = std::collections::BTreeSet::new();
        let all = futures_util::future::try_join_all(ranges).await?;
        Ok(all.into_iter().flatten().filter(|s| seen.insert(key(s))).collect())
    }

    /// One page of a zone's record sets (300, the largest), from a (name, type, identifier) or the start.
    async fn record_page(&self, zone: &str, id: &str, start: Option<(String, Option<RrType>, Option<String>)>) -> Result<Page, AwsError> {
        let mut req = self.route53.list_resource_record_sets().hosted_zone_id(id).max_items(300);
        if let Some((name, kind, identifier)) = start {
            req = req.start_record_name(name).set_start_record_type(kind).set_start_record_identifier(identifier);
        }
        let page = req.send().await.map_err(call("route53", "ListResourceRecordSets", zone))?;
        // Pages continue from the next (name, type), not a token: the SDK has no paginator for it.
        let next = match (page.is_truncated(), page.next_record_name(), page.next_record_type()) {
            (true, Some(name), Some(kind)) => Some((name.to_string(), Some(kind.clone()), page.next_record_identifier().map(str::to_string))),
            _ => None,
        };
        Ok(Page { sets: page.resource_record_sets().to_vec(), next })
    }
}

/// A page of record sets, and where the next one starts.
struct Page {
    sets: Vec<ResourceRecordSet>,
    next: Option<(String, Option<RrType>, Option<String>)>,
}

/// What tells record sets apart: name, type, set identifier.
type RecordKey = (String, String, Option<String>);

fn key(set: &ResourceRecordSet) -> RecordKey {
    (crate::model::dns_name(set.name()), set.r#type().as_str().to_string(), set.set_identifier().map(str::to_string))
}

/// Where to start the ranges of a zone whose desired records are `names`, past the zone's own start: a
/// desired record and its ownership record are two record sets, so a range per 120 desired names keeps
/// each within one page of 300 (room for records the fleet does not own). In Route 53's order: by name with
/// its labels reversed (`com.example.www`).
fn ranges(mut names: Vec<String>) -> Vec<String> {
    const PER_RANGE: usize = 120;
    let order = |n: &String| n.trim_end_matches('.').to_ascii_lowercase().rsplit('.').collect::<Vec<_>>().join(".");
    names.sort_by_cached_key(order);
    names.into_iter().skip(PER_RANGE).step_by(PER_RANGE).collect()
}

/// The statuses of an instance that takes writes: what a hostname may be moved to (with no replica source).
const SERVING: [&str; 5] = ["available", "backing-up", "modifying", "storage-optimization", "configuring-enhanced-monitoring"];

/// The record set of a change, its target resolved: a CNAME with its TTL, an alias with its
/// EvaluateTargetHealth (the defaults when the change does not say, as in plans saved before them).
fn record_set(c: &RecordChange, target: &Target, region: &str) -> Result<ResourceRecordSet, AwsError> {
    let name = c.name.as_str();
    let build = |b: aws_sdk_route53::types::builders::ResourceRecordSetBuilder| b.build().map_err(built(format!("record {name}")));
    match target {
        Target::Cname(value) => build(
            ResourceRecordSet::builder()
                .name(name)
                .r#type(RrType::Cname)
                .ttl(c.ttl.unwrap_or(crate::resource::dns_record::TTL))
                .resource_records(ResourceRecord::builder().value(value).build().map_err(built(format!("record {name}")))?),
        ),
        Target::Alias { dns_name, hosted_zone_id } => {
            let alias = AliasTarget::builder()
                .dns_name(dns_name)
                .hosted_zone_id(hosted_zone_id)
                .evaluate_target_health(c.evaluate_target_health.unwrap_or(crate::resource::dns_record::EVALUATE_TARGET_HEALTH))
                .build()
                .map_err(built(format!("record {name}")))?;
            build(ResourceRecordSet::builder().name(name).r#type(RrType::A).alias_target(alias))
        }
        Target::LoadBalancer { name: lb, .. } => Err(Unresolved::DnsName { record: name.to_string(), name: lb.clone(), region: region.to_string() }.into()),
        Target::Database { identifier, .. } => Err(Missing::TargetDatabase { record: name.to_string(), identifier: identifier.clone() }.into()),
    }
}

fn ownership_set(name: &str, owner: &str) -> Result<ResourceRecordSet, AwsError> {
    let value = ResourceRecord::builder().value(format!("\"{owner}\"")).build().map_err(built(format!("record {name}")))?;
    ResourceRecordSet::builder()
        .name(format!("{OWNERSHIP_PREFIX}{name}"))
        .r#type(RrType::Txt)
        .ttl(crate::resource::dns_record::TTL)
        .resource_records(value)
        .build()
        .map_err(built(format!("record {name}")))
}

impl AwsExecutor {
    /// Load balancers created in this apply: their DNS names, read now (one call per 400, the largest page).
    async fn resolve_targets(&self, changes: &[RecordChange]) -> Result<BTreeMap<String, String>, AwsError> {
        let names: Vec<String> = changes
            .iter()
            .filter_map(|c| match &c.target {
                Target::LoadBalancer { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if names.is_empty() {
            return Ok(BTreeMap::new());
        }
        let describe = self.aws.elb.describe_load_balancers().set_load_balancer_names(Some(names.clone())).page_size(super::elb::PAGE);
        let mut pages = describe.into_paginator().send();
        let mut out = BTreeMap::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(call("elasticloadbalancing", "DescribeLoadBalancers", names.join(", ")))?;
            let described = page.load_balancer_descriptions().iter();
            out.extend(described.map(|d| (d.load_balancer_name().unwrap_or_default().to_string(), d.dns_name().unwrap_or_default().to_string())));
        }
        Ok(out)
    }

    /// Databases a hostname points at: their endpoints, read now (one call for all), each only if the
    /// instance is available and stands alone (not a replica): a hostname is never moved to an instance
    /// that cannot take the sites' writes yet.
    async fn resolve_databases(&self, changes: &[RecordChange]) -> Result<BTreeMap<String, String>, AwsError> {
        let wanted: BTreeMap<&str, &str> = changes
            .iter()
            .filter(|c| !c.delete)
            .filter_map(|c| match &c.target {
                Target::Database { identifier, .. } => Some((identifier.as_str(), c.name.as_str())),
                _ => None,
            })
            .collect();
        if wanted.is_empty() {
            return Ok(BTreeMap::new());
        }
        let ids: Vec<String> = wanted.keys().map(|id| id.to_string()).collect();
        let filter = aws_sdk_rds::types::Filter::builder().name("db-instance-id").set_values(Some(ids.clone())).build();
        let out = self.aws.rds.describe_db_instances().filters(filter).send().await.map_err(call("rds", "DescribeDBInstances", ids.join(", ")))?;
        let mut endpoints = BTreeMap::new();
        for db in out.db_instances() {
            let id = db.db_instance_identifier().unwrap_or_default();
            let Some(record) = wanted.get(id) else { continue };
            let status = db.db_instance_status().unwrap_or("in an unknown state");
            let not_ready = |state: String| AwsError::DbNotReady { record: record.to_string(), identifier: id.to_string(), state };
            // Serving: available, or busy with something that keeps it taking writes (a backup, which follows
            // a promotion, or a change applied now).
            if !SERVING.contains(&status) {
                return Err(not_ready(format!("`{status}`")));
            }
            if let Some(source) = db.read_replica_source_db_instance_identifier() {
                return Err(not_ready(format!("still a replica of {source}")));
            }
            let endpoint = db.endpoint().and_then(|e| e.address()).ok_or_else(|| not_ready("without an endpoint".into()))?;
            endpoints.insert(id.to_string(), crate::model::dns_name(endpoint));
        }
        Ok(endpoints)
    }

    pub(super) async fn run_dns(&self, change: &crate::plan::Change, op: &DnsOp) -> Result<(), AwsError> {
        let (zone_id, changes) = match op {
            DnsOp::Change { zone_id, change } => (zone_id, std::slice::from_ref(change)),
            DnsOp::Batch { zone_id, changes } => (zone_id, changes.as_slice()),
        };
        let (dns, endpoints) = tokio::try_join!(self.resolve_targets(changes), self.resolve_databases(changes))?;
        let region = &self.aws.region;
        let mut sdk = Vec::new();
        for c in changes {
            let target = match &c.target {
                Target::LoadBalancer { name, alias, .. } => {
                    let dns_name = dns.get(name).cloned().ok_or_else(|| Missing::TargetLoadBalancer { record: c.name.clone(), name: name.clone() })?;
                    if *alias {
                        let zone = crate::resource::dns_record::elb_hosted_zone_id(region)
                            .ok_or_else(|| AwsError::NoElbZone { record: c.name.clone(), region: region.clone() })?;
                        Target::Alias { dns_name, hosted_zone_id: zone.to_string() }
                    } else {
                        Target::Cname(dns_name)
                    }
                }
                Target::Database { identifier, endpoint, .. } => match endpoints.get(identifier).or(endpoint.as_ref().filter(|_| c.delete)) {
                    Some(e) => Target::Cname(e.clone()),
                    None => return Err(Missing::TargetDatabase { record: c.name.clone(), identifier: identifier.clone() }.into()),
                },
                other => other.clone(),
            };
            let action = if c.delete { ChangeAction::Delete } else { ChangeAction::Upsert };
            let mut sets = vec![ownership_set(&c.name, &c.owner)?];
            if !c.ownership_only {
                sets.insert(0, record_set(c, &target, region)?);
            }
            for set in sets {
                sdk.push(Change::builder().action(action.clone()).resource_record_set(set).build().map_err(built(format!("record {}", c.name)))?);
            }
        }
        for chunk in sdk.chunks(BATCH * 2) {
            let batch = ChangeBatch::builder()
                .comment(format!("converge: {}", change.address))
                .set_changes(Some(chunk.to_vec()))
                .build()
                .map_err(built(&change.address))?;
            self.aws.route53.change_resource_record_sets().hosted_zone_id(zone_id).change_batch(batch).send().await.map_err(call(
                "route53",
                "ChangeResourceRecordSets",
                format!("zone {zone_id} ({} records)", chunk.len() / 2),
            ))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_is_read_in_ranges_of_120_desired_names_in_reversed_label_order() {
        assert!(ranges((0..120).map(|i| format!("s{i:03}.example.com")).collect()).is_empty(), "one page: one range");
        let names: Vec<String> = (0..300).rev().map(|i| format!("s{i:03}.example.com")).collect();
        assert_eq!(ranges(names), ["s120.example.com", "s240.example.com"]);
        // By labels from the right: every name under a.example.com comes before any under b.example.com.
        let mut names: Vec<String> = (0..119).map(|i| format!("z{i:03}.b.example.com")).collect();
        names.extend((0..121).map(|i| format!("{i:03}.a.example.com")));
        assert_eq!(ranges(names), ["120.a.example.com"]);
    }
}
