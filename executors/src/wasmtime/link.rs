//! The linkers, built once per engine: WASI preview1 for core modules; WASI
//! preview2 plus the `faas:function/objects` import for components; WASI preview2
//! plus `wasi:http` for `wasi:http/proxy` components (those exporting
//! `wasi:http/incoming-handler`). Linking a
//! compiled artifact yields its [`Prepared`] form (an `InstancePre`), or
//! `Error::Invalid` saying which import or export is wrong.

use faas_runtime::{Error, Result};
use wasmtime::component::HasSelf;
use wasmtime::{Engine, ExternType};
use wasmtime_wasi::p2::bindings::CommandPre;

use super::artifacts::{Compiled, describe};
use super::bindings::{FunctionPre, faas};
use super::proxy::HttpState;
use super::state::{ComponentState, ModuleState};
use super::{Entry, Prepared};

/// Linkers for modules and components.
pub(crate) struct Linkers {
    module: wasmtime::Linker<ModuleState>,
    component: wasmtime::component::Linker<ComponentState>,
    proxy: wasmtime::component::Linker<HttpState>,
}

impl Linkers {
    /// Both linkers for `engine`.
    pub(crate) fn new(engine: &Engine) -> Result<Self> {
        let broken = |e: wasmtime::Error| {
            Error::Internal(format!("cannot build the wasm linker: {}", describe(&e)))
        };
        let mut module = wasmtime::Linker::new(engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut module, |s: &mut ModuleState| &mut s.wasi)
            .map_err(broken)?;
        let mut component = wasmtime::component::Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut component).map_err(broken)?;
        faas::function::objects::add_to_linker::<_, HasSelf<ComponentState>>(&mut component, |s| s)
            .map_err(broken)?;
        let mut proxy = wasmtime::component::Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut proxy).map_err(broken)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut proxy).map_err(broken)?;
        Ok(Linkers {
            module,
            component,
            proxy,
        })
    }

    /// Resolves the imports of `compiled` and checks its entry point.
    pub(crate) fn link(&self, compiled: Compiled) -> Result<Prepared> {
        let invalid =
            |what: &str, e: wasmtime::Error| Error::Invalid(format!("{what}: {}", describe(&e)));
        match compiled {
            Compiled::Module(module) => {
                let is_command = matches!(
                    module.get_export("_start"),
                    Some(ExternType::Func(f)) if f.params().len() == 0 && f.results().len() == 0
                );
                if !is_command {
                    return Err(Error::Invalid(
                        "a wasm module must be a WASI preview1 command exporting `_start: func()`"
                            .into(),
                    ));
                }
                let filesystem = module.imports().any(|i| {
                    i.module() == "wasi_snapshot_preview1"
                        && (i.name().starts_with("path_") || i.name().starts_with("fd_prestat"))
                });
                let pre = self
                    .module
                    .instantiate_pre(&module)
                    .map_err(|e| invalid("unsupported imports", e))?;
                Ok(Prepared {
                    entry: Entry::Module(pre),
                    filesystem,
                })
            }
            Compiled::Component(component) if is_proxy(&component, self.proxy.engine()) => {
                let pre = self
                    .proxy
                    .instantiate_pre(&component)
                    .map_err(|e| invalid("unsupported imports", e))?;
                let pre = wasmtime_wasi_http::p2::bindings::ProxyPre::new(pre)
                    .map_err(|e| invalid("not a wasi:http/proxy component", e))?;
                Ok(Prepared {
                    entry: Entry::Proxy(pre),
                    filesystem: false,
                })
            }
            Compiled::Component(component) => {
                let pre = self
                    .component
                    .instantiate_pre(&component)
                    .map_err(|e| invalid("unsupported imports", e))?;
                let engine = self.component.engine();
                let filesystem = component
                    .component_type()
                    .imports(engine)
                    .any(|(name, _)| name.starts_with("wasi:filesystem/"));
                let prepared = |entry| Prepared { entry, filesystem };
                if let Ok(function) = FunctionPre::new(pre.clone()) {
                    return Ok(prepared(Entry::Function(function)));
                }
                CommandPre::new(pre)
                    .map(|c| prepared(Entry::Command(c)))
                    .map_err(|_| {
                        Error::Invalid(
                            "a component must export `handle` (world faas:function/function) \
                         or `wasi:cli/run` (world wasi:cli/command)"
                                .into(),
                        )
                    })
            }
        }
    }
}

/// True for a component exporting `wasi:http/incoming-handler` (any 0.2 version).
fn is_proxy(component: &wasmtime::component::Component, engine: &Engine) -> bool {
    component
        .component_type()
        .exports(engine)
        .any(|(name, _)| name.starts_with("wasi:http/incoming-handler@0.2"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasmtime::WasmtimeConfig;

    fn linked(wat: &str) -> Prepared {
        let config = WasmtimeConfig {
            cache_dir: std::env::temp_dir(),
            max_instances: 1,
            max_memory_mb: 16,
            tmp_cap_bytes: 0,
            max_compiles: 1,
            compile_wait: std::time::Duration::from_secs(1),
            cache_bytes: 1 << 20,
        };
        let engine = crate::wasmtime::engine::build(&config).unwrap();
        let module = wasmtime::Module::new(&engine, wat::parse_str(wat).unwrap()).unwrap();
        Linkers::new(&engine)
            .unwrap()
            .link(Compiled::Module(module))
            .unwrap()
    }

    #[test]
    fn only_guests_with_filesystem_imports_get_a_filesystem() {
        let module = |import: &str| {
            format!(
                r#"(module (import "wasi_snapshot_preview1" {import}) (func (export "_start")))"#
            )
        };
        let fd_write = r#""fd_write" (func (param i32 i32 i32 i32) (result i32))"#;
        let prestat = r#""fd_prestat_get" (func (param i32 i32) (result i32))"#;
        let path_open =
            r#""path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32))"#;
        assert!(!linked(&module(fd_write)).filesystem);
        assert!(linked(&module(prestat)).filesystem);
        assert!(linked(&module(path_open)).filesystem);
    }
}
