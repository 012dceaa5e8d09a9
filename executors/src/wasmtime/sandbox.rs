//! What one execution sees of the host: a fresh private `/tmp` (a host temp dir,
//! removed afterwards, whose size is watched against the cap), the granted objects
//! read-only at `/objects`, argv/env/stdin per the contract, captured stdout and
//! stderr -- and no network, no other path.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use faas_runtime::ports::{ExecutionRequest, ObjectGrant};
use faas_runtime::{Error, Result};
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::pipe::CappedPipe;
use super::scratch::{Scratch, ScratchDir};

/// Entries (files and directories) `/tmp` may hold.
const TMP_MAX_ENTRIES: u64 = 10_000;

/// The host side of one execution's filesystem and stdio.
#[derive(Debug)]
pub(crate) struct Sandbox {
    /// `/tmp`, when the guest can reach the filesystem at all.
    tmp: Option<ScratchDir>,
    objects: Option<Objects>,
    /// Preopen `/tmp` and `/objects`.
    preopens: bool,
    /// Captured stdout.
    pub(crate) stdout: CappedPipe,
    /// Captured stderr.
    pub(crate) stderr: CappedPipe,
}

impl Sandbox {
    /// Takes a fresh `/tmp` (when `filesystem`: the guest imports filesystem
    /// functions) and, when objects are granted, a directory holding exactly them
    /// (read by the `objects` import even without `filesystem`).
    pub(crate) async fn create(
        request: &ExecutionRequest,
        scratch: &Scratch,
        filesystem: bool,
    ) -> Result<Self> {
        let tmp = if filesystem {
            Some(scratch.take()?)
        } else {
            None
        };
        let objects = match (&request.objects_dir, request.objects.is_empty()) {
            (Some(staged), false) => Some(Objects::new(staged, &request.objects, scratch).await?),
            _ => None,
        };
        Ok(Sandbox {
            tmp,
            objects,
            preopens: filesystem,
            stdout: CappedPipe::new("stdout", request.stdout_cap),
            stderr: CappedPipe::new("stderr", request.stderr_cap),
        })
    }

    /// The host directory mounted at `/objects`, if any.
    pub(crate) fn objects_dir(&self) -> Option<PathBuf> {
        self.objects.as_ref().map(|o| o.path().to_path_buf())
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
        if let Some(tmp) = &self.tmp {
            b.preopened_dir(tmp.path(), "/tmp", FsPerms::ReadWrite)
                .map_err(preopen_failed)?;
        }
        match &self.objects {
            Some(objects) if self.preopens => {
                b.preopened_dir(objects.path(), "/objects", FsPerms::ReadOnly)
                    .map_err(preopen_failed)?;
            }
            _ => {}
        }
        Ok(b)
    }

    /// True when `/tmp` holds more than `cap` bytes (or too many entries).
    pub(crate) async fn tmp_over_cap(&self, cap: u64) -> bool {
        let Some(tmp) = &self.tmp else { return false };
        let dir = tmp.path().to_path_buf();
        tokio::task::spawn_blocking(move || tmp_usage(&dir).over(cap))
            .await
            .unwrap_or(false)
    }

    /// After the guest stopped: [`Self::tmp_over_cap`], one `rmdir` when the guest
    /// left `/tmp` empty (the common case).
    pub(crate) async fn tmp_ended_over_cap(&mut self, cap: u64) -> bool {
        let Some(tmp) = &mut self.tmp else {
            return false;
        };
        !tmp.remove_if_empty() && self.tmp_over_cap(cap).await
    }
}

/// The directory mounted at `/objects`: the worker's staging directory when it
/// holds exactly the grants, else a scratch copy holding exactly them.
#[derive(Debug)]
enum Objects {
    Staged(PathBuf),
    View(ScratchDir),
}

impl Objects {
    async fn new(staged: &Path, grants: &[ObjectGrant], scratch: &Scratch) -> Result<Self> {
        for g in grants {
            if !safe_component(&g.function_id) || !safe_component(&g.name) {
                return Err(Error::Invalid(format!("unsafe object key {}", g.key())));
            }
        }
        if holds_exactly(staged, grants) {
            return Ok(Objects::Staged(staged.to_path_buf()));
        }
        let view = scratch.take()?;
        let (staged, grants) = (staged.to_path_buf(), grants.to_vec());
        tokio::task::spawn_blocking(move || {
            link_or_copy(&staged, &grants, view.path())?;
            Ok(Objects::View(view))
        })
        .await
        .map_err(|e| Error::Internal(format!("staging task failed: {e}")))?
    }

    fn path(&self) -> &Path {
        match self {
            Objects::Staged(path) => path,
            Objects::View(dir) => dir.path(),
        }
    }
}

/// Hard-links (else copies) each granted object from `staged` into `view`.
fn link_or_copy(staged: &Path, grants: &[ObjectGrant], view: &Path) -> Result<()> {
    for g in grants {
        let src = staged.join(&g.function_id).join(&g.name);
        let dst_dir = view.join(&g.function_id);
        let dst = dst_dir.join(&g.name);
        std::fs::create_dir_all(&dst_dir).map_err(|e| Error::io("cannot stage an object", e))?;
        if dst.exists() || std::fs::hard_link(&src, &dst).is_ok() {
            continue; // granted twice, or linked
        }
        copy_new(&src, &dst)
            .map_err(|e| Error::io(&format!("object {} is not staged", g.key()), e))?;
    }
    Ok(())
}

/// Copies `src` into a new file `dst` (never opening an existing file for
/// writing: `dst` may not truncate what a link shares with the object store).
fn copy_new(src: &Path, dst: &Path) -> std::io::Result<()> {
    let mut from = std::fs::File::open(src)?;
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)?;
    std::io::copy(&mut from, &mut to).map(drop)
}

/// True when `staged` holds the granted `<function_id>/<name>` files and nothing else.
fn holds_exactly(staged: &Path, grants: &[ObjectGrant]) -> bool {
    let names = |dir: &Path| -> Option<Vec<(String, bool)>> {
        let entries = std::fs::read_dir(dir).ok()?;
        entries
            .map(|e| {
                let e = e.ok()?;
                Some((
                    e.file_name().into_string().ok()?,
                    e.file_type().ok()?.is_dir(),
                ))
            })
            .collect()
    };
    let Some(fids) = names(staged) else {
        return false;
    };
    let wanted: HashSet<(&str, &str)> = grants
        .iter()
        .map(|g| (g.function_id.as_str(), g.name.as_str()))
        .collect();
    let mut files = 0;
    for (fid, is_dir) in fids {
        let Some(entries) = names(&staged.join(&fid)).filter(|_| is_dir) else {
            return false;
        };
        for (name, is_dir) in entries {
            let granted = wanted.contains(&(fid.as_str(), name.as_str()));
            if is_dir || !granted {
                return false;
            }
            files += 1;
        }
    }
    files == wanted.len()
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

    fn grant(name: &str) -> ObjectGrant {
        ObjectGrant {
            alias: name.into(),
            function_id: "f".into(),
            name: name.into(),
            size: 5,
            content_type: "text/plain".into(),
        }
    }

    #[test]
    fn an_object_granted_twice_is_viewed_once_and_never_truncated() {
        let staged = tempfile::tempdir().unwrap();
        let view = tempfile::tempdir().unwrap();
        std::fs::create_dir(staged.path().join("f")).unwrap();
        std::fs::write(staged.path().join("f/x"), b"bytes").unwrap();
        let grants = [grant("x"), grant("x")];
        link_or_copy(staged.path(), &grants, view.path()).unwrap();
        assert_eq!(std::fs::read(staged.path().join("f/x")).unwrap(), b"bytes");
        assert_eq!(std::fs::read(view.path().join("f/x")).unwrap(), b"bytes");
    }
}
