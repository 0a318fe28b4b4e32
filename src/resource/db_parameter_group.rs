//! DB parameter groups: a family and the parameters this fleet declares. Only declared parameters are read
//! and compared (nobody else's tuning is touched); a change modifies only the parameters that differ, at
//! most [`PARAMETER_BATCH`] per call, `immediate` for dynamic parameters and `pending-reboot` for static ones.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Address, Diff, Environment, FieldChange, Kind, Op, ResourceKind, diff_tags, owned_tags};
use crate::model::Fleet;

/// ModifyDBParameterGroup takes at most 20 parameters per call.
pub const PARAMETER_BATCH: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbParameterGroupSpec {
    pub name: String,
    pub family: String,
    pub description: String,
    /// Desired: what the fleet declares. Live: the same names as AWS holds them (others are not read).
    pub parameters: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// Desired only: for each declared parameter the engine's defaults list, whether it is static (applies
    /// only at a reboot). One they do not list (or not read: offline) is sent as `pending-reboot`, which
    /// AWS accepts for both kinds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub static_parameters: BTreeMap<String, bool>,
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
            let when = match self.static_parameters.get(name) {
                Some(true) => "static: takes effect at the next reboot of each database using it",
                Some(false) => "dynamic: takes effect now",
                None => "not in the engine's defaults here: sent as pending-reboot, so it takes effect at the next reboot",
            };
            let field = format!("parameters.{name}");
            d.fields.push(
                match now {
                    Some(old) => FieldChange::changed(field, old, value),
                    None => FieldChange::added(field, value),
                }
                .note(when),
            );
            changed.push(p);
        }
        d.ops.extend(self.modify_ops(changed));
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
            arn: None,
        }
    }

    fn modify_ops(&self, changed: Vec<ParameterValue>) -> Vec<Op> {
        changed.chunks(PARAMETER_BATCH).map(|c| Op::DbParameterGroup(PgOp::ModifyParameters { parameters: c.to_vec() })).collect()
    }

    fn value(&self, name: &str, value: &str) -> ParameterValue {
        ParameterValue { name: name.to_string(), value: value.to_string(), at_reboot: self.static_parameters.get(name).copied().unwrap_or(true) }
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
    fn many_parameters_go_in_batches_of_twenty() {
        let names: Vec<(String, String)> = (0..45).map(|i| (format!("p{i:02}"), "1".to_string())).collect();
        let refs: Vec<(&str, &str)> = names.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let d = spec(&refs).diff(&spec(&[]));
        assert_eq!(d.ops.len(), 3);
    }
}
