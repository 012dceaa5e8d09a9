//! The function contract (CONTRACT.md §1) as a WASI preview1 command module (the C
//! probe) and as a `wasi:cli/command` component (the Rust cli-probe) see it.

mod common;

use std::time::{Duration, Instant};

use common::{Harness, request, stage_objects, text};
use faas_runtime::ports::{Executor, Termination};

const PROBES: [&str; 2] = ["probe.wasm", "cli-probe.wasm"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argv_stdin_and_env_follow_the_contract() {
    let h = Harness::new();
    for probe in PROBES {
        let f = h.deploy_fixture(probe).await;
        let input = "echo {\"a\":1}";
        let mut req = request(&f, input);
        req.env.push(("API_KEY".into(), "s3cret".into()));
        let out = h.executor.execute(req).await.unwrap();
        assert_eq!(out.termination, Termination::Exited(0), "{probe}: {out:?}");
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains("argc=2\nargv0=probe\nargv1=echo {\"a\":1}\n"),
            "{probe}: {stdout}"
        );
        assert!(
            stdout.contains(&format!("stdin_len={}\n", input.len())),
            "{probe}: {stdout}"
        );
        let env: Vec<&str> = stdout.lines().filter(|l| l.starts_with("env=")).collect();
        assert_eq!(
            env,
            ["env=FAAS_FUNCTION_ID=fn-test", "env=API_KEY=s3cret"],
            "{probe}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_over_64_kib_comes_on_stdin_only() {
    let h = Harness::new();
    for probe in PROBES {
        let f = h.deploy_fixture(probe).await;
        let input = format!("echo {}", "x".repeat(70 * 1024));
        let out = h.run(&f, &input).await;
        assert_eq!(out.termination, Termination::Exited(0), "{probe}: {out:?}");
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains("argc=1\n"),
            "{probe}: argv must not hold the input"
        );
        assert!(
            stdout.contains(&format!("stdin_len={}\n", input.len())),
            "{probe}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_are_reported() {
    let h = Harness::new();
    // wasi:cli/exit@0.2 carries ok/err only: a component's non-zero exit is 1.
    for (probe, seven) in [("probe.wasm", 7), ("cli-probe.wasm", 1)] {
        let f = h.deploy_fixture(probe).await;
        assert_eq!(
            h.run(&f, "exit 7").await.termination,
            Termination::Exited(seven),
            "{probe}"
        );
        assert_eq!(
            h.run(&f, "exit 0").await.termination,
            Termination::Exited(0),
            "{probe}"
        );
    }
    // A failure message on stderr is kept as the logs.
    let f = h.deploy_fixture("probe.wasm").await;
    let out = h.run(&f, "cat /tmp/missing").await;
    assert_eq!(out.termination, Termination::Exited(2));
    assert!(text(&out.stderr).contains("cat /tmp/missing"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_is_capped_and_overflow_reported() {
    let h = Harness::new();
    let f = h.deploy_fixture("probe.wasm").await;
    let mut req = request(&f, "spam 1000");
    req.stdout_cap = 100;
    let out = h.executor.execute(req).await.unwrap();
    assert!(out.stdout_overflow, "{out:?}");
    assert_eq!(out.stdout.len(), 100);
    assert!(
        matches!(&out.termination, Termination::Trap(m) if m.contains("stdout limit")),
        "{out:?}"
    );

    let mut req = request(&f, "spam 100");
    req.stdout_cap = 100;
    let out = h.executor.execute(req).await.unwrap();
    assert_eq!(out.termination, Termination::Exited(0));
    assert!(!out.stdout_overflow);

    let mut req = request(&f, "cat /nope");
    req.stderr_cap = 5;
    let out = h.executor.execute(req).await.unwrap();
    assert!(out.stderr_overflow && out.stderr.len() == 5, "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granted_objects_are_readable_read_only_under_objects() {
    let h = Harness::new();
    let staged = tempfile::tempdir().unwrap();
    let grants = stage_objects(
        staged.path(),
        "fid",
        &[("doc.txt", "the document")],
        &["doc.txt"],
    );
    for probe in PROBES {
        let f = h.deploy_fixture(probe).await;
        let mut req = request(&f, "cat /objects/fid/doc.txt");
        req.objects = grants.clone();
        req.objects_dir = Some(staged.path().to_path_buf());
        let out = h.executor.execute(req).await.unwrap();
        assert_eq!(out.termination, Termination::Exited(0), "{probe}: {out:?}");
        assert_eq!(text(&out.stdout), "the document", "{probe}");
    }
    let f = h.deploy_fixture("probe.wasm").await;
    let mut req = request(&f, "write /objects/fid/doc.txt 3");
    req.objects = grants;
    req.objects_dir = Some(staged.path().to_path_buf());
    let out = h.executor.execute(req).await.unwrap();
    assert_eq!(
        out.termination,
        Termination::Exited(3),
        "/objects must be read-only: {out:?}"
    );
    let content = std::fs::read_to_string(staged.path().join("fid/doc.txt")).unwrap();
    assert_eq!(content, "the document");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tmp_is_private_writable_and_removed_afterwards() {
    let h = Harness::new();
    let f = h.deploy_fixture("probe.wasm").await;
    let marker = format!("marker-{}", std::process::id());
    let out = h.run(&f, &format!("write /tmp/{marker} 1000")).await;
    assert_eq!(out.termination, Termination::Exited(0), "{out:?}");
    assert_eq!(text(&out.stdout), "wrote 1000\n");
    // The next execution has a fresh /tmp.
    let out = h.run(&f, &format!("cat /tmp/{marker}")).await;
    assert_eq!(out.termination, Termination::Exited(2), "{out:?}");
    // And the host directory is gone (removed in the background, within ~100 ms).
    let leftovers = || -> Vec<_> {
        let roots = [std::env::temp_dir(), "/dev/shm".into()];
        roots
            .iter()
            .flat_map(|root| walk_for(root, &marker))
            .collect()
    };
    for _ in 0..100 {
        if leftovers().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(leftovers().is_empty(), "{:?}", leftovers());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tmp_over_its_cap_stops_the_guest() {
    let h = Harness::new(); // tmp cap: 1 MiB
    let f = h.deploy_fixture("probe.wasm").await;
    let out = h.run(&f, "write /tmp/big 2000000").await;
    assert!(
        matches!(&out.termination, Termination::Trap(m) if m.contains("tmp limit")),
        "{out:?}"
    );
    let out = h.run(&f, "write /tmp/small 500000").await;
    assert_eq!(out.termination, Termination::Exited(0), "{out:?}");
    h.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_blocked_in_a_host_call_times_out() {
    let h = Harness::new();
    let f = h.deploy_fixture("probe.wasm").await;
    let mut req = request(&f, "sleep 60");
    req.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let out = h.executor.execute(req).await.unwrap();
    assert_eq!(out.termination, Termination::TimedOut, "{out:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    h.assert_healthy().await;
}

/// Paths named `name` in the executors' scratch directories under `root`
/// (`<root>/faas-wasm-*/...`, a few levels deep).
fn walk_for(root: &std::path::Path, name: &str) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, name: &str, depth: u32, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_name() == name {
                found.push(path);
            } else if depth > 0 && path.is_dir() {
                walk(&path, name, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("faas-wasm-")
        {
            walk(&entry.path(), name, 3, &mut found);
        }
    }
    found
}
