//! The SQLite database (WAL) shared by the embedded backends. Writes go to one
//! thread that commits every waiting write in one transaction (group commit, see
//! [`writer`]) and answers each only once it is committed; reads use a small pool
//! of connections of their own on the blocking pool, so the async runtime never
//! waits on disk and reads never wait behind a commit. A third thread copies the
//! WAL back into the database (checkpoints, with their fsyncs) beside the writer
//! instead of inside one of its commits.

mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};

use crate::{Error, Result};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS seq (id INTEGER PRIMARY KEY CHECK (id = 1), v INTEGER NOT NULL);
INSERT OR IGNORE INTO seq (id, v) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS kv (
  bucket TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, revision INTEGER NOT NULL,
  PRIMARY KEY (bucket, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS queue (
  id TEXT PRIMARY KEY, payload BLOB NOT NULL, visible_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, lease TEXT, enqueued_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS queue_visible ON queue (visible_at);
CREATE TABLE IF NOT EXISTS queue_len (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
INSERT OR IGNORE INTO queue_len (id, n) SELECT 1, COUNT(*) FROM queue;
CREATE TRIGGER IF NOT EXISTS queue_len_insert AFTER INSERT ON queue
  BEGIN UPDATE queue_len SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS queue_len_delete AFTER DELETE ON queue
  BEGIN UPDATE queue_len SET n = n - 1 WHERE id = 1; END;
CREATE TABLE IF NOT EXISTS objects (
  bucket TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL, content_type TEXT NOT NULL,
  sha256 TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (bucket, name)) WITHOUT ROWID;
";

/// Read connections kept open between reads (more are opened under load and
/// closed after).
const IDLE_READERS: usize = 8;

/// The embedded database of one data directory.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    writes: Option<Sender<writer::Job>>,
    writer: Option<JoinHandle<()>>,
    checkpoints: Option<(Sender<()>, JoinHandle<()>)>,
    readers: Mutex<Vec<Connection>>,
    path: PathBuf,
    dir: PathBuf,
    _lock: File,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel stops the writer once it has answered every write;
        // joining it releases the data directory only after its last commit.
        drop(self.writes.take());
        let checkpointer = self.checkpoints.take().map(|(stop, t)| {
            drop(stop);
            t
        });
        for t in self.writer.take().into_iter().chain(checkpointer) {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

/// Prepared statements kept per connection: every statement of the backend
/// (~25, the scans in four orders) stays parsed; rusqlite keeps 16 by default, so
/// the hot ones were evicted and parsed again.
const STATEMENT_CACHE: usize = 64;

fn open_conn(path: &Path, flags: OpenFlags) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, flags).map_err(sql)?;
    conn.execute_batch("PRAGMA busy_timeout=5000;")
        .map_err(sql)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

impl Db {
    /// Opens (creating) `dir/faas.db`, taking the directory's exclusive lock.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create data dir", e))?;
        let lock = File::create(dir.join("faas.lock")).map_err(|e| Error::io("lock file", e))?;
        lock.try_lock().map_err(|_| {
            Error::Conflict(format!(
                "data directory {} is in use by another faas process",
                dir.display()
            ))
        })?;
        let path = dir.join("faas.db");
        let conn = open_conn(&path, OpenFlags::default())?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0;",
        )
        .map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        let checkpoints = writer::start_checkpoints(open_conn(&path, OpenFlags::default())?)?;
        let (writes, jobs) = std::sync::mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("faas-db-writer".into())
            .spawn(move || writer::run(conn, jobs))
            .map_err(|e| Error::io("start the database writer", e))?;
        Ok(Db {
            inner: Arc::new(Inner {
                writes: Some(writes),
                writer: Some(writer),
                checkpoints: Some(checkpoints),
                readers: Mutex::new(Vec::new()),
                path,
                dir: dir.to_path_buf(),
                _lock: lock,
            }),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Runs the write `f` atomically (alone in a savepoint: an `Err` undoes what it
    /// did) in the next group commit; answers once that commit is durable in the
    /// WAL.
    pub async fn call<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let stopped = || Error::Unavailable("the database writer has stopped".into());
        self.inner
            .writes
            .as_ref()
            .ok_or_else(stopped)?
            .send(writer::job(f, tx))
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Runs the read-only `f` (a scan, a count: work that grows with the data) on
    /// a read connection on the blocking pool; it sees every write answered
    /// before it started.
    pub async fn read<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.with_reader(f))
            .await
            .map_err(|e| Error::Internal(format!("database task failed: {e}")))?
    }

    /// Runs the read-only point lookup `f` (one row by its key) on a read
    /// connection on the calling thread; it sees every write answered before it
    /// started. In WAL mode a reader never waits for the writer, and a lookup of
    /// a few cached pages takes microseconds: less than the two thread switches
    /// of a hand-off to the blocking pool, which the profile of the invoke path
    /// showed to be its largest cost.
    pub fn lookup<R>(&self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        self.inner.with_reader(f)
    }
}

impl Inner {
    fn with_reader<R>(&self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        let idle = self.readers.lock().map(|mut v| v.pop()).ok().flatten();
        let conn = match idle {
            Some(c) => c,
            None => open_conn(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?,
        };
        let out = f(&conn);
        if let Ok(mut idle) = self.readers.lock()
            && idle.len() < IDLE_READERS
        {
            idle.push(conn);
        }
        out
    }
}

/// Maps a SQLite error to the port error.
pub fn sql(err: rusqlite::Error) -> Error {
    Error::Unavailable(format!("sqlite: {err}"))
}

/// Takes the next global revision (inside a write).
pub fn next_revision(tx: &Connection) -> Result<u64> {
    tx.prepare_cached("UPDATE seq SET v = v + 1 WHERE id = 1 RETURNING v")
        .and_then(|mut st| st.query_row([], |r| r.get::<_, i64>(0)))
        .map(|v| v as u64)
        .map_err(sql)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
