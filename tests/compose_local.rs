//! End to end: the compose stack of `make run-local`, started with the compose CLI of
//! this machine (`docker compose` v2, else `docker-compose`), exactly as the compose
//! section of docs/operations.md says:
//!
//! 1. `deployments/local-images.sh` (what `make images` runs) builds `faas-local` from
//!    this test's binary and `nats-local`, FROM scratch;
//! 2. `deployments/gen-env.sh > .env` writes random secrets (here into a temp file, plus
//!    a unique COMPOSE_PROJECT_NAME, NETWORK_NAME, FAAS_FUNCTIONS_SUBNET and
//!    FAAS_NATS_HOST_PORT, so a shared engine and a developer's stack are safe);
//! 3. `up -d --no-build` with `docker-compose.yml` + `deployments/compose.local.yml`;
//!    every service must turn healthy (`functions-check` exit 0); the functions'
//!    network is internal with inter-container traffic off, as the executor requires;
//! 4. through the published API port: register, log in, deploy a wasm function and an
//!    image function (a busybox probe built FROM scratch here), run both; a wasi:http
//!    function enabled for HTTP answers on each worker's published functions port
//!    (FAAS_HTTP_ADDRESS, `/fn/...`), which has no API route. The probe,
//!    running on the functions' network, reads its granted object at the network's
//!    gateway, is refused the object it was not granted, gets 404 for `/auth/login` on
//!    the capability listener and reaches `/auth/login` nowhere else (`api` does not
//!    resolve; its container address, its published port, the gateway's :8080 and
//!    NATS are unreachable), nor another container listening on its network;
//! 5. `up -d --no-build --no-deps --scale api=2 --scale worker=3 api worker` (only those
//!    two: the autoscaler may already be draining the third worker, which compose must
//!    not wait for): both API replicas answer; the autoscaler (MIN_WORKERS=2, idle
//!    queue) drains one worker;
//! 6. teardown as `make down`: the autoscaler's clones, then `down --volumes
//!    --remove-orphans`; no container, network or volume of the project is left.

#[path = "support/compose_stack.rs"]
mod compose_stack;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/own_binary.rs"]
mod own_binary;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use compose_stack::{Stack, compose_cli, docker, run, text};
use harness::{Api, root, sample};
use serde_json::{Value, json};

const PROBE_IMAGE: &str = "faas-compose-probe:test";

/// The probe function (busybox sh): what a function container reaches.
const PROBE_SCRIPT: &str = include_str!("support/probe-fn.sh");

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

/// This run's own functions' network: `(subnet, gateway)` on a /24 of 10.213.0.0/16
/// (outside Docker's default pools) that no network of the engine uses.
fn free_subnet(seed: u32, except: &[&str]) -> (String, String) {
    let ids = docker(&["network", "ls", "-q"]);
    let mut args = vec![
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
    ];
    args.extend(ids.split_whitespace());
    let used = docker(&args);
    (0..200)
        .map(|i| 20 + (seed + i) % 200)
        .map(|n| (format!("10.213.{n}.0/24"), format!("10.213.{n}.1")))
        .find(|(subnet, _)| !used.contains(subnet.as_str()) && !except.contains(&subnet.as_str()))
        .expect("a free /24 in 10.213.0.0/16")
}

/// This run's services' network: its subnet, the range compose draws from, and the
/// gateway's fixed address outside that range.
struct Services {
    subnet: String,
    dynamic: String,
    gateway: String,
}

fn services_network(seed: u32, functions: &str) -> Services {
    let (subnet, _) = free_subnet(seed.wrapping_add(101), &[functions]);
    let base = subnet.trim_end_matches(".0/24");
    Services {
        dynamic: format!("{base}.128/25"),
        gateway: format!("{base}.2"),
        subnet,
    }
}

/// Sends `n` failed logins, one after the other, to the API (at `api_ip`) from a container holding
/// `from` on the services' network, each with `X-Forwarded-For: forwarded`; the status
/// of each. Plain HTTP over busybox `nc` (busybox `wget` crashes in a FROM-scratch
/// image; see tests/support/probe-fn.sh).
fn logins_from(
    network: &str,
    api_ip: &str,
    from: Option<&str>,
    forwarded: &str,
    n: usize,
) -> Vec<u16> {
    let mut script = String::new();
    for i in 0..n {
        let body = format!(r#"{{"username":"nobody{i:03}","password":"wrong-password"}}"#);
        let request = format!(
            "POST /auth/login HTTP/1.0\\r\\nHost: api\\r\\nX-Forwarded-For: {forwarded}\\r\\n\
             Content-Type: application/json\\r\\nContent-Length: {}\\r\\n\\r\\n{body}",
            body.len()
        );
        // stdin stays open a while: on its EOF nc half-closes, and hyper drops the request.
        script.push_str(&format!(
            "{{ /bin/busybox printf '{request}'; /bin/busybox sleep 3; }} | \
             /bin/busybox nc -w 5 {api_ip} 8080 | /bin/busybox head -n1\n"
        ));
    }
    let mut args = vec!["run", "--rm", "--network", network];
    if let Some(ip) = from {
        args.extend(["--ip", ip]);
    }
    args.extend([
        "--entrypoint",
        "/bin/busybox",
        PROBE_IMAGE,
        "sh",
        "-c",
        &script,
    ]);
    let out = docker(&args);
    out.lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u16>().ok())
        .collect()
}

/// The API believes X-Forwarded-For from the gateway's fixed address only: 3 failed
/// logins "from" one client use that client's attempts (FAAS_LOGIN_MAX_FAILURES_PER_ADDRESS
/// is 3 in this run's `.env`; the 4th is 429) while another
/// client behind the same gateway is still served, and the same header from any other
/// container is ignored (its attempts count on its own address).
fn assert_gateway_is_the_trusted_proxy(project: &str, api_ip: &str, services: &Services) {
    let network = format!("{project}_faas");
    let gateway = Some(services.gateway.as_str());
    let first = logins_from(&network, api_ip, gateway, "198.51.100.7", 4);
    assert_eq!(
        first,
        [401, 401, 401, 429],
        "one forwarded client has its own 3 attempts"
    );
    let other = logins_from(&network, api_ip, gateway, "198.51.100.8", 1);
    assert_eq!(other, vec![401], "another forwarded client is still served");
    let forged = logins_from(&network, api_ip, None, "198.51.100.7", 1);
    assert_eq!(
        forged,
        vec![401],
        "a non-gateway peer cannot borrow a client's count"
    );
}

/// NATS announces that it requires credentials (every faas service presents them).
fn assert_nats_requires_credentials(port: u16) {
    use std::io::BufRead;
    let conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("NATS on loopback");
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut info = String::new();
    std::io::BufReader::new(conn).read_line(&mut info).unwrap();
    assert!(info.contains("\"auth_required\":true"), "NATS INFO: {info}");
}

/// A free loopback port (for NATS, published on loopback for `capabilities`).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `deployments/gen-env.sh` output plus this run's names and quick autoscaler timings.
fn env_file(
    dir: &Path,
    names: (&str, &str),
    net: &(String, String),
    services: &Services,
    nats_port: u16,
    images: &(String, String),
) -> PathBuf {
    let generated = run(&mut Command::new(root().join("deployments/gen-env.sh")));
    assert!(generated.contains("JWT_SECRET=") && generated.contains("FAAS_SECRETS_KEY="));
    assert!(
        generated.contains("NATS_PASSWORD="),
        "NATS requires a password in compose"
    );
    let extra = format!(
        "COMPOSE_PROJECT_NAME={}\nNETWORK_NAME={}\nAPI_PUBLISH=127.0.0.1:\nWORKER_HTTP_PUBLISH=127.0.0.1:\n\
         FAAS_FUNCTIONS_SUBNET={}\nFAAS_FUNCTIONS_GATEWAY={}\nFAAS_NATS_HOST_PORT={}\n\
         FAAS_LOCAL_IMAGE={}\nNATS_LOCAL_IMAGE={}\nCHECK_INTERVAL=2s\nCOOLDOWN_PERIOD=3s\n\
         FAAS_SHUTDOWN_GRACE_SECS=5\nWORKER_STOP_GRACE=30s\n\
         FAAS_SERVICES_SUBNET={}\nFAAS_SERVICES_DYNAMIC={}\nFAAS_GATEWAY_ADDRESS={}\n\
         FAAS_LOGIN_MAX_FAILURES_PER_ADDRESS=3\n",
        names.0,
        names.1,
        net.0,
        net.1,
        nats_port,
        images.0,
        images.1,
        services.subnet,
        services.dynamic,
        services.gateway
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

/// Starts another container on the functions' network listening on :9999 (as another
/// function could) and checks that the host reaches it; its `ip:port`.
fn neighbour(name: &str, network: &str) -> String {
    docker(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        network,
        "--entrypoint",
        "/bin/busybox",
        PROBE_IMAGE,
        "nc",
        "-ll",
        "-p",
        "9999",
        "-e",
        "/bin/busybox",
        "echo",
        "neighbour",
    ]);
    let ip = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        name,
    ]);
    let addr = format!("{ip}:9999");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut got = String::new();
        let read = std::net::TcpStream::connect(&addr).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            std::io::Read::read_to_string(&mut s, &mut got)
        });
        if read.is_ok() && got.contains("neighbour") {
            return addr;
        }
        assert!(
            Instant::now() < deadline,
            "the neighbour at {addr} does not answer the host"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The functions' network compose made: internal, inter-container traffic off (what
/// the workers' Docker executor requires), on this run's subnet.
fn assert_functions_network(network: &str, subnet: &str) {
    let f = "{{.Internal}} {{index .Options \"com.docker.network.bridge.enable_icc\"}} \
             {{range .IPAM.Config}}{{.Subnet}}{{end}}";
    let got = docker(&["network", "inspect", "-f", f, network]);
    assert_eq!(
        got,
        format!("true false {subnet}"),
        "the functions' network"
    );
}

async fn probe_runs(api: &Api, token: &str, unreachable: Value) -> Value {
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
    let input = json!({"object_inputs": {"doc": format!("{fid}/granted.txt")},
                       "direct_inputs": unreachable});
    let run = api.run(token, &fid, input).await;
    assert_eq!(run["status"], "completed", "{run}");
    run["result"].clone()
}

/// A wasi:http function enabled through the API answers on both workers' own
/// functions listeners (FAAS_HTTP_ADDRESS), which serve nothing of the API.
async fn functions_served_by_workers(stack: &Stack, api: &Api, token: &str) {
    let f = api
        .deploy(token, "json-api", sample("rust-http-api.wasm"), &[])
        .await
        .expect(201);
    let fid = f["id"].as_str().unwrap();
    let on = json!({"enabled": true, "access": "public"});
    api.put(token, &format!("/api/functions/{fid}/http"), on)
        .await
        .expect(200);
    for index in [1, 2] {
        let worker = Api::new(&stack.worker_functions(index));
        let got = worker
            .send(
                worker
                    .http
                    .get(worker.url("/fn/ada/json-api/greet?name=compose")),
            )
            .await
            .expect(200);
        assert_eq!(got, json!({"greeting": "hello, compose"}), "worker {index}");
        worker
            .get(token, "/api/me")
            .await
            .expect_error(404, "not_found");
    }
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
    let net = free_subnet(nanos, &[]);
    let services = services_network(nanos, &net.0);
    let nats_port = free_port();
    let names = (project.as_str(), network.as_str());
    let mut stack = Stack {
        cli: compose_cli(),
        env_file: env_file(dir.path(), names, &net, &services, nats_port, &images),
        project: project.clone(),
        network: network.clone(),
        neighbour: format!("{project}-neighbour"),
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
        ("functions-check", 1),
        ("worker", 2),
        ("autoscaler", 1),
    ];
    stack.wait_healthy(&one, Duration::from_secs(120));
    eprintln!("stack healthy after {:?}", started.elapsed());

    stack.assert_hardened();
    assert_functions_network(&network, &net.0);
    assert_nats_requires_credentials(nats_port);
    assert_gateway_is_the_trusted_proxy(&project, &stack.ip_of("api"), &services);

    let api = stack.api(1);
    let (token, _) = api.user("ada").await;
    let wasm = api
        .deploy(&token, "hello", sample("rust-hello.wasm"), &[])
        .await
        .expect(201);
    let wasm_id = wasm["id"].as_str().unwrap().to_string();
    wasm_runs(&api, &token, &wasm_id, "Ada").await;
    functions_served_by_workers(&stack, &api, &token).await;

    let api_port = api.base.rsplit(':').next().unwrap().to_string();
    let unreachable = json!({
        "neighbour": neighbour(&stack.neighbour, &network),
        "api_ip": stack.ip_of("api"),
        "api_port": api_port,
        "nats_port": nats_port.to_string(),
    });
    let probe = probe_runs(&api, &token, unreachable).await;
    eprintln!("probe: {probe}");
    let gateway = format!("http://{}:8081", net.1);
    assert_eq!(
        probe["host"],
        gateway.as_str(),
        "reaches the gateway: {probe}"
    );
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
    for (key, what) in [
        ("main_port_login", "no API port beside the capability route"),
        (
            "api_ip_login",
            "the API container's address is out of reach",
        ),
        (
            "api_published_login",
            "the API's published (loopback) port is out of reach",
        ),
        ("nats", "NATS's loopback port is out of reach"),
        (
            "neighbour",
            "another container on the functions' network is out of reach",
        ),
    ] {
        let got = probe[key].as_str().unwrap_or("");
        assert!(got.starts_with("unreachable"), "{what}: {probe}");
    }

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
        ("functions-check", 1),
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
