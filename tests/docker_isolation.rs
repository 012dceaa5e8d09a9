//! Isolation of image functions on a shared Docker engine, through `faas serve`: with
//! the API bound to every address, the functions' gateway answers only the capability
//! routes; two installations on one engine leave each other's containers alone; the
//! image of a deleted function goes once no function uses it (only if the platform
//! pulled it).

#[path = "support/harness.rs"]
mod harness;
#[path = "../executors/tests/fixtures/docker/registry.rs"]
mod registry;

use std::process::Command;
use std::time::{Duration, Instant};

use faas::platform::Platform;
use harness::Api;
use serde_json::json;

/// A network name unique to this test process.
fn network(test: &str) -> String {
    format!("faas-test-{test}-{}", std::process::id())
}

/// Removes the network when the test ends, also when it fails.
struct RemoveNetwork(String);

impl Drop for RemoveNetwork {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["network", "rm", &self.0])
            .output();
    }
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Builds `tag`: FROM scratch, busybox, `ENTRYPOINT ["/bin/busybox","sh","-c",script]`.
fn build(tag: &str, script: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/busybox", dir.path().join("busybox"))
        .expect("busybox-static at /bin/busybox (make test installs it)");
    let entrypoint = json!(["/bin/busybox", "sh", "-c", script, "fn"]);
    let dockerfile = format!("FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT {entrypoint}\n");
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    let ok = Command::new("docker")
        .args(["build", "-q", "-t", tag, "."])
        .current_dir(dir.path())
        .output()
        .expect("docker CLI");
    assert!(ok.status.success(), "docker build of {tag}");
}

/// A platform with the Docker executor on `network`, sweeping every second.
async fn platform(data: &std::path::Path, network: &str, everywhere: bool) -> (Platform, u16) {
    let network = format!("--network-name={network}");
    let mut config = harness::config(
        data,
        &["--docker=on", "--reap-interval-secs=1", network.as_str()],
    );
    if everywhere {
        config.addr = "0.0.0.0:0".parse().unwrap();
    }
    let platform = Platform::start(config).await.expect("platform starts");
    let port = platform.addr.expect("the API listens").port();
    (platform, port)
}

fn gateway_of(network: &str) -> String {
    docker(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        network,
    ])
}

#[tokio::test]
async fn the_gateway_answers_only_capability_routes_when_the_api_listens_everywhere() {
    let image = "faas-test-gateway-reader:busybox";
    build(
        image,
        "v=$(/bin/busybox wget -qO- \"$API_BASE_URL/$FAAS_FUNCTION_ID/notes.txt\") || exit 3; \
         echo \"{\\\"got\\\":\\\"$v\\\"}\"",
    );
    let name = network("gateway");
    let _network = RemoveNetwork(name.clone());
    let data = tempfile::tempdir().unwrap();
    let (platform, port) = platform(data.path(), &name, true).await;
    let gateway = Api::new(&format!("http://{}:{port}", gateway_of(&name)));
    let local = Api::new(&format!("http://127.0.0.1:{port}"));
    let login = json!({"username": "root", "password": "rootpassword"});
    let post_login = |api: &Api| api.http.post(api.url("/auth/login")).json(&login);
    local.send(post_login(&local)).await.expect(200);
    gateway
        .send(post_login(&gateway))
        .await
        .expect_error(404, "not_found");
    gateway
        .get("", "/api/functions")
        .await
        .expect_error(404, "not_found");
    gateway
        .get("", "/readyz")
        .await
        .expect_error(404, "not_found");
    let (t, _) = local.user("ada").await;
    let f = local
        .post(&t, "/api/functions", json!({"name": "reader", "image_url": image, "pull_policy": "never", "timeout_secs": 30}))
        .await
        .expect(201);
    let fid = f["id"].as_str().unwrap();
    local
        .upload(&t, fid, "notes.txt", b"hello".to_vec(), "text/plain")
        .await
        .expect(201);
    let run = local
        .run(
            &t,
            fid,
            json!({"object_inputs": {"doc": format!("{fid}/notes.txt")}}),
        )
        .await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        run["result"]["got"], "hello",
        "the object came over the gateway"
    );
    platform.stop().await;
}

/// The containers labelled with `execution`.
fn containers_of(execution: &str) -> Vec<String> {
    let filter = format!("label=faas.execution-id={execution}");
    docker(&["ps", "-aq", "--filter", &filter])
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn two_installations_on_one_engine_leave_each_others_containers_alone() {
    let image = "faas-test-isolation-sleeper:busybox";
    build(image, "/bin/busybox sleep 5; echo '{\"slept\":true}'");
    let name = network("installations");
    let _network = RemoveNetwork(name.clone());
    let (a_data, b_data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, a_port) = platform(a_data.path(), &name, false).await;
    let (b, _) = platform(b_data.path(), &name, false).await;
    let api = Api::new(&format!("http://127.0.0.1:{a_port}"));
    let (t, _) = api.user("ada").await;
    let f = api
        .post(&t, "/api/functions", json!({"name": "sleeper", "image_url": image, "pull_policy": "never", "timeout_secs": 60}))
        .await
        .expect(201);
    let id = api.submit(&t, f["id"].as_str().unwrap(), json!({})).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while containers_of(&id).is_empty() {
        assert!(Instant::now() < deadline, "the function's container starts");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // B sweeps every second and does not know the execution.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !containers_of(&id).is_empty(),
        "the other installation removed the container"
    );
    let done = api.wait(&t, &id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["attempt"], 1, "ran once, never interrupted");
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn a_deleted_functions_pulled_image_is_removed_and_a_provided_one_kept() {
    let registry = registry::start().await;
    let pulled = format!(
        "{}/faas-test/deleted-{}:1",
        registry.host,
        std::process::id()
    );
    let provided = "faas-test-provided-kept:busybox";
    build(provided, "echo '{}'");
    let name = network("image-removal");
    let _network = RemoveNetwork(name.clone());
    let data = tempfile::tempdir().unwrap();
    let (platform, port) = platform(data.path(), &name, false).await;
    let api = &Api::new(&format!("http://127.0.0.1:{port}"));
    let (t, _) = api.user("ada").await;
    let mut ids = Vec::new();
    for (name, image, policy) in [
        ("pulled", pulled.as_str(), "always"),
        ("provided", provided, "never"),
    ] {
        let f = api
            .post(&t, "/api/functions", json!({"name": name, "image_url": image, "pull_policy": policy, "timeout_secs": 30}))
            .await
            .expect(201);
        let id = f["id"].as_str().unwrap().to_string();
        let run = api.run(&t, &id, json!({})).await;
        assert_eq!(run["status"], "completed", "{run}");
        ids.push(id);
    }
    // A sweep while the functions exist keeps both images.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!docker(&["images", "-q", &pulled]).is_empty());
    for id in &ids {
        api.delete(&t, &format!("/api/functions/{id}"))
            .await
            .expect(204);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while !docker(&["images", "-q", &pulled]).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the pulled image of the deleted function is still there"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !docker(&["images", "-q", provided]).is_empty(),
        "the image the operator provided stays"
    );
    platform.stop().await;
}

#[tokio::test]
async fn an_image_outside_the_allow_list_is_refused_at_deploy_naming_the_patterns() {
    let name = network("allow-list");
    let _network = RemoveNetwork(name.clone());
    let data = tempfile::tempdir().unwrap();
    let network = format!("--network-name={name}");
    let config = harness::config(
        data.path(),
        &[
            "--docker=on",
            network.as_str(),
            "--allowed-images=registry.local/team/*,python:3.*",
        ],
    );
    let platform = Platform::start(config).await.expect("platform starts");
    let api = Api::new(&format!("http://{}", platform.addr.unwrap()));
    let (t, _) = api.user("ada").await;
    let refused = api
        .post(
            &t,
            "/api/functions",
            json!({"name": "other", "image_url": "alpine:3", "pull_policy": "never"}),
        )
        .await
        .expect_error(400, "invalid_image");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains("registry.local/team/*, python:3.*"),
        "{message}"
    );
    api.post(
        &t,
        "/api/functions",
        json!({"name": "ok", "image_url": "python:3.12"}),
    )
    .await
    .expect(201);
    platform.stop().await;
}
