//! The NATS backends against the port conformance suites, on a real `nats-server`.

#[path = "support/nats_server.rs"]
mod nats_server;

use std::sync::Arc;
use std::time::Duration;

use faas_runtime::conformance;
use faas_runtime::nats::{self, NatsBackend, NatsConfig};
use nats_server::NatsServer;

/// A config with stream, subject and consumer names no other test uses.
fn fresh_config(ack_wait: Duration, max_messages: u64) -> NatsConfig {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    NatsConfig {
        stream: format!("Q_{tag}"),
        subject: format!("q.{tag}"),
        consumer: format!("w_{tag}"),
        ack_wait,
        max_messages,
        ..NatsConfig::default()
    }
}

async fn backend(server: &NatsServer) -> NatsBackend {
    nats::connect(&server.url(), fresh_config(Duration::from_secs(1), 100))
        .await
        .expect("connect to the test nats-server")
}

#[tokio::test]
async fn kv_conforms() {
    let server = NatsServer::start();
    conformance::kv_suite(Arc::new(backend(&server).await.kv)).await;
}

#[tokio::test]
async fn queue_conforms() {
    let server = NatsServer::start();
    conformance::queue_suite(Arc::new(backend(&server).await.queue)).await;
}

#[tokio::test]
async fn objects_conform() {
    let server = NatsServer::start();
    conformance::objects_suite(Arc::new(backend(&server).await.objects)).await;
}
