//! The `faas` processes as compose starts them: settings from the environment (an
//! empty value is unset), refused secrets, `FAAS_DOCKER=on` without an engine, and the
//! health listeners (`FAAS_HEALTH_ADDRESS`) probed with `faas healthcheck`.

#[path = "../runtime/tests/support/nats_server.rs"]
mod nats_server;
#[path = "support/own_binary.rs"]
mod own_binary;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use clap::{Args, Command as ClapCommand};
use faas::config::{AutoscalerConfig, ServeConfig, env_names};
use nats_server::NatsServer;

fn faas_bin() -> std::path::PathBuf {
    own_binary::faas("healthcheck")
}
const SECRETS_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// `faas <role>` with every variable of `names` set to "" and then `set` applied.
fn faas(role: &str, names: &[String], set: &[(&str, &str)]) -> Command {
    let mut c = Command::new(faas_bin());
    c.arg(role).env("RUST_LOG", "info");
    for n in names {
        c.env(n, "");
    }
    for (k, v) in set {
        c.env(k, v);
    }
    c
}

/// A child process logging to a file, killed on drop.
struct Proc(Child, tempfile::NamedTempFile);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(mut c: Command) -> Proc {
    let log = tempfile::NamedTempFile::new().unwrap();
    let err = Stdio::from(log.reopen().unwrap());
    let child = c
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("spawn faas");
    Proc(child, log)
}

fn healthcheck(url: &str) -> Output {
    Command::new(faas_bin())
        .args(["healthcheck", url])
        .output()
        .unwrap()
}

/// Polls `faas healthcheck url` until its success is `want`; panics with the
/// process's stderr after `timeout`.
fn wait_health(url: &str, want: bool, timeout: Duration, p: &mut Proc) -> Duration {
    let t0 = Instant::now();
    loop {
        let out = healthcheck(url);
        if out.status.success() == want {
            return t0.elapsed();
        }
        if t0.elapsed() > timeout || p.0.try_wait().unwrap().is_some() {
            let log = std::fs::read_to_string(p.1.path()).unwrap_or_default();
            panic!(
                "healthcheck {url} never {want}: {}\n--- process log ---\n{log}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn serve_names() -> Vec<String> {
    env_names(&ServeConfig::augment_args(ClapCommand::new("serve")))
}

#[test]
fn every_setting_treats_an_empty_env_value_as_unset() {
    let names = serve_names();
    for must in [
        "FAAS_ADMIN_USERNAME",
        "MAX_CONCURRENT_EXECUTIONS",
        "FAAS_DOCKER",
        "NATS_URL",
    ] {
        assert!(names.iter().any(|n| n == must), "{must} in {names:?}");
    }
    let data = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let dir = data.path().to_str().unwrap();
    // Every setting "" (compose's `${VAR:-}`), except where to listen and keep data.
    let set = [
        ("SERVER_ADDRESS", addr.as_str()),
        ("FAAS_DATA_DIR", dir),
        ("FAAS_DOCKER", "off"),
    ];
    let mut p = spawn(faas("serve", &names, &set));
    wait_health(
        &format!("http://{addr}/readyz"),
        true,
        Duration::from_secs(30),
        &mut p,
    );
}

#[test]
fn the_autoscaler_treats_empty_env_values_as_unset_and_reports_its_health() {
    let nats = NatsServer::start();
    let names = env_names(&AutoscalerConfig::augment_args(ClapCommand::new("a")));
    let health = free_addr();
    // A label no container carries: this autoscaler must not scale anyone's workers.
    let label = format!("faas.test-none={}", std::process::id());
    let url = nats.url();
    let set = [
        ("NATS_URL", url.as_str()),
        ("FAAS_WORKER_LABEL", &label),
        ("FAAS_HEALTH_ADDRESS", &health),
    ];
    let mut p = spawn(faas("autoscaler", &names, &set));
    wait_health(
        &format!("http://{health}/healthz"),
        true,
        Duration::from_secs(30),
        &mut p,
    );
}

#[test]
fn placeholder_and_degenerate_secrets_are_refused_at_start() {
    let data = tempfile::tempdir().unwrap();
    let old_jwt = "change-me-to-at-least-32-bytes-of-random-data";
    let zeros = "0".repeat(64);
    for (jwt, key) in [
        (old_jwt, SECRETS_KEY),
        ("0123456789abcdef0123456789abcdef", zeros.as_str()),
    ] {
        let out = faas(
            "serve",
            &[],
            &[("JWT_SECRET", jwt), ("FAAS_SECRETS_KEY", key)],
        )
        .env("SERVER_ADDRESS", free_addr())
        .env("FAAS_DATA_DIR", data.path())
        .env("FAAS_DOCKER", "off")
        .output()
        .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started with {jwt} / {key}");
        assert!(
            err.contains("openssl rand -hex 32"),
            "says how to make a key: {err}"
        );
    }
}

#[test]
fn a_worker_with_faas_docker_on_and_no_engine_fails_at_start() {
    let nats = NatsServer::start();
    let url = nats.url();
    let set = [
        ("NATS_URL", url.as_str()),
        ("FAAS_SECRETS_KEY", SECRETS_KEY),
        ("FAAS_DOCKER", "on"),
        ("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
    ];
    let mut c = faas("worker", &[], &set);
    let data = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let out = c.env("FAAS_DATA_DIR", data.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a worker without its engine started:\n{err}"
    );
    assert!(err.contains("FAAS_DOCKER=on"), "names the setting: {err}");
    assert!(t0.elapsed() < Duration::from_secs(30), "fails at once");
}

#[test]
fn a_workers_health_follows_its_heartbeat() {
    let mut nats = NatsServer::start();
    let health = free_addr();
    let data = tempfile::tempdir().unwrap();
    let url = nats.url();
    let set = [
        ("NATS_URL", url.as_str()),
        ("FAAS_SECRETS_KEY", SECRETS_KEY),
        ("FAAS_DOCKER", "off"),
        ("FAAS_HEALTH_ADDRESS", &health),
    ];
    let mut c = faas("worker", &[], &set);
    c.env("FAAS_DATA_DIR", data.path());
    let mut p = spawn(c);
    let probe = format!("http://{health}/healthz");
    wait_health(&probe, true, Duration::from_secs(30), &mut p);
    // The store is gone: no heartbeat can be written or read.
    nats.stop();
    let took = wait_health(&probe, false, Duration::from_secs(40), &mut p);
    eprintln!("unhealthy {took:?} after NATS stopped");
    nats.start_again();
    wait_health(&probe, true, Duration::from_secs(40), &mut p);
}

#[test]
fn the_capability_listener_serves_only_the_object_route() {
    let data = tempfile::tempdir().unwrap();
    let (api, cap) = (free_addr(), free_addr());
    let dir = data.path().to_str().unwrap();
    let set = [
        ("SERVER_ADDRESS", api.as_str()),
        ("FAAS_CAPABILITY_ADDRESS", cap.as_str()),
        ("FAAS_DATA_DIR", dir),
        ("FAAS_DOCKER", "off"),
    ];
    let mut p = spawn(faas("serve", &[], &set));
    wait_health(
        &format!("http://{cap}/healthz"),
        true,
        Duration::from_secs(30),
        &mut p,
    );
    for path in [
        "/auth/login",
        "/readyz",
        "/api/functions",
        "/api/openapi.json",
    ] {
        let out = healthcheck(&format!("http://{cap}{path}"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("answered 404"),
            "{path} on the capability port: {err}"
        );
    }
    let main = healthcheck(&format!("http://{api}/auth/login"));
    let err = String::from_utf8_lossy(&main.stderr);
    assert!(
        err.contains("answered 405"),
        "the main port has /auth/login: {err}"
    );
    // `faas capabilities` serves state shared with the API: NATS only.
    let alone = faas(
        "capabilities",
        &[],
        &[("FAAS_CAPABILITY_ADDRESS", &free_addr())],
    )
    .env("FAAS_DATA_DIR", data.path())
    .env_remove("NATS_URL")
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&alone.stderr);
    assert!(!alone.status.success() && err.contains("NATS_URL"), "{err}");
}
