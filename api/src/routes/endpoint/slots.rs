//! [`Slots`]: how many HTTP requests to functions run at once, over all functions
//! and per function. A request that finds no free slot is refused at once (429):
//! nothing queues without bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Functions tracked before idle entries are dropped from the map.
const PRUNE_AT: usize = 1024;

/// The concurrency limits of the functions' endpoints.
pub struct Slots {
    global: Arc<Semaphore>,
    per_function: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_function_max: usize,
}

/// A taken slot; dropping it frees it.
pub struct Slot {
    _global: OwnedSemaphorePermit,
    _function: OwnedSemaphorePermit,
}

impl Slots {
    /// `global` requests at once, at most `per_function` of them for one function.
    pub fn new(global: usize, per_function: usize) -> Self {
        Slots {
            global: Arc::new(Semaphore::new(global.max(1))),
            per_function: Mutex::default(),
            per_function_max: per_function.max(1),
        }
    }

    /// A slot for one request to `function_id`, if one is free.
    pub fn take(&self, function_id: &str) -> Option<Slot> {
        let global = self.global.clone().try_acquire_owned().ok()?;
        let semaphore = {
            let mut map = self.per_function.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() >= PRUNE_AT {
                let max = self.per_function_max;
                map.retain(|_, s| s.available_permits() < max);
            }
            map.entry(function_id.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_function_max)))
                .clone()
        };
        let function = semaphore.try_acquire_owned().ok()?;
        Some(Slot {
            _global: global,
            _function: function,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_globally_and_per_function() {
        let slots = Slots::new(3, 2);
        let a1 = slots.take("a").unwrap();
        let _a2 = slots.take("a").unwrap();
        assert!(slots.take("a").is_none(), "per function");
        let _b1 = slots.take("b").unwrap();
        assert!(slots.take("c").is_none(), "global");
        drop(a1);
        assert!(slots.take("a").is_some(), "freed");
    }
}
