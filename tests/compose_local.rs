//! End to end: the compose stack of `make run-local`, started with the compose CLI of
//! this machine (`docker compose` v2, else `docker-compose`), exactly as the README's
//! compose section says:
//!
//! 1. `deployments/local-images.sh` (what `make images` runs) builds `faas-local` from
//!    this test's binary and `nats-local`, FROM scratch;
//! 2. `deployments/gen-env.sh > .env` writes random secrets (here into a temp file, plus
//!    a unique COMPOSE_PROJECT_NAME and NETWORK_NAME, so a shared engine is safe);
//! 3. `up -d --no-build` with `docker-compose.yml` + `deployments/compose.local.yml`;
//!    every service must turn healthy;
//! 4. through the published API port: register, log in, deploy a wasm function and an
//!    image function (a busybox probe built FROM scratch here), run both. The probe,
//!    running on the functions' network, reads its granted object, is refused the
//!    object it was not granted, cannot reach the API's `/auth/login` (`api` is not on
//!    that network) and gets 404 for `/auth/login` on the capability listener;
//! 5. `up -d --no-build --no-deps --scale api=2 --scale worker=3 api worker` (only those
//!    two: the autoscaler may already be draining the third worker, which compose must
//!    not wait for): both API replicas answer; the autoscaler (MIN_WORKERS=2, idle
//!    queue) drains one worker;
//! 6. teardown as `make down`: the autoscaler's clones, then `down --volumes
//!    --remove-orphans`; no container, network or volume of the project is left.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/own_binary.rs"]
mod own_binary;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use harness::{Api, root, sample};
use serde_json::{Value, json};

const PROBE_IMAGE: &str = "faas-compose-probe:test";

/// The probe function (busybox sh): what a function container reaches.
const PROBE_SCRIPT: &str = include_str!("support/probe-fn.sh");

/// Runs a command; panics with its output when it fails.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn docker(args: &[&str]) -> String {
    run(Command::new("docker").args(args))
}

/// `docker compose` (v2) when it answers, else Debian's `docker-compose`.
fn compose_cli() -> Vec<String> {
    let v2 = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if v2 {
        vec!["docker".into(), "compose".into()]
    } else {
        vec!["docker-compose".into()]
    }
}

/// One compose project: every command runs from the repository root with the two
/// compose files and the project's env file. Torn down on drop.
struct Stack {
    cli: Vec<String>,
    env_file: PathBuf,
    project: String,
    network: String,
    down: bool,
}

impl Stack {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.cli[0]);
        c.args(&self.cli[1..])
            .current_dir(root())
            .arg("--env-file")
            .arg(&self.env_file)
            .args([
                "-f",
                "docker-compose.yml",
                "-f",
                "deployments/compose.local.yml",
            ])
            .args(args);
        c
    }

    fn compose(&self, args: &[&str]) -> String {
        run(&mut self.command(args))
    }

    /// `name status` of every container of the project.
    fn containers(&self) -> Vec<String> {
        let filter = format!("label=com.docker.compose.project={}", self.project);
        docker(&[
            "ps",
            "-a",
            "--filter",
            &filter,
            "--format",
            "{{.Names}} {{.Status}}",
        ])
        .lines()
        .map(str::to_string)
        .collect()
    }

    /// Running worker containers of the pool (compose's and the autoscaler's clones).
    fn workers(&self) -> Vec<String> {
        let pool = format!("label=faas.pool={}", self.project);
        docker(&["ps", "-q", "--filter", &pool, "--filter", "status=running"])
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// Waits until `count` containers of each service run and every container of the
    /// project is healthy.
    fn wait_healthy(&self, want: &[(&str, usize)], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let all = self.containers();
            let count = |svc: &str| {
                let prefix = format!("{}_{svc}_", self.project);
                let alt = format!("{}-{svc}-", self.project);
                all.iter()
                    .filter(|l| l.starts_with(&prefix) || l.starts_with(&alt))
                    .count()
            };
            let counts_ok = want.iter().all(|(svc, n)| count(svc) == *n);
            if counts_ok && all.iter().all(|l| l.contains("(healthy)")) {
                eprintln!("healthy:\n  {}", all.join("\n  "));
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not every service became healthy:\n  {}\nlogs:\n{}",
                all.join("\n  "),
                text(&self.command(&["logs", "--tail", "30"]).output().unwrap())
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Every faas container drops all capabilities, gains no privileges and has a
    /// memory limit; workers (and so the autoscaler's clones of them) carry no JWT_SECRET.
    fn assert_hardened(&self) {
        let filter = format!("label=com.docker.compose.project={}", self.project);
        let ids = docker(&["ps", "-q", "--filter", &filter]);
        for id in ids.split_whitespace() {
            let f = "{{.Name}}|{{.HostConfig.CapDrop}}|{{.HostConfig.SecurityOpt}}|\
                     {{.HostConfig.Memory}}|{{.Config.Env}}";
            let got = docker(&["inspect", "-f", f, id]);
            let parts: Vec<&str> = got.split('|').collect();
            if parts[0].contains("_nats_") || parts[0].contains("-nats-") {
                continue;
            }
            assert!(parts[1].contains("ALL"), "cap_drop ALL: {got}");
            assert!(parts[2].contains("no-new-privileges"), "{got}");
            assert_ne!(parts[3], "0", "a memory limit: {got}");
            if parts[0].contains("worker") {
                assert!(
                    !parts[4].contains("JWT_SECRET"),
                    "a worker has JWT_SECRET: {got}"
                );
            }
        }
    }

    /// The host address of replica `index` (1-based) of the API.
    fn api(&self, index: usize) -> Api {
        let i = format!("--index={index}");
        let addr = self.compose(&["port", &i, "api", "8080"]);
        Api::new(&format!("http://{}", addr.trim()))
    }

    /// As `make down`: the autoscaler's clones first (they hold the networks), then
    /// `down --volumes --remove-orphans`. Never panics (also runs on drop).
    fn teardown(&mut self) -> Option<Output> {
        self.down = true;
        let pool = format!("label=faas.pool={}", self.project);
        let clones = Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &pool,
                "--filter",
                "label=faas.scaled-by=autoscaler",
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        let clones: Vec<&str> = clones.split_whitespace().collect();
        if !clones.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&clones)
                .output();
        }
        self.command(&["down", "--volumes", "--remove-orphans"])
            .output()
            .ok()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if !self.down {
            if let Ok(out) = self.command(&["logs", "--tail", "40"]).output() {
                eprintln!("--- logs of {} ---\n{}", self.project, text(&out));
            }
            self.teardown();
            let _ = Command::new("docker")
                .args(["network", "rm", &self.network])
                .output();
        }
    }
}

/// `deployments/local-images.sh` on this test's binary: (faas, nats) image refs.
fn local_images() -> (String, String) {
    let faas = own_binary::faas("capabilities");
    let script = root().join("deployments/local-images.sh");
    let out = run(Command::new(script).arg(&faas));
    let mut lines = out.lines();
    let faas = lines.next().expect("faas-local ref").to_string();
    let nats = lines.next().expect("nats-local ref").to_string();
    (faas, nats)
}

/// The probe image: busybox and the script, FROM scratch.
fn probe_image(dir: &Path) {
    let ctx = dir.join("probe");
    std::fs::create_dir_all(ctx.join("bin")).unwrap();
    let busybox = run(Command::new("sh").args(["-c", "command -v busybox"]));
    std::fs::copy(busybox, ctx.join("bin/busybox")).expect("static busybox (busybox-static)");
    std::fs::write(ctx.join("fn.sh"), PROBE_SCRIPT).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY fn.sh /fn.sh\n\
         ENTRYPOINT [\"/bin/busybox\", \"sh\", \"/fn.sh\"]\n",
    )
    .unwrap();
    docker(&["build", "-q", "-t", PROBE_IMAGE, ctx.to_str().unwrap()]);
}

/// `deployments/gen-env.sh` output plus this run's names and quick autoscaler timings.
fn env_file(dir: &Path, project: &str, network: &str, images: &(String, String)) -> PathBuf {
    let generated = run(&mut Command::new(root().join("deployments/gen-env.sh")));
    assert!(generated.contains("JWT_SECRET=") && generated.contains("FAAS_SECRETS_KEY="));
    let extra = format!(
        "COMPOSE_PROJECT_NAME={project}\nNETWORK_NAME={network}\nAPI_PUBLISH=127.0.0.1:\n\
         FAAS_LOCAL_IMAGE={}\nNATS_LOCAL_IMAGE={}\nCHECK_INTERVAL=2s\nCOOLDOWN_PERIOD=3s\n\
         FAAS_SHUTDOWN_GRACE_SECS=5\nWORKER_STOP_GRACE=30s\n",
        images.0, images.1
    );
    let path = dir.join(".env");
    std::fs::write(&path, format!("{generated}\n{extra}")).unwrap();
    path
}

/// True for an `HTTP/1.0 404 Not Found`-like status line with this code.
fn is_status(line: &Value, code: u16) -> bool {
    line.as_str()
        .and_then(|l| l.split_whitespace().nth(1))
        .is_some_and(|c| c == code.to_string())
}

async fn wasm_runs(api: &Api, token: &str, fid: &str, name: &str) {
    let run = api
        .run(token, fid, json!({"direct_inputs": {"name": name}}))
        .await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["result"]["hello"], name, "{run}");
}

async fn probe_runs(api: &Api, token: &str) -> Value {
    let f = api
        .post(
            token,
            "/api/functions",
            json!({"name": "probe", "image_url": PROBE_IMAGE,
            "pull_policy": "never", "timeout_secs": 60, "memory_mb": 64}),
        )
        .await
        .expect(201);
    let fid = f["id"].as_str().unwrap().to_string();
    for (name, body) in [
        ("granted.txt", "granted-object"),
        ("other.txt", "not-granted"),
    ] {
        api.upload(token, &fid, name, body.as_bytes().to_vec(), "text/plain")
            .await
            .expect(201);
    }
    let input = json!({"object_inputs": {"doc": format!("{fid}/granted.txt")}});
    let run = api.run(token, &fid, input).await;
    assert_eq!(run["status"], "completed", "{run}");
    run["result"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_run_local_comes_up_runs_functions_scales_and_leaves_nothing() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let images = local_images();
    probe_image(dir.path());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let project = format!("faaslocal{}x{nanos:x}", std::process::id());
    let network = format!("{project}-functions");
    let mut stack = Stack {
        cli: compose_cli(),
        env_file: env_file(dir.path(), &project, &network, &images),
        project: project.clone(),
        network: network.clone(),
        down: false,
    };
    eprintln!(
        "images ready in {:?}; compose CLI {:?}",
        started.elapsed(),
        stack.cli
    );

    stack.compose(&["up", "-d", "--no-build"]);
    let one = [
        ("nats", 1),
        ("api", 1),
        ("capabilities", 1),
        ("worker", 2),
        ("autoscaler", 1),
    ];
    stack.wait_healthy(&one, Duration::from_secs(120));
    eprintln!("stack healthy after {:?}", started.elapsed());

    stack.assert_hardened();

    let api = stack.api(1);
    let (token, _) = api.user("ada").await;
    let wasm = api
        .deploy(&token, "hello", sample("rust-hello.wasm"), &[])
        .await
        .expect(201);
    let wasm_id = wasm["id"].as_str().unwrap().to_string();
    wasm_runs(&api, &token, &wasm_id, "Ada").await;

    let probe = probe_runs(&api, &token).await;
    eprintln!("probe: {probe}");
    assert_eq!(probe["host"], "http://capabilities:8081", "{probe}");
    assert_eq!(
        probe["object"], "granted-object",
        "reads its granted object: {probe}"
    );
    assert!(is_status(&probe["object_status"], 200), "{probe}");
    assert!(
        is_status(&probe["other"], 404),
        "an object not granted is refused: {probe}"
    );
    let no_login = "the capability listener has no /auth/login";
    assert!(is_status(&probe["cap_login"], 404), "{no_login}: {probe}");
    let api_login = probe["api_login"].as_str().unwrap_or("");
    let off_net = "the API is not on the functions' network";
    assert!(api_login.starts_with("unresolved"), "{off_net}: {probe}");
    let main = probe["main_port_login"].as_str().unwrap_or("");
    let one_port = "no API port beside the capability route";
    assert!(main.starts_with("unreachable"), "{one_port}: {probe}");

    // Scale: api to 2, workers to 3; the autoscaler drains the worker above MIN_WORKERS.
    stack.compose(&[
        "up",
        "-d",
        "--no-build",
        "--no-deps",
        "--scale",
        "api=2",
        "--scale",
        "worker=3",
        "api",
        "worker",
    ]);
    let peak = stack.workers().len();
    eprintln!("workers right after scaling: {peak}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let logs = text(&stack.command(&["logs", "autoscaler"]).output().unwrap());
        if logs.contains("worker drained and removed") && stack.workers().len() == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the autoscaler drained no worker:\n{logs}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let two = [
        ("nats", 1),
        ("api", 2),
        ("capabilities", 1),
        ("worker", 2),
        ("autoscaler", 1),
    ];
    stack.wait_healthy(&two, Duration::from_secs(60));
    for (i, name) in [(1, "Grace"), (2, "Linus")] {
        wasm_runs(&stack.api(i), &token, &wasm_id, name).await;
    }
    eprintln!("scaled and drained after {:?}", started.elapsed());

    let down = stack.teardown().expect("compose down runs");
    assert!(down.status.success(), "compose down:\n{}", text(&down));
    assert_eq!(stack.containers(), Vec::<String>::new(), "containers left");
    let pool = format!("label=faas.pool={project}");
    assert_eq!(
        docker(&["ps", "-aq", "--filter", &pool]),
        "",
        "workers left"
    );
    let nets = docker(&[
        "network",
        "ls",
        "-q",
        "--filter",
        &format!("name={project}"),
    ]);
    assert_eq!(nets, "", "networks left");
    let vols = docker(&["volume", "ls", "-q", "--filter", &format!("name={project}")]);
    assert_eq!(vols, "", "volumes left");
    eprintln!("done in {:?}", started.elapsed());
}
