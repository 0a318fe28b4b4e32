//! How sites become a pool's user data: each site served by a pool is one line of the pool's
//! deploy manifest, rendered into the pool's bootstrap script. Deterministic (sites sorted, a fixed format),
//! so an unchanged fleet renders the same bytes and never makes a new launch template version.

use std::fmt::Write as _;
use std::io::Write as _;

use super::Fleet;

/// Where the manifest goes in a bootstrap script.
pub const MANIFEST_PLACEHOLDER: &str = "{{manifest}}";

/// AWS's limit on user data, before base64.
pub const USER_DATA_LIMIT: usize = 16 * 1024;

/// A pool's user data: the text people read in a plan, and the bytes AWS is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserData {
    pub text: String,
    /// The text, or its gzip when the text is over the limit (cloud-init decompresses gzip user data).
    pub bytes: Vec<u8>,
    pub compressed: bool,
}

/// Why a pool has no valid user data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDataProblem {
    pub message: String,
    pub help: String,
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Gzip at the best level: deterministic for the same text (no file name, no time stamp).
pub fn gzip(text: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(text.as_bytes()).expect("writing to memory");
    gz.finish().expect("writing to memory")
}

impl Fleet {
    /// The deploy manifest of `pool`: a header, then one tab-separated line per site, sorted by site.
    pub fn manifest(&self, pool: &str) -> String {
        let mut out = String::from("# converge deploy manifest: site, domain, aliases, repo, branch, commit\n");
        for (name, site, d) in self.deployed(pool) {
            let aliases = if site.aliases.is_empty() { "-".to_string() } else { site.aliases.join(",") };
            let _ = writeln!(out, "{name}\t{}\t{aliases}\t{}\t{}\t{}", site.domain, d.repo, d.branch, d.commit);
        }
        out
    }

    /// The sites `pool` deploys (those with a repo and a commit), sorted by name.
    pub fn deployed<'a>(&'a self, pool: &'a str) -> impl Iterator<Item = (&'a String, &'a super::Site, &'a super::Deploy)> + 'a {
        self.sites.iter().filter(move |(_, s)| s.pool.value == pool).filter_map(|(n, s)| Some((n, s, s.deploy.as_ref()?)))
    }

    /// The user data of `pool`: its bootstrap with the manifest in place of `{{manifest}}` (the manifest
    /// alone without a bootstrap), compressed when over AWS's limit, or why it cannot be. A bootstrap
    /// without the placeholder is the user data verbatim while the pool deploys no site (a hand-built
    /// pool's script, adopted as it is).
    pub fn user_data(&self, pool: &str) -> Result<UserData, UserDataProblem> {
        let manifest = self.manifest(pool);
        let text = match self.pools.get(pool).and_then(|p| p.bootstrap_text.as_deref()) {
            None => manifest,
            Some(bootstrap) if bootstrap.contains(MANIFEST_PLACEHOLDER) => bootstrap.replacen(MANIFEST_PLACEHOLDER, manifest.trim_end(), 1),
            Some(bootstrap) if self.deployed(pool).next().is_none() => bootstrap.to_string(),
            Some(_) => {
                return Err(UserDataProblem {
                    message: format!("the bootstrap has no {MANIFEST_PLACEHOLDER} placeholder for the pool's deploy manifest"),
                    help: format!("put {MANIFEST_PLACEHOLDER} where the script expects the site list"),
                });
            }
        };
        if text.len() <= USER_DATA_LIMIT {
            return Ok(UserData { bytes: text.clone().into_bytes(), text, compressed: false });
        }
        let bytes = gzip(&text);
        if bytes.len() > USER_DATA_LIMIT {
            let sites = self.sites.values().filter(|s| s.pool.value == pool).count();
            return Err(UserDataProblem {
                message: format!(
                    "the user data is {} bytes ({} gzipped), over AWS's limit of {} bytes",
                    thousands(text.len()),
                    thousands(bytes.len()),
                    thousands(USER_DATA_LIMIT)
                ),
                help: format!("split the pool's {sites} sites across two pools, or shorten the bootstrap script"),
            });
        }
        Ok(UserData { text, bytes, compressed: true })
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::fleet_of;

    fn fleet(sites: usize, repo_len: usize, bootstrap: Option<&str>) -> crate::model::Fleet {
        let mut text = String::from(
            "[fleet]\nname = \"agency\"\nregion = \"eu-west-1\"\n[image.n]\nname = \"x-*\"\n[pool.web]\nimage = \"n\"\ninstance_type = \"t3.large\"\nmin = 1\nmax = 2\n",
        );
        // Declared in reverse order: the manifest sorts them.
        for i in (0..sites).rev() {
            let repo = format!("git@git.agency.net:sites/{}.git", "r".repeat(repo_len));
            text.push_str(&format!(
                "[site.s{i:04}]\ndomain = \"www.s{i}.example\"\naliases = [\"s{i}.example\"]\npool = \"web\"\nrepo = \"{repo}\"\ncommit = \"{:010x}\"\n",
                i * 7919
            ));
        }
        let mut f = fleet_of(&text);
        f.pools.get_mut("web").unwrap().bootstrap_text = bootstrap.map(str::to_string);
        f
    }

    #[test]
    fn the_manifest_is_sorted_and_stable() {
        let f = fleet(3, 4, None);
        insta::assert_snapshot!(f.manifest("web"), @r"
        # converge deploy manifest: site, domain, aliases, repo, branch, commit
        s0000	www.s0.example	s0.example	git@git.agency.net:sites/rrrr.git	main	0000000000
        s0001	www.s1.example	s1.example	git@git.agency.net:sites/rrrr.git	main	0000001eef
        s0002	www.s2.example	s2.example	git@git.agency.net:sites/rrrr.git	main	0000003dde
        ");
        assert_eq!(f.user_data("web").unwrap().text, f.manifest("web"));
    }

    #[test]
    fn the_bootstrap_takes_the_manifest_at_its_placeholder() {
        let f = fleet(1, 4, Some("#!/bin/sh\ncat > /etc/sites <<'EOF'\n{{manifest}}\nEOF\n"));
        let ud = f.user_data("web").unwrap();
        assert!(ud.text.starts_with("#!/bin/sh\ncat > /etc/sites <<'EOF'\n# converge deploy manifest"));
        assert!(ud.text.ends_with("main\t0000000000\nEOF\n"));
        assert!(!ud.compressed);
        let f = fleet(1, 4, Some("#!/bin/sh\necho no placeholder\n"));
        assert!(f.user_data("web").unwrap_err().message.contains("no {{manifest}} placeholder"));
    }

    #[test]
    fn user_data_over_the_limit_is_gzipped_and_past_that_explained() {
        let ud = fleet(250, 20, None).user_data("web").unwrap();
        assert!(ud.text.len() > super::USER_DATA_LIMIT && ud.bytes.len() <= super::USER_DATA_LIMIT && ud.compressed);
        // Incompressible enough: random-looking commits and long distinct repos.
        let mut f = fleet(1, 4, None);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let noise: String = (0..40_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect();
        f.pools.get_mut("web").unwrap().bootstrap_text = Some(format!("#!/bin/sh\n# {noise}\n{{{{manifest}}}}\n"));
        let problem = f.user_data("web").unwrap_err();
        assert!(problem.message.starts_with("the user data is 40,"), "{problem:?}");
        assert!(problem.message.ends_with("over AWS's limit of 16,384 bytes"), "{problem:?}");
        assert_eq!(problem.help, "split the pool's 1 sites across two pools, or shorten the bootstrap script");
    }
}
