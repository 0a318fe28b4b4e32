//! Certificate coverage: every site behind an HTTPS (or SSL) listener must have each of its names (domain
//! and aliases) covered by the listener's certificate, wildcards included, and that certificate must stay
//! valid for the fleet's horizon. Pure: the provider reads the certificates.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::Fleet;

/// What a certificate says, whichever service holds it (ACM or IAM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// Subject alternative names (and the common name), lower case; `*.example.com` for wildcards.
    pub names: Vec<String>,
    /// Seconds since the Unix epoch.
    pub not_after: i64,
}

/// A site a certificate fails.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Gap {
    pub site: String,
    pub certificate: String,
    pub message: String,
}

/// Whether `pattern` (a certificate name, maybe `*.x`) covers `name`: a wildcard stands for one label.
pub fn covers(pattern: &str, name: &str) -> bool {
    let (pattern, name) = (pattern.to_ascii_lowercase(), crate::model::dns_name(name));
    match pattern.strip_prefix("*.") {
        Some(rest) => name.split_once('.').is_some_and(|(label, tail)| !label.is_empty() && tail == rest),
        None => pattern == name,
    }
}

/// Every certificate ARN on an HTTPS or SSL listener of a load balancer that some site uses.
pub fn certificates_in_use(fleet: &Fleet) -> Vec<String> {
    let mut out: Vec<String> = fleet
        .sites
        .values()
        .filter_map(|s| fleet.load_balancers.get(&s.load_balancer.as_ref()?.value))
        .flat_map(|lb| lb.listeners.iter().filter_map(|l| l.certificate.clone()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Each site with the certificate of each of its load balancer's listeners that names one.
fn site_certificates(fleet: &Fleet) -> impl Iterator<Item = (&String, &crate::model::Site, &String)> {
    fleet.sites.iter().flat_map(move |(site, s)| {
        let lb = s.load_balancer.as_ref().and_then(|lb| fleet.load_balancers.get(&lb.value));
        lb.into_iter().flat_map(|lb| &lb.listeners).filter_map(move |l| Some((site, s, l.certificate.as_ref()?)))
    })
}

/// Whole days until the soonest expiry among the certificates each site's listeners use (negative once
/// expired), by site; a site without a certificate that could be read is not in it.
pub fn days_left(fleet: &Fleet, certificates: &BTreeMap<String, Result<Certificate, String>>, now: i64) -> BTreeMap<String, i64> {
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for (site, _, arn) in site_certificates(fleet) {
        if let Some(Ok(cert)) = certificates.get(arn) {
            let days = (cert.not_after - now).div_euclid(86_400);
            out.entry(site.clone()).and_modify(|d| *d = (*d).min(days)).or_insert(days);
        }
    }
    out
}

/// The gaps, by site: names no certificate of the site's listeners covers, certificates expiring within
/// `fleet.certificate_horizon_days` of `now`, certificates that could not be read.
pub fn check(fleet: &Fleet, certificates: &BTreeMap<String, Result<Certificate, String>>, now: i64) -> Vec<Gap> {
    let horizon = i64::from(fleet.settings.certificate_horizon_days) * 86_400;
    let mut gaps = Vec::new();
    for (site, s, arn) in site_certificates(fleet) {
        let gap = |message: String| Gap { site: site.clone(), certificate: arn.clone(), message };
        let cert = match certificates.get(arn) {
            Some(Ok(cert)) => cert,
            Some(Err(why)) => {
                gaps.push(gap(format!("the certificate could not be read: {why}")));
                continue;
            }
            None => {
                gaps.push(gap("the certificate could not be read".into()));
                continue;
            }
        };
        for name in std::iter::once(&s.domain).chain(&s.aliases) {
            if !cert.names.iter().any(|p| covers(p, name)) {
                gaps.push(gap(format!("{name} is not covered (the certificate names {})", cert.names.join(", "))));
            }
        }
        let days = (cert.not_after - now).div_euclid(86_400);
        if cert.not_after <= now {
            gaps.push(gap(format!("the certificate expired {} day(s) ago", -days)));
        } else if cert.not_after - now < horizon {
            gaps.push(gap(format!("the certificate expires in {days} day(s), within the {}-day horizon", fleet.settings.certificate_horizon_days)));
        }
    }
    gaps.sort();
    gaps.dedup();
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fleet_of;

    const FLEET: &str = r#"
[fleet]
name = "agency"
region = "eu-west-1"
[security_group.lb]
ingress = [{ ports = "443", cidr = "0.0.0.0/0" }]
[image.n]
name = "x-*"
[pool.web]
image = "n"
instance_type = "t3.small"
min = 1
max = 2
[load_balancer.acme]
security_groups = ["lb"]
listeners = [{ port = 443, protocol = "https", instance_port = 80, certificate = "arn:aws:acm:eu-west-1:123456789012:certificate/acme" }]
[site.acme]
domain = "www.acme.co.uk"
aliases = ["acme.co.uk", "shop.acme.co.uk"]
pool = "web"
load_balancer = "acme"
repo = "git@x:acme.git"
commit = "abc1234"
"#;

    const ARN: &str = "arn:aws:acm:eu-west-1:123456789012:certificate/acme";
    const NOW: i64 = 1_790_000_000;

    fn certs(names: &[&str], days_left: i64) -> BTreeMap<String, Result<Certificate, String>> {
        BTreeMap::from([(ARN.to_string(), Ok(Certificate { names: names.iter().map(|n| n.to_string()).collect(), not_after: NOW + days_left * 86_400 }))])
    }

    #[test]
    fn wildcards_cover_one_label_only() {
        assert!(covers("*.acme.co.uk", "www.acme.co.uk"));
        assert!(!covers("*.acme.co.uk", "acme.co.uk"));
        assert!(!covers("*.acme.co.uk", "a.b.acme.co.uk"));
        assert!(covers("ACME.co.uk", "acme.co.uk."));
    }

    #[test]
    fn a_missing_alias_and_a_near_expiry_are_named() {
        let fleet = fleet_of(FLEET);
        assert!(check(&fleet, &certs(&["acme.co.uk", "*.acme.co.uk"], 90), NOW).is_empty());
        let gaps = check(&fleet, &certs(&["acme.co.uk", "www.acme.co.uk"], 10), NOW);
        let messages: Vec<&str> = gaps.iter().map(|g| g.message.as_str()).collect();
        assert_eq!(
            messages,
            vec![
                "shop.acme.co.uk is not covered (the certificate names acme.co.uk, www.acme.co.uk)",
                "the certificate expires in 10 day(s), within the 21-day horizon",
            ]
        );
        assert_eq!(check(&fleet, &BTreeMap::new(), NOW)[0].message, "the certificate could not be read");
    }
}
