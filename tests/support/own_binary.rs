//! This test crate's own `faas` binary. `CARGO_BIN_EXE_faas` is a path in a target
//! directory that other checkouts may share: a build there replaces the file while our
//! tests run. So the file is hard-linked (instantly, same filesystem) into
//! CARGO_TARGET_TMPDIR once per test binary, and checked to be the one these tests
//! were built with. Include with `#[path = "support/own_binary.rs"] mod own_binary;`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The pinned binary; `marker` is a text its `--help` must show (a subcommand these
/// tests need), checked when it is pinned.
pub fn faas(marker: &str) -> PathBuf {
    static PINNED: OnceLock<PathBuf> = OnceLock::new();
    PINNED.get_or_init(|| pin(marker)).clone()
}

fn pin(marker: &str) -> PathBuf {
    let original = PathBuf::from(env!("CARGO_BIN_EXE_faas"));
    let name = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "tests".into());
    let pinned = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("faas-of-{name}"));
    // The uplifted file first; when another checkout's build replaced it, the binaries
    // cargo keeps per checkout in deps/ (`faas-<hash>`), newest first.
    let mut candidates = vec![original.clone()];
    candidates.extend(deps_binaries(&original));
    for candidate in candidates {
        let _ = std::fs::remove_file(&pinned);
        let linked = std::fs::hard_link(&candidate, &pinned)
            .or_else(|_| std::fs::copy(&candidate, &pinned).map(|_| ()));
        if linked.is_ok() && shows(&pinned, marker) {
            return pinned;
        }
    }
    panic!(
        "no faas binary of this checkout (one whose --help shows {marker:?}) in {}: \
         another build replaced it; rerun",
        original.display()
    );
}

fn shows(binary: &std::path::Path, marker: &str) -> bool {
    Command::new(binary)
        .arg("--help")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(marker))
}

fn deps_binaries(original: &std::path::Path) -> Vec<PathBuf> {
    let Some(deps) = original.parent().map(|d| d.join("deps")) else {
        return Vec::new();
    };
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(deps)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            n.starts_with("faas-") && !n.contains('.')
        })
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .collect();
    found.sort_by_key(|e| std::cmp::Reverse(e.0));
    found.into_iter().map(|(_, p)| p).collect()
}
