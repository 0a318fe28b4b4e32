//! The desired-state schema (README's "The desired state"): loading `desired-state/`, with every problem reported at once.
//!
//! No AWS types here: this is what the engineers wrote, checked and typed, with the location of every
//! value a later error may need to point at.

mod constraints;
mod diag;
mod git;
mod keys;
mod load;
mod manifest;
mod validate;
mod walk;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use diag::{Diagnostic, Diagnostics, Loc, Located, SourceFile, did_you_mean};
pub use git::{RevisionError, load_at_revision};
pub use load::{load_dir, load_sources};
pub use manifest::{MANIFEST_PLACEHOLDER, USER_DATA_LIMIT, UserData, gzip};

pub type Map<T> = BTreeMap<String, T>;
pub type Tags = BTreeMap<String, String>;

/// The whole desired state, merged from every `*.toml` below the desired-state folder.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    pub settings: FleetSettings,
    pub network: Network,
    pub security_groups: Map<SecurityGroup>,
    pub images: Map<Image>,
    pub pools: Map<Pool>,
    pub load_balancers: Map<LoadBalancer>,
    pub db_parameter_groups: Map<DbParameterGroup>,
    pub databases: Map<Database>,
    pub sites: Map<Site>,
    /// The folder the fleet was loaded from (bootstrap scripts are relative to it).
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Default)]
pub struct FleetSettings {
    /// Scopes ownership: everything converge creates carries `converge:fleet = name`.
    pub name: String,
    pub region: String,
    pub account: Option<String>,
    pub dns_zone: Option<String>,
    /// A run refuses to delete more than this many objects (a guard against a mistaken `desired-state/`).
    pub max_deletes: usize,
    /// A listener's certificate must stay valid at least this many days more (else: a warning).
    pub certificate_horizon_days: u32,
    /// `[fleet.lock]`: the S3 object appliers lock; `None`: a local lock file in the desired-state folder.
    pub lock: Option<LockSettings>,
    /// `manage = { database = "no-delete" }`: the management policy of every entity of a table that does not
    /// state its own, by table name.
    pub manage: BTreeMap<String, Manage>,
}

/// How converge manages an object (Crossplane's management policies): `manage = "..."` on an entity, or
/// per table in `[fleet] manage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Manage {
    /// Create, update and delete (the default).
    #[default]
    Full,
    /// Read and report drift; never write.
    Observe,
    /// Create and update; never delete: a replacement is a conflict and, as a table's default (which also
    /// covers what is no longer declared), a removal from the desired state is held.
    NoDelete,
}

impl Manage {
    pub const NAMES: [&'static str; 3] = ["full", "observe", "no-delete"];

    pub fn as_str(self) -> &'static str {
        match self {
            Manage::Full => "full",
            Manage::Observe => "observe",
            Manage::NoDelete => "no-delete",
        }
    }

    pub fn parse(s: &str) -> Option<Manage> {
        match s {
            "full" => Some(Manage::Full),
            "observe" => Some(Manage::Observe),
            "no-delete" => Some(Manage::NoDelete),
            _ => None,
        }
    }
}

/// What a declaration says of how converge takes its objects: `adopt = true` (an untagged look-alike with
/// its AWS name becomes the fleet's), `manage` (`None`: the table's default in `[fleet] manage`, else
/// full) and `reconcile_every` (the loop acts on its objects at most this often; `None`: every pass).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    pub adopt: bool,
    pub manage: Option<Manage>,
    pub reconcile_every: Option<std::time::Duration>,
}

/// The tables whose entities take a management policy, as `[fleet] manage` names them.
pub const MANAGED_TABLES: [&str; 7] = ["security_group", "load_balancer", "pool", "db_parameter_group", "database", "site", "alarm"];

/// `[fleet.lock]`: where the apply lock lives and how long its lease runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockSettings {
    /// The user's bucket (converge never creates it).
    pub bucket: String,
    /// Default `converge/<fleet>.lock`.
    pub key: String,
    /// Default 2 minutes; renewed every third of it.
    pub lease: std::time::Duration,
}

pub const DEFAULT_MAX_DELETES: usize = 20;
pub const DEFAULT_CERTIFICATE_HORIZON_DAYS: u32 = 21;

#[derive(Debug, Clone, Default)]
pub struct Network {
    pub vpc: Option<String>,
    pub zones: Vec<String>,
    pub subnets: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SecurityGroup {
    pub loc: Loc,
    /// The AWS group name; defaults to `<fleet>-<name>`.
    pub name: Option<String>,
    pub description: Option<String>,
    pub ingress: Vec<Rule>,
    /// `None`: AWS's default (all traffic to anywhere). `Some(vec![])`: no egress at all.
    pub egress: Option<Vec<Rule>>,
    pub tags: Tags,
    pub policy: Policy,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    All,
    /// Any other IP protocol, by number (50 is ESP): AWS allows it on every port.
    Number(u8),
}

/// One rule as written: a port range over a protocol, from (or to) CIDRs and groups of this fleet.
#[derive(Debug, Clone)]
pub struct Rule {
    pub loc: Loc,
    pub protocol: Protocol,
    /// Inclusive range; `None` for every port (and for every protocol but tcp and udp).
    pub ports: Option<(u16, u16)>,
    /// ICMP (or ICMPv6) type and, when one is written, code; `None` for every type.
    pub icmp: Option<(u8, Option<u8>)>,
    pub cidrs: Vec<ipnet::IpNet>,
    /// Security groups of this fleet, by name (`from` for ingress, `to` for egress).
    pub groups: Vec<Located<String>>,
    /// What the rule is for: EC2 keeps it beside each of its peers.
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Image {
    Id { loc: Loc, id: String },
    Lookup { loc: Loc, owners: Vec<String>, name: String },
}

#[derive(Debug, Clone)]
pub struct Pool {
    pub loc: Loc,
    /// The AWS name of the auto-scaling group (and, unless `template_name`, of the launch template);
    /// defaults to `<fleet>-<name>`.
    pub name: Option<String>,
    pub template_name: Option<String>,
    pub image: Located<String>,
    pub instance_type: String,
    pub security_groups: Vec<Located<String>>,
    pub key_pair: Option<String>,
    pub bootstrap: Option<Located<String>>,
    /// The bootstrap script's text, read by [`load_dir`] (user-data template: `{{manifest}}` marks where the
    /// pool's deploy manifest goes).
    pub bootstrap_text: Option<String>,
    pub min: u32,
    pub max: u32,
    pub desired: Option<u32>,
    pub cpu_target: Option<u32>,
    /// Auto-scaling notifications (launch, terminate, and their failures) go to this SNS topic.
    pub notify_topic: Option<String>,
    /// CloudWatch alarms on the pool's group: `cpu_above`.
    pub alarms: Option<Alarms>,
    pub health_check: PoolHealthCheck,
    /// Which instances a scale-in terminates first, in order (AWS's names, or Lambda function ARNs); empty:
    /// AWS's `Default`.
    pub termination_policies: Vec<String>,
    pub refresh: Refresh,
    pub zones: Vec<String>,
    pub subnets: Vec<String>,
    pub tags: Tags,
    /// The tags every instance is launched with, exactly; `None`: the fleet tag, a `Name` and `tags`.
    pub instance_tags: Option<Tags>,
    pub policy: Policy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolHealthCheck {
    /// `EC2` or `ELB`.
    pub kind: String,
    pub grace_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh {
    pub min_healthy_percent: u32,
    pub warmup_seconds: Option<u32>,
    pub auto_rollback: bool,
}

#[derive(Debug, Clone)]
pub struct LoadBalancer {
    pub loc: Loc,
    /// The AWS load balancer name (at most 32 characters); defaults to `<fleet>-<name>`.
    pub name: Option<Located<String>>,
    pub pool: Option<Located<String>>,
    pub internal: bool,
    pub security_groups: Vec<Located<String>>,
    pub listeners: Vec<Listener>,
    pub health_check: Option<LbHealthCheck>,
    pub cross_zone: bool,
    pub idle_timeout: u32,
    /// Seconds; 0 disables connection draining.
    pub connection_draining: u32,
    pub zones: Vec<String>,
    pub subnets: Vec<String>,
    pub tags: Tags,
    /// CloudWatch alarms on the load balancer: `unhealthy_hosts_above`.
    pub alarms: Option<Alarms>,
    pub policy: Policy,
}

/// `alarms = { cpu_above = 80, topic = "..." }` on a pool, `{ unhealthy_hosts_above = 0, topic = "..." }` on a
/// load balancer: CloudWatch metric alarms converge owns, posting to the topic when they fire and when they
/// clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarms {
    /// A pool's group: average CPU above this percentage for two periods of five minutes.
    pub cpu_above: Option<u32>,
    /// A load balancer: more unhealthy instances than this for two periods of a minute.
    pub unhealthy_hosts_above: Option<u32>,
    pub topic: String,
}

#[derive(Debug, Clone)]
pub struct Listener {
    pub loc: Loc,
    pub port: u16,
    /// Upper case, as AWS reports it: HTTP, HTTPS, TCP, SSL.
    pub protocol: String,
    pub instance_port: u16,
    pub instance_protocol: String,
    pub certificate: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbHealthCheck {
    pub target: String,
    pub interval: u32,
    pub timeout: u32,
    pub healthy: u32,
    pub unhealthy: u32,
}

#[derive(Debug, Clone)]
pub struct DbParameterGroup {
    pub loc: Loc,
    /// The AWS name; defaults to `<fleet>-<name>`.
    pub name: Option<String>,
    pub family: String,
    pub description: Option<String>,
    pub parameters: BTreeMap<String, String>,
    /// Parameters declared `apply = "pending-reboot"`: changed at the next reboot even where AWS could now.
    pub at_reboot: std::collections::BTreeSet<String>,
    pub tags: Tags,
    pub policy: Policy,
}

#[derive(Debug, Clone)]
pub struct Database {
    pub loc: Loc,
    /// The RDS identifier; defaults to `<fleet>-<name>`.
    pub name: Option<String>,
    pub replica_of: Option<Located<String>>,
    pub engine: Option<String>,
    pub version: Option<String>,
    pub class: String,
    pub storage_gb: Option<u32>,
    pub multi_az: bool,
    pub parameter_group: Option<Located<String>>,
    pub security_groups: Vec<Located<String>>,
    pub subnet_group: Option<String>,
    pub zone: Option<String>,
    pub backup_retention_days: Option<u32>,
    pub maintenance_window: Option<String>,
    pub backup_window: Option<String>,
    pub deletion_protection: bool,
    pub username: Option<String>,
    /// The name of the environment variable holding the master password; the password itself is never kept.
    pub password_env: Option<String>,
    pub apply_immediately: bool,
    pub allow_major_version_upgrade: bool,
    pub promote: bool,
    /// A CNAME converge owns, to the instance's endpoint: the name every site uses.
    pub hostname: Option<Located<String>>,
    /// Its TTL, seconds (default [`DB_HOSTNAME_TTL`]).
    pub hostname_ttl: u32,
    pub tags: Tags,
    pub policy: Policy,
}

/// The TTL of a database's hostname: short, so that a cut-over reaches every site within a minute.
pub const DB_HOSTNAME_TTL: u32 = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsMode {
    Client,
    Managed,
}

#[derive(Debug, Clone)]
pub struct Site {
    pub loc: Loc,
    pub domain: String,
    pub aliases: Vec<String>,
    pub pool: Located<String>,
    pub load_balancer: Option<Located<String>>,
    /// What the pool deploys for the site; `None`: the site is served, but not deployed by converge (a site
    /// adopted from a hand-built pool, until its repo and commit are declared).
    pub deploy: Option<Deploy>,
    pub dns: DnsMode,
    pub media_bucket: Option<String>,
    pub notify: Vec<String>,
    /// For the site's records and its bucket.
    pub policy: Policy,
}

/// A site's line of its pool's deploy manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploy {
    pub repo: String,
    pub branch: String,
    pub commit: String,
}

/// Whether a security group reference is an id (`sg-` and 8 or 17 hexadecimal digits): a group outside the
/// fleet, referred to as it is, rather than one of the fleet's by name.
pub fn is_group_id(name: &str) -> bool {
    constraints::resource_id(name, "sg", "security group").is_ok()
}

/// A DNS name as converge compares it: lower case, without the trailing dot of its fully qualified form
/// (DNS names are case-insensitive; Route 53 answers with the dot, people write them without).
pub fn dns_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Fleet {
    /// The management policy an entity of `table` has: its own, else the table's default, else full.
    pub fn manage(&self, table: &str, policy: &Policy) -> Manage {
        policy.manage.or_else(|| self.settings.manage.get(table).copied()).unwrap_or_default()
    }

    /// The AWS name of a security group of this fleet.
    pub fn security_group_name(&self, name: &str) -> String {
        match self.security_groups.get(name).and_then(|g| g.name.clone()) {
            Some(n) => n,
            None => format!("{}-{name}", self.settings.name),
        }
    }

    /// The AWS name of a pool's auto-scaling group.
    pub fn pool_name(&self, name: &str) -> String {
        self.pools.get(name).and_then(|p| p.name.clone()).unwrap_or_else(|| format!("{}-{name}", self.settings.name))
    }

    /// The AWS name of a pool's launch template: its `template_name`, else the group's.
    pub fn template_name(&self, name: &str) -> String {
        self.pools.get(name).and_then(|p| p.template_name.clone()).unwrap_or_else(|| self.pool_name(name))
    }

    /// The AWS name of a DB parameter group of this fleet.
    pub fn db_parameter_group_name(&self, name: &str) -> String {
        self.db_parameter_groups.get(name).and_then(|g| g.name.clone()).unwrap_or_else(|| format!("{}-{name}", self.settings.name))
    }

    /// The RDS identifier of a database of this fleet.
    /// Whether a database declares a hostname (a record converge owns, outside the sites' zone perhaps).
    pub fn has_hostnames(&self) -> bool {
        self.databases.values().any(|d| d.hostname.is_some())
    }

    pub fn database_identifier(&self, name: &str) -> String {
        self.databases.get(name).and_then(|d| d.name.clone()).unwrap_or_else(|| format!("{}-{name}", self.settings.name))
    }

    /// The AWS name of a load balancer of this fleet.
    pub fn load_balancer_name(&self, name: &str) -> String {
        match self.load_balancers.get(name).and_then(|lb| lb.name.as_ref()) {
            Some(n) => n.value.clone(),
            None => format!("{}-{name}", self.settings.name),
        }
    }
}

#[cfg(test)]
mod tests;
