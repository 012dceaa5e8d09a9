//! [`UserCache`]: user records read at most [`USER_TTL`] ago, for the check of
//! every request's token. A change written through this process's [`Store`] drops
//! the entry at once; a change made by another process (or a deleted record)
//! is seen within [`USER_TTL`] of its commit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Store;
use crate::Result;
use crate::model::User;

/// How old a cached user record may be (well within the promised second).
pub const USER_TTL: Duration = Duration::from_millis(500);

/// Most users cached; beyond it, expired entries are dropped first.
const MAX_CACHED: usize = 100_000;

/// Recently read user records by id (absent ones too).
#[derive(Default)]
pub(crate) struct UserCache {
    entries: Mutex<HashMap<String, (Instant, Option<User>)>>,
}

impl UserCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Option<User>)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fresh(&self, id: &str) -> Option<Option<User>> {
        self.lock()
            .get(id)
            .filter(|(at, _)| at.elapsed() < USER_TTL)
            .map(|(_, u)| u.clone())
    }

    fn keep(&self, id: &str, read_at: Instant, user: Option<User>) {
        let mut map = self.lock();
        if map.len() >= MAX_CACHED {
            map.retain(|_, (at, _)| at.elapsed() < USER_TTL);
            if map.len() >= MAX_CACHED {
                map.clear();
            }
        }
        map.insert(id.to_string(), (read_at, user));
    }

    /// Drops `id` (its record was just written). An entry is stamped with the
    /// start of its read, so even one put back by a read that overlapped the
    /// write is gone within [`USER_TTL`] of it.
    pub(crate) fn forget(&self, id: &str) {
        self.lock().remove(id);
    }
}

impl Store {
    /// The user `id` as read at most [`USER_TTL`] ago (`None`: no such user), for
    /// authenticating requests. Writes through this store are seen at once.
    pub async fn current_user(&self, id: &str) -> Result<Option<User>> {
        if let Some(u) = self.users.fresh(id) {
            return Ok(u);
        }
        let read_at = Instant::now();
        let user = self.get_user(id).await?.map(|(u, _)| u);
        self.users.keep(id, read_at, user.clone());
        Ok(user)
    }
}
