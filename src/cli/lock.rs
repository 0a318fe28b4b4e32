//! The apply lock at the command line: taking the fleet's lock (S3 with `[fleet.lock]`, else the local lock
//! file) for `apply`, `apply FILE` and each applying pass of `reconcile --apply`, waiting with
//! `--lock-timeout`, and the `lock` and `unlock` commands.

use std::process::ExitCode;
use std::sync::Once;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::args::UnlockArgs;
use crate::aws::Aws;
use crate::aws::lock::{Acquired, Guard, now};
use crate::error::{Class, Classify};
use crate::lock::file;
use crate::lock::{self, Holder, JournalEntry, LockDoc, ago};
use crate::model::Fleet;

/// The person and process asking for the lock.
pub(super) fn holder() -> Holder {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| {
        // SAFETY: getuid has no preconditions.
        format!("uid {}", unsafe { libc::getuid() })
    });
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let host = if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "unknown host".to_string()
    };
    Holder { user, host, pid: std::process::id() }
}

fn local_path(fleet: &Fleet) -> std::path::PathBuf {
    fleet.dir.join(lock::LOCAL_FILE)
}

static LOCAL_NOTE: Once = Once::new();

/// Takes the fleet's lock for `operation`; `Ok(Err(refusal))` when another applier holds it (after waiting
/// up to `timeout`, polling with jitter). A lock whose lease expired is taken over and its journal
/// recovered, which is said on standard error.
pub(super) async fn take(fleet: &Fleet, aws: &Aws, operation: &str, timeout: Option<Duration>) -> Result<Result<Guard, String>> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut said_waiting = false;
    loop {
        let mine = LockDoc::new(holder(), operation, now(), fleet.settings.lock.as_ref().map_or(lock::DEFAULT_LEASE, |l| l.lease));
        let held = match &fleet.settings.lock {
            Some(settings) => match aws.lock_store(settings).acquire(mine).await? {
                Acquired::Held(held, dead) => {
                    if let Some(dead) = dead {
                        let t = now();
                        let lease = format!("whose lease ended {} ago", ago(t.saturating_sub(dead.expires)));
                        took_over(&dead, &lease, &held.journal().await);
                    }
                    Ok(Guard::S3(held))
                }
                Acquired::Refused(doc) => Err(doc.refusal(now())),
            },
            None => {
                let path = local_path(fleet);
                LOCAL_NOTE.call_once(|| {
                    eprintln!(
                        "Note: no [fleet.lock] in the desired state: the lock file {} excludes appliers on this machine only, not on others.",
                        path.display()
                    )
                });
                // A holder that has just taken the file writes its document a moment later: read it again a
                // few times, so that the refusal can name it.
                let mut tried = file::try_lock(&path, mine.clone()).with_context(|| format!("taking the lock file {}", path.display()))?;
                for _ in 0..10 {
                    if !matches!(tried, file::Acquired::Busy(None)) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    tried = file::try_lock(&path, mine.clone()).with_context(|| format!("taking the lock file {}", path.display()))?;
                }
                match tried {
                    file::Acquired::Held(held, dead) => {
                        if let Some(dead) = dead {
                            took_over(&dead, "whose process ended", held.journal());
                        }
                        Ok(Guard::Local(std::sync::Mutex::new(held)))
                    }
                    file::Acquired::Busy(Some(doc)) => Err(doc.local_refusal(now())),
                    file::Acquired::Busy(None) => Err(format!("the lock file {} is held by another process", path.display())),
                }
            }
        };
        match (held, deadline) {
            (Ok(guard), _) => return Ok(Ok(guard)),
            (Err(refusal), Some(deadline)) if Instant::now() < deadline => {
                if !said_waiting {
                    eprintln!("Waiting for the lock (up to {}): {refusal}", ago(timeout.unwrap_or_default().as_secs()));
                    said_waiting = true;
                }
                let seed =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos().into()) ^ u64::from(std::process::id());
                tokio::time::sleep(lock::poll_delay(seed).min(deadline.saturating_duration_since(Instant::now()))).await;
            }
            (Err(refusal), _) => return Ok(Err(refusal)),
        }
    }
}

/// The intent journal as the lock holds it, read without taking the lock (`plan`, `drift`, a pass that does
/// not apply): what the plan adopts from. A journal that cannot be read is said and left out: the plan then
/// shows a conflict where it would have shown an adoption, which is safe.
pub(super) async fn journal(fleet: &Fleet, aws: &Aws) -> Vec<JournalEntry> {
    let read = match &fleet.settings.lock {
        Some(settings) => aws.lock_store(settings).read().await.map(|found| found.map(|(doc, _)| doc.journal).unwrap_or_default()).map_err(|e| e.to_string()),
        None => file::journal(&local_path(fleet)).map_err(|e| format!("{}: {e}", local_path(fleet).display())),
    };
    read.unwrap_or_else(|e| {
        eprintln!("Warning: the lock's journal could not be read ({e}); an object a crashed apply left untagged shows as a conflict.");
        Vec::new()
    })
}

fn took_over(dead: &LockDoc, how: &str, journal: &[JournalEntry]) {
    let t = now();
    eprintln!(
        "Took over the lock of {} (`{}`, started {} ago), {how}; recovered its journal: {} create(s) not known to be complete{}",
        dead.holder,
        dead.operation,
        ago(t.saturating_sub(dead.started)),
        dead.journal.len(),
        if journal.is_empty() {
            String::new()
        } else {
            format!(": {}", crate::render::names(&journal.iter().map(|e| e.address.clone()).collect::<Vec<_>>(), 5))
        }
    );
}

/// What a refused applier is told, and the exit code.
pub(super) fn refused(refusal: &str) -> ExitCode {
    eprintln!("Error: {refusal}; nothing was applied.");
    eprintln!("  Wait for it to finish (or use --lock-timeout 5m). If its holder died, its lease ends it; `converge lock` shows it.");
    ExitCode::from(1)
}

/// `converge lock`: who holds the lock, doing what, since when, and its journal.
pub(super) async fn show(fleet: &Fleet) -> Result<ExitCode> {
    match &fleet.settings.lock {
        Some(settings) => {
            let aws = Aws::connect(&fleet.settings.region).await?;
            let store = aws.lock_store(settings);
            match store.read().await? {
                None => println!("No lock: s3://{}/{} is free.", store.bucket, store.key),
                Some((doc, _)) => print!("Lock s3://{}/{}:\n{}", store.bucket, store.key, doc.describe(now(), false)),
            }
        }
        None => {
            let path = local_path(fleet);
            match file::peek(&path).with_context(|| format!("reading the lock file {}", path.display()))? {
                None => println!("No lock: {} is free (no [fleet.lock]: a local lock file, on this machine only).", path.display()),
                Some(doc) => print!("Lock {} (local):\n{}", path.display(), doc.describe(now(), true)),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `converge unlock ID`: removes the S3 lock after the user confirms, only if its ID is still `ID` and the
/// object did not change meanwhile (`If-Match` on the ETag read).
pub(super) async fn unlock(fleet: &Fleet, args: &UnlockArgs) -> Result<ExitCode> {
    let Some(settings) = &fleet.settings.lock else {
        eprintln!("Error: there is no [fleet.lock]: the local lock file is released by the OS when its process ends; nothing to unlock.");
        return Ok(ExitCode::from(1));
    };
    let aws = Aws::connect(&fleet.settings.region).await?;
    let store = aws.lock_store(settings);
    let Some((doc, etag)) = store.read().await? else {
        eprintln!("Error: there is no lock at s3://{}/{}; nothing to unlock.", store.bucket, store.key);
        return Ok(ExitCode::from(1));
    };
    if doc.id != args.id {
        eprintln!("Error: the lock's ID is {}, not {}: it was released or taken since; nothing was removed.", doc.id, args.id);
        eprint!("{}", doc.describe(now(), false));
        return Ok(ExitCode::from(1));
    }
    print!("Lock s3://{}/{}:\n{}", store.bucket, store.key, doc.describe(now(), false));
    if !doc.expired(now()) {
        println!("Its lease is still running: remove it only if its holder is no longer applying.");
    }
    if !super::confirm("Do you want to remove this lock? Only 'yes' will be accepted.")? {
        println!("Unlock cancelled; the lock is kept.");
        return Ok(ExitCode::from(1));
    }
    match store.delete(&etag).await {
        Ok(()) => {
            println!("Removed the lock {}.", doc.id);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if matches!(e.class(), Class::PreconditionFailed | Class::Conflict) => {
            eprintln!("Error: the lock changed while you were confirming (renewed or taken over); nothing was removed. Run `converge lock`.");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}
