//! One compose project of tests/compose_local.rs: the compose CLI of this machine, the
//! two compose files and the project's env file, run from the repository root; torn
//! down on drop.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::harness::{Api, root};

/// Runs a command; panics with its output when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn docker(args: &[&str]) -> String {
    run(Command::new("docker").args(args))
}

/// `docker compose` (v2) when it answers, else Debian's `docker-compose`.
pub fn compose_cli() -> Vec<String> {
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
pub struct Stack {
    pub cli: Vec<String>,
    pub env_file: PathBuf,
    pub project: String,
    pub network: String,
    /// Another container on the functions' network (a listener), removed before `down`.
    pub neighbour: String,
    pub down: bool,
}

impl Stack {
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.cli[0]);
        // The env file names this run's project; `make test` exports its own
        // COMPOSE_PROJECT_NAME, which would win over the file.
        c.args(&self.cli[1..])
            .current_dir(root())
            .env_remove("COMPOSE_PROJECT_NAME")
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

    pub fn compose(&self, args: &[&str]) -> String {
        run(&mut self.command(args))
    }

    /// `name status` of every container of the project.
    pub fn containers(&self) -> Vec<String> {
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
    pub fn workers(&self) -> Vec<String> {
        let pool = format!("label=faas.pool={}", self.project);
        docker(&["ps", "-q", "--filter", &pool, "--filter", "status=running"])
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// Waits until `count` containers of each service run and every container of the
    /// project is healthy, but the one-shot `functions-check`, which exited 0.
    pub fn wait_healthy(&self, want: &[(&str, usize)], timeout: Duration) {
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
            let done = |l: &String| match l.contains("functions-check") {
                true => l.contains(" Exited (0)"),
                false => l.contains("(healthy)"),
            };
            if counts_ok && all.iter().all(done) {
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
    pub fn assert_hardened(&self) {
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

    /// The address of the first container of `service` (on its one network).
    pub fn ip_of(&self, service: &str) -> String {
        let id = self.compose(&["ps", "-q", service]);
        let id = id.split_whitespace().next().expect("a container");
        let f = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}";
        docker(&["inspect", "-f", f, id]).trim().to_string()
    }

    /// The host address of replica `index` (1-based) of the API.
    pub fn api(&self, index: usize) -> Api {
        let i = format!("--index={index}");
        let addr = self.compose(&["port", &i, "api", "8080"]);
        Api::new(&format!("http://{}", addr.trim()))
    }

    /// The host address of worker `index`'s (1-based) functions listener (`/fn/...`).
    pub fn worker_functions(&self, index: usize) -> String {
        let i = format!("--index={index}");
        let addr = self.compose(&["port", &i, "worker", "8088"]);
        format!("http://{}", addr.trim())
    }

    /// As `make down`: the autoscaler's clones first (they hold the networks), then
    /// `down --volumes --remove-orphans`. Never panics (also runs on drop).
    pub fn teardown(&mut self) -> Option<Output> {
        self.down = true;
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.neighbour])
            .output();
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
