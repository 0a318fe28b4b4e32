//! CloudWatch metric alarms: the reader (the fleet's alarms by their name prefix, one paginated
//! DescribeAlarms, their tags from the tag index, `tagging`) and the writer (`PutMetricAlarm` whole, tags by ARN, `DeleteAlarms`).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_cloudwatch::types::{AlarmType, ComparisonOperator, Dimension, MetricAlarm, Statistic, Tag};
use futures_util::{StreamExt, TryStreamExt, stream};

use super::executor::AwsExecutor;
use super::executor::idempotent;
use super::{Aws, AwsError, Wanted, call};
use crate::error::{Class, Classify};
use crate::live::Found;
use crate::model::Fleet;
use crate::plan::Change;
use crate::resource::{AlarmOp, AlarmSpec, Kind};

fn spec(a: &MetricAlarm, tags: BTreeMap<String, String>) -> AlarmSpec {
    let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<String>>();
    AlarmSpec {
        name: a.alarm_name().unwrap_or_default().to_string(),
        namespace: a.namespace().unwrap_or_default().to_string(),
        metric: a.metric_name().unwrap_or_default().to_string(),
        dimensions: a.dimensions().iter().map(|d| (d.name().unwrap_or_default().to_string(), d.value().unwrap_or_default().to_string())).collect(),
        statistic: a.statistic().map(|s| s.as_str().to_string()).unwrap_or_default(),
        period: a.period().unwrap_or_default(),
        evaluation_periods: a.evaluation_periods().unwrap_or_default(),
        threshold: a.threshold().unwrap_or_default().round() as i64,
        comparison: a.comparison_operator().map(|c| c.as_str().to_string()).unwrap_or_default(),
        alarm_actions: set(a.alarm_actions()),
        ok_actions: set(a.ok_actions()),
        actions_enabled: a.actions_enabled().unwrap_or(true),
        datapoints_to_alarm: a.datapoints_to_alarm(),
        treat_missing_data: a.treat_missing_data().unwrap_or("missing").to_string(),
        insufficient_data_actions: set(a.insufficient_data_actions()),
        tags,
        watches: None,
        arn: a.alarm_arn().map(str::to_string),
    }
}

fn cw_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

impl Aws {
    /// The fleet's alarms: every metric alarm named `<fleet>-...` (one DescribeAlarms per 100) with its tags
    /// from the index; one ListTagsForResource only for an alarm the index does not hold whose name the
    /// fleet wants (for an import: for every one), concurrently; filed by owner. An alarm neither in the
    /// index nor wanted (one made by hand with the prefix) is not the fleet's, and is left alone.
    pub(crate) async fn read_alarms(&self, fleet: &Fleet, wanted: &Wanted) -> Result<Found<AlarmSpec>, AwsError> {
        let cw = &self.cloudwatch;
        let prefix = format!("{}-", fleet.settings.name);
        // A fleet that declares no alarm may run without CloudWatch permissions: it has none to read.
        let declared = fleet.pools.values().any(|p| p.alarms.is_some()) || fleet.load_balancers.values().any(|l| l.alarms.is_some());
        let describe = async {
            let mut pages = cw.describe_alarms().alarm_name_prefix(&prefix).alarm_types(AlarmType::MetricAlarm).max_records(100).into_paginator().send();
            let mut alarms = Vec::new();
            while let Some(page) = pages.next().await {
                match page.map_err(call("cloudwatch", "DescribeAlarms", format!("alarms named {prefix}*"))) {
                    Ok(page) => alarms.extend(page.metric_alarms().iter().cloned()),
                    Err(e) if !declared && !wanted.all() && e.class() == Class::Denied => {
                        tracing::warn!("no alarm is declared and CloudWatch's alarms cannot be read ({e}): alarms made by this fleet before are not seen");
                        return Ok(None);
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(Some(alarms))
        };
        let index = || self.tag_index(&fleet.settings.name, super::tagging::ALARMS);
        // The index beside the listing when the fleet declares alarms; else only once there are some.
        let (alarms, index) = match (wanted.all(), declared) {
            (true, _) => (describe.await?, None),
            (false, true) => tokio::try_join!(describe, async { index().await.map(Some) })?,
            (false, false) => match describe.await? {
                Some(alarms) if !alarms.is_empty() => (Some(alarms), Some(index().await?)),
                other => (other, None),
            },
        };
        let Some(alarms) = alarms else { return Ok(Found::default()) };
        let (mut tagged, ask) = match index {
            None => (Vec::new(), alarms),
            Some(index) => {
                let (mut known, mut ask) = (Vec::new(), Vec::new());
                for a in alarms {
                    match index.by_arn(a.alarm_arn().unwrap_or_default()) {
                        Some(tags) => known.push((a, tags.clone())),
                        None if wanted.contains(Kind::Alarm, a.alarm_name().unwrap_or_default()) => ask.push(a),
                        None => {}
                    }
                }
                (known, ask)
            }
        };
        let asked: Vec<(MetricAlarm, BTreeMap<String, String>)> = stream::iter(ask)
            .map(|a| async move {
                let arn = a.alarm_arn().unwrap_or_default().to_string();
                let out = cw.list_tags_for_resource().resource_arn(&arn).send().await.map_err(call("cloudwatch", "ListTagsForResource", &arn))?;
                let tags = out.tags().iter().map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string())).collect();
                Ok::<_, AwsError>((a, tags))
            })
            .buffer_unordered(super::READS_IN_FLIGHT)
            .try_collect()
            .await?;
        tagged.extend(asked);
        let mut found = Found::default();
        for (a, tags) in tagged {
            let name = a.alarm_name().unwrap_or_default().to_string();
            let owner = wanted.owner(&fleet.settings.name, Kind::Alarm, &name, &tags);
            found.file(owner, name, spec(&a, tags));
        }
        Ok(found)
    }
}

impl AwsExecutor {
    pub(super) async fn run_alarm(&self, change: &Change, op: &AlarmOp) -> Result<(), AwsError> {
        let cw = &self.aws.cloudwatch;
        let address = &change.address;
        match op {
            AlarmOp::Put { spec } => {
                let dimensions = spec.dimensions.iter().map(|(k, v)| Dimension::builder().name(k).value(v).build()).collect::<Vec<_>>();
                let tags = cw_tags(&spec.tags);
                cw.put_metric_alarm()
                    .alarm_name(&spec.name)
                    .namespace(&spec.namespace)
                    .metric_name(&spec.metric)
                    .set_dimensions(Some(dimensions))
                    .statistic(Statistic::from(spec.statistic.as_str()))
                    .period(spec.period)
                    .evaluation_periods(spec.evaluation_periods)
                    .threshold(spec.threshold as f64)
                    .comparison_operator(ComparisonOperator::from(spec.comparison.as_str()))
                    .set_alarm_actions(Some(spec.alarm_actions.iter().cloned().collect()))
                    .set_ok_actions(Some(spec.ok_actions.iter().cloned().collect()))
                    .set_insufficient_data_actions(Some(spec.insufficient_data_actions.iter().cloned().collect()))
                    .actions_enabled(spec.actions_enabled)
                    .set_datapoints_to_alarm(spec.datapoints_to_alarm)
                    .treat_missing_data(&spec.treat_missing_data)
                    // Only a create takes them (an update keeps the alarm's own): it is never untagged.
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(call("cloudwatch", "PutMetricAlarm", address))?;
            }
            AlarmOp::AddTags { arn, tags } => {
                let tags = cw_tags(tags);
                cw.tag_resource().resource_arn(arn).set_tags(Some(tags)).send().await.map_err(call("cloudwatch", "TagResource", address))?;
            }
            AlarmOp::RemoveTags { arn, keys } => {
                cw.untag_resource().resource_arn(arn).set_tag_keys(Some(keys.clone())).send().await.map_err(call("cloudwatch", "UntagResource", address))?;
            }
            AlarmOp::Delete { name } => {
                // DeleteAlarms answers success for a name that does not exist.
                let r = cw.delete_alarms().alarm_names(name).send().await;
                idempotent(r.map(drop).map_err(call("cloudwatch", "DeleteAlarms", address)), Class::NotFound)?;
            }
        }
        Ok(())
    }
}
