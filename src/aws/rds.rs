//! RDS: databases and parameter groups.
//!
//! Calls per read: DescribeDBInstances (tags included, 100 per page) and DescribeDBParameterGroups, then
//! ListTagsForResource per parameter group that is not an AWS default (the API has no batch form), and
//! DescribeDBParameters (`Source=user`) per owned group. Engine defaults (which parameters are static) are
//! read only for a family with parameters to change (`Aws::static_parameters`).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_rds::types::{DbInstance, DbParameterGroup, Tag};
use futures_util::{StreamExt, TryStreamExt, stream};

use super::{Aws, AwsError, Owner, Wanted, call, unread};
use crate::live::Found;
use crate::model::Fleet;
use crate::resource::{DbInstanceSpec, DbParameterGroupSpec, GroupRef, Kind};

pub(super) fn tags_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter().map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string())).collect()
}

#[derive(Default)]
pub(crate) struct RdsRead {
    /// Ours, and look-alikes that may be adopted (at the address named), read in full.
    instances: Vec<(Owner, DbInstance)>,
    groups: Vec<GroupRead>,
    /// Look-alikes of each kind: (name, id, fleet tag).
    foreign_instances: Vec<(String, String, Option<String>)>,
    foreign_groups: Vec<(String, String, Option<String>)>,
}

/// A parameter group read in full (ours, or a look-alike that may be adopted) with its tags and every
/// parameter set in it, with whether each is static.
struct GroupRead {
    owner: Owner,
    group: DbParameterGroup,
    tags: BTreeMap<String, String>,
    parameters: BTreeMap<String, String>,
    static_parameters: BTreeMap<String, bool>,
}

/// `PendingModifiedValues`, by the field names of [`DbInstanceSpec`].
fn pending(db: &DbInstance) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(p) = db.pending_modified_values() {
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                out.insert(k.to_string(), v);
            }
        };
        put("class", p.db_instance_class().map(str::to_string));
        put("storage_gb", p.allocated_storage().map(|s| s.to_string()));
        put("version", p.engine_version().map(str::to_string));
        put("multi_az", p.multi_az().map(|m| m.to_string()));
        put("backup_retention_days", p.backup_retention_period().map(|b| b.to_string()));
    }
    out
}

impl RdsRead {
    /// The instances' endpoints, by identifier: where their hostnames point.
    pub(crate) fn endpoints(&self) -> BTreeMap<String, String> {
        self.instances
            .iter()
            .filter_map(|(_, db)| Some((db.db_instance_identifier()?.to_string(), crate::model::dns_name(db.endpoint()?.address()?))))
            .collect()
    }

    /// Parameter groups and instances as specs; `group_ids` names the fleet's security groups by id.
    pub(crate) fn found(self, group_ids: &BTreeMap<String, String>) -> (Found<DbParameterGroupSpec>, Found<DbInstanceSpec>) {
        let mut groups = Found { foreign: unread(self.foreign_groups), ..Found::default() };
        let mut instances = Found { foreign: unread(self.foreign_instances), ..Found::default() };
        let pg_names: BTreeMap<String, String> = self
            .groups
            .iter()
            .filter_map(|g| Some((g.group.db_parameter_group_name().unwrap_or_default().to_string(), g.owner.address()?.name.clone())))
            .collect();
        let db_names: BTreeMap<String, String> =
            self.instances.iter().filter_map(|(o, d)| Some((d.db_instance_identifier().unwrap_or_default().to_string(), o.address()?.name.clone()))).collect();
        for GroupRead { owner, group: g, tags, parameters, static_parameters } in self.groups {
            let spec = DbParameterGroupSpec {
                name: g.db_parameter_group_name().unwrap_or_default().to_string(),
                family: g.db_parameter_group_family().unwrap_or_default().to_string(),
                description: g.description().unwrap_or_default().to_string(),
                parameters,
                tags,
                static_parameters,
                at_reboot: BTreeSet::new(),
                arn: g.db_parameter_group_arn().map(str::to_string),
            };
            groups.file(owner, spec.name.clone(), spec);
        }
        for (owner, db) in self.instances {
            let parameter_group = db.db_parameter_groups().first().and_then(|p| p.db_parameter_group_name()).map(str::to_string);
            let replica_of = db.read_replica_source_db_instance_identifier().map(|source| {
                // The source may be named by identifier or by ARN.
                let id = source.rsplit(':').next().unwrap_or(source).to_string();
                (db_names.get(&id).cloned().unwrap_or_else(|| id.clone()), id)
            });
            let spec = DbInstanceSpec {
                identifier: db.db_instance_identifier().unwrap_or_default().to_string(),
                engine: db.engine().map(str::to_string),
                version: db.engine_version().map(str::to_string),
                storage_gb: db.allocated_storage().map(|s| s as u32),
                username: db.master_username().map(str::to_string),
                class: db.db_instance_class().unwrap_or_default().to_string(),
                multi_az: db.multi_az().unwrap_or(false),
                parameter_group_ref: parameter_group.as_ref().and_then(|p| pg_names.get(p).cloned()),
                parameter_group,
                security_groups: db.vpc_security_groups().iter().filter_map(|g| g.vpc_security_group_id()).map(|id| GroupRef::from_id(id, group_ids)).collect(),
                subnet_group: db.db_subnet_group().and_then(|s| s.db_subnet_group_name()).map(str::to_string),
                zone: db.availability_zone().map(str::to_string),
                backup_retention_days: db.backup_retention_period().map(|b| b as u32),
                maintenance_window: db.preferred_maintenance_window().map(str::to_ascii_lowercase),
                backup_window: db.preferred_backup_window().map(str::to_string),
                deletion_protection: db.deletion_protection().unwrap_or(false),
                tags: tags_map(db.tag_list()),
                arn: db.db_instance_arn().map(str::to_string),
                status: db.db_instance_status().map(str::to_string),
                pending: pending(&db),
                replica_of,
                ..DbInstanceSpec::default()
            };
            instances.file(owner, spec.identifier.clone(), spec);
        }
        (groups, instances)
    }

    /// Families whose declared parameters differ from what AWS holds: only these need the engine's defaults.
    pub(crate) fn families_to_change(&self, fleet: &Fleet) -> BTreeSet<String> {
        let live: BTreeMap<&str, &BTreeMap<String, String>> =
            self.groups.iter().filter_map(|g| Some((g.owner.address()?.name.as_str(), &g.parameters))).collect();
        fleet
            .db_parameter_groups
            .iter()
            .filter(|(name, g)| live.get(name.as_str()).is_none_or(|have| g.parameters.iter().any(|(k, v)| have.get(k) != Some(v))))
            .map(|(_, g)| g.family.clone())
            .collect()
    }
}

/// A parameter group's parameters (name -> value), and which of them are static.
type Parameters = (BTreeMap<String, String>, BTreeMap<String, bool>);

impl Aws {
    pub(crate) async fn read_rds(&self, fleet: &Fleet, wanted: &Wanted) -> Result<RdsRead, AwsError> {
        let name = &fleet.settings.name;
        let rds = &self.rds;
        let instances = async {
            let mut pages = rds.describe_db_instances().max_records(100).into_paginator().send();
            let mut out = Vec::new();
            while let Some(page) = pages.next().await {
                out.extend(page.map_err(call("rds", "DescribeDBInstances", "the account's databases"))?.db_instances().iter().cloned());
            }
            Ok::<_, AwsError>(out)
        };
        let groups = async {
            let mut pages = rds.describe_db_parameter_groups().max_records(100).into_paginator().send();
            let mut out = Vec::new();
            while let Some(page) = pages.next().await {
                out.extend(page.map_err(call("rds", "DescribeDBParameterGroups", "the account's parameter groups"))?.db_parameter_groups().iter().cloned());
            }
            Ok::<_, AwsError>(out)
        };
        let (instances, groups) = tokio::try_join!(instances, groups)?;
        let (mut foreign_instances, mut foreign_groups) = (Vec::new(), Vec::new());
        let mut owned = Vec::new();
        for db in instances {
            let id = db.db_instance_identifier().unwrap_or_default().to_string();
            match wanted.owner(name, Kind::DbInstance, &id, &tags_map(db.tag_list())) {
                Owner::Other(other) if wanted.contains(Kind::DbInstance, &id) => foreign_instances.push((id.clone(), id, other)),
                Owner::Other(_) => {}
                owner => owned.push((owner, db)),
            }
        }
        // AWS's default groups are nobody's; the others need their tags, one call each. A group with a desired
        // name has its parameters read beside its tags (its owner is most likely the fleet): no round trip waits.
        let candidates = groups.into_iter().filter(|g| !g.db_parameter_group_name().unwrap_or_default().starts_with("default."));
        let tagged: Vec<(DbParameterGroup, BTreeMap<String, String>, Option<Parameters>)> = stream::iter(candidates)
            .map(|g| async move {
                let (arn, pg) = (g.db_parameter_group_arn().unwrap_or_default(), g.db_parameter_group_name().unwrap_or_default());
                let tags = async { rds.list_tags_for_resource().resource_name(arn).send().await.map_err(call("rds", "ListTagsForResource", arn)) };
                let early = async { if wanted.reads_desired(Kind::DbParameterGroup, pg) { self.parameters(pg).await.map(Some) } else { Ok(None) } };
                let (tags, early) = tokio::try_join!(tags, early)?;
                let tags = tags_map(tags.tag_list());
                Ok::<_, AwsError>((g, tags, early))
            })
            .buffer_unordered(super::READS_IN_FLIGHT)
            .try_collect()
            .await?;
        let mut mine = Vec::new();
        for (g, tags, early) in tagged {
            let pg = g.db_parameter_group_name().unwrap_or_default().to_string();
            match wanted.owner(name, Kind::DbParameterGroup, &pg, &tags) {
                Owner::Other(other) if wanted.contains(Kind::DbParameterGroup, &pg) => foreign_groups.push((pg.clone(), pg, other)),
                Owner::Other(_) => {}
                owner => mine.push((owner, g, tags, early)),
            }
        }
        let groups = stream::iter(mine)
            .map(|(owner, g, tags, early)| async move {
                let (parameters, static_parameters) = match early {
                    Some(read) => read,
                    None => self.parameters(g.db_parameter_group_name().unwrap_or_default()).await?,
                };
                Ok::<_, AwsError>(GroupRead { owner, group: g, tags, parameters, static_parameters })
            })
            .buffer_unordered(super::READS_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(RdsRead { instances: owned, groups, foreign_instances, foreign_groups })
    }

    /// Every parameter set in group `pg` (source `user`: the group is the fleet's, so one it does not declare
    /// is drift), and with each whether it is static, for the apply method of its reset.
    async fn parameters(&self, pg: &str) -> Result<Parameters, AwsError> {
        let mut pages = self.rds.describe_db_parameters().db_parameter_group_name(pg).source("user").max_records(100).into_paginator().send();
        let (mut parameters, mut kinds) = (BTreeMap::new(), BTreeMap::new());
        while let Some(page) = pages.next().await {
            for p in page.map_err(call("rds", "DescribeDBParameters", pg))?.parameters() {
                let key = p.parameter_name().unwrap_or_default().to_string();
                if let Some(kind) = p.apply_type() {
                    kinds.insert(key.clone(), kind.eq_ignore_ascii_case("static"));
                }
                parameters.insert(key, p.parameter_value().unwrap_or_default().to_string());
            }
        }
        Ok((parameters, kinds))
    }

    /// Per family, each engine parameter and whether it is static (DescribeEngineDefaultParameters).
    pub(crate) async fn static_parameters(&self, families: BTreeSet<String>) -> Result<BTreeMap<String, BTreeMap<String, bool>>, AwsError> {
        stream::iter(families)
            .map(|family| async move {
                let mut out = BTreeMap::new();
                let mut marker: Option<String> = None;
                loop {
                    let page = self
                        .rds
                        .describe_engine_default_parameters()
                        .db_parameter_group_family(&family)
                        .max_records(100)
                        .set_marker(marker.clone())
                        .send()
                        .await
                        .map_err(call("rds", "DescribeEngineDefaultParameters", &family))?;
                    let defaults = page.engine_defaults();
                    for p in defaults.map(|d| d.parameters()).unwrap_or_default() {
                        out.insert(p.parameter_name().unwrap_or_default().to_string(), p.apply_type() != Some("dynamic"));
                    }
                    marker = defaults.and_then(|d| d.marker()).map(str::to_string);
                    if marker.is_none() {
                        break;
                    }
                }
                Ok::<_, AwsError>((family, out))
            })
            .buffer_unordered(super::READS_IN_FLIGHT)
            .try_collect()
            .await
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_rds::types::PendingModifiedValues;

    use super::*;

    #[test]
    fn pending_modified_values_map_to_the_fields_a_plan_compares() {
        // As RDS reports an instance after a class and storage change scheduled for the window.
        let db = DbInstance::builder()
            .db_instance_identifier("agency-sites")
            .db_instance_class("db.r6g.large")
            .pending_modified_values(PendingModifiedValues::builder().db_instance_class("db.r6g.xlarge").allocated_storage(300).build())
            .build();
        assert_eq!(pending(&db), BTreeMap::from([("class".to_string(), "db.r6g.xlarge".to_string()), ("storage_gb".to_string(), "300".to_string())]));
        assert!(pending(&DbInstance::builder().build()).is_empty());
    }
}
