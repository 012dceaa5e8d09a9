//! Upgrades keep data: a data directory written by the release before schema
//! versions (tests/fixtures/data-schema1.tar.gz, made by make-data-schema1.sh)
//! opens and works; state of a newer schema is refused and left untouched.

#[path = "support/harness.rs"]
mod harness;

use std::time::Duration;

use faas_runtime::embedded::{Db, EmbeddedKv};
use faas_runtime::store::Store;
use faas_runtime::store::migrate::{META, SCHEMA_VERSION};
use harness::{Api, config};
use serde_json::json;

/// The fixture unpacked into a fresh directory; returns (tempdir, data dir).
fn unpack() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let fixture = harness::root().join("tests/fixtures/data-schema1.tar.gz");
    let ok = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&fixture)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(ok.success(), "unpack {}", fixture.display());
    let data = dir.path().join("data");
    (dir, data)
}

#[tokio::test]
async fn data_of_the_previous_release_opens_and_works() {
    let (_keep, data) = unpack();
    let platform = faas::platform::Platform::start(config(&data, &[]))
        .await
        .expect("a schema-1 data directory opens");
    let api = Api::new(&format!("http://{}", platform.addr.unwrap()));
    let token = api.login("alice", "password123").await;
    api.login("bob", "password123").await;
    let functions = api.get(&token, "/api/functions").await.expect(200);
    let list = functions["functions"].as_array().unwrap();
    assert_eq!(list.len(), 3, "{functions}");
    let hello = list.iter().rev().find(|f| f["name"] == "hello").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let spin = list.iter().find(|f| f["name"] == "spin").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The object and the secret of schema 1, through a function run.
    let obj = api
        .get(&token, &format!("/api/function-objects/{hello}"))
        .await
        .expect(200);
    assert_eq!(obj["objects"][0]["name"], "notes.txt");
    let secrets = api.get(&token, "/api/secrets").await.expect(200);
    assert_eq!(secrets["secrets"][0]["name"], "api_key");
    let e = api
        .run(
            &token,
            &hello,
            json!({"direct_inputs": {"name": "v2"}, "secrets": ["api_key"]}),
        )
        .await;
    assert_eq!(e["status"], "completed", "{e}");
    // Finished and queued executions of schema 1.
    let all = api
        .get(&token, "/api/executions?limit=200")
        .await
        .expect(200);
    let execs = all["executions"].as_array().unwrap();
    assert_eq!(execs.len(), 5, "{all}");
    for x in execs {
        let id = x["id"].as_str().unwrap();
        let done = api.wait(&token, id, Duration::from_secs(60)).await;
        assert_eq!(done["status"], "completed", "{done}");
        if done["function_id"] == spin.as_str() {
            assert_eq!(done["result"]["spun_ms"], 2000);
        }
    }
    // Names taken in schema 1 are now unique (any case), for functions and secrets.
    api.deploy(&token, "HELLO", harness::sample("c-hello.wasm"), &[])
        .await
        .expect_error(409, "conflict");
    api.post(
        &token,
        "/api/secrets",
        json!({"name": "API_KEY", "value": "x"}),
    )
    .await
    .expect_error(409, "conflict");
    platform.stop().await;
    // Opening again is a no-op: the schema is current. A blocking store call of the
    // stopped platform may still be finishing on tokio's blocking pool (it holds the
    // directory's lock until it returns): wait for it, a bounded while.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let db = loop {
        match Db::open(&data) {
            Ok(db) => break db,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("data dir not released yet: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the stopped platform still holds its data dir: {e}"),
        }
    };
    let kv = EmbeddedKv::new(db);
    let m = Store::new(std::sync::Arc::new(kv)).migrate().await.unwrap();
    assert_eq!((m.from, m.to), (SCHEMA_VERSION, SCHEMA_VERSION));
}

#[tokio::test]
async fn state_of_a_newer_schema_is_refused_untouched() {
    let (_keep, data) = unpack();
    {
        let store = Store::new(std::sync::Arc::new(EmbeddedKv::new(
            Db::open(&data).unwrap(),
        )));
        store
            .put_json(
                META,
                "schema",
                &json!({"version": 99, "written_by": "9.9.9"}),
            )
            .await
            .unwrap();
    }
    let before = std::fs::read(data.join("faas.db")).unwrap();
    let err = match faas::platform::Platform::start(config(&data, &[])).await {
        Ok(p) => {
            p.stop().await;
            panic!("a newer schema was opened");
        }
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("schema 99") && err.contains("newer release"),
        "{err}"
    );
    let store = Store::new(std::sync::Arc::new(EmbeddedKv::new(
        Db::open(&data).unwrap(),
    )));
    let names = store
        .kv()
        .count(faas_runtime::store::buckets::FUNCTION_NAMES, "")
        .await
        .unwrap();
    assert_eq!(names, 0, "no migration step ran");
    assert!(!before.is_empty());
}
