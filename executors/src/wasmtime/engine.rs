//! The process's Wasmtime [`Engine`]: pooling allocator, copy-on-write memory
//! images, epoch interruption, one memory per module -- and the one epoch ticker
//! thread of the process.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use faas_runtime::{Error, Result};
use wasmtime::{
    Config, Enabled, Engine, EngineWeak, InstanceAllocationStrategy, PoolingAllocationConfig,
};

use super::WasmtimeConfig;

/// How often the ticker advances every engine's epoch. A running guest checks its
/// deadline (and yields to tokio) once per tick.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Core instances one store (one execution) may hold. componentize-py components
/// instantiate ~14 core modules, jco components ~4.
pub(crate) const INSTANCES_PER_STORE: u32 = 64;
/// Linear memories one store may hold (one per core module, most modules import it).
pub(crate) const MEMORIES_PER_STORE: u32 = 8;
/// Tables one store may hold.
pub(crate) const TABLES_PER_STORE: u32 = 16;
/// Tables one core module may define.
const TABLES_PER_MODULE: u32 = 2;
/// Elements one table may hold (CPython's function table starts at ~5.7k).
pub(crate) const TABLE_ELEMENTS: usize = 65_536;
/// Metadata bytes one component instance may use (all its core `VMContext`s).
const COMPONENT_INSTANCE_SIZE: usize = 8 << 20;
/// Bytes of each memory and table reset with memset instead of madvise. 2 MiB covers
/// what a small guest dirties per run: resetting it in place avoids the madvise and its
/// TLB shoot-down IPIs, which were ~7.5% of CPU serving `/fn/` at 32 connections. Only
/// slots that were used hold the pages (at most 2 MiB each).
///
/// Which bytes are reset comes from the `PAGEMAP_SCAN` ioctl where the kernel has it
/// (Linux 6.7+; [`Enabled::Auto`] falls back to the first `KEEP_RESIDENT` bytes
/// elsewhere): only the pages the guest wrote are reset, not the whole first 2 MiB (a
/// Rust guest's 1 MiB stack and its data were memset/copied on every drop). A store's
/// drop went from ~50 µs to ~13 µs on the hello component.
const KEEP_RESIDENT: usize = 2 << 20;
/// Native stack a guest may use before it traps with a stack overflow.
const MAX_WASM_STACK: usize = 1 << 20;
/// Fiber stack of one execution: the wasm stack plus room for host calls.
const ASYNC_STACK: usize = 2 << 20;

/// Builds the engine for `config`, and registers it with the epoch ticker.
pub(crate) fn build(config: &WasmtimeConfig) -> Result<Engine> {
    let slots = config.max_instances.max(1);
    let max_memory = usize::try_from(config.max_memory_mb.saturating_mul(1 << 20))
        .map_err(|_| Error::Invalid("max_memory_mb is too large".into()))?;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(INSTANCES_PER_STORE))
        .total_memories(slots.saturating_mul(MEMORIES_PER_STORE))
        .total_tables(slots.saturating_mul(TABLES_PER_STORE))
        .total_stacks(slots)
        .max_core_instances_per_component(INSTANCES_PER_STORE)
        .max_memories_per_component(MEMORIES_PER_STORE)
        .max_tables_per_component(TABLES_PER_STORE)
        .max_memories_per_module(1)
        .max_tables_per_module(TABLES_PER_MODULE)
        .table_elements(TABLE_ELEMENTS)
        .max_component_instance_size(COMPONENT_INSTANCE_SIZE)
        .max_memory_size(max_memory)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        .pagemap_scan(Enabled::Auto);

    let mut c = Config::new();
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(true)
        .memory_init_cow(true)
        .wasm_component_model(true)
        .wasm_multi_memory(false)
        .wasm_threads(false)
        .wasm_memory64(false)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK);
    let engine = Engine::new(&c)
        .map_err(|e| Error::Unavailable(format!("cannot create the wasmtime engine: {e}")))?;
    register_with_ticker(&engine);
    Ok(engine)
}

/// Engines the ticker advances; dead ones are dropped at the next tick.
static TICKED: OnceLock<Mutex<Vec<EngineWeak>>> = OnceLock::new();

/// Adds `engine` to the process's one ticker thread, starting it on first use.
/// The thread lives as long as the process and costs one wake-up per tick.
fn register_with_ticker(engine: &Engine) {
    let mut started = false;
    let engines = TICKED.get_or_init(|| {
        started = true;
        Mutex::new(Vec::new())
    });
    if let Ok(mut list) = engines.lock() {
        list.push(engine.weak());
    }
    if started {
        let spawned = std::thread::Builder::new()
            .name("wasm-epoch-ticker".into())
            .spawn(move || tick_forever(engines));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the epoch ticker: guests will not be interrupted");
        }
    }
}

fn tick_forever(engines: &'static Mutex<Vec<EngineWeak>>) {
    loop {
        std::thread::sleep(EPOCH_TICK);
        let Ok(mut list) = engines.lock() else { return };
        list.retain(|weak| match weak.upgrade() {
            Some(engine) => {
                engine.increment_epoch();
                true
            }
            None => false,
        });
    }
}
