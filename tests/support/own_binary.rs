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
    let original = env!("CARGO_BIN_EXE_faas");
    let name = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "tests".into());
    let pinned = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("faas-of-{name}"));
    let _ = std::fs::remove_file(&pinned);
    std::fs::hard_link(original, &pinned)
        .or_else(|_| std::fs::copy(original, &pinned).map(|_| ()))
        .expect("pin the faas binary");
    let help = Command::new(&pinned)
        .arg("--help")
        .output()
        .expect("run faas --help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains(marker),
        "{original} is not this checkout's faas (another build replaced it; rerun):\n{help}"
    );
    pinned
}
