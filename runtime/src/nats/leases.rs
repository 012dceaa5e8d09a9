//! [`Leases`]: the deliveries this process handed out and not yet settled.
//!
//! A [`Delivery`]'s lease is its message's reply subject, through which acks, naks
//! and progress reach the server. NATS accepts an ack on any delivery of a pending
//! message, even an older one, and answers a second ack like the first, so the
//! server alone cannot refuse a lost lease. This table refuses, within this
//! process, an ack, nack or extension of a delivery that was already settled, was
//! superseded by a newer delivery of the same message, or went unrenewed for two
//! ack waits. Across processes a stale ack still reaches the server; the worker's
//! revision-checked final write fences its result.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ports::Delivery;
use crate::{Error, Result};

/// One live delivery: its lease and when it was last granted or renewed.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    lease: String,
    renewed: Instant,
}

/// Live deliveries by message id.
#[derive(Debug)]
pub(crate) struct Leases {
    held: Mutex<HashMap<String, Held>>,
    /// Leases not renewed for this long are dropped as lost.
    forget_after: Duration,
}

impl Leases {
    /// A table for a queue with this ack wait.
    pub(crate) fn new(ack_wait: Duration) -> Self {
        Leases {
            held: Mutex::new(HashMap::new()),
            forget_after: ack_wait.saturating_mul(2),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a delivery of `id`, superseding any older delivery of it.
    pub(crate) fn grant(&self, id: &str, lease: &str) {
        let now = Instant::now();
        let mut held = self.lock();
        let forget_after = self.forget_after;
        held.retain(|_, h| now.duration_since(h.renewed) < forget_after);
        held.insert(
            id.to_string(),
            Held {
                lease: lease.to_string(),
                renewed: now,
            },
        );
    }

    /// Removes `d`'s lease to settle it (ack or nack); `Conflict` if it is not live.
    pub(crate) fn take(&self, d: &Delivery) -> Result<Held> {
        let mut held = self.lock();
        match held.get(&d.id) {
            Some(h) if self.live(h, d) => held.remove(&d.id).ok_or_else(|| lost(d)),
            _ => Err(lost(d)),
        }
    }

    /// Puts back a lease whose settlement did not reach the server, unless a newer
    /// delivery took its place meanwhile.
    pub(crate) fn restore(&self, d: &Delivery, h: Held) {
        self.lock().entry(d.id.clone()).or_insert(h);
    }

    /// `Conflict` unless `d`'s lease is live.
    pub(crate) fn check(&self, d: &Delivery) -> Result<()> {
        match self.lock().get(&d.id) {
            Some(h) if self.live(h, d) => Ok(()),
            _ => Err(lost(d)),
        }
    }

    /// Marks `d`'s lease renewed now (after the server took the extension).
    pub(crate) fn renew(&self, d: &Delivery) {
        if let Some(h) = self.lock().get_mut(&d.id)
            && h.lease == d.lease
        {
            h.renewed = Instant::now();
        }
    }

    /// Live deliveries held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn live(&self, h: &Held, d: &Delivery) -> bool {
        h.lease == d.lease && h.renewed.elapsed() < self.forget_after
    }
}

fn lost(d: &Delivery) -> Error {
    Error::Conflict(format!(
        "lease on {} was lost (settled, redelivered or expired)",
        d.id
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: &str, lease: &str) -> Delivery {
        Delivery {
            id: id.into(),
            payload: bytes::Bytes::new(),
            attempt: 1,
            lease: lease.into(),
        }
    }

    #[test]
    fn settled_or_superseded_leases_are_refused() {
        let t = Leases::new(Duration::from_secs(30));
        let (d1, d2) = (delivery("a", "r1"), delivery("a", "r2"));
        t.grant("a", "r1");
        t.check(&d1).unwrap();
        t.grant("a", "r2");
        assert!(matches!(t.check(&d1), Err(Error::Conflict(_))));
        let held = t.take(&d2).unwrap();
        assert!(matches!(t.take(&d2), Err(Error::Conflict(_))));
        t.restore(&d2, held);
        t.take(&d2).unwrap();
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn unrenewed_leases_are_forgotten() {
        let t = Leases::new(Duration::from_millis(5));
        t.grant("a", "r1");
        std::thread::sleep(Duration::from_millis(20));
        assert!(t.check(&delivery("a", "r1")).is_err());
        t.grant("b", "r2");
        assert_eq!(t.len(), 1, "granting prunes forgotten leases");
    }
}
