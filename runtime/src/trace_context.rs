//! Joining `tracing` spans to a W3C trace (`traceparent`) without tying the
//! libraries to a tracing backend. The binary installs a [`Join`] when it exports
//! spans (OTLP); the API's request span and a worker's execution span call
//! [`adopt`] with the context they continue. Without a hook, [`adopt`] does nothing
//! and the `trace_id` field the spans record is the whole story.

use std::sync::OnceLock;

/// Makes `span` a child of the remote `traceparent`; answers the span's own
/// `traceparent` (same trace, the span's own id) when the exporter assigned one.
pub type Join = Box<dyn Fn(&tracing::Span, &str) -> Option<String> + Send + Sync>;

static JOIN: OnceLock<Join> = OnceLock::new();

/// Installs the process's hook (the first one wins); false if one was installed.
pub fn install(join: Join) -> bool {
    JOIN.set(join).is_ok()
}

/// Whether an exporter installed a hook (callers skip building a parent otherwise).
pub fn installed() -> bool {
    JOIN.get().is_some()
}

/// Joins `span` to `traceparent` through the installed hook, if any; answers the
/// span's own `traceparent` when there is one.
pub fn adopt(span: &tracing::Span, traceparent: &str) -> Option<String> {
    JOIN.get().and_then(|join| join(span, traceparent))
}
