//! Host bindings of the `faas:function@0.1.0` world (`wit/function.wit`): the one
//! module holding `bindgen!` output. Guests export `handle`; the host implements
//! the `objects` import (in [`super::objects`]).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "function",
    imports: { default: async },
    exports: { default: async },
});

pub(crate) use faas::function::objects::{Host as ObjectsHost, ObjectError, ObjectInfo};
