//! `converge sites`: the migration sheet, live. One row per site: its names, its record, who controls its
//! DNS, where its public names resolve, its pool and load balancer, the commit its pool's live launch
//! template deploys against the desired one, its media bucket, its certificate, its alarms, the
//! integrations to tell, and a status that says what is left to do. Pure: from the fleet, a plan, what was
//! read and what the DNS answered (the lookups are the CLI's).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use serde::Serialize;

use crate::live::Live;
use crate::model::{DnsMode, Fleet};
use crate::plan::Plan;
use crate::resource::{Address, Kind, Spec, alarm};

/// What a DNS lookup of one name answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Lookup {
    /// The names the answer passed through (CNAME targets: lower case, no trailing dot), and its addresses.
    Found { via: Vec<String>, addresses: BTreeSet<IpAddr> },
    /// No such name, or no address for it.
    NotFound,
    /// No answer (a time-out, a refusal, a server failure): where the name points is not known.
    Failed { error: String },
}

/// Lookups by name (lower case, no trailing dot).
pub type Lookups = BTreeMap<String, Lookup>;

/// What the sheet needs to say where a site's names resolve.
#[derive(Debug, Clone, Copy)]
pub struct Resolution<'a> {
    pub lookups: &'a Lookups,
    /// Load balancers' DNS names, by their AWS names.
    pub balancer_dns: &'a BTreeMap<String, String>,
}

/// Whether one public name reaches the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Points {
    /// Through the site's record or its load balancer's name, or to their addresses.
    Here,
    Elsewhere,
    NotFound,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameCheck {
    pub name: String,
    pub points: Points,
    /// Where it points instead (`CNAME old.host.net`, `203.0.113.7`), or why it is not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// How the sheet is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SheetFormat {
    Text,
    Csv,
    Markdown,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub site: String,
    pub domain: String,
    pub aliases: Vec<String>,
    /// `<site>.<dns_zone>`, when the fleet has a zone and the site a load balancer.
    pub record: Option<String>,
    /// `client` or `managed`.
    pub dns: &'static str,
    /// Each public name's lookup; `None` when nothing was looked up (`--resolver none`).
    pub resolves: Option<Vec<NameCheck>>,
    pub pool: String,
    pub load_balancer: Option<String>,
    /// The commit the pool's live launch template deploys (`None`: not deployed yet).
    pub deployed: Option<String>,
    pub desired: Option<String>,
    /// `versioned`, `not versioned`, `missing`, or none declared.
    pub bucket: Option<String>,
    /// `ok`, or what is wrong with the listener's certificate for the site's names; `-` without one.
    pub certificate: String,
    /// Days until its soonest certificate expires.
    pub certificate_days_left: Option<i64>,
    /// The alarms on its pool and load balancer (their names in the fleet), and those missing from AWS.
    pub alarms: Vec<String>,
    pub alarms_missing: Vec<String>,
    pub notify: Vec<String>,
    /// What is left: `done`, or each thing pending.
    pub status: String,
    #[serde(skip)]
    pub pending: bool,
}

/// The commit a live manifest line deploys for `site` (`site\tdomain\taliases\trepo\tbranch\tcommit`).
fn deployed_commit(user_data: &str, site: &str) -> Option<String> {
    user_data.lines().find_map(|l| {
        let fields: Vec<&str> = l.split('\t').collect();
        (fields.len() == 6 && fields[0] == site).then(|| fields[5].to_string())
    })
}

/// The site's record, when the fleet has a zone and the site a load balancer.
fn record_of(fleet: &Fleet, site: &str) -> Option<String> {
    let zone = crate::model::dns_name(fleet.settings.dns_zone.as_deref()?);
    fleet.sites[site].load_balancer.as_ref().map(|_| format!("{site}.{zone}"))
}

/// What a public name of the site may resolve through: its record, and its load balancer's DNS name.
fn targets(fleet: &Fleet, live: &Live, balancer_dns: &BTreeMap<String, String>, site: &str) -> Vec<String> {
    let balancer = fleet.sites[site].load_balancer.as_ref().and_then(|lb| match live.spec(&Address::new(Kind::LoadBalancer, &lb.value)) {
        Some(Spec::LoadBalancer(spec)) => balancer_dns.get(&spec.name).map(|d| crate::model::dns_name(d)),
        _ => None,
    });
    record_of(fleet, site).into_iter().chain(balancer).collect()
}

fn public_names(fleet: &Fleet, site: &str) -> Vec<String> {
    let s = &fleet.sites[site];
    std::iter::once(&s.domain).chain(&s.aliases).map(|n| crate::model::dns_name(n)).collect()
}

/// Every name the sheet looks up: each site's public names, its record and its load balancer's name.
pub fn names_to_look_up(fleet: &Fleet, live: &Live, balancer_dns: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for site in fleet.sites.keys() {
        names.extend(public_names(fleet, site));
        names.extend(targets(fleet, live, balancer_dns, site));
    }
    names
}

/// Where one public name points, against the names and addresses that reach the site.
fn check(name: &str, targets: &[String], lookups: &Lookups) -> NameCheck {
    let target_addresses: BTreeSet<&IpAddr> = targets
        .iter()
        .filter_map(|t| match lookups.get(t) {
            Some(Lookup::Found { addresses, .. }) => Some(addresses),
            _ => None,
        })
        .flatten()
        .collect();
    let (points, detail) = match lookups.get(name) {
        Some(Lookup::Found { via, addresses }) => {
            if targets.iter().any(|t| t == name || via.contains(t)) || addresses.iter().all(|a| target_addresses.contains(a)) {
                (Points::Here, None)
            } else if let Some(last) = via.last() {
                (Points::Elsewhere, Some(format!("CNAME {last}")))
            } else {
                (Points::Elsewhere, Some(addresses.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(" ")))
            }
        }
        Some(Lookup::NotFound) => (Points::NotFound, None),
        Some(Lookup::Failed { error }) => (Points::Unknown, Some(error.clone())),
        None => (Points::Unknown, Some("not looked up".into())),
    };
    NameCheck { name: name.to_string(), points, detail }
}

/// The rows, from the plan, what was read, the days each site's certificate has left
/// (`plan::coverage::days_left`) and, when names were looked up, their answers.
pub fn rows(fleet: &Fleet, plan: &Plan, live: &Live, certificate_days: &BTreeMap<String, i64>, resolution: Option<Resolution>) -> Vec<Row> {
    let mut out = Vec::new();
    for (name, s) in &fleet.sites {
        let record = record_of(fleet, name);
        let resolves = resolution.map(|r| {
            let targets = targets(fleet, live, r.balancer_dns, name);
            public_names(fleet, name).iter().map(|n| check(n, &targets, r.lookups)).collect::<Vec<_>>()
        });
        let alarms: Vec<String> = [
            fleet.pools.get(&s.pool.value).and_then(|p| p.alarms.as_ref()?.cpu_above).map(|_| alarm::cpu_alarm(&s.pool.value)),
            s.load_balancer
                .as_ref()
                .and_then(|lb| fleet.load_balancers.get(&lb.value)?.alarms.as_ref()?.unhealthy_hosts_above.map(|_| alarm::hosts_alarm(&lb.value))),
        ]
        .into_iter()
        .flatten()
        .collect();
        let alarms_missing: Vec<String> = alarms.iter().filter(|a| live.spec(&Address::new(Kind::Alarm, a.as_str())).is_none()).cloned().collect();
        let template = match live.spec(&Address::new(Kind::LaunchTemplate, &s.pool.value)) {
            Some(Spec::LaunchTemplate(t)) => Some(t),
            _ => None,
        };
        let deployed = template.and_then(|t| deployed_commit(&t.data.user_data, name));
        let desired = s.deploy.as_ref().map(|d| d.commit.clone());
        let bucket = s.media_bucket.as_ref().map(|b| match live.spec(&Address::new(Kind::Bucket, b)) {
            Some(Spec::Bucket(spec)) if spec.versioning => "versioned".to_string(),
            Some(Spec::Bucket(_)) => "not versioned".to_string(),
            _ => "missing".to_string(),
        });
        let gaps: Vec<&str> = plan.certificate_gaps.iter().filter(|g| &g.site == name).map(|g| g.message.as_str()).collect();
        let certificate_days_left = certificate_days.get(name).copied();
        let certificate = match certificate_days_left {
            _ if !gaps.is_empty() => gaps.join("; "),
            Some(days) => format!("ok, {days} day(s) left"),
            None => "-".to_string(),
        };
        let mut left = Vec::new();
        let changes = plan.changes.iter().filter(|c| c.sites.contains(name)).count();
        if changes > 0 {
            left.push(format!("{changes} change(s) to apply"));
        }
        let held = plan.held.iter().filter(|h| h.change.sites.contains(name)).count();
        if held > 0 {
            left.push(format!("{held} change(s) held"));
        }
        if desired.is_some() && deployed != desired {
            left.push("deploy pending".to_string());
        }
        if !gaps.is_empty() {
            left.push("certificate".to_string());
        }
        if bucket.as_deref().is_some_and(|b| b != "versioned") {
            left.push("media bucket".to_string());
        }
        let not_here: Vec<&str> =
            resolves.iter().flatten().filter(|c| matches!(c.points, Points::Elsewhere | Points::NotFound)).map(|c| c.name.as_str()).collect();
        if !not_here.is_empty() {
            let who = if s.dns == DnsMode::Managed { "DNS not resolving yet" } else { "client to point DNS" };
            left.push(format!("{who}: {}", not_here.join(" ")));
        }
        let pending = !left.is_empty();
        out.push(Row {
            site: name.clone(),
            domain: s.domain.clone(),
            aliases: s.aliases.clone(),
            record,
            dns: if s.dns == DnsMode::Managed { "managed" } else { "client" },
            resolves,
            pool: s.pool.value.clone(),
            load_balancer: s.load_balancer.as_ref().map(|l| l.value.clone()),
            deployed,
            desired,
            bucket,
            certificate,
            certificate_days_left,
            alarms,
            alarms_missing,
            notify: s.notify.clone(),
            status: if pending { left.join(", ") } else { "done".to_string() },
            pending,
        });
    }
    out
}

const COLUMNS: usize = 14;
const HEADERS: [&str; COLUMNS] =
    ["site", "domain", "aliases", "record", "dns", "resolves", "pool", "load balancer", "commit", "media bucket", "certificate", "alarms", "notify", "status"];

/// `yes` when every public name reaches the site, else each name that does not, and where it goes.
fn resolves_cell(checks: &[NameCheck]) -> String {
    if checks.iter().all(|c| c.points == Points::Here) {
        return "yes".into();
    }
    let say = |c: &NameCheck| {
        let what = match c.points {
            Points::Here => return None,
            Points::Elsewhere => "elsewhere",
            Points::NotFound => "not found",
            Points::Unknown => "unknown",
        };
        Some(match &c.detail {
            Some(d) => format!("{}: {what} ({d})", c.name),
            None => format!("{}: {what}", c.name),
        })
    };
    checks.iter().filter_map(say).collect::<Vec<_>>().join("; ")
}

fn cells(r: &Row) -> [String; COLUMNS] {
    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let commit = match (&r.deployed, &r.desired) {
        (_, None) => "-".to_string(),
        (Some(d), Some(w)) if d == w => d.clone(),
        (d, Some(w)) => format!("{} -> {w}", d.as_deref().unwrap_or("none")),
    };
    let list = |v: &[String]| if v.is_empty() { "-".to_string() } else { v.join(" ") };
    [
        r.site.clone(),
        r.domain.clone(),
        list(&r.aliases),
        or(&r.record),
        r.dns.to_string(),
        r.resolves.as_deref().map(resolves_cell).unwrap_or_else(|| "-".into()),
        r.pool.clone(),
        or(&r.load_balancer),
        commit,
        or(&r.bucket),
        r.certificate.clone(),
        list(&r.alarms.iter().map(|a| if r.alarms_missing.contains(a) { format!("{a} (missing)") } else { a.clone() }).collect::<Vec<_>>()),
        list(&r.notify),
        r.status.clone(),
    ]
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

pub fn render(rows: &[Row], format: SheetFormat) -> String {
    let table: Vec<[String; COLUMNS]> = rows.iter().map(cells).collect();
    let mut out = String::new();
    match format {
        SheetFormat::Json => {
            out = serde_json::to_string_pretty(rows).expect("rows serialise");
            out.push('\n');
        }
        SheetFormat::Csv => {
            let _ = writeln!(out, "{}", HEADERS.join(","));
            for row in &table {
                let _ = writeln!(out, "{}", row.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(","));
            }
        }
        SheetFormat::Markdown => {
            let _ = writeln!(out, "| {} |", HEADERS.join(" | "));
            let _ = writeln!(out, "|{}", " --- |".repeat(HEADERS.len()));
            for row in &table {
                let _ = writeln!(out, "| {} |", row.iter().map(|c| c.replace('|', "\\|")).collect::<Vec<_>>().join(" | "));
            }
        }
        SheetFormat::Text => {
            let mut widths = HEADERS.map(str::len);
            for row in &table {
                for (w, c) in widths.iter_mut().zip(row) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let line = |cells: Vec<&str>| {
                let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:w$}")).collect();
                padded.join("  ").trim_end().to_string()
            };
            let _ = writeln!(out, "{}", line(HEADERS.to_vec()));
            for row in &table {
                let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
            }
            let pending = rows.iter().filter(|r| r.pending).count();
            let _ = writeln!(out, "\n{} site(s), {pending} with something left to do.", rows.len());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{fleet_of, live_of, plan_of};

    const SITES: &str = r#"
[fleet]
name = "agency"
region = "eu-west-1"
dns_zone = "sites.agency.net"

[security_group.lb]
[load_balancer.shared]
security_groups = ["lb"]
listeners = [
  { port = 80, protocol = "http", instance_port = 80 },
  { port = 443, protocol = "https", instance_port = 80, certificate = "arn:aws:iam::123456789012:server-certificate/sites" },
]

[pool.web]
image = "nightly"
instance_type = "t3.large"
min = 1
max = 2
alarms = { cpu_above = 80, topic = "arn:aws:sns:eu-west-1:123456789012:ops" }
[image.nightly]
id = "ami-12345678"

[site.acme]
domain = "www.acme.example"
aliases = ["acme.example"]
dns = "managed"
pool = "web"
load_balancer = "shared"
repo = "git@git.agency.net:sites/acme.git"
commit = "4f2a9c1e0b"
media_bucket = "agency-acme-media"
notify = ["payments: allow the new addresses"]

[site.globex]
domain = "www.globex.example"
pool = "web"
load_balancer = "shared"
repo = "git@git.agency.net:sites/globex.git"
commit = "1111111"
"#;

    const LB_DNS: &str = "agency-shared-1234.eu-west-1.elb.amazonaws.com";

    fn balancer_dns() -> BTreeMap<String, String> {
        BTreeMap::from([("agency-shared".to_string(), format!("{LB_DNS}."))])
    }

    fn found(via: &[&str], addresses: &[&str]) -> Lookup {
        Lookup::Found { via: via.iter().map(|v| v.to_string()).collect(), addresses: addresses.iter().map(|a| a.parse().unwrap()).collect() }
    }

    /// The DNS once every site has moved: `www` names through the site's record, apexes to the load
    /// balancer's addresses (an alias answers with addresses only).
    fn moved() -> Lookups {
        Lookups::from([
            ("www.acme.example".into(), found(&["acme.sites.agency.net", LB_DNS], &["192.0.2.10"])),
            ("acme.example".into(), found(&[], &["192.0.2.10"])),
            ("acme.sites.agency.net".into(), found(&[LB_DNS], &["192.0.2.10"])),
            ("www.globex.example".into(), found(&[LB_DNS], &["192.0.2.10"])),
            ("globex.sites.agency.net".into(), found(&[LB_DNS], &["192.0.2.10"])),
            (LB_DNS.into(), found(&[], &["192.0.2.10"])),
        ])
    }

    #[test]
    fn the_names_looked_up_are_the_sites_names_records_and_load_balancers() {
        let live = live_of(SITES);
        let names = names_to_look_up(&fleet_of(SITES), &live, &balancer_dns());
        assert_eq!(names, moved().into_keys().collect::<BTreeSet<_>>());
    }

    #[test]
    fn a_name_reaches_the_site_through_its_record_its_load_balancer_or_their_addresses() {
        let targets = ["acme.sites.agency.net".to_string(), LB_DNS.to_string()];
        let mut lookups = moved();
        let points = |lookups: &Lookups, name: &str| {
            let c = check(name, &targets, lookups);
            (c.points, c.detail)
        };
        assert_eq!(points(&lookups, "www.acme.example"), (Points::Here, None));
        assert_eq!(points(&lookups, "acme.example"), (Points::Here, None), "an alias: by the load balancer's addresses");
        lookups.insert("acme.example".into(), found(&[], &["192.0.2.10", "203.0.113.7"]));
        assert_eq!(points(&lookups, "acme.example"), (Points::Elsewhere, Some("192.0.2.10 203.0.113.7".into())), "one address elsewhere");
        lookups.insert("www.acme.example".into(), found(&["old-host.example.net"], &["203.0.113.7"]));
        assert_eq!(points(&lookups, "www.acme.example"), (Points::Elsewhere, Some("CNAME old-host.example.net".into())));
        lookups.insert("www.acme.example".into(), Lookup::NotFound);
        assert_eq!(points(&lookups, "www.acme.example"), (Points::NotFound, None));
        lookups.insert("www.acme.example".into(), Lookup::Failed { error: "request timed out".into() });
        assert_eq!(points(&lookups, "www.acme.example"), (Points::Unknown, Some("request timed out".into())));
        // The load balancer's name unknown to the resolver: the record's addresses still decide.
        lookups.remove(LB_DNS);
        assert_eq!(points(&lookups, "acme.example").0, Points::Elsewhere);
        lookups.insert("acme.example".into(), found(&[], &["192.0.2.10"]));
        assert_eq!(points(&lookups, "acme.example").0, Points::Here);
    }

    #[test]
    fn the_sheet_says_what_is_left_per_site_in_each_format() {
        // Live: globex still on its old commit, its DNS at the old host; acme's bucket and the pool's alarm
        // not there yet, acme's apex not found.
        let before = SITES.replace("commit = \"1111111\"", "commit = \"0000000\"");
        let mut live = live_of(&before);
        live.objects.remove(&"bucket.agency-acme-media".parse::<Address>().unwrap());
        live.objects.remove(&"alarm.web-cpu-high".parse::<Address>().unwrap());
        let mut plan = plan_of(SITES, &live);
        crate::plan::mark_affected_sites(&fleet_of(SITES), &mut plan);
        let mut lookups = moved();
        lookups.insert("www.globex.example".into(), found(&["old-host.example.net"], &["203.0.113.7"]));
        lookups.insert("acme.example".into(), Lookup::NotFound);
        let balancer_dns = balancer_dns();
        let resolution = Resolution { lookups: &lookups, balancer_dns: &balancer_dns };
        let days = BTreeMap::from([("acme".to_string(), 45), ("globex".to_string(), 45)]);
        let rows = rows(&fleet_of(SITES), &plan, &live, &days, Some(resolution));
        insta::assert_snapshot!("sheet_text", render(&rows, SheetFormat::Text));
        insta::assert_snapshot!("sheet_csv", render(&rows, SheetFormat::Csv));
        insta::assert_snapshot!("sheet_markdown", render(&rows, SheetFormat::Markdown));
        insta::assert_snapshot!("sheet_json", render(&rows, SheetFormat::Json));
        let json: serde_json::Value = serde_json::from_str(&render(&rows, SheetFormat::Json)).unwrap();
        assert_eq!(json[1]["deployed"], "0000000");
        assert_eq!(json[1]["desired"], "1111111");
        assert_eq!(json[1]["resolves"][0], serde_json::json!({ "name": "www.globex.example", "points": "elsewhere", "detail": "CNAME old-host.example.net" }));
        // Without lookups, the column is empty and says nothing is left for DNS.
        let unresolved = super::rows(&fleet_of(SITES), &plan, &live, &days, None);
        assert!(unresolved.iter().all(|r| r.resolves.is_none() && !r.status.contains("DNS")), "{unresolved:#?}");
        // Once applied, nothing is left.
        let done = rows_of_applied();
        assert!(done.iter().all(|r| r.status == "done" && !r.pending), "{done:#?}");
    }

    fn rows_of_applied() -> Vec<Row> {
        let live = live_of(SITES);
        let (lookups, balancer_dns) = (moved(), balancer_dns());
        let resolution = Resolution { lookups: &lookups, balancer_dns: &balancer_dns };
        rows(&fleet_of(SITES), &plan_of(SITES, &live), &live, &BTreeMap::new(), Some(resolution))
    }
}
