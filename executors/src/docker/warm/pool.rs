//! The bookkeeping of warm pools, apart from the engine: which containers wait for
//! which function version, how many are on their way, the global caps, and when a
//! pool scales to zero. Generic over the waiting container so it is tested alone.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

/// What a warm container is created for: containers of one key are interchangeable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    /// The function.
    pub(crate) function_id: String,
    /// The image reference, as the function names it.
    pub(crate) image: String,
    /// The engine's id of that image (a re-tagged image is another key).
    pub(crate) image_id: String,
    /// Memory limit in bytes.
    pub(crate) memory_limit: u64,
}

/// The global caps and the idle window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    /// Most warm containers (waiting or being made) at once.
    pub(crate) max_containers: u32,
    /// Most memory (sum of their limits) of those, in bytes.
    pub(crate) max_memory: u64,
    /// A pool not used for this long scales to zero.
    pub(crate) idle: Duration,
}

/// How long a pool whose container could not be made waits before trying again.
const FILL_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Pool<T> {
    ready: VecDeque<T>,
    filling: u32,
    target: u32,
    last_used: Instant,
    backoff_until: Option<Instant>,
}

/// Every pool of an executor.
#[derive(Debug)]
pub(crate) struct Pools<T> {
    caps: Caps,
    pools: HashMap<Key, Pool<T>>,
    /// Names and ids of every warm container made and not yet removed (the reaper
    /// keeps them).
    owned: HashSet<String>,
}

impl<T> Pools<T> {
    /// No pools yet.
    pub(crate) fn new(caps: Caps) -> Self {
        Pools {
            caps,
            pools: HashMap::new(),
            owned: HashSet::new(),
        }
    }

    /// A waiting container of `key`, if any.
    pub(crate) fn take(&mut self, key: &Key) -> Option<T> {
        self.pools.get_mut(key)?.ready.pop_front()
    }

    /// Records a use of `key` (`target` warm containers wanted) and says how many
    /// containers to make now (already counted as on their way), within the caps.
    pub(crate) fn used(&mut self, key: &Key, target: u32, now: Instant) -> u32 {
        let (count, memory) = self.load();
        let caps = self.caps;
        let pool = self.pools.entry(key.clone()).or_insert_with(|| Pool {
            ready: VecDeque::new(),
            filling: 0,
            target,
            last_used: now,
            backoff_until: None,
        });
        pool.target = target;
        pool.last_used = now;
        if pool.backoff_until.is_some_and(|until| now < until) {
            return 0;
        }
        let have = pool.ready.len() as u32 + pool.filling;
        let by_count = caps.max_containers.saturating_sub(count);
        let by_memory = caps.max_memory.saturating_sub(memory) / key.memory_limit.max(1);
        let n = target
            .saturating_sub(have)
            .min(by_count)
            .min(u32::try_from(by_memory).unwrap_or(u32::MAX));
        pool.filling += n;
        n
    }

    /// A container of `key` is ready: kept, or handed back when its pool is gone
    /// or has enough (the caller removes it).
    pub(crate) fn filled(&mut self, key: &Key, container: T) -> Option<T> {
        let Some(pool) = self.pools.get_mut(key) else {
            return Some(container);
        };
        pool.filling = pool.filling.saturating_sub(1);
        if pool.ready.len() as u32 >= pool.target {
            return Some(container);
        }
        pool.ready.push_back(container);
        None
    }

    /// A container of `key` could not be made: the pool waits before trying again.
    pub(crate) fn fill_failed(&mut self, key: &Key, now: Instant) {
        if let Some(pool) = self.pools.get_mut(key) {
            pool.filling = pool.filling.saturating_sub(1);
            pool.backoff_until = Some(now + FILL_BACKOFF);
        }
    }

    /// Drops the pools unused for the idle window; returns their containers.
    pub(crate) fn sweep(&mut self, now: Instant) -> Vec<T> {
        let idle = self.caps.idle;
        self.remove_where(|_, pool| now.saturating_duration_since(pool.last_used) >= idle)
    }

    /// Drops the pools of `function_id` for which `keep` is false; returns their
    /// containers.
    pub(crate) fn retain(&mut self, function_id: &str, keep: impl Fn(&Key) -> bool) -> Vec<T> {
        self.remove_where(|key, _| key.function_id == function_id && !keep(key))
    }

    /// Drops every pool; returns their containers.
    pub(crate) fn drain(&mut self) -> Vec<T> {
        self.remove_where(|_, _| true)
    }

    fn remove_where(&mut self, gone: impl Fn(&Key, &Pool<T>) -> bool) -> Vec<T> {
        let keys: Vec<Key> = self
            .pools
            .iter()
            .filter(|(key, pool)| gone(key, pool))
            .map(|(key, _)| key.clone())
            .collect();
        keys.iter()
            .filter_map(|key| self.pools.remove(key))
            .flat_map(|pool| pool.ready)
            .collect()
    }

    /// Containers of `function_id` waiting for a job.
    pub(crate) fn ready(&self, function_id: &str) -> usize {
        self.pools
            .iter()
            .filter(|(key, _)| key.function_id == function_id)
            .map(|(_, pool)| pool.ready.len())
            .sum()
    }

    /// The functions that have a pool.
    pub(crate) fn functions(&self) -> Vec<String> {
        let ids: HashSet<&String> = self.pools.keys().map(|k| &k.function_id).collect();
        ids.into_iter().cloned().collect()
    }

    /// Warm containers waiting or on their way, and the sum of their memory limits.
    fn load(&self) -> (u32, u64) {
        self.pools
            .iter()
            .fold((0, 0), |(count, memory), (key, pool)| {
                let n = pool.ready.len() as u32 + pool.filling;
                (count + n, memory + u64::from(n) * key.memory_limit)
            })
    }

    /// Marks a container name or id as the executor's.
    pub(crate) fn own(&mut self, name_or_id: &str) {
        self.owned.insert(name_or_id.to_string());
    }

    /// Forgets a container name or id (removed).
    pub(crate) fn disown(&mut self, name_or_id: &str) {
        self.owned.remove(name_or_id);
    }

    /// True for a warm container the executor made and has not removed.
    pub(crate) fn owns(&self, name_or_id: &str) -> bool {
        self.owned.contains(name_or_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(f: &str, memory: u64) -> Key {
        Key {
            function_id: f.into(),
            image: "img".into(),
            image_id: "sha256:1".into(),
            memory_limit: memory,
        }
    }

    fn caps(max_containers: u32, max_memory: u64) -> Caps {
        Caps {
            max_containers,
            max_memory,
            idle: Duration::from_secs(10),
        }
    }

    #[test]
    fn fills_to_the_target_and_hands_out_each_container_once() {
        let mut pools = Pools::new(caps(16, u64::MAX));
        let (k, now) = (key("f", 1), Instant::now());
        assert_eq!(pools.used(&k, 2, now), 2);
        assert_eq!(pools.used(&k, 2, now), 0, "two are on their way");
        assert!(pools.filled(&k, 1).is_none());
        assert!(pools.filled(&k, 2).is_none());
        assert_eq!(pools.take(&k), Some(1));
        assert_eq!(pools.take(&k), Some(2));
        assert_eq!(pools.take(&k), None);
        assert_eq!(pools.used(&k, 2, now), 2);
    }

    #[test]
    fn global_caps_bound_every_pool() {
        let mut pools: Pools<u64> = Pools::new(caps(3, 5 << 20));
        let now = Instant::now();
        assert_eq!(pools.used(&key("a", 2 << 20), 2, now), 2);
        assert_eq!(
            pools.used(&key("b", 1 << 20), 8, now),
            1,
            "memory cap: 5 MiB"
        );
        assert_eq!(pools.used(&key("c", 1), 8, now), 0, "count cap: 3");
    }

    #[test]
    fn idle_pools_scale_to_zero_and_late_fills_are_handed_back() {
        let mut pools = Pools::new(caps(16, u64::MAX));
        let (k, now) = (key("f", 1), Instant::now());
        assert_eq!(pools.used(&k, 2, now), 2);
        assert!(pools.filled(&k, 1).is_none());
        assert!(pools.sweep(now + Duration::from_secs(5)).is_empty());
        assert_eq!(pools.sweep(now + Duration::from_secs(10)), vec![1]);
        assert_eq!(pools.filled(&k, 2), Some(2), "its pool is gone");
        assert!(pools.functions().is_empty());
    }

    #[test]
    fn retain_drops_only_the_functions_other_keys() {
        let mut pools = Pools::new(caps(16, u64::MAX));
        let now = Instant::now();
        let (old, new, other) = (key("f", 1), key("f", 2), key("g", 1));
        for k in [&old, &new, &other] {
            pools.used(k, 1, now);
            assert!(pools.filled(k, k.memory_limit).is_none());
        }
        assert_eq!(pools.retain("f", |k| k.memory_limit == 2), vec![1]);
        assert_eq!(pools.take(&new), Some(2));
        assert_eq!(pools.take(&other), Some(1));
        let mut left = pools.drain();
        left.sort();
        assert!(left.is_empty());
    }

    #[test]
    fn a_failed_fill_backs_off() {
        let mut pools: Pools<u32> = Pools::new(caps(16, u64::MAX));
        let (k, now) = (key("f", 1), Instant::now());
        assert_eq!(pools.used(&k, 1, now), 1);
        pools.fill_failed(&k, now);
        assert_eq!(pools.used(&k, 1, now + Duration::from_secs(1)), 0);
        assert_eq!(pools.used(&k, 1, now + FILL_BACKOFF), 1);
    }
}
