//! Compiled artifacts. A module is validated and compiled once (at deploy time, on
//! a blocking thread), serialized to the disk cache under
//! `<sha256>-<engine compatibility hash>.cwasm`, and kept in memory as a linked
//! [`Prepared`] (an `InstancePre`). On a memory miss the disk cache is tried, then
//! the module bytes are fetched from the object store and compiled.
//!
//! At most `max_compiles` compilations run at once (each takes a core and hundreds
//! of MiB for large components); a deploy that cannot start one within
//! `compile_wait` is refused with `Overloaded` (503). The memory cache is bounded
//! in bytes (see [`MemoryCache`]).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use faas_runtime::model::MODULES_BUCKET;
use faas_runtime::ports::ObjectStore;
use faas_runtime::{Error, Result};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::component::Component;
use wasmtime::{Engine, Module, Precompiled};

use super::Prepared;
use super::link::Linkers;
use super::memory::MemoryCache;

/// Bounds on compilation and on the memory cache.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Compilations that may run at once.
    pub(crate) max_compiles: usize,
    /// How long a compilation may wait for its turn.
    pub(crate) compile_wait: Duration,
    /// Bytes of compiled modules kept in memory.
    pub(crate) memory_bytes: u64,
}

/// The memory and disk caches of compiled modules, keyed by the module's sha256.
pub(crate) struct Artifacts {
    engine: Engine,
    linkers: Arc<Linkers>,
    dir: PathBuf,
    compat: String,
    compilations: Arc<AtomicU64>,
    compiles: Arc<Semaphore>,
    compile_wait: Duration,
    memory: MemoryCache,
    /// The modules bucket; `None` for a deploy-time check alone (it always has
    /// the bytes).
    modules: Option<Arc<dyn ObjectStore>>,
}

impl Artifacts {
    /// Caches for `engine`, on disk under `dir` (created if missing).
    pub(crate) fn new(
        engine: Engine,
        linkers: Linkers,
        dir: PathBuf,
        modules: Option<Arc<dyn ObjectStore>>,
        bounds: Bounds,
    ) -> Result<Self> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io("cannot create the wasm cache directory", e))?;
        let compat = compatibility_key(&engine);
        Ok(Artifacts {
            engine,
            linkers: Arc::new(linkers),
            dir,
            compat,
            compilations: Arc::default(),
            compiles: Arc::new(Semaphore::new(bounds.max_compiles.max(1))),
            compile_wait: bounds.compile_wait,
            memory: MemoryCache::new(bounds.memory_bytes),
            modules,
        })
    }

    /// How many modules this process compiled (cache hits do not count).
    pub(crate) fn compilations(&self) -> u64 {
        self.compilations.load(Ordering::Relaxed)
    }

    /// Bytes and count of modules held in memory now.
    pub(crate) fn memory_usage(&self) -> (u64, usize) {
        (self.memory.bytes(), self.memory.len())
    }

    /// The prepared module `sha256`: from memory, else disk, else `bytes` (or the
    /// object store) compiled now. Concurrent callers share one load.
    pub(crate) async fn get(&self, sha256: &str, bytes: Option<Bytes>) -> Result<Arc<Prepared>> {
        let cell = self.memory.cell(sha256);
        if let Some(prepared) = cell.get() {
            faas_runtime::metrics::wasm_compile_cache("memory");
            return Ok(prepared.clone());
        }
        let mut size = 0;
        let loaded = cell
            .get_or_try_init(|| async {
                let (prepared, bytes) = self.load(sha256, bytes).await?;
                size = bytes;
                Ok::<_, Error>(Arc::new(prepared))
            })
            .await
            .cloned();
        match &loaded {
            Err(_) => self.memory.evict(sha256),
            Ok(_) if size > 0 => self.memory.loaded(sha256, size),
            Ok(_) => {}
        }
        loaded
    }

    /// Drops the module from memory and disk. Call it only when no function uses
    /// the module any more (the API counts its users across owners).
    pub(crate) async fn forget(&self, sha256: &str) {
        self.memory.evict(sha256);
        if let Err(e) = tokio::fs::remove_file(self.path(sha256)).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(module = sha256, error = %e, "cannot remove a cached wasm artifact");
        }
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.compat))
    }

    /// The module and the size of its compiled artifact in bytes.
    async fn load(&self, sha256: &str, bytes: Option<Bytes>) -> Result<(Prepared, u64)> {
        let path = self.path(sha256);
        let (engine, linkers) = (self.engine.clone(), self.linkers.clone());
        let disk = path.clone();
        if let Some(found) = blocking(move || Ok(from_disk(&engine, &linkers, &disk))).await? {
            faas_runtime::metrics::wasm_compile_cache("disk");
            return Ok(found);
        }
        let bytes = match bytes {
            Some(bytes) if digest_matches(&bytes, sha256) => bytes,
            Some(_) => {
                let why = format!("module bytes do not match their digest {sha256}");
                return Err(Error::Invalid(why));
            }
            None => {
                let bytes = self.fetch(sha256).await?;
                if !digest_matches(&bytes, sha256) {
                    let why = format!("stored module {sha256} does not match its digest");
                    return Err(Error::Internal(why));
                }
                bytes
            }
        };
        let turn = tokio::time::timeout(self.compile_wait, self.compiles.clone().acquire_owned());
        let permit = match turn.await {
            Ok(Ok(permit)) => permit,
            _ => {
                return Err(Error::Overloaded(format!(
                    "too many modules are compiling (waited {} s); retry shortly",
                    self.compile_wait.as_secs()
                )));
            }
        };
        let (engine, linkers) = (self.engine.clone(), self.linkers.clone());
        let counter = self.compilations.clone();
        let module = sha256.to_string();
        // The permit moves into the blocking task: it bounds compilations that
        // run, even when the caller stops waiting.
        blocking(move || {
            let _permit = permit;
            counter.fetch_add(1, Ordering::Relaxed);
            faas_runtime::metrics::wasm_compile_cache("compiled");
            compile(&engine, &linkers, &bytes, &path, &module)
        })
        .await
    }

    async fn fetch(&self, sha256: &str) -> Result<Bytes> {
        let Some(modules) = &self.modules else {
            return Err(Error::NotFound(format!(
                "module {sha256} (no modules bucket here)"
            )));
        };
        let (_meta, mut body) = modules.get(MODULES_BUCKET, sha256).await?;
        let mut bytes = BytesMut::new();
        while let Some(chunk) = body.next().await {
            bytes.extend_from_slice(&chunk.map_err(|e| Error::io("cannot read a wasm module", e))?);
        }
        Ok(bytes.freeze())
    }
}

/// Runs blocking work (compilation, file I/O) off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("compilation task failed: {e}")))?
}

/// Loads and links a cached artifact, with its size; `None` when absent or
/// unusable (removed).
fn from_disk(engine: &Engine, linkers: &Linkers, path: &Path) -> Option<(Prepared, u64)> {
    let size = std::fs::metadata(path).ok()?.len();
    let kind = match Engine::detect_precompiled_file(path) {
        Ok(Some(kind)) => kind,
        Ok(None) | Err(_) => return None,
    };
    // SAFETY: files in the cache directory are written only by `compile` below
    // (complete, then renamed into place, never modified after), and Wasmtime
    // checks the header against this engine. The directory must be writable by
    // the platform alone (see `WasmtimeConfig::cache_dir`).
    let loaded = match kind {
        Precompiled::Module => {
            unsafe { Module::deserialize_file(engine, path) }.map(Compiled::Module)
        }
        Precompiled::Component => {
            unsafe { Component::deserialize_file(engine, path) }.map(Compiled::Component)
        }
    };
    let linked = loaded
        .map_err(|e| describe(&e))
        .and_then(|c| linkers.link(c).map_err(|e| e.to_string()));
    match linked {
        Ok(prepared) => Some((prepared, size)),
        Err(why) => {
            tracing::warn!(path = %path.display(), error = %why, "dropping an unusable cached wasm artifact");
            let _ = std::fs::remove_file(path);
            None
        }
    }
}

/// A compiled module or component, before linking.
pub(crate) enum Compiled {
    /// A core module (WASI preview1 command).
    Module(Module),
    /// A component (`wasi:cli/command` or `faas:function`).
    Component(Component),
}

/// Validates, compiles, links and writes the artifact to `path`; returns it with
/// the artifact's size.
fn compile(
    engine: &Engine,
    linkers: &Linkers,
    bytes: &[u8],
    path: &Path,
    sha256: &str,
) -> Result<(Prepared, u64)> {
    let started = Instant::now();
    let compiled = match wasm_kind(bytes)? {
        Precompiled::Module => Module::new(engine, bytes).map(Compiled::Module),
        Precompiled::Component => Component::new(engine, bytes).map(Compiled::Component),
    }
    .map_err(|e| Error::Invalid(format!("invalid wasm: {}", describe(&e))))?;
    let serialized = match &compiled {
        Compiled::Module(m) => m.serialize(),
        Compiled::Component(c) => c.serialize(),
    };
    let prepared = linkers.link(compiled)?;
    tracing::info!(
        module = sha256,
        ms = started.elapsed().as_millis() as u64,
        "compiled wasm"
    );
    let size = match serialized {
        Ok(s) => {
            if let Err(e) = write_atomically(path, &s) {
                tracing::warn!(module = sha256, error = %e, "cannot write the wasm cache");
            }
            s.len() as u64
        }
        Err(e) => {
            tracing::warn!(module = sha256, error = %describe(&e), "cannot serialize a module");
            bytes.len() as u64
        }
    };
    Ok((prepared, size))
}

/// Core module or component, from the binary header.
pub(crate) fn wasm_kind(bytes: &[u8]) -> Result<Precompiled> {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', _, _, 0, 0]) => Ok(Precompiled::Module),
        Some([0, b'a', b's', b'm', _, _, 1, 0]) => Ok(Precompiled::Component),
        _ => Err(Error::Invalid(
            "not a wasm binary (module or component)".into(),
        )),
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A wasmtime error and its root cause, on one line.
pub(crate) fn describe(e: &wasmtime::Error) -> String {
    let (top, root) = (e.to_string(), e.root_cause().to_string());
    if top == root {
        top
    } else {
        format!("{top}: {root}")
    }
}

fn digest_matches(bytes: &[u8], sha256: &str) -> bool {
    hex::encode(Sha256::digest(bytes)).eq_ignore_ascii_case(sha256)
}

/// 16 hex digits of sha256 over the engine's compatibility hash: stable across
/// restarts with the same Wasmtime version and configuration.
fn compatibility_key(engine: &Engine) -> String {
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex::encode(&h.0.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_comes_from_the_header() {
        assert!(matches!(
            wasm_kind(b"\0asm\x01\0\0\0"),
            Ok(Precompiled::Module)
        ));
        assert!(matches!(
            wasm_kind(b"\0asm\x0d\0\x01\0"),
            Ok(Precompiled::Component)
        ));
        assert!(matches!(wasm_kind(b"(module)"), Err(Error::Invalid(_))));
        assert!(matches!(wasm_kind(b""), Err(Error::Invalid(_))));
    }

    #[test]
    fn digests_compare_without_case() {
        let sha = hex::encode(Sha256::digest(b"x"));
        assert!(digest_matches(b"x", &sha.to_ascii_uppercase()));
        assert!(!digest_matches(b"y", &sha));
    }
}
