//! Fresh scratch directories (each execution's `/tmp`), made ahead of time and
//! removed afterwards by one background thread per executor: neither `mkdir` nor
//! `rm -r` sits on an execution's path (on ext4 the pair costs ~50 µs of CPU). An
//! empty one is removed in place (`rmdir`: one syscall that also tells it was
//! empty); the thread removes the rest within [`SWEEP`].
//!
//! Layout: `<location>/faas-wasm-<pid>-<random>/<n>/d`. The location is `$TMPDIR`
//! when set, else `/dev/shm` (tmpfs: a few µs per directory; guests' files then
//! use RAM, bounded by the `/tmp` cap times the concurrent executions), else
//! `/tmp`. Bases of processes that died without cleaning up are removed at start.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use faas_runtime::{Error, Result};

/// Fresh directories kept ready.
const STOCK: usize = 16;
/// The thread is woken when the stock falls to this, or the trash reaches it
/// (one wake-up per few executions rather than two per execution).
const LOW_WATER: usize = STOCK / 2;
/// Given-back directories are removed within this time even when few.
const SWEEP: std::time::Duration = std::time::Duration::from_millis(100);
/// Pause before creating directories again after a failure.
const RETRY: std::time::Duration = std::time::Duration::from_millis(100);

#[derive(Debug, Default)]
struct State {
    /// Created, never handed out.
    stock: Vec<PathBuf>,
    /// Handed out and given back: to remove.
    trash: Vec<PathBuf>,
    /// The owner is gone: remove everything and stop.
    stopping: bool,
}

#[derive(Debug)]
struct Inner {
    base: PathBuf,
    next: AtomicU64,
    state: Mutex<State>,
    wake: Condvar,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `<base>/<n>/d`: each directory has a parent of its own, so that removing
    /// it in place never contends with the thread creating others in `<base>`.
    fn create(&self) -> std::io::Result<PathBuf> {
        let parent = self
            .base
            .join(self.next.fetch_add(1, Ordering::Relaxed).to_string());
        std::fs::create_dir(&parent)?;
        let path = parent.join("d");
        std::fs::create_dir(&path)?;
        Ok(path)
    }
}

/// The scratch directories of one executor; dropping it removes them all.
#[derive(Debug)]
pub(crate) struct Scratch {
    inner: Arc<Inner>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Scratch {
    /// A private base directory `faas-wasm-<pid>-*` under the preferred location,
    /// and its thread (which first removes the bases of dead processes).
    pub(crate) fn new() -> Result<Self> {
        let location = location();
        let base = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{}-", std::process::id()))
            .tempdir_in(&location)
            .map_err(|e| Error::io("cannot create the wasm scratch directory", e))?
            .keep();
        let inner = Arc::new(Inner {
            base,
            next: AtomicU64::new(0),
            state: Mutex::default(),
            wake: Condvar::new(),
        });
        let worker = inner.clone();
        let thread = std::thread::Builder::new()
            .name("wasm-scratch".into())
            .spawn(move || {
                remove_stale(&location);
                maintain(&worker);
            })
            .map_err(|e| Error::io("cannot start the wasm scratch thread", e))?;
        Ok(Scratch {
            inner,
            thread: Some(thread),
        })
    }

    /// A fresh empty directory, removed when the returned guard is dropped.
    pub(crate) fn take(&self) -> Result<ScratchDir> {
        let (ready, low) = {
            let mut state = self.inner.lock();
            (state.stock.pop(), state.stock.len() <= LOW_WATER)
        };
        if low {
            self.inner.wake.notify_one();
        }
        let path = match ready {
            Some(path) => path,
            None => self
                .inner
                .create()
                .map_err(|e| Error::io("cannot create a sandbox directory", e))?,
        };
        Ok(ScratchDir {
            path,
            owner: self.inner.clone(),
            removed: false,
        })
    }
}

impl Drop for Scratch {
    /// Waits for the thread to remove everything (a few ms), so that nothing is
    /// left behind when the process exits right after.
    fn drop(&mut self) {
        self.inner.lock().stopping = true;
        self.inner.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One scratch directory; dropping it queues its removal (and its parent's).
#[derive(Debug)]
pub(crate) struct ScratchDir {
    path: PathBuf,
    owner: Arc<Inner>,
    removed: bool,
}

impl ScratchDir {
    /// The host path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the directory now if it is empty (one syscall; on tmpfs a few µs):
    /// `true` when it was empty.
    pub(crate) fn remove_if_empty(&mut self) -> bool {
        if !self.removed {
            self.removed = std::fs::remove_dir(&self.path).is_ok();
        }
        self.removed
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // The parent goes too (with the directory, if still there).
        let mut path = std::mem::take(&mut self.path);
        path.pop();
        let mut state = self.owner.lock();
        if state.stopping {
            drop(state);
            remove(&path);
        } else {
            state.trash.push(path);
            let full = state.trash.len() >= LOW_WATER;
            drop(state);
            if full {
                self.owner.wake.notify_one();
            }
        }
    }
}

/// `$TMPDIR`, else `/dev/shm` when writable, else the system temp directory.
fn location() -> PathBuf {
    if std::env::var_os("TMPDIR").is_some() {
        return std::env::temp_dir();
    }
    let shm = Path::new("/dev/shm");
    let writable = tempfile::Builder::new()
        .prefix(".faas-probe-")
        .tempdir_in(shm)
        .is_ok();
    if writable {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Names of base directories: `faas-wasm-<pid>-<random>`.
const PREFIX: &str = "faas-wasm-";

/// Removes the base directories of processes that no longer run (killed before
/// they could clean up). A live process, even a recycled pid, keeps its own.
fn remove_stale(location: &Path) {
    if !Path::new("/proc/self").exists() {
        return; // no way to tell who is alive
    }
    let Ok(entries) = std::fs::read_dir(location) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        let dead = pid.is_some_and(|pid| !Path::new("/proc").join(pid.to_string()).exists());
        if dead {
            remove(&entry.path());
        }
    }
}

fn remove(path: &Path) {
    if std::fs::remove_dir(path).is_ok() {
        return;
    }
    if let Err(e) = std::fs::remove_dir_all(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "cannot remove a sandbox directory");
    }
}

/// Waits until there is urgent work (stock low, trash high, stopping), or until
/// the next [`SWEEP`] finds some work.
fn wait_for_work(inner: &Inner) -> MutexGuard<'_, State> {
    let mut state = inner.lock();
    loop {
        let urgent =
            state.stopping || state.trash.len() >= LOW_WATER || state.stock.len() <= LOW_WATER;
        if urgent {
            return state;
        }
        let (s, waited) = inner
            .wake
            .wait_timeout(state, SWEEP)
            .unwrap_or_else(|p| p.into_inner());
        state = s;
        if waited.timed_out() && (!state.trash.is_empty() || state.stock.len() < STOCK) {
            return state;
        }
    }
}

/// The thread: removes given-back directories, keeps the stock full, and cleans
/// up everything once the owner is gone.
fn maintain(inner: &Inner) {
    loop {
        let (trash, missing, stopping) = {
            let mut state = wait_for_work(inner);
            let missing = STOCK.saturating_sub(state.stock.len());
            (std::mem::take(&mut state.trash), missing, state.stopping)
        };
        trash.iter().for_each(|p| remove(p));
        if stopping {
            let stock = std::mem::take(&mut inner.lock().stock);
            stock.iter().for_each(|p| remove(p));
            remove(&inner.base);
            return;
        }
        for _ in 0..missing {
            match inner.create() {
                Ok(path) => inner.lock().stock.push(path),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot create a sandbox directory ahead of time");
                    std::thread::sleep(RETRY);
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_fresh_and_removed_after_use() {
        let scratch = Scratch::new().unwrap();
        let a = scratch.take().unwrap();
        let b = scratch.take().unwrap();
        assert_ne!(a.path(), b.path());
        std::fs::write(a.path().join("f"), b"x").unwrap();
        let (pa, base) = (a.path().to_path_buf(), scratch.inner.base.clone());
        drop(a);
        for _ in 0..200 {
            if !pa.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!pa.exists());
        drop(scratch);
        drop(b);
        for _ in 0..200 {
            if !base.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!base.exists());
    }
}
