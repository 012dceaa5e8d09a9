//! NATS as operators run it: a 3-node JetStream cluster on loopback with every
//! stream and bucket replicated 3 times (one node killed mid-run loses nothing),
//! and servers that require credentials and mutual TLS.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/harness.rs"]
mod harness;
#[path = "../runtime/tests/support/nats_server.rs"]
mod nats_server;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use harness::{Api, TestApp};
use nats_server::{NatsServer, free_port};
use serde_json::json;

/// Three nodes routed to each other; returns them and the comma-separated URL.
fn three_nodes() -> (Vec<NatsServer>, String) {
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let routes = ports
        .iter()
        .map(|(_, r)| format!("nats://127.0.0.1:{r}"))
        .collect::<Vec<_>>()
        .join(",");
    let nodes = ports
        .iter()
        .enumerate()
        .map(|(i, (p, r))| {
            let args = [
                format!("--name=n{i}"),
                "--cluster_name=faas-test".into(),
                format!("--cluster=nats://127.0.0.1:{r}"),
                format!("--routes={routes}"),
            ];
            NatsServer::start_with(*p, args.to_vec())
        })
        .collect::<Vec<_>>();
    let url = nodes.iter().map(|n| n.url()).collect::<Vec<_>>().join(",");
    (nodes, url)
}

/// Waits until JetStream on the cluster can create a replicated stream.
async fn wait_for_meta_leader(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let cfg = faas_runtime::nats::NatsConfig {
            stream: "PROBE".into(),
            subject: "probe".into(),
            consumer: "probe".into(),
            replicas: 3,
            ..Default::default()
        };
        match faas_runtime::nats::connect(url, cfg).await {
            Ok(_) => return,
            Err(e) if Instant::now() < deadline => {
                eprintln!("cluster not ready yet: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("the NATS cluster never formed: {e}"),
        }
    }
}

/// Submits until accepted (a 503 during a leader election is not an acceptance).
async fn submit_until_accepted(api: &Api, token: &str, fid: &str, n: u64) -> String {
    for _ in 0..200 {
        let r = api
            .post(
                token,
                "/api/executions",
                json!({"function_id": fid, "input": {"direct_inputs": {"name": format!("n{n}")}}}),
            )
            .await;
        match r.status {
            202 => return r.body["id"].as_str().unwrap().to_string(),
            503 => tokio::time::sleep(Duration::from_millis(100)).await,
            s => panic!("submit answered {s}: {}", r.body),
        }
    }
    panic!("submit {n} was never accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_nats_loses_nothing_when_a_node_dies() {
    let (mut nodes, url) = three_nodes();
    wait_for_meta_leader(&url).await;
    let logs = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = [("FAAS_NATS_REPLICAS", "3"), ("FAAS_ACK_WAIT_SECS", "5")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut api_proc = cluster::spawn(&url, "api", &logs.path().join("api.log"), &env);
    let api = Api::new(&format!("http://{}", cluster::wait_for_addr(&api_proc)));
    let mut workers: Vec<cluster::Proc> = (0..2)
        .map(|i| {
            let w = cluster::spawn(&url, "worker", &logs.path().join(format!("w{i}.log")), &env);
            cluster::wait_for_log(&w, "NATS queue ready", Duration::from_secs(60));
            w
        })
        .collect();
    let (token, _) = api.user("replicated").await;
    let fid = api.deploy_sample(&token, "c-hello.wasm").await;
    let mut ids = Vec::new();
    for n in 0..300u64 {
        if n == 100 {
            nodes[0].stop(); // kill -9 of one node while work is in flight
        }
        ids.push(submit_until_accepted(&api, &token, &fid, n).await);
    }
    let mut finals = HashMap::new();
    for (n, id) in ids.iter().enumerate() {
        let e = api.wait(&token, id, Duration::from_secs(120)).await;
        assert_eq!(e["status"], "completed", "execution {n}: {e}");
        assert_eq!(e["result"]["hello"], format!("n{n}"), "execution {n}");
        finals.insert(id.clone(), e["attempt"].as_u64().unwrap());
    }
    assert_eq!(finals.len(), 300, "every accepted execution is there once");
    let retried = finals.values().filter(|a| **a > 1).count();
    eprintln!("300 of 300 completed after a node died; {retried} needed a second attempt");
    let logs_text: String = workers.iter().map(|w| w.log_text()).collect();
    let stale = logs_text.matches("stale attempt").count();
    assert_eq!(stale, 0, "no execution was finalised twice");
    for w in workers.iter_mut() {
        w.kill9();
    }
    api_proc.kill9();
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate.
fn certificates(dir: &std::path::Path) {
    let run = |args: &str| {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!("cd {} && {args}", dir.display()))
            .output()
            .expect("openssl runs");
        assert!(
            ok.status.success(),
            "{args}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
    };
    run(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=faas-test-ca",
    );
    run("printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext");
    for who in ["server", "client"] {
        run(&format!(
            "openssl req -newkey rsa:2048 -nodes -keyout {who}.key -out {who}.csr -subj /CN={who}"
        ));
        run(&format!(
            "openssl x509 -req -in {who}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out {who}.pem -days 1 -extfile san.ext"
        ));
    }
}

const KEYS: [&str; 2] = [
    "--jwt-secret=nats-auth-test-signing-key-0123456789abcdef",
    "--secrets-key=5f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
];

async fn start_err(extra: &[&str]) -> String {
    let data = tempfile::tempdir().unwrap();
    match faas::platform::Platform::start(harness::config(data.path(), extra)).await {
        Ok(p) => {
            p.stop().await;
            panic!("started with {extra:?}");
        }
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn nats_credentials_are_required_and_used() {
    let nats = NatsServer::start_with(
        free_port(),
        vec!["--user=faas".into(), "--pass=s3cret-pass".into()],
    );
    let url = format!("--nats-url={}", nats.url());
    let mut args = vec![url.as_str(), KEYS[0], KEYS[1]];
    let err = start_err(&args).await;
    assert!(
        err.contains("credentials") || err.contains("uthoriz"),
        "{err}"
    );
    args.push("--nats-user=faas");
    let wrong = [args.clone(), vec!["--nats-password=wrong"]].concat();
    let err = start_err(&wrong).await;
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(!err.contains("s3cret"), "no secret in errors: {err}");
    args.push("--nats-password=s3cret-pass");
    let app = TestApp::start(&args).await;
    let (token, _) = app.api.user("authed").await;
    let fid = app.api.deploy_sample(&token, "c-hello.wasm").await;
    assert_eq!(
        app.api.run(&token, &fid, json!({})).await["status"],
        "completed"
    );
    app.stop().await;
}

#[tokio::test]
async fn nats_mutual_tls_is_required_and_used() {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let p = |f: &str| certs.path().join(f).display().to_string();
    let nats = NatsServer::start_with(
        free_port(),
        vec![
            "--tlsverify".into(),
            format!("--tlscert={}", p("server.pem")),
            format!("--tlskey={}", p("server.key")),
            format!("--tlscacert={}", p("ca.pem")),
        ],
    );
    let url = format!("--nats-url={}", nats.url());
    let ca = format!("--nats-ca={}", p("ca.pem"));
    let cert = format!("--nats-cert={}", p("client.pem"));
    let key = format!("--nats-key={}", p("client.key"));
    let without_cert = [url.as_str(), KEYS[0], KEYS[1], ca.as_str()];
    let err = start_err(&without_cert).await;
    assert!(!err.is_empty(), "a client without a certificate is refused");
    let app = TestApp::start(&[
        url.as_str(),
        KEYS[0],
        KEYS[1],
        &ca,
        &cert,
        &key,
        "--nats-tls",
    ])
    .await;
    let (token, _) = app.api.user("tls").await;
    let fid = app.api.deploy_sample(&token, "c-hello.wasm").await;
    assert_eq!(
        app.api.run(&token, &fid, json!({})).await["status"],
        "completed"
    );
    app.stop().await;
}
