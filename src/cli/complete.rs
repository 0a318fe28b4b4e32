//! Shell completions: `converge completions bash|zsh|fish` prints the registration, and the shell then
//! asks the binary itself (`COMPLETE=<shell> converge -- <words>`, clap_complete's dynamic engine) for each
//! completion, so that addresses and site names come from the desired state of `--dir` (or `CONVERGE_DIR`,
//! or `desired-state`).

use std::ffi::OsStr;
use std::path::PathBuf;

use clap_complete::engine::CompletionCandidate;
use clap_complete::env::EnvCompleter;

use crate::model;
use crate::resource;

/// The variable that turns a run of the binary into a completion.
pub const VAR: &str = "COMPLETE";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Prints what the shell sources to complete `converge`.
pub fn registration(shell: Shell, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let (name, bin) = ("converge", "converge");
    match shell {
        Shell::Bash => clap_complete::env::Bash.write_registration(VAR, name, bin, bin, out),
        Shell::Zsh => clap_complete::env::Zsh.write_registration(VAR, name, bin, bin, out),
        Shell::Fish => clap_complete::env::Fish.write_registration(VAR, name, bin, bin, out),
    }
}

/// The desired-state folder of the command line being completed: its `--dir`, else `CONVERGE_DIR`, else
/// `desired-state`.
fn dir() -> PathBuf {
    let args: Vec<String> = std::env::args().collect();
    let given = args.iter().enumerate().find_map(|(i, a)| match a.strip_prefix("--dir=") {
        Some(d) => Some(d.to_string()),
        None if a == "--dir" => args.get(i + 1).cloned(),
        None => None,
    });
    given.or_else(|| std::env::var("CONVERGE_DIR").ok()).unwrap_or_else(|| "desired-state".into()).into()
}

fn candidates(current: &OsStr, names: impl Iterator<Item = (String, String)>) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    names.filter(|(n, _)| n.starts_with(current.as_ref())).map(|(n, help)| CompletionCandidate::new(n).help(Some(help.into()))).collect()
}

/// Every address the desired state declares, with its kind's noun.
fn declared() -> Vec<(String, String)> {
    let Ok(fleet) = model::load_dir(&dir()) else { return Vec::new() };
    resource::desired(&fleet, &resource::Environment::default()).keys().map(|a| (a.to_string(), a.kind.as_str().replace('_', " "))).collect()
}

/// `--target`: `site.NAME`, `pool.NAME` and every address.
pub fn targets(current: &OsStr) -> Vec<CompletionCandidate> {
    let Ok(fleet) = model::load_dir(&dir()) else { return Vec::new() };
    let sites = fleet.sites.iter().map(|(n, s)| (format!("site.{n}"), format!("site {}", s.domain)));
    let pools = fleet.pools.keys().map(|n| (format!("pool.{n}"), "pool: its template and group".to_string()));
    candidates(current, sites.chain(pools).chain(declared()))
}

/// `--replace`, `forget`: every address.
pub fn addresses(current: &OsStr) -> Vec<CompletionCandidate> {
    candidates(current, declared().into_iter())
}
