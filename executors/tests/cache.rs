//! Compilation happens once: at deploy time, then from the disk cache after a
//! restart, and from the object store when the disk cache lacks the module.

mod common;

use bytes::Bytes;
use common::{Harness, fixture, function_for, request, text, wasm_digest};
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
    wrong.runnable = wasm_digest("0".repeat(64));
    let err = h
        .executor
        .prepare(&wrong, Some(Bytes::from(hello)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    wrong.runnable = wasm_digest("../../etc/passwd".into());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_cache_is_bounded_in_bytes_and_reloads_from_disk() {
    // A budget below any module: each load evicts the others.
    let h = common::Harness::with(|c| c.cache_bytes = 1);
    let hello = h.deploy_fixture("hello.wat").await;
    let probe = h.deploy_fixture("probe.wasm").await;
    let component = h.deploy_fixture("fn-probe.wasm").await;
    let (bytes, count) = h.executor.memory_usage();
    assert_eq!(count, 1, "only the last module stays in memory");
    assert!(bytes > 0);
    // The evicted ones come back from disk: no compilation, no fetch.
    assert_eq!(text(&h.run(&hello, "{}").await.stdout), "hello\n");
    assert_eq!(
        h.run(&probe, "exit 5").await.termination,
        Termination::Exited(5)
    );
    assert_eq!(text(&h.run(&component, "ok again").await.stdout), "again");
    assert_eq!(h.executor.memory_usage().1, 1);
    assert_eq!(h.executor.compilations(), 3);
    assert_eq!(h.store.gets.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_budget_keeps_every_module_in_memory() {
    let h = Harness::new();
    h.deploy_fixture("hello.wat").await;
    h.deploy_fixture("probe.wasm").await;
    assert_eq!(h.executor.memory_usage().1, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compilations_beyond_the_bound_are_refused_not_queued_forever() {
    let h = common::Harness::with(|c| {
        c.max_compiles = 1;
        c.compile_wait = std::time::Duration::ZERO;
    });
    let first = async { h.deploy(&fixture("cli-probe.wasm")).await };
    let second = async {
        // Wait until the first compilation holds the only slot.
        while h.executor.compilations() == 0 {
            tokio::task::yield_now().await;
        }
        h.deploy(&fixture("fn-probe.wasm")).await
    };
    let (first, second) = tokio::join!(first, second);
    first.expect("the first compilation runs");
    let err = second.expect_err("no slot: refused");
    assert!(matches!(err, Error::Overloaded(_)), "{err}");
    assert_eq!(h.executor.compilations(), 1);
    // With the slot free again, the same deploy succeeds.
    h.deploy_fixture("fn-probe.wasm").await;
    assert_eq!(h.executor.compilations(), 2);
}
