//! Components of the `faas:function` world: `handle` results, the `objects`
//! import, and the fences applied to components.

mod common;

use std::time::Duration;

use common::{Harness, request, stage_objects, text};
use faas_runtime::ports::{Executor, Termination};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ok_is_stdout_and_err_is_a_guest_error() {
    let h = Harness::new();
    let f = h.deploy_fixture("fn-probe.wasm").await;
    let out = h.run(&f, "ok {\"answer\":42}").await;
    assert_eq!(out.termination, Termination::Exited(0));
    assert_eq!(text(&out.stdout), "{\"answer\":42}");
    let out = h.run(&f, "err it broke").await;
    assert_eq!(out.termination, Termination::GuestError("it broke".into()));
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prints_go_to_the_logs_and_env_is_the_requests() {
    let h = Harness::new();
    let f = h.deploy_fixture("fn-probe.wasm").await;
    let out = h.run(&f, "print to the logs").await;
    assert_eq!(text(&out.stdout), "done");
    assert_eq!(text(&out.stderr), "to the logs\nto the logs\n");
    let mut req = request(&f, "env");
    req.env.push(("DATABASE_URL".into(), "postgres://x".into()));
    let out = h.executor.execute(req).await.unwrap();
    assert_eq!(
        text(&out.stdout),
        "FAAS_FUNCTION_ID=fn-test\nDATABASE_URL=postgres://x"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_objects_import_sees_the_grants_only() {
    let h = Harness::new();
    let f = h.deploy_fixture("fn-probe.wasm").await;
    let staged = tempfile::tempdir().unwrap();
    let files = [("a.txt", "alpha"), ("b.txt", "bravo"), ("c.txt", "hidden")];
    let grants = stage_objects(staged.path(), "fid", &files, &["a.txt", "b.txt"]);
    let run = |input: &str| {
        let mut req = request(&f, input);
        req.objects = grants.clone();
        req.objects_dir = Some(staged.path().to_path_buf());
        h.executor.execute(req)
    };
    let out = run("list").await.unwrap();
    assert_eq!(
        text(&out.stdout),
        "fid/a.txt 5 text/plain\nfid/b.txt 5 text/plain"
    );
    let out = run("read fid/b.txt 100").await.unwrap();
    assert_eq!(
        (out.termination, text(&out.stdout)),
        (Termination::Exited(0), "bravo".into())
    );
    let out = run("read fid/b.txt 3").await.unwrap();
    assert_eq!(
        out.termination,
        Termination::GuestError("too-large(5)".into())
    );
    for key in ["fid/c.txt", "fid/../fid/c.txt", "other/a.txt", ""] {
        let out = run(&format!("read {key} 100")).await.unwrap();
        assert_eq!(
            out.termination,
            Termination::GuestError("not-found".into()),
            "{key}"
        );
    }
    // Without objects_dir the grants are listed but cannot be read.
    let mut req = request(&f, "read fid/a.txt 100");
    req.objects = grants.clone();
    let out = h.executor.execute(req).await.unwrap();
    assert!(matches!(out.termination, Termination::GuestError(m) if m.starts_with("unavailable")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fences_hold_for_components() {
    let h = Harness::new();
    let f = h.deploy_fixture("fn-probe.wasm").await;
    let mut req = request(&f, "loop");
    req.timeout = Duration::from_millis(300);
    assert_eq!(
        h.executor.execute(req).await.unwrap().termination,
        Termination::TimedOut
    );

    let mut req = request(&f, "big 5000");
    req.stdout_cap = 1000;
    let out = h.executor.execute(req).await.unwrap();
    assert!(
        out.stdout_overflow && out.stdout.len() == 1000,
        "{:?}",
        out.termination
    );

    let mut req = request(&f, "big 50000000");
    req.memory_limit = 16 << 20;
    let out = h.executor.execute(req).await.unwrap();
    assert_eq!(out.termination, Termination::MemoryExceeded);

    let out = h.run(&f, "file /etc/passwd").await;
    assert!(
        matches!(out.termination, Termination::GuestError(_)),
        "{out:?}"
    );
    h.assert_healthy().await;
}

/// componentize-py and jco components (~18 MB and ~12 MB, not committed): set
/// `FAAS_WASM_SAMPLES` to a directory holding `python-hello.wasm` and/or
/// `js-hello.wasm` (built by the samples' scripts) and run with `--ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs FAAS_WASM_SAMPLES (large components built by the samples)"]
async fn python_and_js_components_run_and_load_from_the_disk_cache() {
    let Some(dir) = std::env::var_os("FAAS_WASM_SAMPLES") else {
        return;
    };
    let h = Harness::new();
    for name in ["python-hello.wasm", "js-hello.wasm"] {
        let Ok(bytes) = std::fs::read(std::path::Path::new(&dir).join(name)) else {
            continue;
        };
        let started = std::time::Instant::now();
        let f = h
            .deploy(&bytes)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        eprintln!("{name}: compiled in {:?}", started.elapsed());
        let input = r#"{"direct_inputs":{"name":"Ada"}}"#;
        let out = h.run(&f, input).await;
        assert_eq!(
            out.termination,
            Termination::Exited(0),
            "{name}: {out:?} {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains("Ada"),
            "{name}: {}",
            text(&out.stdout)
        );
        let restarted = h.restart();
        let started = std::time::Instant::now();
        let out = restarted.execute(request(&f, input)).await.unwrap();
        eprintln!(
            "{name}: first execution after a restart took {:?}",
            started.elapsed()
        );
        assert_eq!(out.termination, Termination::Exited(0), "{name}");
        assert_eq!(restarted.compilations(), 0);
        let started = std::time::Instant::now();
        for _ in 0..20 {
            restarted.execute(request(&f, input)).await.unwrap();
        }
        eprintln!(
            "{name}: warm execution {:?} on average",
            started.elapsed() / 20
        );
    }
}
