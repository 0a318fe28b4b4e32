//! The Resource Groups Tagging API, for the kinds whose own APIs read tags one object at a time (S3 buckets,
//! CloudWatch alarms): one paginated `GetResources` per kind (100 objects a page, each kind's beside the
//! other's, beside the kind's own listing) filtered by the fleet's tag finds every object of that kind the
//! fleet tagged, with its tags. Their readers then read tags themselves only for
//! an object the index does not hold and whose name the fleet wants (a look-alike, or one tagged too
//! recently for the index, which AWS updates a moment after the object's own API): objects that are neither
//! are never read.

use std::collections::BTreeMap;

use aws_sdk_resourcegroupstagging::types::TagFilter;

use super::{Aws, AwsError, call};
use crate::resource::FLEET_TAG;

/// Buckets' resource type (`service[:type]`, as in their ARNs).
pub(crate) const BUCKETS: &str = "s3";
pub(crate) const ALARMS: &str = "cloudwatch:alarm";

/// The fleet's tagged objects of one resource type, by (service, the ARN's resource part).
#[derive(Debug, Default)]
pub(crate) struct TagIndex {
    tags: BTreeMap<(String, String), BTreeMap<String, String>>,
}

/// `arn:partition:service:region:account:resource` as (service, resource).
fn split(arn: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    (parts.len() == 6 && parts[0] == "arn").then(|| (parts[2].to_string(), parts[5].to_string()))
}

impl TagIndex {
    /// A bucket's tags (`arn:aws:s3:::NAME`).
    pub(crate) fn bucket(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.tags.get(&("s3".to_string(), name.to_string()))
    }

    /// An alarm's tags, by its ARN.
    pub(crate) fn by_arn(&self, arn: &str) -> Option<&BTreeMap<String, String>> {
        self.tags.get(&split(arn)?)
    }
}

impl Aws {
    /// The fleet's objects of `resource_type` ([`BUCKETS`], [`ALARMS`]) with their tags.
    pub(crate) async fn tag_index(&self, fleet: &str, resource_type: &str) -> Result<TagIndex, AwsError> {
        let filter = TagFilter::builder().key(FLEET_TAG).values(fleet).build();
        let mut pages = self.tagging.get_resources().tag_filters(filter).resource_type_filters(resource_type).resources_per_page(100).into_paginator().send();
        let mut index = TagIndex::default();
        while let Some(page) = pages.next().await {
            let page = page.map_err(call("tagging", "GetResources", format!("{resource_type} tagged {FLEET_TAG}={fleet}")))?;
            for mapping in page.resource_tag_mapping_list() {
                let Some(key) = mapping.resource_arn().and_then(split) else { continue };
                index.tags.insert(key, mapping.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect());
            }
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_found_by_the_resource_part_of_their_arn() {
        let mut index = TagIndex::default();
        for arn in ["arn:aws:s3:::agency-acme-media", "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:agency-web-cpu-high"] {
            index.tags.insert(split(arn).unwrap(), BTreeMap::from([(FLEET_TAG.to_string(), "agency".to_string())]));
        }
        assert!(index.bucket("agency-acme-media").is_some());
        assert!(index.bucket("agency-globex-media").is_none());
        assert!(index.by_arn("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:agency-web-cpu-high").is_some());
        assert!(index.by_arn("arn:aws-cn:s3:::agency-acme-media").is_some(), "any partition");
        assert!(index.by_arn("not an arn").is_none());
    }
}
