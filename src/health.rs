//! Health of the processes that have no API port (`faas worker`, `faas autoscaler`):
//! a listener (FAAS_HEALTH_ADDRESS) whose `GET /healthz` runs a check of the process's
//! own loop and answers 200 or 503, and [`probe`], the client behind
//! `faas healthcheck URL` that compose runs in images without curl.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use faas_runtime::store::Store;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A check: `Ok` when healthy, else why not.
pub type Check =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// How long a check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `GET /healthz` on `addr` until `stop`: 200 `{"status":"ok"}` when `check`
/// passes, else 503 `{"error":"unhealthy","message":...}`.
/// `extra` adds routes (a worker's `GET /metrics`).
pub async fn spawn(
    addr: SocketAddr,
    check: Check,
    extra: Router,
    stop: CancellationToken,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind the health listener {addr}"))?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route(
            "/healthz",
            get(move || {
                let check = check.clone();
                async move {
                    let verdict = tokio::time::timeout(CHECK_TIMEOUT, check())
                        .await
                        .unwrap_or_else(|_| Err("the check timed out".into()));
                    match verdict {
                        Ok(()) => (StatusCode::OK, axum::Json(json!({"status": "ok"}))),
                        Err(why) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            axum::Json(json!({"error": "unhealthy", "message": why})),
                        ),
                    }
                }
            }),
        )
        .merge(extra);
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "the health listener failed");
        }
    });
    tracing::info!(addr = %bound, "health listener: GET /healthz");
    Ok((bound, task))
}

/// A worker is healthy while its heartbeat record (written by the worker loop every
/// few seconds) is fresh: a stalled loop or a lost store both turn it stale.
pub fn worker_heartbeat(store: Store, worker_id: String) -> Check {
    Arc::new(move || {
        let store = store.clone();
        let id = worker_id.clone();
        Box::pin(async move {
            let record = store
                .get_worker(&id)
                .await
                .map_err(|e| format!("reading the heartbeat: {e}"))?;
            match record {
                Some(p) if p.is_live() => Ok(()),
                Some(p) => Err(format!("the last heartbeat is old ({})", p.last_seen)),
                None => Err("no heartbeat yet".into()),
            }
        })
    })
}

/// `GET url` (plain `http://host:port/path`) with a timeout; `Ok(status)` for a 2xx
/// answer, an error naming the status or the failure otherwise.
pub async fn probe(url: &str, timeout: Duration) -> anyhow::Result<u16> {
    let rest = url
        .strip_prefix("http://")
        .context("only http:// URLs are probed")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let exchange = async {
        let mut stream = TcpStream::connect(authority)
            .await
            .with_context(|| format!("connect to {authority}"))?;
        let request =
            format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut head = Vec::new();
        stream.take(4096).read_to_end(&mut head).await?;
        anyhow::Ok(head)
    };
    let head = tokio::time::timeout(timeout, exchange)
        .await
        .with_context(|| format!("{url}: no answer within {timeout:?}"))??;
    let text = String::from_utf8_lossy(&head);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{url}: not an HTTP answer"))?;
    if !(200..300).contains(&status) {
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").trim();
        bail!("{url} answered {status}: {body}");
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(verdict: Result<(), &'static str>) -> Check {
        Arc::new(move || Box::pin(async move { verdict.map_err(str::to_string) }))
    }

    #[tokio::test]
    async fn probe_tells_healthy_from_unhealthy_and_from_nothing_listening() {
        let stop = CancellationToken::new();
        let any = "127.0.0.1:0".parse().unwrap();
        let (ok, _) = spawn(any, fixed(Ok(())), Router::new(), stop.clone())
            .await
            .unwrap();
        let (bad, _) = spawn(any, fixed(Err("stale")), Router::new(), stop.clone())
            .await
            .unwrap();
        let t = Duration::from_secs(3);
        assert_eq!(
            probe(&format!("http://{ok}/healthz"), t).await.unwrap(),
            200
        );
        let e = probe(&format!("http://{bad}/healthz"), t)
            .await
            .unwrap_err();
        assert!(format!("{e:#}").contains("503"), "{e:#}");
        assert!(format!("{e:#}").contains("stale"), "{e:#}");
        stop.cancel();
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let e = probe(&format!("http://127.0.0.1:{port}/healthz"), t).await;
        assert!(e.is_err(), "nothing listening is unhealthy");
        assert!(probe("https://x/healthz", t).await.is_err());
    }
}
