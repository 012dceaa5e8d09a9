//! What one execution sees of the host: a fresh private `/tmp` (a host temp dir,
//! removed afterwards, whose size is watched against the cap), the granted objects
//! read-only at `/objects`, argv/env/stdin per the contract, captured stdout and
//! stderr -- and no network, no other path.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use faas_runtime::ports::{ExecutionRequest, ObjectGrant};
use faas_runtime::{Error, Result};
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::pipe::CappedPipe;

/// How often the size of `/tmp` is measured while a guest runs.
const TMP_WATCH_PERIOD: Duration = Duration::from_millis(10);
/// Entries (files and directories) `/tmp` may hold.
const TMP_MAX_ENTRIES: u64 = 10_000;

/// A host directory removed when dropped (also when the execution is cancelled).
#[derive(Debug)]
struct ScratchDir(Option<PathBuf>);

impl ScratchDir {
    fn create(kind: &str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("faas-wasm-{kind}-"))
            .tempdir()
            .map_err(|e| Error::io("cannot create a sandbox directory", e))?;
        Ok(ScratchDir(Some(dir.keep())))
    }

    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    /// Removes the directory if it is empty: one syscall, the common case.
    fn remove_if_empty(&mut self) -> bool {
        let removed = self
            .0
            .as_ref()
            .is_some_and(|p| std::fs::remove_dir(p).is_ok());
        if removed {
            self.0 = None;
        }
        removed
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if self.remove_if_empty() {
            return;
        }
        let Some(path) = self.0.take() else { return };
        let remove = move || {
            if let Err(e) = std::fs::remove_dir_all(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a sandbox directory");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

/// The host side of one execution's filesystem and stdio.
#[derive(Debug)]
pub(crate) struct Sandbox {
    tmp: ScratchDir,
    objects: Option<ScratchDir>,
    /// Captured stdout.
    pub(crate) stdout: CappedPipe,
    /// Captured stderr.
    pub(crate) stderr: CappedPipe,
}

impl Sandbox {
    /// Creates `/tmp` and, when objects are granted, a view holding exactly them.
    pub(crate) fn create(request: &ExecutionRequest) -> Result<Self> {
        let tmp = ScratchDir::create("tmp")?;
        let objects = match (&request.objects_dir, request.objects.is_empty()) {
            (Some(staged), false) => Some(object_view(staged, &request.objects)?),
            _ => None,
        };
        Ok(Sandbox {
            tmp,
            objects,
            stdout: CappedPipe::new("stdout", request.stdout_cap),
            stderr: CappedPipe::new("stderr", request.stderr_cap),
        })
    }

    /// The host directory mounted at `/objects`, if any.
    pub(crate) fn objects_dir(&self) -> Option<PathBuf> {
        self.objects.as_ref().map(|d| d.path().to_path_buf())
    }

    /// A WASI context builder wired to this sandbox. `guest_stdout` receives what
    /// the guest writes on stdout (a typed component's prints go to the logs).
    pub(crate) fn wasi(
        &self,
        request: &ExecutionRequest,
        guest_stdout: &CappedPipe,
    ) -> Result<WasiCtxBuilder> {
        let mut b = WasiCtxBuilder::new();
        b.arg(&request.function.name);
        if let Some(input) = request.argv_input() {
            b.arg(input);
        }
        b.envs(&request.env)
            .stdin(MemoryInputPipe::new(Bytes::from(request.input.clone())))
            .stdout(guest_stdout.clone())
            .stderr(self.stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        let preopen_failed = |e: wasmtime::Error| {
            Error::Unavailable(format!("cannot open a sandbox directory: {e}"))
        };
        b.preopened_dir(self.tmp.path(), "/tmp", FsPerms::ReadWrite)
            .map_err(preopen_failed)?;
        if let Some(objects) = &self.objects {
            b.preopened_dir(objects.path(), "/objects", FsPerms::ReadOnly)
                .map_err(preopen_failed)?;
        }
        Ok(b)
    }

    /// Resolves once `/tmp` holds more than `cap` bytes (or too many entries).
    pub(crate) async fn tmp_over_cap(&self, cap: u64) {
        let start = tokio::time::Instant::now() + TMP_WATCH_PERIOD;
        let mut ticks = tokio::time::interval_at(start, TMP_WATCH_PERIOD);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let dir = self.tmp.path().to_path_buf();
            match tokio::task::spawn_blocking(move || tmp_usage(&dir)).await {
                Ok(usage) if usage.over(cap) => return,
                _ => {}
            }
        }
    }

    /// After the guest stopped: true when `/tmp` ended up over `cap`. Cheap when
    /// the guest left `/tmp` empty (the common case).
    pub(crate) async fn tmp_ended_over_cap(&mut self, cap: u64) -> bool {
        if self.tmp.remove_if_empty() {
            return false;
        }
        let dir = self.tmp.path().to_path_buf();
        tokio::task::spawn_blocking(move || tmp_usage(&dir).over(cap))
            .await
            .unwrap_or(false)
    }
}

/// Hard-links (or copies) each granted object from the worker's staging directory
/// into a fresh directory, so that `/objects` holds the grants and nothing else.
fn object_view(staged: &Path, grants: &[ObjectGrant]) -> Result<ScratchDir> {
    let view = ScratchDir::create("objects")?;
    for g in grants {
        if !safe_component(&g.function_id) || !safe_component(&g.name) {
            return Err(Error::Invalid(format!("unsafe object key {}", g.key())));
        }
        let src = staged.join(&g.function_id).join(&g.name);
        let dst_dir = view.path().join(&g.function_id);
        let dst = dst_dir.join(&g.name);
        std::fs::create_dir_all(&dst_dir).map_err(|e| Error::io("cannot stage an object", e))?;
        if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst)
                .map_err(|e| Error::io(&format!("object {} is not staged", g.key()), e))?;
        }
    }
    Ok(view)
}

/// One path component: not empty, not `.`/`..`, no separator.
fn safe_component(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', '\0'])
}

/// Bytes and entries under a directory.
#[derive(Debug, Default)]
struct Usage {
    bytes: u64,
    entries: u64,
}

impl Usage {
    fn over(&self, cap: u64) -> bool {
        self.bytes > cap || self.entries > TMP_MAX_ENTRIES
    }
}

/// Walks `root` without following symlinks; stops counting past the entry cap.
fn tmp_usage(root: &Path) -> Usage {
    let mut usage = Usage::default();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            usage.entries += 1;
            if usage.entries > TMP_MAX_ENTRIES {
                return usage;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                usage.bytes = usage.bytes.saturating_add(meta.len());
            }
        }
    }
    usage
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_nested_files() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("a")).unwrap();
        std::fs::write(root.path().join("a/b"), vec![0u8; 1000]).unwrap();
        std::fs::write(root.path().join("c"), vec![0u8; 24]).unwrap();
        let u = tmp_usage(root.path());
        assert_eq!((u.bytes, u.entries), (1024, 3));
        assert!(u.over(1023));
        assert!(!u.over(1024));
    }

    #[test]
    fn unsafe_components_are_refused() {
        for bad in ["", ".", "..", "a/b", "a\\b"] {
            assert!(!safe_component(bad), "{bad:?}");
        }
        assert!(safe_component("report.pdf"));
    }
}
