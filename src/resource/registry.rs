//! The registry of kinds: one line per kind, in the order a plan lists them. Everything that must know every
//! kind is generated from it: [`Kind`] (with `ALL`, its name and its noun), [`Spec`], [`Op`], the dispatch
//! from a spec or an operation to its kind's [`ResourceKind`] answers, [`desired`], and
//! [`Reads`](crate::live::Reads), what the provider must read (a kind it leaves out does not compile).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::kind::{Context, Observation, Phases, Refusal, ResourceKind};
use super::{Address, Desired, Diff, Environment, Policies};
use super::{
    AlarmSpec, AutoScalingGroupSpec, BucketSpec, DbInstanceSpec, DbParameterGroupSpec, DnsRecordSpec, LaunchTemplateSpec, LoadBalancerSpec, SecurityGroupSpec,
};
use crate::live::{Found, Live};
use crate::model::{Fleet, Site};

macro_rules! registry {
    ($($variant:ident($spec:ty) as $field:ident,)*) => {
        /// Every kind converge manages.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Kind {
            $($variant,)*
        }

        impl Kind {
            pub const ALL: &'static [Kind] = &[$(Kind::$variant,)*];

            /// The kind in addresses, tags and JSON: `security_group`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Kind::$variant => <$spec as ResourceKind>::NAME,)*
                }
            }

            /// The kind in sentences: `security group`.
            pub fn noun(self) -> &'static str {
                match self {
                    $(Kind::$variant => <$spec as ResourceKind>::NOUN,)*
                }
            }

            /// See [`ResourceKind::ADOPT_IN`].
            pub fn adopt_in(self) -> &'static str {
                match self {
                    $(Kind::$variant => <$spec as ResourceKind>::ADOPT_IN,)*
                }
            }

            /// See [`ResourceKind::split_create`].
            pub fn split_create(self, ops: Vec<Op>, together: &BTreeSet<String>) -> Phases {
                match self {
                    $(Kind::$variant => <$spec as ResourceKind>::split_create(ops, together),)*
                }
            }

            /// See [`ResourceKind::tag_command`].
            pub fn tag_command(self, name: &str, id: &str, tags: &[(&str, &str)]) -> String {
                match self {
                    $(Kind::$variant => <$spec as ResourceKind>::tag_command(name, id, tags),)*
                }
            }

            /// See [`ResourceKind::on_site_path`].
            pub fn on_site_path(self, fleet: &Fleet, site: &str, s: &Site) -> Vec<String> {
                match self {
                    $(Kind::$variant => <$spec as ResourceKind>::on_site_path(fleet, site, s),)*
                }
            }
        }

        /// The spec of one object, desired or live, normalised.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        // A plan holds one spec per object (hundreds at most): boxing the big variants would buy nothing.
        #[allow(clippy::large_enum_variant)]
        pub enum Spec {
            $($variant($spec),)*
        }

        $(impl From<$spec> for Spec {
            fn from(s: $spec) -> Spec {
                Spec::$variant(s)
            }
        })*

        /// An AWS operation the plan decided on; the `aws` module turns each into its API calls, nothing more.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        #[allow(clippy::large_enum_variant)]
        pub enum Op {
            $($variant(<$spec as ResourceKind>::Op),)*
        }

        $(impl From<<$spec as ResourceKind>::Op> for Op {
            fn from(op: <$spec as ResourceKind>::Op) -> Op {
                Op::$variant(op)
            }
        })*

        impl Spec {
            pub fn kind(&self) -> Kind {
                match self {
                    $(Spec::$variant(_) => Kind::$variant,)*
                }
            }

            /// The AWS name of the object (what a hand-made look-alike would clash on).
            pub fn aws_name(&self) -> &str {
                match self {
                    $(Spec::$variant(s) => s.aws_name(),)*
                }
            }

            /// Other addresses this object refers to: they must exist before it, and outlive it.
            pub fn references(&self) -> BTreeSet<Address> {
                match self {
                    $(Spec::$variant(s) => s.references(),)*
                }
            }

            /// See [`ResourceKind::waits_for_changes`].
            pub fn waits_for_changes(&self) -> BTreeSet<Address> {
                match self {
                    $(Spec::$variant(s) => s.waits_for_changes(),)*
                }
            }

            /// Attributes shown when the object is created or deleted.
            pub fn describe(&self) -> Vec<(String, String)> {
                match self {
                    $(Spec::$variant(s) => s.describe(),)*
                }
            }

            /// The operations that create the object from nothing.
            pub fn create_ops(&self) -> Vec<Op> {
                match self {
                    $(Spec::$variant(s) => s.create_ops(),)*
                }
            }

            /// The operations that delete this live object, whose id is `id`.
            pub fn delete_ops(&self, id: &str) -> Vec<Op> {
                match self {
                    $(Spec::$variant(s) => s.delete_ops(id),)*
                }
            }

            /// See [`ResourceKind::forget_ops`].
            pub fn forget_ops(&self, id: &str) -> Vec<Op> {
                match self {
                    $(Spec::$variant(s) => s.forget_ops(id),)*
                }
            }

            /// See [`ResourceKind::prepare`].
            pub fn prepare(&mut self, cx: &Context<'_>) {
                match self {
                    $(Spec::$variant(s) => s.prepare(cx),)*
                }
            }

            /// See [`ResourceKind::refuse_replacement`].
            pub fn refuse_replacement(&self, forced: &[&str]) -> Option<Refusal> {
                match self {
                    $(Spec::$variant(s) => s.refuse_replacement(forced),)*
                }
            }

            /// See [`ResourceKind::guard_deletion`].
            pub fn guard_deletion(&self, allow_destroy: bool) -> Option<Refusal> {
                match self {
                    $(Spec::$variant(s) => s.guard_deletion(allow_destroy),)*
                }
            }

            /// See [`ResourceKind::let_go`].
            pub fn let_go(&self, gone: &BTreeSet<String>) -> Vec<Op> {
                match self {
                    $(Spec::$variant(s) => s.let_go(gone),)*
                }
            }

            /// Compares desired (`self`) with live: the same kind, both normalised.
            pub fn diff(&self, live: &Spec) -> Diff {
                match (self, live) {
                    $((Spec::$variant(d), Spec::$variant(l)) => d.diff(l),)*
                    _ => unreachable!("an address has one kind"),
                }
            }

            /// Values AWS or a policy owns that differ from the declaration (shown, never changed).
            pub fn observe(&self, live: &Spec) -> Vec<Observation> {
                match (self, live) {
                    $((Spec::$variant(d), Spec::$variant(l)) => d.observe(l),)*
                    _ => unreachable!("an address has one kind"),
                }
            }

            /// Why a diff cannot be applied now.
            pub fn blocked(&self, diff: &Diff, live: &Spec) -> Option<Refusal> {
                match (self, live) {
                    $((Spec::$variant(d), Spec::$variant(l)) => d.blocked(diff, l),)*
                    _ => unreachable!("an address has one kind"),
                }
            }
        }

        impl Op {
            pub fn kind(&self) -> Kind {
                match self {
                    $(Op::$variant(_) => Kind::$variant,)*
                }
            }

            /// See [`ResourceKind::reads_env`].
            pub fn reads_env(&self) -> Option<&str> {
                match self {
                    $(Op::$variant(op) => <$spec as ResourceKind>::reads_env(op),)*
                }
            }

            /// See [`ResourceKind::batch_key`].
            pub fn batch_key(&self) -> Option<&str> {
                match self {
                    $(Op::$variant(op) => <$spec as ResourceKind>::batch_key(op),)*
                }
            }

            /// Operations of one kind with the same batch `key`, as the call(s) that carry them all.
            pub fn batch(key: &str, ops: Vec<Op>) -> Vec<Op> {
                let Some(kind) = ops.first().map(Op::kind) else { return ops };
                match kind {
                    $(Kind::$variant => {
                        let ops = ops.into_iter().filter_map(|op| match op {
                            Op::$variant(op) => Some(op),
                            #[allow(unreachable_patterns)]
                            _ => None,
                        });
                        <$spec as ResourceKind>::batch(key, ops.collect()).into_iter().map(Op::$variant).collect()
                    })*
                }
            }
        }

        /// What the declarations say of how converge takes their objects: which to adopt, and each one's
        /// management policy (its own, else its table's default in `[fleet] manage`).
        pub fn policies(fleet: &Fleet) -> Policies {
            let mut out = Policies::default();
            $(
                if let Some(m) = fleet.settings.manage.get(<$spec as ResourceKind>::TABLE) {
                    out.by_kind.insert(Kind::$variant, *m);
                }
                for (name, p) in <$spec as ResourceKind>::policies(fleet) {
                    let address = Address::new(Kind::$variant, name);
                    if p.adopt {
                        out.adopt.insert(address.clone());
                    }
                    if let Some(every) = p.reconcile_every {
                        out.reconcile_every.insert(address.clone(), every);
                    }
                    if let Some(m) = p.manage {
                        out.manage.insert(address, m);
                    }
                }
            )*
            out
        }

        /// Every desired spec, by address, from the model.
        pub fn desired(fleet: &Fleet, env: &Environment) -> Desired {
            let mut out = Desired::new();
            $(out.extend(<$spec as ResourceKind>::desired(fleet, env).into_iter().map(|(name, s)| (Address::new(Kind::$variant, name), Spec::$variant(s))));)*
            out
        }

        /// What the provider read, one field per kind: the `aws` module builds it, and a kind it does not
        /// read is a compile error there (not a plan that creates the kind's objects again every time).
        pub struct Reads {
            $(pub $field: Found<$spec>,)*
        }

        impl From<Reads> for Live {
            fn from(reads: Reads) -> Live {
                let mut live = Live::default();
                $(live.absorb(reads.$field);)*
                live
            }
        }
    };
}

registry! {
    SecurityGroup(SecurityGroupSpec) as security_group,
    LoadBalancer(LoadBalancerSpec) as load_balancer,
    LaunchTemplate(LaunchTemplateSpec) as launch_template,
    AutoScalingGroup(AutoScalingGroupSpec) as auto_scaling_group,
    DbParameterGroup(DbParameterGroupSpec) as db_parameter_group,
    DbInstance(DbInstanceSpec) as db_instance,
    DnsRecord(DnsRecordSpec) as dns_record,
    Bucket(BucketSpec) as bucket,
    Alarm(AlarmSpec) as alarm,
}
