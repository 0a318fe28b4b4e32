//! RDS instances: a MySQL primary and its read replicas. The one kind that must never be lost, so:
//! never replaced (a change that would need it is a conflict), deleted only with `--allow-destroy` and a
//! final snapshot, and every change says when it takes effect. A change scheduled for the maintenance
//! window shows as pending in AWS from then on (from `PendingModifiedValues`), not as a change still to
//! make. The master password is read from the environment by the executor at create time; a spec holds
//! only the variable's name.
//!
//! Defaults: an omitted field is either converge's own default, compared like a declared value (backup
//! retention: 1 day on a primary, AWS's API default; 0 on a replica, as RDS creates replicas; a replica's
//! security groups: its primary's), or left to AWS and shown as an observation for reference (`info`): the
//! maintenance and backup windows, the zone, the subnet group, the parameter group, and a primary's
//! security groups (the VPC's default group).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Address, Context, Diff, Environment, FieldChange, GroupRef, Kind, Observation, Op, Refusal, ResourceKind, diff_tags, list, owned_tags};
use crate::model::Fleet;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbInstanceSpec {
    pub identifier: String,
    /// A read replica: its primary's address name and AWS identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_of: Option<(String, String)>,
    /// Primary only (a replica takes them from its primary): `None` is not compared.
    pub engine: Option<String>,
    pub version: Option<String>,
    pub storage_gb: Option<u32>,
    pub username: Option<String>,
    pub class: String,
    pub multi_az: bool,
    /// AWS name of the parameter group, and its address name when it is this fleet's. Desired `None`: left
    /// to AWS (the engine's default group; a replica's source's), observed.
    pub parameter_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_group_ref: Option<String>,
    /// Desired empty: left to AWS (the VPC's default group), observed; a replica's default is its primary's.
    pub security_groups: BTreeSet<GroupRef>,
    /// Set at creation; not compared after (RDS cannot move an instance in place): observed.
    pub subnet_group: Option<String>,
    pub zone: Option<String>,
    /// Always set when desired (1 on a primary, 0 on a replica unless declared); compared.
    pub backup_retention_days: Option<u32>,
    /// Desired `None`: AWS assigns one, observed.
    pub maintenance_window: Option<String>,
    pub backup_window: Option<String>,
    pub deletion_protection: bool,
    pub tags: BTreeMap<String, String>,
    /// Desired only: the environment variable holding the master password (never its value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// Desired only: when changes take effect, and what is allowed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub apply_immediately: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_major_version_upgrade: bool,
    /// Desired only: the replicas of this primary (their changes go first).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub replicas: BTreeSet<String>,
    /// Live only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Live only: changes AWS holds for the maintenance window, by field name (as this spec names them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pending: BTreeMap<String, String>,
}

/// The fields of one ModifyDBInstance call; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbModify {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_gb: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_az: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<GroupRef>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_retention_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_window: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_window: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_protection: Option<bool>,
    pub apply_immediately: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_major_version_upgrade: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum DbOp {
    /// CreateDBInstance (the password read from `password_env` now), then wait until available.
    Create {
        spec: DbInstanceSpec,
    },
    /// CreateDBInstanceReadReplica of the primary, then wait until available.
    CreateReplica {
        spec: DbInstanceSpec,
    },
    /// One ModifyDBInstance; waits until available when applied immediately.
    Modify(DbModify),
    /// PromoteReadReplica: replication stops; then wait until available. The promotion sets the backup
    /// retention (AWS's default for it is 1 day): the desired one is sent with it.
    Promote {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backup_retention_days: Option<u32>,
    },
    AddTags {
        arn: String,
        tags: BTreeMap<String, String>,
    },
    RemoveTags {
        arn: String,
        keys: Vec<String>,
    },
    /// DeleteDBInstance, with a final snapshot unless a replica; then wait until it is gone.
    Delete {
        identifier: String,
        final_snapshot: Option<String>,
    },
}

/// A primary's backup retention when none is declared: AWS's API default (the console's is 7).
pub const BACKUP_RETENTION_DAYS: u32 = 1;
/// A replica's: RDS creates read replicas with backups off.
pub const REPLICA_BACKUP_RETENTION_DAYS: u32 = 0;

/// `8.0.39` -> `8.0`: MySQL's major version.
fn major(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// The name of the snapshot taken when `identifier` is deleted.
pub fn final_snapshot_name(identifier: &str) -> String {
    format!("{identifier}-final")
}

impl ResourceKind for DbInstanceSpec {
    const KIND: Kind = Kind::DbInstance;
    const NAME: &'static str = "db_instance";
    const NOUN: &'static str = "DB instance";
    const TABLE: &'static str = "database";
    type Op = DbOp;

    fn desired(fleet: &Fleet, env: &Environment) -> Vec<(String, Self)> {
        fleet.databases.keys().map(|name| (name.clone(), Self::from_model(fleet, name, env))).collect()
    }

    fn policies(fleet: &Fleet) -> Vec<(String, crate::model::Policy)> {
        fleet.databases.iter().map(|(n, d)| (n.clone(), d.policy)).collect()
    }

    fn tag_command(name: &str, _id: &str, tags: &[(&str, &str)]) -> String {
        format!(
            "aws rds add-tags-to-resource --resource-name $(aws rds describe-db-instances --db-instance-identifier {name} --query 'DBInstances[0].DBInstanceArn' --output text) --tags {}",
            super::cli_tags(tags)
        )
    }
    fn aws_name(&self) -> &str {
        &self.identifier
    }

    /// `--apply-immediately` applies every database's changes now.
    fn prepare(&mut self, cx: &Context<'_>) {
        self.apply_immediately |= cx.apply_immediately;
    }

    /// Never: a database's data would go with it.
    fn refuse_replacement(&self, forced: &[&str]) -> Option<Refusal> {
        Some(Refusal::new(
            format!("would have to be replaced ({} cannot change in place); converge never replaces a database", forced.join(", ")),
            "keep the old value; or migrate: declare a new database (e.g. a replica), promote it, point the sites at it, then remove this one with --allow-destroy",
        ))
    }

    /// Deletion needs `--allow-destroy`, and deletion protection lifted by hand first.
    fn guard_deletion(&self, allow_destroy: bool) -> Option<Refusal> {
        if !allow_destroy {
            return Some(Refusal::new(
                format!("is no longer in the desired state: deleting database {} needs --allow-destroy", self.identifier),
                match &self.replica_of {
                    Some(_) => "if the replica is to go, plan and apply again with --allow-destroy; otherwise restore it in desired-state/".into(),
                    None => format!(
                        "if the database is to go, plan and apply again with --allow-destroy (a final snapshot `{}` is taken); otherwise restore it in desired-state/",
                        final_snapshot_name(&self.identifier)
                    ),
                },
            ));
        }
        self.deletion_protection.then(|| {
            Refusal::new(
                format!("database {} has deletion protection on", self.identifier),
                format!(
                    "lift it first, knowingly: aws rds modify-db-instance --db-instance-identifier {} --no-deletion-protection --apply-immediately",
                    self.identifier
                ),
            )
        })
    }

    /// Creating a primary reads its master password.
    fn reads_env(op: &DbOp) -> Option<&str> {
        match op {
            DbOp::Create { spec } => spec.password_env.as_deref(),
            _ => None,
        }
    }

    /// Its primary, its parameter group and its security groups: they must exist before it, and outlive it.
    fn references(&self) -> BTreeSet<Address> {
        let mut out: BTreeSet<Address> = self.security_groups.iter().filter_map(GroupRef::address).collect();
        out.extend(self.replica_of.iter().map(|(p, _)| Address::new(Kind::DbInstance, p)));
        out.extend(self.parameter_group_ref.iter().map(|p| Address::new(Kind::DbParameterGroup, p)));
        out
    }

    /// A primary's changes wait for its replicas': a replica must never lag behind in class.
    fn waits_for_changes(&self) -> BTreeSet<Address> {
        self.replicas.iter().map(|r| Address::new(Kind::DbInstance, r)).collect()
    }

    fn describe(&self) -> Vec<(String, String)> {
        let mut out = vec![("identifier".to_string(), self.identifier.clone())];
        if let Some((primary, _)) = &self.replica_of {
            out.push(("replica_of".into(), format!("db_instance.{primary}")));
        }
        let opt = |v: &Option<String>| v.clone();
        for (k, v) in [
            ("engine", opt(&self.engine)),
            ("version", opt(&self.version)),
            ("storage_gb", self.storage_gb.map(|s| s.to_string())),
            ("username", opt(&self.username)),
            ("password", self.password_env.as_ref().map(|e| format!("from ${e} (never shown)"))),
            ("class", Some(self.class.clone())),
            ("multi_az", Some(self.multi_az.to_string())),
            ("parameter_group", opt(&self.parameter_group)),
            ("security_groups", Some(list(&self.security_groups))),
            ("subnet_group", opt(&self.subnet_group)),
            ("zone", opt(&self.zone)),
            ("backup_retention_days", self.backup_retention_days.map(|d| d.to_string())),
            ("maintenance_window", opt(&self.maintenance_window)),
            ("backup_window", opt(&self.backup_window)),
            ("deletion_protection", Some(self.deletion_protection.to_string())),
        ] {
            if let Some(v) = v {
                out.push((k.to_string(), v));
            }
        }
        out.extend(self.tags.iter().map(|(k, v)| (format!("tags.{k}"), v.clone())));
        out
    }

    fn create_ops(&self) -> Vec<Op> {
        if self.replica_of.is_none() {
            return vec![Op::DbInstance(DbOp::Create { spec: self.clone() })];
        }
        let mut ops = vec![Op::DbInstance(DbOp::CreateReplica { spec: self.clone() })];
        // CreateDBInstanceReadReplica takes no retention, and RDS creates a replica with backups off: a
        // declared retention is set on the new replica, before it serves anything.
        if let Some(days) = self.backup_retention_days.filter(|d| *d != 0) {
            ops.push(Op::DbInstance(DbOp::Modify(DbModify { backup_retention_days: Some(days), apply_immediately: true, ..DbModify::default() })));
        }
        ops
    }

    fn delete_ops(&self, _id: &str) -> Vec<Op> {
        // RDS takes no final snapshot of a read replica: its data is its primary's.
        let final_snapshot = self.replica_of.is_none().then(|| final_snapshot_name(&self.identifier));
        vec![Op::DbInstance(DbOp::Delete { identifier: self.identifier.clone(), final_snapshot })]
    }

    fn forget_ops(&self, _id: &str) -> Vec<Op> {
        vec![Op::DbInstance(DbOp::RemoveTags { arn: self.arn.clone().unwrap_or_default(), keys: super::ownership_keys() })]
    }

    fn diff(&self, live: &DbInstanceSpec) -> Diff {
        let mut d = Diff::default();
        let mut m =
            DbModify { apply_immediately: self.apply_immediately, allow_major_version_upgrade: self.allow_major_version_upgrade, ..DbModify::default() };
        if self.identifier != live.identifier {
            d.fields.push(FieldChange::changed("identifier", &live.identifier, &self.identifier).forcing());
        }
        let promoting = self.replica_of.is_none() && live.replica_of.is_some();
        match (&self.replica_of, &live.replica_of) {
            (None, Some((primary, _))) => {
                d.fields
                    .push(FieldChange::removed("replica_of", format!("db_instance.{primary}")).note("promoted: replication from the primary stops for good"));
                d.ops.push(Op::DbInstance(DbOp::Promote { backup_retention_days: self.backup_retention_days }));
            }
            (Some((primary, _)), None) => {
                d.fields
                    .push(FieldChange::added("replica_of", format!("db_instance.{primary}")).forcing().note("a standalone instance cannot become a replica"));
            }
            _ => {}
        }
        if self.engine.is_some() && live.engine.is_some() && self.engine != live.engine {
            d.fields.push(FieldChange::changed("engine", live.engine.clone().unwrap_or_default(), self.engine.clone().unwrap_or_default()).forcing());
        }
        if d.forces_replacement() {
            return d;
        }
        // Each field against what it will be once AWS applies what it holds as pending.
        let window = self.maintenance_window.as_deref().or(live.maintenance_window.as_deref());
        let mut change = |field: &str, have: String, want: String| -> bool {
            let effective = live.pending.get(field).cloned().unwrap_or_else(|| have.clone());
            if effective == want {
                return false;
            }
            let mut note = if field == "backup_retention_days" && promoting { "with the promotion".to_string() } else { self.when(field, window) };
            if field == "backup_retention_days" && (effective == "0") != (want == "0") {
                note.push_str("; turning backups on or off suspends I/O briefly");
            }
            d.fields.push(FieldChange::changed(field, effective, want).note(note));
            true
        };
        if change("class", live.class.clone(), self.class.clone()) {
            m.class = Some(self.class.clone());
        }
        if let (Some(want), Some(have)) = (&self.version, &live.version)
            && change("version", have.clone(), want.clone())
        {
            m.version = Some(want.clone());
        }
        if let (Some(want), Some(have)) = (self.storage_gb, live.storage_gb)
            && change("storage_gb", have.to_string(), want.to_string())
        {
            m.storage_gb = Some(want);
        }
        if change("multi_az", live.multi_az.to_string(), self.multi_az.to_string()) {
            m.multi_az = Some(self.multi_az);
        }
        if let Some(want) = &self.parameter_group
            && change("parameter_group", live.parameter_group.clone().unwrap_or_default(), want.clone())
        {
            m.parameter_group = Some(want.clone());
        }
        // None declared (nor, for a replica, on its primary): AWS's default group, observed, never emptied.
        if !self.security_groups.is_empty() && change("security_groups", list(&live.security_groups), list(&self.security_groups)) {
            m.security_groups = Some(self.security_groups.iter().cloned().collect());
        }
        // A promotion sets the retention itself.
        if let Some(want) = self.backup_retention_days
            && change("backup_retention_days", live.backup_retention_days.unwrap_or_default().to_string(), want.to_string())
            && !promoting
        {
            m.backup_retention_days = Some(want);
        }
        if let Some(want) = &self.maintenance_window
            && change("maintenance_window", live.maintenance_window.clone().unwrap_or_default(), want.clone())
        {
            m.maintenance_window = Some(want.clone());
        }
        if let Some(want) = &self.backup_window
            && change("backup_window", live.backup_window.clone().unwrap_or_default(), want.clone())
        {
            m.backup_window = Some(want.clone());
        }
        if change("deletion_protection", live.deletion_protection.to_string(), self.deletion_protection.to_string()) {
            m.deletion_protection = Some(self.deletion_protection);
        }
        let modify = DbModify { apply_immediately: m.apply_immediately, allow_major_version_upgrade: m.allow_major_version_upgrade, ..DbModify::default() };
        if m != modify {
            d.ops.push(Op::DbInstance(DbOp::Modify(m)));
        }
        if let Some((add, remove)) = diff_tags(&self.tags, &live.tags, &mut d.fields) {
            let arn = live.arn.clone().unwrap_or_default();
            if !add.is_empty() {
                d.ops.push(Op::DbInstance(DbOp::AddTags { arn: arn.clone(), tags: add }));
            }
            if !remove.is_empty() {
                d.ops.push(Op::DbInstance(DbOp::RemoveTags { arn, keys: remove }));
            }
        }
        d
    }

    /// Why the diff cannot be applied: storage only grows; a major upgrade must be asked for.
    fn blocked(&self, diff: &Diff, live: &DbInstanceSpec) -> Option<Refusal> {
        let _ = diff;
        if let (Some(want), Some(have)) = (self.storage_gb, live.storage_gb)
            && want < have
        {
            return Some(Refusal::new(
                format!("storage_gb cannot shrink: {have} GB in AWS, {want} GB declared"),
                format!("RDS storage only grows; set storage_gb = {have} (or more)"),
            ));
        }
        if let (Some(want), Some(have)) = (&self.version, &live.version)
            && major(want) != major(have)
            && !self.allow_major_version_upgrade
        {
            return Some(Refusal::new(
                format!("version {have} -> {want} is a major version upgrade"),
                "test it on a copy first, then set allow_major_version_upgrade = true for this database",
            ));
        }
        None
    }

    /// Changes AWS holds for the maintenance window, a status other than available, a zone or subnet group
    /// other than the one declared at creation, and (for reference) what AWS assigned where the desired
    /// state leaves it to AWS.
    fn observe(&self, live: &DbInstanceSpec) -> Vec<Observation> {
        let window = live.maintenance_window.as_deref().unwrap_or("the maintenance window");
        let mut out: Vec<Observation> =
            live.pending.iter().map(|(field, value)| Observation::new(field.clone(), value.clone(), format!("pending in AWS: applied in {window}"))).collect();
        if let Some(status) = live.status.as_deref().filter(|s| *s != "available") {
            out.push(Observation::new("status", status, "reported by RDS"));
        }
        // Declared at creation, never compared after (RDS cannot move an instance in place).
        for (field, want, have, how) in [
            ("zone", &self.zone, &live.zone, "moved from the declared zone (a Multi-AZ failover, or by hand); converge does not move it back"),
            ("subnet_group", &self.subnet_group, &live.subnet_group, "not the declared subnet group; RDS cannot move an instance in place"),
        ] {
            if let (Some(want), Some(have)) = (want, have)
                && want != have
            {
                out.push(Observation::new(field, have.clone(), format!("{how} (declared {want})")));
            }
        }
        let assigned = "assigned by AWS (not declared)";
        for (field, declared, have, note) in [
            ("maintenance_window", self.maintenance_window.is_some(), live.maintenance_window.clone(), assigned.to_string()),
            ("backup_window", self.backup_window.is_some(), live.backup_window.clone(), assigned.to_string()),
            ("zone", self.zone.is_some(), live.zone.clone(), "chosen by AWS (not declared)".to_string()),
            ("subnet_group", self.subnet_group.is_some(), live.subnet_group.clone(), "AWS's default subnet group (not declared)".to_string()),
            (
                "parameter_group",
                self.parameter_group.is_some(),
                live.parameter_group.clone(),
                match &self.replica_of {
                    Some((primary, _)) => format!("from its source db_instance.{primary} (not declared)"),
                    None => "AWS's default for the engine (not declared)".to_string(),
                },
            ),
            (
                "security_groups",
                !self.security_groups.is_empty(),
                (!live.security_groups.is_empty()).then(|| list(&live.security_groups)),
                "AWS's default for the VPC (not declared)".to_string(),
            ),
        ] {
            if let (false, Some(have)) = (declared, have) {
                out.push(Observation::info(field, have, note));
            }
        }
        out
    }
}

impl DbInstanceSpec {
    pub fn from_model(fleet: &Fleet, name: &str, _env: &Environment) -> Self {
        let db = &fleet.databases[name];
        let address = Address::new(Kind::DbInstance, name);
        // A promoted replica stands alone.
        let replica_of = db.replica_of.as_ref().filter(|_| !db.promote).map(|p| (p.value.clone(), fleet.database_identifier(&p.value)));
        let retention = if replica_of.is_some() { REPLICA_BACKUP_RETENTION_DAYS } else { BACKUP_RETENTION_DAYS };
        // A replica that declares no security groups takes its primary's (AWS would give it the VPC's default).
        let groups = match (&db.replica_of, db.security_groups.is_empty()) {
            (Some(p), true) => fleet.databases.get(&p.value).map_or(&db.security_groups, |primary| &primary.security_groups),
            _ => &db.security_groups,
        };
        DbInstanceSpec {
            identifier: fleet.database_identifier(name),
            replica_of,
            engine: db.engine.clone(),
            version: db.version.clone(),
            storage_gb: db.storage_gb,
            username: db.username.clone(),
            class: db.class.clone(),
            multi_az: db.multi_az,
            parameter_group: db.parameter_group.as_ref().map(|p| fleet.db_parameter_group_name(&p.value)),
            parameter_group_ref: db.parameter_group.as_ref().map(|p| p.value.clone()),
            security_groups: groups.iter().map(|g| GroupRef::declared(&g.value)).collect(),
            subnet_group: db.subnet_group.clone(),
            zone: db.zone.clone(),
            backup_retention_days: Some(db.backup_retention_days.unwrap_or(retention)),
            maintenance_window: db.maintenance_window.as_ref().map(|w| w.to_ascii_lowercase()),
            backup_window: db.backup_window.clone(),
            deletion_protection: db.deletion_protection,
            tags: owned_tags(&fleet.settings.name, &address, &db.tags),
            password_env: db.password_env.clone(),
            apply_immediately: db.apply_immediately,
            allow_major_version_upgrade: db.allow_major_version_upgrade,
            replicas: fleet.databases.iter().filter(|(_, d)| d.replica_of.as_ref().is_some_and(|p| p.value == name)).map(|(n, _)| n.clone()).collect(),
            ..DbInstanceSpec::default()
        }
    }

    /// When a change made now takes effect, for the plan (`window`: the declared maintenance window, else
    /// the one AWS assigned).
    fn when(&self, field: &str, window: Option<&str>) -> String {
        if self.apply_immediately {
            match field {
                "class" if self.multi_az => "now: a failover to the standby".into(),
                "class" | "version" => "now: the instance restarts (downtime)".into(),
                "multi_az" => "now: a standby is built (performance dips while it syncs)".into(),
                "parameter_group" => "now; its static parameters at the next reboot".into(),
                _ => "now".into(),
            }
        } else {
            let window = window.unwrap_or("the instance's");
            format!("in the maintenance window ({window}); then pending in AWS until it is applied")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn primary() -> DbInstanceSpec {
        DbInstanceSpec {
            identifier: "agency-sites".into(),
            engine: Some("mysql".into()),
            version: Some("8.0.39".into()),
            storage_gb: Some(200),
            class: "db.r6g.large".into(),
            maintenance_window: Some("sun:05:00-sun:06:00".into()),
            tags: BTreeMap::new(),
            ..DbInstanceSpec::default()
        }
    }

    /// `PendingModifiedValues` as RDS reported it after a class change scheduled for the window.
    fn live_with_pending_class() -> DbInstanceSpec {
        let mut live = primary();
        live.pending = BTreeMap::from([("class".to_string(), "db.r6g.xlarge".to_string())]);
        live
    }

    #[test]
    fn a_change_already_pending_in_aws_is_observed_not_planned() {
        let mut want = primary();
        want.class = "db.r6g.xlarge".into();
        let live = live_with_pending_class();
        let d = want.diff(&live);
        assert!(d.fields.is_empty() && d.ops.is_empty(), "{d:?}");
        let seen = want.observe(&live);
        assert_eq!(seen[0].field, "class");
        assert_eq!(seen[0].note, "pending in AWS: applied in sun:05:00-sun:06:00");
    }

    #[test]
    fn a_change_differing_from_what_is_pending_is_planned_from_the_pending_value() {
        let mut want = primary();
        want.class = "db.r6g.2xlarge".into();
        let d = want.diff(&live_with_pending_class());
        assert_eq!(d.fields[0].old.as_deref(), Some("db.r6g.xlarge"));
        assert_eq!(d.fields[0].note.as_deref(), Some("in the maintenance window (sun:05:00-sun:06:00); then pending in AWS until it is applied"));
        assert!(matches!(&d.ops[..], [Op::DbInstance(DbOp::Modify(m))] if m.class.as_deref() == Some("db.r6g.2xlarge") && !m.apply_immediately));
    }

    #[test]
    fn storage_only_grows_and_a_major_upgrade_must_be_asked_for() {
        let mut want = primary();
        want.storage_gb = Some(100);
        let d = want.diff(&primary());
        assert!(want.blocked(&d, &primary()).unwrap().message.contains("cannot shrink"));
        let mut want = primary();
        want.version = Some("8.4.3".into());
        let d = want.diff(&primary());
        assert!(want.blocked(&d, &primary()).unwrap().message.contains("major version"));
        want.allow_major_version_upgrade = true;
        assert!(want.blocked(&d, &primary()).is_none());
        want.version = Some("8.0.40".into());
        want.allow_major_version_upgrade = false;
        assert!(want.blocked(&want.diff(&primary()), &primary()).is_none(), "a minor upgrade needs no flag");
    }

    const DATABASES: &str = r#"
[fleet]
name = "agency"
region = "eu-west-1"

[security_group.db]
ingress = [{ ports = "3306", cidr = "10.0.0.0/8" }]

[database.sites]
engine = "mysql"
version = "8.0.39"
class = "db.r6g.large"
storage_gb = 200
security_groups = ["db"]
username = "admin"
password_env = "SITES_DB_PASSWORD"

[database.sites-replica]
replica_of = "sites"
class = "db.r6g.large"
"#;

    fn from(text: &str, name: &str) -> DbInstanceSpec {
        let fleet = crate::testing::fleet_of(text);
        DbInstanceSpec::from_model(&fleet, name, &crate::testing::env())
    }

    #[test]
    fn backup_retention_defaults_to_one_day_on_a_primary_and_none_on_a_replica_and_backups_off_by_hand_are_drift() {
        let primary = from(DATABASES, "sites");
        let replica = from(DATABASES, "sites-replica");
        assert_eq!((primary.backup_retention_days, replica.backup_retention_days), (Some(1), Some(0)));
        let declared =
            from(&DATABASES.replace("password_env = \"SITES_DB_PASSWORD\"", "password_env = \"SITES_DB_PASSWORD\"\nbackup_retention_days = 14"), "sites");
        assert_eq!(declared.backup_retention_days, Some(14));

        // Backups disabled by hand on the primary: drift, put back, saying what it costs.
        let mut live = primary.clone();
        live.backup_retention_days = Some(0);
        let d = primary.diff(&live);
        assert_eq!((d.fields[0].field.as_str(), d.fields[0].old.as_deref(), d.fields[0].new.as_deref()), ("backup_retention_days", Some("0"), Some("1")));
        assert!(d.fields[0].note.as_deref().unwrap().ends_with("turning backups on or off suspends I/O briefly"), "{d:?}");
        assert!(matches!(&d.ops[..], [Op::DbInstance(DbOp::Modify(m))] if m.backup_retention_days == Some(1)), "{d:?}");
        // A replica as RDS creates it matches its default; one declared with backups gets them after creation.
        assert!(replica.diff(&replica.clone()).ops.is_empty());
        assert_eq!(replica.create_ops().len(), 1);
        let mut backed_up = replica.clone();
        backed_up.backup_retention_days = Some(7);
        assert!(matches!(&backed_up.create_ops()[..], [Op::DbInstance(DbOp::CreateReplica { .. }), Op::DbInstance(DbOp::Modify(m))]
            if m.backup_retention_days == Some(7) && m.apply_immediately));
    }

    #[test]
    fn a_replica_without_security_groups_takes_its_primarys_and_a_primary_without_them_observes_awss() {
        let replica = from(DATABASES, "sites-replica");
        assert_eq!(replica.security_groups, BTreeSet::from([GroupRef::Fleet("db".into())]));
        assert!(replica.references().contains(&Address::new(Kind::SecurityGroup, "db")));

        let primary = from(&DATABASES.replace("security_groups = [\"db\"]\n", ""), "sites");
        assert!(primary.security_groups.is_empty());
        let mut live = primary.clone();
        live.security_groups = BTreeSet::from([GroupRef::Id("sg-default".into())]);
        assert!(primary.diff(&live).fields.is_empty(), "never changed to an empty list");
        let seen = primary.observe(&live);
        let groups = seen.iter().find(|o| o.field == "security_groups").expect("observed");
        assert_eq!((groups.value.as_str(), groups.info), ("[sg-default]", true));
    }

    #[test]
    fn what_the_desired_state_leaves_to_aws_is_observed_for_reference_and_a_declared_value_stays_managed() {
        let want = from(DATABASES, "sites");
        let mut live = want.clone();
        live.maintenance_window = Some("wed:06:38-wed:07:08".into());
        live.backup_window = Some("13:14-13:44".into());
        live.zone = Some("eu-west-1a".into());
        live.subnet_group = Some("default".into());
        live.parameter_group = Some("default.mysql8.0".into());
        assert!(want.diff(&live).fields.is_empty());
        let seen = want.observe(&live);
        let fields: Vec<(&str, &str, bool)> = seen.iter().map(|o| (o.field.as_str(), o.value.as_str(), o.info)).collect();
        assert_eq!(
            fields,
            vec![
                ("maintenance_window", "wed:06:38-wed:07:08", true),
                ("backup_window", "13:14-13:44", true),
                ("zone", "eu-west-1a", true),
                ("subnet_group", "default", true),
                ("parameter_group", "default.mysql8.0", true),
            ]
        );
        // A change needing the window names the one AWS assigned.
        let mut bigger = want.clone();
        bigger.class = "db.r6g.xlarge".into();
        assert!(bigger.diff(&live).fields[0].note.as_deref().unwrap().contains("(wed:06:38-wed:07:08)"));

        // Declared: compared as before; a zone moved by a failover is observed, and counts.
        let mut declared = want.clone();
        declared.maintenance_window = Some("sun:05:00-sun:06:00".into());
        declared.zone = Some("eu-west-1b".into());
        assert_eq!(declared.diff(&live).fields[0].field, "maintenance_window");
        let seen = declared.observe(&live);
        let zone: Vec<&Observation> = seen.iter().filter(|o| o.field == "zone").collect();
        assert_eq!(zone.len(), 1);
        assert!(!zone[0].info && zone[0].note.contains("declared eu-west-1b"), "{zone:?}");

        // A replica's parameter group comes from its source.
        let replica = from(DATABASES, "sites-replica");
        let mut live = replica.clone();
        live.parameter_group = Some("agency-sites".into());
        let seen = replica.observe(&live);
        assert_eq!(seen[0].note, "from its source db_instance.sites (not declared)");
    }

    #[test]
    fn a_promoted_replica_says_replication_stops() {
        let mut live = primary();
        live.replica_of = Some(("sites".into(), "agency-sites".into()));
        let d = primary().diff(&live);
        assert_eq!(d.ops, vec![Op::DbInstance(DbOp::Promote { backup_retention_days: None })]);
        assert!(d.fields[0].note.as_deref().unwrap().contains("replication from the primary stops"));
        // A replica promoted takes a primary's retention with the promotion, not in a later change.
        let mut want = primary();
        want.backup_retention_days = Some(1);
        live.backup_retention_days = Some(0);
        let d = want.diff(&live);
        assert_eq!(d.ops, vec![Op::DbInstance(DbOp::Promote { backup_retention_days: Some(1) })]);
        assert_eq!(d.fields[1].note.as_deref(), Some("with the promotion; turning backups on or off suspends I/O briefly"));
        // A plan saved before the promotion carried a retention still loads.
        assert_eq!(serde_json::from_str::<DbOp>(r#"{"op":"promote"}"#).unwrap(), DbOp::Promote { backup_retention_days: None });
    }
}
