//! End to end: the autoscaler scales real worker containers on the local Docker engine.
//!
//! No registry is needed: `deployments/local-images.sh` builds `faas-local` (this test's
//! `faas` binary + the shared libraries `ldd` lists, FROM scratch) and `nats-local` (the
//! static `nats-server` from PATH), tagged by content hash so unchanged images are reused.
//!
//! The test starts, on a fresh user-defined network, a `nats-local` container (port 4222
//! published on 127.0.0.1) and one `faas-local worker` container labelled
//! `faas.role=worker`. It then runs the autoscaler's loop in process
//! ([`faas_runtime::autoscaler::run`]) with the real [`DockerScaler`] and a NATS queue on
//! the container's published port: MIN_WORKERS=1, MAX_WORKERS=3, CHECK_INTERVAL=1s,
//! COOLDOWN_PERIOD=2s. With a backlog of 50 messages the pool grows to 3 containers
//! (clones of the first, which must come up as working `faas worker`s on NATS); once the
//! backlog is drained it shrinks back to 1, the clones removed and the original kept.
//!
//! The backlog lives on a test stream (`AUTOSCALE_TEST`) the workers do not consume: on
//! the real `EXECUTIONS` stream the worker would drop these record-less messages within
//! milliseconds, before the autoscaler looks. What is under test is the decision loop,
//! `DockerScaler` (list, clone, SIGTERM + remove) and the worker containers themselves.
//!
//! The scaler watches a label unique to this run's workers (`faas.test-worker=<id>`,
//! carried next to `faas.role=worker`; FAAS_WORKER_LABEL in production), so it never
//! touches other containers of a shared engine. Every container and the network carry
//! `faas.test-run=<id>` and are removed on drop.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use faas_executors::scaler::DockerScaler;
use faas_runtime::autoscaler::{self, ScalePolicy};
use faas_runtime::nats::{NatsConfig, NatsQueue, connect};
use faas_runtime::ports::WorkQueue;
use tokio_util::sync::CancellationToken;

/// On every container and the network of a run: what [`Cleanup`] removes.
const LABEL_KEY: &str = "faas.test-run";
/// On this run's worker containers only: what the scaler watches.
const WORKER_KEY: &str = "faas.test-worker";
const JWT_SECRET: &str = "autoscaler-containers-test-secret-0123456789";
const SECRETS_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// Runs `docker args...`; panics with its stderr when it fails.
fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker: {e} (make test-deps installs it)"));
    assert!(
        out.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes every container of the run, then its network (also when a test panics).
struct Cleanup {
    run: String,
    network: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let filter = format!("label={LABEL_KEY}={}", self.run);
        let ids = Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f", "-v"])
                .args(&ids)
                .output();
        }
        let _ = Command::new("docker")
            .args(["network", "rm", &self.network])
            .output();
    }
}

fn build_images() -> (String, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deployments/local-images.sh");
    let out = Command::new(script)
        .arg(env!("CARGO_BIN_EXE_faas"))
        .output()
        .expect("run deployments/local-images.sh");
    assert!(
        out.status.success(),
        "local-images.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let refs = String::from_utf8_lossy(&out.stdout);
    let mut lines = refs.lines();
    let faas = lines.next().expect("faas-local image").to_string();
    let nats = lines.next().expect("nats-local image").to_string();
    (faas, nats)
}

fn running_workers(run: &str) -> Vec<String> {
    let filter = format!("label={WORKER_KEY}={run}");
    docker(&[
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        &filter,
        "--filter",
        "label=faas.role=worker",
        "--filter",
        "status=running",
    ])
    .split_whitespace()
    .map(str::to_string)
    .collect()
}

fn all_containers(run: &str) -> Vec<String> {
    let filter = format!("label={LABEL_KEY}={run}");
    docker(&["ps", "-aq", "--no-trunc", "--filter", &filter])
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

async fn connect_queue(url: &str) -> NatsQueue {
    let config = NatsConfig {
        stream: "AUTOSCALE_TEST".into(),
        subject: "faas.autoscale-test".into(),
        consumer: "autoscale-test".into(),
        ..NatsConfig::default()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match connect(url, config.clone()).await {
            Ok(b) => return b.queue,
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for NATS at {url}: {e}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => panic!("NATS at {url} did not come up: {e}"),
        }
    }
}

/// Prints one row of the table.
fn row(start: Instant, backlog: u64, workers: usize, phase: &str) {
    println!(
        "{:>6.1} {:>8} {:>8}   {phase}",
        start.elapsed().as_secs_f64(),
        backlog,
        workers
    );
}

async fn backlog(q: &NatsQueue) -> u64 {
    q.stats()
        .await
        .map(|s| s.pending + s.in_flight)
        .unwrap_or(u64::MAX)
}

/// `docker-compose.yml` validates with the compose CLI (`docker compose` v2, else
/// Debian's `docker-compose`) once the secrets are set; `.env.example` as shipped (blank
/// secrets) is refused, naming JWT_SECRET (JWT_SECRET and FAAS_SECRETS_KEY are required).
#[test]
fn compose_file_validates() {
    let root = env!("CARGO_MANIFEST_DIR");
    let v2 = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let compose = |secrets: bool, args: &[&str]| {
        let mut c = if v2 {
            let mut c = Command::new("docker");
            c.arg("compose");
            c
        } else {
            Command::new("docker-compose")
        };
        c.current_dir(root)
            .env_remove("JWT_SECRET")
            .env_remove("FAAS_SECRETS_KEY")
            .env_remove("NATS_PASSWORD");
        if secrets {
            c.env("JWT_SECRET", JWT_SECRET)
                .env("FAAS_SECRETS_KEY", SECRETS_KEY)
                .env("NATS_PASSWORD", SECRETS_KEY);
        }
        c.args(args)
            .output()
            .expect("no compose CLI: `make test-deps` installs docker-compose")
    };
    let ok = compose(true, &["--env-file", ".env.example", "config"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let text = String::from_utf8_lossy(&ok.stdout);
    for needle in [
        "apisix:",
        "nats:",
        "api:",
        "capabilities:",
        "worker:",
        "autoscaler:",
        "faas.role: worker",
        "FAAS_NATS_PASSWORD:",
        // Every worker serves the functions' HTTP endpoints (APISIX routes /fn/ there).
        "FAAS_HTTP_ADDRESS: 0.0.0.0:8088",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    let missing = compose(false, &["--env-file", ".env.example", "config", "-q"]);
    assert!(
        !missing.status.success(),
        "compose accepted the example's blank secrets"
    );
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(
        ["JWT_SECRET", "FAAS_SECRETS_KEY", "NATS_PASSWORD"]
            .iter()
            .any(|k| said.contains(k)),
        "compose names the missing secret: {said}"
    );
}

#[tokio::test]
async fn autoscaler_grows_and_shrinks_worker_containers() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,faas_executors::scaler=info".into()),
        )
        .with_test_writer()
        .try_init();
    let started = Instant::now();
    let (faas_image, nats_image) = build_images();
    eprintln!(
        "images {faas_image}, {nats_image} ready in {:?}",
        started.elapsed()
    );

    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let run = format!("as{}x{:x}", std::process::id(), nanos);
    let network = format!("faas-{run}");
    let cleanup = Cleanup {
        run: run.clone(),
        network: network.clone(),
    };
    let run_label = format!("{LABEL_KEY}={run}");
    docker(&["network", "create", "--label", &run_label, &network]);

    // NATS, reachable as `nats` on the network and on a random loopback port here.
    let nats_name = format!("{network}-nats");
    docker(&[
        "run",
        "-d",
        "--name",
        &nats_name,
        "--network",
        &network,
        "--network-alias",
        "nats",
        "--label",
        &run_label,
        "-p",
        "127.0.0.1::4222",
        &nats_image,
    ]);
    let port = docker(&["port", &nats_name, "4222/tcp"]);
    let port = port
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .expect("published NATS port")
        .to_string();
    let url = format!("nats://127.0.0.1:{port}");
    let queue = connect_queue(&url).await;

    // The first worker: the template the autoscaler clones.
    let worker_name = format!("{network}-worker");
    let original = docker(&[
        "run",
        "-d",
        "--name",
        &worker_name,
        "--network",
        &network,
        "--label",
        "faas.role=worker",
        "--label",
        &run_label,
        "--label",
        &format!("{WORKER_KEY}={run}"),
        "-e",
        "NATS_URL=nats://nats:4222",
        "-e",
        &format!("JWT_SECRET={JWT_SECRET}"),
        "-e",
        &format!("FAAS_SECRETS_KEY={SECRETS_KEY}"),
        "-e",
        "FAAS_DOCKER=off",
        "-e",
        "FAAS_SHUTDOWN_GRACE_SECS=2",
        &faas_image,
        "worker",
    ]);
    assert_eq!(running_workers(&run), vec![original.clone()]);

    let scaler = DockerScaler::connect(WORKER_KEY, &run, 2)
        .await
        .expect("Docker engine (make test-deps starts one)");
    let policy = ScalePolicy {
        min: 1,
        max: 3,
        up: 3.0,
        down: 2.0,
        cooldown: Duration::from_secs(2),
    };
    for i in 0..50 {
        queue
            .enqueue(&format!("load-{run}-{i}"), Bytes::from_static(b"{}"))
            .await
            .expect("enqueue");
    }
    assert_eq!(backlog(&queue).await, 50);

    let stop = CancellationToken::new();
    let looped = tokio::spawn(autoscaler::run(
        Arc::new(queue.clone()),
        Arc::new(scaler),
        policy,
        Duration::from_secs(1),
        stop.clone(),
    ));

    println!("{:>6} {:>8} {:>8}   phase", "t(s)", "backlog", "workers");
    let t0 = Instant::now();
    let mut peak = 0;

    // Up: 50 queued, 3 per worker at most -> MAX_WORKERS = 3.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let n = running_workers(&run).len();
        peak = peak.max(n);
        row(t0, backlog(&queue).await, n, "backlog of 50");
        if n == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "the pool did not grow to 3");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // The clones are working workers: same image, command, env and network.
    let clones: Vec<String> = running_workers(&run)
        .into_iter()
        .filter(|id| *id != original)
        .collect();
    assert_eq!(clones.len(), 2, "two clones besides the original");
    let deadline = Instant::now() + Duration::from_secs(20);
    for id in &clones {
        loop {
            let logs = Command::new("docker")
                .args(["logs", id])
                .output()
                .expect("docker logs");
            let text = String::from_utf8_lossy(&logs.stderr).to_string()
                + &String::from_utf8_lossy(&logs.stdout);
            if text.contains("worker started") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "clone {id} did not start as a worker:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let scaled = docker(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"faas.scaled-by\"}} {{index .Config.Labels \"faas.role\"}}",
            id,
        ]);
        assert_eq!(scaled, "autoscaler worker", "labels of clone {id}");
    }

    // Drain: take and ack everything.
    while backlog(&queue).await > 0 {
        let got = queue
            .lease(64, Duration::from_secs(1))
            .await
            .expect("lease");
        for d in &got {
            queue.ack(d).await.expect("ack");
        }
    }
    row(
        t0,
        backlog(&queue).await,
        running_workers(&run).len(),
        "drained",
    );

    // Down: one per decision after each cooldown, never below MIN_WORKERS = 1.
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let n = running_workers(&run).len();
        row(t0, backlog(&queue).await, n, "idle");
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the pool did not shrink to 1");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Stays at MIN_WORKERS.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let left = running_workers(&run);
    row(t0, backlog(&queue).await, left.len(), "idle (steady)");
    stop.cancel();
    looped.await.expect("autoscaler loop");

    assert_eq!(peak, 3, "peak pool size");
    assert_eq!(left, vec![original.clone()], "the clones go first");
    let remaining = all_containers(&run);
    for id in &clones {
        assert!(
            !remaining.contains(id),
            "removed clone {id} still exists (stopped containers must be removed too)"
        );
    }
    eprintln!("done in {:?}", started.elapsed());
    drop(cleanup);
}

/// A run of `faas.test-worker`-labelled fake workers: an id unique to this call.
fn run_id(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}{}x{:x}", std::process::id(), nanos)
}

/// An execution of a docker function running `image` for at most 20 s.
fn sleeper_request(image: &str) -> faas_runtime::ports::ExecutionRequest {
    use faas_runtime::model::{Function, PullPolicy, RuntimeKind, new_id, now};
    let function = Function {
        id: new_id(),
        owner_id: "owner".into(),
        name: "fake-worker".into(),
        description: String::new(),
        runtime: RuntimeKind::Docker,
        image_url: Some(image.to_string()),
        pull_policy: Some(PullPolicy::Never),
        warm: None,
        module_sha256: None,
        module_size: None,
        timeout_secs: 20,
        memory_mb: 64,
        created_at: now(),
        versions: Default::default(),
    };
    faas_runtime::ports::ExecutionRequest {
        execution_id: new_id(),
        attempt: 1,
        function,
        input: "{}".into(),
        env: Vec::new(),
        objects: Vec::new(),
        objects_dir: None,
        timeout: Duration::from_secs(20),
        memory_limit: 64 << 20,
        stdout_cap: 1 << 16,
        stderr_cap: 1 << 16,
    }
}

/// A user's image that labels itself as a worker (`LABEL faas.role=worker` and the
/// label the scaler watches) never makes its function container a worker: it is not
/// counted, not cloned as a template, and neither is any container labelled
/// `faas.managed-by` (a function container of any release).
#[tokio::test]
async fn a_function_container_is_never_taken_for_a_worker() {
    use faas_executors::docker::{DockerConfig, DockerExecutor};
    use faas_runtime::ports::Executor;

    let run = run_id("fw");
    let cleanup = Cleanup {
        run: run.clone(),
        network: format!("faas-{run}-none"),
    };
    let image = format!("faas-test-fake-worker:{run}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/busybox", dir.path().join("busybox")).expect("busybox-static");
    // The input follows the entrypoint in argv: `sh -c` leaves it unused (a bare
    // `sleep 8 {}` exits at once, before the container can be seen running).
    let dockerfile = format!(
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         LABEL faas.role=worker {WORKER_KEY}={run} {LABEL_KEY}={run}\n\
         ENTRYPOINT [\"/bin/busybox\", \"sh\", \"-c\", \"sleep 8\", \"fn\"]\n"
    );
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    let dir_path = dir.path().to_str().unwrap();
    docker(&["build", "-q", "-t", &image, dir_path]);

    let executor = DockerExecutor::connect(DockerConfig {
        worker_id: format!("fake-worker-test-{}", std::process::id()),
        installation_id: format!("fake-worker-test-{run}"),
        ..DockerConfig::default()
    })
    .await
    .expect("Docker engine (make test-deps starts one)");
    let request = sleeper_request(&image);
    let filter = format!("label=faas.execution-id={}", request.execution_id);
    let running = tokio::spawn(async move { executor.execute(request).await });
    let deadline = Instant::now() + Duration::from_secs(20);
    while docker(&["ps", "-q", "--filter", &filter]).is_empty() {
        assert!(Instant::now() < deadline, "the function container starts");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And one labelled by hand the way a function container is.
    docker(&[
        "run",
        "-d",
        "--label",
        "faas.managed-by=faas",
        "--label",
        &format!("{WORKER_KEY}={run}"),
        "--label",
        &format!("{LABEL_KEY}={run}"),
        &image,
    ]);

    let scaler = DockerScaler::connect(WORKER_KEY, &run, 1)
        .await
        .expect("Docker engine");
    use faas_runtime::autoscaler::WorkerScaler;
    assert_eq!(scaler.workers().await.unwrap(), Vec::<String>::new());
    match scaler.add(1).await {
        Err(faas_runtime::Error::NotFound(_)) => {}
        other => panic!("a function container was used as a template: {other:?}"),
    }
    let clones = docker(&["ps", "-aq", "--filter", "label=faas.scaled-by"]);
    let ours: Vec<&str> = clones
        .split_whitespace()
        .filter(|id| {
            docker(&[
                "inspect",
                "-f",
                &format!("{{{{index .Config.Labels \"{WORKER_KEY}\"}}}}"),
                id,
            ]) == run
        })
        .collect();
    assert!(ours.is_empty(), "clones of a function container: {ours:?}");
    running.await.unwrap().unwrap();
    drop(cleanup);
    let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
}
