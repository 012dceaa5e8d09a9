//! The accept path shared by submit and invoke: validation of the input, the
//! `Idempotency-Key`, the quota check, the durable record and queue message.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use faas_runtime::input::{normalize, parse_value};
use faas_runtime::model::{Callback, Execution};
use faas_runtime::store::{Claim, IdempotencyRecord};
use sha2::{Digest, Sha256};

use crate::auth::Caller;
use crate::callbacks::guard;
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::routes::versions::VersionChoice;
use crate::state::AppState;

/// The request header naming an idempotent request.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The answer header of a replayed request.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// `Idempotency-Key` values: 1-255 printable ASCII characters, no space at either
/// end (an HTTP header loses those).
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[\\x21-\\x7E]([\\x20-\\x7E]{0,253}[\\x21-\\x7E])?$";

/// How long a duplicate waits for the winner's record to appear.
const WINNER_WAIT: Duration = Duration::from_secs(5);

/// An execution that was started, or found again by its idempotency key.
pub struct Started {
    /// The execution.
    pub exec: Execution,
    /// True when an earlier request with the same key made it.
    pub replayed: bool,
}

impl Started {
    /// `status` with `exec` as JSON, marked as a replay where it is one.
    pub fn respond(&self, status: StatusCode, exec: &Execution, extra: HeaderMap) -> Response {
        let mut res = (status, extra, ApiJson(exec)).into_response();
        if self.replayed {
            res.headers_mut()
                .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
        }
        res
    }
}

/// The `Idempotency-Key` of a request, if it has one (400 when malformed, see
/// [`IDEMPOTENCY_KEY_PATTERN`]).
pub fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1-255 printable ASCII characters",
        )
    };
    let text = value.to_str().map_err(|_| bad())?;
    let printable = text.bytes().all(|b| (0x20..=0x7e).contains(&b));
    let padded = text.starts_with(' ') || text.ends_with(' ');
    if text.is_empty() || padded || text.len() > 255 || !printable {
        return Err(bad());
    }
    Ok(Some(text.to_string()))
}

/// A pending execution of the newest version of the caller's `function_id` with
/// a validated `input` and `callback_url` (not yet recorded nor counted against
/// quotas).
pub async fn prepare(
    state: &AppState,
    caller: &Caller,
    function_id: &str,
    input: Option<serde_json::Value>,
    callback_url: Option<String>,
) -> ApiResult<Execution> {
    let latest = VersionChoice::default();
    prepare_at(state, caller, function_id, &latest, input, callback_url).await
}

/// [`prepare`] of the version `choice` names.
pub async fn prepare_at(
    state: &AppState,
    caller: &Caller,
    function_id: &str,
    choice: &VersionChoice,
    input: Option<serde_json::Value>,
    callback_url: Option<String>,
) -> ApiResult<Execution> {
    let callback = match callback_url {
        Some(url) => Some(pending_callback(state, &url)?),
        None => None,
    };
    let function = super::super::functions::owned(state, caller, function_id).await?;
    let version = choice.resolve(&function)?;
    let input = input.unwrap_or_else(|| serde_json::json!({}));
    // Parsed once: the body's JSON value (and a string input's text, once) is read
    // for its secrets and objects without parsing the text again.
    let (text, value) =
        normalize(input).map_err(|e| ApiError::bad_request("invalid_input", strip(e)))?;
    if text.len() > state.limits.max_input_bytes {
        return Err(ApiError::too_large(format!(
            "input is larger than {} bytes",
            state.limits.max_input_bytes
        )));
    }
    let parsed =
        parse_value(&value).map_err(|e| ApiError::bad_request("invalid_input", strip(e)))?;
    drop(value);
    for name in &parsed.secrets {
        if state.store.find_secret(&caller.id, name).await?.is_none() {
            return Err(ApiError::bad_request(
                "unknown_secret",
                format!("secret {name:?} does not exist"),
            ));
        }
    }
    let mut exec = Execution::pending(&function, text);
    exec.callback = callback;
    exec.function_version = Some(version);
    Ok(exec)
}

/// The pending callback of a submit, once its URL passes [`guard::check_url`]
/// (400 `invalid_callback_url` otherwise). No name is resolved here.
pub(crate) fn pending_callback(state: &AppState, url: &str) -> ApiResult<Callback> {
    match guard::check_url(url, state.limits.callback_allow_private) {
        Ok(url) => Ok(Callback::pending(url.to_string())),
        Err(why) => Err(ApiError::bad_request(
            "invalid_callback_url",
            format!("callback_url {why}"),
        )),
    }
}

/// Records and queues `exec` (quotas checked), or with `key` returns the
/// execution an earlier request with the same key and body made; the body
/// includes the version or alias the request chose (`choice`), not the version
/// it resolved to, so a replay after an alias moved finds the first execution.
pub async fn start(
    state: &AppState,
    caller: &Caller,
    exec: Execution,
    key: Option<(&str, &VersionChoice)>,
) -> ApiResult<Started> {
    let Some((key, choice)) = key else {
        return admit(state, caller, exec).await;
    };
    let hash = request_hash(&exec, choice);
    let record = IdempotencyRecord::new(&exec.id, &hash);
    let deadline = tokio::time::Instant::now() + WINNER_WAIT;
    loop {
        let first = match state
            .store
            .claim_idempotency(&caller.id, key, &record)
            .await?
        {
            Claim::Won => return admit_keyed(state, caller, exec, key).await,
            Claim::Taken(first) => first,
        };
        if first.request_hash != hash {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_mismatch",
                "this Idempotency-Key was used with a different request",
            ));
        }
        let found = state
            .store
            .get_execution(&first.execution_id, Some(&caller.id))
            .await?;
        if let Some((exec, _)) = found {
            return Ok(Started {
                exec,
                replayed: true,
            });
        }
        // The winner is still recording it (or failed and frees the key).
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "a request with this Idempotency-Key is still being accepted; retry",
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Quota check, record and queue message of a new execution.
async fn admit(state: &AppState, caller: &Caller, exec: Execution) -> ApiResult<Started> {
    crate::quotas::check_submit(state, &caller.id).await?;
    accept(state, exec.clone()).await?;
    Ok(Started {
        exec,
        replayed: false,
    })
}

/// [`admit`] for the holder of an idempotency key; a failure frees the key.
async fn admit_keyed(
    state: &AppState,
    caller: &Caller,
    exec: Execution,
    key: &str,
) -> ApiResult<Started> {
    let id = exec.id.clone();
    let admitted = admit(state, caller, exec).await;
    if admitted.is_err()
        && let Err(e) = state.store.release_idempotency(&caller.id, key, &id).await
    {
        tracing::warn!(error = %e, "the idempotency key of a failed request stays claimed until it expires");
    }
    admitted
}

/// Hash of what a request asks for: the function, the normalized input and the
/// callback URL (when there is one: hashes of requests without stay as they were).
/// The digest a key's request is compared by: function, input, callback URL and
/// the version or alias asked for (requests without either hash as before
/// versions existed, so keys claimed then still match).
fn request_hash(exec: &Execution, choice: &VersionChoice) -> String {
    let mut h = Sha256::new();
    h.update(exec.function_id.as_bytes());
    h.update([0]);
    h.update(exec.input.as_bytes());
    if let Some(cb) = &exec.callback {
        h.update([0]);
        h.update(cb.url.as_bytes());
    }
    if let Some(n) = choice.version {
        h.update([1]);
        h.update(n.to_be_bytes());
    }
    if let Some(alias) = &choice.alias {
        h.update([2]);
        h.update(alias.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Records and queues `exec` on a task of its own, so a client that goes away
/// cannot stop it halfway; a failure rolls back what was written.
pub(crate) async fn accept(state: &AppState, exec: Execution) -> ApiResult<()> {
    let (store, queue) = (state.store.clone(), state.queue.clone());
    let task = tokio::spawn(async move {
        let result = store.accept_execution(queue.as_ref(), &exec).await;
        if let Err(faas_runtime::Error::Conflict(_)) = &result {
            // The id is taken (a schedule's tick made by another process): the
            // record is that one's. Only the active markers written before the
            // refused create may be stray, if it is already final.
            let _ = store.forget_active(&exec.id).await;
            return result;
        }
        // A full queue is refused before anything is written: nothing to undo.
        let wrote = !matches!(result, Ok(_) | Err(faas_runtime::Error::Overloaded(_)));
        if wrote && let Err(e) = store.discard_execution(&exec).await {
            tracing::warn!(execution.id = %exec.id, error = %e, "rollback of a failed submit failed; the reconciler finishes it");
        }
        result
    });
    match task.await {
        Ok(result) => result.map(|_| ()).map_err(ApiError::from),
        Err(e) => Err(faas_runtime::Error::Internal(format!("submit task failed: {e}")).into()),
    }
}

fn strip(e: faas_runtime::Error) -> String {
    match e {
        faas_runtime::Error::Invalid(m) => m,
        other => other.to_string(),
    }
}
