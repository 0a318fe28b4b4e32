//! S3 media buckets. ListBuckets once (the fleet's region's buckets) and, concurrently, the tag index
//! (`tagging`: the fleet's buckets with their tags, in one call); GetBucketTagging only for a bucket with a
//! desired name the index does not hold; then, S3 having no batch read, per bucket of ours (or look-alike)
//! its versioning, policy, public access block and ownership controls, one call each, and, for one no
//! longer desired, whether it is empty, concurrently. A bucket with a desired name is read as soon as the
//! listing names it, beside the index, so the reads wait on no page of it. Other buckets in the account are never read. An
//! import (every bucket of no fleet) reads every bucket's tags instead. Against an emulator endpoint,
//! addressing is path-style (see `Aws::from_conf`).

use std::collections::BTreeMap;

use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
    PublicAccessBlockConfiguration, Tag, Tagging, VersioningConfiguration,
};
use futures_util::{StreamExt, TryStreamExt, stream};

use super::executor::{Answer, AwsExecutor, created, idempotent};
use super::{Aws, AwsError, Owner, Wanted, built, call};
use crate::error::{Class, Classify};
use crate::live::{Found, Look};
use crate::model::Fleet;
use crate::resource::{BucketOp, BucketSpec, Kind};

/// A bucket's configuration that S3 says is not there (NoSuchTagSet, NoSuchBucketPolicy, ...: class not
/// found) is absent, not an error.
fn absent<T>(r: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.class() == Class::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Owned buckets as specs, and look-alikes.
#[derive(Default)]
pub(crate) struct BucketsRead {
    owned: Vec<(crate::resource::Address, BucketSpec)>,
    /// Look-alikes: name, id, fleet tag, and (for one without a fleet tag, which may be adopted) its spec.
    foreign: Vec<Look<BucketSpec>>,
}

impl BucketsRead {
    pub(crate) fn found(self) -> Found<BucketSpec> {
        let mut found = Found { foreign: self.foreign, ..Found::default() };
        for (address, spec) in self.owned {
            found.own(address, spec.name.clone(), spec);
        }
        found
    }
}

impl Aws {
    pub(crate) async fn read_buckets(&self, fleet: &Fleet, wanted: &Wanted) -> Result<BucketsRead, AwsError> {
        let s3 = &self.s3;
        let list = async {
            let mut names = Vec::new();
            let mut pages = s3.list_buckets().bucket_region(&self.region).max_buckets(1000).into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(call("s3", "ListBuckets", "the account's buckets"))?;
                names.extend(page.buckets().iter().filter_map(|b| b.name()).map(str::to_string));
            }
            Ok::<_, AwsError>(names)
        };
        // A bucket with a desired name has its configuration read as soon as the listing names it, beside the
        // tag index (its owner is most likely the fleet): no round trip waits on the index's pages. The index
        // then says whose it is; a bucket of ours that is no longer desired is read after.
        let listed_and_read = async {
            let names = list.await?;
            let desired: Vec<String> = names.iter().filter(|n| !wanted.all() && wanted.reads_desired(Kind::Bucket, n)).cloned().collect();
            let early = stream::iter(desired)
                .map(|name| async move { Ok::<_, AwsError>((name.clone(), self.bucket_config(&name, true).await?)) })
                .buffer_unordered(super::READS_IN_FLIGHT)
                .try_collect::<BTreeMap<String, BucketSpec>>()
                .await?;
            Ok::<_, AwsError>((names, early))
        };
        // The region's buckets the index holds are the fleet's (a bucket elsewhere is not, whatever its tags).
        let (mut tagged, ask, mut early) = if wanted.all() {
            let (names, early) = listed_and_read.await?;
            (Vec::new(), names, early)
        } else {
            let ((names, early), index) = tokio::try_join!(listed_and_read, self.tag_index(&fleet.settings.name, super::tagging::BUCKETS))?;
            let (mut known, mut ask) = (Vec::new(), Vec::new());
            for name in names {
                match index.bucket(&name) {
                    Some(tags) => known.push((name, tags.clone())),
                    None if wanted.reads_desired(Kind::Bucket, &name) => ask.push(name),
                    None => {}
                }
            }
            (known, ask, early)
        };
        let asked: Vec<(String, BTreeMap<String, String>)> = stream::iter(ask)
            .map(|name| async move {
                let tags = absent(s3.get_bucket_tagging().bucket(&name).send().await.map_err(call("s3", "GetBucketTagging", &name)))?;
                let tags = tags.map(|t| t.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()).unwrap_or_default();
                Ok::<_, AwsError>((name, tags))
            })
            .buffer_unordered(super::READS_IN_FLIGHT)
            .try_collect()
            .await?;
        tagged.extend(asked);
        // Ours, and untagged look-alikes (which may be adopted: see `plan`), are read in full; another fleet's
        // look-alike only blocks.
        let mut read = Vec::new();
        let mut foreign = Vec::new();
        for (name, tags) in tagged {
            match wanted.owner(&fleet.settings.name, Kind::Bucket, &name, &tags) {
                Owner::Other(other) if wanted.contains(Kind::Bucket, &name) => foreign.push((name.clone(), name, other, None)),
                Owner::Other(_) => {}
                owner if wanted.reads(&owner) => {
                    let early = early.remove(&name);
                    read.push((owner, name, tags, early))
                }
                _ => {}
            }
        }
        let read: Vec<(Owner, BucketSpec)> = stream::iter(read)
            .map(|(owner, name, tags, early)| {
                let keep = wanted.contains(Kind::Bucket, &name);
                async move {
                    let spec = match early {
                        Some(spec) => spec,
                        None => self.bucket_config(&name, keep).await?,
                    };
                    Ok::<_, AwsError>((owner, BucketSpec { tags, ..spec }))
                }
            })
            .buffer_unordered(super::READS_IN_FLIGHT)
            .try_collect()
            .await?;
        let mut owned = Vec::new();
        for (owner, spec) in read {
            match owner {
                Owner::Us(address) => owned.push((address, spec)),
                _ => foreign.push((spec.name.clone(), spec.name.clone(), None, Some(spec))),
            }
        }
        Ok(BucketsRead { owned, foreign })
    }

    /// A bucket's configuration, one call each (S3 has no batch read): versioning, policy, public access
    /// block and ownership controls, concurrently, and, unless it is kept (`keep`: its name is desired),
    /// whether it is empty. No tags: the caller has them.
    async fn bucket_config(&self, name: &str, keep: bool) -> Result<BucketSpec, AwsError> {
        let s3 = &self.s3;
        let versioning = async { s3.get_bucket_versioning().bucket(name).send().await.map_err(call("s3", "GetBucketVersioning", name)) };
        let policy = async { absent(s3.get_bucket_policy().bucket(name).send().await.map_err(call("s3", "GetBucketPolicy", name))) };
        let block = async { absent(s3.get_public_access_block().bucket(name).send().await.map_err(call("s3", "GetPublicAccessBlock", name))) };
        // OwnershipControlsNotFoundError: no ownership controls.
        let ownership = async { absent(s3.get_bucket_ownership_controls().bucket(name).send().await.map_err(call("s3", "GetBucketOwnershipControls", name))) };
        // Emptiness matters only to a bucket that is to go.
        let empty = async {
            if keep {
                return Ok(None);
            }
            let out = s3.list_object_versions().bucket(name).max_keys(1).send().await.map_err(call("s3", "ListObjectVersions", name))?;
            Ok::<_, AwsError>(Some(out.versions().is_empty() && out.delete_markers().is_empty()))
        };
        let (versioning, policy, block, ownership, empty) = tokio::try_join!(versioning, policy, block, ownership, empty)?;
        // No configuration: nothing is blocked.
        let block = block.and_then(|b| b.public_access_block_configuration().cloned()).unwrap_or_else(|| PublicAccessBlockConfiguration::builder().build());
        Ok(BucketSpec {
            region: self.region.clone(),
            versioning: versioning.status() == Some(&BucketVersioningStatus::Enabled),
            policy: policy.and_then(|p| p.policy().map(str::to_string)),
            block_public_acls: block.block_public_acls() == Some(true),
            ignore_public_acls: block.ignore_public_acls() == Some(true),
            block_public_policy: block.block_public_policy() == Some(true),
            restrict_public_buckets: block.restrict_public_buckets() == Some(true),
            object_ownership: ownership.and_then(|o| o.ownership_controls().and_then(|c| c.rules().first()).map(|r| r.object_ownership().as_str().to_string())),
            tags: BTreeMap::new(),
            empty,
            name: name.to_string(),
        })
    }
}

/// The four flags, as the spec or the operation gives them.
fn public_access_block(
    block_public_acls: bool,
    ignore_public_acls: bool,
    block_public_policy: bool,
    restrict_public_buckets: bool,
) -> PublicAccessBlockConfiguration {
    PublicAccessBlockConfiguration::builder()
        .block_public_acls(block_public_acls)
        .ignore_public_acls(ignore_public_acls)
        .block_public_policy(block_public_policy)
        .restrict_public_buckets(restrict_public_buckets)
        .build()
}

fn ownership_controls(address: &crate::resource::Address, ownership: &str) -> Result<OwnershipControls, AwsError> {
    let rule =
        OwnershipControlsRule::builder().object_ownership(ObjectOwnership::from(ownership)).build().map_err(built(format!("{address} ownership rule")))?;
    OwnershipControls::builder().rules(rule).build().map_err(built(format!("{address} ownership controls")))
}

fn tagging(tags: &BTreeMap<String, String>) -> Result<Tagging, AwsError> {
    let set = tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(built(format!("tag {k}")))).collect::<Result<Vec<_>, _>>()?;
    Tagging::builder().set_tag_set(Some(set)).build().map_err(built("tags"))
}

impl AwsExecutor {
    pub(super) async fn run_bucket(&self, change: &crate::plan::Change, op: &BucketOp) -> Result<(), AwsError> {
        let s3 = &self.aws.s3;
        let address = &change.address;
        let bucket = change.name.as_str();
        let versioning = |enabled: bool| {
            VersioningConfiguration::builder().status(if enabled { BucketVersioningStatus::Enabled } else { BucketVersioningStatus::Suspended }).build()
        };
        match op {
            BucketOp::Create { spec } => {
                let mut req = s3.create_bucket().bucket(&spec.name);
                // us-east-1 is the one region that takes no location constraint.
                if spec.region != "us-east-1" {
                    req = req.create_bucket_configuration(
                        CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::from(spec.region.as_str())).build(),
                    );
                }
                // Ours already (`BucketAlreadyOwnedByYou`): an earlier attempt made it and its answer was lost,
                // or a crash cut this create off before its tags (the journal recorded it first); the rest of
                // the create tags it. Someone else's (`BucketAlreadyExists`) is an error.
                if let Answer::AlreadyExists(answer) = created(req.send().await.map_err(call("s3", "CreateBucket", address)))? {
                    let tags = absent(s3.get_bucket_tagging().bucket(&spec.name).send().await.map_err(call("s3", "GetBucketTagging", address)))?;
                    let tags = tags.map(|t| t.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()).unwrap_or_default();
                    self.ours_already(change, "CreateBucket", &spec.tags, Some(&tags), true, answer)?;
                }
            }
            BucketOp::PutVersioning { enabled } => {
                s3.put_bucket_versioning().bucket(bucket).versioning_configuration(versioning(*enabled)).send().await.map_err(call(
                    "s3",
                    "PutBucketVersioning",
                    address,
                ))?;
            }
            BucketOp::PutPolicy { policy } => {
                s3.put_bucket_policy().bucket(bucket).policy(policy).send().await.map_err(call("s3", "PutBucketPolicy", address))?;
            }
            BucketOp::DeletePolicy => {
                s3.delete_bucket_policy().bucket(bucket).send().await.map_err(call("s3", "DeleteBucketPolicy", address))?;
            }
            BucketOp::PutPublicAccessBlock { block_public_acls, ignore_public_acls, block_public_policy, restrict_public_buckets } => {
                s3.put_public_access_block()
                    .bucket(bucket)
                    .public_access_block_configuration(public_access_block(
                        *block_public_acls,
                        *ignore_public_acls,
                        *block_public_policy,
                        *restrict_public_buckets,
                    ))
                    .send()
                    .await
                    .map_err(call("s3", "PutPublicAccessBlock", address))?;
            }
            BucketOp::PutOwnershipControls { ownership } => {
                s3.put_bucket_ownership_controls().bucket(bucket).ownership_controls(ownership_controls(address, ownership)?).send().await.map_err(call(
                    "s3",
                    "PutBucketOwnershipControls",
                    address,
                ))?;
            }
            // No tags left (a bucket forgotten): S3 removes a tag set with its own call.
            BucketOp::PutTags { tags } if tags.is_empty() => {
                s3.delete_bucket_tagging().bucket(bucket).send().await.map_err(call("s3", "DeleteBucketTagging", address))?;
            }
            BucketOp::PutTags { tags } => {
                s3.put_bucket_tagging().bucket(bucket).tagging(tagging(tags)?).send().await.map_err(call("s3", "PutBucketTagging", address))?;
            }
            BucketOp::Delete { name } => {
                let r = s3.delete_bucket().bucket(name).send().await;
                idempotent(r.map(drop).map_err(call("s3", "DeleteBucket", address)), Class::NotFound)?;
            }
        }
        Ok(())
    }
}
