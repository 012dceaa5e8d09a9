//! Logs and traces of a process. Logs go to stderr (`RUST_LOG`). When
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, the
//! spans are also exported over OTLP/HTTP (protobuf) in batches, as service
//! `OTEL_SERVICE_NAME` (default `faas`): request spans continue the caller's
//! `traceparent`, execution spans the trace of the request that submitted them, in
//! whatever process they run ([`faas_runtime::trace_context`]).

use std::io::IsTerminal;

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Flushes exported spans when dropped (hold it for the process's life).
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        // On a thread of its own: the export runs as a task of the runtime, which this
        // (runtime) thread must not block.
        if let Some(p) = self.provider.take() {
            let flushed = std::thread::spawn(move || p.shutdown()).join();
            if let Ok(Err(e)) = flushed {
                eprintln!("flushing the exported spans failed: {e}");
            }
        }
    }
}

/// The OTLP/HTTP traces URL from the environment, if export is on.
pub fn traces_endpoint() -> Option<String> {
    let nonempty = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    nonempty("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| {
        nonempty("OTEL_EXPORTER_OTLP_ENDPOINT")
            .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
    })
}

/// Installs the global subscriber: stderr logs filtered by `filter`, plus OTLP export
/// when configured. Call within the tokio runtime (the exporter sends on it).
pub fn init(filter: EnvFilter) -> Telemetry {
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let registry = tracing_subscriber::registry().with(filter).with(logs);
    let Some(endpoint) = traces_endpoint() else {
        registry.init();
        return Telemetry { provider: None };
    };
    match exporter(&endpoint) {
        Ok(provider) => {
            let tracer = provider.tracer("faas");
            registry
                .with(tracing_opentelemetry::layer().with_tracer(tracer))
                .init();
            faas_runtime::trace_context::install(Box::new(join));
            tracing::info!(endpoint, "exporting traces over OTLP/HTTP");
            Telemetry {
                provider: Some(provider),
            }
        }
        Err(e) => {
            registry.init();
            tracing::warn!(endpoint, error = %e, "cannot export traces; logging only");
            Telemetry { provider: None }
        }
    }
}

fn exporter(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let client = client::TokioClient::new()?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .build()?;
    let service = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "faas".to_string());
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build())
}

/// Makes `span` a child of the remote `traceparent`; answers the span's own.
fn join(span: &tracing::Span, traceparent: &str) -> Option<String> {
    let parts: Vec<&str> = traceparent.split('-').collect();
    let [_, trace_id, span_id, flags] = parts.as_slice() else {
        return None;
    };
    let remote = opentelemetry::trace::SpanContext::new(
        opentelemetry::trace::TraceId::from_hex(trace_id).ok()?,
        opentelemetry::trace::SpanId::from_hex(span_id).ok()?,
        opentelemetry::trace::TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        Default::default(),
    );
    let parent = opentelemetry::Context::new().with_remote_span_context(remote);
    let _ = span.set_parent(parent);
    let own = span.context();
    let own = own.span().span_context().clone();
    own.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            own.trace_id(),
            own.span_id(),
            own.trace_flags().to_u8()
        )
    })
}

mod client {
    //! The exporter's HTTP client: this crate's reqwest on the tokio runtime. The SDK's
    //! batch processor calls it from its own thread; the request runs as a task of the
    //! runtime and the processor awaits its handle.

    use bytes::Bytes;
    use opentelemetry_http::{HttpClient, HttpError, Request, Response};

    #[derive(Debug)]
    pub struct TokioClient {
        http: reqwest::Client,
        runtime: tokio::runtime::Handle,
    }

    impl TokioClient {
        pub fn new() -> anyhow::Result<Self> {
            Ok(TokioClient {
                http: reqwest::Client::builder()
                    .no_proxy()
                    .timeout(std::time::Duration::from_secs(10))
                    .build()?,
                runtime: tokio::runtime::Handle::try_current()?,
            })
        }
    }

    #[async_trait::async_trait]
    impl HttpClient for TokioClient {
        async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
            let request = reqwest::Request::try_from(request)?;
            let http = self.http.clone();
            let sent = self.runtime.spawn(async move {
                let res = http.execute(request).await?;
                let status = res.status();
                let body = res.bytes().await?;
                Ok::<_, reqwest::Error>((status, body))
            });
            let (status, body) = sent.await??;
            Ok(Response::builder().status(status).body(body)?)
        }
    }
}
