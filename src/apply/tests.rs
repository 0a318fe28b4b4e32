//! The scheduler on plain data, with an executor that records calls instead of making them.

use std::sync::Mutex;

use super::*;

struct Recorder {
    fail: Option<&'static str>,
    /// The one secret this executor can read.
    secret: Option<&'static str>,
    class: Class,
    log: Mutex<Vec<String>>,
    running: Mutex<(usize, usize)>,
}

impl Recorder {
    fn new(fail: Option<&'static str>) -> Self {
        Recorder { fail, secret: None, class: Class::Internal, log: Mutex::new(Vec::new()), running: Mutex::new((0, 0)) }
    }
}

impl Executor for Recorder {
    fn execute<'a>(&'a self, change: &'a Change, ops: &'a [Op]) -> BoxFuture<'a, Result<(), ChangeError>> {
        Box::pin(async move {
            {
                let mut r = self.running.lock().unwrap();
                r.0 += 1;
                r.1 = r.1.max(r.0);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            self.running.lock().unwrap().0 -= 1;
            let phase = if std::ptr::eq(ops, change.then.as_slice()) { " then" } else { "" };
            self.log.lock().unwrap().push(format!("{}{phase}", change.address));
            if self.fail == Some(change.address.name.as_str()) {
                return Err(ChangeError { done: 0, total: 1, error: Failure::new(self.class, "boom") });
            }
            Ok(())
        })
    }

    fn has_secret(&self, var: &str) -> bool {
        self.secret == Some(var)
    }
}

fn change(address: &str, action: Action, after: &[&str]) -> Change {
    Change {
        address: address.parse().unwrap(),
        action,
        name: address.into(),
        id: None,
        fields: vec![],
        ops: vec![Op::SecurityGroup(crate::resource::SgOp::Delete { id: "sg-1".into() })],
        after: after.iter().map(|a| a.parse().unwrap()).collect(),
        then: vec![],
        then_after: BTreeSet::new(),
        sites: vec![],
    }
}

fn plan(changes: Vec<Change>) -> Plan {
    Plan { fleet: "agency".into(), changes, ..Plan::default() }
}

#[tokio::test]
async fn dependencies_run_first() {
    let p = plan(vec![change("load_balancer.shared", Action::Create, &["security_group.lb"]), change("security_group.lb", Action::Create, &[])]);
    let r = Recorder::new(None);
    let report = apply(&p, &r, 10, std::future::pending(), |_| {}).await.unwrap();
    assert!(report.ok());
    assert_eq!(*r.log.lock().unwrap(), vec!["security_group.lb", "load_balancer.shared"]);
}

#[tokio::test]
async fn a_failure_skips_dependents_and_lets_independent_work_finish() {
    let p = plan(vec![
        change("security_group.lb", Action::Create, &[]),
        change("load_balancer.shared", Action::Create, &["security_group.lb"]),
        change("load_balancer.other", Action::Update, &["load_balancer.shared"]),
        change("security_group.web", Action::Create, &[]),
    ]);
    let r = Recorder::new(Some("lb"));
    let mut events = Vec::new();
    let report = apply(&p, &r, 10, std::future::pending(), |e| events.push(e)).await.unwrap();
    assert_eq!(report.applied, vec!["security_group.web".parse().unwrap()]);
    assert_eq!(report.failed.len(), 1);
    let lb: Address = "security_group.lb".parse().unwrap();
    assert_eq!(report.skipped, vec![("load_balancer.shared".parse().unwrap(), lb.clone()), ("load_balancer.other".parse().unwrap(), lb)]);
    assert!(events.iter().any(|e| matches!(e, Event::Skipped { .. })));
}

#[tokio::test]
async fn concurrency_is_bounded() {
    let changes = (0..20).map(|i| change(&format!("security_group.g{i}"), Action::Create, &[])).collect();
    let r = Recorder::new(None);
    let report = apply(&plan(changes), &r, 3, std::future::pending(), |_| {}).await.unwrap();
    assert_eq!(report.applied.len(), 20);
    let max = r.running.lock().unwrap().1;
    assert!(max <= 3 && max > 1, "max concurrent {max}");
}

#[tokio::test]
async fn conflicts_refuse_everything() {
    let mut p = plan(vec![change("security_group.lb", Action::Create, &[])]);
    p.conflicts.push(crate::plan::Conflict { address: None, message: "x".into(), help: "y".into() });
    let r = Recorder::new(None);
    assert_eq!(apply(&p, &r, 10, std::future::pending(), |_| {}).await, Err(ApplyError::Conflicts(1)));
    assert!(r.log.lock().unwrap().is_empty());
}

#[tokio::test]
async fn second_phases_wait_for_the_first_phases_they_name() {
    let mut a = change("security_group.a", Action::Create, &[]);
    let mut b = change("security_group.b", Action::Create, &[]);
    a.then = a.ops.clone();
    a.then_after = BTreeSet::from(["security_group.b".parse().unwrap()]);
    b.then = b.ops.clone();
    b.then_after = BTreeSet::from(["security_group.a".parse().unwrap()]);
    let lb = change("load_balancer.x", Action::Create, &["security_group.a"]);
    let r = Recorder::new(None);
    let report = apply(&plan(vec![a, b, lb]), &r, 1, std::future::pending(), |_| {}).await.unwrap();
    assert!(report.ok(), "{report:?}");
    let log = r.log.lock().unwrap().clone();
    let at = |s: &str| log.iter().position(|l| l == s).unwrap_or_else(|| panic!("{s} not in {log:?}"));
    assert!(at("security_group.a") < at("security_group.b then") && at("security_group.b") < at("security_group.a then"));
    assert!(at("security_group.a then") < at("load_balancer.x"), "a dependent waits for the whole change: {log:?}");
}

#[tokio::test]
async fn a_stop_lets_running_changes_finish_and_starts_nothing_new() {
    let changes = (0..6).map(|i| change(&format!("security_group.g{i}"), Action::Create, &[])).collect();
    let r = Recorder::new(None);
    let mut events = Vec::new();
    let stop = tokio::time::sleep(Duration::from_millis(1));
    let report = apply(&plan(changes), &r, 2, stop, |e| events.push(e)).await.unwrap();
    assert_eq!(report.applied.len(), 2, "the two running finish: {report:?}");
    assert_eq!(report.cancelled.len(), 4);
    assert!(!report.ok());
    assert!(events.contains(&Event::Stopping { running: 2 }));
}

#[tokio::test]
async fn a_stop_that_came_before_the_apply_starts_nothing() {
    let changes = (0..3).map(|i| change(&format!("security_group.g{i}"), Action::Create, &[])).collect();
    let r = Recorder::new(None);
    let mut events = Vec::new();
    let report = apply(&plan(changes), &r, 2, std::future::ready(()), |e| events.push(e)).await.unwrap();
    assert!(r.log.lock().unwrap().is_empty(), "no change started");
    assert_eq!((report.applied.len(), report.cancelled.len()), (0, 3));
    assert_eq!(events, vec![Event::Stopping { running: 0 }]);
}

#[tokio::test]
async fn a_failure_keeps_its_class_in_the_report() {
    let p = plan(vec![change("security_group.a", Action::Create, &[]), change("security_group.b", Action::Create, &[])]);
    let mut r = Recorder::new(Some("a"));
    r.class = Class::Throttled;
    let report = apply(&p, &r, 10, std::future::pending(), |_| {}).await.unwrap();
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].1.class(), Class::Throttled);
    assert_eq!(report.class(), Some(Class::Throttled));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["failed"][0][1]["error"]["class"], "throttled", "{json}");
    assert_eq!(Report::default().class(), None);
}

#[tokio::test]
async fn a_missing_secret_stops_the_apply_before_its_first_call() {
    let spec = crate::resource::DbInstanceSpec { password_env: Some("DB_PASSWORD".into()), ..Default::default() };
    let mut db = change("db_instance.sites", Action::Create, &[]);
    db.ops = vec![Op::DbInstance(crate::resource::DbOp::Create { spec })];
    let p = plan(vec![change("security_group.lb", Action::Create, &[]), db]);
    let r = Recorder::new(None);
    let err = apply(&p, &r, 4, std::future::pending(), |_| {}).await.unwrap_err();
    assert_eq!(err, ApplyError::MissingSecrets(vec!["DB_PASSWORD".into()]));
    assert_eq!(err.to_string(), "creating a database needs its master password in $DB_PASSWORD; nothing was applied");
    assert!(r.log.lock().unwrap().is_empty(), "nothing ran");
    let r = Recorder { secret: Some("DB_PASSWORD"), ..Recorder::new(None) };
    assert!(apply(&p, &r, 4, std::future::pending(), |_| {}).await.unwrap().ok());
}

/// A journal that records what the scheduler tells it, beside the executor's calls (in one log).
struct Notebook<'a> {
    log: &'a Mutex<Vec<String>>,
    fail: bool,
}

impl Journal for Notebook<'_> {
    fn begin<'a>(&'a self, settled: &'a [JournalEntry], entries: Vec<JournalEntry>) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            if self.fail {
                return Err(Failure::new(Class::Throttled, "SlowDown"));
            }
            let names: Vec<String> = entries.iter().map(|e| e.address.clone()).collect();
            self.log.lock().unwrap().push(format!("begin -{} +{}", settled.len(), names.join(",")));
            Ok(())
        })
    }

    fn done(&self, address: &Address) {
        self.log.lock().unwrap().push(format!("done {address}"));
    }
}

#[tokio::test]
async fn creates_are_journaled_before_the_first_call_and_cleared_once_complete_or_never_started() {
    let mut p = plan(vec![
        change("security_group.lb", Action::Create, &[]),
        change("load_balancer.shared", Action::Create, &["security_group.lb"]),
        change("security_group.web", Action::Adopt, &[]),
        change("load_balancer.other", Action::Update, &[]),
    ]);
    p.journal_settled = vec![JournalEntry { address: "bucket.old".into(), aws_name: "old".into() }];
    // Its answer never came: the create may have happened.
    let r = Recorder { class: Class::Transient, ..Recorder::new(Some("lb")) };
    let journal = Notebook { log: &r.log, fail: false };
    let report = apply(&p, &Journaled { executor: &r, journal: &journal }, 1, std::future::pending(), |_| {}).await.unwrap();
    assert_eq!(report.failed.len(), 1);
    let log = r.log.lock().unwrap().clone();
    // Recorded before anything ran: the creates and the adoption, not the update.
    assert_eq!(log[0], "begin -1 +security_group.lb,load_balancer.shared,security_group.web");
    // The adoption completed: cleared. The failed create may have happened: kept. The skipped one never
    // started: cleared at the end.
    assert!(log.contains(&"done security_group.web".to_string()), "{log:?}");
    assert!(!log.contains(&"done security_group.lb".to_string()), "{log:?}");
    assert_eq!(log.last().map(String::as_str), Some("done load_balancer.shared"), "{log:?}");
}

#[tokio::test]
async fn a_journal_that_cannot_be_written_starts_nothing() {
    let p = plan(vec![change("security_group.lb", Action::Create, &[])]);
    let r = Recorder::new(None);
    let log = Mutex::new(Vec::new());
    let journal = Notebook { log: &log, fail: true };
    let e = apply(&p, &Journaled { executor: &r, journal: &journal }, 10, std::future::pending(), |_| {}).await.unwrap_err();
    assert!(matches!(&e, ApplyError::Journal(f) if f.class == Class::Throttled), "{e}");
    assert!(r.log.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_create_refused_outright_clears_its_entry() {
    let p = plan(vec![change("security_group.lb", Action::Create, &[])]);
    let r = Recorder { class: Class::Invalid, ..Recorder::new(Some("lb")) };
    let journal = Notebook { log: &r.log, fail: false };
    let report = apply(&p, &Journaled { executor: &r, journal: &journal }, 1, std::future::pending(), |_| {}).await.unwrap();
    assert_eq!(report.failed.len(), 1);
    assert!(r.log.lock().unwrap().contains(&"done security_group.lb".to_string()), "{:?}", r.log.lock().unwrap());
}
