//! The deliverer: a task of every API process that finds due entries of the
//! `callbacks` bucket, claims one with a revision-checked lease (of several
//! processes one delivers), POSTs the final record, writes the outcome into the
//! execution's `callback`, then removes the entry or schedules its retry.
//!
//! It scans every [`DeliveryConfig::scan_every`] and at once when an execution with
//! a pending callback becomes final in this process ([`Store::callbacks_due`]).
//! Retries back off from [`DeliveryConfig::retry_base`], doubling up to
//! [`MAX_BACKOFF`], until [`DeliveryConfig::window`] after the execution ended.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faas_runtime::model::{Callback, CallbackState, Execution, now};
use faas_runtime::sealing::SecretBox;
use faas_runtime::store::{PendingCallback, Store, now_ms};
use faas_runtime::{Error, Result};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::client::{Outcome, Sender};
use super::sign::signature;

/// Longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How long a claim holds an entry (well beyond one attempt).
const LEASE: Duration = Duration::from_secs(60);

/// Deliveries under way at once in one process.
const MAX_IN_FLIGHT: usize = 32;

/// Entries looked at per scan.
const SCAN_LIMIT: usize = 1024;

/// How long an execution seen not final is left alone (unless woken).
const RECHECK: Duration = Duration::from_secs(1);

/// An entry whose execution is missing this long after it was written is dropped
/// (younger ones may belong to a submit still writing the record).
const ORPHAN_AFTER_MS: i64 = 60_000;

/// How callbacks are delivered.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Loopback, private and link-local receivers allowed (never metadata).
    pub allow_private: bool,
    /// Wait after the first failed attempt; doubles after each.
    pub retry_base: Duration,
    /// Retries stop this long after the execution ended.
    pub window: Duration,
    /// Pause between two scans.
    pub scan_every: Duration,
    /// Longest attempt (connect, send, answer).
    pub timeout: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            allow_private: false,
            retry_base: Duration::from_secs(1),
            window: Duration::from_secs(3600),
            scan_every: Duration::from_millis(250),
            timeout: Duration::from_secs(5),
        }
    }
}

/// The wait before attempt `attempts + 1`: `base * 2^(attempts-1)`, at most [`MAX_BACKOFF`].
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    let factor = 1u32 << attempts.saturating_sub(1).min(20);
    base.saturating_mul(factor).min(MAX_BACKOFF)
}

struct Deliverer {
    store: Store,
    sealing: SecretBox,
    config: DeliveryConfig,
    sender: Sender,
    in_flight: Mutex<HashSet<String>>,
}

/// Delivers callbacks until `stop` is cancelled.
pub async fn run(
    store: Store,
    sealing: SecretBox,
    config: DeliveryConfig,
    stop: CancellationToken,
) {
    let sender = match Sender::new(config.allow_private, config.timeout) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "callbacks will not be delivered by this process");
            return;
        }
    };
    let d = Arc::new(Deliverer {
        store,
        sealing,
        config,
        sender,
        in_flight: Mutex::default(),
    });
    let mut waiting: HashMap<String, Instant> = HashMap::new();
    tracing::info!(
        allow_private = d.config.allow_private,
        "callback deliverer running"
    );
    let mut deliveries = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = d.store.callbacks_due().notified() => waiting.clear(),
            _ = tokio::time::sleep(d.config.scan_every) => {}
        }
        while deliveries.try_join_next().is_some() {}
        waiting.retain(|_, seen| seen.elapsed() < RECHECK);
        if let Err(e) = d.scan(&mut waiting, &mut deliveries).await {
            tracing::warn!(error = %e, "callback scan failed; next one soon");
        }
    }
    // Attempts under way may finish (one attempt's timeout); the rest are retried
    // by the next process once their lease ends.
    let finish = async { while deliveries.join_next().await.is_some() {} };
    if tokio::time::timeout(d.config.timeout + Duration::from_secs(1), finish)
        .await
        .is_err()
    {
        deliveries.abort_all();
    }
}

/// Marks an execution's delivery as under way in this process until dropped.
struct InFlight {
    deliverer: Arc<Deliverer>,
    id: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.deliverer.lock().remove(&self.id);
    }
}

impl Deliverer {
    /// Starts a delivery of every due entry whose execution is final.
    async fn scan(
        self: &Arc<Self>,
        waiting: &mut HashMap<String, Instant>,
        deliveries: &mut JoinSet<()>,
    ) -> Result<()> {
        for (entry, rev) in self.store.due_callbacks(now_ms(), SCAN_LIMIT).await? {
            let id = entry.execution_id.clone();
            if waiting.contains_key(&id) || self.busy(&id) {
                continue;
            }
            if self.lock().len() >= MAX_IN_FLIGHT {
                break;
            }
            match self.store.get_execution(&id, None).await? {
                None if now_ms() - entry.created_ms > ORPHAN_AFTER_MS => {
                    self.store.remove_callback_entry(&id).await?;
                }
                None => {}
                Some((exec, _)) if !exec.status.is_final() => {
                    waiting.insert(id, Instant::now());
                }
                Some((exec, _)) => {
                    self.lock().insert(id.clone());
                    let span = tracing::info_span!("callback", execution.id = %id);
                    let mark = InFlight {
                        deliverer: self.clone(),
                        id,
                    };
                    deliveries.spawn(
                        async move {
                            if let Err(e) = mark.deliverer.deliver(entry, rev, exec).await {
                                tracing::warn!(error = %e, "callback delivery step failed; the entry is retried");
                            }
                            drop(mark);
                        }
                        .instrument(span),
                    );
                }
            }
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn busy(&self, id: &str) -> bool {
        self.lock().contains(id)
    }

    /// One attempt at `exec`'s callback, if the entry can still be claimed.
    async fn deliver(&self, mut entry: PendingCallback, rev: u64, exec: Execution) -> Result<()> {
        let id = exec.id.clone();
        let Some(cb) = exec
            .callback
            .clone()
            .filter(|c| c.state == CallbackState::Pending)
        else {
            return self.store.remove_callback_entry(&id).await;
        };
        if self.store.get_user(&entry.owner_id).await?.is_none() {
            tracing::info!("the owner is gone; callback dropped");
            return self.store.remove_callback_entry(&id).await;
        }
        entry.lease_ms = now_ms() + LEASE.as_millis() as i64;
        let rev = match self.store.update_callback_entry(&entry, rev).await {
            Ok(rev) => rev,
            // Another deliverer claimed it (or finished it) first.
            Err(Error::Conflict(_) | Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let outcome = self.post(&entry.owner_id, &cb.url, &exec).await?;
        let attempts = cb.attempts + 1;
        let retry_in = backoff(self.config.retry_base, attempts);
        let state = next_state(&outcome, attempts, self.expired(&exec, retry_in));
        log(&outcome, &state, retry_in);
        self.store
            .update_callback_state(&id, |c| {
                *c = Callback {
                    url: c.url.clone(),
                    ..state.clone()
                }
            })
            .await?;
        if state.state == CallbackState::Pending {
            entry.lease_ms = 0;
            entry.next_ms = now_ms() + retry_in.as_millis() as i64;
            match self.store.update_callback_entry(&entry, rev).await {
                Ok(_) | Err(Error::Conflict(_) | Error::NotFound(_)) => Ok(()),
                Err(e) => Err(e),
            }
        } else {
            self.store.remove_callback_entry(&id).await
        }
    }
}

impl Deliverer {
    /// One signed POST of `exec` to `url`, with the key of `owner`.
    async fn post(&self, owner: &str, url: &str, exec: &Execution) -> Result<Outcome> {
        let key = self.store.callback_key(owner, &self.sealing).await?;
        let body = serde_json::to_vec(exec)?;
        let sig = signature(&key.key, now().unix_timestamp(), &body);
        Ok(self.sender.post(url, &exec.id, body, &sig).await)
    }

    /// True when a retry `retry_in` from now falls past the window after `exec` ended.
    fn expired(&self, exec: &Execution, retry_in: Duration) -> bool {
        let hour = time::Duration::HOUR;
        let window = time::Duration::try_from(self.config.window).unwrap_or(hour);
        let retry_in = time::Duration::try_from(retry_in).unwrap_or(hour);
        let ended = exec.completed_at.unwrap_or_else(now);
        now() + retry_in > ended + window
    }
}

/// The callback after attempt number `attempts` ended with `outcome` (`expired`:
/// no retry fits in the window). The URL is filled in by the caller.
fn next_state(outcome: &Outcome, attempts: u32, expired: bool) -> Callback {
    let (state, last_status, last_error) = match outcome {
        Outcome::Delivered(s) => (CallbackState::Delivered, Some(*s), None),
        Outcome::Refused(why) => (CallbackState::Failed, None, Some(why.clone())),
        Outcome::Rejected(s) => (
            retry_or_fail(expired),
            Some(*s),
            Some(format!("the receiver answered {s}")),
        ),
        Outcome::Unreachable(why) => (retry_or_fail(expired), None, Some(why.clone())),
    };
    Callback {
        url: String::new(),
        state,
        attempts,
        last_status,
        last_error,
    }
}

fn retry_or_fail(expired: bool) -> CallbackState {
    if expired {
        CallbackState::Failed
    } else {
        CallbackState::Pending
    }
}

fn log(outcome: &Outcome, state: &Callback, retry_in: Duration) {
    match state.state {
        CallbackState::Delivered => {
            tracing::info!(attempts = state.attempts, status = ?state.last_status, "callback delivered")
        }
        CallbackState::Pending => tracing::info!(
            attempts = state.attempts,
            ?outcome,
            retry_in_ms = retry_in.as_millis() as u64,
            "callback not delivered; will retry"
        ),
        CallbackState::Failed => {
            tracing::warn!(
                attempts = state.attempts,
                ?outcome,
                "callback failed for good"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_five_minutes() {
        let base = Duration::from_secs(1);
        let waits: Vec<u64> = (1..=12).map(|n| backoff(base, n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(backoff(base, 400), MAX_BACKOFF);
        assert_eq!(
            backoff(Duration::from_millis(50), 2),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn outcomes_become_states() {
        let s = next_state(&Outcome::Delivered(204), 2, false);
        assert_eq!(
            (s.state, s.last_status, s.attempts),
            (CallbackState::Delivered, Some(204), 2)
        );
        let s = next_state(&Outcome::Rejected(500), 1, false);
        assert_eq!(
            (s.state, s.last_status),
            (CallbackState::Pending, Some(500))
        );
        let s = next_state(&Outcome::Rejected(500), 9, true);
        assert_eq!(s.state, CallbackState::Failed);
        let s = next_state(&Outcome::Unreachable("timed out".into()), 1, false);
        assert_eq!((s.state, s.last_status), (CallbackState::Pending, None));
        let s = next_state(&Outcome::Refused("127.0.0.1 is loopback".into()), 1, false);
        assert_eq!(s.state, CallbackState::Failed);
        assert!(s.last_error.unwrap().contains("loopback"));
    }
}
