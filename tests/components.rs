//! The typed `faas:function` components (Rust, Python, JavaScript) through
//! `faas serve`, and the compiled-artifact cache across a restart: the large
//! Python and JS components compile once, at deploy.

#[path = "support/harness.rs"]
mod harness;

use std::time::Instant;

use harness::{TestApp, config, root, sample};
use serde_json::json;

fn built(name: &str) -> Vec<u8> {
    let path = root().join("samples/build").join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run `samples/build.sh large`; `make test` does)",
            path.display()
        )
    })
}

#[tokio::test]
async fn rust_python_and_js_components_run_and_survive_a_restart_without_recompiling() {
    let mut app = TestApp::start(&[]).await;
    let api = &app.api;
    let (t, _) = api.user("ada").await;
    let mut ids = Vec::new();
    for (name, module, lang) in [
        (
            "rust-component",
            sample("rust-hello-component.wasm"),
            "rust",
        ),
        ("python-hello", built("python-hello.wasm"), "python"),
        ("js-hello", built("js-hello.wasm"), "js"),
    ] {
        let t0 = Instant::now();
        let f = api.deploy(&t, name, module, &[]).await.expect(201);
        println!("deploy (validate + compile) {name}: {:?}", t0.elapsed());
        let id = f["id"].as_str().unwrap().to_string();
        let t0 = Instant::now();
        let run = api
            .run(&t, &id, json!({"direct_inputs": {"name": "Ada"}}))
            .await;
        println!("first execution of {name}: {:?}", t0.elapsed());
        assert_eq!(run["status"], "completed", "{run}");
        assert_eq!(run["result"], json!({"hello": "Ada", "lang": lang}));
        ids.push((id, lang));
    }
    let cache = compiled(app.data.path());
    assert!(
        cache.len() >= 3,
        "compiled artifacts are on disk: {cache:?}"
    );
    app.platform.take().unwrap().stop().await;
    let again = faas::platform::Platform::start(config(app.data.path(), &[]))
        .await
        .expect("restart");
    let api = harness::Api::new(&format!("http://{}", again.addr.unwrap()));
    let t = api.login("ada", "password123").await;
    for (id, lang) in &ids {
        let t0 = Instant::now();
        let run = api
            .run(&t, id, json!({"direct_inputs": {"name": "Bo"}}))
            .await;
        let took = t0.elapsed();
        println!("first execution of the {lang} component after a restart: {took:?}");
        assert_eq!(run["result"], json!({"hello": "Bo", "lang": lang}), "{run}");
    }
    assert_eq!(
        compiled(app.data.path()),
        cache,
        "after a restart nothing was compiled again"
    );
    again.stop().await;
}

/// The compiled artifacts on disk with their modification times.
fn compiled(data: &std::path::Path) -> Vec<(String, std::time::SystemTime)> {
    let mut out: Vec<_> = std::fs::read_dir(data.join("compiled"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".cwasm"))
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        e.metadata().unwrap().modified().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}
