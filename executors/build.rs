//! Builds `faas-agent` (`agent/main.rs`), the entrypoint of warm function containers,
//! as a static binary (it runs in images without a libc, e.g. `FROM scratch`): the
//! same `rustc` compiles it, with glibc linked statically (`libc6-dev`'s `libc.a`).
//! The Docker executor embeds the result (`include_bytes!`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = "agent/main.rs";
    println!("cargo:rerun-if-changed={source}");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let binary = out.join("faas-agent");
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "--crate-name",
            "faas_agent",
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "target-feature=+crt-static",
            "-C",
            "strip=symbols",
            "-o",
        ])
        .arg(&binary)
        .arg(source)
        .status()
        .expect("run rustc to build faas-agent");
    assert!(
        status.success(),
        "building faas-agent (a static binary: needs libc6-dev's libc.a) failed"
    );
}
