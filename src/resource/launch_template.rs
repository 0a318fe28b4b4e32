//! Launch templates: one per pool, holding the image, instance type, security groups, key pair, the tags
//! every instance is launched with, and the user data carrying the pool's deploy manifest. A template
//! changes by a new version with the full data (never copied from a source version); the pool's group is
//! pinned to an explicit version number, so a new version is always a visible change of the group too.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Address, Diff, Environment, FLEET_TAG, FieldChange, GroupRef, Kind, Op, ResourceKind, diff_map, diff_tags, list, owned_tags};
use crate::model::{Fleet, Image, Site};

/// Versions kept besides the one a change creates: the one the group ran until now (what an instance
/// refresh rolls back to) and a couple before it. The default version is never deleted.
pub const KEEP_VERSIONS: usize = 3;

/// An image as a template uses it. Only the id counts; the name is for people (`ami-… (sites-nightly-…)`).
#[derive(Debug, Clone, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl PartialEq for ImageRef {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{} ({name})", self.id),
            None => f.write_str(&self.id),
        }
    }
}

/// What one version of a template holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateData {
    pub image: ImageRef,
    pub instance_type: String,
    pub key_pair: Option<String>,
    pub security_groups: BTreeSet<GroupRef>,
    /// Tags every instance (and its volumes) is launched with: the fleet tag, a Name, the pool's tags.
    pub instance_tags: BTreeMap<String, String>,
    /// The user data as text; `gzip`: AWS is given it gzipped (it is over 16 KB).
    pub user_data: String,
    pub gzip: bool,
}

impl TemplateData {
    /// The bytes AWS is given (before base64).
    pub fn user_data_bytes(&self) -> Vec<u8> {
        if self.gzip { crate::model::gzip(&self.user_data) } else { self.user_data.clone().into_bytes() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchTemplateSpec {
    pub name: String,
    pub data: TemplateData,
    pub tags: BTreeMap<String, String>,
    /// Live only: the versions AWS holds, ascending; `data` is the last one's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<u64>,
    /// Live only: the template's default version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_version: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LtOp {
    /// CreateLaunchTemplate: version 1 with the data, the template tagged as ours.
    Create {
        spec: LaunchTemplateSpec,
    },
    /// CreateLaunchTemplateVersion with the full data. `after`: the newest version when planned, part of the
    /// call's idempotency token (with the data), so that a retried create makes one version, never two.
    CreateVersion {
        data: TemplateData,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<u64>,
    },
    /// DeleteLaunchTemplateVersions of the versions past [`KEEP_VERSIONS`].
    DeleteVersions {
        versions: Vec<u64>,
    },
    AddTags {
        tags: BTreeMap<String, String>,
    },
    RemoveTags {
        keys: Vec<String>,
    },
    Delete {
        id: String,
    },
}

/// The newest of the images found, as (creation date, name, id): by creation date (ISO 8601 sorts as text),
/// then name, then id, so images made in the same second still resolve the same way every time.
pub fn newest_image(found: Vec<(String, String, String)>) -> Option<ImageRef> {
    found.into_iter().max().map(|(_, name, id)| ImageRef { id, name: Some(name) })
}

/// The image a pool's `image` names: resolved by the provider (`env.images`), or, offline, as written.
fn image(fleet: &Fleet, name: &str, env: &Environment) -> ImageRef {
    if let Some(resolved) = env.images.get(name) {
        return resolved.clone();
    }
    match fleet.images.get(name) {
        Some(Image::Id { id, .. }) => ImageRef { id: id.clone(), name: None },
        Some(Image::Lookup { name: pattern, .. }) => ImageRef { id: format!("(newest {pattern})"), name: None },
        None => ImageRef { id: format!("(image.{name})"), name: None },
    }
}

impl ResourceKind for LaunchTemplateSpec {
    const KIND: Kind = Kind::LaunchTemplate;
    const NAME: &'static str = "launch_template";
    const NOUN: &'static str = "launch template";
    const TABLE: &'static str = "pool";
    type Op = LtOp;

    fn desired(fleet: &Fleet, env: &Environment) -> Vec<(String, Self)> {
        fleet.pools.keys().map(|pool| (pool.clone(), Self::from_model(fleet, pool, env))).collect()
    }

    fn policies(fleet: &Fleet) -> Vec<(String, crate::model::Policy)> {
        fleet.pools.iter().map(|(n, p)| (n.clone(), p.policy)).collect()
    }

    fn tag_command(_name: &str, id: &str, tags: &[(&str, &str)]) -> String {
        format!("aws ec2 create-tags --resources {id} --tags {}", super::cli_tags(tags))
    }
    fn aws_name(&self) -> &str {
        &self.name
    }

    fn delete_ops(&self, id: &str) -> Vec<Op> {
        vec![Op::LaunchTemplate(LtOp::Delete { id: id.to_string() })]
    }

    fn forget_ops(&self, _id: &str) -> Vec<Op> {
        vec![Op::LaunchTemplate(LtOp::RemoveTags { keys: super::ownership_keys() })]
    }

    /// The template of the site's pool.
    fn on_site_path(fleet: &Fleet, _site: &str, s: &Site) -> Vec<String> {
        fleet.pools.get(&s.pool.value).map(|_| s.pool.value.clone()).into_iter().collect()
    }

    fn references(&self) -> BTreeSet<Address> {
        self.data.security_groups.iter().filter_map(GroupRef::address).collect()
    }

    fn describe(&self) -> Vec<(String, String)> {
        let d = &self.data;
        let mut out = vec![
            ("name".to_string(), self.name.clone()),
            ("image".to_string(), d.image.to_string()),
            ("instance_type".to_string(), d.instance_type.clone()),
            ("key_pair".to_string(), d.key_pair.clone().unwrap_or_else(|| "none".into())),
            ("security_groups".to_string(), list(&d.security_groups)),
            ("user_data".to_string(), user_data_size(d)),
        ];
        out.extend(d.instance_tags.iter().map(|(k, v)| (format!("instance_tags.{k}"), v.clone())));
        out.extend(self.tags.iter().map(|(k, v)| (format!("tags.{k}"), v.clone())));
        out
    }

    fn create_ops(&self) -> Vec<Op> {
        vec![Op::LaunchTemplate(LtOp::Create { spec: self.clone() })]
    }

    fn diff(&self, live: &LaunchTemplateSpec) -> Diff {
        let mut d = Diff::default();
        let (want, have) = (&self.data, &live.data);
        if want.image != have.image {
            d.fields.push(FieldChange::changed("image", &have.image, &want.image));
        }
        if want.instance_type != have.instance_type {
            d.fields.push(FieldChange::changed("instance_type", &have.instance_type, &want.instance_type));
        }
        if want.key_pair != have.key_pair {
            let show = |k: &Option<String>| k.clone().unwrap_or_else(|| "none".into());
            d.fields.push(FieldChange::changed("key_pair", show(&have.key_pair), show(&want.key_pair)));
        }
        if want.security_groups != have.security_groups {
            d.fields.push(FieldChange::changed("security_groups", list(&have.security_groups), list(&want.security_groups)));
        }
        diff_map("instance_tags", &want.instance_tags, &have.instance_tags, &mut d.fields);
        if want.user_data != have.user_data || want.gzip != have.gzip {
            d.fields.push(user_data_change(have, want));
        }
        if want != have {
            d.ops.push(Op::LaunchTemplate(LtOp::CreateVersion { data: want.clone(), after: live.versions.last().copied() }));
            let old = live.stale_versions();
            if !old.is_empty() {
                d.ops.push(Op::LaunchTemplate(LtOp::DeleteVersions { versions: old }));
            }
        }
        if let Some((add, remove)) = diff_tags(&self.tags, &live.tags, &mut d.fields) {
            if !add.is_empty() {
                d.ops.push(Op::LaunchTemplate(LtOp::AddTags { tags: add }));
            }
            if !remove.is_empty() {
                d.ops.push(Op::LaunchTemplate(LtOp::RemoveTags { keys: remove }));
            }
        }
        d
    }
}

impl LaunchTemplateSpec {
    pub fn from_model(fleet: &Fleet, pool: &str, env: &Environment) -> Self {
        let p = &fleet.pools[pool];
        let address = Address::new(Kind::LaunchTemplate, pool);
        let name = fleet.template_name(pool);
        // Validation refuses a pool whose user data cannot be built; the manifest alone stands in.
        let (user_data, gzip) = fleet.user_data(pool).map_or_else(|_| (fleet.manifest(pool), false), |u| (u.text, u.compressed));
        let instance_tags = p.instance_tags.clone().unwrap_or_else(|| {
            let mut tags = p.tags.clone();
            tags.insert(FLEET_TAG.to_string(), fleet.settings.name.clone());
            tags.insert("Name".to_string(), fleet.pool_name(pool));
            tags
        });
        LaunchTemplateSpec {
            data: TemplateData {
                image: image(fleet, &p.image.value, env),
                instance_type: p.instance_type.clone(),
                key_pair: p.key_pair.clone(),
                security_groups: p.security_groups.iter().map(|g| GroupRef::declared(&g.value)).collect(),
                instance_tags,
                user_data,
                gzip,
            },
            tags: owned_tags(&fleet.settings.name, &address, &p.tags),
            name,
            versions: Vec::new(),
            default_version: None,
        }
    }

    /// The live versions that fall out of the window once a new one is created: all but the newest
    /// [`KEEP_VERSIONS`], never the default.
    fn stale_versions(&self) -> Vec<u64> {
        let keep_from = self.versions.len().saturating_sub(KEEP_VERSIONS);
        self.versions[..keep_from].iter().copied().filter(|v| Some(*v) != self.default_version).collect()
    }

    /// The newest live version.
    pub fn latest(&self) -> Option<u64> {
        self.versions.last().copied()
    }
}

fn user_data_size(d: &TemplateData) -> String {
    let lines = d.user_data.lines().count();
    let gzip = if d.gzip { ", gzipped" } else { "" };
    format!("{} bytes, {lines} lines{gzip}", d.user_data.len())
}

/// The user data as a unified diff of the decoded text (the changed manifest lines with context), and the
/// sites whose manifest lines changed.
fn user_data_change(have: &TemplateData, want: &TemplateData) -> FieldChange {
    let diff = similar::TextDiff::from_lines(&have.user_data, &want.user_data);
    let mut text = diff.unified_diff().context_radius(2).to_string();
    if text.is_empty() && have.gzip != want.gzip {
        text = format!("(same text; {})\n", if want.gzip { "now gzipped: over 16 KB" } else { "no longer gzipped" });
    }
    let mut sites = BTreeSet::new();
    for change in diff.iter_all_changes().filter(|c| c.tag() != similar::ChangeTag::Equal) {
        let line = change.value();
        // Manifest lines: `site<TAB>domain<TAB>...`; other lines are the bootstrap's own.
        if let Some((site, _)) = line.split_once('\t')
            && !site.starts_with('#')
            && !site.contains(char::is_whitespace)
        {
            sites.insert(site.to_string());
        }
    }
    let mut change = FieldChange::changed("user_data", user_data_size(have), user_data_size(want)).diff(text);
    if !sites.is_empty() {
        change = change.note(format!("manifest: {}", sites.into_iter().collect::<Vec<_>>().join(", ")));
    }
    change
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(user_data: &str) -> TemplateData {
        TemplateData {
            image: ImageRef { id: "ami-1".into(), name: Some("nightly-1".into()) },
            instance_type: "t3.large".into(),
            key_pair: None,
            security_groups: BTreeSet::from([GroupRef::Fleet("web".into())]),
            instance_tags: BTreeMap::new(),
            user_data: user_data.into(),
            gzip: false,
        }
    }

    fn spec(user_data: &str, versions: Vec<u64>) -> LaunchTemplateSpec {
        LaunchTemplateSpec { name: "agency-web".into(), data: data(user_data), tags: BTreeMap::new(), versions, default_version: Some(1) }
    }

    #[test]
    fn a_changed_commit_is_a_new_version_with_a_diff_of_the_manifest_line() {
        let old = "#!/bin/sh\n# converge deploy manifest\nacme\tacme.example\t-\trepo\tmain\taaa\nglobex\tglobex.example\t-\trepo\tmain\tbbb\nrun\n";
        let new = old.replace("aaa", "ccc");
        let d = spec(&new, vec![]).diff(&spec(old, (1..=5).collect()));
        assert_eq!(d.fields.len(), 1);
        let f = &d.fields[0];
        assert_eq!(f.note.as_deref(), Some("manifest: acme"));
        insta::assert_snapshot!(f.diff.as_deref().unwrap(), @r"
        @@ -1,5 +1,5 @@
         #!/bin/sh
         # converge deploy manifest
        -acme	acme.example	-	repo	main	aaa
        +acme	acme.example	-	repo	main	ccc
         globex	globex.example	-	repo	main	bbb
         run
        ");
        // A new version, then versions 2 (1 is the default) past the newest three.
        assert_eq!(
            d.ops,
            vec![Op::LaunchTemplate(LtOp::CreateVersion { data: data(&new), after: Some(5) }), Op::LaunchTemplate(LtOp::DeleteVersions { versions: vec![2] })]
        );
    }

    #[test]
    fn the_newest_image_wins_and_ties_break_by_name_then_id() {
        let img = |d: &str, n: &str, id: &str| (d.to_string(), n.to_string(), id.to_string());
        let found = vec![img("2026-11-24T01:00:00.000Z", "nightly-24", "ami-9"), img("2026-11-25T01:00:00.000Z", "nightly-25", "ami-1")];
        assert_eq!(newest_image(found).unwrap().id, "ami-1");
        let tie = vec![img("2026-11-25T01:00:00.000Z", "nightly-25b", "ami-1"), img("2026-11-25T01:00:00.000Z", "nightly-25a", "ami-2")];
        assert_eq!(newest_image(tie.clone()).unwrap().to_string(), "ami-1 (nightly-25b)");
        assert_eq!(newest_image(tie.into_iter().rev().collect()).unwrap().id, "ami-1");
        assert!(newest_image(Vec::new()).is_none());
    }

    #[test]
    fn the_image_name_is_for_people_only() {
        let mut live = spec("x", vec![1]);
        live.data.image.name = None;
        assert!(spec("x", vec![]).diff(&live).fields.is_empty());
        live.data.image.id = "ami-0".into();
        let d = spec("x", vec![]).diff(&live);
        assert_eq!(d.fields, vec![FieldChange::changed("image", "ami-0", "ami-1 (nightly-1)")]);
    }
}
