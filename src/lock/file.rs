//! The local lock, without `[fleet.lock]`: a file inside the desired-state folder (`.converge.lock`), held
//! with an OS advisory lock (`flock`), which the OS releases when the holding process ends, however it ends.
//! The file holds the same [`LockDoc`] as the S3 object, journal included, and keeps it after a crash so
//! that the next holder recovers the journal; a clean release empties it. It excludes appliers on this
//! machine only. This is the lock's one IO outside `aws::lock`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::{JournalEntry, LockDoc, take_over};

/// The local lock, held: released (and its file emptied) by [`FileLock::release`], or by the OS when the
/// process ends.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
    doc: LockDoc,
}

/// What trying the local lock found.
#[derive(Debug)]
pub enum Acquired {
    /// Ours; with the document a holder that died left behind (its journal is now ours too).
    Held(FileLock, Option<LockDoc>),
    /// A live process holds it; its document, if it could be read.
    Busy(Option<LockDoc>),
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)
}

/// `flock(LOCK_EX | LOCK_NB)`: whether this process now holds the file's lock.
fn try_flock(file: &File) -> std::io::Result<bool> {
    // SAFETY: flock on a file descriptor this `File` owns for as long as the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) { Ok(false) } else { Err(err) }
}

fn read_doc(file: &mut File) -> std::io::Result<Option<LockDoc>> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_string(&mut text)?;
    Ok(parse(&text))
}

/// The document at the start of the file's text, if there is one; bytes after it (left by a write cut off
/// before its truncation) are ignored.
fn parse(text: &str) -> Option<LockDoc> {
    serde_json::Deserializer::from_str(text).into_iter::<LockDoc>().next()?.ok()
}

/// Tries the local lock at `path` for `mine`, without waiting.
pub fn try_lock(path: &Path, mine: LockDoc) -> std::io::Result<Acquired> {
    let mut file = open(path)?;
    if !try_flock(&file)? {
        return Ok(Acquired::Busy(read_doc(&mut file)?));
    }
    let dead = read_doc(&mut file)?;
    let doc = match &dead {
        Some(d) => take_over(d, mine),
        None => mine,
    };
    let mut lock = FileLock { file, path: path.to_path_buf(), doc };
    lock.write()?;
    Ok(Acquired::Held(lock, dead))
}

/// The local lock's document if a live process holds it (`converge lock`); `None` when it is free.
pub fn peek(path: &Path) -> std::io::Result<Option<LockDoc>> {
    if !path.exists() {
        return Ok(None);
    }
    let mut file = open(path)?;
    if try_flock(&file)? {
        // Free (taking it released at once by dropping the file); a dead holder's journal stays for the next.
        return Ok(None);
    }
    read_doc(&mut file)
}

/// The journal the lock file holds (a live holder's, or the one a dead holder left), without taking the lock:
/// what `plan` adopts from.
pub fn journal(path: &Path) -> std::io::Result<Vec<JournalEntry>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse(&text).map(|d| d.journal).unwrap_or_default()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

impl FileLock {
    pub fn doc(&self) -> &LockDoc {
        &self.doc
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn journal(&self) -> &[JournalEntry] {
        &self.doc.journal
    }

    /// Records a create about to be made, on disk before it returns.
    pub fn record(&mut self, entry: JournalEntry) -> std::io::Result<()> {
        self.doc.record(entry);
        self.write()
    }

    /// The journal as an apply begins ([`LockDoc::begin`]), on disk before it returns.
    pub fn begin(&mut self, settled: &[JournalEntry], entries: Vec<JournalEntry>) -> std::io::Result<()> {
        self.doc.begin(settled, entries);
        self.write()
    }

    /// Clears a create that completed, on disk before it returns.
    pub fn clear(&mut self, address: &str) -> std::io::Result<bool> {
        let had = self.doc.clear(address);
        if had {
            self.write()?;
        }
        Ok(had)
    }

    /// Overwrites the document in place, then cuts what is left of a longer one: a process killed between
    /// the two leaves the new document followed by old bytes, which [`parse`] reads past, never an empty file.
    fn write(&mut self) -> std::io::Result<()> {
        let text = self.doc.to_json();
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(text.as_bytes())?;
        self.file.set_len(text.len() as u64)?;
        self.file.sync_data()
    }

    /// Releases the lock: an empty journal empties the file (which stays, so that no other process is left
    /// holding a lock on a file that was removed); a journal that is not empty stays for the next holder.
    pub fn release(self) -> std::io::Result<()> {
        if self.doc.journal.is_empty() {
            self.file.set_len(0)?;
            self.file.sync_data()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DEFAULT_LEASE, Holder};
    use super::*;

    fn doc(user: &str) -> LockDoc {
        LockDoc::new(Holder { user: user.into(), host: "h".into(), pid: 1 }, "apply", 1000, DEFAULT_LEASE)
    }

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_document_until_it_releases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::super::LOCAL_FILE);
        let Acquired::Held(first, None) = try_lock(&path, doc("ana")).unwrap() else { panic!("the first holder gets the lock") };
        match try_lock(&path, doc("bo")).unwrap() {
            Acquired::Busy(Some(d)) => assert_eq!(d.holder.user, "ana"),
            other => panic!("expected busy, got {other:?}"),
        }
        assert_eq!(peek(&path).unwrap().map(|d| d.holder.user), Some("ana".into()));
        first.release().unwrap();
        assert_eq!(peek(&path).unwrap(), None);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "", "a clean release empties the file");
        assert!(matches!(try_lock(&path, doc("bo")).unwrap(), Acquired::Held(_, None)));
    }

    #[test]
    fn a_document_followed_by_the_rest_of_a_longer_one_still_reads() {
        let doc = doc("ana");
        let text = format!("{}{}", doc.to_json(), "\n  \"journal\": []\n}");
        assert_eq!(parse(&text), Some(doc));
        assert_eq!(parse(""), None);
    }

    #[test]
    fn a_dead_holders_journal_is_recovered_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::super::LOCAL_FILE);
        let Acquired::Held(mut first, _) = try_lock(&path, doc("ana")).unwrap() else { panic!() };
        first.record(JournalEntry { address: "bucket.acme".into(), aws_name: "acme-media".into() }).unwrap();
        first.record(JournalEntry { address: "security_group.web".into(), aws_name: "agency-web".into() }).unwrap();
        assert!(first.clear("security_group.web").unwrap());
        // The process dies: the OS drops the lock, the file keeps the document.
        drop(first);
        let Acquired::Held(second, Some(dead)) = try_lock(&path, doc("bo")).unwrap() else { panic!("the dead holder's document is recovered") };
        assert_eq!(dead.holder.user, "ana");
        assert_eq!(second.journal(), &[JournalEntry { address: "bucket.acme".into(), aws_name: "acme-media".into() }]);
        assert_eq!(second.doc().holder.user, "bo");
        let on_disk = LockDoc::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(&on_disk, second.doc());
    }
}
