//! DNS lookups for the sites sheet: where each site's public names resolve today, through the system's
//! resolver (`/etc/resolv.conf`) or one server named by `--resolver ADDR[:PORT]`. A lookup asks for the
//! name's addresses (A, then AAAA), following CNAMEs, and keeps the names it passed through: the sheet
//! decides from them whether a name reaches the site (`render::sites`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use futures_util::StreamExt as _;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};

use crate::render::sites::{Lookup, Lookups};

/// Lookups in flight at once: a sheet of 500 sites asks about 1,500 names.
const CONCURRENT: usize = 32;
/// Per query, and how many times a query is sent before the name counts as failed.
const TIMEOUT: Duration = Duration::from_secs(3);
const ATTEMPTS: usize = 2;

/// Which resolver the sheet asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The system's (`/etc/resolv.conf`), as the sites' visitors would.
    System,
    /// One server (port 53 unless given), and nothing else: no hosts file, no search domains.
    At(SocketAddr),
    /// No lookups: the column is left empty.
    None,
}

impl FromStr for Choice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "system" => Ok(Choice::System),
            "none" => Ok(Choice::None),
            _ => s
                .parse::<SocketAddr>()
                .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map(Choice::At)
                .map_err(|_| format!("`{s}` is not `system`, `none`, or an address (IP or IP:PORT)")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("DNS resolver: {0}")]
pub struct ResolverError(String);

fn resolver(choice: Choice) -> Result<Option<TokioResolver>, ResolverError> {
    let fail = |e: hickory_resolver::net::NetError| ResolverError(e.to_string());
    let mut builder = match choice {
        Choice::None => return Ok(None),
        Choice::System => Resolver::builder_tokio().map_err(fail)?,
        Choice::At(addr) => {
            let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()].map(|mut c| {
                c.port = addr.port();
                c
            });
            let server = NameServerConfig::new(addr.ip(), true, connections.to_vec());
            let mut builder = Resolver::builder_with_config(ResolverConfig::from_name_servers(vec![server]), TokioRuntimeProvider::default());
            builder.options_mut().use_hosts_file = ResolveHosts::Never;
            builder
        }
    };
    let opts: &mut ResolverOpts = builder.options_mut();
    opts.timeout = TIMEOUT;
    opts.attempts = ATTEMPTS;
    opts.preserve_intermediates = true;
    builder.build().map(Some).map_err(fail)
}

/// Looks up every name, `CONCURRENT` at a time. `None` when the choice is `none`.
pub async fn look_up(names: BTreeSet<String>, choice: Choice) -> Result<Option<Lookups>, ResolverError> {
    let Some(resolver) = resolver(choice)? else { return Ok(None) };
    let resolver = &resolver;
    let found: Lookups = futures_util::stream::iter(names)
        .map(|name| async move {
            // Fully qualified: the search domains of resolv.conf never turn `acme.com` into `acme.com.corp`.
            let answer = match resolver.lookup_ip(format!("{name}.")).await {
                Ok(found) => {
                    let mut via = Vec::new();
                    let mut addresses = BTreeSet::new();
                    for record in found.as_lookup().answers() {
                        match &record.data {
                            RData::CNAME(target) => via.push(crate::model::dns_name(&target.0.to_ascii())),
                            RData::A(a) => drop(addresses.insert(IpAddr::V4(a.0))),
                            RData::AAAA(a) => drop(addresses.insert(IpAddr::V6(a.0))),
                            _ => {}
                        }
                    }
                    if addresses.is_empty() { Lookup::NotFound } else { Lookup::Found { via, addresses } }
                }
                Err(e) if e.is_no_records_found() => Lookup::NotFound,
                Err(e) => Lookup::Failed { error: e.to_string() },
            };
            (name, answer)
        })
        .buffer_unordered(CONCURRENT)
        .collect::<BTreeMap<_, _>>()
        .await;
    Ok(Some(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resolver_is_system_none_or_an_address() {
        assert_eq!("system".parse(), Ok(Choice::System));
        assert_eq!("none".parse(), Ok(Choice::None));
        assert_eq!("127.0.0.1:5353".parse(), Ok(Choice::At("127.0.0.1:5353".parse().unwrap())));
        assert_eq!("10.0.0.2".parse(), Ok(Choice::At("10.0.0.2:53".parse().unwrap())));
        assert_eq!("[::1]:53".parse(), Ok(Choice::At("[::1]:53".parse().unwrap())));
        assert!("dns.google".parse::<Choice>().unwrap_err().contains("is not `system`, `none`, or an address"));
    }
}
