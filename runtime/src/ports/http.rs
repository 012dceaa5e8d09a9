//! The HTTP port: serves one HTTP request with a function that is itself an HTTP
//! handler (a `wasi:http/proxy` component), streaming both bodies. Executors
//! implement it; the API calls it for `/fn/{username}/{function}`. Functions that
//! are not handlers are served through [`crate::adapter`] and the ordinary
//! [`crate::ports::Executor`] instead.

use std::time::Duration;

use async_trait::async_trait;

use super::objects::ByteStream;
use crate::Result;
use crate::model::Function;
use crate::outbound::OutboundPolicy;

/// One request for a function.
pub struct HttpRequest {
    /// Method, URI (the path after the function's prefix, and the query), headers.
    pub head: ::http::request::Parts,
    /// The request body, streamed.
    pub body: ByteStream,
    /// The function to run.
    pub function: Function,
    /// The guest's environment (the version's `env`, `FAAS_FUNCTION_ID`,
    /// `FAAS_FUNCTION_VERSION`).
    pub env: Vec<(String, String)>,
    /// Wall-clock limit of the whole exchange, response body included.
    pub timeout: Duration,
    /// Memory limit in bytes.
    pub memory_limit: u64,
    /// Bytes of stdout and of stderr kept as the function's logs.
    pub logs_cap: usize,
    /// What the guest may call over `wasi:http/outgoing-handler` (nothing by default).
    pub outbound: OutboundPolicy,
    /// Receives what the guest printed once its run ended (after the response and
    /// its body: the response never waits for it); `None`: the logs are only traced.
    pub logs: Option<tokio::sync::oneshot::Sender<GuestLogs>>,
}

/// What a guest printed while it served one request, each stream capped at
/// [`HttpRequest::logs_cap`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestLogs {
    /// stdout, as text.
    pub stdout: String,
    /// stderr, as text.
    pub stderr: String,
    /// More was written to stdout or stderr than the cap.
    pub overflow: bool,
}

/// The guest's answer: its status and headers, and its body streamed as the guest
/// writes it (the stream fails if the guest fails or times out mid-body).
pub struct HttpResponse {
    /// Status and headers.
    pub head: ::http::response::Parts,
    /// The body.
    pub body: ByteStream,
}

/// How an exchange ended before a response was set.
pub enum HttpOutcome {
    /// The guest set a response.
    Response(HttpResponse),
    /// The guest returned, trapped or failed without setting a response.
    NoResponse(String),
    /// The timeout passed before a response was set.
    TimedOut,
}

/// Serves requests with functions that are HTTP handlers.
#[async_trait]
pub trait HttpHandler: Send + Sync + 'static {
    /// True when the function is an HTTP handler (this loads it, as a run would).
    async fn handles(&self, function: &Function) -> Result<bool>;
    /// Serves one request with a fresh instance. A guest's failure is
    /// `Ok(HttpOutcome::NoResponse)`; `Err` is the platform's (e.g. `Overloaded`).
    async fn handle(&self, request: HttpRequest) -> Result<HttpOutcome>;
}
