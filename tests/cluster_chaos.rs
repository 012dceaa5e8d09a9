//! Chaos with real processes: nats-server, 1 `faas api`, 2 `faas worker`.
//! While >= 500 executions (mostly rust-hello, some c-spin of 1-3 s) run:
//! kill -9 a worker (and start a replacement), restart nats-server, SIGSTOP a
//! worker past the ack wait and SIGCONT it. Then every accepted execution (202)
//! must exist, be final, stay final (same record seconds later) and be completed.
//!
//! Needs `nats-server` on PATH (`make test-deps`).

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/harness.rs"]
mod harness;
#[path = "../runtime/tests/support/nats_server.rs"]
mod nats_server;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cluster::Cluster;
use harness::Api;
use serde_json::{Value, json};

const TOTAL: usize = 520;
/// Every SPIN_EVERY-th submission is a c-spin of 1-3 s.
const SPIN_EVERY: usize = 13;
const ACK_WAIT_SECS: u64 = 3;

/// Submits until a 202 (retrying 503s and connection errors with backoff);
/// returns the id. An ambiguous failure (request sent, no answer) may leave an
/// extra execution that is not counted; a 202 is always counted.
async fn submit(api: &Api, token: &str, fid: &str, input: Value, retries: &AtomicUsize) -> String {
    let mut delay = Duration::from_millis(50);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let res = api
            .http
            .post(api.url("/api/executions"))
            .bearer_auth(token)
            .timeout(Duration::from_secs(10))
            .json(&json!({"function_id": fid, "input": input}))
            .send()
            .await;
        match res {
            Ok(r) if r.status().as_u16() == 202 => {
                let body: Value = r.json().await.expect("202 body");
                return body["id"].as_str().expect("id").to_string();
            }
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                assert!(
                    matches!(status, 503 | 500 | 502 | 504),
                    "submit answered {status}: {text}"
                );
            }
            Err(_) => {}
        }
        assert!(Instant::now() < deadline, "submits kept failing for 90 s");
        retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(800));
    }
}

/// GET an execution, retrying transport errors and 5xx (NATS may be coming back).
async fn fetch(api: &Api, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = api
            .http
            .get(api.url(&format!("/api/executions/{id}")))
            .bearer_auth(token)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        if let Ok(r) = r {
            let status = r.status().as_u16();
            if status == 200 {
                return r.json().await.expect("execution body");
            }
            assert!(status >= 500, "GET {id} answered {status} (lost?)");
        }
        assert!(Instant::now() < deadline, "GET {id} kept failing");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn is_final(e: &Value) -> bool {
    !matches!(e["status"].as_str().unwrap_or(""), "pending" | "running")
}

/// The fields of a final record that must never change afterwards.
fn final_fingerprint(e: &Value) -> String {
    format!(
        "{}|{}|{}|{}|{}|{}",
        e["status"], e["attempt"], e["output"], e["error"], e["completed_at"], e["started_at"]
    )
}

fn log(t0: Instant, msg: &str) {
    println!("[{:>6.1}s] {msg}", t0.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_kill_restart_stall_loses_nothing() {
    let t0 = Instant::now();
    let ack = ACK_WAIT_SECS.to_string();
    let cluster = Cluster::start(
        2,
        &[
            ("FAAS_ACK_WAIT_SECS", ack.as_str()),
            ("FAAS_MAX_ATTEMPTS", "10"),
            ("MAX_CONCURRENT_EXECUTIONS", "8"),
        ],
    );
    let api = Api::new(&cluster.base);
    let cluster = Arc::new(std::sync::Mutex::new(cluster));
    log(t0, "cluster up (nats-server, 1 api, 2 workers)");
    let (token, _) = api.user("chaos").await;
    let hello = api.deploy_sample(&token, "rust-hello.wasm").await;
    let spin = api.deploy_sample(&token, "c-spin.wasm").await;

    // Submitters: 4 tasks, paced so submission spans the chaos window (~25 s).
    let retries = Arc::new(AtomicUsize::new(0));
    let submitted = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for s in 0..4usize {
        let (api, token, hello, spin) = (api.clone(), token.clone(), hello.clone(), spin.clone());
        let (retries, submitted) = (retries.clone(), submitted.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut i = s;
            while i < TOTAL {
                let (fid, input, kind) = if i % SPIN_EVERY == 0 {
                    let ms = 1000 + (i * 137) % 2001;
                    (&spin, json!({"direct_inputs": {"ms": ms}}), "spin")
                } else {
                    (
                        &hello,
                        json!({"direct_inputs": {"name": format!("n{i}")}}),
                        "hello",
                    )
                };
                let id = submit(&api, &token, fid, input, &retries).await;
                submitted.fetch_add(1, Ordering::Relaxed);
                ids.push((id, kind, i));
                i += 4;
                tokio::time::sleep(Duration::from_millis(180)).await;
            }
            ids
        }));
    }

    // Chaos, on a blocking thread (signals and process waits are synchronous).
    let chaos = {
        let cluster = cluster.clone();
        let submitted = submitted.clone();
        tokio::task::spawn_blocking(move || {
            let at = |secs: f64| {
                let t = Duration::from_secs_f64(secs);
                let now = t0.elapsed();
                if t > now {
                    std::thread::sleep(t - now);
                }
            };
            let base = t0.elapsed().as_secs_f64();
            at(base + 4.0);
            {
                let mut c = cluster.lock().unwrap();
                log(
                    t0,
                    &format!(
                        "kill -9 worker pid {} ({} submitted)",
                        c.workers[0].pid(),
                        submitted.load(Ordering::Relaxed)
                    ),
                );
                c.kill_worker(0);
            }
            std::thread::sleep(Duration::from_secs(1));
            {
                let mut c = cluster.lock().unwrap();
                c.add_worker();
                log(
                    t0,
                    &format!("replacement worker pid {}", c.workers.last().unwrap().pid()),
                );
            }
            at(base + 10.0);
            {
                let mut c = cluster.lock().unwrap();
                log(
                    t0,
                    &format!(
                        "nats-server down ({} submitted)",
                        submitted.load(Ordering::Relaxed)
                    ),
                );
                c.restart_nats(Duration::from_secs(2));
                log(t0, "nats-server up again (same port and store)");
            }
            at(base + 16.0);
            {
                let mut c = cluster.lock().unwrap();
                log(
                    t0,
                    &format!(
                        "SIGSTOP worker pid {} ({} submitted)",
                        c.workers[0].pid(),
                        submitted.load(Ordering::Relaxed)
                    ),
                );
                c.stop_worker(0);
            }
            std::thread::sleep(Duration::from_secs(ACK_WAIT_SECS * 2 + 1));
            {
                let mut c = cluster.lock().unwrap();
                c.cont_worker(0);
                log(t0, &format!("SIGCONT worker pid {}", c.workers[0].pid()));
            }
        })
    };

    let mut ids: Vec<(String, &'static str, usize)> = Vec::new();
    for t in tasks {
        ids.extend(t.await.expect("submitter"));
    }
    log(
        t0,
        &format!(
            "{} submits accepted (202), {} retried",
            ids.len(),
            retries.load(Ordering::Relaxed)
        ),
    );
    chaos.await.expect("chaos thread");
    cluster.lock().unwrap().assert_alive();
    assert!(ids.len() >= 500);
    let unique: std::collections::HashSet<_> = ids.iter().map(|x| &x.0).collect();
    assert_eq!(unique.len(), ids.len(), "distinct ids");

    // Every accepted execution becomes final.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut first: BTreeMap<String, Value> = BTreeMap::new();
    loop {
        for (id, _, _) in &ids {
            if first.contains_key(id) {
                continue;
            }
            let e = fetch(&api, &token, id).await;
            if is_final(&e) {
                first.insert(id.clone(), e);
            }
        }
        if first.len() == ids.len() {
            break;
        }
        if Instant::now() > deadline {
            let open: Vec<_> = ids
                .iter()
                .filter(|x| !first.contains_key(&x.0))
                .take(10)
                .collect();
            panic!(
                "{} of {} not final after 90 s, e.g. {open:?}",
                ids.len() - first.len(),
                ids.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let all_final = t0.elapsed();
    log(t0, "every accepted execution is final");

    // Exactly one final state: the record does not change afterwards (a stale
    // attempt from the resumed or killed worker must not overwrite it).
    tokio::time::sleep(Duration::from_secs(ACK_WAIT_SECS + 2)).await;
    let mut changed = Vec::new();
    for (id, _, _) in &ids {
        let again = fetch(&api, &token, id).await;
        if final_fingerprint(&again) != final_fingerprint(&first[id]) {
            changed.push(format!(
                "{id}: {} -> {}",
                final_fingerprint(&first[id]),
                final_fingerprint(&again)
            ));
        }
    }

    // Nothing else is left open either (e.g. an execution created by a submit whose
    // answer was lost while NATS restarted): list every record of the user. Such a
    // record's rollback may have failed too; the API's reconciler then queues it once
    // it is 30 s old (a pass every 15 s), so it may take up to ~50 s to end.
    let settle = Instant::now() + Duration::from_secs(60);
    let (listed, open) = loop {
        let (listed, open) = list_open(&api, &token).await;
        if open.is_empty() || Instant::now() > settle {
            break (listed, open);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut redelivered = 0;
    let mut redelivered_spins = 0;
    let mut max_attempt = 0;
    let mut wrong_output = Vec::new();
    for (id, kind, i) in &ids {
        let e = &first[id];
        *by_status
            .entry(e["status"].as_str().unwrap().to_string())
            .or_default() += 1;
        let attempt = e["attempt"].as_u64().unwrap_or(0);
        max_attempt = max_attempt.max(attempt);
        if attempt > 1 {
            redelivered += 1;
            if *kind == "spin" {
                redelivered_spins += 1;
            }
        }
        if *kind == "hello" && e["status"] == "completed" {
            let out = e["output"].as_str().unwrap_or("");
            if !out.contains(&format!("n{i}")) {
                wrong_output.push(format!("{id}: {out}"));
            }
        }
    }
    let (stale, lease_lost) = {
        let c = cluster.lock().unwrap();
        (
            c.count_in_worker_logs("stale attempt: a newer write won"),
            c.count_in_worker_logs("lease lost: another attempt owns"),
        )
    };
    let completed = by_status.get("completed").copied().unwrap_or(0);
    let failed = by_status.get("failed").copied().unwrap_or(0);
    let spins = ids.iter().filter(|x| x.1 == "spin").count();
    println!("---- cluster chaos counts ----");
    println!(
        "submitted (202):          {} ({} rust-hello, {} c-spin 1-3 s)",
        ids.len(),
        ids.len() - spins,
        spins
    );
    println!(
        "submit retries (503/err): {}",
        retries.load(Ordering::Relaxed)
    );
    println!("completed:                {completed}");
    println!("failed:                   {failed}");
    println!(
        "other final states:       {:?}",
        by_status
            .iter()
            .filter(|(k, _)| *k != "completed" && *k != "failed")
            .collect::<Vec<_>>()
    );
    println!(
        "redelivered (attempt>1):  {redelivered} ({redelivered_spins} c-spin), max attempt {max_attempt}"
    );
    println!(
        "duplicates prevented:     {} (stale-attempt writes rejected by revision: {stale}; runs cancelled on lease loss: {lease_lost})",
        stale + lease_lost
    );
    println!("final records changed:    {}", changed.len());
    println!(
        "records listed:           {listed} (extra ones from submits whose answer was lost: {}), not final: {}",
        listed.saturating_sub(ids.len()),
        open.len()
    );
    println!(
        "time to all final:        {:.1} s (whole test so far {:.1} s)",
        all_final.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    println!("------------------------------");

    assert!(open.is_empty(), "executions left open: {open:?}");
    assert!(listed >= ids.len(), "every accepted execution is listed");
    assert!(
        changed.is_empty(),
        "final records changed afterwards: {changed:#?}"
    );
    assert!(
        wrong_output.is_empty(),
        "outputs of another execution: {wrong_output:#?}"
    );
    assert_eq!(
        completed,
        ids.len(),
        "every execution completes: {by_status:?}"
    );
    assert!(
        redelivered > 0,
        "the kill -9 / SIGSTOP interrupted some execution"
    );
}

/// Every execution record of the user: how many, and the ids of those not final.
async fn list_open(api: &Api, token: &str) -> (usize, Vec<String>) {
    let all = api.all_executions(token).await;
    let open = all
        .iter()
        .filter(|e| !is_final(e))
        .map(|e| e["id"].to_string())
        .collect();
    (all.len(), open)
}
