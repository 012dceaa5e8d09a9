//! Test harness: a real `faas serve` (in-process `Platform` on 127.0.0.1:0, or the
//! real binary as a child process) and a small HTTP client for its API.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use faas::config::ServeConfig;
use faas::platform::Platform;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

/// Repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A committed sample module.
pub fn sample(name: &str) -> Vec<u8> {
    std::fs::read(root().join("samples/wasm").join(name))
        .unwrap_or_else(|e| panic!("samples/wasm/{name}: {e}"))
}

/// A serve configuration for tests: ephemeral port, short waits; `extra` are
/// `--flag value` pairs.
pub fn config(data: &Path, extra: &[&str]) -> ServeConfig {
    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        c: ServeConfig,
    }
    let mut args = vec![
        "faas".to_string(),
        "--addr=127.0.0.1:0".into(),
        format!("--data-dir={}", data.display()),
        "--ack-wait-secs=3".into(),
        "--grace-secs=5".into(),
        "--admin-username=root".into(),
        "--admin-password=rootpassword".into(),
    ];
    // Tests register many accounts from 127.0.0.1 (the limit has its own tests).
    if !extra
        .iter()
        .any(|a| a.starts_with("--register-max-per-address"))
    {
        args.push("--register-max-per-address=0".into());
    }
    if !extra.iter().any(|a| a.starts_with("--docker")) {
        args.push("--docker=off".into());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    Wrap::parse_from(args).c
}

/// An in-process platform and a client.
pub struct TestApp {
    pub platform: Option<Platform>,
    pub api: Api,
    pub data: tempfile::TempDir,
}

impl TestApp {
    /// Starts a platform in a fresh data dir.
    pub async fn start(extra: &[&str]) -> TestApp {
        init_tracing();
        let data = tempfile::tempdir().unwrap();
        let platform = Platform::start(config(data.path(), extra))
            .await
            .expect("platform starts");
        let api = Api::new(&format!(
            "http://{}",
            platform.addr.expect("the API listens")
        ));
        TestApp {
            platform: Some(platform),
            api,
            data,
        }
    }

    /// Starts a platform on the embedded backend, or on the NATS server at
    /// `nats_url` (API and workers in this process, with fixed keys).
    pub async fn start_on(nats_url: Option<&str>, extra: &[&str]) -> TestApp {
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        if let Some(url) = nats_url {
            args.push(format!("--nats-url={url}"));
            args.push("--jwt-secret=a-test-signing-key-of-at-least-32-bytes!!".into());
            args.push(
                "--secrets-key=7d1c2a1f0e9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d"
                    .into(),
            );
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        TestApp::start(&refs).await
    }

    /// Stops it (waits for the grace period).
    pub async fn stop(mut self) {
        if let Some(p) = self.platform.take() {
            p.stop().await;
        }
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A client of one platform.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

/// Status and JSON body of a response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// Asserts a status and returns the body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }

    /// Asserts an error status and code.
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        assert_eq!(
            self.body["error"], code,
            "unexpected error code; body: {}",
            self.body
        );
        assert!(
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error has a message"
        );
        self.body
    }
}

impl Api {
    pub fn new(base: &str) -> Api {
        Api {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, body }
    }

    pub async fn get(&self, token: &str, path: &str) -> Reply {
        self.send(self.http.get(self.url(path)).bearer_auth(token))
            .await
    }

    pub async fn delete(&self, token: &str, path: &str) -> Reply {
        self.send(self.http.delete(self.url(path)).bearer_auth(token))
            .await
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> Reply {
        self.send(
            self.http
                .post(self.url(path))
                .bearer_auth(token)
                .json(&body),
        )
        .await
    }

    pub async fn put(&self, token: &str, path: &str, body: Value) -> Reply {
        self.send(self.http.put(self.url(path)).bearer_auth(token).json(&body))
            .await
    }

    /// Registers and logs in; returns (token, user id).
    pub async fn user(&self, name: &str) -> (String, String) {
        let u = self
            .send(
                self.http
                    .post(self.url("/auth/register"))
                    .json(&json!({"username": name, "password": "password123"})),
            )
            .await
            .expect(201);
        (
            self.login(name, "password123").await,
            u["id"].as_str().unwrap().to_string(),
        )
    }

    /// Every execution record of the user behind `token`, all pages of
    /// `GET /api/executions` (200 at a time).
    pub async fn all_executions(&self, token: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/executions?limit=200&cursor={c}"),
                None => "/api/executions?limit=200".to_string(),
            };
            let page = self.get(token, &path).await.expect(200);
            all.extend(page["executions"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return all,
            }
        }
    }

    pub async fn login(&self, name: &str, password: &str) -> String {
        let r = self
            .send(
                self.http
                    .post(self.url("/auth/login"))
                    .json(&json!({"username": name, "password": password})),
            )
            .await
            .expect(200);
        r["token"].as_str().unwrap().to_string()
    }

    /// Deploys a wasm module.
    pub async fn deploy(
        &self,
        token: &str,
        name: &str,
        module: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut form = Form::new()
            .text("name", name.to_string())
            .part("module", Part::bytes(module).file_name("fn.wasm"));
        for (k, v) in extra {
            form = form.text(k.to_string(), v.to_string());
        }
        self.send(
            self.http
                .post(self.url("/api/functions"))
                .bearer_auth(token)
                .multipart(form),
        )
        .await
    }

    /// Deploys a committed sample; returns the function id.
    pub async fn deploy_sample(&self, token: &str, sample_name: &str) -> String {
        let f = self
            .deploy(
                token,
                sample_name.trim_end_matches(".wasm"),
                sample(sample_name),
                &[],
            )
            .await
            .expect(201);
        f["id"].as_str().unwrap().to_string()
    }

    /// Submits an execution; returns its id.
    pub async fn submit(&self, token: &str, function_id: &str, input: Value) -> String {
        let e = self
            .post(
                token,
                "/api/executions",
                json!({"function_id": function_id, "input": input}),
            )
            .await
            .expect(202);
        assert_eq!(e["status"], "pending");
        e["id"].as_str().unwrap().to_string()
    }

    /// Polls an execution until it is final.
    pub async fn wait(&self, token: &str, id: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let e = self
                .get(token, &format!("/api/executions/{id}"))
                .await
                .expect(200);
            let s = e["status"].as_str().unwrap_or("");
            if !matches!(s, "pending" | "running") {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "execution {id} still {s} after {within:?}: {e}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Runs a function to its end.
    pub async fn run(&self, token: &str, function_id: &str, input: Value) -> Value {
        let id = self.submit(token, function_id, input).await;
        self.wait(token, &id, Duration::from_secs(60)).await
    }

    /// Uploads raw bytes as an object.
    pub async fn upload(
        &self,
        token: &str,
        fid: &str,
        name: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Reply {
        let req = self
            .http
            .post(self.url(&format!("/api/function-objects/{fid}/{name}")))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(bytes);
        self.send(req).await
    }
}

/// The real binary on an ephemeral port; returns the child and its base URL.
pub fn spawn_serve(
    data: &std::path::Path,
    extra: &[(&str, &str)],
) -> (std::process::Child, String) {
    spawn_serve_logged(data, extra, None)
}

/// Like [`spawn_serve`]; every line the server logs is also appended to `log`.
pub fn spawn_serve_logged(
    data: &std::path::Path,
    extra: &[(&str, &str)],
    log: Option<&Path>,
) -> (std::process::Child, String) {
    spawn_serve_bin(env!("CARGO_BIN_EXE_faas"), data, extra, log)
}

/// Like [`spawn_serve_logged`], with the `faas` binary at `bin` (a benchmark may
/// measure another build).
pub fn spawn_serve_bin(
    bin: &str,
    data: &std::path::Path,
    extra: &[(&str, &str)],
    log: Option<&Path>,
) -> (std::process::Child, String) {
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("serve")
        .env("SERVER_ADDRESS", "127.0.0.1:0")
        .env("FAAS_DATA_DIR", data)
        .env("FAAS_DOCKER", "off")
        .env("FAAS_ACK_WAIT_SECS", "2")
        .env("FAAS_REGISTER_MAX_PER_ADDRESS", "0")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn faas serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut copy = log.map(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .expect("the server's log file")
    });
    std::thread::spawn(move || {
        let mut sent = false;
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            if let Some(file) = copy.as_mut() {
                let _ = std::io::Write::write_all(file, format!("{line}\n").as_bytes());
            }
            if !sent && let Some(rest) = line.split("addr=").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                let _ = tx.send(addr);
                sent = true;
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("faas serve logs its address");
    (child, format!("http://{addr}"))
}

/// A child process killed (and reaped) when dropped: a failed assertion leaves no
/// server running.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
