//! Accepting executions: all or nothing, re-queues that pass the cap without
//! duplicating, the reconciler, and large fields kept out of the records -- on the
//! embedded backend and on a real `nats-server`.

#[path = "support/nats_server.rs"]
mod nats_server;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faas_runtime::Error;
use faas_runtime::embedded::{Db, EmbeddedKv, EmbeddedQueue, QueueConfig};
use faas_runtime::model::{Execution, ExecutionStatus, Function, RuntimeKind, new_id, now};
use faas_runtime::nats::{self, NatsConfig};
use faas_runtime::ports::WorkQueue;
use faas_runtime::store::{Store, buckets};
use faas_runtime::worker::reconcile::reconcile_once;
use nats_server::NatsServer;

struct Backend {
    store: Store,
    queue: Arc<dyn WorkQueue>,
    _keep: Box<dyn std::any::Any>,
}

async fn embedded(max_messages: u64) -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let cfg = QueueConfig {
        ack_wait: Duration::from_secs(30),
        max_messages,
    };
    Backend {
        store: Store::new(Arc::new(EmbeddedKv::new(db.clone()))),
        queue: Arc::new(EmbeddedQueue::open(db, cfg).await.unwrap()),
        _keep: Box::new(dir),
    }
}

async fn on_nats(max_messages: u64) -> Backend {
    let server = NatsServer::start();
    let cfg = NatsConfig {
        max_messages,
        ..NatsConfig::default()
    };
    let b = nats::connect(&server.url(), cfg).await.unwrap();
    Backend {
        store: Store::new(Arc::new(b.kv)),
        queue: Arc::new(b.queue),
        _keep: Box::new(server),
    }
}

fn function() -> Function {
    Function {
        id: new_id(),
        owner_id: "owner1".into(),
        name: "f".into(),
        description: String::new(),
        runtime: RuntimeKind::Wasm,
        image_url: None,
        pull_policy: None,
        warm: None,
        module_sha256: None,
        module_size: None,
        timeout_secs: 5,
        memory_mb: 64,
        created_at: now(),
        versions: Default::default(),
    }
}

fn pending(input: String) -> Execution {
    Execution::pending(&function(), input)
}

/// A full queue refuses new work with nothing written; accepted work that lost
/// its message is queued again past the cap, once.
async fn full_queue_refuses_new_work_but_requeues_accepted_work(b: Backend) {
    let first = pending("{}".into());
    b.store
        .accept_execution(b.queue.as_ref(), &first)
        .await
        .unwrap();
    let refused = pending("{}".into());
    let r = b.store.accept_execution(b.queue.as_ref(), &refused).await;
    assert!(matches!(r, Err(Error::Overloaded(_))), "got {r:?}");
    assert!(
        b.store
            .get_execution(&refused.id, None)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(b.store.count_active("owner1").await.unwrap(), 1);
    // Accepted while the message was lost (a cut between the writes and the publish).
    let orphans: Vec<Execution> = (0..3).map(|_| pending("{}".into())).collect();
    for o in &orphans {
        b.store.create_execution(o).await.unwrap();
    }
    let done = reconcile_once(&b.store, b.queue.as_ref(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(done.requeued, 3, "past the cap of 1");
    let again = reconcile_once(&b.store, b.queue.as_ref(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(again.requeued, 0, "no duplicate messages");
    for o in &orphans {
        assert!(b.queue.holds(&o.id).await.unwrap());
    }
    let stats = b.queue.stats().await.unwrap();
    assert_eq!(stats.pending + stats.in_flight, 4);
}

#[tokio::test]
async fn full_queue_refuses_new_work_but_requeues_accepted_work_embedded() {
    full_queue_refuses_new_work_but_requeues_accepted_work(embedded(1).await).await;
}

#[tokio::test]
async fn full_queue_refuses_new_work_but_requeues_accepted_work_nats() {
    full_queue_refuses_new_work_but_requeues_accepted_work(on_nats(1).await).await;
}

#[tokio::test]
async fn embedded_submit_is_one_transaction() {
    let b = embedded(100).await;
    let e = pending("{}".into());
    // A record already under this id makes the batch fail: no message, no index.
    b.store
        .kv()
        .create(buckets::EXECUTIONS, &e.id, Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let r = b.store.accept_execution(b.queue.as_ref(), &e).await;
    assert!(matches!(r, Err(Error::Conflict(_))), "got {r:?}");
    assert!(!b.queue.holds(&e.id).await.unwrap());
    assert_eq!(b.store.count_active("owner1").await.unwrap(), 0);
    assert!(b.store.active_executions(0).await.unwrap().is_empty());
}

/// The reconciler drops the markers of a submit cut before its record, and of
/// an execution whose final write was not followed by their removal.
async fn reconciler_forgets_stale_markers(b: Backend) {
    let kv = b.store.kv();
    kv.put(buckets::EXECUTIONS_ACTIVE, "no-record", Bytes::new())
        .await
        .unwrap();
    let mut e = pending("{}".into());
    b.store.create_execution(&e).await.unwrap();
    e.status = ExecutionStatus::Completed;
    let (stored, _) = faas_runtime::store::spill::split(&e, false);
    b.store
        .put_json(buckets::EXECUTIONS, &e.id, &stored)
        .await
        .unwrap();
    let done = reconcile_once(&b.store, b.queue.as_ref(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((done.requeued, done.forgotten), (0, 2));
    assert!(b.store.active_executions(0).await.unwrap().is_empty());
    assert_eq!(b.store.count_active("owner1").await.unwrap(), 0);
}

#[tokio::test]
async fn reconciler_forgets_stale_markers_embedded() {
    reconciler_forgets_stale_markers(embedded(100).await).await;
}

#[tokio::test]
async fn reconciler_forgets_stale_markers_nats() {
    reconciler_forgets_stale_markers(on_nats(100).await).await;
}

/// 1 MiB of input, output and logs: every stored value stays far below a NATS
/// message, the record reads back whole, and a stale attempt's chunks go away.
async fn large_fields_round_trip_in_small_records(b: Backend) {
    let big = format!("{{\"x\":\"{}\"}}", "i".repeat(1024 * 1024));
    let e = pending(big.clone());
    let rev = b
        .store
        .accept_execution(b.queue.as_ref(), &e)
        .await
        .unwrap();
    let (mut got, _) = b.store.get_execution(&e.id, None).await.unwrap().unwrap();
    assert_eq!(got.input, big);
    got.status = ExecutionStatus::Running;
    got.attempt = 1;
    let rev = b.store.update_execution(&got, rev).await.unwrap();
    let mut done = got.clone();
    done.status = ExecutionStatus::Completed;
    done.output = Some(format!("{{\"o\":\"{}\"}}", "\u{1}".repeat(1024 * 1024)));
    done.result = serde_json::from_str(done.output.as_ref().unwrap()).ok();
    done.logs = Some("l".repeat(1024 * 1024));
    // A stale attempt (older revision) loses and leaves no chunks behind.
    let mut stale = done.clone();
    stale.attempt = 7;
    b.store.update_execution(&done, rev).await.unwrap();
    let r = b.store.update_execution(&stale, rev).await;
    assert!(matches!(r, Err(Error::Conflict(_))), "got {r:?}");
    let (back, _) = b.store.get_execution(&e.id, None).await.unwrap().unwrap();
    assert_eq!(back.output, done.output);
    assert_eq!(back.logs, done.logs);
    assert_eq!(back.result, done.result);
    assert_eq!(back.input, big);
    let rows = b
        .store
        .kv()
        .scan(buckets::EXECUTION_DATA, Default::default())
        .await
        .unwrap();
    assert!(
        rows.iter().all(|(k, _)| !k.contains(".a7.")),
        "stale chunks removed"
    );
    let record = b
        .store
        .kv()
        .get(buckets::EXECUTIONS, &e.id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        record.value.len() < 16 * 1024,
        "record is {} bytes",
        record.value.len()
    );
    assert!(rows.iter().all(|(_, v)| v.value.len() <= 256 * 1024));
    let page = b
        .store
        .list_executions("owner1", &Default::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(
        page.items[0].output_bytes,
        done.output.as_ref().unwrap().len() as u64
    );
    assert_eq!(page.items[0].input_bytes, big.len() as u64);
}

#[tokio::test]
async fn large_fields_round_trip_in_small_records_embedded() {
    large_fields_round_trip_in_small_records(embedded(100).await).await;
}

#[tokio::test]
async fn large_fields_round_trip_in_small_records_nats() {
    large_fields_round_trip_in_small_records(on_nats(100).await).await;
}

/// Records shaped as the release before schema versions wrote them are brought
/// forward: name indexes, the per-owner active index, then the version is set;
/// a second pass changes nothing; a newer version is refused.
async fn migration_brings_schema1_records_forward(b: Backend) {
    use faas_runtime::model::Secret;
    let f = function();
    b.store
        .put_json(buckets::FUNCTIONS, &f.id, &f)
        .await
        .unwrap();
    let secret = Secret {
        id: new_id(),
        owner_id: "owner1".into(),
        name: "Api.Key".into(),
        sealed: vec![1, 2, 3],
        created_at: now(),
        updated_at: now(),
    };
    b.store
        .put_json(buckets::SECRETS, &secret.id, &secret)
        .await
        .unwrap();
    let legacy = format!("owner1.{}", secret.name);
    b.store
        .kv()
        .put(
            buckets::SECRET_NAMES,
            &legacy,
            Bytes::from(secret.id.clone()),
        )
        .await
        .unwrap();
    let e = pending("{}".into());
    let (stored, _) = faas_runtime::store::spill::split(&e, false);
    b.store
        .put_json(buckets::EXECUTIONS, &e.id, &stored)
        .await
        .unwrap();
    b.store
        .kv()
        .put(buckets::EXECUTIONS_ACTIVE, &e.id, Bytes::new())
        .await
        .unwrap();
    let m = b.store.migrate().await.unwrap();
    assert_eq!(
        (m.from, m.to),
        (1, faas_runtime::store::migrate::SCHEMA_VERSION)
    );
    assert_eq!(b.store.count_active("owner1").await.unwrap(), 1);
    assert_eq!(
        b.store
            .find_function("owner1", "F")
            .await
            .unwrap()
            .unwrap()
            .id,
        f.id
    );
    assert_eq!(
        b.store
            .find_secret("owner1", "api.key")
            .await
            .unwrap()
            .unwrap()
            .id,
        secret.id
    );
    assert_eq!(
        b.store.count_secrets("owner1").await.unwrap(),
        1,
        "the legacy key is gone"
    );
    let again = b.store.migrate().await.unwrap();
    assert_eq!(again.from, again.to);
    b.store
        .put_json(
            faas_runtime::store::migrate::META,
            "schema",
            &serde_json::json!({"version": 7, "written_by": "x"}),
        )
        .await
        .unwrap();
    assert!(matches!(b.store.migrate().await, Err(Error::Invalid(_))));
}

#[tokio::test]
async fn migration_brings_schema1_records_forward_embedded() {
    migration_brings_schema1_records_forward(embedded(100).await).await;
}

#[tokio::test]
async fn migration_brings_schema1_records_forward_nats() {
    migration_brings_schema1_records_forward(on_nats(100).await).await;
}
