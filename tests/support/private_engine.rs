//! A Docker engine of one test's own: a second `dockerd` with its own data root, exec
//! root, socket and default bridge, started the way `scripts/test-deps.sh` starts the
//! machine's engine (`dockerd` in a process group of its own, output to a log file). A test may stop and restart
//! it while every other test keeps using the machine's engine undisturbed: no lock
//! between tests, and the machine's engine is never the one that goes down.
//!
//! It touches nothing of the host that the machine's engine uses: no iptables rules, no
//! masquerading, its own default bridge (`--bridge=none` would make dockerd delete
//! `docker0`), its own cgroup parent, and subnets dockerd picks clear of the host's routes.
//! Dropping it removes its containers and networks, stops it, deletes its bridge and
//! its directories, whatever the test did (a panic included).
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for the engine to answer after a start, or to exit after SIGTERM.
const ENGINE_WAIT: Duration = Duration::from_secs(60);

/// A running (or, between [`PrivateEngine::stop`] and [`PrivateEngine::launch`],
/// stopped) private `dockerd`.
pub struct PrivateEngine {
    dir: tempfile::TempDir,
    bridge: String,
    child: Option<Child>,
}

impl PrivateEngine {
    /// Creates its bridge and starts it; panics (after cleaning up) when it does not answer.
    pub fn start() -> PrivateEngine {
        let dir = tempfile::Builder::new()
            .prefix("faas-engine-")
            .tempdir()
            .expect("a temp dir");
        let bridge = format!("fdr{:08x}", std::process::id() ^ nanos());
        run_ok(Command::new("ip").args(["link", "add", &bridge, "type", "bridge"]));
        let mut engine = PrivateEngine {
            dir,
            bridge,
            child: None,
        };
        engine.launch();
        engine
    }

    /// `unix://` address of its socket (for `DOCKER_HOST` and `docker -H`).
    pub fn host(&self) -> String {
        format!("unix://{}", self.path("docker.sock").display())
    }

    /// A `docker` CLI command against this engine.
    pub fn docker(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.arg("-H").arg(self.host());
        cmd
    }

    /// Runs `docker -H <this engine> args...`; its stdout, or `None` when it failed.
    pub fn docker_out(&self, args: &[&str]) -> Option<String> {
        let out = self.docker().args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// True when the engine answers.
    pub fn answers(&self) -> bool {
        self.docker_out(&["version", "--format", "{{.Server.Version}}"])
            .is_some()
    }

    /// Starts dockerd (again) with the same settings and waits until it answers;
    /// returns how long that took.
    pub fn launch(&mut self) -> Duration {
        assert!(self.child.is_none(), "the engine is already running");
        let started = Instant::now();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("dockerd.log"))
            .expect("the engine's log file");
        // Its own process group, as `setsid dockerd` (a terminal's Ctrl-C goes to the
        // test, and the drop stops the engine).
        let mut cmd = Command::new("dockerd");
        cmd.process_group(0)
            .arg(format!("--data-root={}", self.path("root").display()))
            .arg(format!("--exec-root={}", self.path("x").display()))
            .arg(format!("--pidfile={}", self.path("docker.pid").display()))
            .arg(format!("--host={}", self.host()))
            .arg(format!("--bridge={}", self.bridge))
            .args(["--iptables=false", "--ip-masq=false"])
            .arg("--cgroup-parent=faas-private-engine")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log);
        self.child = Some(cmd.spawn().expect("dockerd runs (make test-deps)"));
        while !self.answers() {
            if started.elapsed() > ENGINE_WAIT || self.exited() {
                panic!("the private engine did not start:\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        started.elapsed()
    }

    /// Stops dockerd as an operator's restart does (SIGTERM: it stops its containers,
    /// then exits); SIGKILL if it is still there after [`ENGINE_WAIT`]. Returns how long
    /// it took.
    pub fn stop(&mut self) -> Duration {
        let started = Instant::now();
        let Some(mut child) = self.child.take() else {
            return Duration::ZERO;
        };
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        while started.elapsed() < ENGINE_WAIT {
            if !matches!(child.try_wait(), Ok(None)) {
                return started.elapsed();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        started.elapsed()
    }

    /// Stops and starts it again; returns (stop, start) durations.
    pub fn restart(&mut self) -> (Duration, Duration) {
        let stopped = self.stop();
        (stopped, self.launch())
    }

    /// The end of dockerd's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.path("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// True when the started dockerd already exited.
    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| !matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        if self.child.is_some() && self.answers() {
            if let Some(ids) = self.docker_out(&["ps", "-aq"]) {
                let ids: Vec<&str> = ids.split_whitespace().collect();
                if !ids.is_empty() {
                    let _ = self.docker().args(["rm", "-f"]).args(&ids).output();
                }
            }
            let _ = self.docker().args(["network", "prune", "-f"]).output();
        }
        self.stop();
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("the command runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}
