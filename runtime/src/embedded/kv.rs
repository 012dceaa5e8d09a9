//! [`EmbeddedKv`]: the key-value port on the `kv` table.

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{OptionalExtension, params};

use super::db::{Db, next_revision, sql};
use crate::ports::{Entry, KvStore, KvWrite, Scan};
use crate::{Error, Result};

/// Revisioned buckets in SQLite.
#[derive(Clone)]
pub struct EmbeddedKv {
    db: Db,
}

impl EmbeddedKv {
    /// The key-value store of `db`.
    pub fn new(db: Db) -> Self {
        EmbeddedKv { db }
    }
}

fn read(conn: &rusqlite::Connection, bucket: &str, key: &str) -> Result<Option<Entry>> {
    let mut st = conn
        .prepare_cached("SELECT value, revision FROM kv WHERE bucket = ?1 AND key = ?2")
        .map_err(sql)?;
    st.query_row(params![bucket, key], |r| {
        Ok(Entry {
            value: Bytes::from(r.get::<_, Vec<u8>>(0)?),
            revision: r.get::<_, i64>(1)? as u64,
        })
    })
    .optional()
    .map_err(sql)
}

/// Writes `key` when `check` accepts its current entry (inside a write of
/// [`Db::call`], which makes the whole call atomic).
fn write_if(
    tx: &rusqlite::Connection,
    bucket: &str,
    key: &str,
    value: &[u8],
    check: impl FnOnce(Option<&Entry>) -> Result<()>,
) -> Result<u64> {
    let current = read(tx, bucket, key)?;
    check(current.as_ref())?;
    put(tx, bucket, key, value)
}

/// Writes `key` unconditionally (inside a write of [`Db::call`]).
fn put(tx: &rusqlite::Connection, bucket: &str, key: &str, value: &[u8]) -> Result<u64> {
    let rev = next_revision(tx)?;
    tx.prepare_cached(
        "INSERT INTO kv (bucket, key, value, revision) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value, revision = excluded.revision",
    )
    .and_then(|mut st| st.execute(params![bucket, key, value, rev as i64]))
    .map_err(sql)?;
    Ok(rev)
}

fn remove(c: &rusqlite::Connection, bucket: &str, key: &str) -> Result<()> {
    c.prepare_cached("DELETE FROM kv WHERE bucket = ?1 AND key = ?2")
        .and_then(|mut st| st.execute(params![bucket, key]))
        .map_err(sql)?;
    Ok(())
}

/// Applies a batch of writes (inside a write of [`Db::call`]).
pub(crate) fn apply_in(tx: &rusqlite::Connection, writes: &[KvWrite]) -> Result<Vec<u64>> {
    writes
        .iter()
        .map(|w| match w {
            KvWrite::Create { bucket, key, value } => {
                write_if(tx, bucket, key, value, |cur| match cur {
                    Some(_) => Err(Error::Conflict(format!("{bucket}/{key} already exists"))),
                    None => Ok(()),
                })
            }
            KvWrite::Put { bucket, key, value } => put(tx, bucket, key, value),
            KvWrite::Delete { bucket, key } => remove(tx, bucket, key).map(|_| 0),
        })
        .collect()
}

#[async_trait]
impl KvStore for EmbeddedKv {
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Entry>> {
        self.db.lookup(|c| read(c, bucket, key))
    }

    async fn create(&self, bucket: &str, key: &str, value: Bytes) -> Result<u64> {
        let (b, k) = (bucket.to_string(), key.to_string());
        self.db
            .call(move |c| {
                write_if(c, &b, &k, &value, |cur| match cur {
                    Some(_) => Err(Error::Conflict(format!("{b}/{k} already exists"))),
                    None => Ok(()),
                })
            })
            .await
    }

    async fn update(&self, bucket: &str, key: &str, value: Bytes, revision: u64) -> Result<u64> {
        let (b, k) = (bucket.to_string(), key.to_string());
        self.db
            .call(move |c| {
                write_if(c, &b, &k, &value, |cur| match cur {
                    None => Err(Error::NotFound(format!("{b}/{k}"))),
                    Some(e) if e.revision != revision => Err(Error::Conflict(format!(
                        "{b}/{k} is at revision {}, not {revision}",
                        e.revision
                    ))),
                    Some(_) => Ok(()),
                })
            })
            .await
    }

    async fn put(&self, bucket: &str, key: &str, value: Bytes) -> Result<u64> {
        let (b, k) = (bucket.to_string(), key.to_string());
        self.db.call(move |c| put(c, &b, &k, &value)).await
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        let (b, k) = (bucket.to_string(), key.to_string());
        self.db.call(move |c| remove(c, &b, &k)).await
    }

    async fn scan(&self, bucket: &str, scan: Scan) -> Result<Vec<(String, Entry)>> {
        let b = bucket.to_string();
        self.db.read(move |c| scan_rows(c, &b, &scan)).await
    }

    async fn count(&self, bucket: &str, prefix: &str) -> Result<u64> {
        let (b, p) = (bucket.to_string(), prefix.to_string());
        self.db
            .read(move |c| {
                c.prepare_cached(
                    "SELECT COUNT(*) FROM kv WHERE bucket = ?1 AND substr(key, 1, ?2) = ?3",
                )
                .and_then(|mut st| {
                    st.query_row(params![b, p.len() as i64, p], |r| r.get::<_, i64>(0))
                })
                .map(|n| n as u64)
                .map_err(sql)
            })
            .await
    }

    async fn apply(&self, writes: Vec<KvWrite>) -> Result<Vec<u64>> {
        self.db.call(move |c| apply_in(c, &writes)).await
    }

    async fn ping(&self) -> Result<()> {
        self.db
            .read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(sql))
            .await
    }
}

fn scan_rows(
    conn: &rusqlite::Connection,
    bucket: &str,
    scan: &Scan,
) -> Result<Vec<(String, Entry)>> {
    let (cmp, order) = if scan.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    let sql_text = format!(
        "SELECT key, value, revision FROM kv WHERE bucket = ?1 AND substr(key, 1, ?2) = ?3
         AND (?4 IS NULL OR key {cmp} ?4) ORDER BY key {order} LIMIT ?5"
    );
    let limit = if scan.limit == 0 {
        -1
    } else {
        scan.limit as i64
    };
    let mut stmt = conn.prepare_cached(&sql_text).map_err(sql)?;
    let rows = stmt
        .query_map(
            params![
                bucket,
                scan.prefix.len() as i64,
                scan.prefix,
                scan.after,
                limit
            ],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Entry {
                        value: Bytes::from(r.get::<_, Vec<u8>>(1)?),
                        revision: r.get::<_, i64>(2)? as u64,
                    },
                ))
            },
        )
        .map_err(sql)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql)
}
