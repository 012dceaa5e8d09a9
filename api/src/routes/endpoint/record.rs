//! Metrics and execution records of the calls of the functions' endpoints.
//!
//! Every call that found its function is counted by function id and HTTP status,
//! with its duration (to the end of the response body). Failed calls (the guest
//! failed, set no response, timed out, or answered a 5xx), and with
//! FAAS_HTTP_RECORD=`all` every call, are written as execution records with
//! `trigger: "http"`: final at once, never queued, never counted as active. A
//! task of their own writes them once the guest's logs are in, so the response
//! never waits; at most [`MAX_PENDING`] writes wait at once, and a record past
//! that is dropped with a warning and `faas_http_records_dropped_total`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Uri};
use faas_runtime::model::{Execution, ExecutionStatus, Function, Trigger, new_id, now};
use faas_runtime::outcome::FinalFields;
use faas_runtime::ports::GuestLogs;
use faas_runtime::store::Store;
use time::OffsetDateTime;
use tokio::sync::{Semaphore, oneshot};

use super::pump::End;

/// Records waiting to be written at once; more are dropped.
pub const MAX_PENDING: usize = 256;

/// Which calls are written as execution records (FAAS_HTTP_RECORD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpRecord {
    /// Failed calls: the guest failed, set no response, timed out, or answered 5xx.
    #[default]
    Errors,
    /// Every call.
    All,
    /// None (the metrics still count every call).
    None,
}

impl std::str::FromStr for HttpRecord {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "errors" => Ok(HttpRecord::Errors),
            "all" => Ok(HttpRecord::All),
            "none" => Ok(HttpRecord::None),
            _ => Err(format!("{s:?}: use errors, all or none")),
        }
    }
}

impl HttpRecord {
    /// True when a call that ended `status`, answered `http_status`, is recorded.
    pub fn wants(self, status: ExecutionStatus, http_status: u16) -> bool {
        match self {
            HttpRecord::None => false,
            HttpRecord::All => true,
            HttpRecord::Errors => status != ExecutionStatus::Completed || http_status >= 500,
        }
    }
}

/// Writes the records of calls, bounded.
pub struct Recorder {
    store: Store,
    mode: HttpRecord,
    pending: Arc<Semaphore>,
    warned: AtomicBool,
}

impl Recorder {
    /// Records calls into `store` as `mode` says.
    pub fn new(store: Store, mode: HttpRecord) -> Self {
        Recorder {
            store,
            mode,
            pending: Arc::new(Semaphore::new(MAX_PENDING)),
            warned: AtomicBool::new(false),
        }
    }

    /// A call of `function` (the request as the guest sees it) begins now; the
    /// guest's logs are awaited at most `timeout` past its end.
    pub fn begin(self: &Arc<Self>, function: &Function, head: &Parts, timeout: Duration) -> Call {
        let (tx, rx) = match self.mode {
            HttpRecord::None => (None, None),
            _ => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            }
        };
        Call(Arc::new(CallInner {
            recorder: self.clone(),
            function_id: function.id.clone(),
            owner_id: function.owner_id.clone(),
            method: head.method.clone(),
            uri: head.uri.clone(),
            started: Instant::now(),
            started_at: now(),
            logs_tx: Mutex::new(tx),
            logs_rx: Mutex::new(rx),
            logs_wait: timeout.saturating_add(Duration::from_secs(2)),
            done: AtomicBool::new(false),
        }))
    }

    /// Spawns the write of `e` (its logs from `logs` when given), or drops it when
    /// too many writes wait.
    fn write(
        self: &Arc<Self>,
        mut e: Execution,
        logs: Option<oneshot::Receiver<GuestLogs>>,
        wait: Duration,
    ) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Ok(permit) = self.pending.clone().try_acquire_owned() else {
            self.dropped(&e, "too many records wait to be written");
            return;
        };
        let recorder = self.clone();
        runtime.spawn(async move {
            if let Some(rx) = logs
                && let Ok(Ok(printed)) = tokio::time::timeout(wait, rx).await
            {
                e.output = Some(printed.stdout).filter(|s| !s.is_empty());
                e.logs = Some(printed.stderr).filter(|s| !s.is_empty());
            }
            match recorder.store.record_finished_execution(&e).await {
                Ok(_) => recorder.warned.store(false, Ordering::Relaxed),
                Err(err) => recorder.dropped(&e, &err.to_string()),
            }
            drop(permit);
        });
    }

    /// Counts a record not written; warns once until a write succeeds again.
    fn dropped(&self, e: &Execution, why: &str) {
        faas_runtime::metrics::http_record_dropped();
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(function.id = %e.function_id, execution.id = %e.id, why,
                "the record of an HTTP call was dropped (and maybe more, see faas_http_records_dropped_total)");
        }
    }
}

/// A call in progress. Clones share it; the first of [`Call::refused`],
/// [`Call::ended`] and [`Call::ran`] counts it, the others do nothing.
#[derive(Clone)]
pub struct Call(Arc<CallInner>);

struct CallInner {
    recorder: Arc<Recorder>,
    function_id: String,
    owner_id: String,
    method: Method,
    uri: Uri,
    started: Instant,
    started_at: OffsetDateTime,
    logs_tx: Mutex<Option<oneshot::Sender<GuestLogs>>>,
    logs_rx: Mutex<Option<oneshot::Receiver<GuestLogs>>>,
    logs_wait: Duration,
    done: AtomicBool,
}

impl Call {
    /// Where the guest sends its logs (`None` when no record is ever written).
    pub fn logs_sender(&self) -> Option<oneshot::Sender<GuestLogs>> {
        lock(&self.0.logs_tx).take()
    }

    /// The call was answered `http_status` without running the function (a
    /// refusal or a platform error): counted, never recorded.
    pub fn refused(&self, http_status: u16) {
        self.count(http_status);
    }

    /// A handler's exchange ended: `error` says why it failed; its logs come from
    /// the guest through [`Call::logs_sender`].
    pub fn ended(&self, http_status: u16, status: ExecutionStatus, error: Option<String>) {
        let Some(took) = self.count(http_status) else {
            return;
        };
        if !self.0.recorder.mode.wants(status, http_status) {
            return;
        }
        let mut e = self.execution(status, http_status, took);
        e.error = error;
        let logs = lock(&self.0.logs_rx).take();
        self.0.recorder.write(e, logs, self.0.logs_wait);
    }

    /// A handler's response body ended as the pump says (see [`End`]).
    pub fn body_ended(&self, http_status: u16, end: End) {
        let error = match end {
            End::Complete => None,
            End::Failed(e) => Some(format!("the response body failed: {e}")),
            End::Cut => Some("the client stopped reading the response: it was cut".into()),
            End::ReaderGone => Some("the client went away before the end of the response".into()),
        };
        let status = match error {
            None => ExecutionStatus::Completed,
            Some(_) => ExecutionStatus::Failed,
        };
        self.ended(http_status, status, error);
    }

    /// A run through an executor ended with `fields`, answered `http_status`.
    pub fn ran(&self, http_status: u16, fields: &FinalFields) {
        let Some(took) = self.count(http_status) else {
            return;
        };
        if !self.0.recorder.mode.wants(fields.status, http_status) {
            return;
        }
        let mut e = self.execution(fields.status, http_status, took);
        e.output = fields.output.clone();
        e.result = fields.result.clone();
        e.error = fields.error.clone();
        e.exit_code = fields.exit_code;
        e.logs = fields.logs.clone();
        self.0.recorder.write(e, None, Duration::ZERO);
    }

    /// Counts the call once; its duration, or `None` when it was counted already.
    fn count(&self, http_status: u16) -> Option<Duration> {
        if self.0.done.swap(true, Ordering::AcqRel) {
            return None;
        }
        let took = self.0.started.elapsed();
        faas_runtime::metrics::function_http_call(&self.0.function_id, http_status, took);
        Some(took)
    }

    fn execution(&self, status: ExecutionStatus, http_status: u16, took: Duration) -> Execution {
        let c = &self.0;
        Execution {
            id: new_id(),
            function_id: c.function_id.clone(),
            owner_id: c.owner_id.clone(),
            status,
            input: request_summary(&c.method, &c.uri),
            output: None,
            result: None,
            error: None,
            exit_code: None,
            logs: None,
            attempt: 1,
            deferrals: 0,
            created_at: c.started_at,
            started_at: Some(c.started_at),
            completed_at: Some(now()),
            duration_ms: Some(u64::try_from(took.as_millis()).unwrap_or(u64::MAX)),
            traceparent: None,
            callback: None,
            function_version: None,
            retry_of: None,
            schedule_id: None,
            trigger: Trigger::Http,
            http_status: Some(http_status),
        }
    }
}

/// The status of a call the platform answered `http_status` for the function (a
/// 504 is a timeout, anything else a failure).
pub fn failure(http_status: StatusCode) -> ExecutionStatus {
    if http_status == StatusCode::GATEWAY_TIMEOUT {
        ExecutionStatus::TimedOut
    } else {
        ExecutionStatus::Failed
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The input of a call's record: method, path and query as the guest saw them
/// (never the headers, which may carry credentials, nor the body).
fn request_summary(method: &Method, uri: &Uri) -> String {
    serde_json::json!({"http": {
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query().unwrap_or(""),
    }})
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_in_any_case_and_pick_what_is_recorded() {
        assert_eq!("Errors".parse::<HttpRecord>(), Ok(HttpRecord::Errors));
        assert_eq!("all".parse::<HttpRecord>(), Ok(HttpRecord::All));
        assert_eq!("NONE".parse::<HttpRecord>(), Ok(HttpRecord::None));
        assert!("some".parse::<HttpRecord>().is_err());
        let errors = HttpRecord::Errors;
        assert!(!errors.wants(ExecutionStatus::Completed, 200));
        assert!(!errors.wants(ExecutionStatus::Completed, 404));
        assert!(errors.wants(ExecutionStatus::Completed, 502));
        assert!(errors.wants(ExecutionStatus::Failed, 500));
        assert!(errors.wants(ExecutionStatus::TimedOut, 504));
        assert!(HttpRecord::All.wants(ExecutionStatus::Completed, 200));
        assert!(!HttpRecord::None.wants(ExecutionStatus::Failed, 500));
    }
}
