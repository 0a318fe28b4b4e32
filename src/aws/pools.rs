//! Pools: the images they launch from, their launch templates (EC2) and auto-scaling groups.
//!
//! Calls per read: one DescribeImages per image lookup (and one for images given by id), DescribeLaunchTemplates
//! and DescribeTags for templates (moto 5.2.5 leaves later tags out of the former), one
//! DescribeLaunchTemplateVersions per owned template, two DescribeAutoScalingGroups (ours by tag, and
//! look-alikes by name), one DescribePolicies for every owned group (by policy name), and one
//! DescribeInstanceRefreshes per owned group (AWS has no batch form). Independent calls run concurrently.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_autoscaling::types::AutoScalingGroup;
use aws_sdk_ec2::types::{Filter, LaunchTemplateVersion, ResourceType};
use aws_smithy_types::base64;
use futures_util::{StreamExt, TryStreamExt, stream};

use super::{Aws, AwsError, Missing, Owner, Wanted, call, unread};
use crate::live::Found;
use crate::model::{Fleet, Image};
use crate::resource::{
    AutoScalingGroupSpec, FLEET_TAG, GroupRef, ImageRef, Kind, LaunchTemplateSpec, TemplateData, TemplateVersion, auto_scaling_group::policy_name,
    launch_template::newest_image,
};

/// Refresh statuses that mean one is still running (AWS's `InstanceRefreshStatus`).
const RUNNING: [&str; 5] = ["Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"];

fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    Filter::builder().name(name).set_values(Some(values.into_iter().map(Into::into).collect())).build()
}

/// Templates and groups as read: turned into specs once the security groups' and load balancers' live
/// names are known.
#[derive(Default)]
pub(crate) struct PoolsRead {
    templates: Vec<TemplateRead>,
    groups: Vec<GroupRead>,
    /// Look-alikes of each kind: (name, id, fleet tag).
    foreign_templates: Vec<Look>,
    foreign_groups: Vec<Look>,
}

/// A look-alike: (name, id, the fleet tag it carries).
type Look = (String, String, Option<String>);

/// A launch template read in full (ours, or a look-alike that may be adopted): its id, tags and every
/// version (ascending).
struct TemplateRead {
    owner: Owner,
    id: String,
    tags: BTreeMap<String, String>,
    versions: Vec<LaunchTemplateVersion>,
}

/// A group read in full (ours, or a look-alike that may be adopted) with what other calls say of it: its
/// policy's CPU target, a refresh still running.
struct GroupRead {
    owner: Owner,
    group: AutoScalingGroup,
    cpu_target: Option<u32>,
    refreshing: Option<Running>,
    /// Its notification configurations: topic -> types.
    notifications: BTreeMap<String, BTreeSet<String>>,
}

/// A refresh still running: its status (`InProgress, 40% done`) and what its desired configuration rolls
/// out (template name and version), when it has one with an explicit version.
struct Running {
    status: String,
    to: Option<(String, u64)>,
}

fn user_data_text(encoded: Option<&str>) -> (String, bool) {
    let Some(bytes) = encoded.and_then(|e| base64::decode(e).ok()) else {
        return (String::new(), false);
    };
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        let ok = std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text).is_ok();
        if ok {
            return (text, true);
        }
    }
    (String::from_utf8_lossy(&bytes).into_owned(), false)
}

impl PoolsRead {
    /// Image ids the live templates use, for naming them in a plan.
    pub(crate) fn image_ids(&self) -> BTreeSet<String> {
        self.templates.iter().filter_map(|t| t.versions.last()?.launch_template_data()?.image_id().map(str::to_string)).collect()
    }

    /// Templates and groups as specs; `group_ids` and `balancers` name the fleet's security groups (by id)
    /// and load balancers (by AWS name).
    pub(crate) fn found(
        self,
        image_names: &BTreeMap<String, String>,
        group_ids: &BTreeMap<String, String>,
        balancers: &BTreeMap<String, String>,
    ) -> (Found<LaunchTemplateSpec>, Found<AutoScalingGroupSpec>) {
        let mut templates = Found { foreign: unread(self.foreign_templates), ..Found::default() };
        let mut groups = Found { foreign: unread(self.foreign_groups), ..Found::default() };
        for TemplateRead { owner, id, tags, versions } in self.templates {
            let Some(latest) = versions.last() else { continue };
            let data = latest.launch_template_data();
            let (user_data, gzip) = user_data_text(data.and_then(|d| d.user_data()));
            let mut instance_tags = BTreeMap::new();
            for spec in data.map(|d| d.tag_specifications()).unwrap_or_default() {
                if spec.resource_type() == Some(&ResourceType::Instance) {
                    instance_tags.extend(spec.tags().iter().map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string())));
                }
            }
            let image_id = data.and_then(|d| d.image_id()).unwrap_or_default().to_string();
            let spec = LaunchTemplateSpec {
                name: latest.launch_template_name().unwrap_or_default().to_string(),
                data: TemplateData {
                    image: ImageRef { name: image_names.get(&image_id).cloned(), id: image_id },
                    instance_type: data.and_then(|d| d.instance_type()).map(|t| t.as_str().to_string()).unwrap_or_default(),
                    key_pair: data.and_then(|d| d.key_name()).map(str::to_string),
                    security_groups: data.map(|d| d.security_group_ids()).unwrap_or_default().iter().map(|g| GroupRef::from_id(g, group_ids)).collect(),
                    instance_tags,
                    user_data,
                    gzip,
                },
                tags,
                versions: versions.iter().filter_map(|v| v.version_number()).map(|n| n as u64).collect(),
                default_version: versions.iter().find(|v| v.default_version() == Some(true)).and_then(|v| v.version_number()).map(|n| n as u64),
            };
            templates.file(owner, id, spec);
        }
        for GroupRead { owner, group: g, cpu_target, refreshing, notifications } in self.groups {
            let pool = owner.address().map(|a| a.name.clone()).unwrap_or_default();
            let (template, version) = match g
                .launch_template()
                .or_else(|| g.mixed_instances_policy().and_then(|m| m.launch_template()).and_then(|t| t.launch_template_specification()))
            {
                Some(t) => (
                    t.launch_template_name().unwrap_or_default().to_string(),
                    t.version().and_then(|v| v.parse().ok()).map_or(TemplateVersion::Current, TemplateVersion::Number),
                ),
                None => (String::new(), TemplateVersion::Current),
            };
            let tags = group_tags(&g);
            let spec = AutoScalingGroupSpec {
                name: g.auto_scaling_group_name().unwrap_or_default().to_string(),
                pool,
                launch_template: template,
                version,
                min: g.min_size().unwrap_or_default() as u32,
                max: g.max_size().unwrap_or_default() as u32,
                desired_capacity: g.desired_capacity().unwrap_or_default() as u32,
                health_check: g.health_check_type().unwrap_or("EC2").to_string(),
                grace_seconds: g.health_check_grace_period().unwrap_or_default() as u32,
                termination_policies: match g.termination_policies() {
                    [] => crate::resource::auto_scaling_group::default_termination(),
                    named => named.to_vec(),
                },
                zones: g.availability_zones().iter().cloned().collect(),
                subnets: g.vpc_zone_identifier().unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect(),
                load_balancers: g.load_balancer_names().iter().map(|n| (n.clone(), balancers.get(n).cloned())).collect(),
                cpu_target,
                notifications,
                tags,
                refresh: None,
                refreshing_to: refreshing.as_ref().and_then(|r| r.to.clone()),
                refreshing: refreshing.map(|r| r.status),
                suspended_processes: g.suspended_processes().iter().filter_map(|p| p.process_name()).map(str::to_string).collect(),
            };
            groups.file(owner, spec.name.clone(), spec);
        }
        (templates, groups)
    }
}

/// An auto-scaling group's tags as a map.
pub(super) fn group_tags(g: &AutoScalingGroup) -> BTreeMap<String, String> {
    g.tags().iter().map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string())).collect()
}

impl Aws {
    /// The fleet's images that pools use, resolved: by id, or the newest image matching owners and name.
    pub(crate) async fn resolve_images(&self, fleet: &Fleet) -> Result<BTreeMap<String, ImageRef>, AwsError> {
        let used: BTreeSet<&str> = fleet.pools.values().map(|p| p.image.value.as_str()).collect();
        let wanted: Vec<(&String, &Image)> = fleet.images.iter().filter(|(n, _)| used.contains(n.as_str())).collect();
        let ids: Vec<String> = wanted
            .iter()
            .filter_map(|(_, i)| match i {
                Image::Id { id, .. } => Some(id.clone()),
                Image::Lookup { .. } => None,
            })
            .collect();
        let by_id = async { if ids.is_empty() { Ok(BTreeMap::new()) } else { self.image_names(ids.iter().cloned().collect()).await } };
        let lookups = stream::iter(wanted.iter().filter_map(|(name, i)| match i {
            Image::Lookup { owners, name: pattern, .. } => Some((name.to_string(), owners.clone(), pattern.clone())),
            Image::Id { .. } => None,
        }))
        .map(|(name, owners, pattern)| async move {
            let what = format!("image.{name} (owners {}, name {pattern})", owners.join(", "));
            let mut req = self.ec2.describe_images().filters(filter("name", [pattern.clone()])).filters(filter("state", ["available"]));
            if !owners.is_empty() {
                req = req.set_owners(Some(owners.clone()));
            }
            let mut pages = req.into_paginator().send();
            let mut found = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(call("ec2", "DescribeImages", &what))?;
                found.extend(page.images().iter().map(|i| {
                    (i.creation_date().unwrap_or_default().to_string(), i.name().unwrap_or_default().to_string(), i.image_id().unwrap_or_default().to_string())
                }));
            }
            let image = newest_image(found).ok_or_else(|| Missing::NoImageMatches {
                name: name.clone(),
                owners: owners.join(", "),
                pattern: pattern.clone(),
                region: self.region.clone(),
            })?;
            Ok::<_, AwsError>((name, image))
        })
        .buffer_unordered(super::READS_IN_FLIGHT)
        .try_collect::<Vec<_>>();
        let (names, looked_up) = tokio::try_join!(by_id, lookups)?;
        let mut out: BTreeMap<String, ImageRef> = looked_up.into_iter().collect();
        for (name, image) in wanted {
            if let Image::Id { id, .. } = image {
                let found = names.get(id).ok_or_else(|| Missing::Image { name: name.clone(), id: id.clone(), region: self.region.clone() })?;
                out.insert(name.clone(), ImageRef { id: id.clone(), name: Some(found.clone()) });
            }
        }
        Ok(out)
    }

    /// Image id -> name for the ids that exist (a filter, not `ImageIds`, so a deregistered one is no error).
    pub(crate) async fn image_names(&self, ids: BTreeSet<String>) -> Result<BTreeMap<String, String>, AwsError> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut out = BTreeMap::new();
        for chunk in ids.into_iter().collect::<Vec<_>>().chunks(200) {
            let mut pages = self.ec2.describe_images().filters(filter("image-id", chunk.iter().cloned())).into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(call("ec2", "DescribeImages", chunk.join(", ")))?;
                out.extend(page.images().iter().map(|i| (i.image_id().unwrap_or_default().to_string(), i.name().unwrap_or_default().to_string())));
            }
        }
        Ok(out)
    }

    pub(crate) async fn read_pools(&self, fleet: &Fleet, wanted: &Wanted) -> Result<PoolsRead, AwsError> {
        let name = &fleet.settings.name;
        let (templates, groups) = tokio::try_join!(self.read_templates(name, wanted), self.read_groups(name, wanted))?;
        let ((templates, foreign_templates), (groups, foreign_groups)) = (templates, groups);
        Ok(PoolsRead { templates, groups, foreign_templates, foreign_groups })
    }

    async fn read_templates(&self, fleet: &str, wanted: &Wanted) -> Result<(Vec<TemplateRead>, Vec<Look>), AwsError> {
        let all = async {
            let mut pages = self.ec2.describe_launch_templates().max_results(200).into_paginator().send();
            let mut out = Vec::new();
            while let Some(page) = pages.next().await {
                out.extend(page.map_err(call("ec2", "DescribeLaunchTemplates", "the account's launch templates"))?.launch_templates().iter().cloned());
            }
            Ok::<_, AwsError>(out)
        };
        let tags = async {
            let mut pages = self.ec2.describe_tags().filters(filter("resource-type", ["launch-template"])).max_results(1000).into_paginator().send();
            let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
            while let Some(page) = pages.next().await {
                for t in page.map_err(call("ec2", "DescribeTags", "launch templates"))?.tags() {
                    out.entry(t.resource_id().unwrap_or_default().to_string())
                        .or_default()
                        .insert(t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string());
                }
            }
            Ok::<_, AwsError>(out)
        };
        let (all, tags) = tokio::try_join!(all, tags)?;
        let mut owned = Vec::new();
        let mut foreign = Vec::new();
        for t in all {
            let id = t.launch_template_id().unwrap_or_default().to_string();
            let name = t.launch_template_name().unwrap_or_default().to_string();
            let tags = tags.get(&id).cloned().unwrap_or_default();
            match wanted.owner(fleet, Kind::LaunchTemplate, &name, &tags) {
                Owner::Other(other) if wanted.contains(Kind::LaunchTemplate, &name) => foreign.push((name, id, other)),
                Owner::Other(_) => {}
                owner if wanted.reads(&owner) => owned.push((owner, id, tags)),
                _ => {}
            }
        }
        let owned = stream::iter(owned)
            .map(|(owner, id, tags)| async move {
                let what = owner.address().map_or_else(|| id.clone(), ToString::to_string);
                let mut pages = self.ec2.describe_launch_template_versions().launch_template_id(&id).max_results(200).into_paginator().send();
                let mut versions = Vec::new();
                while let Some(page) = pages.next().await {
                    versions.extend(page.map_err(call("ec2", "DescribeLaunchTemplateVersions", &what))?.launch_template_versions().iter().cloned());
                }
                versions.sort_by_key(|v| v.version_number());
                Ok::<_, AwsError>(TemplateRead { owner, id, tags, versions })
            })
            .buffer_unordered(super::READS_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok((owned, foreign))
    }

    async fn read_groups(&self, fleet: &str, wanted: &Wanted) -> Result<(Vec<GroupRead>, Vec<Look>), AwsError> {
        let asg = &self.autoscaling;
        let desired = wanted.names(Kind::AutoScalingGroup);
        let by_tag = async {
            let tag = aws_sdk_autoscaling::types::Filter::builder().name(format!("tag:{FLEET_TAG}")).values(fleet).build();
            let mut pages = asg.describe_auto_scaling_groups().filters(tag).max_records(100).into_paginator().send();
            let mut out = Vec::new();
            while let Some(page) = pages.next().await {
                out.extend(page.map_err(call("autoscaling", "DescribeAutoScalingGroups", "the fleet's groups"))?.auto_scaling_groups().iter().cloned());
            }
            Ok::<_, AwsError>(out)
        };
        let by_name = async {
            let mut out = Vec::new();
            if wanted.all() {
                let mut pages = asg.describe_auto_scaling_groups().max_records(100).into_paginator().send();
                while let Some(page) = pages.next().await {
                    out.extend(page.map_err(call("autoscaling", "DescribeAutoScalingGroups", "the account's groups"))?.auto_scaling_groups().iter().cloned());
                }
                return Ok(out);
            }
            // Up to 100 names per call is what the API allows.
            for chunk in desired.chunks(100) {
                let mut pages = asg.describe_auto_scaling_groups().set_auto_scaling_group_names(Some(chunk.to_vec())).max_records(100).into_paginator().send();
                while let Some(page) = pages.next().await {
                    out.extend(page.map_err(call("autoscaling", "DescribeAutoScalingGroups", chunk.join(", ")))?.auto_scaling_groups().iter().cloned());
                }
            }
            Ok::<_, AwsError>(out)
        };
        let (mine, named) = tokio::try_join!(by_tag, by_name)?;
        let tags_of = |g: &AutoScalingGroup| group_tags(g);
        let mut owned = Vec::new();
        let mut foreign = Vec::new();
        let mut seen = BTreeSet::new();
        for g in mine.into_iter().chain(named) {
            let name = g.auto_scaling_group_name().unwrap_or_default().to_string();
            // A group being deleted is as good as gone.
            if !seen.insert(name.clone()) || g.status().is_some_and(|s| s.starts_with("Delete")) {
                continue;
            }
            match wanted.owner(fleet, Kind::AutoScalingGroup, &name, &tags_of(&g)) {
                Owner::Other(other) => foreign.push((name.clone(), name, other)),
                owner if wanted.reads(&owner) => owned.push((owner, g)),
                _ => {}
            }
        }
        let policies = self.cpu_targets(owned.iter().map(|(_, g)| policy_name(g.auto_scaling_group_name().unwrap_or_default())).collect());
        let refreshes = stream::iter(owned.iter().map(|(_, g)| g.auto_scaling_group_name().unwrap_or_default().to_string()))
            .map(|name| async move {
                let out = asg.describe_instance_refreshes().auto_scaling_group_name(&name).send().await.map_err(call(
                    "autoscaling",
                    "DescribeInstanceRefreshes",
                    &name,
                ))?;
                let running = out.instance_refreshes().iter().find(|r| r.status().is_some_and(|s| RUNNING.contains(&s.as_str()))).map(|r| {
                    let status = r.status().map(|s| s.as_str().to_string()).unwrap_or_default();
                    let to = r
                        .desired_configuration()
                        .and_then(|d| d.launch_template())
                        .and_then(|t| Some((t.launch_template_name()?.to_string(), t.version()?.parse().ok()?)));
                    Running { status: format!("{status}, {}% done", r.percentage_complete().unwrap_or_default()), to }
                });
                Ok::<_, AwsError>((name, running))
            })
            .buffer_unordered(super::READS_IN_FLIGHT)
            .try_collect::<BTreeMap<_, _>>();
        let notifications = self.notifications(owned.iter().map(|(_, g)| g.auto_scaling_group_name().unwrap_or_default().to_string()).collect());
        let (targets, mut running, mut notifications) = tokio::try_join!(policies, refreshes, notifications)?;
        let owned = owned
            .into_iter()
            .map(|(owner, group)| {
                let name = group.auto_scaling_group_name().unwrap_or_default().to_string();
                let cpu_target = targets.get(&policy_name(&name)).copied();
                let notifications = notifications.remove(&name).unwrap_or_default();
                GroupRead { owner, group, cpu_target, refreshing: running.remove(&name).flatten(), notifications }
            })
            .collect();
        Ok((owned, foreign))
    }

    /// The groups' notification configurations, by group: topic -> types. One call per 1600 groups (the
    /// API's limit of names), paginated (one entry per topic and type).
    async fn notifications(&self, groups: Vec<String>) -> Result<BTreeMap<String, BTreeMap<String, BTreeSet<String>>>, AwsError> {
        let mut out: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        for chunk in groups.chunks(1600) {
            let mut pages = self
                .autoscaling
                .describe_notification_configurations()
                .set_auto_scaling_group_names(Some(chunk.to_vec()))
                .max_records(100)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(call("autoscaling", "DescribeNotificationConfigurations", format!("{} groups", chunk.len())))?;
                for n in page.notification_configurations() {
                    let (Some(group), Some(topic), Some(kind)) = (n.auto_scaling_group_name(), n.topic_arn(), n.notification_type()) else { continue };
                    out.entry(group.to_string()).or_default().entry(topic.to_string()).or_default().insert(kind.to_string());
                }
            }
        }
        Ok(out)
    }

    /// Target CPU of the named target-tracking policies, by policy name: one call per 50 names.
    async fn cpu_targets(&self, names: Vec<String>) -> Result<BTreeMap<String, u32>, AwsError> {
        let mut out = BTreeMap::new();
        for chunk in names.chunks(50) {
            let mut pages = self.autoscaling.describe_policies().set_policy_names(Some(chunk.to_vec())).into_paginator().send();
            while let Some(page) = pages.next().await {
                for p in page.map_err(call("autoscaling", "DescribePolicies", chunk.join(", ")))?.scaling_policies() {
                    if let Some(t) = p.target_tracking_configuration() {
                        out.insert(p.policy_name().unwrap_or_default().to_string(), t.target_value().unwrap_or_default().round() as u32);
                    }
                }
            }
        }
        Ok(out)
    }
}
