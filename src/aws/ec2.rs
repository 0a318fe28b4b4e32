//! EC2: the VPC, its zones, and security groups with their rules; the security groups' writes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType, Tag, TagSpecification, UserIdGroupPair};

use super::executor::{Answer, AwsExecutor, created, idempotent};
use super::{Aws, AwsError, Owner, Unresolved, Wanted, call};
use crate::error::{Class, Classify};
use crate::live::Found;
use crate::plan::Change;
use crate::resource::security_group::{Peer, RuleSpec};
use crate::resource::{FLEET_TAG, GroupRef, Kind, SecurityGroupSpec, SgOp};

fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    Filter::builder().name(name).set_values(Some(values.into_iter().map(Into::into).collect())).build()
}

/// Security groups as read: converted to specs once every owned group's id is known.
#[derive(Default)]
pub(crate) struct GroupsRead {
    fleet: String,
    wanted: Wanted,
    groups: Vec<aws_sdk_ec2::types::SecurityGroup>,
}

/// EC2's tags as a map (security groups, launch templates).
pub(crate) fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter().map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string())).collect()
}

impl GroupsRead {
    /// Each group once (the tag and the name filter may both find it), with its owner. A group not ours
    /// counts only in `vpc_id`: group names are unique per VPC only, so a namesake elsewhere blocks nothing.
    fn owners<'a>(&'a self, vpc_id: &'a str) -> impl Iterator<Item = (&'a aws_sdk_ec2::types::SecurityGroup, Owner)> + 'a {
        let mut seen = BTreeSet::new();
        self.groups.iter().filter(move |g| seen.insert(g.group_id().unwrap_or_default().to_string())).filter_map(move |g| {
            let owner = self.wanted.owner(&self.fleet, Kind::SecurityGroup, g.group_name().unwrap_or_default(), &tag_map(g.tags()));
            (matches!(owner, Owner::Us(_)) || g.vpc_id() == Some(vpc_id)).then_some((g, owner))
        })
    }

    /// Group id -> name in the fleet, for the groups others name by id: ours, and look-alikes that may be
    /// adopted (what refers to one names it as the fleet does, so an adoption changes nothing there).
    pub(crate) fn names(&self, vpc_id: &str) -> BTreeMap<String, String> {
        self.owners(vpc_id)
            .filter_map(|(g, owner)| match owner {
                Owner::Us(a) => Some((g.group_id()?.to_string(), a.name)),
                // The VPC's default group is AWS's: named by its id, never as a group of the fleet.
                Owner::Unowned(a) if g.group_name() != Some("default") => Some((g.group_id()?.to_string(), a.name)),
                Owner::Unowned(_) | Owner::Other(_) => None,
            })
            .collect()
    }

    /// Owned groups become live objects, the others look-alikes (with their specs when they may be adopted);
    /// `names` is [`GroupsRead::names`].
    pub(crate) fn found(self, vpc_id: &str, dual_stack: bool, names: &BTreeMap<String, String>) -> Found<SecurityGroupSpec> {
        let mut found = Found::default();
        for (g, owner) in self.owners(vpc_id) {
            let spec = SecurityGroupSpec {
                name: g.group_name().unwrap_or_default().to_string(),
                description: g.description().unwrap_or_default().to_string(),
                vpc_id: g.vpc_id().unwrap_or_default().to_string(),
                ingress: rules(g.ip_permissions(), names),
                egress: rules(g.ip_permissions_egress(), names),
                tags: tag_map(g.tags()),
                dual_stack,
            };
            found.file(owner, g.group_id().unwrap_or_default(), spec);
        }
        found
    }
}

/// EC2's permissions, split into one atom per peer, each with its peer's description.
fn rules(perms: &[IpPermission], ours: &BTreeMap<String, String>) -> BTreeSet<RuleSpec> {
    let mut out = BTreeSet::new();
    for p in perms {
        let proto = p.ip_protocol().unwrap_or("-1");
        let atom = |peer, description: Option<&str>| RuleSpec::new(proto, p.from_port(), p.to_port(), peer).described(description);
        out.extend(p.ip_ranges().iter().filter_map(|r| Some(atom(Peer::Cidr(r.cidr_ip()?.to_string()), r.description()))));
        out.extend(p.ipv6_ranges().iter().filter_map(|r| Some(atom(Peer::Cidr(r.cidr_ipv6()?.to_string()), r.description()))));
        out.extend(p.user_id_group_pairs().iter().filter_map(|g| Some(atom(Peer::Group(GroupRef::from_id(g.group_id()?, ours)), g.description()))));
        out.extend(p.prefix_list_ids().iter().filter_map(|l| Some(atom(Peer::PrefixList(l.prefix_list_id()?.to_string()), l.description()))));
    }
    out
}

/// One IpPermission per atom; `resolve` turns fleet group names into ids.
pub(crate) fn permissions(rules: &[RuleSpec], resolve: impl Fn(&GroupRef) -> Result<String, AwsError>) -> Result<Vec<IpPermission>, AwsError> {
    rules
        .iter()
        .map(|r| {
            let mut p = IpPermission::builder().ip_protocol(&r.protocol);
            if r.protocol != "-1" {
                p = p.from_port(r.from_port).to_port(r.to_port);
            }
            let d = r.description.clone();
            p = match &r.peer {
                Peer::Cidr(c) if c.contains(':') => p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(c).set_description(d).build()),
                Peer::Cidr(c) => p.ip_ranges(IpRange::builder().cidr_ip(c).set_description(d).build()),
                Peer::Group(g) => p.user_id_group_pairs(UserIdGroupPair::builder().group_id(resolve(g)?).set_description(d).build()),
                Peer::PrefixList(l) => p.prefix_list_ids(PrefixListId::builder().prefix_list_id(l).set_description(d).build()),
            };
            Ok(p.build())
        })
        .collect()
}

pub(crate) fn tag_specification(resource: ResourceType, tags: &BTreeMap<String, String>) -> TagSpecification {
    let tags = tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build());
    TagSpecification::builder().resource_type(resource).set_tags(Some(tags.collect())).build()
}

/// A VPC with an IPv6 block associated (or being associated): AWS gives its new groups an IPv6 default egress.
fn dual_stack(vpc: &aws_sdk_ec2::types::Vpc) -> bool {
    use aws_sdk_ec2::types::VpcCidrBlockStateCode as State;
    vpc.ipv6_cidr_block_association_set()
        .iter()
        .any(|b| b.ipv6_cidr_block_state().and_then(|s| s.state()).is_some_and(|s| matches!(s, State::Associated | State::Associating)))
}

impl Aws {
    /// The default VPC: its id and whether it has an IPv6 block.
    pub(crate) async fn default_vpc(&self) -> Result<(String, bool), AwsError> {
        let out = self.ec2.describe_vpcs().filters(filter("is-default", ["true"])).send().await.map_err(call("ec2", "DescribeVpcs", "the default VPC"))?;
        let vpc = out.vpcs().iter().find(|v| v.vpc_id().is_some()).ok_or_else(|| super::Missing::DefaultVpc { region: self.region.clone() })?;
        Ok((vpc.vpc_id().unwrap_or_default().to_string(), dual_stack(vpc)))
    }

    /// Whether a VPC named by its id has an IPv6 block.
    pub(crate) async fn vpc_ipv6(&self, vpc_id: &str) -> Result<bool, AwsError> {
        let out = self.ec2.describe_vpcs().vpc_ids(vpc_id).send().await.map_err(call("ec2", "DescribeVpcs", vpc_id))?;
        Ok(out.vpcs().iter().any(dual_stack))
    }

    pub(crate) async fn zones(&self) -> Result<Vec<String>, AwsError> {
        let out = self
            .ec2
            .describe_availability_zones()
            .filters(filter("state", ["available"]))
            .filters(filter("zone-type", ["availability-zone"]))
            .send()
            .await
            .map_err(call("ec2", "DescribeAvailabilityZones", "the region's zones"))?;
        let mut zones: Vec<String> = out.availability_zones().iter().filter_map(|z| z.zone_name()).map(str::to_string).collect();
        zones.sort();
        Ok(zones)
    }

    /// Our groups (by the fleet tag) and any group bearing a desired name (to report look-alikes): two
    /// filtered, paginated queries, run concurrently.
    pub(crate) async fn read_security_groups(&self, fleet: &str, wanted: &Wanted) -> Result<GroupsRead, AwsError> {
        let names = &wanted.names(Kind::SecurityGroup);
        let by_tag = self.describe_groups(Some(filter(&format!("tag:{FLEET_TAG}"), [fleet])));
        let by_name = async {
            let mut out = Vec::new();
            if wanted.all() {
                return self.describe_groups(None).await;
            }
            // EC2 takes up to 200 values in one filter.
            for chunk in names.chunks(200) {
                out.extend(self.describe_groups(Some(filter("group-name", chunk.iter().cloned()))).await?);
            }
            Ok(out)
        };
        let (mut groups, named) = tokio::try_join!(by_tag, by_name)?;
        groups.extend(named);
        Ok(GroupsRead { fleet: fleet.to_string(), wanted: wanted.clone(), groups })
    }

    // moto 5.2.5 ignores MaxResults on several EC2 describes; the paginator follows NextToken either way.
    async fn describe_groups(&self, filter: Option<Filter>) -> Result<Vec<aws_sdk_ec2::types::SecurityGroup>, AwsError> {
        let mut pages = self.ec2.describe_security_groups().set_filters(filter.map(|f| vec![f])).max_results(1000).into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(call("ec2", "DescribeSecurityGroups", "the fleet's security groups"))?;
            out.extend(page.security_groups().iter().cloned());
        }
        Ok(out)
    }
}

/// How long a security group delete waits out a conflict (`DependencyViolation`: network interfaces of a
/// just-deleted load balancer take minutes to go in AWS). The one place converge retries a call that failed
/// with a class that is not retryable, because here waiting is what fixes it.
const DEPENDENCY_WAIT: Duration = Duration::from_secs(300);

impl AwsExecutor {
    pub(super) async fn run_sg(&self, change: &Change, op: &SgOp, id: &mut Option<String>) -> Result<(), AwsError> {
        let ec2 = &self.aws.ec2;
        let address = &change.address;
        let group = || id.clone().ok_or_else(|| AwsError::from(Unresolved::Id { address: address.to_string(), what: "group" }));
        let resolve = |g: &GroupRef| self.resolve(g);
        // The four rule calls differ only in the SDK method (each its own builder type) and its name.
        // A rule authorised already (`InvalidPermission.Duplicate`) or revoked already (`.NotFound`) is done:
        // a retried call whose first answer was lost. EC2 refuses a whole call for one such rule, so a call
        // of several refused that way is made again one rule at a time, each done or not on its own.
        macro_rules! rule_call {
            ($method:ident, $name:literal, $rules:expr, $already:expr) => {{
                let rules: &[RuleSpec] = $rules;
                let r = ec2.$method().group_id(group()?).set_ip_permissions(Some(permissions(rules, resolve)?)).send().await;
                match r.map(drop).map_err(call("ec2", $name, address)) {
                    Err(e) if e.class() == $already && rules.len() > 1 => {
                        for rule in rules {
                            let r = ec2.$method().group_id(group()?).set_ip_permissions(Some(permissions(std::slice::from_ref(rule), resolve)?)).send().await;
                            idempotent(r.map(drop).map_err(call("ec2", $name, address)), $already)?;
                        }
                    }
                    r => idempotent(r, $already)?,
                }
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
                    .map_err(call("ec2", "CreateSecurityGroup", address));
                let new = match created(out)? {
                    Answer::Done(out) => out.group_id().unwrap_or_default().to_string(),
                    Answer::AlreadyExists(answer) => {
                        let named = Filter::builder().name("group-name").values(name).build();
                        let in_vpc = Filter::builder().name("vpc-id").values(vpc_id).build();
                        let found = ec2.describe_security_groups().filters(named).filters(in_vpc).send().await;
                        let found = found.map_err(call("ec2", "DescribeSecurityGroups", address))?.security_groups().first().cloned();
                        let found_tags = found.as_ref().map(|g| tag_map(g.tags()));
                        self.ours_already(change, "CreateSecurityGroup", tags, found_tags.as_ref(), false, answer)?;
                        found.and_then(|g| g.group_id().map(str::to_string)).unwrap_or_default()
                    }
                };
                self.group_ids.lock().expect("ids lock").insert(address.name.clone(), new.clone());
                *id = Some(new);
            }
            SgOp::AuthorizeIngress { rules } => rule_call!(authorize_security_group_ingress, "AuthorizeSecurityGroupIngress", rules, Class::AlreadyExists),
            SgOp::RevokeIngress { rules } => rule_call!(revoke_security_group_ingress, "RevokeSecurityGroupIngress", rules, Class::NotFound),
            SgOp::AuthorizeEgress { rules } => rule_call!(authorize_security_group_egress, "AuthorizeSecurityGroupEgress", rules, Class::AlreadyExists),
            SgOp::RevokeEgress { rules } => rule_call!(revoke_security_group_egress, "RevokeSecurityGroupEgress", rules, Class::NotFound),
            // A description is set, not added: sent again, it is the same.
            SgOp::SetIngressDescriptions { rules } => {
                let r = ec2
                    .update_security_group_rule_descriptions_ingress()
                    .group_id(group()?)
                    .set_ip_permissions(Some(permissions(rules, resolve)?))
                    .send()
                    .await;
                r.map_err(call("ec2", "UpdateSecurityGroupRuleDescriptionsIngress", address))?;
            }
            SgOp::SetEgressDescriptions { rules } => {
                let r =
                    ec2.update_security_group_rule_descriptions_egress().group_id(group()?).set_ip_permissions(Some(permissions(rules, resolve)?)).send().await;
                r.map_err(call("ec2", "UpdateSecurityGroupRuleDescriptionsEgress", address))?;
            }
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
                        // Gone already: a retried delete whose first answer was lost.
                        other => break idempotent(other.map(drop), Class::NotFound)?,
                    }
                }
                self.group_ids.lock().expect("ids lock").remove(&address.name);
                *id = None;
            }
        }
        Ok(())
    }
}
