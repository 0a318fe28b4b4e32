//! Helpers for unit tests on plain data: fleets written as TOML, live state as if they had been applied.

use crate::live::{Live, LiveObject};
use crate::model::{Fleet, SourceFile, load_sources};
use crate::plan::{Plan, PlanOptions, plan};
use crate::resource::{Desired, Environment, Kind, Spec, TemplateVersion, desired};

pub fn fleet_of(text: &str) -> Fleet {
    load_sources(&[SourceFile::new("fleet.toml".into(), text.into())]).unwrap_or_else(|d| panic!("{d}"))
}

pub const FLEET: &str = r#"
[fleet]
name = "agency"
region = "eu-west-1"

[security_group.lb]
description = "HTTP(S) from anywhere"
ingress = [{ ports = "80", cidr = ["0.0.0.0/0"] }, { ports = 443, cidr = "0.0.0.0/0" }]

[security_group.web]
ingress = [{ ports = "80", from = "lb" }]

[load_balancer.shared]
security_groups = ["lb"]
listeners = [
  { port = 80, protocol = "http", instance_port = 80 },
  { port = 443, protocol = "https", instance_port = 80, certificate = "arn:aws:iam::123456789012:server-certificate/shared-2026" },
]
health_check = { target = "HTTP:80/healthz", interval = 30, timeout = 5, healthy = 3, unhealthy = 2 }
"#;

pub fn env() -> Environment {
    Environment { vpc_id: "vpc-1".into(), zones: vec!["eu-west-1a".into(), "eu-west-1b".into()], images: Default::default(), ..Default::default() }
}

pub fn desired_of(text: &str) -> Desired {
    desired(&fleet_of(text), &env())
}

/// Live state as if `text` had been applied, with ids derived from the names.
pub fn live_of(text: &str) -> Live {
    let mut live = Live::default();
    for (address, spec) in desired_of(text) {
        let id = match address.kind {
            Kind::SecurityGroup => format!("sg-{}", address.name),
            _ => spec.aws_name().to_string(),
        };
        live.insert(address, LiveObject { id, spec });
    }
    live
}

pub fn plan_of(desired_text: &str, live: &Live) -> Plan {
    plan("agency", &desired_of(desired_text), live, &PlanOptions::default())
}

/// `live` as AWS reports pools some nights in: templates with versions 1 to `latest` (1 the default), each
/// group on `latest` and scaled by its policy to `capacity`.
pub fn pools_applied(mut live: Live, latest: u64, capacity: u32) -> Live {
    for objs in live.objects.values_mut() {
        match &mut objs[0].spec {
            Spec::LaunchTemplate(t) => {
                t.versions = (1..=latest).collect();
                t.default_version = Some(1);
            }
            Spec::AutoScalingGroup(g) => {
                g.version = TemplateVersion::Number(latest);
                g.desired_capacity = capacity;
                g.refresh = None;
            }
            _ => {}
        }
    }
    live
}
