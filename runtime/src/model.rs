//! Domain records kept in the key-value store, and the names they are kept under;
//! [`runnable`] says what a function version runs (one arm per executor),
//! [`version`] has versions and aliases, [`http`] the records of functions served
//! over HTTP, [`schedule`] their schedules.

pub mod http;
pub mod schedule;

pub use http::{HttpAccess, HttpKey, HttpSettings, Trigger};
pub use schedule::{CatchUp, Schedule};

mod callback;
pub mod runnable;
pub mod version;

pub use runnable::{ImageSpec, Runnable, WasmKind, WasmModule};

pub use version::{FunctionVersion, LATEST, VersionIndex};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use callback::{Callback, CallbackState};

/// Current time, UTC.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A new time-ordered id (UUID v7): ids sort in creation order.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including other users' listings.
    Admin,
    /// Own resources only.
    User,
}

/// A registered account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// Stable id.
    pub id: String,
    /// Login name as registered; unique in its [`canonical_username`] form.
    pub username: String,
    /// Argon2id PHC string; never leaves the API.
    pub password_hash: String,
    /// Admin or user.
    pub role: Role,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Tokens carry the generation they were issued in; bumping it (password change,
    /// log-out-everywhere) ends every earlier token. 0 for records older than the field.
    #[serde(default)]
    pub token_generation: u64,
}

/// The form in which usernames are unique and throttled: usernames are ASCII
/// (`A-Z a-z 0-9 . _ -`), so the canonical form is the ASCII lower case.
/// (Non-ASCII names are refused at registration, so no Unicode folding is needed.)
pub fn canonical_username(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Which executor runs a function (the arm of its [`Runnable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// A wasm module or component run in-process by Wasmtime.
    Wasm,
    /// An OCI image run by the Docker engine.
    Docker,
}

impl RuntimeKind {
    /// `wasm` or `docker`, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeKind::Wasm => "wasm",
            RuntimeKind::Docker => "docker",
        }
    }
}

/// When the Docker executor pulls a function's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum PullPolicy {
    /// Pull only when the image is not present locally.
    #[default]
    IfNotPresent,
    /// Pull before every execution.
    Always,
    /// Never pull; the image must be present.
    Never,
}

/// Most warm containers a function may ask for (`warm`).
pub const MAX_WARM: u32 = 8;

/// A deployed function.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Function {
    /// Stable id.
    pub id: String,
    /// Owner's user id.
    pub owner_id: String,
    /// Name given by the owner.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// What it runs: `runtime` (`wasm` or `docker`) and that runtime's fields.
    #[serde(flatten)]
    pub runnable: Runnable,
    /// Hard timeout of one execution.
    pub timeout_secs: u64,
    /// Memory limit of one execution.
    pub memory_mb: u64,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    /// Its versions and aliases; the fields above (but `name` and `description`)
    /// mirror the newest version.
    #[serde(flatten)]
    pub versions: VersionIndex,
}

/// Where an execution is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Accepted, waiting in the queue.
    Pending,
    /// A worker runs it.
    Running,
    /// Exited 0 without an `error` key.
    Completed,
    /// The guest failed, or it could not be run.
    Failed,
    /// Ran past its timeout and was killed.
    TimedOut,
    /// Cancelled by its owner.
    Cancelled,
}

impl ExecutionStatus {
    /// True for the states an execution never leaves.
    pub fn is_final(self) -> bool {
        !matches!(self, ExecutionStatus::Pending | ExecutionStatus::Running)
    }

    /// The wire name (`timed_out`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Pending => "pending",
            ExecutionStatus::Running => "running",
            ExecutionStatus::Completed => "completed",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::TimedOut => "timed_out",
            ExecutionStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

/// One run of a function, as CONTRACT.md §2 describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Execution {
    /// Stable id (also the queue message id).
    pub id: String,
    /// The function run.
    pub function_id: String,
    /// Owner's user id.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub owner_id: String,
    /// Life-cycle state.
    pub status: ExecutionStatus,
    /// The input JSON text given to the function.
    pub input: String,
    /// Captured stdout.
    pub output: Option<String>,
    /// stdout parsed as JSON, when it is JSON.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub result: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// The guest's exit code.
    pub exit_code: Option<i32>,
    /// Captured stderr.
    pub logs: Option<String>,
    /// Delivery attempt that produced this record (1-based; 0 while pending).
    pub attempt: u32,
    /// Times its preparation failed or no executor was ready (not attempts); past
    /// the operator's bound (FAAS_PREPARE_MAX_RETRIES) the execution fails.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deferrals: u32,
    /// Submission time.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    /// When the last attempt started.
    #[serde(with = "time::serde::rfc3339::option", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub started_at: Option<OffsetDateTime>,
    /// When it reached a final state.
    #[serde(with = "time::serde::rfc3339::option", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub completed_at: Option<OffsetDateTime>,
    /// Run time of the last attempt in milliseconds.
    pub duration_ms: Option<u64>,
    /// The W3C trace context of the request that submitted it
    /// (`00-<trace id>-<span id>-<flags>`): the worker's log lines carry its trace id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The signed callback of the final record, when the submit asked for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<Callback>,
    /// The version of the function it runs (every attempt runs this one); absent
    /// on records older than versions (they ran the function's only version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_version: Option<u64>,
    /// The execution this one retries (`POST /api/executions/{id}/retry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<String>,
    /// What started it: `api` (submitted and queued) or `http` (a call of the
    /// function's endpoint, recorded when it ended).
    #[serde(default)]
    pub trigger: Trigger,
    /// The HTTP status answered, for `trigger: "http"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The schedule that made it (absent for a submit or an invoke).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_id: Option<String>,
}

impl Execution {
    /// A fresh `pending` execution.
    pub fn pending(function: &Function, input: String) -> Self {
        Execution {
            id: new_id(),
            function_id: function.id.clone(),
            owner_id: function.owner_id.clone(),
            status: ExecutionStatus::Pending,
            input,
            output: None,
            result: None,
            error: None,
            exit_code: None,
            logs: None,
            attempt: 0,
            deferrals: 0,
            created_at: now(),
            started_at: None,
            completed_at: None,
            duration_ms: None,
            traceparent: None,
            callback: None,
            function_version: Some(function.versions.latest_version.max(1)),
            retry_of: None,
            trigger: Trigger::Api,
            http_status: None,
            schedule_id: None,
        }
    }

    /// The trace id of [`Execution::traceparent`], if it has one.
    pub fn trace_id(&self) -> Option<&str> {
        self.traceparent.as_deref()?.split('-').nth(1)
    }
}

/// What a listing shows of an execution: everything but the input, output, logs
/// and result (read the execution by id for those), with their sizes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecutionSummary {
    /// Stable id.
    pub id: String,
    /// The function run.
    pub function_id: String,
    /// Life-cycle state.
    pub status: ExecutionStatus,
    /// Why it failed (at most [`SUMMARY_ERROR_MAX`] bytes; the record has all of it).
    pub error: Option<String>,
    /// The guest's exit code.
    pub exit_code: Option<i32>,
    /// Delivery attempt of the record.
    pub attempt: u32,
    /// Bytes of the input.
    pub input_bytes: u64,
    /// Bytes of captured stdout.
    pub output_bytes: u64,
    /// Bytes of captured stderr.
    pub logs_bytes: u64,
    /// Submission time.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    /// When the last attempt started.
    #[serde(with = "time::serde::rfc3339::option", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub started_at: Option<OffsetDateTime>,
    /// When it reached a final state.
    #[serde(with = "time::serde::rfc3339::option", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub completed_at: Option<OffsetDateTime>,
    /// Run time of the last attempt in milliseconds.
    pub duration_ms: Option<u64>,
    /// What started it: `api` or `http`.
    #[serde(default)]
    pub trigger: Trigger,
    /// The HTTP status answered, for `trigger: "http"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The schedule that made it (absent for a submit or an invoke).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_id: Option<String>,
}

/// Longest error text in an [`ExecutionSummary`].
pub const SUMMARY_ERROR_MAX: usize = 512;

impl ExecutionSummary {
    /// The summary of `e`, whose input, output and logs have these sizes.
    pub fn of(e: &Execution, (input_bytes, output_bytes, logs_bytes): (u64, u64, u64)) -> Self {
        ExecutionSummary {
            id: e.id.clone(),
            function_id: e.function_id.clone(),
            status: e.status,
            error: e.error.as_deref().map(|m| truncate(m, SUMMARY_ERROR_MAX)),
            exit_code: e.exit_code,
            attempt: e.attempt,
            input_bytes,
            output_bytes,
            logs_bytes,
            created_at: e.created_at,
            started_at: e.started_at,
            completed_at: e.completed_at,
            duration_ms: e.duration_ms,
            trigger: e.trigger,
            http_status: e.http_status,
            schedule_id: e.schedule_id.clone(),
        }
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// A per-user secret; the value is sealed with the platform's AEAD key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Secret {
    /// Stable id.
    pub id: String,
    /// Owner's user id.
    pub owner_id: String,
    /// Name as given (the env var is its upper-case form).
    pub name: String,
    /// Nonce and ciphertext, base64-free raw bytes.
    pub sealed: Vec<u8>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last value change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Per-user limits; each one set here overrides the operator's default for that
/// user (`0` means no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    /// Executions queued or running at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 1_000_000_000_000_000_u64)
    )]
    pub max_active_executions: Option<u64>,
    /// Submissions per minute (a token bucket holding a minute's worth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 1_000_000_000_000_000_u64)
    )]
    pub submissions_per_minute: Option<u64>,
    /// Bytes of stored objects over all the user's functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 1_000_000_000_000_000_u64)
    )]
    pub max_object_bytes: Option<u64>,
    /// Functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 1_000_000_000_000_000_u64)
    )]
    pub max_functions: Option<u64>,
    /// Secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 1_000_000_000_000_000_u64)
    )]
    pub max_secrets: Option<u64>,
}

/// Largest value of a quota (10^15: far beyond any real limit, exact in JSON).
pub const MAX_QUOTA: u64 = 1_000_000_000_000_000;

impl Quotas {
    /// `self`'s values where set, else `defaults`'.
    pub fn or(self, defaults: Quotas) -> Quotas {
        Quotas {
            max_active_executions: self
                .max_active_executions
                .or(defaults.max_active_executions),
            submissions_per_minute: self
                .submissions_per_minute
                .or(defaults.submissions_per_minute),
            max_object_bytes: self.max_object_bytes.or(defaults.max_object_bytes),
            max_functions: self.max_functions.or(defaults.max_functions),
            max_secrets: self.max_secrets.or(defaults.max_secrets),
        }
    }
}

/// Metadata of a stored object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObjectMeta {
    /// Object name within its bucket.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Content type given at upload.
    pub content_type: String,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// Upload time.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
}

/// Checks a user-chosen name (object, secret, function): 1-128 chars of
/// `[A-Za-z0-9._-]`, not starting with a dot.
pub fn validate_name(kind: &str, name: &str) -> crate::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(crate::Error::Invalid(format!(
            "{kind} name must be 1-128 characters of A-Z a-z 0-9 . _ - and not start with a dot"
        )))
    }
}

/// The object-store bucket holding wasm modules, named by their hex SHA-256.
pub const MODULES_BUCKET: &str = "modules";

/// The object-store bucket of a function's objects.
pub fn objects_bucket(function_id: &str) -> String {
    format!("fn-{function_id}")
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
impl Function {
    /// A wasm function of `owner` for unit tests (1 s, 1 MB, no module).
    pub(crate) fn fixture(owner: &str) -> Function {
        Function {
            id: "f".into(),
            owner_id: owner.into(),
            name: "n".into(),
            description: String::new(),
            runnable: Runnable::Wasm(WasmModule::default()),
            timeout_secs: 1,
            memory_mb: 1,
            created_at: now(),
            versions: VersionIndex::first(),
        }
    }
}
