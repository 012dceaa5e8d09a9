//! Conformance suites: the behaviour every backend of a port must show. Backend
//! tests call these with a fresh instance (embedded in `runtime/tests`, NATS
//! against a real `nats-server`). They panic with a message naming the rule broken.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::Error;
use crate::ports::{ByteStream, KvStore, ObjectStore, Scan, WorkQueue};

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// Key-value rules: create-once, revision-checked update, scan order and paging.
pub async fn kv_suite(kv: Arc<dyn KvStore>) {
    let b = "conformance";
    let k = unique("k");
    assert!(
        kv.get(b, &k).await.unwrap().is_none(),
        "absent key reads None"
    );
    let r1 = kv.create(b, &k, Bytes::from_static(b"v1")).await.unwrap();
    assert!(
        matches!(
            kv.create(b, &k, Bytes::from_static(b"x")).await,
            Err(Error::Conflict(_))
        ),
        "second create conflicts"
    );
    let e = kv
        .get(b, &k)
        .await
        .unwrap()
        .expect("created key reads back");
    assert_eq!((e.value.as_ref(), e.revision), (&b"v1"[..], r1));
    let r2 = kv
        .update(b, &k, Bytes::from_static(b"v2"), r1)
        .await
        .unwrap();
    assert!(r2 > r1, "revisions grow");
    assert!(
        matches!(
            kv.update(b, &k, Bytes::from_static(b"stale"), r1).await,
            Err(Error::Conflict(_))
        ),
        "stale revision conflicts"
    );
    assert_eq!(
        kv.get(b, &k).await.unwrap().unwrap().value.as_ref(),
        b"v2",
        "stale write did not land"
    );
    assert!(
        matches!(
            kv.update(b, &unique("none"), Bytes::new(), 1).await,
            Err(Error::NotFound(_))
        ),
        "update of absent key is NotFound"
    );
    kv.put(b, &k, Bytes::from_static(b"v3")).await.unwrap();
    kv.delete(b, &k).await.unwrap();
    kv.delete(b, &k).await.unwrap();
    assert!(
        kv.get(b, &k).await.unwrap().is_none(),
        "deleted key is gone"
    );
    let r = kv
        .create(b, &k, Bytes::from_static(b"again"))
        .await
        .unwrap();
    assert!(r > r2, "a re-created key never reuses an old revision");
    scan_rules(kv.as_ref()).await;
    batch_and_count_rules(kv.as_ref()).await;
    kv.ping().await.unwrap();
}

/// `apply` writes in order and returns growing revisions; `count` sees only live
/// keys of the prefix.
async fn batch_and_count_rules(kv: &dyn KvStore) {
    use crate::ports::KvWrite;
    let b = "conformance_count";
    let p = unique("p");
    let writes = (0..3)
        .map(|i| KvWrite::create(b, &format!("{p}.{i}"), Bytes::from_static(b"v")))
        .chain([KvWrite::put(b, &format!("{p}x.0"), Bytes::new())])
        .collect();
    let revs = kv.apply(writes).await.unwrap();
    assert_eq!(revs.len(), 4);
    assert!(
        revs.windows(2).all(|w| w[0] < w[1]),
        "revisions grow in order"
    );
    assert_eq!(kv.count(b, &format!("{p}.")).await.unwrap(), 3);
    kv.delete(b, &format!("{p}.1")).await.unwrap();
    assert_eq!(
        kv.count(b, &format!("{p}.")).await.unwrap(),
        2,
        "deleted keys are not counted"
    );
    let again = kv
        .apply(vec![KvWrite::create(b, &format!("{p}.0"), Bytes::new())])
        .await;
    assert!(
        matches!(again, Err(Error::Conflict(_))),
        "a create in a batch conflicts"
    );
}

async fn scan_rules(kv: &dyn KvStore) {
    let b = "conformance";
    let p = unique("p");
    for i in 0..5 {
        kv.put(b, &format!("{p}.{i}"), Bytes::from(i.to_string()))
            .await
            .unwrap();
    }
    kv.put(b, &format!("{p}x.9"), Bytes::new()).await.unwrap();
    let prefix = format!("{p}.");
    let keys = |rows: Vec<(String, crate::ports::Entry)>| {
        rows.into_iter().map(|(k, _)| k).collect::<Vec<_>>()
    };
    let all = keys(
        kv.scan(
            b,
            Scan {
                prefix: prefix.clone(),
                ..Scan::default()
            },
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        all,
        (0..5).map(|i| format!("{p}.{i}")).collect::<Vec<_>>(),
        "scan is ascending and prefix-bounded"
    );
    let desc = keys(
        kv.scan(
            b,
            Scan {
                prefix: prefix.clone(),
                limit: 2,
                descending: true,
                ..Scan::default()
            },
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        desc,
        vec![format!("{p}.4"), format!("{p}.3")],
        "descending with limit"
    );
    let next = keys(
        kv.scan(
            b,
            Scan {
                prefix,
                limit: 2,
                descending: true,
                after: Some(format!("{p}.3")),
            },
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        next,
        vec![format!("{p}.2"), format!("{p}.1")],
        "cursor continues after the last key"
    );
}

/// Queue rules: dedup, lease hides, ack removes, nack delays, redelivery after
/// the ack wait with a higher attempt, extension keeps a lease, double acks fail,
/// acks of an expired lease fail or do no harm.
/// `queue` must be empty and have an ack wait of at most 2 s.
pub async fn queue_suite(queue: Arc<dyn WorkQueue>) {
    let wait = queue.ack_wait();
    assert!(
        wait <= Duration::from_secs(2),
        "suite needs a short ack wait"
    );
    queue.enqueue("a", Bytes::from_static(b"pa")).await.unwrap();
    queue
        .enqueue("a", Bytes::from_static(b"dup"))
        .await
        .unwrap();
    queue.enqueue("b", Bytes::from_static(b"pb")).await.unwrap();
    let s = queue.stats().await.unwrap();
    assert_eq!((s.pending, s.in_flight), (2, 0), "dedup by id; two pending");
    let got = queue.lease(10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(got.len(), 2, "lease takes up to max");
    assert!(
        got.iter().all(|d| d.attempt == 1),
        "first delivery is attempt 1"
    );
    let a = got.iter().find(|d| d.id == "a").unwrap().clone();
    let b = got.iter().find(|d| d.id == "b").unwrap().clone();
    assert_eq!(
        a.payload.as_ref(),
        b"pa",
        "payload of the first enqueue wins"
    );
    assert_eq!(queue.stats().await.unwrap().in_flight, 2);
    assert!(
        queue
            .lease(1, Duration::from_millis(200))
            .await
            .unwrap()
            .is_empty(),
        "leased messages are hidden"
    );
    queue.ack(&a).await.unwrap();
    assert!(
        matches!(queue.ack(&a).await, Err(Error::Conflict(_))),
        "double ack is refused"
    );
    queue.nack(&b, Duration::from_millis(300)).await.unwrap();
    let b2 = queue
        .lease(1, Duration::from_secs(3))
        .await
        .unwrap()
        .pop()
        .expect("nacked message comes back");
    assert_eq!(
        (b2.id.as_str(), b2.attempt),
        ("b", 2),
        "redelivery counts attempts"
    );
    for _ in 0..3 {
        tokio::time::sleep(wait / 2).await;
        queue.extend(&b2).await.unwrap();
    }
    assert!(
        queue
            .lease(1, Duration::from_millis(100))
            .await
            .unwrap()
            .is_empty(),
        "extension keeps the lease"
    );
    let b3 = queue
        .lease(1, wait * 3)
        .await
        .unwrap()
        .pop()
        .expect("expired lease is redelivered");
    assert_eq!(b3.attempt, 3);
    // A backend may accept this ack: NATS JetStream takes an ack on any delivery of
    // a still-pending message and cannot tell an older delivery from the current
    // one (NatsQueue refuses it only within the process that leased both). Stale
    // *results* are fenced by the KV revisions instead: the worker's final write is
    // revision-checked, so an attempt whose lease expired cannot overwrite a newer
    // one. Whatever the answer, the current delivery can still be acked below.
    assert!(
        matches!(queue.ack(&b2).await, Ok(()) | Err(Error::Conflict(_))),
        "an ack with an expired lease is refused (Conflict) or harmless (Ok)"
    );
    queue.ack(&b3).await.unwrap();
    let s = queue.stats().await.unwrap();
    assert_eq!((s.pending, s.in_flight), (0, 0), "queue drained");
}

fn body(chunks: Vec<&'static [u8]>) -> ByteStream {
    futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c)))).boxed()
}

async fn read_all(mut s: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

/// Object rules: streamed put/get, metadata, size limit leaves nothing, list, delete.
pub async fn objects_suite(store: Arc<dyn ObjectStore>) {
    let b = unique("b");
    let m = store
        .put(
            &b,
            "hello.txt",
            "text/plain",
            body(vec![b"hel", b"lo"]),
            100,
        )
        .await
        .unwrap();
    assert_eq!((m.size, m.content_type.as_str()), (5, "text/plain"));
    assert_eq!(
        m.sha256,
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    let (meta, s) = store.get(&b, "hello.txt").await.unwrap();
    assert_eq!(meta, m, "get returns the stored metadata");
    assert_eq!(read_all(s).await, b"hello");
    let big = store
        .put(
            &b,
            "big.bin",
            "application/octet-stream",
            body(vec![&[0u8; 60], &[0u8; 60]]),
            100,
        )
        .await;
    assert!(
        matches!(big, Err(Error::TooLarge(_))),
        "over the limit is TooLarge"
    );
    assert!(
        matches!(store.head(&b, "big.bin").await, Err(Error::NotFound(_))),
        "a refused put leaves nothing"
    );
    store
        .put(&b, "hello.txt", "text/x", body(vec![b"bye"]), 100)
        .await
        .unwrap();
    let (meta, s) = store.get(&b, "hello.txt").await.unwrap();
    assert_eq!(
        (meta.size, meta.content_type.as_str(), read_all(s).await),
        (3, "text/x", b"bye".to_vec()),
        "put replaces"
    );
    store
        .put(
            &b,
            "a.bin",
            "application/octet-stream",
            body(vec![b"1"]),
            100,
        )
        .await
        .unwrap();
    let names: Vec<String> = store
        .list(&b)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, vec!["a.bin", "hello.txt"], "list by name");
    store.delete(&b, "a.bin").await.unwrap();
    assert!(matches!(
        store.delete(&b, "a.bin").await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.get(&b, "a.bin").await,
        Err(Error::NotFound(_))
    ));
    assert!(
        store
            .put(&b, "../escape", "x", body(vec![b"1"]), 10)
            .await
            .is_err(),
        "path tricks refused"
    );
    store.delete_bucket(&b).await.unwrap();
    assert!(store.list(&b).await.unwrap().is_empty(), "bucket deleted");
}
