//! What AWS refuses, checked offline: the documented shape of each name, identifier and setting a user writes
//! (or converge derives from `<fleet>-<name>`). Each check says which part of the rule is broken; its help
//! states the whole rule.

use std::net::IpAddr;

/// A rule broken: what is wrong with this value, and the rule as AWS documents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Broken {
    pub why: String,
    pub help: String,
}

type Checked = Result<(), Broken>;

fn broken(why: impl Into<String>, help: impl Into<String>) -> Checked {
    Err(Broken { why: why.into(), help: help.into() })
}

fn chars(n: usize) -> String {
    format!("{n} character{}", if n == 1 { "" } else { "s" })
}

/// The first character of `s` outside `allowed`, for saying which one AWS would refuse.
fn first_outside(s: &str, allowed: impl Fn(char) -> bool) -> Option<char> {
    s.chars().find(|c| !allowed(*c))
}

fn shown(c: char) -> String {
    if c == ' ' { "a space".to_string() } else { format!("`{c}`") }
}

const DNS_HELP: &str =
    "a DNS name is labels separated by dots, at most 253 characters; each label 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen";

/// Where a `*.` wildcard may stand first in a DNS name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wildcard {
    Allowed,
    /// Not here; the text says why (a site's own name, a hosted zone, ...).
    Refused(&'static str),
}

/// A public DNS name (a site's domain or alias, the fleet's zone): RFC 1035 host names as Route 53 and ACM take
/// them. One trailing dot (fully qualified) is allowed; internationalised names are written in their `xn--` form.
pub(super) fn dns_name(name: &str, wildcard: Wildcard) -> Checked {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return broken("it is empty", DNS_HELP);
    }
    let rest = match (name.strip_prefix("*."), wildcard) {
        (Some(rest), Wildcard::Allowed) => rest,
        (Some(_), Wildcard::Refused(why)) => return broken(format!("a wildcard (`*.`) is not allowed here: {why}"), DNS_HELP),
        (None, _) => name,
    };
    if name.len() > 253 {
        return broken(format!("it is {}, over 253", chars(name.len())), DNS_HELP);
    }
    let labels: Vec<&str> = rest.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return broken("it has an empty label (two dots in a row, or a dot at the start)", DNS_HELP);
        }
        if label.len() > 63 {
            return broken(format!("the label `{label}` is {}, over 63", chars(label.len())), DNS_HELP);
        }
        if let Some(c) = first_outside(label, |c| c.is_ascii_alphanumeric() || c == '-') {
            let help = if c == '*' {
                "a wildcard is a whole first label, as in *.example.com"
            } else if !c.is_ascii() {
                "write an internationalised name in its ASCII (punycode) form, e.g. xn--caf-dma.example for café.example"
            } else {
                DNS_HELP
            };
            return broken(format!("{} is not allowed in a label", shown(c)), help);
        }
        if label.starts_with('-') || label.ends_with('-') {
            return broken(format!("the label `{label}` starts or ends with a hyphen"), DNS_HELP);
        }
    }
    if rest.parse::<IpAddr>().is_ok() {
        return broken("it is an IP address", "write the host name the site is served at");
    }
    if labels.len() < 2 {
        return broken("it is a single label", "a public name has at least a domain and a top-level domain, e.g. example.com");
    }
    if labels.last().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit())) {
        return broken("its top-level domain is all digits", DNS_HELP);
    }
    Ok(())
}

const BUCKET_HELP: &str = "an S3 bucket name is 3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit, with no two dots in a row; not an IP address, not starting with xn--, sthree- or amzn-s3-demo-, not ending with -s3alias, --ol-s3, .mrap, --x-s3 or --table-s3";

/// A general purpose S3 bucket name (S3's bucket naming rules).
pub(super) fn bucket_name(name: &str) -> Checked {
    let n = name.len();
    if !(3..=63).contains(&n) {
        return broken(format!("it is {}, not 3 to 63", chars(n)), BUCKET_HELP);
    }
    if let Some(c) = first_outside(name, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-') {
        let why = if c.is_ascii_uppercase() { "upper-case letters are not allowed".to_string() } else { format!("{} is not allowed", shown(c)) };
        return broken(why, BUCKET_HELP);
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge(name.chars().next()) || !edge(name.chars().last()) {
        return broken("it must start and end with a letter or digit", BUCKET_HELP);
    }
    if name.contains("..") {
        return broken("it has two dots in a row", BUCKET_HELP);
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return broken("it is formatted as an IP address", BUCKET_HELP);
    }
    if let Some(p) = ["xn--", "sthree-", "amzn-s3-demo-"].into_iter().find(|p| name.starts_with(p)) {
        return broken(format!("the prefix `{p}` is reserved"), BUCKET_HELP);
    }
    if let Some(s) = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"].into_iter().find(|s| name.ends_with(s)) {
        return broken(format!("the suffix `{s}` is reserved"), BUCKET_HELP);
    }
    Ok(())
}

const REGION_HELP: &str = "a region name is a country or area code, a direction and a number, e.g. eu-west-1, us-east-2, ap-southeast-1, us-gov-west-1";

/// An AWS region name: `[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d+`.
pub(super) fn region(name: &str) -> Checked {
    let parts: Vec<&str> = name.split('-').collect();
    let letters = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase());
    let ok = match parts.as_slice() {
        [area, dir, num] => area.len() == 2 && letters(area) && letters(dir) && !num.is_empty() && num.chars().all(|c| c.is_ascii_digit()),
        [area, partition, dir, num] => {
            area.len() == 2
                && letters(area)
                && (*partition == "gov" || partition.strip_prefix("iso").is_some_and(|s| s.is_empty() || letters(s)))
                && letters(dir)
                && !num.is_empty()
                && num.chars().all(|c| c.is_ascii_digit())
        }
        _ => false,
    };
    if ok {
        return Ok(());
    }
    // An availability zone written for its region: `eu-west-1a`.
    let trimmed = name.trim_end_matches(|c: char| c.is_ascii_lowercase());
    if trimmed != name && region(trimmed).is_ok() {
        return broken("it is an availability zone", format!("did you mean `{trimmed}`? {REGION_HELP}"));
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) && region(&name.to_ascii_lowercase()).is_ok() {
        return broken("region names are lower case", format!("did you mean `{}`?", name.to_ascii_lowercase()));
    }
    broken("it does not have the shape of one", REGION_HELP)
}

/// An availability zone of `region`: the region's name and a letter (`eu-west-1a`), or a Local Zone of it
/// (`us-west-2-lax-1a`).
pub(super) fn availability_zone(zone: &str, region: &str) -> Checked {
    let help = format!("the fleet is in {region} (fleet.region): its zones are named {region}a, {region}b, ...");
    let Some(rest) = zone.strip_prefix(region) else {
        let why = if region_of_zone(zone).is_some() { "it is in another region" } else { "it is not a zone name" };
        return broken(why, help);
    };
    let ok =
        !rest.is_empty() && rest.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') && rest.ends_with(|c: char| c.is_ascii_lowercase());
    if ok { Ok(()) } else { broken("it is not a zone name", help) }
}

fn region_of_zone(zone: &str) -> Option<&str> {
    let trimmed = zone.trim_end_matches(|c: char| c.is_ascii_lowercase());
    (trimmed != zone && region(trimmed).is_ok()).then_some(trimmed)
}

/// A name AWS builds from letters, digits and hyphens: `max` characters, the first a letter when `letter_first`,
/// no hyphen at the end (nor at the start), no two hyphens in a row when `no_double_hyphen`.
struct HyphenName {
    max: usize,
    letter_first: bool,
    no_double_hyphen: bool,
    help: &'static str,
}

impl HyphenName {
    fn check(&self, name: &str) -> Checked {
        let n = name.len();
        if n == 0 || n > self.max {
            return broken(format!("it is {}, not 1 to {}", chars(n), self.max), self.help);
        }
        if let Some(c) = first_outside(name, |c| c.is_ascii_alphanumeric() || c == '-') {
            return broken(format!("{} is not allowed", shown(c)), self.help);
        }
        if self.letter_first && !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return broken("it must start with a letter", self.help);
        }
        if name.starts_with('-') || name.ends_with('-') {
            return broken("it starts or ends with a hyphen", self.help);
        }
        if self.no_double_hyphen && name.contains("--") {
            return broken("it has two hyphens in a row", self.help);
        }
        Ok(())
    }
}

/// A classic load balancer's name.
pub(super) fn load_balancer_name(name: &str) -> Checked {
    HyphenName { max: 32, letter_first: false, no_double_hyphen: false, help: "at most 32 letters, digits and hyphens, not starting or ending with a hyphen" }
        .check(name)
}

/// An RDS DB instance identifier.
pub(super) fn db_instance_identifier(name: &str) -> Checked {
    HyphenName {
        max: 63,
        letter_first: true,
        no_double_hyphen: true,
        help: "an RDS DB instance identifier is 1 to 63 letters, digits and hyphens, starting with a letter, not ending with a hyphen, with no two hyphens in a row",
    }
    .check(name)
}

/// An RDS DB parameter group's name.
pub(super) fn db_parameter_group_name(name: &str) -> Checked {
    HyphenName {
        max: 255,
        letter_first: true,
        no_double_hyphen: true,
        help: "a DB parameter group name is 1 to 255 letters, digits and hyphens, starting with a letter, not ending with a hyphen, with no two hyphens in a row",
    }
    .check(name)
}

const LAUNCH_TEMPLATE_HELP: &str =
    "a launch template name is 3 to 128 letters, digits and ( ) . - / _ (and is also the auto-scaling group's name, at most 255 characters, no colon)";

/// A launch template's name (the pool's auto-scaling group has the same name, whose rule is looser).
pub(super) fn launch_template_name(name: &str) -> Checked {
    let n = name.len();
    if !(3..=128).contains(&n) {
        return broken(format!("it is {}, not 3 to 128", chars(n)), LAUNCH_TEMPLATE_HELP);
    }
    if let Some(c) = first_outside(name, |c| c.is_ascii_alphanumeric() || "().-/_".contains(c)) {
        return broken(format!("{} is not allowed", shown(c)), LAUNCH_TEMPLATE_HELP);
    }
    Ok(())
}

const SECURITY_GROUP_CHARS: &str = "._-:/()#,@[]+=&;{}!$*";

fn security_group_chars(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ' ' || SECURITY_GROUP_CHARS.contains(c)
}

/// A security group's name in a VPC.
pub(super) fn security_group_name(name: &str) -> Checked {
    let help = "a security group name is 1 to 255 letters, digits, spaces and ._-:/()#,@[]+=&;{}!$*, not starting with sg-";
    let n = name.len();
    if n == 0 || n > 255 {
        return broken(format!("it is {}, not 1 to 255", chars(n)), help);
    }
    if name.to_ascii_lowercase().starts_with("sg-") {
        return broken("it starts with `sg-`, which is for group ids", help);
    }
    match first_outside(name, security_group_chars) {
        Some(c) => broken(format!("{} is not allowed", shown(c)), help),
        None => Ok(()),
    }
}

/// A security group's description in a VPC.
pub(super) fn security_group_description(text: &str) -> Checked {
    described(text, "a security group description is at most 255 letters, digits, spaces and ._-:/()#,@[]+=&;{}!$*")
}

/// A security group rule's description: as a group's.
pub(super) fn rule_description(text: &str) -> Checked {
    described(text, "a rule description is at most 255 letters, digits, spaces and ._-:/()#,@[]+=&;{}!$*")
}

fn described(text: &str, help: &str) -> Checked {
    if text.len() > 255 {
        return broken(format!("it is {}, over 255", chars(text.len())), help);
    }
    match first_outside(text, security_group_chars) {
        Some(c) => broken(format!("{} is not allowed", shown(c)), help),
        None => Ok(()),
    }
}

/// An EC2 key pair's name.
pub(super) fn key_pair_name(name: &str) -> Checked {
    let help = "a key pair name is 1 to 255 ASCII characters";
    if name.is_empty() || name.len() > 255 {
        return broken(format!("it is {}, not 1 to 255", chars(name.len())), help);
    }
    match first_outside(name, |c| c.is_ascii() && !c.is_ascii_control()) {
        Some(c) => broken(format!("{} is not allowed", shown(c)), help),
        None => Ok(()),
    }
}

fn lower_segment(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// An EC2 instance type: a family and a size, `t3.large`, `m7i-flex.xlarge`, `c7g.metal`.
pub(super) fn instance_type(name: &str) -> Checked {
    let help = "an EC2 instance type is a family and a size in lower case, e.g. t3.large, m7g.xlarge, c6i.metal";
    if let Some(ec2) = name.strip_prefix("db.") {
        return broken("it is an RDS instance class", format!("pools run EC2 instances: did you mean `{ec2}`? ({help})"));
    }
    match name.split('.').collect::<Vec<_>>().as_slice() {
        [family, size] if lower_segment(family) && family.starts_with(|c: char| c.is_ascii_lowercase()) && lower_segment(size) => Ok(()),
        _ if name.chars().any(|c| c.is_ascii_uppercase()) => broken("instance types are lower case", help),
        _ => broken("it is not a family and a size", help),
    }
}

/// An RDS DB instance class: `db.` and an instance type, `db.r6g.large`, `db.t4g.micro`.
pub(super) fn db_instance_class(name: &str) -> Checked {
    let help = "an RDS DB instance class is db. and an instance type in lower case, e.g. db.r6g.large, db.t4g.micro";
    let Some(rest) = name.strip_prefix("db.") else {
        let hint = if instance_type(name).is_ok() { format!("did you mean `db.{name}`? ") } else { String::new() };
        return broken("it does not start with `db.`", format!("{hint}{help}"));
    };
    let segments: Vec<&str> = rest.split('.').collect();
    if segments.len() >= 2 && segments.iter().all(|s| lower_segment(s)) {
        Ok(())
    } else if name.chars().any(|c| c.is_ascii_uppercase()) {
        broken("instance classes are lower case", help)
    } else {
        broken("it is not db. and a family and a size", help)
    }
}

/// The RDS engines a DB instance (not an Aurora cluster, which converge does not make) can run.
pub(super) const DB_ENGINES: &[&str] = &[
    "mysql",
    "mariadb",
    "postgres",
    "oracle-ee",
    "oracle-ee-cdb",
    "oracle-se2",
    "oracle-se2-cdb",
    "sqlserver-ee",
    "sqlserver-se",
    "sqlserver-ex",
    "sqlserver-web",
    "db2-ae",
    "db2-se",
];

pub(super) fn db_engine(engine: &str) -> Checked {
    if DB_ENGINES.contains(&engine) {
        return Ok(());
    }
    let help = format!("RDS DB instance engines: {}", DB_ENGINES.join(", "));
    if engine.starts_with("aurora") {
        return broken("Aurora runs in a DB cluster, which converge does not manage", help);
    }
    if DB_ENGINES.contains(&engine.to_ascii_lowercase().as_str()) {
        return broken("engine names are lower case", format!("did you mean `{}`?", engine.to_ascii_lowercase()));
    }
    broken("it is not an RDS engine", help)
}

/// The engine family a DB parameter group must have for `engine` at `version`, for the engines whose rule is
/// simple: `mysql8.0`, `mariadb10.11`, `postgres16`.
pub(super) fn db_parameter_group_family(engine: &str, version: &str) -> Option<String> {
    let mut parts = version.split('.');
    let major = parts.next().filter(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))?;
    match engine {
        "mysql" | "mariadb" => {
            let minor = parts.next().filter(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))?;
            Some(format!("{engine}{major}.{minor}"))
        }
        "postgres" if major.parse::<u32>().is_ok_and(|m| m >= 10) => Some(format!("postgres{major}")),
        _ => None,
    }
}

/// The master user's name (CreateDBInstance's MasterUsername).
pub(super) fn db_username(engine: Option<&str>, name: &str) -> Checked {
    // RDS's limits by engine; without a known engine (reported on its own), the loosest.
    let max = match engine {
        Some("mysql" | "mariadb") => 16,
        Some(e) if e.starts_with("oracle") => 30,
        Some("postgres") => 63,
        _ => 128,
    };
    let help = format!("the master user name is 1 to {max} letters, digits and underscores, starting with a letter");
    let n = name.len();
    if n == 0 || n > max {
        return broken(format!("it is {}, not 1 to {max}", chars(n)), help);
    }
    if let Some(c) = first_outside(name, |c| c.is_ascii_alphanumeric() || c == '_') {
        return broken(format!("{} is not allowed", shown(c)), help);
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return broken("it must start with a letter", help);
    }
    if name.eq_ignore_ascii_case("rdsadmin") {
        return broken("RDS reserves it for itself", help);
    }
    Ok(())
}

/// A window in minutes: its start (from Monday 00:00 for a weekly window, from 00:00 for a daily one) and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Window {
    pub start: u32,
    pub minutes: u32,
}

pub(super) const DAY: u32 = 24 * 60;
pub(super) const WEEK: u32 = 7 * DAY;
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `hh24:mi`, as minutes of the day.
fn time_of_day(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    let two = |x: &str| (x.len() == 2 && x.chars().all(|c| c.is_ascii_digit())).then(|| x.parse::<u32>().ok()).flatten();
    let (h, m) = (two(h)?, two(m)?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

fn window(start: u32, end: u32, period: u32, help: &str) -> Result<Window, Broken> {
    let minutes = (end + period - start) % period;
    if minutes < 30 {
        return Err(Broken { why: format!("it is {minutes} minutes long; RDS needs at least 30"), help: help.to_string() });
    }
    Ok(Window { start, minutes })
}

/// A preferred maintenance window, `ddd:hh24:mi-ddd:hh24:mi` in UTC, at least 30 minutes.
pub(super) fn maintenance_window(s: &str) -> Result<Window, Broken> {
    let help = "a maintenance window is ddd:hh24:mi-ddd:hh24:mi in UTC (days mon to sun), at least 30 minutes, e.g. sun:05:00-sun:06:00";
    let point = |p: &str| {
        let (day, time) = p.split_once(':')?;
        let d = DAYS.iter().position(|x| x.eq_ignore_ascii_case(day))? as u32;
        Some(d * DAY + time_of_day(time)?)
    };
    let parsed = s.split_once('-').and_then(|(a, b)| Some((point(a)?, point(b)?)));
    let Some((start, end)) = parsed else {
        return Err(Broken { why: "it is not ddd:hh24:mi-ddd:hh24:mi".into(), help: help.into() });
    };
    window(start, end, WEEK, help)
}

/// A preferred backup window, `hh24:mi-hh24:mi` in UTC, at least 30 minutes.
pub(super) fn backup_window(s: &str) -> Result<Window, Broken> {
    let help = "a backup window is hh24:mi-hh24:mi in UTC, at least 30 minutes, e.g. 03:00-03:30";
    let parsed = s.split_once('-').and_then(|(a, b)| Some((time_of_day(a)?, time_of_day(b)?)));
    let Some((start, end)) = parsed else {
        return Err(Broken { why: "it is not hh24:mi-hh24:mi".into(), help: help.into() });
    };
    window(start, end, DAY, help)
}

/// Whether a daily backup window overlaps a weekly maintenance window on any day.
pub(super) fn windows_overlap(backup: Window, maintenance: Window) -> bool {
    (0..7).any(|d| {
        let b = d * DAY + backup.start;
        let m = maintenance.start;
        (m + WEEK - b) % WEEK < backup.minutes || (b + WEEK - m) % WEEK < maintenance.minutes
    })
}

/// What a listener's certificate ARN says: an ACM certificate (with its region) or an IAM server certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CertificateArn {
    Acm { region: String },
    Iam,
}

/// `arn:PARTITION:acm:REGION:ACCOUNT:certificate/ID` or `arn:PARTITION:iam::ACCOUNT:server-certificate/NAME`.
pub(super) fn certificate_arn(arn: &str) -> Result<CertificateArn, Broken> {
    let help = "write an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID) or an IAM server certificate ARN (arn:aws:iam::ACCOUNT:server-certificate/NAME)";
    let fail = |why: &str| Err(Broken { why: why.into(), help: help.into() });
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if !arn.starts_with("arn:") {
        return fail("it does not start with `arn:`");
    }
    let [_, partition, service, arn_region, account, resource] = parts.as_slice() else { return fail("it does not have the six parts of an ARN") };
    if !partition.starts_with("aws") {
        return fail("its partition is not aws, aws-cn or aws-us-gov");
    }
    if account.is_empty() {
        return fail("it has no account");
    }
    match *service {
        "acm" => {
            if region(arn_region).is_err() {
                return fail("its region is not a region name");
            }
            if resource.strip_prefix("certificate/").is_none_or(str::is_empty) {
                return fail("it does not name a certificate (certificate/ID)");
            }
            Ok(CertificateArn::Acm { region: arn_region.to_string() })
        }
        "iam" => {
            if !arn_region.is_empty() {
                return fail("IAM ARNs have no region");
            }
            if resource.strip_prefix("server-certificate/").is_none_or(str::is_empty) {
                return fail("it does not name a server certificate (server-certificate/NAME)");
            }
            Ok(CertificateArn::Iam)
        }
        other => fail(&format!("it is an ARN of {other}, not of a certificate in ACM or IAM")),
    }
}

/// An SNS topic: `arn:PARTITION:sns:REGION:ACCOUNT:NAME` (1 to 256 letters, digits, `-` and `_`; a FIFO
/// topic's `.fifo`, which auto scaling and CloudWatch cannot publish to, is refused).
pub(super) fn sns_topic_arn(arn: &str) -> Checked {
    let help = "write the topic's ARN, arn:aws:sns:REGION:ACCOUNT:NAME, as `aws sns list-topics` shows it";
    let fail = |why: &str| Err(Broken { why: why.into(), help: help.into() });
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", partition, service, arn_region, account, name] = parts.as_slice() else {
        return fail("it is not an ARN (arn:PARTITION:sns:REGION:ACCOUNT:NAME)");
    };
    if !partition.starts_with("aws") {
        return fail("its partition is not aws, aws-cn or aws-us-gov");
    }
    if *service != "sns" {
        return fail(&format!("it is an ARN of {service}, not of an SNS topic"));
    }
    if region(arn_region).is_err() {
        return fail("its region is not a region name");
    }
    if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
        return fail("its account is not 12 digits");
    }
    if name.ends_with(".fifo") {
        return fail("a FIFO topic takes no notifications from auto scaling or CloudWatch");
    }
    if name.is_empty() || name.len() > 256 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return fail("its topic name is not 1 to 256 letters, digits, `-` and `_`");
    }
    Ok(())
}

/// An EC2 resource id: `ami-`, `vpc-`, `subnet-` and 8 or 17 hexadecimal digits.
pub(super) fn resource_id(id: &str, prefix: &str, what: &str) -> Checked {
    let help = format!("{what} ids are {prefix}- and 8 or 17 lower-case hexadecimal digits");
    match id.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) {
        Some(hex) if matches!(hex.len(), 8 | 17) && hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)) => Ok(()),
        Some(_) => broken(format!("it is not {prefix}- and 8 or 17 hexadecimal digits"), help),
        None => broken(format!("it does not start with `{prefix}-`"), help),
    }
}

/// An image owner for DescribeImages: an account id, or one of the aliases AWS knows.
pub(super) fn image_owner(owner: &str) -> Checked {
    const ALIASES: [&str; 4] = ["self", "amazon", "aws-marketplace", "aws-backup-vault"];
    if ALIASES.contains(&owner) || (owner.len() == 12 && owner.chars().all(|c| c.is_ascii_digit())) {
        return Ok(());
    }
    broken("it is neither an account id (12 digits) nor an owner alias", "an image owner is an account id, self, amazon, aws-marketplace or aws-backup-vault")
}

/// Which services a tag goes to: EC2 and Auto Scaling take any characters; ELB and RDS a restricted set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TagRules {
    Any,
    Restricted,
}

const TAG_CHARS: &str = "_.:/=+-@";

fn tag_text(s: &str, what: &str, max: usize, min: usize, rules: TagRules) -> Checked {
    let restricted = "letters, digits, spaces and _ . : / = + - @";
    let help = match rules {
        TagRules::Any => format!("a tag {what} is {min} to {max} characters"),
        TagRules::Restricted => format!("a tag {what} here (ELB, RDS) is {min} to {max} {restricted}"),
    };
    let n = s.chars().count();
    if n < min || n > max {
        return broken(format!("the {what} is {}, not {min} to {max}", chars(n)), help);
    }
    if rules == TagRules::Restricted
        && let Some(c) = first_outside(s, |c| c.is_alphanumeric() || c.is_whitespace() || TAG_CHARS.contains(c))
    {
        return broken(format!("{} is not allowed in the {what}", shown(c)), help);
    }
    Ok(())
}

pub(super) fn tag_key(key: &str, rules: TagRules) -> Checked {
    tag_text(key, "key", 128, 1, rules)
}

pub(super) fn tag_value(value: &str, rules: TagRules) -> Checked {
    tag_text(value, "value", 256, 0, rules)
}

/// At most 50 tags on a resource, converge's two (`converge:fleet`, `converge:address`) and, on instances, `Name`.
pub(super) const MAX_TAGS: usize = 50;

#[cfg(test)]
mod tests {
    use super::*;

    fn why<T: std::fmt::Debug>(r: Result<T, Broken>) -> String {
        r.expect_err("expected a broken rule").why
    }

    #[test]
    fn dns_names() {
        for ok in ["www.acme.co.uk", "acme.co.uk.", "xn--caf-dma.example", "a-b.c9.example", "WWW.Acme.com"] {
            assert_eq!(dns_name(ok, Wildcard::Refused("")), Ok(()), "{ok}");
        }
        assert_eq!(dns_name("*.acme.co.uk", Wildcard::Allowed), Ok(()));
        assert_eq!(why(dns_name("www..acme.com", Wildcard::Allowed)), "it has an empty label (two dots in a row, or a dot at the start)");
        assert_eq!(why(dns_name(".acme.com", Wildcard::Allowed)), "it has an empty label (two dots in a row, or a dot at the start)");
        assert_eq!(why(dns_name("", Wildcard::Allowed)), "it is empty");
        assert_eq!(why(dns_name(&format!("{}.com", "a".repeat(64)), Wildcard::Allowed)), format!("the label `{}` is 64 characters, over 63", "a".repeat(64)));
        assert_eq!(dns_name(&format!("{}.com", "a".repeat(63)), Wildcard::Allowed), Ok(()));
        let long = vec!["abcdefghi"; 26].join(".");
        assert_eq!(why(dns_name(&long, Wildcard::Allowed)), "it is 259 characters, over 253");
        assert_eq!(why(dns_name("-acme.com", Wildcard::Allowed)), "the label `-acme` starts or ends with a hyphen");
        assert_eq!(why(dns_name("acme-.com", Wildcard::Allowed)), "the label `acme-` starts or ends with a hyphen");
        assert_eq!(why(dns_name("acme_shop.com", Wildcard::Allowed)), "`_` is not allowed in a label");
        assert_eq!(why(dns_name("café.fr", Wildcard::Allowed)), "`é` is not allowed in a label");
        assert!(dns_name("café.fr", Wildcard::Allowed).unwrap_err().help.contains("punycode"));
        assert_eq!(why(dns_name("www.*.acme.com", Wildcard::Allowed)), "`*` is not allowed in a label");
        assert_eq!(why(dns_name("*acme.com", Wildcard::Allowed)), "`*` is not allowed in a label");
        assert_eq!(
            why(dns_name("*.acme.com", Wildcard::Refused("a site's domain is one name"))),
            "a wildcard (`*.`) is not allowed here: a site's domain is one name"
        );
        assert_eq!(why(dns_name("*.com", Wildcard::Allowed)), "it is a single label");
        assert_eq!(why(dns_name("localhost", Wildcard::Allowed)), "it is a single label");
        assert_eq!(why(dns_name("10.0.0.1", Wildcard::Allowed)), "it is an IP address");
        assert_eq!(why(dns_name("acme.123", Wildcard::Allowed)), "its top-level domain is all digits");
        assert_eq!(why(dns_name("acme com", Wildcard::Allowed)), "a space is not allowed in a label");
    }

    #[test]
    fn bucket_names() {
        for ok in ["agency-acme-media", "a.b.c", "abc", "media.acme.co.uk", &"a".repeat(63)] {
            assert_eq!(bucket_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(why(bucket_name("ab")), "it is 2 characters, not 3 to 63");
        assert_eq!(why(bucket_name(&"a".repeat(64))), "it is 64 characters, not 3 to 63");
        assert_eq!(why(bucket_name("Acme-Media")), "upper-case letters are not allowed");
        assert_eq!(why(bucket_name("acme_media")), "`_` is not allowed");
        assert_eq!(why(bucket_name("-acme")), "it must start and end with a letter or digit");
        assert_eq!(why(bucket_name("acme.")), "it must start and end with a letter or digit");
        assert_eq!(why(bucket_name("acme..media")), "it has two dots in a row");
        assert_eq!(why(bucket_name("192.168.5.4")), "it is formatted as an IP address");
        assert_eq!(why(bucket_name("xn--acme")), "the prefix `xn--` is reserved");
        assert_eq!(why(bucket_name("sthree-media")), "the prefix `sthree-` is reserved");
        assert_eq!(why(bucket_name("amzn-s3-demo-bucket")), "the prefix `amzn-s3-demo-` is reserved");
        assert_eq!(why(bucket_name("media-s3alias")), "the suffix `-s3alias` is reserved");
        assert_eq!(why(bucket_name("media--ol-s3")), "the suffix `--ol-s3` is reserved");
        assert_eq!(why(bucket_name("media.mrap")), "the suffix `.mrap` is reserved");
        assert_eq!(why(bucket_name("media--x-s3")), "the suffix `--x-s3` is reserved");
    }

    #[test]
    fn regions_and_zones() {
        for ok in ["eu-west-1", "us-east-1", "ap-southeast-2", "us-gov-west-1", "us-iso-east-1", "us-isob-east-1", "cn-north-1", "il-central-1"] {
            assert_eq!(region(ok), Ok(()), "{ok}");
        }
        assert_eq!(region("eu-west-1a").unwrap_err().help, format!("did you mean `eu-west-1`? {REGION_HELP}"));
        assert_eq!(region("EU-West-1").unwrap_err().help, "did you mean `eu-west-1`?");
        for bad in ["eu-west", "euwest1", "europe-west-1", "eu-west-1-", "eu--1", "us-gov-west", ""] {
            assert_eq!(why(region(bad)), "it does not have the shape of one", "{bad}");
        }
        assert_eq!(availability_zone("eu-west-1a", "eu-west-1"), Ok(()));
        assert_eq!(availability_zone("us-west-2-lax-1a", "us-west-2"), Ok(()));
        assert_eq!(why(availability_zone("us-east-1a", "eu-west-1")), "it is in another region");
        assert_eq!(why(availability_zone("eu-west-1", "eu-west-1")), "it is not a zone name");
        assert_eq!(why(availability_zone("euw1-az1", "eu-west-1")), "it is not a zone name");
    }

    #[test]
    fn identifiers() {
        assert_eq!(load_balancer_name("agency-shared"), Ok(()));
        assert_eq!(why(load_balancer_name(&"a".repeat(33))), "it is 33 characters, not 1 to 32");
        assert_eq!(why(load_balancer_name("agency_shared")), "`_` is not allowed");
        assert_eq!(why(load_balancer_name("-shared")), "it starts or ends with a hyphen");
        assert_eq!(db_instance_identifier("agency-sites-replica"), Ok(()));
        assert_eq!(why(db_instance_identifier(&format!("agency-{}", "s".repeat(57)))), "it is 64 characters, not 1 to 63");
        assert_eq!(why(db_instance_identifier("1agency-sites")), "it must start with a letter");
        assert_eq!(why(db_instance_identifier("agency--sites")), "it has two hyphens in a row");
        assert_eq!(why(db_instance_identifier("agency-sites-")), "it starts or ends with a hyphen");
        assert_eq!(db_parameter_group_name(&format!("a{}", "b".repeat(254))), Ok(()));
        assert_eq!(why(db_parameter_group_name(&format!("a{}", "b".repeat(255)))), "it is 256 characters, not 1 to 255");
        assert_eq!(why(db_parameter_group_name("agency--sites")), "it has two hyphens in a row");
        assert_eq!(why(db_parameter_group_name("9agency-sites")), "it must start with a letter");
        assert_eq!(launch_template_name("agency-web"), Ok(()));
        assert_eq!(launch_template_name("a(b).c/d_e"), Ok(()));
        assert_eq!(why(launch_template_name(&"a".repeat(129))), "it is 129 characters, not 3 to 128");
        assert_eq!(why(launch_template_name("ab")), "it is 2 characters, not 3 to 128");
        assert_eq!(why(launch_template_name("agency web")), "a space is not allowed");
        assert_eq!(security_group_name("agency web (lb)"), Ok(()));
        assert_eq!(why(security_group_name("sg-web")), "it starts with `sg-`, which is for group ids");
        assert_eq!(why(security_group_name("web's")), "`'` is not allowed");
        assert_eq!(why(security_group_name("")), "it is 0 characters, not 1 to 255");
        assert_eq!(security_group_description("Web servers: HTTP from the load balancers, SSH from the office"), Ok(()));
        assert_eq!(why(security_group_description("the office's SSH")), "`'` is not allowed");
        assert_eq!(why(security_group_description("über")), "`ü` is not allowed");
        assert_eq!(key_pair_name("ops key"), Ok(()));
        assert_eq!(why(key_pair_name("clé")), "`é` is not allowed");
        assert_eq!(why(key_pair_name("")), "it is 0 characters, not 1 to 255");
    }

    #[test]
    fn instance_types_and_classes() {
        for ok in ["t3.large", "m7i-flex.xlarge", "c7g.metal", "u-6tb1.112xlarge", "m7i.metal-24xl"] {
            assert_eq!(instance_type(ok), Ok(()), "{ok}");
        }
        assert_eq!(why(instance_type("t3large")), "it is not a family and a size");
        assert_eq!(why(instance_type("T3.large")), "instance types are lower case");
        assert_eq!(why(instance_type("db.t3.large")), "it is an RDS instance class");
        assert!(instance_type("db.t3.large").unwrap_err().help.starts_with("pools run EC2 instances: did you mean `t3.large`?"));
        for ok in ["db.r6g.large", "db.t4g.micro", "db.m5d.2xlarge", "db.r5.2xlarge.tpc2.mem4x"] {
            assert_eq!(db_instance_class(ok), Ok(()), "{ok}");
        }
        assert_eq!(why(db_instance_class("r6g.large")), "it does not start with `db.`");
        assert!(db_instance_class("r6g.large").unwrap_err().help.starts_with("did you mean `db.r6g.large`?"));
        assert_eq!(why(db_instance_class("db.large")), "it is not db. and a family and a size");
        assert_eq!(why(db_instance_class("db.R6G.large")), "instance classes are lower case");
    }

    #[test]
    fn engines_users_and_families() {
        assert_eq!(db_engine("mysql"), Ok(()));
        assert_eq!(why(db_engine("MySQL")), "engine names are lower case");
        assert_eq!(why(db_engine("aurora-mysql")), "Aurora runs in a DB cluster, which converge does not manage");
        assert_eq!(why(db_engine("mongodb")), "it is not an RDS engine");
        assert_eq!(db_parameter_group_family("mysql", "8.0.39").as_deref(), Some("mysql8.0"));
        assert_eq!(db_parameter_group_family("mariadb", "10.11.8").as_deref(), Some("mariadb10.11"));
        assert_eq!(db_parameter_group_family("postgres", "16.3").as_deref(), Some("postgres16"));
        assert_eq!(db_parameter_group_family("postgres", "9.6.1"), None);
        assert_eq!(db_parameter_group_family("oracle-ee", "19.0.0.0.ru-2024-01.rur-2024-01.r1"), None);
        assert_eq!(db_username(Some("mysql"), "admin"), Ok(()));
        assert_eq!(why(db_username(Some("mysql"), "administrator_one")), "it is 17 characters, not 1 to 16");
        assert_eq!(db_username(Some("postgres"), "administrator_one"), Ok(()));
        assert_eq!(db_username(Some("sqlserver-ex"), "administrator_one"), Ok(()));
        assert_eq!(why(db_username(Some("oracle-ee"), &"a".repeat(31))), "it is 31 characters, not 1 to 30");
        assert_eq!(why(db_username(Some("mysql"), "1admin")), "it must start with a letter");
        assert_eq!(why(db_username(Some("mysql"), "ad-min")), "`-` is not allowed");
        assert_eq!(why(db_username(Some("mysql"), "rdsadmin")), "RDS reserves it for itself");
    }

    #[test]
    fn windows() {
        assert_eq!(maintenance_window("sun:05:00-sun:06:00"), Ok(Window { start: 6 * DAY + 300, minutes: 60 }));
        assert_eq!(maintenance_window("Sun:23:45-Mon:00:15"), Ok(Window { start: 6 * DAY + 23 * 60 + 45, minutes: 30 }));
        assert_eq!(why(maintenance_window("sun:05:00-sun:05:15")), "it is 15 minutes long; RDS needs at least 30");
        assert_eq!(why(maintenance_window("sunday:05:00-sunday:06:00")), "it is not ddd:hh24:mi-ddd:hh24:mi");
        assert_eq!(why(maintenance_window("sun:5:00-sun:6:00")), "it is not ddd:hh24:mi-ddd:hh24:mi");
        assert_eq!(why(maintenance_window("sun:24:00-mon:01:00")), "it is not ddd:hh24:mi-ddd:hh24:mi");
        assert_eq!(backup_window("03:00-03:30"), Ok(Window { start: 180, minutes: 30 }));
        assert_eq!(backup_window("23:50-00:30"), Ok(Window { start: 23 * 60 + 50, minutes: 40 }));
        assert_eq!(why(backup_window("03:00-03:10")), "it is 10 minutes long; RDS needs at least 30");
        assert_eq!(why(backup_window("3am-4am")), "it is not hh24:mi-hh24:mi");
        let m = maintenance_window("sun:05:00-sun:06:00").unwrap();
        assert!(windows_overlap(backup_window("05:30-06:30").unwrap(), m));
        assert!(windows_overlap(backup_window("04:00-07:00").unwrap(), m));
        assert!(!windows_overlap(backup_window("04:30-05:00").unwrap(), m), "touching is not overlapping");
        assert!(!windows_overlap(backup_window("06:00-06:30").unwrap(), m));
        let wrap = maintenance_window("sun:23:30-mon:00:30").unwrap();
        assert!(windows_overlap(backup_window("00:00-00:30").unwrap(), wrap));
    }

    #[test]
    fn certificates_ids_owners_and_tags() {
        assert_eq!(certificate_arn("arn:aws:acm:eu-west-1:123456789012:certificate/abc"), Ok(CertificateArn::Acm { region: "eu-west-1".into() }));
        assert_eq!(certificate_arn("arn:aws:iam::123456789012:server-certificate/shared-2026"), Ok(CertificateArn::Iam));
        assert_eq!(why(certificate_arn("arn:aws:iam::123456789012")), "it does not have the six parts of an ARN");
        assert_eq!(why(certificate_arn("shared-2026")), "it does not start with `arn:`");
        assert_eq!(why(certificate_arn("arn:aws:s3:::bucket")), "it has no account");
        assert_eq!(why(certificate_arn("arn:aws:s3:eu-west-1:123456789012:x")), "it is an ARN of s3, not of a certificate in ACM or IAM");
        assert_eq!(why(certificate_arn("arn:aws:iam:eu-west-1:123456789012:server-certificate/x")), "IAM ARNs have no region");
        assert_eq!(why(certificate_arn("arn:azure:iam::123456789012:server-certificate/x")), "its partition is not aws, aws-cn or aws-us-gov");
        assert_eq!(why(certificate_arn("arn:aws:acm:eu-west-1:123456789012:abc")), "it does not name a certificate (certificate/ID)");
        assert_eq!(resource_id("ami-0abc1234", "ami", "image"), Ok(()));
        assert_eq!(resource_id("ami-0123456789abcdef0", "ami", "image"), Ok(()));
        assert_eq!(why(resource_id("ami-xyz", "ami", "image")), "it is not ami- and 8 or 17 hexadecimal digits");
        assert_eq!(why(resource_id("subnet-1", "vpc", "VPC")), "it does not start with `vpc-`");
        assert_eq!(image_owner("self"), Ok(()));
        assert_eq!(image_owner("099720109477"), Ok(()));
        assert_eq!(why(image_owner("canonical")), "it is neither an account id (12 digits) nor an owner alias");
        assert_eq!(tag_key("team", TagRules::Restricted), Ok(()));
        assert_eq!(tag_value("web ops!", TagRules::Any), Ok(()));
        assert_eq!(why(tag_value("web ops!", TagRules::Restricted)), "`!` is not allowed in the value");
        assert_eq!(why(tag_key(&"k".repeat(129), TagRules::Any)), "the key is 129 characters, not 1 to 128");
        assert_eq!(why(tag_value(&"v".repeat(257), TagRules::Any)), "the value is 257 characters, not 0 to 256");
    }
}
