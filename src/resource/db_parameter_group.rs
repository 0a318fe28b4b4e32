//! DB parameter groups: a family and the parameters this fleet declares. The group is the fleet's, so every
//! parameter set in it (source `user`) is read: one the fleet does not declare is drift, reset to the engine's
//! default. A change modifies (or resets) only the parameters that differ, at most [`PARAMETER_BATCH`] per
//! call, `immediate` for dynamic parameters and `pending-reboot` for static ones.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Address, Diff, Environment, FieldChange, Kind, Op, ResourceKind, diff_tags, owned_tags};
use crate::model::Fleet;

/// ModifyDBParameterGroup and ResetDBParameterGroup take at most 20 parameters per call.
pub const PARAMETER_BATCH: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbParameterGroupSpec {
    pub name: String,
    pub family: String,
    pub description: String,
    /// Desired: what the fleet declares. Live: every parameter set in the group (source `user`).
    pub parameters: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// Whether a parameter is static (applies only at a reboot). Desired: for each declared parameter, as the
    /// engine's defaults list it. Live: for each parameter read, as AWS reports it (what a reset needs). One
    /// not known (or not read: offline) is sent as `pending-reboot`, which AWS accepts for both kinds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub static_parameters: BTreeMap<String, bool>,
    /// Desired only: parameters declared `apply = "pending-reboot"`, changed at the next reboot even when
    /// they are dynamic.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub at_reboot: BTreeSet<String>,
    /// Live only: the group's ARN (tags are set by ARN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
}

/// One parameter as ModifyDBParameterGroup takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterValue {
    pub name: String,
    pub value: String,
    /// Takes effect at the next reboot (`pending-reboot`), else now (`immediate`).
    pub at_reboot: bool,
}

/// One parameter as ResetDBParameterGroup takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterReset {
    pub name: String,
    /// Takes effect at the next reboot (`pending-reboot`), else now (`immediate`).
    pub at_reboot: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum PgOp {
    /// CreateDBParameterGroup, tagged as ours.
    Create {
        name: String,
        family: String,
        description: String,
        tags: BTreeMap<String, String>,
    },
    /// One ModifyDBParameterGroup call.
    ModifyParameters {
        parameters: Vec<ParameterValue>,
    },
    /// One ResetDBParameterGroup call: each parameter back to the engine's default.
    ResetParameters {
        parameters: Vec<ParameterReset>,
    },
    AddTags {
        arn: String,
        tags: BTreeMap<String, String>,
    },
    RemoveTags {
        arn: String,
        keys: Vec<String>,
    },
    Delete {
        name: String,
    },
}

impl ResourceKind for DbParameterGroupSpec {
    const KIND: Kind = Kind::DbParameterGroup;
    const NAME: &'static str = "db_parameter_group";
    const NOUN: &'static str = "DB parameter group";
    const TABLE: &'static str = "db_parameter_group";
    type Op = PgOp;

    fn desired(fleet: &Fleet, env: &Environment) -> Vec<(String, Self)> {
        fleet.db_parameter_groups.keys().map(|name| (name.clone(), Self::from_model(fleet, name, env))).collect()
    }

    fn policies(fleet: &Fleet) -> Vec<(String, crate::model::Policy)> {
        fleet.db_parameter_groups.iter().map(|(n, g)| (n.clone(), g.policy)).collect()
    }

    fn tag_command(name: &str, _id: &str, tags: &[(&str, &str)]) -> String {
        format!(
            "aws rds add-tags-to-resource --resource-name $(aws rds describe-db-parameter-groups --db-parameter-group-name {name} --query 'DBParameterGroups[0].DBParameterGroupArn' --output text) --tags {}",
            super::cli_tags(tags)
        )
    }
    fn aws_name(&self) -> &str {
        &self.name
    }

    fn delete_ops(&self, _id: &str) -> Vec<Op> {
        vec![Op::DbParameterGroup(PgOp::Delete { name: self.name.clone() })]
    }

    fn forget_ops(&self, _id: &str) -> Vec<Op> {
        vec![Op::DbParameterGroup(PgOp::RemoveTags { arn: self.arn.clone().unwrap_or_default(), keys: super::ownership_keys() })]
    }

    fn describe(&self) -> Vec<(String, String)> {
        let mut out =
            vec![("name".to_string(), self.name.clone()), ("family".to_string(), self.family.clone()), ("description".to_string(), self.description.clone())];
        out.extend(self.parameters.iter().map(|(k, v)| (format!("parameters.{k}"), v.clone())));
        out.extend(self.tags.iter().map(|(k, v)| (format!("tags.{k}"), v.clone())));
        out
    }

    fn create_ops(&self) -> Vec<Op> {
        let mut ops = vec![Op::DbParameterGroup(PgOp::Create {
            name: self.name.clone(),
            family: self.family.clone(),
            description: self.description.clone(),
            tags: self.tags.clone(),
        })];
        ops.extend(self.modify_ops(self.parameters.iter().map(|(k, v)| self.value(k, v)).collect()));
        ops
    }

    fn diff(&self, live: &DbParameterGroupSpec) -> Diff {
        let mut d = Diff::default();
        for (field, old, new) in
            [("name", &live.name, &self.name), ("family", &live.family, &self.family), ("description", &live.description, &self.description)]
        {
            if old != new {
                d.fields.push(FieldChange::changed(field, old, new).forcing());
            }
        }
        if d.forces_replacement() {
            return d;
        }
        let mut changed = Vec::new();
        for (name, value) in &self.parameters {
            let now = live.parameters.get(name);
            if now.is_some_and(|n| same_value(n, value)) {
                continue;
            }
            let p = self.value(name, value);
            let field = format!("parameters.{name}");
            d.fields.push(
                match now {
                    Some(old) => FieldChange::changed(field, old, value),
                    None => FieldChange::added(field, value),
                }
                .note(if self.at_reboot.contains(name) {
                    "apply = \"pending-reboot\": takes effect at the next reboot of each database using it"
                } else {
                    when(self.static_parameters.get(name))
                }),
            );
            changed.push(p);
        }
        d.ops.extend(self.modify_ops(changed));
        // Set in the group but not declared: back to the engine's default, as AWS says the parameter applies.
        let mut reset = Vec::new();
        for (name, old) in live.parameters.iter().filter(|(name, _)| !self.parameters.contains_key(*name)) {
            let kind = live.static_parameters.get(name);
            d.fields.push(FieldChange::removed(format!("parameters.{name}"), old).note(format!("reset to the engine's default; {}", when(kind))));
            reset.push(ParameterReset { name: name.clone(), at_reboot: kind.copied().unwrap_or(true) });
        }
        d.ops.extend(reset.chunks(PARAMETER_BATCH).map(|c| Op::DbParameterGroup(PgOp::ResetParameters { parameters: c.to_vec() })));
        if let Some((add, remove)) = diff_tags(&self.tags, &live.tags, &mut d.fields) {
            let arn = live.arn.clone().unwrap_or_default();
            if !add.is_empty() {
                d.ops.push(Op::DbParameterGroup(PgOp::AddTags { arn: arn.clone(), tags: add }));
            }
            if !remove.is_empty() {
                d.ops.push(Op::DbParameterGroup(PgOp::RemoveTags { arn, keys: remove }));
            }
        }
        d
    }
}

impl DbParameterGroupSpec {
    pub fn from_model(fleet: &Fleet, name: &str, env: &Environment) -> Self {
        let g = &fleet.db_parameter_groups[name];
        let address = Address::new(Kind::DbParameterGroup, name);
        let known = env.static_parameters.get(&g.family);
        let static_parameters = g.parameters.keys().filter_map(|p| Some((p.clone(), *known?.get(p)?))).collect();
        DbParameterGroupSpec {
            name: fleet.db_parameter_group_name(name),
            family: g.family.clone(),
            description: g.description.clone().unwrap_or_else(|| format!("{address} of fleet {}", fleet.settings.name)),
            parameters: g.parameters.clone(),
            tags: owned_tags(&fleet.settings.name, &address, &g.tags),
            static_parameters,
            at_reboot: g.at_reboot.clone(),
            arn: None,
        }
    }

    fn modify_ops(&self, changed: Vec<ParameterValue>) -> Vec<Op> {
        changed.chunks(PARAMETER_BATCH).map(|c| Op::DbParameterGroup(PgOp::ModifyParameters { parameters: c.to_vec() })).collect()
    }

    fn value(&self, name: &str, value: &str) -> ParameterValue {
        let at_reboot = self.at_reboot.contains(name) || self.static_parameters.get(name).copied().unwrap_or(true);
        ParameterValue { name: name.to_string(), value: value.to_string(), at_reboot }
    }
}

/// When a change to a parameter takes effect, from whether it is static.
fn when(is_static: Option<&bool>) -> &'static str {
    match is_static {
        Some(true) => "static: takes effect at the next reboot of each database using it",
        Some(false) => "dynamic: takes effect now",
        None => "not in the engine's defaults here: sent as pending-reboot, so it takes effect at the next reboot",
    }
}

/// RDS keeps values as given, but MySQL reads `ON`/`on`/`1` alike: compare as MySQL does, so a value
/// written one way and read back another is no perpetual change.
fn same_value(live: &str, desired: &str) -> bool {
    let norm = |v: &str| match v.trim().to_ascii_lowercase().as_str() {
        "on" | "true" => "1".to_string(),
        "off" | "false" => "0".to_string(),
        other => other.to_string(),
    };
    norm(live) == norm(desired)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(params: &[(&str, &str)]) -> DbParameterGroupSpec {
        DbParameterGroupSpec {
            name: "agency-sites".into(),
            family: "mysql8.0".into(),
            description: "d".into(),
            parameters: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            tags: BTreeMap::new(),
            static_parameters: BTreeMap::from([("innodb_log_file_size".to_string(), true), ("max_connections".to_string(), false)]),
            at_reboot: BTreeSet::new(),
            arn: Some("arn:aws:rds:eu-west-1:123456789012:pg:agency-sites".into()),
        }
    }

    #[test]
    fn only_changed_parameters_are_modified_each_with_when_it_applies() {
        let want = spec(&[("max_connections", "800"), ("slow_query_log", "ON"), ("innodb_log_file_size", "268435456")]);
        let live = spec(&[("max_connections", "600"), ("slow_query_log", "1")]);
        let d = want.diff(&live);
        assert_eq!(
            d.ops,
            vec![Op::DbParameterGroup(PgOp::ModifyParameters {
                parameters: vec![
                    ParameterValue { name: "innodb_log_file_size".into(), value: "268435456".into(), at_reboot: true },
                    ParameterValue { name: "max_connections".into(), value: "800".into(), at_reboot: false },
                ]
            })]
        );
        assert_eq!(d.fields[0].note.as_deref(), Some("static: takes effect at the next reboot of each database using it"));
        assert_eq!(d.fields[1].note.as_deref(), Some("dynamic: takes effect now"));
    }

    #[test]
    fn a_parameter_set_in_the_group_but_not_declared_is_reset_as_it_applies() {
        let want = spec(&[("max_connections", "800")]);
        let mut live = spec(&[("max_connections", "800"), ("slow_query_log", "1"), ("innodb_log_file_size", "268435456")]);
        live.static_parameters = BTreeMap::from([("slow_query_log".to_string(), false), ("innodb_log_file_size".to_string(), true)]);
        let d = want.diff(&live);
        assert_eq!(
            d.ops,
            vec![Op::DbParameterGroup(PgOp::ResetParameters {
                parameters: vec![
                    ParameterReset { name: "innodb_log_file_size".into(), at_reboot: true },
                    ParameterReset { name: "slow_query_log".into(), at_reboot: false },
                ]
            })]
        );
        assert_eq!(d.fields[1], FieldChange::removed("parameters.slow_query_log", "1").note("reset to the engine's default; dynamic: takes effect now"));
        let many: BTreeMap<String, String> = (0..21).map(|i| (format!("p{i:02}"), "1".to_string())).collect();
        let d = spec(&[]).diff(&DbParameterGroupSpec { parameters: many, ..spec(&[]) });
        assert_eq!(d.ops.len(), 2, "21 resets are two calls: {d:?}");
    }

    #[test]
    fn a_dynamic_parameter_declared_pending_reboot_waits_for_the_reboot() {
        let want = DbParameterGroupSpec { at_reboot: BTreeSet::from(["max_connections".to_string()]), ..spec(&[("max_connections", "800")]) };
        let d = want.diff(&spec(&[("max_connections", "600")]));
        let held = ParameterValue { name: "max_connections".into(), value: "800".into(), at_reboot: true };
        assert_eq!(d.ops, vec![Op::DbParameterGroup(PgOp::ModifyParameters { parameters: vec![held] })]);
        assert_eq!(d.fields[0].note.as_deref(), Some("apply = \"pending-reboot\": takes effect at the next reboot of each database using it"));
    }

    #[test]
    fn many_parameters_go_in_batches_of_twenty() {
        let names: Vec<(String, String)> = (0..45).map(|i| (format!("p{i:02}"), "1".to_string())).collect();
        let refs: Vec<(&str, &str)> = names.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let d = spec(&refs).diff(&spec(&[]));
        assert_eq!(d.ops.len(), 3);
    }
}
