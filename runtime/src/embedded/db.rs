//! One SQLite connection (WAL) shared by the embedded backends; calls run on the
//! blocking pool so the async runtime never waits on disk.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

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
CREATE TABLE IF NOT EXISTS objects (
  bucket TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL, content_type TEXT NOT NULL,
  sha256 TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (bucket, name)) WITHOUT ROWID;
";

/// The embedded database of one data directory.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
    dir: PathBuf,
    _lock: Arc<File>,
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
        let conn = Connection::open(dir.join("faas.db")).map_err(sql)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
        )
        .map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
            dir: dir.to_path_buf(),
            _lock: Arc::new(lock),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| Error::Internal("database lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| Error::Internal(format!("database task failed: {e}")))?
    }
}

/// Maps a SQLite error to the port error.
pub fn sql(err: rusqlite::Error) -> Error {
    Error::Unavailable(format!("sqlite: {err}"))
}

/// Takes the next global revision inside a transaction.
pub fn next_revision(tx: &rusqlite::Transaction<'_>) -> Result<u64> {
    tx.query_row(
        "UPDATE seq SET v = v + 1 WHERE id = 1 RETURNING v",
        [],
        |r| r.get::<_, i64>(0),
    )
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
