//! The fences: each hostile guest ends with the right termination, and the
//! executor runs a normal hello fine afterwards (the host stays healthy).

mod common;

use std::time::{Duration, Instant};

use common::{Harness, fixture, request, stage_objects, text};
use faas_runtime::Error;
use faas_runtime::ports::{Executor, Termination};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_times_out() {
    let h = Harness::new();
    let f = h.deploy_fixture("loop.wat").await;
    let mut req = request(&f, "{}");
    req.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let out = h.executor.execute(req).await.unwrap();
    assert_eq!(out.termination, Termination::TimedOut);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    h.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_grow_loop_exceeds_memory() {
    let h = Harness::new();
    let f = h.deploy_fixture("grow.wat").await;
    let mut req = request(&f, "{}");
    req.memory_limit = 16 << 20;
    let out = h.executor.execute(req).await.unwrap();
    assert_eq!(out.termination, Termination::MemoryExceeded, "{out:?}");
    h.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malloc_until_failure_exceeds_memory() {
    let h = Harness::new();
    let f = h.deploy_fixture("probe.wasm").await;
    let mut req = request(&f, "malloc");
    req.memory_limit = 32 << 20;
    let out = h.executor.execute(req).await.unwrap();
    assert_eq!(out.termination, Termination::MemoryExceeded, "{out:?}");
    assert!(text(&out.stderr).contains("malloc failed after"), "{out:?}");
    h.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_with_two_memories_is_refused() {
    let h = Harness::new();
    let err = h.deploy(&fixture("two_memories.wat")).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(m) if m.contains("memor")),
        "{err}"
    );
    h.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_bytes_are_refused_with_the_reason() {
    let h = Harness::new();
    for bytes in [
        &b"not wasm at all"[..],
        b"\0asm\x01\0\0\0\x01\xff",
        b"(module)",
    ] {
        let err = h.deploy(bytes).await.unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err}");
    }
    // A module that is not a command, and one importing what the host lacks.
    let reactor = wat::parse_str("(module (func (export \"run\")))").unwrap();
    let err = h.deploy(&reactor).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(m) if m.contains("_start")),
        "{err}"
    );
    let env = wat::parse_str("(module (import \"env\" \"f\" (func)) (func (export \"_start\")))")
        .unwrap();
    let err = h.deploy(&env).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(m) if m.contains("env")),
        "{err}"
    );
    h.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_recursion_is_a_trap() {
    let h = Harness::new();
    let f = h.deploy_fixture("recurse.wat").await;
    let out = h.run(&f, "{}").await;
    assert!(
        matches!(&out.termination, Termination::Trap(m) if m.contains("stack")),
        "{out:?}"
    );
    h.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_megabytes_of_stdout_stop_at_the_cap() {
    let h = Harness::new();
    let f = h.deploy_fixture("probe.wasm").await;
    let started = Instant::now();
    let out = h.run(&f, "spam 100000000").await;
    assert!(out.stdout_overflow, "{:?}", out.termination);
    assert_eq!(out.stdout.len(), 1 << 20);
    assert!(matches!(&out.termination, Termination::Trap(m) if m.contains("stdout limit")));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    h.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_files_are_out_of_reach() {
    let h = Harness::new();
    for probe in ["probe.wasm", "cli-probe.wasm"] {
        let f = h.deploy_fixture(probe).await;
        for path in [
            "/etc/passwd",
            "/tmp/../etc/passwd",
            "/objects/../etc/passwd",
            "../etc/passwd",
        ] {
            let out = h.run(&f, &format!("cat {path}")).await;
            assert!(
                matches!(out.termination, Termination::Exited(c) if c != 0),
                "{probe} {path}: {out:?}"
            );
            assert!(!text(&out.stdout).contains("root:"), "{probe} {path}");
        }
    }
    h.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_and_name_lookup_are_denied() {
    let h = Harness::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_nonblocking(true).unwrap();

    // A preview2 component using wasi:sockets (Rust std::net on wasm32-wasip2).
    let f = h.deploy_fixture("cli-probe.wasm").await;
    let out = h.run(&f, &format!("connect {addr}")).await;
    assert!(text(&out.stdout).starts_with("connect failed"), "{out:?}");
    let out = h.run(&f, "resolve localhost").await;
    assert!(text(&out.stdout).starts_with("resolve failed"), "{out:?}");
    let out = h
        .run(&f, &format!("udp {}", udp.local_addr().unwrap()))
        .await;
    assert!(text(&out.stdout).starts_with("udp failed"), "{out:?}");
    assert!(
        listener.accept().is_err(),
        "a guest reached the host's TCP listener"
    );
    assert!(
        udp.recv(&mut [0; 16]).is_err(),
        "a guest reached the host's UDP socket"
    );

    // preview1 has no socket creation; its sock_* calls on fds 3 and 0 fail.
    let f = h.deploy_fixture("sock_p1.wat").await;
    let out = h.run(&f, "{}").await;
    assert!(
        matches!(out.termination, Termination::Exited(code) if code != 0),
        "{out:?}"
    );
    h.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_the_input_did_not_name_is_unreadable() {
    let h = Harness::new();
    let staged = tempfile::tempdir().unwrap();
    let files = [("named.txt", "yes"), ("other.txt", "secret")];
    let grants = stage_objects(staged.path(), "fid", &files, &["named.txt"]);
    for (probe, command) in [
        ("probe.wasm", "cat"),
        ("cli-probe.wasm", "cat"),
        ("fn-probe.wasm", "file"),
    ] {
        let f = h.deploy_fixture(probe).await;
        for (name, readable) in [("named.txt", true), ("other.txt", false)] {
            let mut req = request(&f, &format!("{command} /objects/fid/{name}"));
            req.objects = grants.clone();
            req.objects_dir = Some(staged.path().to_path_buf());
            let out = h.executor.execute(req).await.unwrap();
            assert_eq!(
                text(&out.stdout).contains("yes"),
                readable,
                "{probe} {name}: {out:?}"
            );
            assert!(!text(&out.stdout).contains("secret"), "{probe} {name}");
        }
    }
    // Through the WIT `objects` import as well.
    let f = h.deploy_fixture("fn-probe.wasm").await;
    let mut req = request(&f, "read fid/other.txt 100");
    req.objects = grants;
    req.objects_dir = Some(staged.path().to_path_buf());
    let out = h.executor.execute(req).await.unwrap();
    assert_eq!(out.termination, Termination::GuestError("not-found".into()));
    h.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_executions_share_the_pool() {
    let h = std::sync::Arc::new(Harness::new());
    let f = h.deploy_fixture("probe.wasm").await;
    // As many at once as the pool has slots (the worker never runs more).
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(8));
    let runs = (0..32).map(|i| {
        let (h, f, slots) = (h.clone(), f.clone(), slots.clone());
        tokio::spawn(async move {
            let _slot = slots.acquire_owned().await.unwrap();
            (i, h.run(&f, &format!("exit {}", i % 4)).await)
        })
    });
    for run in futures::future::join_all(runs).await {
        let (i, out) = run.unwrap();
        assert_eq!(out.termination, Termination::Exited(i % 4));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_limits_refuse_oversized_modules_at_deploy() {
    let h = Harness::new(); // pool slots of 256 MiB
    let oversized = [
        (
            "three tables",
            "(module (table 1 funcref) (table 1 funcref) (table 1 funcref) (func (export \"_start\")))",
        ),
        (
            "a huge table",
            "(module (table 1000000 funcref) (func (export \"_start\")))",
        ),
        (
            "300 MiB of memory",
            "(module (memory 4800) (func (export \"_start\")))",
        ),
    ];
    for (what, text) in oversized {
        let err = h.deploy(&wat::parse_str(text).unwrap()).await.unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{what}: {err}");
    }
    // Within the pool but over this execution's limit: refused when instantiated.
    let f = h
        .deploy(&wat::parse_str("(module (memory 1600) (func (export \"_start\")))").unwrap())
        .await
        .unwrap();
    assert_eq!(
        h.run(&f, "{}").await.termination,
        Termination::MemoryExceeded
    ); // 100 MiB > 64 MiB
    h.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_execution_starts_from_a_fresh_instance() {
    let h = Harness::new();
    // Increments a counter in linear memory and exits with it.
    let counter = r#"(module
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (global $g (mut i32) (i32.const 0))
        (func (export "_start")
            (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
            (global.set $g (i32.add (global.get $g) (i32.load (i32.const 0))))
            (call $exit (global.get $g))))"#;
    let f = h.deploy(&wat::parse_str(counter).unwrap()).await.unwrap();
    for _ in 0..3 {
        assert_eq!(h.run(&f, "{}").await.termination, Termination::Exited(1));
    }
    // Memory is reset only where it was written (PAGEMAP_SCAN): a page of the data
    // segment's image comes back as the image, a page before or after it and a page
    // the guest grew come back as zeros. Each run reads them, then writes them:
    // exit 2 (the image's byte) every time, never what a run before wrote.
    let pages = r#"(module
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 2)
        (data (i32.const 16) "\01")
        (func $bump (param $at i32) (param $weight i32) (result i32)
            (local $v i32)
            (local.set $v (i32.load8_u (local.get $at)))
            (i32.store8 (local.get $at) (i32.add (local.get $v) (i32.const 7)))
            (i32.mul (local.get $v) (local.get $weight)))
        (func (export "_start")
            (drop (memory.grow (i32.const 3)))
            (call $exit
                (i32.add
                    (i32.add (call $bump (i32.const 0) (i32.const 1))
                             (call $bump (i32.const 16) (i32.const 2)))
                    (i32.add (call $bump (i32.const 70000) (i32.const 4))
                             (call $bump (i32.const 200000) (i32.const 8)))))))"#;
    let f = h.deploy(&wat::parse_str(pages).unwrap()).await.unwrap();
    for _ in 0..5 {
        assert_eq!(h.run(&f, "{}").await.termination, Termination::Exited(2));
    }
}
