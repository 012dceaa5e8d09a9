//! The embedded backend against the port conformance suites.

use std::sync::Arc;
use std::time::Duration;

use faas_runtime::conformance;
use faas_runtime::embedded::{Db, EmbeddedKv, EmbeddedObjects, EmbeddedQueue, QueueConfig};

#[tokio::test]
async fn kv_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    conformance::kv_suite(Arc::new(EmbeddedKv::new(db))).await;
}

#[tokio::test]
async fn queue_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let cfg = QueueConfig {
        ack_wait: Duration::from_secs(1),
        max_messages: 100,
    };
    conformance::queue_suite(Arc::new(EmbeddedQueue::open(db, cfg).await.unwrap())).await;
}

#[tokio::test]
async fn objects_conform() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    conformance::objects_suite(Arc::new(EmbeddedObjects::new(db).unwrap())).await;
}

#[tokio::test]
async fn queue_survives_reopen_and_releases_dead_leases() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = QueueConfig {
        ack_wait: Duration::from_secs(60),
        max_messages: 2,
    };
    {
        let q = EmbeddedQueue::open(Db::open(dir.path()).unwrap(), cfg)
            .await
            .unwrap();
        use faas_runtime::ports::WorkQueue;
        q.enqueue("x", "1".into()).await.unwrap();
        q.enqueue("y", "2".into()).await.unwrap();
        assert!(matches!(
            q.enqueue("z", "3".into()).await,
            Err(faas_runtime::Error::Overloaded(_))
        ));
        assert_eq!(q.lease(1, Duration::from_secs(1)).await.unwrap().len(), 1);
    }
    use faas_runtime::ports::WorkQueue;
    let q = EmbeddedQueue::open(Db::open(dir.path()).unwrap(), cfg)
        .await
        .unwrap();
    let got = q.lease(10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(
        got.len(),
        2,
        "both messages survive, the dead lease is released at once"
    );
}

#[test]
fn data_dir_is_locked_to_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let _a = Db::open(dir.path()).unwrap();
    assert!(matches!(
        Db::open(dir.path()),
        Err(faas_runtime::Error::Conflict(_))
    ));
}
