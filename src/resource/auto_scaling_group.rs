//! Auto-scaling groups: one per pool, pinned to an explicit version of the pool's launch template, with the
//! pool's load balancers attached and a target-tracking policy on CPU. Everything but the name changes in
//! place; the size bounds, health check, placement and template go in one `UpdateAutoScalingGroup`, and a
//! new template version rolls out by an instance refresh.
//!
//! The desired capacity belongs to the scaling policy once the group exists: it is observed, never reset,
//! unless it lies outside new bounds. Load balancers attached by hand and processes suspended by hand are
//! observed and left alone.
//!
//! A new template version is rolled out by an instance refresh whose desired configuration is the template
//! and that version: AWS moves the group to it once the refresh succeeds (and, with auto rollback, puts
//! back what was replaced if it fails), so `UpdateAutoScalingGroup` never moves the version itself. While
//! such a refresh runs, the version it rolls out counts as the group's.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Address, Context, Diff, Environment, FieldChange, Kind, Observation, Op, Refusal, ResourceKind, Spec, diff_tags, list, owned_tags, placement};
use crate::model::{Fleet, Site};

/// Which version of its template a group runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateVersion {
    /// Desired, before the plan pins it: whatever version holds the desired data.
    Current,
    Number(u64),
    /// The version the template's change in the same apply creates.
    New,
}

impl fmt::Display for TemplateVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateVersion::Current => f.write_str("(current)"),
            TemplateVersion::Number(n) => write!(f, "{n}"),
            TemplateVersion::New => f.write_str("(new version)"),
        }
    }
}

/// How a new template version rolls out (StartInstanceRefresh's preferences).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshPrefs {
    pub min_healthy_percent: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_seconds: Option<u32>,
    pub auto_rollback: bool,
}

impl fmt::Display for RefreshPrefs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rolling instance refresh, min healthy {}%", self.min_healthy_percent)?;
        if let Some(w) = self.warmup_seconds {
            write!(f, ", warm-up {w}s")?;
        }
        if self.auto_rollback {
            f.write_str(", auto rollback")?;
        }
        Ok(())
    }
}

/// What a pool's `notify_topic` hears of: instances launched and terminated, and launches and terminations
/// that failed.
pub const NOTIFICATIONS: [&str; 4] = [
    "autoscaling:EC2_INSTANCE_LAUNCH",
    "autoscaling:EC2_INSTANCE_LAUNCH_ERROR",
    "autoscaling:EC2_INSTANCE_TERMINATE",
    "autoscaling:EC2_INSTANCE_TERMINATE_ERROR",
];

/// Notification types as people read them: `launch, launch error, ...`.
fn short_types(types: &BTreeSet<String>) -> String {
    let words: Vec<String> =
        types.iter().map(|t| t.trim_start_matches("autoscaling:").trim_start_matches("EC2_INSTANCE_").to_ascii_lowercase().replace('_', " ")).collect();
    words.join(", ")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoScalingGroupSpec {
    pub name: String,
    /// The pool: the group's address name, and its launch template's.
    pub pool: String,
    /// The AWS name of the template it launches from.
    pub launch_template: String,
    pub version: TemplateVersion,
    pub min: u32,
    pub max: u32,
    /// Desired: the size a new group starts with. Live: what AWS reports, which the scaling policy owns.
    pub desired_capacity: u32,
    /// `EC2` or `ELB`.
    pub health_check: String,
    pub grace_seconds: u32,
    /// Which instances a scale-in terminates first, in order; AWS's `Default` unless declared.
    #[serde(default = "default_termination")]
    pub termination_policies: Vec<String>,
    /// Zones of the default VPC, used when `subnets` is empty.
    pub zones: BTreeSet<String>,
    pub subnets: BTreeSet<String>,
    /// Attached classic load balancers: AWS name -> this fleet's name for it (`None`: not ours; such an
    /// attachment is left alone).
    pub load_balancers: BTreeMap<String, Option<String>>,
    /// Target average CPU of the target-tracking policy.
    pub cpu_target: Option<u32>,
    /// Notification configurations: SNS topic -> the notification types sent to it. Desired: the pool's
    /// `notify_topic` with [`NOTIFICATIONS`], or none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub notifications: BTreeMap<String, BTreeSet<String>>,
    pub tags: BTreeMap<String, String>,
    /// Desired only: how a new template version rolls out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<RefreshPrefs>,
    /// Live only: an instance refresh that has not finished (`InProgress, 40% done`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshing: Option<String>,
    /// Live only: the template and version that running refresh rolls out (its desired configuration),
    /// which AWS makes the group's when it succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshing_to: Option<(String, u64)>,
    /// Live only: processes suspended on the group (`Launch`, `Terminate`, `InstanceRefresh`, ...), which
    /// converge never suspends: observed.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub suspended_processes: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
// A plan holds a few operations per group: boxing the create's spec would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum AsgOp {
    /// CreateAutoScalingGroup with its template version, bounds, placement, load balancers and tags.
    Create {
        spec: AutoScalingGroupSpec,
    },
    /// One UpdateAutoScalingGroup with every field that changed.
    Update(GroupUpdate),
    AttachLoadBalancers {
        names: Vec<String>,
    },
    DetachLoadBalancers {
        names: Vec<String>,
    },
    /// PutScalingPolicy: target tracking of the group's average CPU.
    PutPolicy {
        name: String,
        target: u32,
    },
    DeletePolicy {
        name: String,
    },
    /// PutNotificationConfiguration: these types to this topic (it replaces the topic's types).
    PutNotifications {
        topic: String,
        types: Vec<String>,
    },
    /// DeleteNotificationConfiguration of one topic.
    DeleteNotifications {
        topic: String,
    },
    AddTags {
        tags: BTreeMap<String, String>,
    },
    RemoveTags {
        keys: Vec<String>,
    },
    /// StartInstanceRefresh with the template and version as its desired configuration (which AWS makes
    /// the group's once it succeeds), then (unless `--no-wait`) wait for it.
    StartRefresh {
        preferences: RefreshPrefs,
        /// The template and the version to roll out. Required: a plan saved by a converge that moved the
        /// version first does not load (plan again), rather than start a refresh AWS would refuse.
        launch_template: (String, TemplateVersion),
    },
    /// DeleteAutoScalingGroup with its instances, then wait until it is gone.
    Delete {
        name: String,
    },
}

/// The fields of one UpdateAutoScalingGroup call; `None` leaves a field as it is. The template version is
/// not one of them: the instance refresh's desired configuration moves it (see [`AsgOp::StartRefresh`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_capacity: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_policies: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnets: Option<Vec<String>>,
}

/// AWS's termination policy of a group that names none.
pub fn default_termination() -> Vec<String> {
    vec!["Default".to_string()]
}

/// The name of the target-tracking policy converge manages on the group named `group`.
pub fn policy_name(group: &str) -> String {
    format!("{group}-cpu")
}

impl ResourceKind for AutoScalingGroupSpec {
    const KIND: Kind = Kind::AutoScalingGroup;
    const NAME: &'static str = "auto_scaling_group";
    const NOUN: &'static str = "auto-scaling group";
    const TABLE: &'static str = "pool";
    type Op = AsgOp;

    fn desired(fleet: &Fleet, env: &Environment) -> Vec<(String, Self)> {
        fleet.pools.keys().map(|pool| (pool.clone(), Self::from_model(fleet, pool, env))).collect()
    }

    fn policies(fleet: &Fleet) -> Vec<(String, crate::model::Policy)> {
        fleet.pools.iter().map(|(n, p)| (n.clone(), p.policy)).collect()
    }

    fn tag_command(name: &str, _id: &str, tags: &[(&str, &str)]) -> String {
        let tags: Vec<String> =
            tags.iter().map(|(k, v)| format!("ResourceId={name},ResourceType=auto-scaling-group,Key={k},Value={v},PropagateAtLaunch=false")).collect();
        format!("aws autoscaling create-or-update-tags --tags {}", tags.join(" "))
    }
    fn aws_name(&self) -> &str {
        &self.name
    }

    fn delete_ops(&self, _id: &str) -> Vec<Op> {
        vec![Op::AutoScalingGroup(AsgOp::Delete { name: self.name.clone() })]
    }

    fn forget_ops(&self, _id: &str) -> Vec<Op> {
        vec![Op::AutoScalingGroup(AsgOp::RemoveTags { keys: super::ownership_keys() })]
    }

    /// A group moving to the version its template's change creates waits for that change.
    fn waits_for_changes(&self) -> BTreeSet<Address> {
        match self.version {
            TemplateVersion::New => BTreeSet::from([Address::new(Kind::LaunchTemplate, &self.pool)]),
            _ => BTreeSet::new(),
        }
    }

    /// Pins the group to an explicit version of its template: the newest live version when the template's
    /// data does not change, else the version this plan's template change creates.
    fn prepare(&mut self, cx: &Context<'_>) {
        if self.version != TemplateVersion::Current {
            return;
        }
        let template = Address::new(Kind::LaunchTemplate, &self.pool);
        self.version = match (cx.desired.get(&template), (cx.live)(&template)) {
            (Some(Spec::LaunchTemplate(want)), Some(Spec::LaunchTemplate(have))) if want.data == have.data => {
                // Offline (a desired state standing in for live) there are no version numbers.
                have.latest().map_or(TemplateVersion::Current, TemplateVersion::Number)
            }
            _ => TemplateVersion::New,
        };
    }

    /// The group of the site's pool.
    fn on_site_path(fleet: &Fleet, _site: &str, s: &Site) -> Vec<String> {
        fleet.pools.get(&s.pool.value).map(|_| s.pool.value.clone()).into_iter().collect()
    }

    /// Its template and our load balancers: they must exist before it.
    fn references(&self) -> BTreeSet<Address> {
        let mut out = BTreeSet::from([Address::new(Kind::LaunchTemplate, &self.pool)]);
        out.extend(self.load_balancers.values().flatten().map(|lb| Address::new(Kind::LoadBalancer, lb)));
        out
    }

    fn describe(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("name".to_string(), self.name.clone()),
            (
                "launch_template".to_string(),
                match self.version {
                    TemplateVersion::Number(n) => format!("{} version {n}", self.launch_template),
                    other => format!("{} {other}", self.launch_template),
                },
            ),
            ("min".to_string(), self.min.to_string()),
            ("max".to_string(), self.max.to_string()),
            ("desired_capacity".to_string(), self.desired_capacity.to_string()),
            ("health_check".to_string(), format!("{}, grace {}s", self.health_check, self.grace_seconds)),
        ];
        if self.termination_policies != default_termination() {
            out.push(("termination_policies".into(), self.termination_policies.join(", ")));
        }
        let (key, values) = self.placement_parts();
        out.push((key.into(), list(values)));
        out.push(("load_balancers".into(), list(self.load_balancers.keys())));
        if let Some(t) = self.cpu_target {
            out.push(("cpu_target".into(), format!("{t}%")));
        }
        for (topic, types) in &self.notifications {
            out.push(("notify_topic".into(), format!("{topic} ({})", short_types(types))));
        }
        out.extend(self.tags.iter().map(|(k, v)| (format!("tags.{k}"), v.clone())));
        out
    }

    fn create_ops(&self) -> Vec<Op> {
        let mut ops = vec![Op::AutoScalingGroup(AsgOp::Create { spec: self.clone() })];
        if let Some(target) = self.cpu_target {
            ops.push(Op::AutoScalingGroup(AsgOp::PutPolicy { name: self.policy_name(), target }));
        }
        for (topic, types) in &self.notifications {
            ops.push(Op::AutoScalingGroup(AsgOp::PutNotifications { topic: topic.clone(), types: types.iter().cloned().collect() }));
        }
        ops
    }

    fn diff(&self, live: &AutoScalingGroupSpec) -> Diff {
        let mut d = Diff::default();
        let mut update = GroupUpdate::default();
        if self.name != live.name {
            d.fields.push(FieldChange::changed("name", &live.name, &self.name).forcing());
            return d;
        }
        let rollout = self.refresh.as_ref().map_or_else(|| "rolling instance refresh".to_string(), ToString::to_string);
        // A refresh running with a desired configuration makes that the group's when it succeeds.
        let (live_template, live_version) = match &live.refreshing_to {
            Some((template, version)) => (template, TemplateVersion::Number(*version)),
            None => (&live.launch_template, live.version),
        };
        let moves = self.launch_template != *live_template || self.version != live_version;
        if self.launch_template != *live_template {
            d.fields.push(FieldChange::changed("launch_template", live_template, &self.launch_template).note(rollout.clone()));
        }
        if moves {
            d.fields.push(FieldChange::changed("launch_template_version", live_version, self.version).note(rollout));
        }
        if self.min != live.min {
            d.fields.push(FieldChange::changed("min", live.min, self.min));
            update.min = Some(self.min);
        }
        if self.max != live.max {
            d.fields.push(FieldChange::changed("max", live.max, self.max));
            update.max = Some(self.max);
        }
        let clamped = live.desired_capacity.clamp(self.min, self.max.max(self.min));
        if clamped != live.desired_capacity {
            d.fields.push(FieldChange::changed("desired_capacity", live.desired_capacity, clamped).note("outside the new min/max"));
            update.desired_capacity = Some(clamped);
        }
        if self.health_check != live.health_check {
            d.fields.push(FieldChange::changed("health_check", &live.health_check, &self.health_check));
            update.health_check = Some(self.health_check.clone());
        }
        if self.grace_seconds != live.grace_seconds {
            d.fields.push(FieldChange::changed("grace_seconds", live.grace_seconds, self.grace_seconds));
            update.grace_seconds = Some(self.grace_seconds);
        }
        if self.termination_policies != live.termination_policies {
            d.fields.push(FieldChange::changed("termination_policies", live.termination_policies.join(", "), self.termination_policies.join(", ")));
            update.termination_policies = Some(self.termination_policies.clone());
        }
        let (key, want) = self.placement_parts();
        let have = if self.subnets.is_empty() { &live.zones } else { &live.subnets };
        if want != have {
            d.fields.push(FieldChange::changed(key, list(have), list(want)));
            let values = Some(want.iter().cloned().collect());
            if self.subnets.is_empty() { update.zones = values } else { update.subnets = values }
        }
        if update != GroupUpdate::default() {
            d.ops.push(Op::AutoScalingGroup(AsgOp::Update(update)));
        }
        // Load balancers by delta; one attached by hand (not ours) is left alone.
        let (want, have) = (self.ours(), live.ours());
        let attach: Vec<String> = want.difference(&have).map(|n| n.to_string()).collect();
        let detach: Vec<String> = have.difference(&want).map(|n| n.to_string()).collect();
        for n in &attach {
            d.fields.push(FieldChange::added("load_balancers", n).note("attached"));
        }
        for n in &detach {
            d.fields.push(FieldChange::removed("load_balancers", n).note("detached, not deleted"));
        }
        if !attach.is_empty() {
            d.ops.push(Op::AutoScalingGroup(AsgOp::AttachLoadBalancers { names: attach }));
        }
        if !detach.is_empty() {
            d.ops.push(Op::AutoScalingGroup(AsgOp::DetachLoadBalancers { names: detach }));
        }
        match (self.cpu_target, live.cpu_target) {
            (Some(t), old) if old != Some(t) => {
                d.fields.push(match old {
                    Some(o) => FieldChange::changed("cpu_target", format!("{o}%"), format!("{t}%")),
                    None => FieldChange::added("cpu_target", format!("{t}%")),
                });
                d.ops.push(Op::AutoScalingGroup(AsgOp::PutPolicy { name: self.policy_name(), target: t }));
            }
            (None, Some(o)) => {
                d.fields.push(FieldChange::removed("cpu_target", format!("{o}%")));
                d.ops.push(Op::AutoScalingGroup(AsgOp::DeletePolicy { name: self.policy_name() }));
            }
            _ => {}
        }
        // Notifications: each topic's types as declared; a topic not declared (set by hand) goes.
        for (topic, types) in &self.notifications {
            if live.notifications.get(topic) != Some(types) {
                d.fields.push(match live.notifications.get(topic) {
                    Some(old) => FieldChange::changed("notify_topic", format!("{topic} ({})", short_types(old)), format!("{topic} ({})", short_types(types))),
                    None => FieldChange::added("notify_topic", format!("{topic} ({})", short_types(types))),
                });
                d.ops.push(Op::AutoScalingGroup(AsgOp::PutNotifications { topic: topic.clone(), types: types.iter().cloned().collect() }));
            }
        }
        for (topic, types) in live.notifications.iter().filter(|(t, _)| !self.notifications.contains_key(*t)) {
            d.fields.push(FieldChange::removed("notify_topic", format!("{topic} ({})", short_types(types))));
            d.ops.push(Op::AutoScalingGroup(AsgOp::DeleteNotifications { topic: topic.clone() }));
        }
        if let Some((add, remove)) = diff_tags(&self.tags, &live.tags, &mut d.fields) {
            if !add.is_empty() {
                d.ops.push(Op::AutoScalingGroup(AsgOp::AddTags { tags: add }));
            }
            if !remove.is_empty() {
                d.ops.push(Op::AutoScalingGroup(AsgOp::RemoveTags { keys: remove }));
            }
        }
        if moves {
            // The model's defaults, for a spec that carries no preferences.
            let preferences = self.refresh.clone().unwrap_or(RefreshPrefs { min_healthy_percent: 90, warmup_seconds: None, auto_rollback: true });
            let launch_template = (self.launch_template.clone(), self.version);
            d.ops.push(Op::AutoScalingGroup(AsgOp::StartRefresh { preferences, launch_template }));
        }
        d
    }

    /// What AWS, the scaling policy or someone by hand owns and differs from the declaration: shown, never
    /// changed.
    fn observe(&self, live: &AutoScalingGroupSpec) -> Vec<Observation> {
        let mut out = Vec::new();
        if live.desired_capacity != self.desired_capacity {
            let note = match live.cpu_target {
                Some(t) => format!("managed by the scaling policy (target CPU {t}%)"),
                None => "set outside converge; kept".to_string(),
            };
            out.push(Observation::new("desired_capacity", live.desired_capacity.to_string(), note));
        }
        if let Some(r) = &live.refreshing {
            let note = match &live.refreshing_to {
                Some((template, version)) => format!("running in AWS, rolling out {template} version {version}"),
                None => "running in AWS".to_string(),
            };
            out.push(Observation::new("instance_refresh", r.clone(), note));
        }
        for name in live.load_balancers.iter().filter(|(_, ours)| ours.is_none()).map(|(name, _)| name) {
            out.push(Observation::new("load_balancers", name.clone(), "attached outside converge; left alone"));
        }
        if !live.suspended_processes.is_empty() {
            out.push(Observation::new(
                "suspended_processes",
                list(&live.suspended_processes),
                "suspended outside converge; left alone (while suspended, AWS does not run them: scaling, replacements or refreshes may stall)",
            ));
        }
        out
    }

    /// Why this diff cannot be applied now, with what to do about it.
    fn blocked(&self, diff: &Diff, live: &AutoScalingGroupSpec) -> Option<Refusal> {
        let refreshes = diff.ops.iter().any(|o| matches!(o, Op::AutoScalingGroup(AsgOp::StartRefresh { .. })));
        let running = live.refreshing.as_ref()?;
        refreshes.then(|| {
            Refusal::new(
                format!("needs an instance refresh, but one is already running on {} ({running})", live.name),
                format!(
                    "wait for it to finish and plan again; converge does not cancel it. To cancel it: aws autoscaling cancel-instance-refresh --auto-scaling-group-name {}",
                    live.name
                ),
            )
        })
    }
}

impl AutoScalingGroupSpec {
    pub fn from_model(fleet: &Fleet, pool: &str, env: &Environment) -> Self {
        let p = &fleet.pools[pool];
        let address = Address::new(Kind::AutoScalingGroup, pool);
        let (zones, subnets) = placement(&p.zones, &p.subnets, fleet, env);
        let load_balancers = fleet
            .load_balancers
            .iter()
            .filter(|(_, lb)| lb.pool.as_ref().is_some_and(|p| p.value == pool))
            .map(|(name, _)| (fleet.load_balancer_name(name), Some(name.clone())))
            .collect();
        AutoScalingGroupSpec {
            name: fleet.pool_name(pool),
            pool: pool.to_string(),
            launch_template: fleet.template_name(pool),
            version: TemplateVersion::Current,
            min: p.min,
            max: p.max,
            desired_capacity: p.desired.unwrap_or(p.min),
            health_check: p.health_check.kind.clone(),
            grace_seconds: p.health_check.grace_seconds,
            termination_policies: if p.termination_policies.is_empty() { default_termination() } else { p.termination_policies.clone() },
            zones,
            subnets,
            load_balancers,
            cpu_target: p.cpu_target,
            notifications: p.notify_topic.iter().map(|t| (t.clone(), NOTIFICATIONS.iter().map(|n| n.to_string()).collect())).collect(),
            tags: owned_tags(&fleet.settings.name, &address, &p.tags),
            refresh: Some(RefreshPrefs {
                min_healthy_percent: p.refresh.min_healthy_percent,
                warmup_seconds: p.refresh.warmup_seconds,
                auto_rollback: p.refresh.auto_rollback,
            }),
            refreshing: None,
            refreshing_to: None,
            suspended_processes: BTreeSet::new(),
        }
    }

    /// The policy converge manages on the group.
    pub fn policy_name(&self) -> String {
        policy_name(&self.name)
    }

    fn ours(&self) -> BTreeSet<&String> {
        self.load_balancers.iter().filter(|(_, ours)| ours.is_some()).map(|(name, _)| name).collect()
    }

    fn placement_parts(&self) -> (&'static str, &BTreeSet<String>) {
        if self.subnets.is_empty() { ("zones", &self.zones) } else { ("subnets", &self.subnets) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> AutoScalingGroupSpec {
        AutoScalingGroupSpec {
            name: "agency-web".into(),
            pool: "web".into(),
            launch_template: "agency-web".into(),
            version: TemplateVersion::Number(3),
            min: 2,
            max: 8,
            desired_capacity: 2,
            health_check: "ELB".into(),
            grace_seconds: 120,
            termination_policies: default_termination(),
            zones: BTreeSet::from(["eu-west-1a".to_string()]),
            subnets: BTreeSet::new(),
            load_balancers: BTreeMap::from([("agency-shared".to_string(), Some("shared".to_string()))]),
            cpu_target: Some(60),
            notifications: BTreeMap::new(),
            tags: BTreeMap::new(),
            refresh: None,
            refreshing: None,
            refreshing_to: None,
            suspended_processes: BTreeSet::new(),
        }
    }

    #[test]
    fn a_group_scaled_by_its_policy_is_observed_not_changed() {
        let mut live = spec();
        live.desired_capacity = 7;
        let d = spec().diff(&live);
        assert!(d.fields.is_empty() && d.ops.is_empty(), "{d:?}");
        let seen = spec().observe(&live);
        assert_eq!(seen[0].value, "7");
        assert_eq!(seen[0].note, "managed by the scaling policy (target CPU 60%)");
    }

    #[test]
    fn new_bounds_are_one_update_and_clamp_the_capacity_only_when_outside() {
        let mut live = spec();
        live.desired_capacity = 7;
        let mut want = spec();
        want.max = 5;
        want.min = 1;
        let d = want.diff(&live);
        let update = GroupUpdate { min: Some(1), max: Some(5), desired_capacity: Some(5), ..GroupUpdate::default() };
        assert_eq!(d.ops, vec![Op::AutoScalingGroup(AsgOp::Update(update))]);
    }

    #[test]
    fn a_new_version_updates_then_refreshes_and_a_running_refresh_blocks_it() {
        let mut want = spec();
        want.version = TemplateVersion::New;
        let mut live = spec();
        let d = want.diff(&live);
        assert!(matches!(d.ops.last(), Some(Op::AutoScalingGroup(AsgOp::StartRefresh { .. }))));
        assert!(want.blocked(&d, &live).is_none());
        live.refreshing = Some("InProgress, 50% done".into());
        assert!(want.blocked(&d, &live).unwrap().message.contains("already running"));
    }

    #[test]
    fn a_new_version_is_the_refreshs_desired_configuration_never_moved_first_by_an_update() {
        let mut want = spec();
        want.version = TemplateVersion::New;
        want.refresh = Some(RefreshPrefs { min_healthy_percent: 90, warmup_seconds: None, auto_rollback: true });
        let d = want.diff(&spec());
        // Only the refresh: AWS moves the group once it succeeds, and a rollback has a version to go back to.
        assert_eq!(
            d.ops,
            vec![Op::AutoScalingGroup(AsgOp::StartRefresh {
                preferences: RefreshPrefs { min_healthy_percent: 90, warmup_seconds: None, auto_rollback: true },
                launch_template: ("agency-web".into(), TemplateVersion::New),
            })]
        );
        // Other fields still go in the one update, without the version.
        want.max = 9;
        let d = want.diff(&spec());
        assert!(matches!(&d.ops[..], [Op::AutoScalingGroup(AsgOp::Update(u)), Op::AutoScalingGroup(AsgOp::StartRefresh { .. })] if u.max == Some(9)));
    }

    #[test]
    fn a_refresh_running_to_the_desired_version_is_that_version_observed_not_a_change() {
        let mut want = spec();
        want.version = TemplateVersion::Number(4);
        let mut live = spec();
        live.refreshing = Some("InProgress, 50% done".into());
        live.refreshing_to = Some(("agency-web".into(), 4));
        let d = want.diff(&live);
        assert!(d.fields.is_empty() && d.ops.is_empty(), "{d:?}");
        assert!(want.blocked(&d, &live).is_none());
        assert_eq!(want.observe(&live)[0].note, "running in AWS, rolling out agency-web version 4");
        // Another version while it runs: blocked, from the version it rolls out.
        want.version = TemplateVersion::Number(5);
        let d = want.diff(&live);
        assert_eq!(d.fields[0].old.as_deref(), Some("4"));
        assert!(want.blocked(&d, &live).is_some());
    }

    #[test]
    fn load_balancers_attached_and_processes_suspended_by_hand_are_observed_and_left_alone() {
        let mut live = spec();
        live.load_balancers.insert("hand-made".into(), None);
        live.suspended_processes = BTreeSet::from(["Launch".to_string(), "Terminate".to_string()]);
        let d = spec().diff(&live);
        assert!(d.fields.is_empty() && d.ops.is_empty(), "{d:?}");
        let seen: Vec<(String, String, bool)> = spec().observe(&live).into_iter().map(|o| (o.field, o.value, o.info)).collect();
        assert_eq!(
            seen,
            vec![("load_balancers".to_string(), "hand-made".to_string(), false), ("suspended_processes".to_string(), "[Launch, Terminate]".to_string(), false),]
        );
    }

    #[test]
    fn load_balancers_move_by_delta_and_foreign_ones_stay() {
        let mut live = spec();
        live.load_balancers.insert("hand-made".into(), None);
        let mut want = spec();
        want.load_balancers = BTreeMap::from([("agency-acme".to_string(), Some("acme".to_string()))]);
        let d = want.diff(&live);
        assert_eq!(
            d.ops,
            vec![
                Op::AutoScalingGroup(AsgOp::AttachLoadBalancers { names: vec!["agency-acme".into()] }),
                Op::AutoScalingGroup(AsgOp::DetachLoadBalancers { names: vec!["agency-shared".into()] }),
            ]
        );
    }
}
