//! Per-execution resource limits: the memory limit counts every linear memory of
//! the store together, and remembers that it denied a growth so that a guest
//! failing afterwards is reported as `MemoryExceeded`.

use wasmtime::ResourceLimiter;

use super::engine::{INSTANCES_PER_STORE, MEMORIES_PER_STORE, TABLE_ELEMENTS, TABLES_PER_STORE};

/// A [`ResourceLimiter`] for one store.
#[derive(Debug)]
pub(crate) struct Limiter {
    /// Bytes all memories may hold together.
    memory_limit: usize,
    /// Bytes all memories hold now.
    memory_used: usize,
    /// Bytes granted by the last `memory_growing`, returned if the growth fails.
    last_grant: usize,
    /// A memory growth was refused.
    denied: bool,
}

impl Limiter {
    /// A limiter allowing `memory_limit` bytes of linear memory in total.
    pub(crate) fn new(memory_limit: u64) -> Self {
        Limiter {
            memory_limit: usize::try_from(memory_limit).unwrap_or(usize::MAX),
            memory_used: 0,
            last_grant: 0,
            denied: false,
        }
    }

    /// True once a memory growth (or an initial memory) was refused.
    pub(crate) fn denied(&self) -> bool {
        self.denied
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let delta = desired.saturating_sub(current);
        let total = self.memory_used.saturating_add(delta);
        if total > self.memory_limit {
            self.denied = true;
            return Ok(false);
        }
        self.memory_used = total;
        self.last_grant = delta;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        // Past the pool's slot size, or the host is out of memory.
        self.memory_used = self.memory_used.saturating_sub(self.last_grant);
        self.last_grant = 0;
        self.denied = true;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        INSTANCES_PER_STORE as usize
    }

    fn tables(&self) -> usize {
        TABLES_PER_STORE as usize
    }

    fn memories(&self) -> usize {
        MEMORIES_PER_STORE as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 64 * 1024;

    #[test]
    fn counts_all_memories_together() {
        let mut l = Limiter::new(4 * PAGE as u64);
        assert!(l.memory_growing(0, 2 * PAGE, None).unwrap());
        assert!(l.memory_growing(0, 2 * PAGE, None).unwrap());
        assert!(!l.denied());
        assert!(!l.memory_growing(2 * PAGE, 3 * PAGE, None).unwrap());
        assert!(l.denied());
    }

    #[test]
    fn a_failed_growth_is_returned_and_remembered() {
        let mut l = Limiter::new(4 * PAGE as u64);
        assert!(l.memory_growing(0, 4 * PAGE, None).unwrap());
        l.memory_grow_failed(wasmtime::format_err!("slot full"))
            .unwrap();
        assert!(l.denied());
        assert!(l.memory_growing(0, 4 * PAGE, None).unwrap());
    }
}
