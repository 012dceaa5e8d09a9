//! The web console (issue 10) in real headless Chromium, driven by playwright-core
//! (`tests/console/console.test.mjs`; `make test-deps` installs Debian's chromium and
//! the npm package): a wrong password shows the API's message; log in, deploy a wasm
//! sample, invoke it, see `completed` and the result, list it under executions, with
//! no request to another host. The screenshot is kept under the target directory.

#[path = "support/harness.rs"]
mod harness;

use std::process::Command;

use harness::{TestApp, root};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_logs_in_deploys_and_invokes_in_a_real_browser() {
    let app = TestApp::start(&[]).await;
    app.api.user("console-user").await;

    // Served from the binary with a policy that forbids inline script.
    let res = reqwest::get(app.api.url("/")).await.unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    let html = res.text().await.unwrap();
    assert_eq!(html.matches("<script").count(), 1, "one script, by URL");
    for id in [
        "login-username",
        "login-password",
        "login-submit",
        "deploy-name",
        "deploy-file",
        "deploy-submit",
        "invoke-input",
        "invoke-submit",
        "execution-status",
        "execution-result",
    ] {
        assert!(
            html.contains(&format!("data-testid=\"{id}\"")),
            "{id} missing"
        );
    }

    let dir = root().join("tests/console");
    let screenshot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console.png");
    let _ = std::fs::remove_file(&screenshot);
    let base = app.api.base.clone();
    let wasm = root().join("samples/wasm/c-hello.wasm");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .current_dir(&dir)
            .arg("console.test.mjs")
            .args([&base, "console-user", "password123"])
            .arg(&wasm)
            .arg(&screenshot)
            .output()
            .expect("node (make test-deps installs the console test's packages)")
    })
    .await
    .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{log}");
    assert!(out.status.success(), "the browser test failed:\n{log}");
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console.png");
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "no screenshot at {}", shot.display());
    eprintln!("screenshot kept at {}", shot.display());
    app.stop().await;
}
