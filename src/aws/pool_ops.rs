//! Executing pool operations: launch templates (EC2) and auto-scaling groups, including the waits a
//! rolling instance refresh and a group's deletion need, polled with our own loop and reported as progress.

use std::time::Duration;

use aws_sdk_autoscaling::types::{
    DesiredConfiguration, LaunchTemplateSpecification, MetricType, PredefinedMetricSpecification, RefreshPreferences, Tag as AsgTag,
    TargetTrackingConfiguration,
};
use aws_sdk_ec2::types::{LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData, ResourceType, Tag};
use aws_smithy_types::base64;
use sha2::{Digest, Sha256};

use super::ec2::tag_specification;
use super::executor::{Answer, AwsExecutor, created, idempotent};
use super::{AwsError, Unresolved, call};
use crate::error::{Class, Classify};
use crate::plan::Change;
use crate::resource::{AsgOp, AutoScalingGroupSpec, LtOp, RefreshPrefs, TemplateData, TemplateVersion};

/// How long a group's deletion may take (its instances terminate first).
const DELETE_WAIT: Duration = Duration::from_secs(20 * 60);
/// How long an instance refresh may take before converge stops waiting (the refresh goes on in AWS).
const REFRESH_WAIT: Duration = Duration::from_secs(60 * 60);
/// Polling starts fast and slows down to this.
const POLL_MAX: Duration = Duration::from_secs(15);
const POLL_FIRST: Duration = Duration::from_millis(500);
/// Refresh statuses that end a refresh, and whether each is a success.
const REFRESH_DONE: [(&str, bool); 5] =
    [("Successful", true), ("Failed", false), ("Cancelled", false), ("RollbackSuccessful", false), ("RollbackFailed", false)];

fn ec2_tags(tags: &std::collections::BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// A create's idempotency token: derived from the change (the template's name, the version the change
/// follows, the data) and this apply (`run`). Every attempt of the call sends the same token, so a retry
/// after a lost answer gets the template or version the first attempt created, never a second one. Not the
/// change alone: EC2 answers a token it has seen with what it created then, even once that was deleted, so
/// a template deleted and created again with the same data would come back as the deleted one. A run after
/// a crash needs no token to match: its plan reads the version the dead run created, and plans none.
fn client_token(template: &str, after: Option<u64>, data: &TemplateData, run: &str) -> String {
    let data = serde_json::to_string(data).expect("template data serialises");
    hex::encode(&Sha256::digest(format!("{run}\0{template}\0{}\0{data}", after.map_or(String::new(), |v| v.to_string())))[..16])
}

impl AwsExecutor {
    fn template_data(&self, data: &TemplateData) -> Result<RequestLaunchTemplateData, AwsError> {
        let groups = data.security_groups.iter().map(|g| self.resolve(g)).collect::<Result<Vec<_>, _>>()?;
        let tagged =
            |kind: ResourceType| LaunchTemplateTagSpecificationRequest::builder().resource_type(kind).set_tags(Some(ec2_tags(&data.instance_tags))).build();
        Ok(RequestLaunchTemplateData::builder()
            .image_id(&data.image.id)
            .instance_type(data.instance_type.as_str().into())
            .set_key_name(data.key_pair.clone())
            .set_security_group_ids(Some(groups))
            .user_data(base64::encode(data.user_data_bytes()))
            .tag_specifications(tagged(ResourceType::Instance))
            .tag_specifications(tagged(ResourceType::Volume))
            .build())
    }

    fn record_version(&self, template: &str, version: Option<i64>) -> Result<(), AwsError> {
        let v = version.ok_or_else(|| AwsError::NoVersionReturned { template: template.to_string() })?;
        self.new_versions.lock().expect("versions lock").insert(template.to_string(), v as u64);
        Ok(())
    }

    /// The explicit version number a group is pinned to.
    fn version(&self, template: &str, v: TemplateVersion) -> Result<String, AwsError> {
        match v {
            TemplateVersion::Number(n) => Ok(n.to_string()),
            TemplateVersion::New => self
                .new_versions
                .lock()
                .expect("versions lock")
                .get(template)
                .map(ToString::to_string)
                .ok_or_else(|| Unresolved::NewVersion { template: template.to_string() }.into()),
            TemplateVersion::Current => Err(Unresolved::Unpinned { template: template.to_string() }.into()),
        }
    }

    pub(super) async fn run_lt(&self, change: &Change, op: &LtOp, id: &mut Option<String>) -> Result<(), AwsError> {
        let ec2 = &self.aws.ec2;
        let address = &change.address;
        let template = || id.clone().ok_or_else(|| AwsError::from(Unresolved::Id { address: address.to_string(), what: "launch template" }));
        match op {
            LtOp::Create { spec } => {
                let out = ec2
                    .create_launch_template()
                    .launch_template_name(&spec.name)
                    .launch_template_data(self.template_data(&spec.data)?)
                    .tag_specifications(tag_specification(ResourceType::LaunchTemplate, &spec.tags))
                    .client_token(client_token(&spec.name, None, &spec.data, &self.run))
                    .send()
                    .await
                    .map_err(call("ec2", "CreateLaunchTemplate", address));
                let template = match created(out)? {
                    Answer::Done(out) => out.launch_template().cloned(),
                    Answer::AlreadyExists(answer) => {
                        let found = ec2.describe_launch_templates().launch_template_names(&spec.name).send().await;
                        let found = found.map_err(call("ec2", "DescribeLaunchTemplates", address))?.launch_templates().first().cloned();
                        let tags = found.as_ref().map(|t| super::ec2::tag_map(t.tags()));
                        self.ours_already(change, "CreateLaunchTemplate", &spec.tags, tags.as_ref(), false, answer)?;
                        found
                    }
                };
                *id = template.as_ref().and_then(|t| t.launch_template_id()).map(str::to_string);
                self.record_version(&spec.name, template.as_ref().and_then(|t| t.latest_version_number()))?;
            }
            LtOp::CreateVersion { data, after } => {
                let out = ec2
                    .create_launch_template_version()
                    .launch_template_id(template()?)
                    .launch_template_data(self.template_data(data)?)
                    .client_token(client_token(&change.name, *after, data, &self.run))
                    .send()
                    .await
                    .map_err(call("ec2", "CreateLaunchTemplateVersion", address))?;
                let version = out.launch_template_version().and_then(|v| v.version_number());
                self.record_version(&change.name, version)?;
                self.report(address, &format!("created version {}", version.unwrap_or_default()));
            }
            LtOp::DeleteVersions { versions } => {
                let out = ec2
                    .delete_launch_template_versions()
                    .launch_template_id(template()?)
                    .set_versions(Some(versions.iter().map(ToString::to_string).collect()))
                    .send()
                    .await
                    .map_err(call("ec2", "DeleteLaunchTemplateVersions", address))?;
                // Old versions are housekeeping: one AWS keeps (in use, already gone) fails nothing.
                for failed in out.unsuccessfully_deleted_launch_template_versions() {
                    let why = failed.response_error().and_then(|e| e.message()).unwrap_or("unknown reason");
                    tracing::warn!(%address, "old version {} kept: {why}", failed.version_number().unwrap_or_default());
                }
            }
            LtOp::AddTags { tags } => {
                ec2.create_tags().resources(template()?).set_tags(Some(ec2_tags(tags))).send().await.map_err(call("ec2", "CreateTags", address))?;
            }
            LtOp::RemoveTags { keys } => {
                let tags = keys.iter().map(|k| Tag::builder().key(k).build()).collect();
                ec2.delete_tags().resources(template()?).set_tags(Some(tags)).send().await.map_err(call("ec2", "DeleteTags", address))?;
            }
            LtOp::Delete { id: gone } => {
                let r = ec2.delete_launch_template().launch_template_id(gone).send().await;
                idempotent(r.map(drop).map_err(call("ec2", "DeleteLaunchTemplate", address)), Class::NotFound)?;
                *id = None;
            }
        }
        Ok(())
    }

    fn asg_tags(group: &str, tags: &std::collections::BTreeMap<String, String>) -> Vec<AsgTag> {
        tags.iter()
            .map(|(k, v)| AsgTag::builder().resource_id(group).resource_type("auto-scaling-group").key(k).value(v).propagate_at_launch(false).build())
            .collect()
    }

    fn template_spec(&self, template: &str, version: TemplateVersion) -> Result<LaunchTemplateSpecification, AwsError> {
        Ok(LaunchTemplateSpecification::builder().launch_template_name(template).version(self.version(template, version)?).build())
    }

    pub(super) async fn run_asg(&self, change: &Change, op: &AsgOp) -> Result<(), AwsError> {
        let asg = &self.aws.autoscaling;
        let address = &change.address;
        let group = change.name.as_str();
        match op {
            AsgOp::Create { spec } => self.create_group(change, spec).await?,
            AsgOp::Update(u) => {
                asg.update_auto_scaling_group()
                    .auto_scaling_group_name(group)
                    .set_min_size(u.min.map(|v| v as i32))
                    .set_max_size(u.max.map(|v| v as i32))
                    .set_desired_capacity(u.desired_capacity.map(|v| v as i32))
                    .set_health_check_type(u.health_check.clone())
                    .set_health_check_grace_period(u.grace_seconds.map(|v| v as i32))
                    .set_termination_policies(u.termination_policies.clone())
                    .set_availability_zones(u.zones.clone())
                    .set_vpc_zone_identifier(u.subnets.as_ref().map(|s| s.join(",")))
                    .send()
                    .await
                    .map_err(call("autoscaling", "UpdateAutoScalingGroup", address))?;
            }
            AsgOp::AttachLoadBalancers { names } => {
                asg.attach_load_balancers().auto_scaling_group_name(group).set_load_balancer_names(Some(names.clone())).send().await.map_err(call(
                    "autoscaling",
                    "AttachLoadBalancers",
                    address,
                ))?;
            }
            AsgOp::DetachLoadBalancers { names } => {
                asg.detach_load_balancers().auto_scaling_group_name(group).set_load_balancer_names(Some(names.clone())).send().await.map_err(call(
                    "autoscaling",
                    "DetachLoadBalancers",
                    address,
                ))?;
            }
            AsgOp::PutPolicy { name, target } => {
                let metric = PredefinedMetricSpecification::builder().predefined_metric_type(MetricType::AsgAverageCpuUtilization).build();
                let tracking = TargetTrackingConfiguration::builder().predefined_metric_specification(metric).target_value(f64::from(*target)).build();
                asg.put_scaling_policy()
                    .auto_scaling_group_name(group)
                    .policy_name(name)
                    .policy_type("TargetTrackingScaling")
                    .target_tracking_configuration(tracking)
                    .send()
                    .await
                    .map_err(call("autoscaling", "PutScalingPolicy", format!("{address} policy {name}")))?;
            }
            AsgOp::PutNotifications { topic, types } => {
                asg.put_notification_configuration()
                    .auto_scaling_group_name(group)
                    .topic_arn(topic)
                    .set_notification_types(Some(types.clone()))
                    .send()
                    .await
                    .map_err(call("autoscaling", "PutNotificationConfiguration", format!("{address} notifications to {topic}")))?;
            }
            AsgOp::DeleteNotifications { topic } => {
                asg.delete_notification_configuration().auto_scaling_group_name(group).topic_arn(topic).send().await.map_err(call(
                    "autoscaling",
                    "DeleteNotificationConfiguration",
                    format!("{address} notifications to {topic}"),
                ))?;
            }
            AsgOp::DeletePolicy { name } => {
                asg.delete_policy().auto_scaling_group_name(group).policy_name(name).send().await.map_err(call(
                    "autoscaling",
                    "DeletePolicy",
                    format!("{address} policy {name}"),
                ))?;
            }
            AsgOp::AddTags { tags } => {
                asg.create_or_update_tags().set_tags(Some(Self::asg_tags(group, tags))).send().await.map_err(call(
                    "autoscaling",
                    "CreateOrUpdateTags",
                    address,
                ))?;
            }
            AsgOp::RemoveTags { keys } => {
                let tags = keys.iter().map(|k| AsgTag::builder().resource_id(group).resource_type("auto-scaling-group").key(k).build()).collect();
                asg.delete_tags().set_tags(Some(tags)).send().await.map_err(call("autoscaling", "DeleteTags", address))?;
            }
            AsgOp::StartRefresh { preferences, launch_template } => self.refresh(change, preferences, launch_template).await?,
            AsgOp::Delete { name } => {
                asg.delete_auto_scaling_group().auto_scaling_group_name(name).force_delete(true).send().await.map_err(call(
                    "autoscaling",
                    "DeleteAutoScalingGroup",
                    address,
                ))?;
                self.wait_until_gone(change).await?;
            }
        }
        Ok(())
    }

    async fn create_group(&self, change: &Change, spec: &AutoScalingGroupSpec) -> Result<(), AwsError> {
        let mut req = self
            .aws
            .autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(&spec.name)
            .launch_template(self.template_spec(&spec.launch_template, spec.version)?)
            .min_size(spec.min as i32)
            .max_size(spec.max as i32)
            .desired_capacity(spec.desired_capacity.clamp(spec.min, spec.max) as i32)
            .health_check_type(&spec.health_check)
            .health_check_grace_period(spec.grace_seconds as i32)
            .set_termination_policies(Some(spec.termination_policies.clone()))
            .set_load_balancer_names(Some(spec.load_balancers.keys().cloned().collect()))
            .set_tags(Some(Self::asg_tags(&spec.name, &spec.tags)));
        req = if spec.subnets.is_empty() {
            req.set_availability_zones(Some(spec.zones.iter().cloned().collect()))
        } else {
            req.vpc_zone_identifier(spec.subnets.iter().cloned().collect::<Vec<_>>().join(","))
        };
        if let Answer::AlreadyExists(answer) = created(req.send().await.map_err(call("autoscaling", "CreateAutoScalingGroup", &change.address)))? {
            let found = self.aws.autoscaling.describe_auto_scaling_groups().auto_scaling_group_names(&spec.name).send().await;
            let found = found.map_err(call("autoscaling", "DescribeAutoScalingGroups", &change.address))?;
            let found = found.auto_scaling_groups().first().map(super::pools::group_tags);
            self.ours_already(change, "CreateAutoScalingGroup", &spec.tags, found.as_ref(), false, answer)?;
        }
        Ok(())
    }

    /// Starts a rolling instance refresh to the template version (its desired configuration: AWS moves the
    /// group there once it succeeds, and only a refresh with one can roll back) and, unless told not to,
    /// waits for it, reporting its progress.
    async fn refresh(&self, change: &Change, prefs: &RefreshPrefs, (template, version): &(String, TemplateVersion)) -> Result<(), AwsError> {
        let asg = &self.aws.autoscaling;
        let address = &change.address;
        let preferences = RefreshPreferences::builder()
            .min_healthy_percentage(prefs.min_healthy_percent as i32)
            .set_instance_warmup(prefs.warmup_seconds.map(|w| w as i32))
            .auto_rollback(prefs.auto_rollback)
            .build();
        let desired = DesiredConfiguration::builder().launch_template(self.template_spec(template, *version)?).build();
        let started = asg
            .start_instance_refresh()
            .auto_scaling_group_name(&change.name)
            .desired_configuration(desired)
            .preferences(preferences)
            .send()
            .await
            .map_err(call("autoscaling", "StartInstanceRefresh", address));
        let id = match started {
            Ok(out) => out.instance_refresh_id().unwrap_or_default().to_string(),
            // A refresh running already (`InstanceRefreshInProgress`): this change's own if it goes to this
            // version (a start whose answer was lost, retried), and then waited for; any other is not ours
            // to wait for, and the conflict stands (the plan showed none running).
            Err(e) if e.class() == Class::Conflict => {
                let to = self.version(template, *version)?;
                let out = asg.describe_instance_refreshes().auto_scaling_group_name(&change.name).send().await.map_err(call(
                    "autoscaling",
                    "DescribeInstanceRefreshes",
                    address,
                ))?;
                let running = out.instance_refreshes().iter().find(|r| {
                    let status = r.status().map(|s| s.as_str()).unwrap_or_default();
                    let version = r.desired_configuration().and_then(|d| d.launch_template()).and_then(|t| t.version());
                    matches!(status, "Pending" | "InProgress") && version == Some(to.as_str())
                });
                match running.and_then(|r| r.instance_refresh_id()) {
                    Some(id) => id.to_string(),
                    None => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        if !self.wait {
            self.report(address, &format!("instance refresh {id} started; not waiting (--no-wait)"));
            return Ok(());
        }
        self.report(address, &format!("instance refresh {id} started"));
        let deadline = tokio::time::Instant::now() + REFRESH_WAIT;
        let mut wait = POLL_FIRST;
        let mut last = String::new();
        loop {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(POLL_MAX);
            let out = asg.describe_instance_refreshes().auto_scaling_group_name(&change.name).instance_refresh_ids(&id).send().await.map_err(call(
                "autoscaling",
                "DescribeInstanceRefreshes",
                address,
            ))?;
            let Some(r) = out.instance_refreshes().first() else {
                return Err(AwsError::RefreshVanished { address: address.to_string(), id });
            };
            let status = r.status().map(|s| s.as_str().to_string()).unwrap_or_default();
            let line = format!("instance refresh {status}, {}% done", r.percentage_complete().unwrap_or_default());
            if line != last {
                self.report(address, &line);
                last = line;
            }
            if let Some((_, ok)) = REFRESH_DONE.iter().find(|(s, _)| *s == status) {
                if *ok {
                    return Ok(());
                }
                let reason = r.status_reason().unwrap_or("no reason given").to_string();
                return Err(AwsError::RefreshEnded { address: address.to_string(), id, status, reason });
            }
            if tokio::time::Instant::now() > deadline {
                return Err(AwsError::WaitTimedOut {
                    address: address.to_string(),
                    waiting: format!("instance refresh {id} still {status}"),
                    minutes: REFRESH_WAIT.as_secs() / 60,
                    then: "; it goes on in AWS (`converge drift` shows it)",
                });
            }
        }
    }

    /// A deleted group's instances terminate first; its name is taken until they have.
    async fn wait_until_gone(&self, change: &Change) -> Result<(), AwsError> {
        let deadline = tokio::time::Instant::now() + DELETE_WAIT;
        let mut wait = POLL_FIRST;
        loop {
            let out = self.aws.autoscaling.describe_auto_scaling_groups().auto_scaling_group_names(&change.name).send().await.map_err(call(
                "autoscaling",
                "DescribeAutoScalingGroups",
                &change.address,
            ))?;
            let Some(g) = out.auto_scaling_groups().first() else { return Ok(()) };
            if tokio::time::Instant::now() > deadline {
                return Err(AwsError::WaitTimedOut {
                    address: change.address.to_string(),
                    waiting: "still being deleted".into(),
                    minutes: DELETE_WAIT.as_secs() / 60,
                    then: "",
                });
            }
            self.report(&change.address, &format!("deleting: {} instances left", g.instances().len()));
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(POLL_MAX);
        }
    }
}
