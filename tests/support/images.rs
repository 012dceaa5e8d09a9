//! Container images of the tests, built locally (no registry is reachable): the samples
//! `samples/docker/static-fn` (FROM scratch) and `samples/docker/python-fn` (on the
//! Debian base image of `scripts/python-base-image.sh`), and busybox running a script.
#![allow(dead_code)]

use std::process::Command;

use super::harness::root;

/// The tag of the static-fn sample image.
pub const STATIC_FN: &str = "faas-sample-static-fn:test";

/// Builds the static-fn binary and its image (both cached by their tools); returns the tag.
pub fn static_fn_image() -> &'static str {
    let dir = root().join("samples/docker/static-fn");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--target", "x86_64-unknown-linux-gnu"])
        .current_dir(&dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "static-fn builds");
    docker_build(&dir, STATIC_FN);
    STATIC_FN
}

/// The tag of the python-fn sample image.
pub const PYTHON_FN: &str = "faas-sample-python-fn:test";

/// Builds the Python base image once (debootstrap, a few minutes the first time on a
/// machine; the script caches it and locks out parallel builds), then the python-fn
/// sample on it; returns the tag.
pub fn python_fn_image() -> &'static str {
    let started = std::time::Instant::now();
    let out = Command::new(root().join("scripts/python-base-image.sh"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("scripts/python-base-image.sh runs");
    assert!(out.status.success(), "the Python base image builds");
    let base = String::from_utf8_lossy(&out.stdout).trim().to_string();
    println!("python base image {base} ready in {:?}", started.elapsed());
    docker_build(&root().join("samples/docker/python-fn"), PYTHON_FN);
    PYTHON_FN
}

/// Builds `tag`: busybox running `script` with `sh -c` (the input, after the
/// entrypoint in argv, is left unused).
pub fn busybox_image(tag: &str, script: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/busybox", dir.path().join("busybox"))
        .expect("busybox-static (make test-deps)");
    let dockerfile = format!(
        "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\", \"sh\", \"-c\", \"{script}\", \"fn\"]\n"
    );
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    docker_build(dir.path(), tag);
}

fn docker_build(dir: &std::path::Path, tag: &str) {
    let status = Command::new("docker")
        .args(["build", "-q", "-t", tag, "."])
        .current_dir(dir)
        .status()
        .expect("docker CLI");
    assert!(
        status.success(),
        "docker build of {tag} (is dockerd running? `make test` starts it)"
    );
}
