//! Group commit: one thread owns the write connection and commits every write
//! that is waiting in one transaction. Each write runs inside a savepoint of its
//! own (a failing write rolls back alone) and is answered only after the
//! transaction that holds it committed, so an acknowledged write is in the WAL.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::sql;
use crate::{Error, Result};

/// How often the checkpointer copies the WAL back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 512;

/// What a write answers once its transaction ends: `None` when it committed,
/// else why it did not.
pub(super) type Reply = Box<dyn FnOnce(Option<&str>) + Send>;

/// One write: runs on the write connection inside the open transaction and
/// returns how to answer its caller; given `Err` (no transaction could be
/// begun) it answers that at once, without running.
pub(super) type Job = Box<dyn FnOnce(Result<&mut Connection, &str>) -> Reply + Send>;

/// Wraps `f` as a [`Job`] answering on `tx`.
pub(super) fn job<R, F>(f: F, tx: tokio::sync::oneshot::Sender<Result<R>>) -> Job
where
    R: Send + 'static,
    F: FnOnce(&Connection) -> Result<R> + Send + 'static,
{
    Box::new(move |conn: Result<&mut Connection, &str>| {
        let result = match conn {
            Ok(conn) => in_savepoint(conn, f),
            Err(why) => Err(Error::Unavailable(format!("sqlite begin: {why}"))),
        };
        Box::new(move |failed: Option<&str>| {
            let answer = match failed {
                None => result,
                Some(why) => Err(Error::Unavailable(format!("sqlite commit: {why}"))),
            };
            let _ = tx.send(answer);
        })
    })
}

fn in_savepoint<R>(conn: &mut Connection, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
    let sp = conn.savepoint().map_err(sql)?;
    let out = std::panic::catch_unwind(AssertUnwindSafe(|| f(&sp)))
        .unwrap_or_else(|_| Err(Error::Internal("a database write panicked".into())));
    match out {
        Ok(v) => {
            sp.commit().map_err(sql)?;
            Ok(v)
        }
        // Dropping the savepoint rolls back what this write did.
        Err(e) => Err(e),
    }
}

/// Runs until every sender is gone: takes the writes waiting (at most
/// [`MAX_BATCH`]), runs them in one transaction, commits, then answers them.
pub(super) fn run(mut conn: Connection, jobs: Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        commit_batch(&mut conn, batch);
    }
}

fn commit_batch(conn: &mut Connection, batch: Vec<Job>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let why = e.to_string();
        tracing::warn!(error = %why, "cannot begin a write transaction");
        for job in batch {
            job(Err(&why))(None);
        }
        return;
    }
    let mut replies: Vec<Reply> = Vec::with_capacity(batch.len());
    let mut lost: Option<String> = None;
    for job in batch {
        match &lost {
            None => replies.push(job(Ok(&mut *conn))),
            Some(why) => job(Err(why.as_str()))(None),
        }
        // SQLite rolls the whole transaction back on some errors (disk full, I/O):
        // what ran before is gone, so nothing of this batch may be acknowledged.
        if lost.is_none() && conn.is_autocommit() {
            lost = Some("the transaction was rolled back by an earlier error".to_string());
        }
    }
    let outcome = match lost {
        Some(why) => Err(why),
        None => conn.execute_batch("COMMIT").map_err(|e| e.to_string()),
    };
    match outcome {
        Ok(()) => replies.into_iter().for_each(|r| r(None)),
        Err(why) => {
            tracing::warn!(error = %why, writes = replies.len(), "a group commit failed");
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            replies.into_iter().for_each(|r| r(Some(&why)));
        }
    }
}

/// Starts the thread that checkpoints the WAL every [`CHECKPOINT_EVERY`] on its
/// own connection (PASSIVE: it never waits for, nor blocks, the writer or the
/// readers); it stops when the returned sender is dropped.
pub(super) fn start_checkpoints(conn: Connection) -> Result<(Sender<()>, JoinHandle<()>)> {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("faas-db-checkpoint".into())
        .spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
                }
            }
            // A last full pass, so a clean stop leaves a short WAL behind.
            let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        })
        .map_err(|e| Error::io("start the WAL checkpointer", e))?;
    Ok((stop, thread))
}

#[cfg(test)]
mod tests {
    use crate::Error;
    use crate::embedded::{Db, EmbeddedKv};
    use crate::ports::KvStore;
    use bytes::Bytes;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_rolls_back_alone_in_its_group_commit() {
        let dir = tempfile::tempdir().unwrap();
        let kv = EmbeddedKv::new(Db::open(dir.path()).unwrap());
        for i in 0..50 {
            kv.create("b", &format!("taken{i}"), Bytes::from_static(b"old"))
                .await
                .unwrap();
        }
        // 100 writes at once, so they share commits: every second one conflicts.
        let writes = (0..100).map(|i| {
            let kv = kv.clone();
            async move {
                let key = match i % 2 {
                    0 => format!("taken{}", i / 2),
                    _ => format!("new{i}"),
                };
                (i, kv.create("b", &key, Bytes::from_static(b"new")).await)
            }
        });
        for (i, result) in futures::future::join_all(writes).await {
            match i % 2 {
                0 => assert!(matches!(result, Err(Error::Conflict(_))), "{i}: {result:?}"),
                _ => assert!(result.is_ok(), "{i}: {result:?}"),
            }
        }
        for i in 0..50 {
            let old = kv.get("b", &format!("taken{i}")).await.unwrap().unwrap();
            assert_eq!(old.value.as_ref(), b"old", "a refused write left nothing");
        }
        assert_eq!(kv.count("b", "new").await.unwrap(), 50);
    }

    #[tokio::test]
    async fn an_answered_write_is_on_disk_for_the_next_process() {
        let dir = tempfile::tempdir().unwrap();
        {
            let kv = EmbeddedKv::new(Db::open(dir.path()).unwrap());
            kv.put("b", "k", Bytes::from_static(b"v")).await.unwrap();
            // Dropping the last handle stops the writer and frees the directory.
        }
        let kv = EmbeddedKv::new(Db::open(dir.path()).unwrap());
        let e = kv.get("b", "k").await.unwrap().unwrap();
        assert_eq!(e.value.as_ref(), b"v");
    }
}
