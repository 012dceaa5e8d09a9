//! [`EmbeddedQueue`]: the work-queue port on the `queue` table. A lease hides a row
//! until `visible_at`; acks and extensions must present the current lease id.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::params;
use tokio::sync::Notify;

use super::db::{Db, now_ms, sql};
use crate::ports::{Delivery, KvWrite, QueueStats, WorkQueue};
use crate::{Error, Result};

/// Limits of an [`EmbeddedQueue`].
#[derive(Debug, Clone, Copy)]
pub struct QueueConfig {
    /// How long a delivery stays invisible without an ack or extension.
    pub ack_wait: Duration,
    /// Most messages held; enqueue beyond it is `Overloaded`.
    pub max_messages: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            ack_wait: Duration::from_secs(30),
            max_messages: 100_000,
        }
    }
}

/// A durable queue in SQLite.
#[derive(Clone)]
pub struct EmbeddedQueue {
    db: Db,
    config: QueueConfig,
    notify: Arc<Notify>,
}

impl EmbeddedQueue {
    /// Opens the queue of `db`, releasing leases left by a previous process.
    pub async fn open(db: Db, config: QueueConfig) -> Result<Self> {
        db.call(|c| {
            c.execute(
                "UPDATE queue SET lease = NULL, visible_at = ?1 WHERE lease IS NOT NULL",
                params![now_ms()],
            )
            .map_err(sql)
        })
        .await?;
        Ok(EmbeddedQueue {
            db,
            config,
            notify: Arc::new(Notify::new()),
        })
    }

    async fn take(&self, max: usize) -> Result<Vec<Delivery>> {
        let ack_wait = self.config.ack_wait.as_millis() as i64;
        self.db
            .call(move |c| {
                let now = now_ms();
                let tx = c;
                let ids: Vec<String> = {
                    let mut stmt = tx
                        .prepare_cached(
                            "SELECT id FROM queue WHERE visible_at <= ?1 ORDER BY visible_at, enqueued_at, rowid LIMIT ?2",
                        )
                        .map_err(sql)?;
                    let rows = stmt
                        .query_map(params![now, max as i64], |r| r.get(0))
                        .map_err(sql)?;
                    rows.collect::<Result<_, _>>().map_err(sql)?
                };
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    let lease = uuid::Uuid::new_v4().to_string();
                    let (payload, attempts) = tx
                        .prepare_cached(
                            "UPDATE queue SET lease = ?1, attempts = attempts + 1, visible_at = ?2
                             WHERE id = ?3 RETURNING payload, attempts",
                        )
                        .and_then(|mut st| {
                            st.query_row(params![lease, now + ack_wait, id], |r| {
                                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
                            })
                        })
                        .map_err(sql)?;
                    out.push(Delivery {
                        id,
                        payload: Bytes::from(payload),
                        attempt: attempts as u32,
                        lease,
                    });
                }
                Ok(out)
            })
            .await
    }

    /// Milliseconds until the next hidden message becomes visible, if any.
    async fn next_visible_in(&self) -> Result<Option<i64>> {
        self.db
            .read(|c| {
                c.prepare_cached("SELECT MIN(visible_at) FROM queue")
                    .and_then(|mut st| st.query_row([], |r| r.get::<_, Option<i64>>(0)))
                    .map(|v| v.map(|t| (t - now_ms()).max(0)))
                    .map_err(sql)
            })
            .await
    }

    async fn with_lease(&self, d: &Delivery, sql_text: &'static str, at: i64) -> Result<()> {
        let (id, lease) = (d.id.clone(), d.lease.clone());
        let changed = self
            .db
            .call(move |c| {
                c.prepare_cached(sql_text)
                    .and_then(|mut st| st.execute(params![id, lease, at]))
                    .map_err(sql)
            })
            .await?;
        if changed == 0 {
            return Err(Error::Conflict(format!(
                "lease on {} was lost (expired and redelivered, or already acked)",
                d.id
            )));
        }
        Ok(())
    }
}

/// Adds a message unless its id is queued already (no cap: callers check it).
fn insert(c: &rusqlite::Connection, id: &str, payload: &[u8]) -> Result<()> {
    let now = now_ms();
    c.prepare_cached(
        "INSERT OR IGNORE INTO queue (id, payload, visible_at, enqueued_at) VALUES (?1, ?2, ?3, ?3)",
    )
    .and_then(|mut st| st.execute(params![id, payload, now]))
    .map_err(sql)?;
    Ok(())
}

#[async_trait]
impl WorkQueue for EmbeddedQueue {
    async fn enqueue_with(
        &self,
        writes: Vec<KvWrite>,
        id: &str,
        payload: Bytes,
    ) -> Result<Vec<u64>> {
        let id = id.to_string();
        let max = self.config.max_messages as i64;
        let revs = self
            .db
            .call(move |tx| {
                // The length is kept by triggers (see the schema): no scan.
                let count: i64 = tx
                    .prepare_cached("SELECT n FROM queue_len WHERE id = 1")
                    .and_then(|mut st| st.query_row([], |r| r.get(0)))
                    .map_err(sql)?;
                let queued: i64 = tx
                    .prepare_cached("SELECT COUNT(*) FROM queue WHERE id = ?1")
                    .and_then(|mut st| st.query_row(params![id], |r| r.get(0)))
                    .map_err(sql)?;
                if count >= max && queued == 0 {
                    return Err(Error::Overloaded(format!(
                        "the queue holds {count} messages, its limit"
                    )));
                }
                let revs = super::kv::apply_in(tx, &writes)?;
                insert(tx, &id, &payload)?;
                Ok(revs)
            })
            .await?;
        self.notify.notify_waiters();
        Ok(revs)
    }

    async fn requeue(&self, id: &str, payload: Bytes) -> Result<()> {
        let id = id.to_string();
        self.db.call(move |c| insert(c, &id, &payload)).await?;
        self.notify.notify_waiters();
        Ok(())
    }

    async fn holds(&self, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.db
            .read(move |c| {
                c.prepare_cached("SELECT COUNT(*) FROM queue WHERE id = ?1")
                    .and_then(|mut st| st.query_row(params![id], |r| r.get::<_, i64>(0)))
                    .map(|n| n > 0)
                    .map_err(sql)
            })
            .await
    }

    async fn lease(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.notify.notified();
            let got = self.take(max.max(1)).await?;
            if !got.is_empty() {
                return Ok(got);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let mut nap = deadline - now;
            if let Some(ms) = self.next_visible_in().await? {
                nap = nap.min(Duration::from_millis(ms as u64 + 1));
            }
            let _ = tokio::time::timeout(nap, notified).await;
        }
    }

    async fn ack(&self, d: &Delivery) -> Result<()> {
        self.with_lease(
            d,
            "DELETE FROM queue WHERE id = ?1 AND lease = ?2 AND ?3 >= 0",
            0,
        )
        .await
    }

    async fn nack(&self, d: &Delivery, delay: Duration) -> Result<()> {
        let at = now_ms() + delay.as_millis() as i64;
        self.with_lease(
            d,
            "UPDATE queue SET lease = NULL, visible_at = ?3 WHERE id = ?1 AND lease = ?2",
            at,
        )
        .await?;
        self.notify.notify_waiters();
        Ok(())
    }

    async fn extend(&self, d: &Delivery) -> Result<()> {
        let at = now_ms() + self.config.ack_wait.as_millis() as i64;
        self.with_lease(
            d,
            "UPDATE queue SET visible_at = ?3 WHERE id = ?1 AND lease = ?2",
            at,
        )
        .await
    }

    async fn stats(&self) -> Result<QueueStats> {
        self.db
            .read(|c| {
                c.prepare_cached(
                    "SELECT COUNT(*), COALESCE(SUM(lease IS NOT NULL AND visible_at > ?1), 0) FROM queue",
                )
                .and_then(|mut st| {
                    st.query_row(params![now_ms()], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                    })
                })
                .map(|(total, in_flight)| QueueStats {
                    pending: (total - in_flight) as u64,
                    in_flight: in_flight as u64,
                })
                .map_err(sql)
            })
            .await
    }

    fn ack_wait(&self) -> Duration {
        self.config.ack_wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_queue_length_of_a_database_from_before_the_counter_is_counted_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let config = QueueConfig {
            ack_wait: Duration::from_secs(30),
            max_messages: 3,
        };
        {
            let q = EmbeddedQueue::open(Db::open(dir.path()).unwrap(), config)
                .await
                .unwrap();
            q.requeue("a", Bytes::new()).await.unwrap();
            q.requeue("b", Bytes::new()).await.unwrap();
            // As a database written before the length was kept: no counter.
            q.db.call(|c| {
                c.execute_batch(
                    "DROP TRIGGER queue_len_insert; DROP TRIGGER queue_len_delete; DROP TABLE queue_len;",
                )
                .map_err(sql)
            })
            .await
            .unwrap();
        }
        let q = EmbeddedQueue::open(Db::open(dir.path()).unwrap(), config)
            .await
            .unwrap();
        q.enqueue_with(Vec::new(), "c", Bytes::new()).await.unwrap();
        let full = q.enqueue_with(Vec::new(), "d", Bytes::new()).await;
        assert!(matches!(full, Err(Error::Overloaded(_))), "{full:?}");
        let d = q.lease(1, Duration::ZERO).await.unwrap();
        q.ack(&d[0]).await.unwrap();
        q.enqueue_with(Vec::new(), "d", Bytes::new()).await.unwrap();
        assert_eq!(q.stats().await.unwrap().pending, 3);
    }
}
