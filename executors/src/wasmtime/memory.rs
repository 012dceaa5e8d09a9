//! The in-memory cache of linked modules, bounded in bytes: each entry counts the
//! size of its compiled artifact, and past the budget the least recently used
//! entries are dropped (an execution that holds one keeps it alive until it ends;
//! the next use reloads it from the disk cache).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::Prepared;

/// A module's slot: filled once by whoever loads it first.
pub(crate) type Cell = Arc<OnceCell<Arc<Prepared>>>;

struct Entry {
    cell: Cell,
    bytes: u64,
    used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    total: u64,
    clock: u64,
}

/// Modules in memory by sha256, at most `budget` bytes of loaded artifacts.
pub(crate) struct MemoryCache {
    inner: Mutex<Inner>,
    budget: u64,
}

impl MemoryCache {
    /// An empty cache holding at most `budget` bytes (at least one module).
    pub(crate) fn new(budget: u64) -> Self {
        MemoryCache {
            inner: Mutex::default(),
            budget,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The slot of `sha256` (created empty if absent), marked as just used.
    pub(crate) fn cell(&self, sha256: &str) -> Cell {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let entry = inner
            .entries
            .entry(sha256.to_string())
            .or_insert_with(|| Entry {
                cell: Cell::default(),
                bytes: 0,
                used: now,
            });
        entry.used = now;
        entry.cell.clone()
    }

    /// Records that `sha256` now holds `bytes` and evicts the least recently used
    /// other loaded modules until the cache fits its budget.
    pub(crate) fn loaded(&self, sha256: &str, bytes: u64) {
        let mut inner = self.lock();
        let Some(entry) = inner.entries.get_mut(sha256) else {
            return;
        };
        let before = std::mem::replace(&mut entry.bytes, bytes);
        inner.total = inner.total - before + bytes;
        while inner.total > self.budget {
            let victim = inner
                .entries
                .iter()
                .filter(|(k, e)| k.as_str() != sha256 && e.bytes > 0)
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            let Some(victim) = victim else { break };
            tracing::debug!(module = %victim, "evicting a compiled module from memory");
            remove(&mut inner, &victim);
        }
    }

    /// Drops `sha256` from memory.
    pub(crate) fn evict(&self, sha256: &str) {
        remove(&mut self.lock(), sha256);
    }

    /// Bytes of loaded modules held now.
    pub(crate) fn bytes(&self) -> u64 {
        self.lock().total
    }

    /// Modules held now (loaded or loading).
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

fn remove(inner: &mut Inner, sha256: &str) {
    if let Some(e) = inner.entries.remove(sha256) {
        inner.total -= e.bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_go_first_past_the_budget() {
        let cache = MemoryCache::new(100);
        cache.cell("a");
        cache.loaded("a", 60);
        cache.cell("b");
        cache.loaded("b", 30);
        cache.cell("a"); // a is used again: b is now the oldest
        cache.cell("c");
        cache.loaded("c", 40);
        assert_eq!((cache.bytes(), cache.len()), (100, 2));
        let kept = cache.lock().entries.keys().cloned().collect::<Vec<_>>();
        assert!(kept.contains(&"a".to_string()) && kept.contains(&"c".to_string()));
        cache.evict("a");
        assert_eq!((cache.bytes(), cache.len()), (40, 1));
    }

    #[test]
    fn one_module_larger_than_the_budget_still_stays() {
        let cache = MemoryCache::new(10);
        cache.cell("big");
        cache.loaded("big", 1000);
        assert_eq!(cache.len(), 1);
        cache.cell("loading"); // not loaded yet: never evicted
        cache.cell("other");
        cache.loaded("other", 5);
        assert_eq!(cache.len(), 2, "big evicted, the loading one kept");
        assert_eq!(cache.bytes(), 5);
    }
}
