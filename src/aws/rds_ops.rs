//! Executing RDS operations: parameter groups and databases, with our own waiter (the SDK's generated one
//! sleeps at least 30 s between polls) that reports progress, stops on a failed state and times out.
//!
//! The master password is read from the environment variable the spec names, here and only here, and is
//! handed to the SDK (whose request types redact it in Debug output). No message names its value.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_rds::types::{ApplyMethod, Parameter, Tag};

use super::executor::{Answer, AwsExecutor, created, idempotent};
use super::{AwsError, Unresolved, call};
use crate::error::{Class, Classify};
use crate::plan::Change;
use crate::resource::{DbInstanceSpec, DbModify, DbOp, PgOp};

/// Creating or modifying an instance can take long; a deletion too.
const AVAILABLE_WAIT: Duration = Duration::from_secs(90 * 60);
const POLL_FIRST: Duration = Duration::from_millis(500);
const POLL_MAX: Duration = Duration::from_secs(30);
/// Statuses from which an instance does not become available by waiting.
const FAILED: [&str; 6] =
    ["failed", "incompatible-parameters", "incompatible-restore", "incompatible-network", "storage-full", "inaccessible-encryption-credentials"];

fn tags(tags: &std::collections::BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// What an instance is waited for.
enum Until {
    Available,
    /// Available and no longer a replica: what a promotion waits for (right after PromoteReadReplica an
    /// instance may still answer `available` with its source, before it starts modifying).
    StandsAlone,
    Gone,
}

/// A secret from the environment: the variable's value, when it is set and not empty.
pub(super) fn secret(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// How a parameter change or reset is applied: at the next reboot, or now.
fn apply_method(at_reboot: bool) -> ApplyMethod {
    if at_reboot { ApplyMethod::PendingReboot } else { ApplyMethod::Immediate }
}

impl AwsExecutor {
    /// RDS tags by ARN, the same for parameter groups and instances.
    async fn add_tags(&self, change: &Change, arn: &str, t: &std::collections::BTreeMap<String, String>) -> Result<(), AwsError> {
        let rds = &self.aws.rds;
        rds.add_tags_to_resource().resource_name(arn).set_tags(Some(tags(t))).send().await.map_err(call("rds", "AddTagsToResource", &change.address))?;
        Ok(())
    }

    async fn remove_tags(&self, change: &Change, arn: &str, keys: &[String]) -> Result<(), AwsError> {
        let rds = &self.aws.rds;
        rds.remove_tags_from_resource().resource_name(arn).set_tag_keys(Some(keys.to_vec())).send().await.map_err(call(
            "rds",
            "RemoveTagsFromResource",
            &change.address,
        ))?;
        Ok(())
    }

    async fn tags_of(&self, change: &Change, arn: &str) -> Result<BTreeMap<String, String>, AwsError> {
        let out = self.aws.rds.list_tags_for_resource().resource_name(arn).send().await.map_err(call("rds", "ListTagsForResource", &change.address))?;
        Ok(super::rds::tags_map(out.tag_list()))
    }

    /// A database create answered `DBInstanceAlreadyExists`: the instance there is this change's if it
    /// carries the tags the create gives it (see [`AwsExecutor::ours_already`]).
    async fn instance_ours_already(&self, change: &Change, call_name: &'static str, spec: &DbInstanceSpec, answer: AwsError) -> Result<(), AwsError> {
        let found = self.aws.rds.describe_db_instances().db_instance_identifier(&spec.identifier).send().await;
        let found = match found.map_err(call("rds", "DescribeDBInstances", &change.address)) {
            Ok(out) => out.db_instances().first().map(|db| super::rds::tags_map(db.tag_list())),
            Err(e) if e.class() == Class::NotFound => None,
            Err(e) => return Err(e),
        };
        self.ours_already(change, call_name, &spec.tags, found.as_ref(), false, answer)
    }

    pub(super) async fn run_pg(&self, change: &Change, op: &PgOp) -> Result<(), AwsError> {
        let rds = &self.aws.rds;
        let address = &change.address;
        match op {
            PgOp::Create { name, family, description, tags: t } => {
                let out = rds
                    .create_db_parameter_group()
                    .db_parameter_group_name(name)
                    .db_parameter_group_family(family)
                    .description(description)
                    .set_tags(Some(tags(t)))
                    .send()
                    .await
                    .map_err(call("rds", "CreateDBParameterGroup", address));
                if let Answer::AlreadyExists(answer) = created(out)? {
                    let found = rds.describe_db_parameter_groups().db_parameter_group_name(name).send().await;
                    let arn = found
                        .map_err(call("rds", "DescribeDBParameterGroups", address))?
                        .db_parameter_groups()
                        .first()
                        .and_then(|g| g.db_parameter_group_arn().map(str::to_string));
                    let found_tags = match arn {
                        Some(arn) => Some(self.tags_of(change, &arn).await?),
                        None => None,
                    };
                    self.ours_already(change, "CreateDBParameterGroup", t, found_tags.as_ref(), false, answer)?;
                }
            }
            PgOp::ModifyParameters { parameters } => {
                let parameters = parameters
                    .iter()
                    .map(|p| Parameter::builder().parameter_name(&p.name).parameter_value(&p.value).apply_method(apply_method(p.at_reboot)).build())
                    .collect();
                rds.modify_db_parameter_group().db_parameter_group_name(&change.name).set_parameters(Some(parameters)).send().await.map_err(call(
                    "rds",
                    "ModifyDBParameterGroup",
                    address,
                ))?;
            }
            // A parameter reset already is at its default: resetting it again changes nothing, so a retry is safe.
            PgOp::ResetParameters { parameters } => {
                let parameters =
                    parameters.iter().map(|p| Parameter::builder().parameter_name(&p.name).apply_method(apply_method(p.at_reboot)).build()).collect();
                let r = rds.reset_db_parameter_group().db_parameter_group_name(&change.name).set_parameters(Some(parameters)).send().await;
                r.map_err(call("rds", "ResetDBParameterGroup", address))?;
            }
            PgOp::AddTags { arn, tags } => self.add_tags(change, arn, tags).await?,
            PgOp::RemoveTags { arn, keys } => self.remove_tags(change, arn, keys).await?,
            PgOp::Delete { name } => {
                let r = rds.delete_db_parameter_group().db_parameter_group_name(name).send().await;
                idempotent(r.map(drop).map_err(call("rds", "DeleteDBParameterGroup", address)), Class::NotFound)?;
            }
        }
        Ok(())
    }

    fn password(change: &Change, spec: &DbInstanceSpec) -> Result<String, AwsError> {
        let var = spec.password_env.as_deref().ok_or_else(|| AwsError::NoPasswordEnv { address: change.address.to_string() })?;
        secret(var).ok_or_else(|| AwsError::PasswordUnset { address: change.address.to_string(), var: var.to_string() })
    }

    fn group_ids(&self, spec_groups: impl IntoIterator<Item = crate::resource::GroupRef>) -> Result<Vec<String>, AwsError> {
        spec_groups.into_iter().map(|g| self.resolve(&g)).collect()
    }

    /// The ids of the groups a new instance is created with; none declared: not sent (AWS attaches the
    /// VPC's default group).
    fn declared_group_ids(&self, spec: &DbInstanceSpec) -> Result<Option<Vec<String>>, AwsError> {
        if spec.security_groups.is_empty() {
            return Ok(None);
        }
        self.group_ids(spec.security_groups.iter().cloned()).map(Some)
    }

    pub(super) async fn run_db(&self, change: &Change, op: &DbOp) -> Result<(), AwsError> {
        let rds = &self.aws.rds;
        let address = &change.address;
        let id = change.name.as_str();
        match op {
            DbOp::Create { spec } => {
                let password = Self::password(change, spec)?;
                let out = rds
                    .create_db_instance()
                    .db_instance_identifier(&spec.identifier)
                    .db_instance_class(&spec.class)
                    .set_engine(spec.engine.clone())
                    .set_engine_version(spec.version.clone())
                    .set_allocated_storage(spec.storage_gb.map(|s| s as i32))
                    .set_master_username(spec.username.clone())
                    .master_user_password(password)
                    .multi_az(spec.multi_az)
                    .set_db_parameter_group_name(spec.parameter_group.clone())
                    .set_vpc_security_group_ids(self.declared_group_ids(spec)?)
                    .set_db_subnet_group_name(spec.subnet_group.clone())
                    .set_availability_zone(spec.zone.clone())
                    .set_backup_retention_period(spec.backup_retention_days.map(|d| d as i32))
                    .set_preferred_maintenance_window(spec.maintenance_window.clone())
                    .set_preferred_backup_window(spec.backup_window.clone())
                    .deletion_protection(spec.deletion_protection)
                    .set_tags(Some(tags(&spec.tags)))
                    .send()
                    .await
                    .map_err(call("rds", "CreateDBInstance", address));
                if let Answer::AlreadyExists(answer) = created(out)? {
                    self.instance_ours_already(change, "CreateDBInstance", spec, answer).await?;
                }
                self.wait_db(change, Until::Available).await?;
            }
            DbOp::CreateReplica { spec } => {
                let (_, source) = spec.replica_of.clone().ok_or_else(|| AwsError::from(Unresolved::ReplicaSource { address: address.to_string() }))?;
                let out = rds
                    .create_db_instance_read_replica()
                    .db_instance_identifier(&spec.identifier)
                    .source_db_instance_identifier(source)
                    .db_instance_class(&spec.class)
                    .multi_az(spec.multi_az)
                    .set_db_parameter_group_name(spec.parameter_group.clone())
                    .set_vpc_security_group_ids(self.declared_group_ids(spec)?)
                    .set_availability_zone(spec.zone.clone())
                    .deletion_protection(spec.deletion_protection)
                    .set_tags(Some(tags(&spec.tags)))
                    .send()
                    .await
                    .map_err(call("rds", "CreateDBInstanceReadReplica", address));
                // A second replica is never made: the one there is this change's, or an error.
                if let Answer::AlreadyExists(answer) = created(out)? {
                    self.instance_ours_already(change, "CreateDBInstanceReadReplica", spec, answer).await?;
                }
                self.wait_db(change, Until::Available).await?;
            }
            DbOp::Modify(m) => {
                self.modify_db(change, m).await?;
                if m.apply_immediately {
                    self.wait_db(change, Until::Available).await?;
                }
            }
            DbOp::Promote { backup_retention_days } => {
                rds.promote_read_replica()
                    .db_instance_identifier(id)
                    .set_backup_retention_period(backup_retention_days.map(|d| d as i32))
                    .send()
                    .await
                    .map_err(call("rds", "PromoteReadReplica", address))?;
                self.wait_db(change, Until::StandsAlone).await?;
            }
            DbOp::AddTags { arn, tags } => self.add_tags(change, arn, tags).await?,
            DbOp::RemoveTags { arn, keys } => self.remove_tags(change, arn, keys).await?,
            DbOp::Delete { identifier, final_snapshot } => {
                let r = rds
                    .delete_db_instance()
                    .db_instance_identifier(identifier)
                    .skip_final_snapshot(final_snapshot.is_none())
                    .set_final_db_snapshot_identifier(final_snapshot.clone())
                    .send()
                    .await;
                idempotent(r.map(drop).map_err(call("rds", "DeleteDBInstance", address)), Class::NotFound)?;
                if let Some(s) = final_snapshot {
                    self.report(address, &format!("final snapshot {s} requested"));
                }
                self.wait_db(change, Until::Gone).await?;
            }
        }
        Ok(())
    }

    async fn modify_db(&self, change: &Change, m: &DbModify) -> Result<(), AwsError> {
        let groups = match &m.security_groups {
            Some(g) => Some(self.group_ids(g.iter().cloned())?),
            None => None,
        };
        self.aws
            .rds
            .modify_db_instance()
            .db_instance_identifier(&change.name)
            .set_db_instance_class(m.class.clone())
            .set_engine_version(m.version.clone())
            .set_allocated_storage(m.storage_gb.map(|s| s as i32))
            .set_multi_az(m.multi_az)
            .set_db_parameter_group_name(m.parameter_group.clone())
            .set_vpc_security_group_ids(groups)
            .set_backup_retention_period(m.backup_retention_days.map(|d| d as i32))
            .set_preferred_maintenance_window(m.maintenance_window.clone())
            .set_preferred_backup_window(m.backup_window.clone())
            .set_deletion_protection(m.deletion_protection)
            .apply_immediately(m.apply_immediately)
            .allow_major_version_upgrade(m.allow_major_version_upgrade)
            .send()
            .await
            .map_err(call("rds", "ModifyDBInstance", &change.address))?;
        if !m.apply_immediately {
            self.report(&change.address, "scheduled for the maintenance window (pending in AWS until then)");
        }
        Ok(())
    }

    /// Polls DescribeDBInstances until the instance is available (or gone), reporting each new status.
    async fn wait_db(&self, change: &Change, until: Until) -> Result<(), AwsError> {
        let address = &change.address;
        let deadline = tokio::time::Instant::now() + AVAILABLE_WAIT;
        let mut wait = POLL_FIRST;
        let mut last = String::new();
        loop {
            let out = self.aws.rds.describe_db_instances().db_instance_identifier(&change.name).send().await;
            let (status, replica) = match out {
                Ok(out) => {
                    let db = out.db_instances().first();
                    (db.and_then(|d| d.db_instance_status()).map(str::to_string), db.is_some_and(|d| d.read_replica_source_db_instance_identifier().is_some()))
                }
                Err(e) => {
                    let e = call("rds", "DescribeDBInstances", address)(e);
                    if e.class() == Class::NotFound {
                        (None, false)
                    } else {
                        return Err(e);
                    }
                }
            };
            match (&until, status.as_deref()) {
                (Until::Gone, None) => return Ok(()),
                (Until::Available, Some("available")) => {
                    self.report(address, "available");
                    return Ok(());
                }
                (Until::StandsAlone, Some("available")) if !replica => {
                    self.report(address, "available, no longer a replica");
                    return Ok(());
                }
                (Until::Available | Until::StandsAlone, None) => {
                    return Err(AwsError::DbVanished { address: address.to_string(), identifier: change.name.clone() });
                }
                (_, Some(s)) if FAILED.contains(&s) => {
                    return Err(AwsError::DbFailed { address: address.to_string(), identifier: change.name.clone(), status: s.to_string() });
                }
                (_, Some(s)) if s != last => {
                    self.report(address, &format!("status {s}"));
                    last = s.to_string();
                }
                _ => {}
            }
            if tokio::time::Instant::now() > deadline {
                return Err(AwsError::WaitTimedOut {
                    address: address.to_string(),
                    waiting: format!("still `{last}`"),
                    minutes: AVAILABLE_WAIT.as_secs() / 60,
                    then: "; it goes on in AWS (`converge plan` shows its status)",
                });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(POLL_MAX);
        }
    }
}
