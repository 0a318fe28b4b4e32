//! `converge sites`: the migration sheet, live. One row per site: its names, its record, who controls its
//! DNS, its pool and load balancer, the commit its pool's live launch template deploys against the desired
//! one, its media bucket, its certificate, the integrations to tell, and a status that says what is left
//! to do. Pure: from the fleet, a plan and what was read.

use std::fmt::Write as _;

use serde::Serialize;

use crate::live::Live;
use crate::model::{DnsMode, Fleet};
use crate::plan::Plan;
use crate::resource::{Address, Kind, Spec};

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
    pub pool: String,
    pub load_balancer: Option<String>,
    /// The commit the pool's live launch template deploys (`None`: not deployed yet).
    pub deployed: Option<String>,
    pub desired: Option<String>,
    /// `versioned`, `not versioned`, `missing`, or none declared.
    pub bucket: Option<String>,
    /// `ok`, or what is wrong with the listener's certificate for the site's names.
    pub certificate: String,
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

pub fn rows(fleet: &Fleet, plan: &Plan, live: &Live) -> Vec<Row> {
    let zone = fleet.settings.dns_zone.as_deref().map(|z| z.trim_end_matches('.').to_ascii_lowercase());
    let mut out = Vec::new();
    for (name, s) in &fleet.sites {
        let record = zone.as_ref().filter(|_| s.load_balancer.is_some()).map(|z| format!("{name}.{z}"));
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
        let certificate = if gaps.is_empty() { "ok".to_string() } else { gaps.join("; ") };
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
        let pending = !left.is_empty();
        out.push(Row {
            site: name.clone(),
            domain: s.domain.clone(),
            aliases: s.aliases.clone(),
            record,
            dns: if s.dns == DnsMode::Managed { "managed" } else { "client" },
            pool: s.pool.value.clone(),
            load_balancer: s.load_balancer.as_ref().map(|l| l.value.clone()),
            deployed,
            desired,
            bucket,
            certificate,
            notify: s.notify.clone(),
            status: if pending { left.join(", ") } else { "done".to_string() },
            pending,
        });
    }
    out
}

const HEADERS: [&str; 12] =
    ["site", "domain", "aliases", "record", "dns", "pool", "load balancer", "commit", "media bucket", "certificate", "notify", "status"];

fn cells(r: &Row) -> [String; 12] {
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
        r.pool.clone(),
        or(&r.load_balancer),
        commit,
        or(&r.bucket),
        r.certificate.clone(),
        list(&r.notify),
        r.status.clone(),
    ]
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

pub fn render(rows: &[Row], format: SheetFormat) -> String {
    let table: Vec<[String; 12]> = rows.iter().map(cells).collect();
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
listeners = [{ port = 80, protocol = "http", instance_port = 80 }]

[pool.web]
image = "nightly"
instance_type = "t3.large"
min = 1
max = 2
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

    #[test]
    fn the_sheet_says_what_is_left_per_site_in_each_format() {
        // Live: globex still on its old commit; acme's bucket not there yet.
        let before = SITES.replace("commit = \"1111111\"", "commit = \"0000000\"");
        let mut live = live_of(&before);
        live.objects.remove(&"bucket.agency-acme-media".parse::<Address>().unwrap());
        let mut plan = plan_of(SITES, &live);
        crate::plan::mark_affected_sites(&fleet_of(SITES), &mut plan);
        let rows = rows(&fleet_of(SITES), &plan, &live);
        insta::assert_snapshot!("sheet_text", render(&rows, SheetFormat::Text));
        insta::assert_snapshot!("sheet_csv", render(&rows, SheetFormat::Csv));
        let md = render(&rows, SheetFormat::Markdown);
        assert!(md.starts_with("| site | domain |") && md.contains("| globex | www.globex.example |"), "{md}");
        let json: serde_json::Value = serde_json::from_str(&render(&rows, SheetFormat::Json)).unwrap();
        assert_eq!(json[1]["deployed"], "0000000");
        assert_eq!(json[1]["desired"], "1111111");
        // Once applied, nothing is left.
        let done = rows_of_applied();
        assert!(done.iter().all(|r| r.status == "done" && !r.pending), "{done:#?}");
    }

    fn rows_of_applied() -> Vec<Row> {
        let live = live_of(SITES);
        rows(&fleet_of(SITES), &plan_of(SITES, &live), &live)
    }
}
