//! Classic load balancers (ELB v1): one DescribeLoadBalancers page per 400, DescribeTags per 20 names, and
//! attributes (which have no batch call) only for the load balancers this fleet owns, concurrently; and
//! their writes, each change with its own API call.

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancing::types::{
    ConnectionDraining, ConnectionSettings, CrossZoneLoadBalancing, HealthCheck, Listener, LoadBalancerAttributes, LoadBalancerDescription, Tag, TagKeyOnly,
};
use futures_util::{StreamExt, TryStreamExt, stream};

use super::executor::{Answer, AwsExecutor, created};
use super::{Aws, AwsError, Owner, Wanted, built, call, unread};
use crate::live::Found;
use crate::plan::Change;
use crate::resource::load_balancer::{Attributes, HealthCheckSpec, ListenerSpec};
use crate::resource::{GroupRef, Kind, LbOp, LoadBalancerSpec};

/// Page size of DescribeLoadBalancers (AWS's maximum).
pub(super) const PAGE: i32 = 400;
/// Names per DescribeTags call (AWS's maximum).
const TAG_BATCH: usize = 20;

/// A load balancer as listed: its owner, description and tags, and its attributes unless it is off the
/// targets' path (`--target`): then it is named (others refer to it), not compared.
type Listed = (Owner, LoadBalancerDescription, BTreeMap<String, String>, Option<Attributes>);

#[derive(Default)]
pub(crate) struct BalancersRead {
    /// Ours, and look-alikes that may be adopted: read in full (see [`Listed`]).
    owned: Vec<Listed>,
    /// Another's look-alikes: (name, id, fleet tag).
    foreign: Vec<(String, String, Option<String>)>,
    /// Load balancers not ours, by name, with their security group ids (to find those using ours).
    others: Vec<(String, Vec<String>)>,
}

impl BalancersRead {
    /// AWS name -> name in the fleet, of ours and of look-alikes that may be adopted.
    pub(crate) fn names(&self) -> BTreeMap<String, String> {
        self.owned
            .iter()
            .filter_map(|(owner, lb, _, _)| match owner {
                Owner::Us(a) | Owner::Unowned(a) => Some((lb.load_balancer_name()?.to_string(), a.name.clone())),
                Owner::Other(_) => None,
            })
            .collect()
    }

    /// The DNS names of ours and of look-alikes that may be adopted, by AWS name.
    pub(crate) fn dns_names(&self) -> BTreeMap<String, String> {
        self.owned
            .iter()
            .map(|(_, lb, _, _)| (lb.load_balancer_name().unwrap_or_default().to_string(), lb.dns_name().unwrap_or_default().to_string()))
            .collect()
    }

    pub(crate) fn found(self, group_ids: &BTreeMap<String, String>) -> Found<LoadBalancerSpec> {
        let mut found = Found { foreign: unread(self.foreign), ..Found::default() };
        for (name, groups) in &self.others {
            let ours: Vec<String> = groups.iter().filter_map(|id| group_ids.get(id)).map(|g| format!("security_group.{g}")).collect();
            if !ours.is_empty() {
                found.unmanaged(name, format!("uses {}", ours.join(", ")));
            }
        }
        for (owner, lb, tags, attributes) in self.owned {
            let Some(attributes) = attributes else { continue };
            let listeners = lb
                .listener_descriptions()
                .iter()
                .filter_map(|d| d.listener())
                .map(|l| {
                    let port = l.load_balancer_port() as u16;
                    let spec = ListenerSpec {
                        port,
                        protocol: l.protocol().to_ascii_uppercase(),
                        instance_port: l.instance_port() as u16,
                        instance_protocol: l.instance_protocol().unwrap_or(l.protocol()).to_ascii_uppercase(),
                        certificate: l.ssl_certificate_id().filter(|c| !c.is_empty()).map(str::to_string),
                    };
                    (port, spec)
                })
                .collect();
            let hc = lb.health_check();
            let health_check = HealthCheckSpec {
                target: hc.map(|h| h.target().to_string()).unwrap_or_default(),
                interval: hc.map_or(0, |h| h.interval() as u32),
                timeout: hc.map_or(0, |h| h.timeout() as u32),
                healthy: hc.map_or(0, |h| h.healthy_threshold() as u32),
                unhealthy: hc.map_or(0, |h| h.unhealthy_threshold() as u32),
            };
            let spec = LoadBalancerSpec {
                name: lb.load_balancer_name().unwrap_or_default().to_string(),
                internal: lb.scheme() == Some("internal"),
                listeners,
                health_check,
                attributes,
                security_groups: lb.security_groups().iter().map(|id| GroupRef::from_id(id, group_ids)).collect(),
                zones: lb.availability_zones().iter().cloned().collect(),
                subnets: lb.subnets().iter().cloned().collect(),
                tags,
            };
            found.file(owner, spec.name.clone(), spec);
        }
        found
    }
}

fn tags_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter().map(|t| (t.key().to_string(), t.value().unwrap_or_default().to_string())).collect()
}

pub(crate) fn sdk_listener(l: &ListenerSpec) -> Result<Listener, AwsError> {
    Listener::builder()
        .protocol(&l.protocol)
        .load_balancer_port(l.port.into())
        .instance_protocol(&l.instance_protocol)
        .instance_port(l.instance_port.into())
        .set_ssl_certificate_id(l.certificate.clone())
        .build()
        .map_err(built(format!("listener {}", l.port)))
}

pub(crate) fn sdk_health_check(h: &HealthCheckSpec) -> Result<HealthCheck, AwsError> {
    HealthCheck::builder()
        .target(&h.target)
        .interval(h.interval as i32)
        .timeout(h.timeout as i32)
        .healthy_threshold(h.healthy as i32)
        .unhealthy_threshold(h.unhealthy as i32)
        .build()
        .map_err(built("health check"))
}

/// The three attributes converge manages. `AdditionalAttributes` are never sent (moto 5.2.5 also duplicates
/// them on every change).
pub(crate) fn sdk_attributes(a: &Attributes) -> Result<LoadBalancerAttributes, AwsError> {
    let draining = ConnectionDraining::builder().enabled(a.connection_draining > 0);
    let draining = if a.connection_draining > 0 { draining.timeout(a.connection_draining as i32) } else { draining };
    Ok(LoadBalancerAttributes::builder()
        .cross_zone_load_balancing(CrossZoneLoadBalancing::builder().enabled(a.cross_zone).build())
        .connection_settings(ConnectionSettings::builder().idle_timeout(a.idle_timeout as i32).build().map_err(built("attributes"))?)
        .connection_draining(draining.build())
        .build())
}

pub(crate) fn sdk_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, AwsError> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(built(format!("tag {k}")))).collect()
}

pub(crate) fn sdk_tag_keys(keys: &[String]) -> Vec<TagKeyOnly> {
    keys.iter().map(|k| TagKeyOnly::builder().key(k).build()).collect()
}

impl Aws {
    pub(crate) async fn read_load_balancers(&self, fleet: &str, wanted: &Wanted) -> Result<BalancersRead, AwsError> {
        let mut all = Vec::new();
        let mut pages = self.elb.describe_load_balancers().page_size(PAGE).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(call("elasticloadbalancing", "DescribeLoadBalancers", "the account's load balancers"))?;
            all.extend(page.load_balancer_descriptions().iter().cloned());
        }
        let names: Vec<String> = all.iter().filter_map(|lb| lb.load_balancer_name()).map(str::to_string).collect();
        // A load balancer with a desired name has its attributes read beside the tags (its owner is most likely
        // the fleet): no round trip waits for them. Others that turn out ours (to delete) are read after.
        let early = stream::iter(names.iter().filter(|n| wanted.reads_desired(Kind::LoadBalancer, n)))
            .map(|name| async move { Ok::<_, AwsError>((name.clone(), self.attributes(name).await?)) })
            .buffer_unordered(super::READS_IN_FLIGHT)
            .try_collect::<BTreeMap<String, Attributes>>();
        let tags = stream::iter(names.chunks(TAG_BATCH).map(|chunk| chunk.to_vec()))
            .map(|chunk| async move {
                let out = self.elb.describe_tags().set_load_balancer_names(Some(chunk.clone())).send().await.map_err(call(
                    "elasticloadbalancing",
                    "DescribeTags",
                    chunk.join(", "),
                ))?;
                Ok::<_, AwsError>(
                    out.tag_descriptions().iter().map(|d| (d.load_balancer_name().unwrap_or_default().to_string(), tags_map(d.tags()))).collect::<Vec<_>>(),
                )
            })
            .buffer_unordered(super::READS_IN_FLIGHT)
            .try_concat();
        let (tags, early) = tokio::try_join!(tags, early)?;
        let tags: BTreeMap<String, BTreeMap<String, String>> = tags.into_iter().collect();

        let mut owned = Vec::new();
        let mut foreign = Vec::new();
        let mut others = Vec::new();
        for lb in all {
            let name = lb.load_balancer_name().unwrap_or_default().to_string();
            let t = tags.get(&name).cloned().unwrap_or_default();
            match wanted.owner(fleet, Kind::LoadBalancer, &name, &t) {
                Owner::Other(other) => {
                    others.push((name.clone(), lb.security_groups().to_vec()));
                    if wanted.contains(Kind::LoadBalancer, &name) {
                        foreign.push((name.clone(), name, other));
                    }
                }
                owner => owned.push((owner, lb, t)),
            }
        }
        let early = &early;
        let owned = stream::iter(owned)
            .map(|(owner, lb, t)| async move {
                let name = lb.load_balancer_name().unwrap_or_default();
                let attributes = match (wanted.reads(&owner), early.get(name)) {
                    (true, Some(read)) => Some(read.clone()),
                    (true, None) => Some(self.attributes(name).await?),
                    (false, _) => None,
                };
                Ok::<_, AwsError>((owner, lb, t, attributes))
            })
            .buffer_unordered(super::READS_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(BalancersRead { owned, foreign, others })
    }

    async fn attributes(&self, name: &str) -> Result<Attributes, AwsError> {
        let out = self.elb.describe_load_balancer_attributes().load_balancer_name(name).send().await.map_err(call(
            "elasticloadbalancing",
            "DescribeLoadBalancerAttributes",
            name,
        ))?;
        let a = out.load_balancer_attributes();
        let draining = a.and_then(|a| a.connection_draining());
        Ok(Attributes {
            cross_zone: a.and_then(|a| a.cross_zone_load_balancing()).is_some_and(|c| c.enabled()),
            idle_timeout: a.and_then(|a| a.connection_settings()).map_or(60, |c| c.idle_timeout() as u32),
            connection_draining: match draining {
                Some(d) if d.enabled() => d.timeout().unwrap_or(300) as u32,
                _ => 0,
            },
        })
    }
}

impl AwsExecutor {
    pub(super) async fn run_lb(&self, change: &Change, op: &LbOp) -> Result<(), AwsError> {
        let name = change.name.as_str();
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
                if let Answer::AlreadyExists(answer) = created(req.send().await.map_err(call(svc, "CreateLoadBalancer", &spec.name)))? {
                    let found = elb.describe_tags().load_balancer_names(&spec.name).send().await.map_err(call(svc, "DescribeTags", &spec.name))?;
                    let found = found.tag_descriptions().first().map(|d| tags_map(d.tags()));
                    self.ours_already(change, "CreateLoadBalancer", &spec.tags, found.as_ref(), false, answer)?;
                }
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
