//! The apply lock's content and its decisions, as plain data: the JSON document an applier holds (who, doing
//! what, since when, until when, and the intent journal), whether a lease has expired at a given time, what a
//! second applier is told, and what a run does with the lock it found. No IO: the S3 object is read and
//! written by `aws::lock`, the local lock file by `lock::file`; both hold this same document.

pub mod file;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::Digest;

/// The lease when `[fleet.lock]` gives none.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);
/// The shortest and longest lease `[fleet.lock] lease` accepts: renewed every third, a lease under 30 s
/// would be lost to one slow call; one over an hour keeps a dead holder's lock for too long.
pub const MIN_LEASE: Duration = Duration::from_secs(30);
pub const MAX_LEASE: Duration = Duration::from_secs(3600);

/// The lock object's key when `[fleet.lock]` gives none.
pub fn default_key(fleet: &str) -> String {
    format!("converge/{fleet}.lock")
}

/// The local lock file's name, inside the desired-state folder, when there is no `[fleet.lock]`.
pub const LOCAL_FILE: &str = ".converge.lock";

/// Who holds the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub user: String,
    pub host: String,
    pub pid: u32,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{} (pid {})", self.user, self.host, self.pid)
    }
}

/// A create about to be made: its address and the exact AWS name it creates. Recorded before the create,
/// cleared once the create and its tagging succeeded, so that an object left untagged by a crash can be
/// recognised as ours.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JournalEntry {
    pub address: String,
    pub aws_name: String,
}

/// The lock's document (the S3 object's body, the local lock file's content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockDoc {
    /// What `converge unlock ID` names: unique to one acquisition.
    pub id: String,
    pub holder: Holder,
    /// What the holder is doing: `apply`, `apply plan.json`, `reconcile --apply`.
    pub operation: String,
    /// Seconds since the epoch when the lock was taken.
    pub started: u64,
    /// Seconds since the epoch when the lease ends unless renewed.
    pub expires: u64,
    /// The intent journal: creates started and not known to be complete.
    #[serde(default)]
    pub journal: Vec<JournalEntry>,
}

impl LockDoc {
    /// A new lock for `holder` doing `operation`, taken at `now` with `lease`.
    pub fn new(holder: Holder, operation: &str, now: u64, lease: Duration) -> LockDoc {
        let mut h = sha2::Sha256::new();
        h.update(format!("{}\0{}\0{}\0{now}\0{}", holder.user, holder.host, holder.pid, nanos()).as_bytes());
        let id = hex::encode(&h.finalize()[..8]);
        LockDoc { id, holder, operation: operation.to_string(), started: now, expires: now + lease.as_secs(), journal: Vec::new() }
    }

    /// Whether the lease has run out at `now` (a lease ending exactly now has run out).
    pub fn expired(&self, now: u64) -> bool {
        now >= self.expires
    }

    /// The same lock with its lease extended to `now + lease`.
    pub fn renewed(&self, now: u64, lease: Duration) -> LockDoc {
        LockDoc { expires: now + lease.as_secs(), ..self.clone() }
    }

    /// Records a create about to be made (once per address: a second record replaces the name).
    pub fn record(&mut self, entry: JournalEntry) {
        self.journal.retain(|e| e.address != entry.address);
        self.journal.push(entry);
    }

    /// The journal as an apply begins: without the entries its plan found `settled`, with `entries` (the
    /// creates and adoptions it may make) added.
    pub fn begin(&mut self, settled: &[JournalEntry], entries: Vec<JournalEntry>) {
        self.journal.retain(|e| !settled.contains(e));
        for e in entries {
            self.record(e);
        }
    }

    /// Clears the entry of `address` (a create that completed); whether there was one.
    pub fn clear(&mut self, address: &str) -> bool {
        let before = self.journal.len();
        self.journal.retain(|e| e.address != address);
        self.journal.len() != before
    }

    /// What a second applier is told: who holds the lock, doing what, since how long.
    pub fn refusal(&self, now: u64) -> String {
        format!("{} (lock ID {}; lease ends in {})", self.held_by(now), self.id, ago(self.expires.saturating_sub(now)))
    }

    /// What a second applier on this machine is told about the local lock file, which has no lease: the OS
    /// releases it when its process ends.
    pub fn local_refusal(&self, now: u64) -> String {
        format!("{} (the lock file is released when that process ends)", self.held_by(now))
    }

    fn held_by(&self, now: u64) -> String {
        format!("the fleet is locked by {} running `{}`, started {} ago", self.holder, self.operation, ago(now.saturating_sub(self.started)))
    }

    /// The lock in a few lines, for `converge lock`; `local`: the local lock file, which has no lease.
    pub fn describe(&self, now: u64, local: bool) -> String {
        let lease = if local {
            "none: the lock file is released when its process ends".to_string()
        } else if self.expired(now) {
            format!("expired {} ago (the next apply takes it over)", ago(now - self.expires))
        } else {
            format!("ends in {} unless renewed", ago(self.expires - now))
        };
        let mut out = format!(
            "ID:        {}\nholder:    {}\noperation: {}\nstarted:   {} ago\nlease:     {lease}\n",
            self.id,
            self.holder,
            self.operation,
            ago(now.saturating_sub(self.started))
        );
        if self.journal.is_empty() {
            out.push_str("journal:   empty\n");
        } else {
            out.push_str(&format!("journal:   {} create(s) not known to be complete\n", self.journal.len()));
            for e in &self.journal {
                out.push_str(&format!("  {} ({})\n", e.address, e.aws_name));
            }
        }
        out
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a lock document serialises")
    }

    pub fn from_json(text: &str) -> Result<LockDoc, String> {
        serde_json::from_str(text).map_err(|e| format!("not a converge lock document: {e}"))
    }
}

/// What a run does with the lock it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// No lock: take it (a conditional create).
    Free,
    /// Held and its lease running: refused (or wait, with `--lock-timeout`).
    Held(Box<LockDoc>),
    /// Held by a holder whose lease ran out: take it over (conditionally on what was read), recovering its
    /// journal.
    Expired(Box<LockDoc>),
}

/// Decides on the lock read at `now`.
pub fn decide(existing: Option<LockDoc>, now: u64) -> Found {
    match existing {
        None => Found::Free,
        Some(doc) if doc.expired(now) => Found::Expired(Box::new(doc)),
        Some(doc) => Found::Held(Box::new(doc)),
    }
}

/// The lock a taker writes over an expired one: its own, carrying the dead holder's journal.
pub fn take_over(dead: &LockDoc, mine: LockDoc) -> LockDoc {
    let mut mine = mine;
    for e in &dead.journal {
        mine.record(e.clone());
    }
    mine
}

/// How often the holder renews its lease: every third of it, so that two renewals can fail (a slow call, a
/// throttled one) before the lease runs out.
pub fn renew_every(lease: Duration) -> Duration {
    lease / 3
}

/// The wait before polling a held lock again, with `--lock-timeout`: 2 to 5 seconds, jittered by `seed` so
/// that waiting appliers do not poll in step.
pub fn poll_delay(seed: u64) -> Duration {
    Duration::from_millis(2000 + seed % 3000)
}

/// A duration as people write it: `90s`, `5m`, `1h`, or bare seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration such as 90s, 5m or 1h");
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n.checked_mul(60).ok_or_else(bad)?,
        "h" => n.checked_mul(3600).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(seconds))
}

/// A number of seconds in words: `45s`, `3m 20s`, `2h 5m`.
pub fn ago(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => match s % 60 {
            0 => format!("{}m", s / 60),
            r => format!("{}m {r}s", s / 60),
        },
        s => match (s % 3600) / 60 {
            0 => format!("{}h", s / 3600),
            m => format!("{}h {m}m", s / 3600),
        },
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder() -> Holder {
        Holder { user: "ana".into(), host: "ci-7".into(), pid: 4242 }
    }

    #[test]
    fn a_lease_expires_at_its_end() {
        let doc = LockDoc::new(holder(), "apply", 1000, Duration::from_secs(120));
        assert_eq!(doc.expires, 1120);
        assert!(!doc.expired(1119));
        assert!(doc.expired(1120));
        let renewed = doc.renewed(1100, Duration::from_secs(120));
        assert_eq!((renewed.started, renewed.expires, &renewed.id), (1000, 1220, &doc.id), "renewing keeps the start and the ID");
    }

    #[test]
    fn ids_differ_between_acquisitions() {
        let a = LockDoc::new(holder(), "apply", 1000, DEFAULT_LEASE);
        let b = LockDoc::new(holder(), "apply", 1000, DEFAULT_LEASE);
        assert_ne!(a.id, b.id);
        assert_eq!(a.id.len(), 16);
    }

    #[test]
    fn the_refusal_names_the_holder_the_operation_and_the_age() {
        let doc = LockDoc { id: "abc".into(), ..LockDoc::new(holder(), "reconcile --apply", 1000, DEFAULT_LEASE) };
        assert_eq!(
            doc.refusal(1200),
            "the fleet is locked by ana@ci-7 (pid 4242) running `reconcile --apply`, started 3m 20s ago (lock ID abc; lease ends in 0s)"
        );
        assert_eq!(
            doc.refusal(1030),
            "the fleet is locked by ana@ci-7 (pid 4242) running `reconcile --apply`, started 30s ago (lock ID abc; lease ends in 1m 30s)"
        );
    }

    #[test]
    fn the_description_names_everything_and_the_journal() {
        let mut doc = LockDoc { id: "abc".into(), ..LockDoc::new(holder(), "apply", 1000, DEFAULT_LEASE) };
        doc.record(JournalEntry { address: "bucket.acme".into(), aws_name: "acme-media".into() });
        assert_eq!(
            doc.describe(1030, false),
            "ID:        abc\nholder:    ana@ci-7 (pid 4242)\noperation: apply\nstarted:   30s ago\nlease:     ends in 1m 30s unless renewed\njournal:   1 create(s) not known to be complete\n  bucket.acme (acme-media)\n"
        );
        assert!(doc.describe(1200, false).contains("lease:     expired 1m 20s ago (the next apply takes it over)"));
        assert!(doc.describe(1200, true).contains("lease:     none: the lock file is released when its process ends"));
    }

    #[test]
    fn a_found_lock_is_free_held_or_expired() {
        let doc = LockDoc::new(holder(), "apply", 1000, DEFAULT_LEASE);
        assert_eq!(decide(None, 5000), Found::Free);
        assert_eq!(decide(Some(doc.clone()), 1119), Found::Held(Box::new(doc.clone())));
        assert_eq!(decide(Some(doc.clone()), 1120), Found::Expired(Box::new(doc)));
    }

    #[test]
    fn the_journal_records_once_per_address_and_a_taker_inherits_it() {
        let mut dead = LockDoc::new(holder(), "apply", 1000, DEFAULT_LEASE);
        dead.record(JournalEntry { address: "bucket.acme".into(), aws_name: "acme-media".into() });
        dead.record(JournalEntry { address: "security_group.web".into(), aws_name: "agency-web".into() });
        dead.record(JournalEntry { address: "bucket.acme".into(), aws_name: "acme-media-2".into() });
        assert_eq!(dead.journal.len(), 2);
        assert!(dead.clear("security_group.web"));
        assert!(!dead.clear("security_group.web"));
        let mine = take_over(&dead, LockDoc::new(Holder { user: "bo".into(), host: "laptop".into(), pid: 1 }, "apply", 2000, DEFAULT_LEASE));
        assert_eq!(mine.journal, vec![JournalEntry { address: "bucket.acme".into(), aws_name: "acme-media-2".into() }]);
        assert_eq!(mine.holder.user, "bo");
    }

    #[test]
    fn the_document_round_trips_through_json_and_names_its_fields() {
        let mut doc = LockDoc::new(holder(), "apply plan.json", 1000, DEFAULT_LEASE);
        doc.record(JournalEntry { address: "bucket.acme".into(), aws_name: "acme-media".into() });
        let json = doc.to_json();
        for field in ["\"holder\"", "\"user\"", "\"host\"", "\"pid\"", "\"operation\"", "\"started\"", "\"expires\"", "\"journal\"", "\"aws_name\""] {
            assert!(json.contains(field), "{field} in {json}");
        }
        assert_eq!(LockDoc::from_json(&json), Ok(doc));
        assert!(LockDoc::from_json("{}").unwrap_err().starts_with("not a converge lock document"));
    }

    #[test]
    fn durations_and_ages_read_as_people_write_them() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("2 minutes").is_err());
        assert!(parse_duration("m").is_err());
        assert_eq!((ago(5), ago(60), ago(200), ago(7500), ago(7200)), ("5s".into(), "1m".into(), "3m 20s".into(), "2h 5m".into(), "2h".into()));
        assert_eq!(renew_every(DEFAULT_LEASE), Duration::from_secs(40));
        assert!((2000..5000).contains(&(poll_delay(123_456_789).as_millis() as u64)));
    }
}
