//! What a [`wasmtime::Store`] holds for one execution: the WASI context, the
//! resource limiter and, for components, the resource table and object grants.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::limits::Limiter;
use super::objects::ObjectAccess;

/// Store data of a WASI preview1 core module.
pub(crate) struct ModuleState {
    /// The preview1 context.
    pub(crate) wasi: WasiP1Ctx,
    /// Memory, table and instance limits.
    pub(crate) limiter: Limiter,
}

/// Store data of a component (`wasi:cli/command` or `faas:function`).
pub(crate) struct ComponentState {
    /// The preview2 context.
    pub(crate) wasi: WasiCtx,
    /// Resources handed to the guest.
    pub(crate) table: ResourceTable,
    /// Memory, table and instance limits.
    pub(crate) limiter: Limiter,
    /// The objects the `objects` import may read.
    pub(crate) objects: ObjectAccess,
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
