//! A real cluster for chaos tests and benches: `nats-server -js`, one `faas api`
//! and N `faas worker` child processes of the real binary, each with its own data
//! dir and a log file. Helpers kill -9 / SIGSTOP / SIGCONT / replace a worker and
//! restart nats-server on the same port and store. Everything is killed on drop.
//!
//! Include with `#[path = "support/cluster.rs"] mod cluster;` next to
//! `#[path = "../runtime/tests/support/nats_server.rs"] mod nats_server;`
//! (this file refers to `crate::nats_server`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::nats_server::NatsServer;

/// Same values for every process of one cluster.
pub const JWT_SECRET: &str = "chaos-test-jwt-secret-0123456789abcdef-0123456789";
pub const SECRETS_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// One child process of the real binary with its data dir and log file.
pub struct Proc {
    pub child: Child,
    pub role: &'static str,
    pub log: PathBuf,
    pub data: tempfile::TempDir,
    pub stopped: bool,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill {sig} {}", self.pid());
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill9(&mut self) {
        if self.stopped {
            self.signal("-CONT");
            self.stopped = false;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nats-server + 1 api + N workers.
pub struct Cluster {
    pub nats: NatsServer,
    pub api: Proc,
    pub base: String,
    /// Live (or stopped) workers.
    pub workers: Vec<Proc>,
    /// Workers killed so far (their logs are kept for counting).
    pub dead: Vec<Proc>,
    logs: tempfile::TempDir,
    env: Vec<(String, String)>,
    spawned: usize,
}

impl Cluster {
    /// Starts nats-server, the API (waits for its address) and `workers` workers.
    /// `env` is added to every faas process (e.g. FAAS_ACK_WAIT_SECS).
    pub fn start(workers: usize, env: &[(&str, &str)]) -> Cluster {
        let nats = NatsServer::start();
        let logs = tempfile::tempdir().expect("log dir");
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let api = spawn(&nats.url(), "api", &logs.path().join("api.log"), &env);
        let base = format!("http://{}", wait_for_addr(&api));
        let mut c = Cluster {
            nats,
            api,
            base,
            workers: Vec::new(),
            dead: Vec::new(),
            logs,
            env,
            spawned: 0,
        };
        for _ in 0..workers {
            c.add_worker();
        }
        c
    }

    /// Starts one more worker; returns its index in `workers`.
    pub fn add_worker(&mut self) -> usize {
        self.spawned += 1;
        let log = self
            .logs
            .path()
            .join(format!("worker-{}.log", self.spawned));
        let w = spawn(&self.nats.url(), "worker", &log, &self.env);
        wait_for_log(&w, "NATS queue ready", Duration::from_secs(30));
        self.workers.push(w);
        self.workers.len() - 1
    }

    /// `kill -9` worker `i` (it leaves `workers`; its log is kept).
    pub fn kill_worker(&mut self, i: usize) {
        let mut w = self.workers.remove(i);
        w.kill9();
        self.dead.push(w);
    }

    /// Kills worker `i` and starts a replacement.
    pub fn replace_worker(&mut self, i: usize) {
        self.kill_worker(i);
        self.add_worker();
    }

    pub fn stop_worker(&mut self, i: usize) {
        self.workers[i].signal("-STOP");
        self.workers[i].stopped = true;
    }

    pub fn cont_worker(&mut self, i: usize) {
        self.workers[i].signal("-CONT");
        self.workers[i].stopped = false;
    }

    /// Kills nats-server (like a crash), waits `down`, starts it again on the same
    /// port and store.
    pub fn restart_nats(&mut self, down: Duration) {
        self.nats.stop();
        std::thread::sleep(down);
        self.nats.start_again();
    }

    /// Occurrences of `needle` in every worker log (live and dead).
    pub fn count_in_worker_logs(&self, needle: &str) -> usize {
        self.workers
            .iter()
            .chain(self.dead.iter())
            .map(|w| w.log_text().matches(needle).count())
            .sum()
    }

    /// Whether every faas process is still running (killed ones excepted).
    pub fn assert_alive(&mut self) {
        for p in std::iter::once(&mut self.api).chain(self.workers.iter_mut()) {
            if let Ok(Some(st)) = p.child.try_wait() {
                panic!(
                    "faas {} exited ({st}); log:\n{}",
                    p.role,
                    tail(&p.log_text(), 4000)
                );
            }
        }
    }

    pub fn logs_dir(&self) -> &Path {
        self.logs.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for w in self.workers.iter_mut() {
            w.kill9();
        }
        self.api.kill9();
        if std::thread::panicking() || std::env::var_os("CLUSTER_KEEP_LOGS").is_some() {
            let keep = self.logs.path().to_path_buf();
            let dest =
                std::env::temp_dir().join(format!("faas-cluster-logs-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&dest);
            for e in std::fs::read_dir(&keep).into_iter().flatten().flatten() {
                let _ = std::fs::copy(e.path(), dest.join(e.file_name()));
            }
            eprintln!("cluster logs copied to {}", dest.display());
        }
        // nats-server is killed by NatsServer's own Drop.
    }
}

/// The binary the processes run: `BENCH_FAAS_BIN` when set (a bench comparing
/// two builds), else this build's `faas`.
pub fn faas_bin() -> String {
    std::env::var("BENCH_FAAS_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_faas").to_string())
}

pub fn spawn(nats_url: &str, role: &'static str, log: &Path, env: &[(String, String)]) -> Proc {
    let data = tempfile::tempdir().expect("data dir");
    let file = std::fs::File::create(log).expect("log file");
    let mut cmd = Command::new(faas_bin());
    cmd.arg(role)
        .env("NATS_URL", nats_url)
        .env("SERVER_ADDRESS", "127.0.0.1:0")
        .env("FAAS_DATA_DIR", data.path())
        .env("JWT_SECRET", JWT_SECRET)
        .env("FAAS_SECRETS_KEY", SECRETS_KEY)
        .env("FAAS_DOCKER", "off")
        .env("FAAS_SHUTDOWN_GRACE_SECS", "2")
        // Load tests measure the platform, not the per-user quotas.
        .env("FAAS_QUOTA_SUBMISSIONS_PER_MINUTE", "0")
        .env("FAAS_QUOTA_ACTIVE_EXECUTIONS", "0")
        .env("FAAS_REGISTER_MAX_PER_ADDRESS", "0")
        .env(
            "RUST_LOG",
            "info,tower_http=warn,cranelift=warn,wasmtime=warn",
        )
        .env_remove("FAAS_ADMIN_USERNAME")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn faas {role}: {e}"));
    Proc {
        child,
        role,
        log: log.to_path_buf(),
        data,
        stopped: false,
    }
}

/// The `addr=` field of the "faas is listening" line.
pub fn wait_for_addr(p: &Proc) -> String {
    let line = wait_for_log(p, "faas is listening", Duration::from_secs(60));
    line.split("addr=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("addr= field")
        .to_string()
}

/// Waits for a log line containing `needle`; returns it. Gives up quietly after
/// `within` for optional lines (returns an empty string) unless it is the address.
pub fn wait_for_log(p: &Proc, needle: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        if let Some(l) = p.log_text().lines().find(|l| l.contains(needle)) {
            return l.to_string();
        }
        if Instant::now() > deadline {
            if needle == "faas is listening" {
                panic!("faas {} did not log {needle:?}:\n{}", p.role, p.log_text());
            }
            return String::new();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    let start = (start..s.len())
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(s.len());
    &s[start..]
}
