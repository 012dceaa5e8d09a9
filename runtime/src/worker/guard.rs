//! [`AttemptGuard`]: the one owner of what an attempt leaves outside its record --
//! the capability grant and the staging directory. It is created as the attempt is
//! claimed, learns each resource *before* the resource is written (so a write that
//! fails halfway is still covered), and removes both when released; if the attempt
//! is dropped instead (panic, abort), `Drop` removes them. Start-up sweeps
//! ([`sweep_staging`], [`crate::store::Store::sweep_grants`]) cover a process that
//! died with a guard alive.

use std::path::{Path, PathBuf};

use crate::store::Store;

/// Removes an attempt's grant and staging directory on every path.
pub(super) struct AttemptGuard {
    store: Store,
    grant: Option<String>,
    staging: Option<PathBuf>,
}

impl AttemptGuard {
    /// A guard that owns nothing yet.
    pub(super) fn new(store: Store) -> Self {
        AttemptGuard {
            store,
            grant: None,
            staging: None,
        }
    }

    /// Takes ownership of the grant stored under `key` (call before writing it).
    pub(super) fn own_grant(&mut self, key: String) {
        self.grant = Some(key);
    }

    /// Takes ownership of the staging directory `dir` (call before creating it).
    pub(super) fn own_staging(&mut self, dir: PathBuf) {
        self.staging = Some(dir);
    }

    /// Removes the staging directory and the grant now.
    pub(super) async fn release(mut self) {
        if let Some(dir) = self.staging.take() {
            remove_dir(&dir).await;
        }
        if let Some(key) = self.grant.take()
            && let Err(e) = self.store.delete_grant(&key).await
        {
            tracing::warn!(error = %e, "cannot remove a capability grant (it expires on its own)");
        }
    }
}

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.staging.take()
            && let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a staging directory");
        }
        let Some(key) = self.grant.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let store = self.store.clone();
                rt.spawn(async move {
                    let _ = store.delete_grant(&key).await;
                });
            }
            Err(_) => tracing::warn!("a capability grant outlives its attempt until it expires"),
        }
    }
}

async fn remove_dir(dir: &Path) {
    match tokio::fs::remove_dir_all(dir).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a staging directory")
        }
    }
}

/// Removes what dead processes left in `root` (the staging directory of a
/// worker): every entry when `keep` is `None`, else every entry whose name (a
/// worker id) `keep` rejects. Returns how many.
pub fn sweep_staging(root: &Path, keep: Option<&dyn Fn(&str) -> bool>) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if keep.is_some_and(|keep| keep(&name)) {
            continue;
        }
        let path = entry.path();
        let gone = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        match gone {
            Ok(()) => removed += 1,
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot sweep staging"),
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::embedded::{Db, EmbeddedKv};
    use crate::store::Grant;

    fn store(dir: &Path) -> Store {
        Store::new(Arc::new(EmbeddedKv::new(Db::open(dir).unwrap())))
    }

    fn grant() -> Grant {
        Grant {
            execution_id: "e".into(),
            owner_id: "u".into(),
            keys: vec!["f/x".into()],
            expires_at: i64::MAX,
        }
    }

    #[tokio::test]
    async fn a_dropped_attempt_leaves_no_grant_and_no_staging() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let staging = dir.path().join("staging/w/e-1");
        std::fs::create_dir_all(staging.join("f")).unwrap();
        std::fs::write(staging.join("f/x"), b"x").unwrap();
        store.put_grant("k", &grant()).await.unwrap();
        let mut guard = AttemptGuard::new(store.clone());
        guard.own_staging(staging.clone());
        guard.own_grant("k".into());
        drop(guard); // as when the attempt's task is aborted
        assert!(!staging.exists());
        for _ in 0..100 {
            if store.get_grant("k").await.unwrap().is_none() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the grant outlived its dropped attempt");
    }

    #[tokio::test]
    async fn release_removes_what_was_owned_even_if_never_created() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        store.put_grant("k", &grant()).await.unwrap();
        let mut guard = AttemptGuard::new(store.clone());
        guard.own_staging(dir.path().join("never-made"));
        guard.own_grant("k".into());
        guard.release().await;
        assert!(store.get_grant("k").await.unwrap().is_none());
    }

    #[test]
    fn the_sweep_keeps_what_live_workers_own() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["live", "dead"] {
            std::fs::create_dir_all(dir.path().join(name).join("e-1")).unwrap();
        }
        std::fs::write(dir.path().join("stray-file"), b"x").unwrap();
        let keep = |name: &str| name == "live";
        assert_eq!(sweep_staging(dir.path(), Some(&keep)), 2);
        assert!(dir.path().join("live/e-1").exists());
        assert_eq!(sweep_staging(dir.path(), None), 1);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(sweep_staging(&dir.path().join("absent"), None), 0);
    }
}
