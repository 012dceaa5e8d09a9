//! [`LoginLimiter`]: after `max_failures` failed logins for a username (or from
//! one client address) within `window`, further attempts answer 429 until the
//! window passes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed-login counters per key.
pub struct LoginLimiter {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginLimiter {
    /// Allows `max_failures` per `window`.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        LoginLimiter {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds to wait when `key` is locked out.
    pub fn check(&self, key: &str) -> Option<u64> {
        let map = self.failures.lock().ok()?;
        let (count, since) = map.get(key)?;
        let left = self.window.checked_sub(since.elapsed())?;
        (*count >= self.max_failures).then(|| left.as_secs().max(1))
    }

    /// Counts a failure.
    pub fn fail(&self, key: &str) {
        let Ok(mut map) = self.failures.lock() else {
            return;
        };
        if map.len() > 100_000 {
            let window = self.window;
            map.retain(|_, (_, since)| since.elapsed() < window);
        }
        let entry = map.entry(key.to_string()).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    /// Forgets a key after a success.
    pub fn succeed(&self, key: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(key);
        }
    }
}
