//! Classic load balancers (ELB v1): listeners, certificates, health check, attributes, security groups,
//! placement and tags, each changed in place with its own API call. Only the name and the scheme force a
//! replacement; a certificate rotation never re-creates a listener.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Address, Diff, Environment, FieldChange, GroupRef, Kind, Op, ResourceKind, diff_tags, list, owned_tags, placement};
use crate::model::{Fleet, LbHealthCheck, Site};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancerSpec {
    pub name: String,
    pub internal: bool,
    /// By load balancer port (a list in JSON: ports are numbers, and JSON keys are strings).
    #[serde(with = "listener_list")]
    pub listeners: BTreeMap<u16, ListenerSpec>,
    pub health_check: HealthCheckSpec,
    pub attributes: Attributes,
    pub security_groups: BTreeSet<GroupRef>,
    /// Zones of the default VPC, used when `subnets` is empty.
    pub zones: BTreeSet<String>,
    /// Explicit subnets; when given, they decide the zones and `zones` is not compared.
    pub subnets: BTreeSet<String>,
    pub tags: BTreeMap<String, String>,
}

mod listener_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::ListenerSpec;

    pub fn serialize<S: Serializer>(map: &BTreeMap<u16, ListenerSpec>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.values())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<u16, ListenerSpec>, D::Error> {
        Ok(Vec::<ListenerSpec>::deserialize(d)?.into_iter().map(|l| (l.port, l)).collect())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerSpec {
    pub port: u16,
    /// Upper case: HTTP, HTTPS, TCP, SSL.
    pub protocol: String,
    pub instance_port: u16,
    pub instance_protocol: String,
    pub certificate: Option<String>,
}

impl ListenerSpec {
    /// Everything but the certificate: what can only change by re-creating the listener.
    fn shape(&self) -> String {
        format!("{} {} -> {} {}", self.protocol, self.port, self.instance_protocol, self.instance_port)
    }
}

impl fmt::Display for ListenerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shape())?;
        if let Some(c) = &self.certificate {
            write!(f, " ({c})")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheckSpec {
    pub target: String,
    pub interval: u32,
    pub timeout: u32,
    pub healthy: u32,
    pub unhealthy: u32,
}

impl fmt::Display for HealthCheckSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} every {}s, timeout {}s, healthy {}, unhealthy {}", self.target, self.interval, self.timeout, self.healthy, self.unhealthy)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    pub cross_zone: bool,
    pub idle_timeout: u32,
    /// Seconds; 0 when draining is disabled.
    pub connection_draining: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LbOp {
    /// CreateLoadBalancer with listeners, placement, groups and tags; then its health check and attributes.
    Create {
        spec: LoadBalancerSpec,
    },
    DeleteListeners {
        ports: Vec<u16>,
    },
    CreateListeners {
        listeners: Vec<ListenerSpec>,
    },
    SetCertificate {
        port: u16,
        certificate: String,
    },
    ConfigureHealthCheck {
        health_check: HealthCheckSpec,
    },
    ModifyAttributes {
        attributes: Attributes,
    },
    ApplySecurityGroups {
        groups: Vec<GroupRef>,
    },
    EnableZones {
        zones: Vec<String>,
    },
    DisableZones {
        zones: Vec<String>,
    },
    AttachSubnets {
        subnets: Vec<String>,
    },
    DetachSubnets {
        subnets: Vec<String>,
    },
    AddTags {
        tags: BTreeMap<String, String>,
    },
    RemoveTags {
        keys: Vec<String>,
    },
    Delete {
        name: String,
    },
}

impl ResourceKind for LoadBalancerSpec {
    const KIND: Kind = Kind::LoadBalancer;
    const NAME: &'static str = "load_balancer";
    const NOUN: &'static str = "load balancer";
    const TABLE: &'static str = "load_balancer";
    type Op = LbOp;

    fn desired(fleet: &Fleet, env: &Environment) -> Vec<(String, Self)> {
        fleet.load_balancers.keys().map(|name| (name.clone(), Self::from_model(fleet, name, env))).collect()
    }

    fn policies(fleet: &Fleet) -> Vec<(String, crate::model::Policy)> {
        fleet.load_balancers.iter().map(|(n, lb)| (n.clone(), lb.policy)).collect()
    }

    fn tag_command(name: &str, _id: &str, tags: &[(&str, &str)]) -> String {
        format!("aws elb add-tags --load-balancer-names {name} --tags {}", super::cli_tags(tags))
    }
    fn aws_name(&self) -> &str {
        &self.name
    }

    fn delete_ops(&self, _id: &str) -> Vec<Op> {
        vec![Op::LoadBalancer(LbOp::Delete { name: self.name.clone() })]
    }

    fn forget_ops(&self, _id: &str) -> Vec<Op> {
        vec![Op::LoadBalancer(LbOp::RemoveTags { keys: super::ownership_keys() })]
    }

    /// The site's own load balancer.
    fn on_site_path(_fleet: &Fleet, _site: &str, s: &Site) -> Vec<String> {
        s.load_balancer.iter().map(|lb| lb.value.clone()).collect()
    }

    fn references(&self) -> BTreeSet<Address> {
        self.security_groups.iter().filter_map(GroupRef::address).collect()
    }

    fn describe(&self) -> Vec<(String, String)> {
        let mut out = vec![("name".to_string(), self.name.clone()), ("scheme".to_string(), self.scheme().to_string())];
        out.extend(self.listeners.values().map(|l| (format!("listener {}", l.port), l.to_string())));
        out.push(("health_check".into(), self.health_check.to_string()));
        out.push(("cross_zone".into(), self.attributes.cross_zone.to_string()));
        out.push(("idle_timeout".into(), self.attributes.idle_timeout.to_string()));
        out.push(("connection_draining".into(), draining(self.attributes.connection_draining)));
        out.push(("security_groups".into(), list(&self.security_groups)));
        let (key, values) = self.placement_parts();
        out.push((key.into(), list(values)));
        out.extend(self.tags.iter().map(|(k, v)| (format!("tags.{k}"), v.clone())));
        out
    }

    fn diff(&self, live: &LoadBalancerSpec) -> Diff {
        let mut d = Diff::default();
        let op = |o: LbOp| Op::LoadBalancer(o);
        if self.name != live.name {
            d.fields.push(FieldChange::changed("name", &live.name, &self.name).forcing());
        }
        if self.internal != live.internal {
            d.fields.push(FieldChange::changed("scheme", live.scheme(), self.scheme()).forcing());
        }
        if d.forces_replacement() {
            return d;
        }

        let (mut delete, mut create) = (Vec::new(), Vec::new());
        for (port, want) in &self.listeners {
            let field = format!("listener {port}");
            match live.listeners.get(port) {
                None => {
                    d.fields.push(FieldChange::added(field, want));
                    create.push(want.clone());
                }
                Some(have) if have.shape() != want.shape() => {
                    d.fields
                        .push(FieldChange::changed(field, have, want).note("listener re-created: ELB cannot change a listener's protocol or ports in place"));
                    delete.push(*port);
                    create.push(want.clone());
                }
                Some(have) if have.certificate != want.certificate => {
                    let old = have.certificate.as_deref().unwrap_or("none");
                    let new = want.certificate.as_deref().unwrap_or("none");
                    d.fields.push(FieldChange::changed(format!("{field} certificate"), old, new));
                    if let Some(c) = &want.certificate {
                        d.ops.push(op(LbOp::SetCertificate { port: *port, certificate: c.clone() }));
                    }
                }
                Some(_) => {}
            }
        }
        for (port, have) in &live.listeners {
            if !self.listeners.contains_key(port) {
                d.fields.push(FieldChange::removed(format!("listener {port}"), have));
                delete.push(*port);
            }
        }
        // Deleted ports first: a re-created listener needs its port free.
        if !delete.is_empty() {
            d.ops.insert(0, op(LbOp::DeleteListeners { ports: delete }));
        }
        if !create.is_empty() {
            d.ops.push(op(LbOp::CreateListeners { listeners: create }));
        }

        if self.health_check != live.health_check {
            let (w, h) = (&self.health_check, &live.health_check);
            let parts: [(&str, String, String); 5] = [
                ("target", h.target.clone(), w.target.clone()),
                ("interval", h.interval.to_string(), w.interval.to_string()),
                ("timeout", h.timeout.to_string(), w.timeout.to_string()),
                ("healthy", h.healthy.to_string(), w.healthy.to_string()),
                ("unhealthy", h.unhealthy.to_string(), w.unhealthy.to_string()),
            ];
            for (name, old, new) in parts {
                if old != new {
                    d.fields.push(FieldChange::changed(format!("health_check.{name}"), old, new));
                }
            }
            d.ops.push(op(LbOp::ConfigureHealthCheck { health_check: self.health_check.clone() }));
        }

        let (w, h) = (&self.attributes, &live.attributes);
        if w != h {
            if w.cross_zone != h.cross_zone {
                d.fields.push(FieldChange::changed("cross_zone", h.cross_zone, w.cross_zone));
            }
            if w.idle_timeout != h.idle_timeout {
                d.fields.push(FieldChange::changed("idle_timeout", h.idle_timeout, w.idle_timeout));
            }
            if w.connection_draining != h.connection_draining {
                d.fields.push(FieldChange::changed("connection_draining", draining(h.connection_draining), draining(w.connection_draining)));
            }
            d.ops.push(op(LbOp::ModifyAttributes { attributes: w.clone() }));
        }

        if self.security_groups != live.security_groups {
            d.fields.push(FieldChange::changed("security_groups", list(&live.security_groups), list(&self.security_groups)));
            d.ops.push(op(LbOp::ApplySecurityGroups { groups: self.security_groups.iter().cloned().collect() }));
        }

        let (key, want) = self.placement_parts();
        let have = if key == "zones" { &live.zones } else { &live.subnets };
        if want != have {
            d.fields.push(FieldChange::changed(key, list(have), list(want)));
            let add: Vec<String> = want.difference(have).cloned().collect();
            let remove: Vec<String> = have.difference(want).cloned().collect();
            // Add before remove, so the load balancer never has fewer places than it needs.
            let zones = key == "zones";
            if !add.is_empty() {
                d.ops.push(op(if zones { LbOp::EnableZones { zones: add } } else { LbOp::AttachSubnets { subnets: add } }));
            }
            if !remove.is_empty() {
                d.ops.push(op(if zones { LbOp::DisableZones { zones: remove } } else { LbOp::DetachSubnets { subnets: remove } }));
            }
        }

        if let Some((add, remove)) = diff_tags(&self.tags, &live.tags, &mut d.fields) {
            if !add.is_empty() {
                d.ops.push(op(LbOp::AddTags { tags: add }));
            }
            if !remove.is_empty() {
                d.ops.push(op(LbOp::RemoveTags { keys: remove }));
            }
        }
        d
    }

    fn create_ops(&self) -> Vec<Op> {
        vec![Op::LoadBalancer(LbOp::Create { spec: self.clone() })]
    }
}

impl LoadBalancerSpec {
    pub fn from_model(fleet: &Fleet, name: &str, env: &Environment) -> Self {
        let lb = &fleet.load_balancers[name];
        let address = Address::new(Kind::LoadBalancer, name);
        let listeners: BTreeMap<u16, ListenerSpec> = lb
            .listeners
            .iter()
            .map(|l| {
                let spec = ListenerSpec {
                    port: l.port,
                    protocol: l.protocol.clone(),
                    instance_port: l.instance_port,
                    instance_protocol: l.instance_protocol.clone(),
                    certificate: l.certificate.clone(),
                };
                (l.port, spec)
            })
            .collect();
        // AWS's defaults for a health check nobody configured: TCP to the first listener's instance port.
        let default_port = lb.listeners.first().map_or(80, |l| l.instance_port);
        let hc =
            lb.health_check.clone().unwrap_or(LbHealthCheck { target: format!("TCP:{default_port}"), interval: 30, timeout: 5, healthy: 10, unhealthy: 2 });
        let (zones, subnets) = placement(&lb.zones, &lb.subnets, fleet, env);
        LoadBalancerSpec {
            name: fleet.load_balancer_name(name),
            internal: lb.internal,
            listeners,
            health_check: HealthCheckSpec { target: hc.target, interval: hc.interval, timeout: hc.timeout, healthy: hc.healthy, unhealthy: hc.unhealthy },
            attributes: Attributes { cross_zone: lb.cross_zone, idle_timeout: lb.idle_timeout, connection_draining: lb.connection_draining },
            security_groups: lb.security_groups.iter().map(|g| GroupRef::declared(&g.value)).collect(),
            zones,
            subnets,
            tags: owned_tags(&fleet.settings.name, &address, &lb.tags),
        }
    }

    pub fn scheme(&self) -> &'static str {
        if self.internal { "internal" } else { "internet-facing" }
    }

    /// The placement this spec manages: subnets when given, else zones.
    fn placement_parts(&self) -> (&'static str, &BTreeSet<String>) {
        if self.subnets.is_empty() { ("zones", &self.zones) } else { ("subnets", &self.subnets) }
    }
}

fn draining(seconds: u32) -> String {
    if seconds == 0 { "disabled".to_string() } else { format!("{seconds}s") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(port: u16, protocol: &str, cert: Option<&str>) -> ListenerSpec {
        ListenerSpec { port, protocol: protocol.into(), instance_port: 80, instance_protocol: "HTTP".into(), certificate: cert.map(Into::into) }
    }

    fn spec() -> LoadBalancerSpec {
        LoadBalancerSpec {
            name: "agency-shared".into(),
            internal: false,
            listeners: BTreeMap::from([(80, listener(80, "HTTP", None)), (443, listener(443, "HTTPS", Some("arn:cert-1")))]),
            health_check: HealthCheckSpec { target: "HTTP:80/healthz".into(), interval: 30, timeout: 5, healthy: 3, unhealthy: 2 },
            attributes: Attributes { cross_zone: true, idle_timeout: 60, connection_draining: 300 },
            security_groups: BTreeSet::from([GroupRef::Fleet("lb".into())]),
            zones: BTreeSet::from(["eu-west-1a".to_string()]),
            subnets: BTreeSet::new(),
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn identical_specs_have_no_diff() {
        assert_eq!(spec().diff(&spec()), Diff::default());
    }

    #[test]
    fn certificate_rotation_is_in_place() {
        let mut desired = spec();
        desired.listeners.insert(443, listener(443, "HTTPS", Some("arn:cert-2")));
        let d = desired.diff(&spec());
        assert_eq!(d.ops, vec![Op::LoadBalancer(LbOp::SetCertificate { port: 443, certificate: "arn:cert-2".into() })]);
        assert_eq!(d.fields, vec![FieldChange::changed("listener 443 certificate", "arn:cert-1", "arn:cert-2")]);
    }

    #[test]
    fn protocol_change_recreates_only_that_listener() {
        let mut desired = spec();
        desired.listeners.insert(80, ListenerSpec { protocol: "TCP".into(), instance_protocol: "TCP".into(), ..listener(80, "TCP", None) });
        let d = desired.diff(&spec());
        assert!(matches!(&d.ops[0], Op::LoadBalancer(LbOp::DeleteListeners { ports }) if ports == &vec![80]));
        assert!(matches!(&d.ops[1], Op::LoadBalancer(LbOp::CreateListeners { listeners }) if listeners.len() == 1));
    }

    #[test]
    fn scheme_forces_replacement_and_nothing_else_does() {
        let d = LoadBalancerSpec { internal: true, ..spec() }.diff(&spec());
        assert!(d.forces_replacement());
        let d = LoadBalancerSpec { attributes: Attributes { idle_timeout: 120, ..spec().attributes }, ..spec() }.diff(&spec());
        assert!(!d.forces_replacement());
        assert_eq!(d.ops.len(), 1);
    }

    #[test]
    fn zones_are_added_before_removed() {
        let desired = LoadBalancerSpec { zones: BTreeSet::from(["eu-west-1b".to_string()]), ..spec() };
        let d = desired.diff(&spec());
        assert!(matches!(&d.ops[0], Op::LoadBalancer(LbOp::EnableZones { .. })));
        assert!(matches!(&d.ops[1], Op::LoadBalancer(LbOp::DisableZones { .. })));
    }
}
