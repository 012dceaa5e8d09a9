//! W3C trace context (`traceparent`). Every request gets one: the caller's, when its
//! `traceparent` header is well formed, else a new trace. The request's span records
//! the trace id; the response carries the header back; a submitted execution keeps it
//! on its record ([`faas_runtime::model::Execution::traceparent`]), so the worker's
//! log lines of that execution, in whatever process, carry the same trace id.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;
use std::sync::{Arc, OnceLock};

/// The header's name.
pub const TRACEPARENT: &str = "traceparent";

/// A request's trace context.
#[derive(Debug, Clone)]
pub struct TraceContext {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// This hop's span id: 16 lowercase hex digits (the exported span's, once the
    /// request's span joined the trace through an exporter).
    span_id: String,
    /// Trace flags (`01` = sampled).
    pub flags: String,
    /// The caller's `traceparent`, when it sent a well-formed one.
    parent: Option<String>,
    exported: Arc<OnceLock<String>>,
}

impl TraceContext {
    /// The caller's context (a new span id in its trace), or a new trace.
    pub fn from_header(value: Option<&str>) -> Self {
        let given = value.and_then(|v| parse(v).map(|p| (v.trim().to_string(), p)));
        let (parent, (trace_id, flags)) = match given {
            Some((header, found)) => (Some(header), found),
            None => (None, (random_hex(16), "01".to_string())),
        };
        TraceContext {
            trace_id,
            span_id: random_hex(8),
            flags,
            parent,
            exported: Arc::new(OnceLock::new()),
        }
    }

    /// This hop's span id.
    pub fn span_id(&self) -> &str {
        self.exported.get().unwrap_or(&self.span_id)
    }

    /// `00-<trace id>-<span id>-<flags>`.
    pub fn header(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id(), self.flags)
    }

    /// Joins the request's `span` (not yet entered) to the trace: records the trace
    /// id and, with an exporter, makes the exported span a child of the parent.
    pub fn join(&self, span: &tracing::Span) {
        span.record("trace_id", tracing::field::display(&self.trace_id));
        if !faas_runtime::trace_context::installed() {
            return;
        }
        // Without a caller, the exported span hangs under a root named by this hop's
        // own ids.
        let parent = self
            .parent
            .clone()
            .unwrap_or_else(|| format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags));
        if let Some(own) = faas_runtime::trace_context::adopt(span, &parent)
            && let Some(span_id) = own.split('-').nth(2)
        {
            let _ = self.exported.set(span_id.to_string());
        }
    }
}

/// The trace id and flags of a well-formed version-00 `traceparent`.
fn parse(value: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = value.trim().split('-').collect();
    let [version, trace_id, span_id, flags] = parts.as_slice() else {
        return None;
    };
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let ok = *version == "00"
        && hex(trace_id, 32)
        && hex(span_id, 16)
        && hex(flags, 2)
        && trace_id.bytes().any(|b| b != b'0')
        && span_id.bytes().any(|b| b != b'0');
    ok.then(|| (trace_id.to_string(), flags.to_string()))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    if buf.iter().all(|b| *b == 0) {
        buf[0] = 1;
    }
    hex::encode(buf)
}

/// Takes or makes the request's [`TraceContext`] and hands it to the request's span
/// (which [`TraceContext::join`]s it) and to the handlers as an extension; answers
/// with it. Runs outside the span layer.
pub async fn propagate(mut req: Request, next: Next) -> Response {
    let header = req.headers().get(TRACEPARENT).and_then(|v| v.to_str().ok());
    let ctx = TraceContext::from_header(header);
    req.extensions_mut().insert(ctx.clone());
    let mut res = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&ctx.header()) {
        res.headers_mut().insert(TRACEPARENT, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_parent_keeps_its_trace_and_flags() {
        let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ctx = TraceContext::from_header(Some(given));
        assert_eq!(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.flags, "01");
        assert_ne!(
            ctx.span_id, "00f067aa0ba902b7",
            "a new span of the same trace"
        );
        assert_eq!(ctx.header().len(), 55);
    }

    #[test]
    fn a_malformed_parent_starts_a_new_trace() {
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ] {
            let ctx = TraceContext::from_header(Some(bad));
            assert_ne!(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", "{bad}");
            assert_eq!(ctx.trace_id.len(), 32);
            assert!(
                parse(&ctx.header()).is_some(),
                "a made context is well formed"
            );
        }
    }
}
