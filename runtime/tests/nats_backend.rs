//! NATS-specific behaviour beyond the conformance suites, on a real `nats-server`.

#[path = "support/nats_server.rs"]
mod nats_server;

use std::time::{Duration, Instant};

use bytes::Bytes;
use faas_runtime::Error;
use faas_runtime::nats::{self, NatsBackend, NatsConfig};
use faas_runtime::ports::{ByteStream, KvStore, ObjectStore, Scan, WorkQueue};
use futures::StreamExt;
use nats_server::NatsServer;
use sha2::{Digest, Sha256};

fn config(tag: &str, ack_wait: Duration, max_messages: u64) -> NatsConfig {
    NatsConfig {
        stream: format!("Q_{tag}"),
        subject: format!("q.{tag}"),
        consumer: format!("w_{tag}"),
        ack_wait,
        max_messages,
        ..NatsConfig::default()
    }
}

async fn backend(server: &NatsServer, cfg: NatsConfig) -> NatsBackend {
    nats::connect(&server.url(), cfg).await.unwrap()
}

#[tokio::test]
async fn enqueue_past_max_messages_is_overloaded_and_duplicates_are_free() {
    let server = NatsServer::start();
    let q = backend(&server, config("full", Duration::from_secs(5), 2))
        .await
        .queue;
    q.enqueue("a", Bytes::new()).await.unwrap();
    q.enqueue("b", Bytes::new()).await.unwrap();
    q.enqueue("a", Bytes::new()).await.unwrap();
    let r = q.enqueue("c", Bytes::new()).await;
    assert!(matches!(r, Err(Error::Overloaded(_))), "got {r:?}");
    let d = q.lease(1, Duration::from_secs(1)).await.unwrap();
    q.ack(&d[0]).await.unwrap();
    q.enqueue("c", Bytes::new()).await.unwrap();
}

#[tokio::test]
async fn lease_returns_as_soon_as_a_message_is_there() {
    let server = NatsServer::start();
    let q = backend(&server, config("soon", Duration::from_secs(5), 100))
        .await
        .queue;
    q.enqueue("a", Bytes::new()).await.unwrap();
    let started = Instant::now();
    let got = q.lease(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move { q.lease(10, Duration::from_secs(5)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    q.enqueue("b", Bytes::new()).await.unwrap();
    let got = waiter.await.unwrap().unwrap();
    assert_eq!(got.first().map(|d| d.id.as_str()), Some("b"));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

/// Documents why the conformance suite lets an expired lease's ack succeed: the
/// server takes it from another process (the lease table is per process).
#[tokio::test]
async fn a_stale_ack_from_another_process_reaches_the_server() {
    let server = NatsServer::start();
    let cfg = config("stale", Duration::from_secs(1), 100);
    let (p1, p2) = (
        backend(&server, cfg.clone()).await,
        backend(&server, cfg).await,
    );
    p1.queue.enqueue("x", Bytes::new()).await.unwrap();
    let old = p1
        .queue
        .lease(1, Duration::from_secs(1))
        .await
        .unwrap()
        .remove(0);
    let new = p2
        .queue
        .lease(1, Duration::from_secs(3))
        .await
        .unwrap()
        .remove(0);
    assert_eq!((old.attempt, new.attempt), (1, 2));
    p1.queue.ack(&old).await.unwrap();
    let s = p2.queue.stats().await.unwrap();
    assert_eq!(
        (s.pending, s.in_flight),
        (0, 0),
        "the stale ack removed the message"
    );
    p2.queue.ack(&new).await.unwrap();
}

fn body(pieces: usize, piece: usize, byte: u8) -> (ByteStream, Vec<u8>) {
    let all = vec![byte; pieces * piece];
    let chunks: Vec<std::io::Result<Bytes>> = all
        .chunks(piece)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    (futures::stream::iter(chunks).boxed(), all)
}

async fn read_all(mut s: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

#[tokio::test]
async fn large_objects_stream_and_a_refused_replacement_keeps_the_old_one() {
    let server = NatsServer::start();
    let objects = backend(&server, config("obj", Duration::from_secs(5), 100))
        .await
        .objects;
    let (first, bytes) = body(100, 3_000, 7);
    let m = objects
        .put("big", "x.bin", "a/b", first, 1 << 20)
        .await
        .unwrap();
    assert_eq!(
        (m.size, m.sha256.clone()),
        (300_000, hex::encode(Sha256::digest(&bytes)))
    );
    let (second, _) = body(200, 3_000, 9);
    let r = objects.put("big", "x.bin", "c/d", second, 500_000).await;
    assert!(matches!(r, Err(Error::TooLarge(_))), "got {r:?}");
    let (meta, s) = objects.get("big", "x.bin").await.unwrap();
    assert_eq!(meta, m, "the previous object is intact");
    assert_eq!(read_all(s).await, bytes);

    // Only the live object's 3 chunks and its metadata are stored: the refused
    // upload's chunks were purged.
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("OBJ_big").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 4);

    let (third, bytes) = body(1, 10, 1);
    objects
        .put("big", "x.bin", "e/f", third, 100)
        .await
        .unwrap();
    let (_, s) = objects.get("big", "x.bin").await.unwrap();
    assert_eq!(read_all(s).await, bytes);
    assert_eq!(
        stream.info().await.unwrap().state.messages,
        2,
        "old chunks purged"
    );
}

#[tokio::test]
async fn scan_skips_deleted_keys_and_still_fills_the_page() {
    let server = NatsServer::start();
    let kv = backend(&server, config("kv", Duration::from_secs(5), 100))
        .await
        .kv;
    for i in 0..6 {
        kv.put("idx", &format!("o.{i}"), Bytes::new())
            .await
            .unwrap();
    }
    kv.put("idx", "other.1", Bytes::new()).await.unwrap();
    kv.delete("idx", "o.4").await.unwrap();
    kv.delete("idx", "o.3").await.unwrap();
    let scan = Scan {
        prefix: "o.".into(),
        limit: 3,
        descending: true,
        after: None,
    };
    let keys: Vec<String> = kv
        .scan("idx", scan)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, ["o.5", "o.2", "o.1"]);
    let update = kv.update("idx", "o.4", Bytes::new(), 1).await;
    assert!(matches!(update, Err(Error::NotFound(_))), "got {update:?}");
    let bad = kv.put("idx", "has space", Bytes::new()).await;
    assert!(matches!(bad, Err(Error::Invalid(_))), "got {bad:?}");
    let bad = kv.get("no.dots", "k").await;
    assert!(matches!(bad, Err(Error::Invalid(_))), "got {bad:?}");
}
