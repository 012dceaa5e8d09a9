//! The user repository on both backends: usernames unique in any letter case, old
//! records (indexed by their exact name) still found and indexed canonically once,
//! and token generations that only move forward.

#[path = "support/nats_server.rs"]
mod nats_server;

use std::sync::Arc;

use bytes::Bytes;
use faas_runtime::Error;
use faas_runtime::embedded::{Db, EmbeddedKv};
use faas_runtime::model::{Role, User, new_id, now};
use faas_runtime::nats::{self, NatsConfig};
use faas_runtime::store::Store;
use nats_server::NatsServer;

fn user(name: &str) -> User {
    User {
        id: new_id(),
        username: name.into(),
        password_hash: format!("hash-of-{name}"),
        role: Role::User,
        created_at: now(),
        token_generation: 0,
    }
}

/// Writes a user as the code before canonical usernames did.
async fn legacy(store: &Store, name: &str) -> User {
    let u = user(name);
    store
        .kv()
        .create("usernames", name, Bytes::from(u.id.clone()))
        .await
        .unwrap();
    store.create_json("users", &u.id, &u).await.unwrap();
    u
}

async fn users_suite(store: Store) {
    let ada = user("Ada");
    store.create_user(&ada).await.unwrap();
    assert!(
        matches!(
            store.create_user(&user("aDA")).await,
            Err(Error::Conflict(_))
        ),
        "a case variant conflicts"
    );
    for name in ["Ada", "ada", "ADA"] {
        let (found, _) = store.find_user(name).await.unwrap().expect(name);
        assert_eq!(found.id, ada.id, "{name} finds Ada");
    }
    assert!(store.find_user("bob").await.unwrap().is_none());

    let bob = legacy(&store, "Bob").await;
    let dan = legacy(&store, "Dan").await;
    let dan_lower = legacy(&store, "dan").await;
    assert_eq!(store.find_user("Bob").await.unwrap().unwrap().0.id, bob.id);
    assert!(
        store.find_user("bob").await.unwrap().is_none(),
        "before indexing, only the exact name"
    );
    assert_eq!(store.index_canonical_usernames().await.unwrap(), 1);
    assert_eq!(store.index_canonical_usernames().await.unwrap(), 0, "once");
    assert_eq!(store.find_user("BOB").await.unwrap().unwrap().0.id, bob.id);
    assert_eq!(store.find_user("Dan").await.unwrap().unwrap().0.id, dan.id);
    assert_eq!(
        store.find_user("dan").await.unwrap().unwrap().0.id,
        dan_lower.id
    );
    assert!(matches!(
        store.create_user(&user("bob")).await,
        Err(Error::Conflict(_))
    ));

    assert_eq!(store.revoke_tokens(&ada.id).await.unwrap(), 1);
    let changed = store.set_password(&ada.id, "new-hash").await.unwrap();
    assert_eq!(
        (changed.token_generation, changed.password_hash.as_str()),
        (2, "new-hash")
    );
    let (reread, _) = store.get_user(&ada.id).await.unwrap().unwrap();
    assert_eq!(reread.token_generation, 2);
    assert!(matches!(
        store.revoke_tokens("nobody").await,
        Err(Error::NotFound(_))
    ));
    let parallel = (0..8).map(|_| store.revoke_tokens(&ada.id));
    for r in futures::future::join_all(parallel).await {
        r.expect("concurrent revocations all land");
    }
    let (reread, _) = store.get_user(&ada.id).await.unwrap().unwrap();
    assert_eq!(reread.token_generation, 10, "no revocation lost");
}

#[tokio::test]
async fn users_on_the_embedded_backend() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    users_suite(Store::new(Arc::new(EmbeddedKv::new(db)))).await;
}

#[tokio::test]
async fn users_on_nats() {
    let server = NatsServer::start();
    let backend = nats::connect(&server.url(), NatsConfig::default())
        .await
        .expect("connect to the test nats-server");
    users_suite(Store::new(Arc::new(backend.kv))).await;
}
