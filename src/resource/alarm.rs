//! CloudWatch metric alarms the fleet owns: a pool's `alarms = { cpu_above = N }` (the group's average CPU,
//! five-minute periods) and a load balancer's `alarms = { unhealthy_hosts_above = N }` (its most unhealthy
//! instances, one-minute periods), each firing after two periods in breach and posting to its `topic` when it
//! fires and when it clears. Named `<fleet>-<pool>-cpu-high` and `<fleet>-<lb>-unhealthy-hosts`; tagged as
//! every object of the fleet. `PutMetricAlarm` writes an alarm whole (create and update alike); its tags
//! change with `TagResource` and `UntagResource`, by ARN.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Address, Diff, Environment, FieldChange, Kind, Op, ResourceKind, diff_tags, owned_tags};
use crate::model::Fleet;

/// Periods in breach before an alarm fires.
pub const EVALUATION_PERIODS: i32 = 2;

/// The name in the fleet (and address) of a pool's CPU alarm.
pub fn cpu_alarm(pool: &str) -> String {
    format!("{pool}-cpu-high")
}

/// The name in the fleet (and address) of a load balancer's unhealthy-hosts alarm.
pub fn hosts_alarm(load_balancer: &str) -> String {
    format!("{load_balancer}-unhealthy-hosts")
}

fn yes() -> bool {
    true
}

fn missing() -> String {
    "missing".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmSpec {
    pub name: String,
    /// `AWS/EC2`, `AWS/ELB`.
    pub namespace: String,
    pub metric: String,
    pub dimensions: BTreeMap<String, String>,
    /// `Average`, `Maximum`.
    pub statistic: String,
    pub period: i32,
    pub evaluation_periods: i32,
    pub threshold: i64,
    pub comparison: String,
    /// The SNS topics told when it fires, and when it clears.
    pub alarm_actions: BTreeSet<String>,
    pub ok_actions: BTreeSet<String>,
    /// What silences an alarm, set by hand: converge's are on, count every evaluation period, treat missing
    /// data as missing (AWS's default) and tell no one of insufficient data.
    #[serde(default = "yes")]
    pub actions_enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datapoints_to_alarm: Option<i32>,
    #[serde(default = "missing")]
    pub treat_missing_data: String,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub insufficient_data_actions: BTreeSet<String>,
    pub tags: BTreeMap<String, String>,
    /// What the alarm watches, in the fleet: `auto_scaling_group.web`, `load_balancer.shared`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watches: Option<Address>,
    /// Live only: its ARN (tags are set by ARN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
// A plan holds an operation or two per alarm: boxing the put's spec would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum AlarmOp {
    /// PutMetricAlarm with the whole alarm (and its tags, which only a create takes).
    Put {
        spec: AlarmSpec,
    },
    AddTags {
        arn: String,
        tags: BTreeMap<String, String>,
    },
    RemoveTags {
        arn: String,
        keys: Vec<String>,
    },
    /// DeleteAlarms.
    Delete {
        name: String,
    },
}

impl AlarmSpec {
    fn summary(&self) -> String {
        let dims: Vec<String> = self.dimensions.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let op = match self.comparison.as_str() {
            "GreaterThanThreshold" => ">",
            "GreaterThanOrEqualToThreshold" => ">=",
            "LessThanThreshold" => "<",
            "LessThanOrEqualToThreshold" => "<=",
            other => other,
        };
        format!(
            "{} {}/{} ({}) {op} {} for {} x {}s",
            self.statistic,
            self.namespace,
            self.metric,
            dims.join(", "),
            self.threshold,
            self.evaluation_periods,
            self.period
        )
    }

    fn put(&self) -> Op {
        Op::Alarm(AlarmOp::Put { spec: AlarmSpec { arn: None, ..self.clone() } })
    }
}

fn list(s: &BTreeSet<String>) -> String {
    s.iter().cloned().collect::<Vec<_>>().join(", ")
}

impl ResourceKind for AlarmSpec {
    const KIND: Kind = Kind::Alarm;
    const NAME: &'static str = "alarm";
    const NOUN: &'static str = "CloudWatch alarm";
    const TABLE: &'static str = "alarm";
    const ADOPT_IN: &'static str = "the declaration of what it watches";
    type Op = AlarmOp;

    fn desired(fleet: &Fleet, _env: &Environment) -> Vec<(String, Self)> {
        let mut out = Vec::new();
        let mut push = |address: String,
                        watches: Address,
                        namespace: &str,
                        metric: &str,
                        dimension: (&str, String),
                        statistic: &str,
                        period,
                        threshold: u32,
                        topic: &str| {
            let a = Address::new(Kind::Alarm, &address);
            let topics = BTreeSet::from([topic.to_string()]);
            out.push((
                address.clone(),
                AlarmSpec {
                    name: format!("{}-{address}", fleet.settings.name),
                    namespace: namespace.into(),
                    metric: metric.into(),
                    dimensions: BTreeMap::from([(dimension.0.to_string(), dimension.1)]),
                    statistic: statistic.into(),
                    period,
                    evaluation_periods: EVALUATION_PERIODS,
                    threshold: i64::from(threshold),
                    comparison: "GreaterThanThreshold".into(),
                    alarm_actions: topics.clone(),
                    ok_actions: topics,
                    actions_enabled: true,
                    datapoints_to_alarm: None,
                    treat_missing_data: missing(),
                    insufficient_data_actions: BTreeSet::new(),
                    tags: owned_tags(&fleet.settings.name, &a, &BTreeMap::new()),
                    watches: Some(watches),
                    arn: None,
                },
            ));
        };
        for (pool, p) in &fleet.pools {
            if let Some(a) = &p.alarms
                && let Some(cpu) = a.cpu_above
            {
                let group = ("AutoScalingGroupName", fleet.pool_name(pool));
                push(cpu_alarm(pool), Address::new(Kind::AutoScalingGroup, pool), "AWS/EC2", "CPUUtilization", group, "Average", 300, cpu, &a.topic);
            }
        }
        for (name, lb) in &fleet.load_balancers {
            if let Some(a) = &lb.alarms
                && let Some(hosts) = a.unhealthy_hosts_above
            {
                let balancer = ("LoadBalancerName", fleet.load_balancer_name(name));
                let watches = Address::new(Kind::LoadBalancer, name);
                push(hosts_alarm(name), watches, "AWS/ELB", "UnHealthyHostCount", balancer, "Maximum", 60, hosts, &a.topic);
            }
        }
        out
    }

    fn policies(fleet: &Fleet) -> Vec<(String, crate::model::Policy)> {
        // The same alarms `desired` declares: a table with no threshold declares none.
        let pools = fleet.pools.iter().filter(|(_, p)| p.alarms.as_ref().is_some_and(|a| a.cpu_above.is_some()));
        let lbs = fleet.load_balancers.iter().filter(|(_, l)| l.alarms.as_ref().is_some_and(|a| a.unhealthy_hosts_above.is_some()));
        let pools = pools.map(|(n, p)| (cpu_alarm(n), p.policy));
        let lbs = lbs.map(|(n, l)| (hosts_alarm(n), l.policy));
        pools.chain(lbs).collect()
    }

    fn tag_command(name: &str, _id: &str, tags: &[(&str, &str)]) -> String {
        format!(
            "aws cloudwatch tag-resource --resource-arn $(aws cloudwatch describe-alarms --alarm-names {name} --query 'MetricAlarms[0].AlarmArn' --output text) --tags {}",
            super::cli_tags(tags)
        )
    }

    fn aws_name(&self) -> &str {
        &self.name
    }

    /// It waits for what it watches to be created (an alarm on a name that does not exist yet would only
    /// read "insufficient data").
    fn references(&self) -> BTreeSet<Address> {
        self.watches.iter().cloned().collect()
    }

    fn describe(&self) -> Vec<(String, String)> {
        let mut out = vec![("name".to_string(), self.name.clone()), ("alarm".to_string(), self.summary())];
        out.push(("alarm_actions".into(), list(&self.alarm_actions)));
        out.push(("ok_actions".into(), list(&self.ok_actions)));
        out
    }

    fn create_ops(&self) -> Vec<Op> {
        vec![self.put()]
    }

    fn delete_ops(&self, _id: &str) -> Vec<Op> {
        vec![Op::Alarm(AlarmOp::Delete { name: self.name.clone() })]
    }

    fn forget_ops(&self, _id: &str) -> Vec<Op> {
        vec![Op::Alarm(AlarmOp::RemoveTags { arn: self.arn.clone().unwrap_or_default(), keys: super::ownership_keys() })]
    }

    fn diff(&self, live: &AlarmSpec) -> Diff {
        let mut d = Diff::default();
        if self.summary() != live.summary() {
            d.fields.push(FieldChange::changed("alarm", live.summary(), self.summary()));
        }
        if self.alarm_actions != live.alarm_actions {
            d.fields.push(FieldChange::changed("alarm_actions", list(&live.alarm_actions), list(&self.alarm_actions)));
        }
        if self.ok_actions != live.ok_actions {
            d.fields.push(FieldChange::changed("ok_actions", list(&live.ok_actions), list(&self.ok_actions)));
        }
        if self.actions_enabled != live.actions_enabled {
            d.fields.push(FieldChange::changed("actions_enabled", live.actions_enabled.to_string(), self.actions_enabled.to_string()));
        }
        // Unset is every evaluation period.
        let datapoints = |s: &AlarmSpec| s.datapoints_to_alarm.unwrap_or(s.evaluation_periods);
        if datapoints(self) != datapoints(live) {
            d.fields.push(FieldChange::changed("datapoints_to_alarm", datapoints(live).to_string(), datapoints(self).to_string()));
        }
        if self.treat_missing_data != live.treat_missing_data {
            d.fields.push(FieldChange::changed("treat_missing_data", &live.treat_missing_data, &self.treat_missing_data));
        }
        if self.insufficient_data_actions != live.insufficient_data_actions {
            d.fields.push(FieldChange::changed("insufficient_data_actions", list(&live.insufficient_data_actions), list(&self.insufficient_data_actions)));
        }
        if !d.fields.is_empty() {
            d.ops.push(self.put());
        }
        if let Some((add, remove)) = diff_tags(&self.tags, &live.tags, &mut d.fields) {
            let arn = live.arn.clone().unwrap_or_default();
            if !add.is_empty() {
                d.ops.push(Op::Alarm(AlarmOp::AddTags { arn: arn.clone(), tags: add }));
            }
            if !remove.is_empty() {
                d.ops.push(Op::Alarm(AlarmOp::RemoveTags { arn, keys: remove }));
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fleet_of;

    const FLEET: &str = "[fleet]\nname = \"agency\"\nregion = \"eu-west-1\"\n\
        [security_group.lb]\n[load_balancer.shared]\nsecurity_groups = [\"lb\"]\nlisteners = [{ port = 80, protocol = \"http\", instance_port = 80 }]\n\
        alarms = { unhealthy_hosts_above = 0, topic = \"arn:aws:sns:eu-west-1:123456789012:alarms\" }\n\
        [pool.web]\nimage = \"i\"\ninstance_type = \"t3.large\"\nmin = 1\nmax = 2\nalarms = { cpu_above = 80, topic = \"arn:aws:sns:eu-west-1:123456789012:alarms\" }\n\
        [image.i]\nid = \"ami-12345678\"\n";

    #[test]
    fn a_pool_and_a_load_balancer_each_get_their_alarm_and_a_threshold_changed_by_hand_is_one_put() {
        let desired = AlarmSpec::desired(&fleet_of(FLEET), &Environment::default());
        let names: Vec<(&str, String)> = desired.iter().map(|(a, s)| (a.as_str(), s.summary())).collect();
        assert_eq!(
            names,
            vec![
                ("web-cpu-high", "Average AWS/EC2/CPUUtilization (AutoScalingGroupName=agency-web) > 80 for 2 x 300s".to_string()),
                ("shared-unhealthy-hosts", "Maximum AWS/ELB/UnHealthyHostCount (LoadBalancerName=agency-shared) > 0 for 2 x 60s".to_string()),
            ]
        );
        let want = &desired[0].1;
        let mut live = want.clone();
        live.threshold = 95;
        live.arn = Some("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:agency-web-cpu-high".into());
        let d = want.diff(&live);
        assert_eq!(d.fields.len(), 1);
        assert!(matches!(&d.ops[..], [Op::Alarm(AlarmOp::Put { spec })] if spec.threshold == 80 && spec.arn.is_none()), "{d:?}");
        assert!(want.diff(&want.clone()).ops.is_empty());
    }
}
