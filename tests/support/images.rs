//! Container images of the tests, built locally FROM scratch (no registry is
//! reachable): the sample `samples/docker/static-fn`, and busybox running a script.
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
