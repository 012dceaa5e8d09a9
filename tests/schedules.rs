//! Schedules and retention on both backends, with real processes' worth of
//! platforms: a 1-second schedule runs once per tick (also with two API
//! processes on one NATS), stops when deleted, catches up missed ticks by its
//! policy; retention deletes old finished executions with their stored data.

#[path = "support/harness.rs"]
mod harness;
#[path = "../runtime/tests/support/nats_server.rs"]
mod nats_server;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faas::platform::Platform;
use faas_runtime::ports::{KvStore, Scan};
use faas_runtime::store::buckets;
use harness::{Api, Reply, TestApp, config};
use nats_server::NatsServer;
use serde_json::{Value, json};
use time::OffsetDateTime;

async fn start(nats: Option<&NatsServer>, extra: &[&str]) -> TestApp {
    TestApp::start_on(nats.map(NatsServer::url).as_deref(), extra).await
}

async fn patch(api: &Api, token: &str, path: &str, body: Value) -> Reply {
    api.send(api.http.patch(api.url(path)).bearer_auth(token).json(&body))
        .await
}

/// The function's executions (summaries), oldest first.
async fn executions(api: &Api, token: &str, fid: &str) -> Vec<Value> {
    let page = api
        .get(
            token,
            &format!("/api/executions?function_id={fid}&limit=200"),
        )
        .await
        .expect(200);
    let mut all = page["executions"].as_array().unwrap().clone();
    all.reverse();
    all
}

/// The tick of an execution a schedule made: the millisecond time of its UUID v7.
fn tick_ms(id: &str) -> u64 {
    u64::from_str_radix(&id.replace('-', "")[..12], 16).unwrap()
}

async fn schedule(api: &Api, token: &str, fid: &str, body: Value) -> String {
    let s = api
        .post(token, &format!("/api/functions/{fid}/schedules"), body)
        .await
        .expect(201);
    s["id"].as_str().unwrap().to_string()
}

/// A 1-second schedule on `apps` (one or more processes on the same state):
/// 4-6 executions in 5 s, one per tick, each carrying the schedule's id and
/// finishing; none once it is deleted.
async fn one_per_tick(apps: &[&TestApp]) {
    let api = &apps[0].api;
    let (t, _) = api.user("ada").await;
    let fid = api.deploy_sample(&t, "rust-hello.wasm").await;
    let input = json!({"direct_inputs": {"name": "tick"}});
    let sid = schedule(
        api,
        &t,
        &fid,
        json!({"cron": "* * * * * *", "input": input}),
    )
    .await;
    let path = format!("/api/functions/{fid}/schedules/{sid}");
    let s = api.get(&t, &path).await.expect(200);
    assert_eq!(s["enabled"], true);
    assert_eq!(s["alias"], "latest");
    assert_eq!(s["catch_up"], "latest");
    assert_eq!(s["timezone"], "UTC");
    assert!(s["next_run_at"].is_string(), "{s}");
    let listed = api
        .get(&t, &format!("/api/functions/{fid}/schedules"))
        .await;
    assert_eq!(listed.expect(200)["schedules"][0]["id"], sid.as_str());

    tokio::time::sleep(Duration::from_secs(5)).await;
    api.delete(&t, &path).await.expect(204);
    // A tick being handled as the schedule was deleted may still land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let made = executions(api, &t, &fid).await;
    assert!(
        (4..=6).contains(&made.len()),
        "{} executions in 5 s: {made:?}",
        made.len()
    );
    let mut per_tick: BTreeMap<u64, usize> = BTreeMap::new();
    for e in &made {
        assert_eq!(e["schedule_id"], sid.as_str(), "{e}");
        *per_tick
            .entry(tick_ms(e["id"].as_str().unwrap()))
            .or_default() += 1;
    }
    assert!(per_tick.values().all(|n| *n == 1), "{per_tick:?}");
    assert!(
        per_tick.keys().all(|ms| ms % 1000 == 0),
        "ticks on whole seconds: {per_tick:?}"
    );
    let last = made.last().unwrap()["id"].as_str().unwrap().to_string();
    let e = api.wait(&t, &last, Duration::from_secs(30)).await;
    assert_eq!(e["status"], "completed", "{e}");
    assert_eq!(e["schedule_id"], sid.as_str());
    assert_eq!(e["result"]["hello"], "tick");

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = executions(api, &t, &fid).await;
    assert_eq!(after.len(), made.len(), "executions after the delete");
    api.get(&t, &path).await.expect_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_one_second_schedule_runs_once_per_tick_until_deleted_embedded() {
    let app = start(None, &[]).await;
    one_per_tick(&[&app]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_api_processes_on_nats_make_one_execution_per_tick() {
    let nats = NatsServer::start();
    let a = start(Some(&nats), &[]).await;
    let b = start(Some(&nats), &[]).await;
    one_per_tick(&[&a, &b]).await;
    // Deleting a function deletes its schedules.
    let (t, _) = a.api.user("bob").await;
    let fid = a.api.deploy_sample(&t, "rust-hello.wasm").await;
    let sid = schedule(&a.api, &t, &fid, json!({"cron": "0 0 1 1 *"})).await;
    let kv = faas_runtime::nats::connect(&nats.url(), Default::default())
        .await
        .unwrap()
        .kv;
    assert!(kv.get(buckets::SCHEDULES, &sid).await.unwrap().is_some());
    a.api
        .delete(&t, &format!("/api/functions/{fid}"))
        .await
        .expect(204);
    assert!(kv.get(buckets::SCHEDULES, &sid).await.unwrap().is_none());
    let index = Scan {
        prefix: format!("{fid}."),
        ..Scan::default()
    };
    assert!(
        kv.scan(buckets::SCHEDULES_BY_FUNCTION, index)
            .await
            .unwrap()
            .is_empty()
    );
    a.stop().await;
    b.stop().await;
}

async fn refusals(nats: Option<&NatsServer>) {
    let app = start(nats, &[]).await;
    let api = &app.api;
    let (t, _) = api.user("ada").await;
    let (other, _) = api.user("eve").await;
    let fid = api.deploy_sample(&t, "rust-hello.wasm").await;
    let base = format!("/api/functions/{fid}/schedules");
    for (body, needle) in [
        (json!({"cron": "* * * *"}), "5 fields"),
        (json!({"cron": "61 * * * *"}), "61"),
        (json!({"cron": "* * * * FOO"}), "FOO"),
        (json!({"cron": "0 0 30 2 *"}), "never matches"),
        (
            json!({"cron": "* * * * *", "timezone": "Mars/Olympus"}),
            "time zone",
        ),
        (json!({"cron": "* * * * *", "alias": "../x"}), "alias"),
    ] {
        let e = api.post(&t, &base, body.clone()).await;
        let e = e.expect_error(400, "invalid_schedule");
        assert!(
            e["message"].as_str().unwrap().contains(needle),
            "{body}: {e}"
        );
    }
    api.post(
        &t,
        &base,
        json!({"cron": "* * * * *", "input": {"secrets": ["nope"]}}),
    )
    .await
    .expect_error(400, "unknown_secret");
    api.post(&t, &base, json!({"cron": "* * * * *", "every": 1}))
        .await
        .expect_error(400, "malformed_json");
    let big = "x".repeat(1100 * 1024);
    let r = api
        .post(&t, &base, json!({"cron": "* * * * *", "input": {"x": big}}))
        .await;
    assert_eq!(r.status, 413, "{}", r.body);
    let sid = schedule(
        api,
        &t,
        &fid,
        json!({"cron": "0 9 * * MON-FRI", "timezone": "Europe/Berlin", "enabled": false}),
    )
    .await;
    let path = format!("{base}/{sid}");
    // Another user sees nothing of it.
    api.get(&other, &path).await.expect_error(404, "not_found");
    api.get(&other, &base).await.expect_error(404, "not_found");
    patch(api, &other, &path, json!({"enabled": true}))
        .await
        .expect_error(404, "not_found");
    api.delete(&other, &path)
        .await
        .expect_error(404, "not_found");
    api.post(&other, &base, json!({"cron": "* * * * *"}))
        .await
        .expect_error(404, "not_found");
    api.get(&t, &format!("{base}/not-a-schedule"))
        .await
        .expect_error(404, "not_found");
    api.get("bad-token", &path)
        .await
        .expect_error(401, "unauthorized");
    // The owner changes it; an invalid change changes nothing.
    let s = api.get(&t, &path).await.expect(200);
    assert!(s["next_run_at"].is_null(), "disabled: {s}");
    patch(api, &t, &path, json!({"cron": "nope"}))
        .await
        .expect_error(400, "invalid_schedule");
    let s = patch(api, &t, &path, json!({"enabled": true, "catch_up": "none"}))
        .await
        .expect(200);
    assert_eq!(s["enabled"], true);
    assert_eq!(s["catch_up"], "none");
    assert_eq!(s["cron"], "0 9 * * MON-FRI");
    assert!(
        s["next_run_at"].as_str().unwrap().ends_with(":00:00Z"),
        "{s}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_schedules_and_other_users_are_refused_embedded() {
    refusals(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_schedules_and_other_users_are_refused_nats() {
    let nats = NatsServer::start();
    refusals(Some(&nats)).await;
}

/// A 6-field expression matching one second of the year.
fn once_at(t: OffsetDateTime) -> String {
    format!(
        "{} {} {} {} {} *",
        t.second(),
        t.minute(),
        t.hour(),
        t.day(),
        u8::from(t.month())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tick_missed_while_down_runs_once_with_latest_and_not_with_none() {
    let mut app = start(None, &[]).await;
    let (t, _) = app.api.user("ada").await;
    let latest = app.api.deploy_sample(&t, "rust-hello.wasm").await;
    let none = app
        .api
        .deploy(&t, "other", harness::sample("rust-hello.wasm"), &[])
        .await;
    let none = none.expect(201)["id"].as_str().unwrap().to_string();
    let tick = OffsetDateTime::now_utc() + time::Duration::seconds(5);
    let tick = tick.replace_nanosecond(0).unwrap();
    schedule(&app.api, &t, &latest, json!({"cron": once_at(tick)})).await;
    schedule(
        &app.api,
        &t,
        &none,
        json!({"cron": once_at(tick), "catch_up": "none"}),
    )
    .await;
    let down = Instant::now();
    app.platform.take().unwrap().stop().await;
    assert!(
        down.elapsed() < Duration::from_secs(4),
        "stopped before the tick"
    );
    // Down across the tick and past the 10 s after which a tick counts as missed.
    let up_at = tick + time::Duration::seconds(11);
    while OffsetDateTime::now_utc() < up_at {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let p = Platform::start(config(app.data.path(), &[])).await.unwrap();
    let api = Api::new(&format!("http://{}", p.addr.unwrap()));
    let deadline = Instant::now() + Duration::from_secs(10);
    let caught = loop {
        let made = executions(&api, &t, &latest).await;
        if !made.is_empty() || Instant::now() > deadline {
            break made;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(caught.len(), 1, "{caught:?}");
    assert_eq!(
        tick_ms(caught[0]["id"].as_str().unwrap()),
        (tick.unix_timestamp() * 1000) as u64
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(executions(&api, &t, &none).await.is_empty());
    assert_eq!(executions(&api, &t, &latest).await.len(), 1);
    p.stop().await;
}

/// Retention of 4 s swept every second: an execution that ended more than 4 s ago
/// goes with its spilled input, output and logs; a newer one stays whole.
async fn retention(nats: Option<&NatsServer>) {
    let mut app = start(nats, &["--retention-secs=4", "--retention-sweep-secs=1"]).await;
    let api = app.api.clone();
    let (t, _) = api.user("ada").await;
    let fid = api.deploy_sample(&t, "rust-hello.wasm").await;
    // 40 KB in, out and in the logs: all three are stored as chunks.
    let name = "n".repeat(40 * 1024);
    let input = json!({"direct_inputs": {"name": name}});
    let old = api.run(&t, &fid, input.clone()).await;
    assert_eq!(old["status"], "completed");
    let old = old["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let new = api.run(&t, &fid, input).await;
    let new = new["id"].as_str().unwrap().to_string();
    let began = Instant::now();
    while api.get(&t, &format!("/api/executions/{old}")).await.status == 200 {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "the old execution stays"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.get(&t, &format!("/api/executions/{old}"))
        .await
        .expect_error(404, "not_found");
    let kept = api
        .get(&t, &format!("/api/executions/{new}"))
        .await
        .expect(200);
    assert_eq!(kept["result"]["hello"].as_str().unwrap().len(), 40 * 1024);
    let listed = executions(&api, &t, &fid).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let kv: Arc<dyn KvStore> = match nats {
        Some(n) => Arc::new(
            faas_runtime::nats::connect(&n.url(), Default::default())
                .await
                .unwrap()
                .kv,
        ),
        None => {
            app.platform.take().unwrap().stop().await;
            let db = faas_runtime::embedded::Db::open(app.data.path()).unwrap();
            Arc::new(faas_runtime::embedded::EmbeddedKv::new(db))
        }
    };
    let chunks = |id: &str| Scan {
        prefix: format!("{id}."),
        ..Scan::default()
    };
    assert!(
        kv.scan(buckets::EXECUTION_DATA, chunks(&old))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        kv.scan(buckets::EXECUTION_DATA, chunks(&new))
            .await
            .unwrap()
            .len()
            >= 3
    );
    assert!(kv.get(buckets::EXECUTIONS, &old).await.unwrap().is_none());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retention_deletes_an_old_execution_and_its_outputs_and_keeps_a_new_one_embedded() {
    retention(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retention_deletes_an_old_execution_and_its_outputs_and_keeps_a_new_one_nats() {
    let nats = NatsServer::start();
    retention(Some(&nats)).await;
}
