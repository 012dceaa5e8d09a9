//! The process's Prometheus recorder (one per process, installed by the first
//! [`Platform`](crate::platform::Platform)) and where `GET /metrics` is served: on
//! the API's listener, on a worker's health listener, or on a listener of its own
//! (FAAS_METRICS_ADDRESS).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use faas_api::routes::metrics::{PROMETHEUS_TEXT, RenderMetrics};
use faas_runtime::metrics::{SECONDS_BUCKETS, observe};
use faas_runtime::ports::WorkQueue;
use faas_runtime::store::Store;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often histograms are compacted whether or not anyone scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Renders this process's metrics; installs the recorder on first use. `None` if
/// another recorder was installed first (metrics are then not served).
pub fn render() -> Option<RenderMetrics> {
    let handle = RECORDER.get_or_init(install).clone()?;
    Some(Arc::new(move || handle.render()))
}

fn install() -> Option<PrometheusHandle> {
    let built = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .and_then(|b| b.install_recorder());
    match built {
        Ok(handle) => {
            let upkeep = handle.clone();
            // A plain thread: it lives as long as the process's recorder does.
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no metrics upkeep thread; histograms grow until scraped");
            }
            Some(handle)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot install the metrics recorder; GET /metrics is off");
            None
        }
    }
}

/// A router serving `GET /metrics` with the gauges read from `queue` and `store`.
pub fn router(render: RenderMetrics, queue: Arc<dyn WorkQueue>, store: Store) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let (render, queue, store) = (render.clone(), queue.clone(), store.clone());
            async move {
                observe(queue.as_ref(), &store).await;
                ([(CONTENT_TYPE, PROMETHEUS_TEXT)], render())
            }
        }),
    )
}

/// Serves `app` (see [`router`]) on `at` until `stop`.
pub async fn spawn_listener(
    at: SocketAddr,
    app: Router,
    stop: CancellationToken,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(at)
        .await
        .with_context(|| format!("bind the metrics listener {at}"))?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "the metrics listener failed");
        }
    });
    tracing::info!(addr = %bound, "metrics listener: GET /metrics");
    Ok((bound, task))
}
