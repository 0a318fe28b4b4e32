//! The apply lock: its S3 object written with the emulator's real conditional writes, two real binaries
//! racing for it, an expired lease taken over with its journal, `converge lock` and `converge unlock`, and
//! the local lock file without `[fleet.lock]`.

use std::io::Write;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use converge::aws::lock::{Acquired, LockStore, now};
use converge::error::{Class, Classify};
use converge::lock::{Holder, JournalEntry, LockDoc};
use converge::model::LockSettings;

use crate::support::*;

const BUCKET: &str = "agency-ops";
const KEY: &str = "converge/agency.lock";

fn holder(user: &str) -> Holder {
    Holder { user: user.into(), host: "test-host".into(), pid: 7 }
}

async fn bucket(m: &Moto) {
    let cfg = aws_sdk_s3::types::CreateBucketConfiguration::builder().location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1).build();
    m.s3().create_bucket().bucket(BUCKET).create_bucket_configuration(cfg).send().await.unwrap();
}

fn store(m: &Moto, lease: Duration) -> LockStore {
    m.aws().lock_store(&LockSettings { bucket: BUCKET.into(), key: KEY.into(), lease })
}

/// The lock object as an independent client reads it.
async fn object(m: &Moto) -> Option<(LockDoc, String)> {
    let got = m.s3().get_object().bucket(BUCKET).key(KEY).send().await.ok()?;
    let etag = got.e_tag().unwrap().to_string();
    let body = got.body.collect().await.unwrap().into_bytes();
    Some((LockDoc::from_json(std::str::from_utf8(&body).unwrap()).unwrap(), etag))
}

/// Writes a lock by hand, as another applier (or one that died) left it.
async fn put_by_hand(m: &Moto, doc: &LockDoc) {
    m.s3().put_object().bucket(BUCKET).key(KEY).body(doc.to_json().into_bytes().into()).send().await.unwrap();
}

#[tokio::test]
async fn lock_objects_are_written_with_the_emulators_conditional_writes() {
    let m = Moto::start();
    bucket(&m).await;
    let s = store(&m, Duration::from_secs(120));
    let a = LockDoc::new(holder("ana"), "apply", now(), Duration::from_secs(120));
    let etag = s.create(&a).await.expect("If-None-Match: * creates the lock");
    let again = s.create(&LockDoc::new(holder("bo"), "apply", now(), Duration::from_secs(120))).await.unwrap_err();
    assert_eq!(again.class(), Class::PreconditionFailed, "{again}");
    assert_eq!(again.code(), Some("PreconditionFailed"));
    let stale = s.replace(&a, "\"0123456789abcdef0123456789abcdef\"").await.unwrap_err();
    assert_eq!(stale.class(), Class::PreconditionFailed, "If-Match on another ETag: {stale}");
    let renewed = s.replace(&a.renewed(now() + 10, Duration::from_secs(120)), &etag).await.expect("If-Match on the ETag replaces it");
    assert_ne!(renewed, etag);
    let refused = s.delete(&etag).await.unwrap_err();
    assert_eq!(refused.class(), Class::PreconditionFailed, "a delete on the old ETag is refused: {refused}");
    assert!(object(&m).await.is_some());
    s.delete(&renewed).await.expect("a delete on the current ETag");
    assert!(object(&m).await.is_none());
}

#[tokio::test]
async fn a_held_lock_refuses_others_keeps_its_journal_renews_its_lease_and_knows_when_it_is_lost() {
    let m = Moto::start();
    bucket(&m).await;
    let s = store(&m, Duration::from_secs(3));
    let Acquired::Held(held, None) = s.acquire(LockDoc::new(holder("ana"), "apply", now(), Duration::from_secs(3))).await.unwrap() else {
        panic!("a free lock is taken")
    };
    let Acquired::Refused(doc) = s.acquire(LockDoc::new(holder("bo"), "apply", now(), Duration::from_secs(3))).await.unwrap() else {
        panic!("a held lock is refused")
    };
    assert_eq!(doc.holder.user, "ana");
    assert!(doc.refusal(now()).contains("locked by ana@test-host (pid 7) running `apply`"), "{}", doc.refusal(now()));

    let web = JournalEntry { address: "security_group.web".into(), aws_name: "agency-web".into() };
    held.begin(&[], vec![JournalEntry { address: "bucket.acme".into(), aws_name: "acme-media".into() }, web.clone()]).await.unwrap();
    assert_eq!(object(&m).await.unwrap().0.journal.len(), 2, "recorded in the object before begin returns");
    // Cleared in memory; written with the next write (here, the next begin's).
    held.done("security_group.web");
    held.begin(&[web], vec![]).await.unwrap();
    let (on_s3, first_etag) = object(&m).await.unwrap();
    assert_eq!(on_s3.journal, vec![JournalEntry { address: "bucket.acme".into(), aws_name: "acme-media".into() }], "the journal is in the object");

    // Renewed every second (a third of the lease): the object changes and its lease moves on.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (renewed, renewed_etag) = object(&m).await.unwrap();
    assert_ne!(renewed_etag, first_etag);
    assert!(renewed.expires > on_s3.expires, "the lease was renewed: {} -> {}", on_s3.expires, renewed.expires);
    assert_eq!((renewed.id.as_str(), renewed.journal.len()), (on_s3.id.as_str(), 1));

    // Someone overwrites it: the next renewal's If-Match fails, and the lock is lost.
    put_by_hand(&m, &LockDoc::new(holder("mallory"), "apply", now(), Duration::from_secs(120))).await;
    tokio::time::timeout(Duration::from_secs(5), held.lost()).await.expect("the lost lock is noticed within a renewal");
    assert!(held.lost_reason().await.unwrap().contains("changed or removed by someone else"));
    let e = held.release().await.unwrap_err();
    assert_eq!(e.class(), Class::PreconditionFailed, "{e}");
    assert_eq!(object(&m).await.unwrap().0.holder.user, "mallory", "a lost lock is not deleted");
}

#[tokio::test]
async fn of_two_takers_of_a_free_or_an_expired_lock_exactly_one_wins_and_inherits_the_journal() {
    let m = Moto::start();
    bucket(&m).await;
    let s = store(&m, Duration::from_secs(120));
    let lease = Duration::from_secs(120);
    for round in 0..3 {
        let (a, b) = tokio::join!(s.acquire(LockDoc::new(holder("ana"), "apply", now(), lease)), s.acquire(LockDoc::new(holder("bo"), "apply", now(), lease)));
        let held: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().filter_map(|r| if let Acquired::Held(h, _) = r { Some(h) } else { None }).collect();
        assert_eq!(held.len(), 1, "round {round}: exactly one of two takes a free lock");
        held.into_iter().next().unwrap().release().await.unwrap();
    }

    let mut dead = LockDoc::new(holder("ghost"), "apply", now() - 600, lease);
    dead.expires = now() - 5;
    dead.record(JournalEntry { address: "bucket.acme".into(), aws_name: "acme-media".into() });
    put_by_hand(&m, &dead).await;
    let (a, b) = tokio::join!(s.acquire(LockDoc::new(holder("ana"), "apply", now(), lease)), s.acquire(LockDoc::new(holder("bo"), "apply", now(), lease)));
    let mut winners = Vec::new();
    for r in [a.unwrap(), b.unwrap()] {
        match r {
            Acquired::Held(h, Some(d)) => winners.push((h, d)),
            Acquired::Held(_, None) => panic!("an expired lock is taken over, not created"),
            Acquired::Refused(doc) => assert_ne!(doc.holder.user, "ghost", "the loser is refused by the winner"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one of two takes the expired lock over");
    let (held, recovered) = winners.pop().unwrap();
    assert_eq!(recovered.holder.user, "ghost");
    assert_eq!(held.journal().await, dead.journal, "the taker holds the dead holder's journal");
    assert_eq!(object(&m).await.unwrap().0.journal, dead.journal);
    // A journal not cleared stays for the next applier: the lock is left with its lease ended.
    held.release().await.unwrap();
    let (left, _) = object(&m).await.unwrap();
    assert!(left.expired(now()) && left.journal == dead.journal, "{left:?}");
}

const LOCKED_FLEET: &str = r#"
[fleet]
name = "agency"
region = "eu-west-1"

[fleet.lock]
bucket = "agency-ops"

[network]
zones = ["eu-west-1a", "eu-west-1b"]

[security_group.web]
ingress = [{ ports = "80", cidr = "0.0.0.0/0" }]
"#;

fn spawn_apply(m: &Moto, dir: &std::path::Path) -> Child {
    converge_command(dir, &["apply"], Some(&m.endpoint)).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("running converge")
}

fn finish(child: Child) -> Run {
    let out = child.wait_with_output().unwrap();
    Run { code: out.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&out.stdout).into(), stderr: String::from_utf8_lossy(&out.stderr).into() }
}

/// Two applies started together: one takes the lock and waits at its prompt; the other is refused at
/// once, naming the holder; then the first, confirmed, applies.
/// Returns the refused run, the applied one, and the process id of the one that held the lock.
fn exactly_one_of_two_applies_proceeds(m: &Moto, dir: &std::path::Path) -> (Run, Run, u32) {
    let mut children = vec![spawn_apply(m, dir), spawn_apply(m, dir)];
    let deadline = Instant::now() + Duration::from_secs(60);
    let refused = loop {
        if let Some(i) = children.iter_mut().position(|c| c.try_wait().unwrap().is_some()) {
            break children.remove(i);
        }
        assert!(Instant::now() < deadline, "neither apply was refused");
        std::thread::sleep(Duration::from_millis(100));
    };
    let refused = finish(refused);
    let mut holder = children.pop().unwrap();
    let pid = holder.id();
    holder.stdin.take().unwrap().write_all(b"yes\n").unwrap();
    (refused, finish(holder), pid)
}

#[tokio::test]
async fn two_applies_started_together_one_proceeds_and_the_other_is_refused_naming_the_holder() {
    let m = Moto::start();
    bucket(&m).await;
    let dir = FleetDir::new(&[("fleet.toml", LOCKED_FLEET)]);
    let (refused, applied, pid) = exactly_one_of_two_applies_proceeds(&m, dir.path());
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("Error: the fleet is locked by ") && refused.stderr.contains(&format!("(pid {pid}) running `apply`")), "{refused:?}");
    assert!(refused.stderr.contains("running `apply`, started ") && refused.stderr.contains("nothing was applied"), "{refused:?}");
    assert!(!refused.stdout.contains("Apply complete"), "{refused:?}");
    assert_eq!(applied.code, 0, "{applied:?}");
    assert!(applied.stdout.contains("Apply complete! Resources: 1 added"), "{applied:?}");
    assert!(object(&m).await.is_none(), "the lock is released after the apply");
    let shown = m.converge(dir.path(), &["lock"]);
    assert!(shown.stdout.contains("No lock: s3://agency-ops/converge/agency.lock is free."), "{shown:?}");
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_its_journal_recovered() {
    let m = Moto::start();
    bucket(&m).await;
    let dir = FleetDir::new(&[("fleet.toml", LOCKED_FLEET)]);
    let mut dead = LockDoc::new(holder("ghost"), "reconcile --apply", now() - 900, Duration::from_secs(120));
    dead.expires = now() - 60;
    dead.record(JournalEntry { address: "bucket.acme".into(), aws_name: "acme-media".into() });
    put_by_hand(&m, &dead).await;
    let shown = m.converge(dir.path(), &["lock"]);
    assert!(shown.stdout.contains("holder:    ghost@test-host (pid 7)") && shown.stdout.contains("expired 1m"), "{shown:?}");
    assert!(shown.stdout.contains("bucket.acme (acme-media)"), "{shown:?}");

    let run = m.converge(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("Took over the lock of ghost@test-host (pid 7) (`reconcile --apply`, started 15m"), "{run:?}");
    assert!(run.stderr.contains("recovered its journal: 1 create(s) not known to be complete: bucket.acme"), "{run:?}");
    // The entry names nothing this fleet has or wants: settled by the plan, and the lock released.
    assert!(object(&m).await.is_none(), "the journal is empty and the lock released");
}

#[tokio::test]
async fn unlock_removes_the_lock_only_if_its_id_still_matches() {
    let m = Moto::start();
    bucket(&m).await;
    let dir = FleetDir::new(&[("fleet.toml", LOCKED_FLEET)]);
    let doc = LockDoc::new(holder("ana"), "apply", now() - 30, Duration::from_secs(120));
    put_by_hand(&m, &doc).await;
    let shown = m.converge(dir.path(), &["lock"]);
    assert!(shown.stdout.contains(&format!("ID:        {}", doc.id)) && shown.stdout.contains("operation: apply"), "{shown:?}");

    let stale = run_converge(dir.path(), &["unlock", "0000000000000000"], Some(&m.endpoint), Some("yes\n"));
    assert_eq!(stale.code, 1, "{stale:?}");
    assert!(stale.stderr.contains(&format!("the lock's ID is {}, not 0000000000000000", doc.id)) && stale.stderr.contains("nothing was removed"), "{stale:?}");
    assert!(object(&m).await.is_some(), "a stale ID removes nothing");

    let declined = run_converge(dir.path(), &["unlock", &doc.id], Some(&m.endpoint), Some("no\n"));
    assert_eq!(declined.code, 1, "{declined:?}");
    assert!(object(&m).await.is_some(), "not confirmed: kept");

    let removed = run_converge(dir.path(), &["unlock", &doc.id], Some(&m.endpoint), Some("yes\n"));
    assert_eq!(removed.code, 0, "{removed:?}");
    assert!(removed.stdout.contains("Its lease is still running") && removed.stdout.contains(&format!("Removed the lock {}.", doc.id)), "{removed:?}");
    assert!(object(&m).await.is_none());
}

#[tokio::test]
async fn an_apply_waits_for_the_lock_with_lock_timeout() {
    let m = Moto::start();
    bucket(&m).await;
    let dir = FleetDir::new(&[("fleet.toml", LOCKED_FLEET)]);
    let s = store(&m, Duration::from_secs(120));
    let Acquired::Held(held, _) = s.acquire(LockDoc::new(holder("ana"), "apply", now(), Duration::from_secs(120))).await.unwrap() else { panic!() };
    let child = converge_command(dir.path(), &["apply", "--auto-approve", "--lock-timeout", "1m"], Some(&m.endpoint))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    held.release().await.unwrap();
    let run = tokio::task::spawn_blocking(move || finish(child)).await.unwrap();
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("Waiting for the lock (up to 1m): the fleet is locked by ana@test-host (pid 7)"), "{run:?}");
    assert!(run.stdout.contains("Apply complete!"), "{run:?}");
}

#[tokio::test]
async fn without_fleet_lock_a_local_lock_file_excludes_appliers_on_this_machine() {
    let m = Moto::start();
    let dir = FleetDir::new(&[("fleet.toml", &LOCKED_FLEET.replace("[fleet.lock]\nbucket = \"agency-ops\"\n", ""))]);
    let (refused, applied, pid) = exactly_one_of_two_applies_proceeds(&m, dir.path());
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("Note: no [fleet.lock] in the desired state: the lock file") && refused.stderr.contains("on this machine only"),
        "{refused:?}"
    );
    assert!(refused.stderr.contains(&format!("(pid {pid}) running `apply`, started ")), "{refused:?}");
    assert_eq!(applied.code, 0, "{applied:?}");
    assert_eq!(std::fs::read_to_string(dir.path().join(".converge.lock")).unwrap(), "", "released: the file is emptied");
    let shown = m.converge(dir.path(), &["lock"]);
    assert!(shown.stdout.contains("is free (no [fleet.lock]"), "{shown:?}");
}

#[tokio::test]
async fn an_apply_whose_lock_is_lost_starts_nothing_and_fails() {
    let m = Moto::start();
    bucket(&m).await;
    let dir = FleetDir::new(&[("fleet.toml", &LOCKED_FLEET.replace("bucket = \"agency-ops\"\n", "bucket = \"agency-ops\"\nlease = \"30s\"\n"))]);
    let mut child = spawn_apply(&m, dir.path());
    // It holds the lock while it waits at its prompt; someone else takes the lock meanwhile.
    let deadline = Instant::now() + Duration::from_secs(30);
    while object(&m).await.is_none() {
        assert!(Instant::now() < deadline, "the apply never took the lock");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    put_by_hand(&m, &LockDoc::new(holder("mallory"), "apply", now(), Duration::from_secs(120))).await;
    // Its next renewal (every 10 s) finds the object changed.
    tokio::time::sleep(Duration::from_secs(12)).await;
    child.stdin.take().unwrap().write_all(b"yes\n").unwrap();
    let run = tokio::task::spawn_blocking(move || finish(child)).await.unwrap();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("LOCK LOST: renewing the lease found the lock s3://agency-ops/converge/agency.lock changed or removed by someone else"),
        "{run:?}"
    );
    assert!(run.stderr.contains("Error: the apply lock was lost"), "{run:?}");
    assert!(run.stdout.contains("The apply lock was lost: waiting for 0 running change(s) to finish; nothing new will start."), "{run:?}");
    assert!(!run.stdout.contains("Apply complete"), "{run:?}");
    let groups = m.ec2().describe_security_groups().send().await.unwrap();
    assert!(groups.security_groups().iter().all(|g| g.group_name() != Some("agency-web")), "no change was started");
    assert_eq!(object(&m).await.unwrap().0.holder.user, "mallory", "the other holder's lock is left alone");
}

#[tokio::test]
async fn a_reconcile_pass_that_finds_the_lock_held_applies_nothing() {
    use std::io::BufRead;
    let m = Moto::start();
    bucket(&m).await;
    let dir = FleetDir::new(&[("fleet.toml", LOCKED_FLEET)]);
    let s = store(&m, Duration::from_secs(120));
    let Acquired::Held(held, _) = s.acquire(LockDoc::new(holder("ana"), "apply", now(), Duration::from_secs(120))).await.unwrap() else { panic!() };
    let mut child = converge_command(dir.path(), &["reconcile", "--apply", "--interval", "1h"], Some(&m.endpoint))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let line = tokio::task::spawn_blocking(move || std::io::BufReader::new(stderr).lines().map_while(Result::ok).find(|l| l.starts_with("pass failed")))
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let line = line.expect("the pass fails");
    assert!(
        line.contains("(1 in a row, conflict): the fleet is locked by ana@test-host (pid 7) running `apply`") && line.contains("this pass applied nothing"),
        "{line}"
    );
    let groups = m.ec2().describe_security_groups().send().await.unwrap();
    assert!(groups.security_groups().iter().all(|g| g.group_name() != Some("agency-web")), "nothing applied");
    held.release().await.unwrap();
}

/// The loop and an engineer's apply, started together: each waits for the lock the other holds, so one
/// converges the fleet and the other, planning only once it holds the lock, finds nothing left to do. Had
/// they interleaved, both would have planned the group's creation.
#[tokio::test]
async fn a_loop_and_an_apply_started_together_never_interleave() {
    use std::io::BufRead;
    let m = Moto::start();
    bucket(&m).await;
    let dir = FleetDir::new(&[("fleet.toml", LOCKED_FLEET)]);
    let mut looping = converge_command(dir.path(), &["reconcile", "--apply", "--interval", "1h", "--lock-timeout", "60s"], Some(&m.endpoint))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let applying = converge_command(dir.path(), &["apply", "--auto-approve", "--lock-timeout", "60s"], Some(&m.endpoint))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = looping.stdout.take().unwrap();
    let first_pass = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let end = line.starts_with("  next pass in");
            seen.push(line);
            if end {
                break;
            }
        }
        seen.join("\n")
    });
    let applied = finish(applying);
    let looped = tokio::task::spawn_blocking(move || first_pass.join().unwrap()).await.unwrap();
    std::process::Command::new("kill").args(["-TERM", &looping.id().to_string()]).status().unwrap();
    let stopped = finish(looping);
    assert_eq!(applied.code, 0, "{applied:?}");
    assert_eq!(stopped.code, 0, "{stopped:?}");
    assert!(!stopped.stderr.contains("pass failed"), "the loop waited for the lock: {stopped:?}");
    let apply_created = applied.stdout.contains("Apply complete! Resources: 1 added, 0 changed, 0 destroyed.");
    let loop_created = looped.contains("Apply complete! Resources: 1 added, 0 changed, 0 destroyed.");
    assert!(apply_created != loop_created, "exactly one of them creates the group:\napply: {applied:?}\nloop: {looped}");
    if apply_created {
        assert!(looped.contains("no changes to apply"), "{looped}");
    } else {
        assert!(applied.stdout.contains("No changes. Live AWS matches the desired state."), "{applied:?}");
    }
    let groups = m.ec2().describe_security_groups().send().await.unwrap();
    assert_eq!(groups.security_groups().iter().filter(|g| g.group_name() == Some("agency-web")).count(), 1);
    assert!(object(&m).await.is_none_or(|(doc, _)| doc.expired(now())), "both released the lock");
}

#[test]
fn a_local_lock_left_by_a_dead_process_is_taken_over_with_its_journal() {
    let m = Moto::start();
    let dir = FleetDir::new(&[("fleet.toml", &LOCKED_FLEET.replace("[fleet.lock]\nbucket = \"agency-ops\"\n", ""))]);
    let mut dead = LockDoc::new(holder("ghost"), "apply", now() - 300, Duration::from_secs(120));
    dead.record(JournalEntry { address: "bucket.acme".into(), aws_name: "acme-media".into() });
    dir.write(".converge.lock", &dead.to_json());
    let run = m.converge(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("Took over the lock of ghost@test-host (pid 7) (`apply`, started 5m"), "{run:?}");
    assert!(run.stderr.contains("whose process ended; recovered its journal: 1 create(s) not known to be complete: bucket.acme"), "{run:?}");
    // The entry names nothing this fleet has or wants: settled by the plan, and the file emptied.
    assert_eq!(std::fs::read_to_string(dir.path().join(".converge.lock")).unwrap(), "", "the journal is empty and the lock released");
}
