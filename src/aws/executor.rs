//! Executing a plan's operations: each [`Op`] becomes its API call(s), nothing more.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ec2::types::{ResourceType, Tag};

use super::ec2::{permissions, tag_specification};
use super::elb::{sdk_attributes, sdk_health_check, sdk_listener, sdk_tag_keys, sdk_tags};
use super::{Aws, AwsError, Unresolved, call};
use crate::apply::{BoxFuture, ChangeError, Executor};
use crate::error::{Class, Classify, Failure};
use crate::live::Live;
use crate::plan::Change;
use crate::resource::{Address, GroupRef, Kind, LbOp, Op, SgOp};

/// How long a security group delete waits out a conflict (`DependencyViolation`: network interfaces of a
/// just-deleted load balancer take minutes to go in AWS). The one place converge retries a call that failed
/// with a class that is not retryable, because here waiting is what fixes it.
const DEPENDENCY_WAIT: Duration = Duration::from_secs(300);

/// Progress of a long wait, for people (`auto_scaling_group.web: instance refresh 50%`).
pub type Progress = Arc<dyn Fn(&Address, &str) + Send + Sync>;

pub struct AwsExecutor {
    pub(super) aws: Aws,
    /// This fleet's security groups: name in the fleet -> id. Grows as groups are created.
    group_ids: Mutex<BTreeMap<String, String>>,
    /// Launch template versions created in this apply, by template name: what a group moving to its
    /// template's new version is pinned to.
    pub(super) new_versions: Mutex<BTreeMap<String, u64>>,
    /// Wait for instance refreshes to finish (`--no-wait` turns it off).
    pub(super) wait: bool,
    pub(super) progress: Option<Progress>,
}

impl AwsExecutor {
    pub fn new(aws: Aws, live: &Live) -> Self {
        let group_ids = live.ids_of(Kind::SecurityGroup).into_iter().map(|(id, name)| (name, id)).collect();
        AwsExecutor { aws, group_ids: Mutex::new(group_ids), new_versions: Mutex::default(), wait: true, progress: None }
    }

    /// Return once an instance refresh has started, instead of waiting for it.
    pub fn no_wait(mut self) -> Self {
        self.wait = false;
        self
    }

    pub fn on_progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    pub(super) fn report(&self, address: &Address, message: &str) {
        tracing::info!(%address, "{message}");
        if let Some(p) = &self.progress {
            p(address, message);
        }
    }

    pub(super) fn resolve(&self, g: &GroupRef) -> Result<String, AwsError> {
        match g {
            GroupRef::Id(id) => Ok(id.clone()),
            GroupRef::Fleet(name) => self.group_ids.lock().expect("ids lock").get(name).cloned().ok_or_else(|| Unresolved::Group { name: name.clone() }.into()),
        }
    }

    async fn run(&self, change: &Change, op: &Op, id: &mut Option<String>) -> Result<(), AwsError> {
        match op {
            Op::SecurityGroup(op) => self.run_sg(change, op, id).await,
            Op::LoadBalancer(op) => self.run_lb(&change.name, op).await,
            Op::LaunchTemplate(op) => self.run_lt(change, op, id).await,
            Op::AutoScalingGroup(op) => self.run_asg(change, op).await,
            Op::DbParameterGroup(op) => self.run_pg(change, op).await,
            Op::DbInstance(op) => self.run_db(change, op).await,
            Op::DnsRecord(op) => self.run_dns(change, op).await,
            Op::Bucket(op) => self.run_bucket(change, op).await,
        }
    }

    async fn run_sg(&self, change: &Change, op: &SgOp, id: &mut Option<String>) -> Result<(), AwsError> {
        let ec2 = &self.aws.ec2;
        let address = &change.address;
        let group = || id.clone().ok_or_else(|| AwsError::from(Unresolved::Id { address: address.to_string(), what: "group" }));
        let resolve = |g: &GroupRef| self.resolve(g);
        // The four rule calls differ only in the SDK method (each its own builder type) and its name.
        macro_rules! rule_call {
            ($method:ident, $name:literal, $rules:expr) => {{
                ec2.$method().group_id(group()?).set_ip_permissions(Some(permissions($rules, resolve)?)).send().await.map_err(call("ec2", $name, address))?;
            }};
        }
        match op {
            SgOp::Create { name, description, vpc_id, tags } => {
                let out = ec2
                    .create_security_group()
                    .group_name(name)
                    .description(description)
                    .vpc_id(vpc_id)
                    .tag_specifications(tag_specification(ResourceType::SecurityGroup, tags))
                    .send()
                    .await
                    .map_err(call("ec2", "CreateSecurityGroup", address))?;
                let new = out.group_id().unwrap_or_default().to_string();
                self.group_ids.lock().expect("ids lock").insert(address.name.clone(), new.clone());
                *id = Some(new);
            }
            SgOp::AuthorizeIngress { rules } => rule_call!(authorize_security_group_ingress, "AuthorizeSecurityGroupIngress", rules),
            SgOp::RevokeIngress { rules } => rule_call!(revoke_security_group_ingress, "RevokeSecurityGroupIngress", rules),
            SgOp::AuthorizeEgress { rules } => rule_call!(authorize_security_group_egress, "AuthorizeSecurityGroupEgress", rules),
            SgOp::RevokeEgress { rules } => rule_call!(revoke_security_group_egress, "RevokeSecurityGroupEgress", rules),
            SgOp::AddTags { tags } => {
                let tags = tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build());
                ec2.create_tags().resources(group()?).set_tags(Some(tags.collect())).send().await.map_err(call("ec2", "CreateTags", address))?;
            }
            SgOp::RemoveTags { keys } => {
                let tags = keys.iter().map(|k| Tag::builder().key(k).build());
                ec2.delete_tags().resources(group()?).set_tags(Some(tags.collect())).send().await.map_err(call("ec2", "DeleteTags", address))?;
            }
            // AWS refuses to delete a group still referenced (DependencyViolation: a conflict), for minutes
            // after a load balancer using it is gone; moto 5.2.5 never refuses, so the wait is exercised only in AWS.
            SgOp::Delete { id: gone } => {
                let mut wait = Duration::from_secs(2);
                let deadline = tokio::time::Instant::now() + DEPENDENCY_WAIT;
                loop {
                    let result = ec2.delete_security_group().group_id(gone).send().await.map_err(call("ec2", "DeleteSecurityGroup", address));
                    match result {
                        Err(e) if e.class() == Class::Conflict && tokio::time::Instant::now() + wait < deadline => {
                            tracing::info!(%address, "still in use; retrying in {}s", wait.as_secs());
                            tokio::time::sleep(wait).await;
                            wait = (wait * 2).min(Duration::from_secs(20));
                        }
                        other => break other.map(drop)?,
                    }
                }
                self.group_ids.lock().expect("ids lock").remove(&address.name);
                *id = None;
            }
        }
        Ok(())
    }

    async fn run_lb(&self, name: &str, op: &LbOp) -> Result<(), AwsError> {
        let elb = &self.aws.elb;
        let svc = "elasticloadbalancing";
        match op {
            LbOp::Create { spec } => {
                let listeners = spec.listeners.values().map(sdk_listener).collect::<Result<Vec<_>, _>>()?;
                let groups = spec.security_groups.iter().map(|g| self.resolve(g)).collect::<Result<Vec<_>, _>>()?;
                let mut req = elb
                    .create_load_balancer()
                    .load_balancer_name(&spec.name)
                    .set_listeners(Some(listeners))
                    .set_security_groups(Some(groups))
                    .set_tags(Some(sdk_tags(&spec.tags)?));
                req = if spec.subnets.is_empty() {
                    req.set_availability_zones(Some(spec.zones.iter().cloned().collect()))
                } else {
                    req.set_subnets(Some(spec.subnets.iter().cloned().collect()))
                };
                if spec.internal {
                    req = req.scheme("internal");
                }
                req.send().await.map_err(call(svc, "CreateLoadBalancer", &spec.name))?;
                elb.configure_health_check().load_balancer_name(&spec.name).health_check(sdk_health_check(&spec.health_check)?).send().await.map_err(call(
                    svc,
                    "ConfigureHealthCheck",
                    &spec.name,
                ))?;
                elb.modify_load_balancer_attributes()
                    .load_balancer_name(&spec.name)
                    .load_balancer_attributes(sdk_attributes(&spec.attributes)?)
                    .send()
                    .await
                    .map_err(call(svc, "ModifyLoadBalancerAttributes", &spec.name))?;
            }
            LbOp::DeleteListeners { ports } => {
                elb.delete_load_balancer_listeners()
                    .load_balancer_name(name)
                    .set_load_balancer_ports(Some(ports.iter().map(|p| i32::from(*p)).collect()))
                    .send()
                    .await
                    .map_err(call(svc, "DeleteLoadBalancerListeners", name))?;
            }
            LbOp::CreateListeners { listeners } => {
                let listeners = listeners.iter().map(sdk_listener).collect::<Result<Vec<_>, _>>()?;
                elb.create_load_balancer_listeners().load_balancer_name(name).set_listeners(Some(listeners)).send().await.map_err(call(
                    svc,
                    "CreateLoadBalancerListeners",
                    name,
                ))?;
            }
            LbOp::SetCertificate { port, certificate } => {
                elb.set_load_balancer_listener_ssl_certificate()
                    .load_balancer_name(name)
                    .load_balancer_port(i32::from(*port))
                    .ssl_certificate_id(certificate)
                    .send()
                    .await
                    .map_err(call(svc, "SetLoadBalancerListenerSSLCertificate", format!("{name} listener {port}")))?;
            }
            LbOp::ConfigureHealthCheck { health_check } => {
                elb.configure_health_check().load_balancer_name(name).health_check(sdk_health_check(health_check)?).send().await.map_err(call(
                    svc,
                    "ConfigureHealthCheck",
                    name,
                ))?;
            }
            LbOp::ModifyAttributes { attributes } => {
                elb.modify_load_balancer_attributes()
                    .load_balancer_name(name)
                    .load_balancer_attributes(sdk_attributes(attributes)?)
                    .send()
                    .await
                    .map_err(call(svc, "ModifyLoadBalancerAttributes", name))?;
            }
            LbOp::ApplySecurityGroups { groups } => {
                let groups = groups.iter().map(|g| self.resolve(g)).collect::<Result<Vec<_>, _>>()?;
                elb.apply_security_groups_to_load_balancer().load_balancer_name(name).set_security_groups(Some(groups)).send().await.map_err(call(
                    svc,
                    "ApplySecurityGroupsToLoadBalancer",
                    name,
                ))?;
            }
            LbOp::EnableZones { zones } => {
                elb.enable_availability_zones_for_load_balancer()
                    .load_balancer_name(name)
                    .set_availability_zones(Some(zones.clone()))
                    .send()
                    .await
                    .map_err(call(svc, "EnableAvailabilityZonesForLoadBalancer", name))?;
            }
            LbOp::DisableZones { zones } => {
                elb.disable_availability_zones_for_load_balancer()
                    .load_balancer_name(name)
                    .set_availability_zones(Some(zones.clone()))
                    .send()
                    .await
                    .map_err(call(svc, "DisableAvailabilityZonesForLoadBalancer", name))?;
            }
            LbOp::AttachSubnets { subnets } => {
                elb.attach_load_balancer_to_subnets().load_balancer_name(name).set_subnets(Some(subnets.clone())).send().await.map_err(call(
                    svc,
                    "AttachLoadBalancerToSubnets",
                    name,
                ))?;
            }
            LbOp::DetachSubnets { subnets } => {
                elb.detach_load_balancer_from_subnets().load_balancer_name(name).set_subnets(Some(subnets.clone())).send().await.map_err(call(
                    svc,
                    "DetachLoadBalancerFromSubnets",
                    name,
                ))?;
            }
            LbOp::AddTags { tags } => {
                elb.add_tags().load_balancer_names(name).set_tags(Some(sdk_tags(tags)?)).send().await.map_err(call(svc, "AddTags", name))?;
            }
            LbOp::RemoveTags { keys } => {
                elb.remove_tags().load_balancer_names(name).set_tags(Some(sdk_tag_keys(keys))).send().await.map_err(call(svc, "RemoveTags", name))?;
            }
            LbOp::Delete { name } => {
                elb.delete_load_balancer().load_balancer_name(name).send().await.map_err(call(svc, "DeleteLoadBalancer", name))?;
            }
        }
        Ok(())
    }
}

impl Executor for AwsExecutor {
    fn execute<'a>(&'a self, change: &'a Change, ops: &'a [Op]) -> BoxFuture<'a, Result<(), ChangeError>> {
        Box::pin(async move {
            // A group created in this apply has its id here by the time its second phase runs.
            let known = self.group_ids.lock().expect("ids lock").get(&change.address.name).cloned();
            let mut id = match change.address.kind {
                Kind::SecurityGroup => known.or_else(|| change.id.clone()),
                _ => change.id.clone(),
            };
            let total = ops.len();
            for (done, op) in ops.iter().enumerate() {
                self.run(change, op, &mut id).await.map_err(|e| ChangeError { done, total, error: Failure::from(&e) })?;
            }
            Ok(())
        })
    }

    fn has_secret(&self, var: &str) -> bool {
        super::has_secret(var)
    }
}
