//! The schema fuzzer in the test suite: `scripts/schemathesis.sh` runs schemathesis
//! (all checks, every phase) against the OpenAPI document of the real `faas serve`
//! binary and fails on any failure: a 5xx, a response the document does not
//! describe, a request valid by the document refused or an invalid one accepted.
//! Needs `schemathesis` on PATH (scripts/test-deps.sh installs the pinned version).

use std::process::Command;

#[test]
fn schemathesis_finds_no_failure_in_any_operation() {
    let root = env!("CARGO_MANIFEST_DIR");
    let installed = Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        installed,
        "schemathesis is not installed: run scripts/test-deps.sh (pip install schemathesis)"
    );
    let status = Command::new(format!("{root}/scripts/schemathesis.sh"))
        .arg(env!("CARGO_BIN_EXE_faas"))
        .current_dir(root)
        .status()
        .expect("scripts/schemathesis.sh runs");
    assert!(
        status.success(),
        "schemathesis found failures (see its report above): {status}"
    );
}
