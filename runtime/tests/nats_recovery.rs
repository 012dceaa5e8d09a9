//! The NATS backends across a server restart, and a connect that cannot succeed.

#[path = "support/nats_server.rs"]
mod nats_server;

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use faas_runtime::Error;
use faas_runtime::nats::{self, NatsConfig};
use faas_runtime::ports::{KvStore, ObjectStore, WorkQueue};
use futures::StreamExt;
use nats_server::{NatsServer, free_port};

/// Retries `op` until it succeeds, failing the test after `within`.
async fn eventually<T, F, Fut>(what: &str, within: Duration, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = faas_runtime::Result<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        match op().await {
            Ok(v) => return v,
            Err(e) if Instant::now() < deadline => {
                assert!(e.is_retryable(), "{what}: {e} is not retryable");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{what} did not recover within {within:?}: {e}"),
        }
    }
}

fn unavailable<T: std::fmt::Debug>(what: &str, r: faas_runtime::Result<T>) {
    assert!(
        matches!(r, Err(Error::Unavailable(_))),
        "{what} while the server is down must be Unavailable, got {r:?}"
    );
}

#[tokio::test]
async fn state_survives_a_restart_and_clients_recover_without_reconnecting() {
    let mut server = NatsServer::start();
    let config = NatsConfig {
        ack_wait: Duration::from_secs(5),
        ..NatsConfig::default()
    };
    let b = nats::connect(&server.url(), config).await.unwrap();
    let rev =
        b.kv.create("recovery", "k1", Bytes::from_static(b"v1"))
            .await
            .unwrap();
    b.queue
        .enqueue("m1", Bytes::from_static(b"p1"))
        .await
        .unwrap();
    let body = futures::stream::iter([Ok(Bytes::from_static(b"obj"))]).boxed();
    b.objects
        .put("bkt", "o.txt", "text/plain", body, 100)
        .await
        .unwrap();

    server.stop();
    let started = Instant::now();
    unavailable("kv get", b.kv.get("recovery", "k1").await);
    unavailable("kv put", b.kv.put("recovery", "k2", Bytes::new()).await);
    unavailable("kv ping", b.kv.ping().await);
    unavailable("enqueue", b.queue.enqueue("m2", Bytes::new()).await);
    unavailable("lease", b.queue.lease(1, Duration::from_secs(1)).await);
    unavailable("stats", b.queue.stats().await);
    unavailable("object head", b.objects.head("bkt", "o.txt").await);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "calls fail fast while the server is down ({:?})",
        started.elapsed()
    );

    server.start_again();
    let within = Duration::from_secs(30);
    let e = eventually("kv get", within, || b.kv.get("recovery", "k1")).await;
    let e = e.expect("the KV value survived the restart");
    assert_eq!((e.value.as_ref(), e.revision), (&b"v1"[..], rev));
    let got = eventually("lease", within, || {
        b.queue.lease(10, Duration::from_secs(2))
    })
    .await;
    assert_eq!(got.len(), 1, "the queued message survived the restart");
    assert_eq!(
        (got[0].id.as_str(), got[0].payload.as_ref()),
        ("m1", &b"p1"[..])
    );
    b.queue.ack(&got[0]).await.unwrap();
    let meta = b.objects.head("bkt", "o.txt").await.unwrap();
    assert_eq!(meta.size, 3, "the object survived the restart");
    b.queue.enqueue("m3", Bytes::new()).await.unwrap();
    b.kv.ping().await.unwrap();
}

#[tokio::test]
async fn connect_to_a_wrong_url_fails_fast_with_unavailable() {
    let started = Instant::now();
    let url = format!("nats://127.0.0.1:{}", free_port());
    let r = nats::connect(&url, NatsConfig::default()).await;
    assert!(matches!(r, Err(Error::Unavailable(_))), "got {:?}", r.err());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
