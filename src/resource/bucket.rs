//! S3 media buckets, one per site that names one: in the fleet's region, versioned, media public by a
//! bucket policy (never ACLs: ACLs are disabled and public ACLs blocked), tagged as ours. A bucket is
//! deleted only with `--allow-destroy` and only when it holds nothing, not even old versions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Address, Diff, Environment, FieldChange, Kind, Op, Refusal, ResourceKind, diff_tags, owned_tags};
use crate::model::{Fleet, Site};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketSpec {
    pub name: String,
    pub region: String,
    pub versioning: bool,
    /// The bucket policy, as JSON text (compared as JSON, not as text).
    pub policy: Option<String>,
    /// Public access block: ACLs blocked and ignored; policies allowed (that is how media is public).
    pub block_public_acls: bool,
    pub tags: BTreeMap<String, String>,
    /// Live only: whether it holds any object or object version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum BucketOp {
    /// CreateBucket, then ownership controls (ACLs off), the public access block, the policy, versioning
    /// and tags.
    Create {
        spec: BucketSpec,
    },
    PutVersioning {
        enabled: bool,
    },
    PutPolicy {
        policy: String,
    },
    DeletePolicy,
    PutPublicAccessBlock {
        block_public_acls: bool,
    },
    /// PutBucketTagging replaces the whole set.
    PutTags {
        tags: BTreeMap<String, String>,
    },
    Delete {
        name: String,
    },
}

/// Public read of every object, by policy.
pub fn media_policy(bucket: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "PublicReadMedia",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/*"),
        }]
    })
    .to_string()
}

fn same_policy(a: &Option<String>, b: &Option<String>) -> bool {
    let parse = |p: &Option<String>| p.as_deref().map(|t| serde_json::from_str::<serde_json::Value>(t).unwrap_or(serde_json::Value::String(t.to_string())));
    parse(a) == parse(b)
}

impl ResourceKind for BucketSpec {
    const KIND: Kind = Kind::Bucket;
    const NAME: &'static str = "bucket";
    const NOUN: &'static str = "bucket";
    type Op = BucketOp;

    /// The buckets the fleet's sites name.
    fn desired(fleet: &Fleet, env: &Environment) -> Vec<(String, Self)> {
        let region = if env.region.is_empty() { fleet.settings.region.clone() } else { env.region.clone() };
        let mut names: Vec<&String> = fleet.sites.values().filter_map(|s| s.media_bucket.as_ref()).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|name| {
                let address = Address::new(Kind::Bucket, name);
                let spec = BucketSpec {
                    name: name.clone(),
                    region: region.clone(),
                    versioning: true,
                    policy: Some(media_policy(name)),
                    block_public_acls: true,
                    tags: owned_tags(&fleet.settings.name, &address, &BTreeMap::new()),
                    empty: None,
                };
                (name.clone(), spec)
            })
            .collect()
    }

    fn aws_name(&self) -> &str {
        &self.name
    }

    fn delete_ops(&self, _id: &str) -> Vec<Op> {
        vec![Op::Bucket(BucketOp::Delete { name: self.name.clone() })]
    }

    /// Deletion needs `--allow-destroy` and nothing left in the bucket.
    fn guard_deletion(&self, allow_destroy: bool) -> Option<Refusal> {
        let why = if !allow_destroy {
            format!("is no longer in the desired state: deleting bucket {} needs --allow-destroy", self.name)
        } else if self.empty != Some(true) {
            format!("bucket {} still holds objects (or old versions of them): converge deletes only an empty bucket", self.name)
        } else {
            return None;
        };
        Some(Refusal::new(
            why,
            format!(
                "keep it in desired-state/ (media_bucket), or empty it (every object and version: aws s3api list-object-versions --bucket {}) and plan again with --allow-destroy",
                self.name
            ),
        ))
    }

    /// The site's media bucket.
    fn on_site_path(_fleet: &Fleet, _site: &str, s: &Site) -> Vec<String> {
        s.media_bucket.iter().cloned().collect()
    }

    fn describe(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("name".to_string(), self.name.clone()),
            ("region".to_string(), self.region.clone()),
            ("versioning".to_string(), self.versioning.to_string()),
            ("policy".to_string(), if self.policy.is_some() { "public read of objects".into() } else { "none".into() }),
            ("acls".to_string(), if self.block_public_acls { "disabled, public ACLs blocked".into() } else { "allowed".into() }),
        ];
        out.extend(self.tags.iter().map(|(k, v)| (format!("tags.{k}"), v.clone())));
        out
    }

    fn create_ops(&self) -> Vec<Op> {
        vec![Op::Bucket(BucketOp::Create { spec: self.clone() })]
    }

    fn diff(&self, live: &BucketSpec) -> Diff {
        let mut d = Diff::default();
        if self.region != live.region {
            d.fields.push(FieldChange::changed("region", &live.region, &self.region).forcing());
            return d;
        }
        if self.versioning != live.versioning {
            d.fields.push(FieldChange::changed("versioning", live.versioning, self.versioning));
            d.ops.push(Op::Bucket(BucketOp::PutVersioning { enabled: self.versioning }));
        }
        if self.block_public_acls != live.block_public_acls {
            d.fields.push(FieldChange::changed("block_public_acls", live.block_public_acls, self.block_public_acls));
            d.ops.push(Op::Bucket(BucketOp::PutPublicAccessBlock { block_public_acls: self.block_public_acls }));
        }
        if !same_policy(&self.policy, &live.policy) {
            let show = |p: &Option<String>| p.clone().unwrap_or_else(|| "none".into());
            d.fields.push(FieldChange::changed("policy", show(&live.policy), show(&self.policy)));
            d.ops.push(Op::Bucket(match &self.policy {
                Some(p) => BucketOp::PutPolicy { policy: p.clone() },
                None => BucketOp::DeletePolicy,
            }));
        }
        if diff_tags(&self.tags, &live.tags, &mut d.fields).is_some() {
            d.ops.push(Op::Bucket(BucketOp::PutTags { tags: self.tags.clone() }));
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_compare_as_json_and_drift_is_put_back() {
        let want = BucketSpec {
            name: "agency-acme-media".into(),
            region: "eu-west-1".into(),
            versioning: true,
            policy: Some(media_policy("agency-acme-media")),
            block_public_acls: true,
            tags: BTreeMap::new(),
            empty: None,
        };
        let mut live = want.clone();
        let reformatted: serde_json::Value = serde_json::from_str(live.policy.as_deref().unwrap()).unwrap();
        live.policy = Some(serde_json::to_string_pretty(&reformatted).unwrap());
        assert!(want.diff(&live).ops.is_empty(), "the same policy, formatted differently");
        live.versioning = false;
        assert_eq!(want.diff(&live).ops, vec![Op::Bucket(BucketOp::PutVersioning { enabled: true })]);
    }
}
