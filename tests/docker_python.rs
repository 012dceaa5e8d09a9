//! A real Python image function through `faas serve` (the real binary) on the machine's
//! Docker engine: `samples/docker/python-fn` on the Debian base image that
//! `scripts/python-base-image.sh` makes with debootstrap (no registry), run with an
//! object (read over the capability `API_BASE_URL`) and a secret.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/images.rs"]
mod images;

use std::time::Duration;

use harness::{Api, KillOnDrop, spawn_serve};
use serde_json::json;
use sha2::{Digest, Sha256};

const SECRET: &str = "py-secret-7f3a9c1e5b";
const OBJECT: &str = "the quick brown fox\njumps over the lazy dog\n";

#[tokio::test]
async fn a_python_image_function_reads_an_object_and_a_secret() {
    let image = images::python_fn_image();
    let data = tempfile::tempdir().unwrap();
    let (child, base) = spawn_serve(data.path(), &[("FAAS_DOCKER", "on")]);
    let _server = KillOnDrop(child);
    let api = Api::new(&base);
    let (t, _) = api.user("ada").await;
    let f = api
        .post(&t, "/api/functions", json!({"name": "words", "image_url": image, "pull_policy": "never", "timeout_secs": 60, "memory_mb": 128}))
        .await
        .expect(201);
    assert_eq!(f["runtime"], "docker");
    let fid = f["id"].as_str().unwrap();
    api.upload(
        &t,
        fid,
        "report.txt",
        OBJECT.as_bytes().to_vec(),
        "text/plain",
    )
    .await
    .expect(201);
    api.post(
        &t,
        "/api/secrets",
        json!({"name": "api_token", "value": SECRET}),
    )
    .await
    .expect(201);

    let started = std::time::Instant::now();
    let id = api
        .submit(&t, fid, json!({"direct_inputs": {"name": "Ada"}, "object_inputs": {"doc": format!("{fid}/report.txt")}, "secrets": ["api_token"]}))
        .await;
    let run = api.wait(&t, &id, Duration::from_secs(120)).await;
    println!("python-fn ran in {:?}", started.elapsed());
    assert_eq!(run["status"], "completed", "{run}");
    let result = &run["result"];
    assert_eq!(result["hello"], "Ada");
    assert_eq!(
        result["execution_id"],
        id.as_str(),
        "FAAS_EXECUTION_ID is set"
    );
    assert!(
        result["python"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "{result}"
    );
    assert_eq!(
        result["objects"]["doc"],
        json!({"bytes": OBJECT.len(), "words": 9, "text": OBJECT}),
        "the object's content, read over API_BASE_URL"
    );
    let digest = format!("{:x}", Sha256::digest(SECRET.as_bytes()));
    assert_eq!(
        result["api_token"],
        json!({"present": true, "length": SECRET.len(), "sha256_12": &digest[..12]}),
        "the secret arrived intact as API_TOKEN"
    );
    let logs = run["logs"].as_str().unwrap_or_default();
    assert!(
        logs.contains(&format!("python-fn: read doc ({} bytes)", OBJECT.len())),
        "stderr is kept as the logs: {logs:?}"
    );
    assert!(logs.contains("python-fn: done, 1 objects"), "{logs:?}");
    assert!(!logs.contains(SECRET), "no secret in the logs");
    assert!(
        !run["output"].as_str().unwrap_or_default().contains(SECRET),
        "no secret in the output"
    );

    // Without the secret and the object: the function runs without network, sees no
    // API_TOKEN, and still completes.
    let bare = api.run(&t, fid, json!({})).await;
    assert_eq!(bare["status"], "completed", "{bare}");
    assert_eq!(bare["result"]["api_token"], json!({"present": false}));
    assert_eq!(bare["result"]["objects"], json!({}));
}
