//! Compilation happens once: at deploy time, then from the disk cache after a
//! restart, and from the object store when the disk cache lacks the module.

mod common;

use bytes::Bytes;
use common::{Harness, fixture, function_for, request, text};
use faas_runtime::Error;
use faas_runtime::ports::{Executor, Termination};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_compiles_once_and_execute_reuses_it() {
    let h = Harness::new();
    let f = h.deploy_fixture("probe.wasm").await;
    assert_eq!(h.executor.compilations(), 1);
    for _ in 0..3 {
        assert_eq!(
            h.run(&f, "exit 0").await.termination,
            Termination::Exited(0)
        );
    }
    // Preparing the same module again (another function, same bytes) is free.
    h.executor
        .prepare(&f, Some(Bytes::from(fixture("probe.wasm"))))
        .await
        .unwrap();
    assert_eq!(h.executor.compilations(), 1);
    assert_eq!(h.store.gets.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_the_first_execution_does_not_recompile() {
    let h = Harness::new();
    let module = h.deploy_fixture("probe.wasm").await;
    let component = h.deploy_fixture("fn-probe.wasm").await;
    assert_eq!(h.executor.compilations(), 2);
    let restarted = h.restart();
    let out = restarted.execute(request(&module, "exit 3")).await.unwrap();
    assert_eq!(out.termination, Termination::Exited(3));
    let out = restarted
        .execute(request(&component, "ok warm"))
        .await
        .unwrap();
    assert_eq!(text(&out.stdout), "warm");
    assert_eq!(restarted.compilations(), 0);
    assert_eq!(h.store.gets.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_disk_artifact_execute_fetches_and_compiles() {
    let h = Harness::new();
    let f = h.deploy_fixture("probe.wasm").await;
    for entry in std::fs::read_dir(h.cache.path()).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let restarted = h.restart();
    assert_eq!(
        restarted
            .execute(request(&f, "exit 4"))
            .await
            .unwrap()
            .termination,
        Termination::Exited(4)
    );
    assert_eq!(restarted.compilations(), 1);
    assert_eq!(h.store.gets.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_disk_artifact_is_replaced() {
    let h = Harness::new();
    let f = h.deploy_fixture("hello.wat").await;
    for entry in std::fs::read_dir(h.cache.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let restarted = h.restart();
    let out = restarted.execute(request(&f, "{}")).await.unwrap();
    assert_eq!(text(&out.stdout), "hello\n");
    assert_eq!(restarted.compilations(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_module_or_a_wrong_digest_is_an_error() {
    let h = Harness::new();
    let hello = fixture("hello.wat");
    let f = function_for(&hello);
    let err = h.executor.execute(request(&f, "{}")).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    let mut wrong = f.clone();
    wrong.module_sha256 = Some("0".repeat(64));
    let err = h
        .executor
        .prepare(&wrong, Some(Bytes::from(hello)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    wrong.module_sha256 = Some("../../etc/passwd".into());
    let err = h.executor.execute(request(&wrong, "{}")).await.unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_drops_memory_and_disk() {
    let h = Harness::new();
    let f = h.deploy_fixture("hello.wat").await;
    h.executor.forget(&f).await;
    assert_eq!(std::fs::read_dir(h.cache.path()).unwrap().count(), 0);
    // Still runnable from the object store.
    assert_eq!(text(&h.run(&f, "{}").await.stdout), "hello\n");
    assert_eq!(h.executor.compilations(), 2);
}
