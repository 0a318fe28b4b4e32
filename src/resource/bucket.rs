//! S3 media buckets, one per site that names one: in the fleet's region, versioned, media public by a
//! bucket policy (never ACLs: Object Ownership `BucketOwnerEnforced` disables them, and the public access
//! block blocks and ignores public ACLs while allowing the public policy), tagged as ours. Each of the
//! public access block's four flags and the Object Ownership are compared, so one changed by hand is
//! drift. A bucket is deleted only with `--allow-destroy` and only when it holds nothing, not even old
//! versions.

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
    /// Public access block, each flag compared: ACLs blocked and ignored (true); policies allowed and
    /// buckets with a public policy not restricted (false): that is how media is public. No configuration
    /// in AWS reads as all four false.
    pub block_public_acls: bool,
    #[serde(default)]
    pub ignore_public_acls: bool,
    #[serde(default)]
    pub block_public_policy: bool,
    #[serde(default)]
    pub restrict_public_buckets: bool,
    /// Object Ownership (`BucketOwnerEnforced`: ACLs disabled); `None`: no ownership controls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_ownership: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Live only: whether it holds any object or object version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum BucketOp {
    /// CreateBucket alone (its configuration and tags follow as operations of their own).
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
    /// PutPublicAccessBlock replaces the whole configuration: all four flags.
    PutPublicAccessBlock {
        block_public_acls: bool,
        #[serde(default)]
        ignore_public_acls: bool,
        #[serde(default)]
        block_public_policy: bool,
        #[serde(default)]
        restrict_public_buckets: bool,
    },
    /// PutBucketOwnershipControls with one rule.
    PutOwnershipControls {
        ownership: String,
    },
    /// PutBucketTagging replaces the whole set.
    PutTags {
        tags: BTreeMap<String, String>,
    },
    Delete {
        name: String,
    },
}

/// Object Ownership that disables ACLs (AWS's default for new buckets since April 2023).
pub const OWNER_ENFORCED: &str = "BucketOwnerEnforced";

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
    const TABLE: &'static str = "site";
    const ADOPT_IN: &'static str = "the site's declaration";
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
                    ignore_public_acls: true,
                    block_public_policy: false,
                    restrict_public_buckets: false,
                    object_ownership: Some(OWNER_ENFORCED.to_string()),
                    tags: owned_tags(&fleet.settings.name, &address, &BTreeMap::new()),
                    empty: None,
                };
                (name.clone(), spec)
            })
            .collect()
    }

    fn policies(fleet: &Fleet) -> Vec<(String, crate::model::Policy)> {
        fleet.sites.values().filter_map(|s| Some((s.media_bucket.clone()?, s.policy))).collect()
    }

    fn tag_command(name: &str, _id: &str, tags: &[(&str, &str)]) -> String {
        // PutBucketTagging replaces the whole set: the README says to add the bucket's other tags to it.
        let set: Vec<String> = tags.iter().map(|(k, v)| format!("{{Key={k},Value={v}}}")).collect();
        format!("aws s3api put-bucket-tagging --bucket {name} --tagging 'TagSet=[{}]'", set.join(","))
    }
    fn aws_name(&self) -> &str {
        &self.name
    }

    fn delete_ops(&self, _id: &str) -> Vec<Op> {
        vec![Op::Bucket(BucketOp::Delete { name: self.name.clone() })]
    }

    fn forget_ops(&self, _id: &str) -> Vec<Op> {
        // S3 replaces a bucket's whole tag set: the set without ours.
        let keep = self.tags.iter().filter(|(k, _)| !super::ownership_keys().contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        vec![Op::Bucket(BucketOp::PutTags { tags: keep })]
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
            ("object_ownership".to_string(), self.object_ownership.clone().unwrap_or_else(|| "none".into())),
            ("public_access_block".to_string(), self.public_access_block()),
        ];
        out.extend(self.tags.iter().map(|(k, v)| (format!("tags.{k}"), v.clone())));
        out
    }

    /// CreateBucket, then each configuration on its own (ACLs off first, then the public access block, the
    /// policy, versioning), the tags last: a create cut off part-way has done whole operations only, and the
    /// rest is what its adoption converges.
    fn create_ops(&self) -> Vec<Op> {
        let mut ops = vec![BucketOp::Create { spec: self.clone() }];
        if let Some(ownership) = &self.object_ownership {
            ops.push(BucketOp::PutOwnershipControls { ownership: ownership.clone() });
        }
        ops.push(BucketOp::PutPublicAccessBlock {
            block_public_acls: self.block_public_acls,
            ignore_public_acls: self.ignore_public_acls,
            block_public_policy: self.block_public_policy,
            restrict_public_buckets: self.restrict_public_buckets,
        });
        if let Some(policy) = &self.policy {
            ops.push(BucketOp::PutPolicy { policy: policy.clone() });
        }
        ops.push(BucketOp::PutVersioning { enabled: self.versioning });
        ops.push(BucketOp::PutTags { tags: self.tags.clone() });
        ops.into_iter().map(Op::Bucket).collect()
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
        let mut block = false;
        for (field, want, have) in [
            ("block_public_acls", self.block_public_acls, live.block_public_acls),
            ("ignore_public_acls", self.ignore_public_acls, live.ignore_public_acls),
            ("block_public_policy", self.block_public_policy, live.block_public_policy),
            ("restrict_public_buckets", self.restrict_public_buckets, live.restrict_public_buckets),
        ] {
            if want != have {
                d.fields.push(FieldChange::changed(field, have, want));
                block = true;
            }
        }
        if block {
            // One call sets all four.
            d.ops.push(Op::Bucket(BucketOp::PutPublicAccessBlock {
                block_public_acls: self.block_public_acls,
                ignore_public_acls: self.ignore_public_acls,
                block_public_policy: self.block_public_policy,
                restrict_public_buckets: self.restrict_public_buckets,
            }));
        }
        if let Some(want) = &self.object_ownership
            && live.object_ownership.as_ref() != Some(want)
        {
            d.fields.push(FieldChange::changed("object_ownership", live.object_ownership.as_deref().unwrap_or("none"), want));
            d.ops.push(Op::Bucket(BucketOp::PutOwnershipControls { ownership: want.clone() }));
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

impl BucketSpec {
    /// The public access block's flags that are on, for people.
    fn public_access_block(&self) -> String {
        let on: Vec<&str> = [
            ("BlockPublicAcls", self.block_public_acls),
            ("IgnorePublicAcls", self.ignore_public_acls),
            ("BlockPublicPolicy", self.block_public_policy),
            ("RestrictPublicBuckets", self.restrict_public_buckets),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        if on.is_empty() { "none".into() } else { on.join(", ") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media() -> BucketSpec {
        BucketSpec {
            name: "agency-acme-media".into(),
            region: "eu-west-1".into(),
            versioning: true,
            policy: Some(media_policy("agency-acme-media")),
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: false,
            restrict_public_buckets: false,
            object_ownership: Some(OWNER_ENFORCED.into()),
            tags: BTreeMap::new(),
            empty: None,
        }
    }

    #[test]
    fn each_public_access_flag_and_the_object_ownership_are_compared_and_put_back() {
        let want = media();
        // RestrictPublicBuckets turned on by hand: every object would answer 403.
        let mut live = media();
        live.restrict_public_buckets = true;
        let d = want.diff(&live);
        assert_eq!(d.fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), vec!["restrict_public_buckets"]);
        assert_eq!(
            d.ops,
            vec![Op::Bucket(BucketOp::PutPublicAccessBlock {
                block_public_acls: true,
                ignore_public_acls: true,
                block_public_policy: false,
                restrict_public_buckets: false
            })]
        );
        // IgnorePublicAcls alone off, and the block gone altogether (reads as all four off): one call each.
        let mut live = media();
        live.ignore_public_acls = false;
        assert_eq!(want.diff(&live).fields.len(), 1);
        live.block_public_acls = false;
        live.block_public_policy = false;
        let d = want.diff(&live);
        assert_eq!((d.fields.len(), d.ops.len()), (2, 1));
        // Ownership controls deleted (ACLs enabled again) or set to another value.
        let mut live = media();
        live.object_ownership = None;
        let d = want.diff(&live);
        assert_eq!(d.fields[0].old.as_deref(), Some("none"));
        assert_eq!(d.ops, vec![Op::Bucket(BucketOp::PutOwnershipControls { ownership: OWNER_ENFORCED.into() })]);
        live.object_ownership = Some("ObjectWriter".into());
        assert_eq!(want.diff(&live).ops, vec![Op::Bucket(BucketOp::PutOwnershipControls { ownership: OWNER_ENFORCED.into() })]);
        assert!(want.diff(&media()).ops.is_empty());
    }

    #[test]
    fn policies_compare_as_json_and_drift_is_put_back() {
        let want = media();
        let mut live = want.clone();
        let reformatted: serde_json::Value = serde_json::from_str(live.policy.as_deref().unwrap()).unwrap();
        live.policy = Some(serde_json::to_string_pretty(&reformatted).unwrap());
        assert!(want.diff(&live).ops.is_empty(), "the same policy, formatted differently");
        live.versioning = false;
        assert_eq!(want.diff(&live).ops, vec![Op::Bucket(BucketOp::PutVersioning { enabled: true })]);
    }
}
