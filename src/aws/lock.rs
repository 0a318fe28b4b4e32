//! The apply lock on S3 conditional writes (`[fleet.lock]`): acquired with `PutObject` + `If-None-Match: *`,
//! its lease renewed with `PutObject` + `If-Match: <ETag>` every third of the lease by a background task that
//! holds the ETag, released with `DeleteObject` + `If-Match`. An expired lock is taken over with `If-Match`
//! on the ETag it was read with, so of two takers only one wins; the winner carries the dead holder's
//! journal. Every decision is on the error's class: `PreconditionFailed` (412: the object exists, or changed
//! since it was read) and `Conflict` (409 `ConditionalRequestConflict`: a concurrent conditional write; read
//! again). What the lock holds and decides is `crate::lock`.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use tokio::sync::{Mutex, watch};

use super::{Aws, AwsError, call};
use crate::apply::{BoxFuture, Journal};
use crate::error::{Class, Classify, Failure};
use crate::lock::file::FileLock;
use crate::lock::{self, Found, JournalEntry, LockDoc};
use crate::model::LockSettings;
use crate::resource::Address;

/// How many times acquiring reads the lock again after losing a race for it, before giving up.
const RACES: usize = 5;

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The lock object: a bucket and a key, and the lease its holder keeps renewing.
#[derive(Clone)]
pub struct LockStore {
    s3: aws_sdk_s3::Client,
    pub bucket: String,
    pub key: String,
    pub lease: Duration,
}

/// What acquiring found.
pub enum Acquired {
    /// Ours; with the expired lock it took over, whose journal is now ours too.
    Held(HeldLock, Option<LockDoc>),
    /// Held by another, its lease running.
    Refused(LockDoc),
}

impl Aws {
    /// The lock object `[fleet.lock]` names, through this run's S3 client (counted in `--stats`).
    pub fn lock_store(&self, settings: &LockSettings) -> LockStore {
        LockStore { s3: self.s3.clone(), bucket: settings.bucket.clone(), key: settings.key.clone(), lease: settings.lease }
    }
}

impl LockStore {
    fn resource(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// The lock's document and ETag; `None` when there is no lock.
    pub async fn read(&self) -> Result<Option<(LockDoc, String)>, AwsError> {
        let got = match self.s3.get_object().bucket(&self.bucket).key(&self.key).send().await.map_err(call("s3", "GetObject", self.resource())) {
            Ok(o) => o,
            Err(e) if e.class() == Class::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let etag = got.e_tag().map(str::to_string).ok_or_else(|| AwsError::NoETag { resource: self.resource() })?;
        let body = got.body.collect().await.map_err(|e| AwsError::Call {
            service: "s3",
            operation: "GetObject",
            resource: self.resource(),
            class: Class::Transient,
            code: None,
            message: format!("reading the lock's body: {e}"),
        })?;
        let text = String::from_utf8_lossy(&body.into_bytes()).into_owned();
        let doc = LockDoc::from_json(&text).map_err(|message| AwsError::LockUnreadable { resource: self.resource(), message })?;
        Ok(Some((doc, etag)))
    }

    /// Creates the lock only if there is none (`If-None-Match: *`); its ETag.
    pub async fn create(&self, doc: &LockDoc) -> Result<String, AwsError> {
        let put = self.s3.put_object().bucket(&self.bucket).key(&self.key).if_none_match("*");
        let out = put.content_type("application/json").body(ByteStream::from(doc.to_json().into_bytes())).send().await;
        let out = out.map_err(call("s3", "PutObject", self.resource()))?;
        out.e_tag().map(str::to_string).ok_or_else(|| AwsError::NoETag { resource: self.resource() })
    }

    /// Replaces the lock only if it is still the one with `etag` (`If-Match`); the new ETag.
    pub async fn replace(&self, doc: &LockDoc, etag: &str) -> Result<String, AwsError> {
        let put = self.s3.put_object().bucket(&self.bucket).key(&self.key).if_match(etag);
        let out = put.content_type("application/json").body(ByteStream::from(doc.to_json().into_bytes())).send().await;
        let out = out.map_err(call("s3", "PutObject", self.resource()))?;
        out.e_tag().map(str::to_string).ok_or_else(|| AwsError::NoETag { resource: self.resource() })
    }

    /// Deletes the lock only if it is still the one with `etag` (`If-Match`). Gone already is done: a delete
    /// whose answer was lost, retried into a 404.
    pub async fn delete(&self, etag: &str) -> Result<(), AwsError> {
        match self.s3.delete_object().bucket(&self.bucket).key(&self.key).if_match(etag).send().await.map_err(call("s3", "DeleteObject", self.resource())) {
            Err(e) if e.class() == Class::NotFound => Ok(()),
            r => r.map(drop),
        }
    }

    /// Takes the lock for `mine`: creates it when there is none, takes over an expired one (conditionally on
    /// the ETag it was read with), and is refused by one whose lease runs. A lost race (412, or 409 for a
    /// concurrent conditional write) reads the lock again.
    pub async fn acquire(&self, mine: LockDoc) -> Result<Acquired, AwsError> {
        let mut last = None;
        for _ in 0..RACES {
            let found = self.read().await?;
            // Ours already: a create or take-over whose answer was lost, retried into a 412 of its own making.
            if let Some((doc, etag)) = &found
                && doc.id == mine.id
            {
                return Ok(Acquired::Held(HeldLock::start(self.clone(), doc.clone(), etag.clone()), None));
            }
            let etag = found.as_ref().map(|(_, e)| e.clone());
            let attempt = match lock::decide(found.map(|(d, _)| d), now()) {
                Found::Held(doc) => return Ok(Acquired::Refused(*doc)),
                Found::Free => self.create(&mine).await.map(|etag| (mine.clone(), etag, None)),
                Found::Expired(dead) => {
                    let doc = lock::take_over(&dead, mine.clone());
                    let etag = etag.expect("an expired lock was read with its ETag");
                    self.replace(&doc, &etag).await.map(|etag| (doc, etag, Some(*dead)))
                }
            };
            match attempt {
                Ok((doc, etag, dead)) => return Ok(Acquired::Held(HeldLock::start(self.clone(), doc, etag), dead)),
                Err(e) if lost_race(&e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one race was lost"))
    }
}

/// Whether a conditional write failed because another writer got there first (412), was writing at the
/// same moment (409), or removed what was read (404 on `If-Match`): the lock is read again.
fn lost_race(e: &AwsError) -> bool {
    matches!(e.class(), Class::PreconditionFailed | Class::Conflict | Class::NotFound)
}

/// Whether a holder's conditional write found the lock no longer its own: changed (412) or removed (404,
/// `converge unlock`).
fn not_ours(e: &AwsError) -> bool {
    matches!(e.class(), Class::PreconditionFailed | Class::NotFound)
}

struct State {
    doc: LockDoc,
    etag: String,
    /// Why the lock was lost, once it was.
    lost: Option<String>,
    /// Tells [`HeldLock::lost`] the lock was lost.
    signal: watch::Sender<bool>,
}

impl State {
    fn lose(&mut self, reason: String) {
        if self.lost.is_none() {
            eprintln!("LOCK LOST: {reason}. No new change will start; this run will fail.");
            self.lost = Some(reason);
        }
        let _ = self.signal.send(true);
    }
}

/// The lock, held: its lease renewed in the background until [`HeldLock::release`]. If a renewal (or a
/// journal write) finds the object changed (412), or the lease ran out before a renewal succeeded, the
/// lock is lost: [`HeldLock::lost`] completes and [`HeldLock::lost_reason`] says why.
pub struct HeldLock {
    store: LockStore,
    state: Arc<Mutex<State>>,
    /// Journal entries cleared since the last write (see [`HeldLock::done`]).
    cleared: Cleared,
    lost: watch::Receiver<bool>,
    renewer: tokio::task::JoinHandle<()>,
}

type Cleared = Arc<std::sync::Mutex<Vec<String>>>;

impl HeldLock {
    fn start(store: LockStore, doc: LockDoc, etag: String) -> HeldLock {
        let (signal, rx) = watch::channel(false);
        let state = Arc::new(Mutex::new(State { doc, etag, lost: None, signal }));
        let cleared = Cleared::default();
        let renewer = tokio::spawn(renew(store.clone(), state.clone(), cleared.clone()));
        HeldLock { store, state, cleared, lost: rx, renewer }
    }

    pub fn store(&self) -> &LockStore {
        &self.store
    }

    /// The lock's document as last written.
    pub async fn doc(&self) -> LockDoc {
        self.state.lock().await.doc.clone()
    }

    pub async fn journal(&self) -> Vec<JournalEntry> {
        self.state.lock().await.doc.journal.clone()
    }

    /// Completes when the lock is lost (never, while it is held).
    pub fn lost(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.lost.clone();
        async move {
            if rx.wait_for(|l| *l).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Why the lock was lost, if it was.
    pub async fn lost_reason(&self) -> Option<String> {
        self.state.lock().await.lost.clone()
    }

    /// Whether the lock was lost, now.
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// The journal as an apply begins ([`LockDoc::begin`]), in the lock object before it returns.
    pub async fn begin(&self, settled: &[JournalEntry], entries: Vec<JournalEntry>) -> Result<(), AwsError> {
        let mut state = self.state.lock().await;
        let mut doc = state.doc.clone();
        doc.begin(settled, entries);
        write(&self.store, &self.cleared, &mut state, doc, "recording the journal").await
    }

    /// Clears a create that completed (or never started): in memory now, in the lock object with the next
    /// write (a renewal, the release). Until then the entry names an object that carries its tags, which
    /// changes nothing.
    pub fn done(&self, address: &str) {
        self.cleared.lock().expect("cleared lock").push(address.to_string());
    }

    /// Releases the lock: deleted (`If-Match`) when its journal is empty; with creates not known to be
    /// complete, left in place with its lease ended, so that the next applier takes it over and recovers the
    /// journal. Refused (412) if someone else holds it now.
    pub async fn release(self) -> Result<(), AwsError> {
        // Taken first: a renewal in flight ends before the renewer stops, so the ETag below is the latest.
        let mut state = self.state.lock().await;
        self.renewer.abort();
        if let Some(reason) = &state.lost {
            return Err(AwsError::LockLost { resource: self.store.resource(), reason: reason.clone() });
        }
        let mut ended = LockDoc { expires: now().min(state.doc.expires), ..state.doc.clone() };
        for a in self.cleared.lock().expect("cleared lock").iter() {
            ended.clear(a);
        }
        if ended.journal.is_empty() {
            let etag = state.etag.clone();
            return match self.store.delete(&etag).await {
                Err(e) if not_ours(&e) => {
                    Err(AwsError::LockLost { resource: self.store.resource(), reason: format!("it was changed or removed by someone else: {e}") })
                }
                r => r,
            };
        }
        write(&self.store, &self.cleared, &mut state, ended, "releasing the lock").await
    }
}

/// Writes `doc`, without the journal entries cleared since the last write, over the lock (`If-Match` on the
/// ETag held). A 412 means the object is no longer ours: the lock is lost.
async fn write(store: &LockStore, cleared: &Cleared, state: &mut State, mut doc: LockDoc, doing: &str) -> Result<(), AwsError> {
    let clearing = std::mem::take(&mut *cleared.lock().expect("cleared lock"));
    for a in &clearing {
        doc.clear(a);
    }
    let written = match store.replace(&doc, &state.etag).await {
        // A 412 may be our own write, done, whose answer was lost and whose retry found our new ETag: the
        // object then holds exactly this document.
        Err(e) if not_ours(&e) => match store.read().await {
            Ok(Some((there, etag))) if there == doc => Ok(etag),
            _ => Err(e),
        },
        r => r,
    };
    match written {
        Ok(etag) => {
            state.doc = doc;
            state.etag = etag;
            Ok(())
        }
        Err(e) => {
            // Cleared again with the next write.
            cleared.lock().expect("cleared lock").extend(clearing);
            if not_ours(&e) {
                state.lose(format!("{doing} found the lock {} changed or removed by someone else: {e}", store.resource()));
            }
            Err(e)
        }
    }
}

/// The renewal task: every third of the lease, `If-Match` on the ETag it holds, carrying the journal entries
/// cleared since the last write. A 412 means the object is no longer ours: the lock is lost. Any other
/// failure is tried again at the next tick, until the lease runs out (then the lock is lost too: another
/// applier may take it over).
async fn renew(store: LockStore, state: Arc<Mutex<State>>, cleared: Cleared) {
    let every = lock::renew_every(store.lease);
    loop {
        tokio::time::sleep(every).await;
        let mut s = state.lock().await;
        if s.lost.is_some() {
            return;
        }
        let doc = s.doc.renewed(now(), store.lease);
        match write(&store, &cleared, &mut s, doc, "renewing the lease").await {
            Ok(()) => {}
            Err(_) if s.lost.is_some() => return,
            Err(e) if now() >= s.doc.expires => {
                s.lose(format!("the lease of {} ran out before it could be renewed: {e}", store.resource()));
                return;
            }
            Err(e) => tracing::warn!("renewing the lease of {} failed (trying again in {}s): {e}", store.resource(), every.as_secs()),
        }
    }
}

/// The fleet's apply lock, held: the S3 lock (`[fleet.lock]`), or the local lock file. Both hold the same
/// document and journal; only the S3 lock has a lease to lose.
pub enum Guard {
    S3(HeldLock),
    Local(std::sync::Mutex<FileLock>),
}

impl Guard {
    /// Completes when the lock is lost (a local lock is never lost).
    pub fn lost(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        match self {
            Guard::S3(h) => Box::pin(h.lost()),
            Guard::Local(_) => Box::pin(std::future::pending()),
        }
    }

    /// Whether the lock was lost, now.
    pub fn is_lost(&self) -> bool {
        match self {
            Guard::S3(h) => h.is_lost(),
            Guard::Local(_) => false,
        }
    }

    pub async fn lost_reason(&self) -> Option<String> {
        match self {
            Guard::S3(h) => h.lost_reason().await,
            Guard::Local(_) => None,
        }
    }

    /// The journal as held.
    pub async fn journal(&self) -> Vec<JournalEntry> {
        match self {
            Guard::S3(h) => h.journal().await,
            Guard::Local(l) => l.lock().expect("lock file").journal().to_vec(),
        }
    }

    pub async fn release(self) -> Result<(), AwsError> {
        match self {
            Guard::S3(h) => h.release().await,
            Guard::Local(l) => {
                let l = l.into_inner().expect("lock file");
                let path = l.path().display().to_string();
                l.release().map_err(|e| AwsError::LockFile { resource: path, message: e.to_string() })
            }
        }
    }
}

/// The apply records its creates in the lock it holds.
impl Journal for Guard {
    fn begin<'a>(&'a self, settled: &'a [JournalEntry], entries: Vec<JournalEntry>) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let result = match self {
                Guard::S3(h) => h.begin(settled, entries).await,
                Guard::Local(l) => {
                    let mut l = l.lock().expect("lock file");
                    l.begin(settled, entries).map_err(|e| file_error(&l, e))
                }
            };
            result.map_err(|e| Failure::from(&e))
        })
    }

    fn done(&self, address: &Address) {
        match self {
            Guard::S3(h) => h.done(&address.to_string()),
            Guard::Local(l) => {
                let mut l = l.lock().expect("lock file");
                // Best effort: an entry left for an object that carries its tags changes nothing.
                if let Err(e) = l.clear(&address.to_string()) {
                    tracing::warn!("clearing {address} from the journal in {}: {e}", l.path().display());
                }
            }
        }
    }
}

fn file_error(l: &FileLock, e: std::io::Error) -> AwsError {
    AwsError::LockFile { resource: l.path().display().to_string(), message: e.to_string() }
}
