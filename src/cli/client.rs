//! The HTTP client of the client commands and their error type: an API error is
//! shown as the API's own message.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;

use super::exit;
use super::session::Target;

/// What can go wrong in a client command; `Display` is the message shown.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The API answered with an error.
    #[error("{message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The `error` code of the body.
        code: String,
        /// The `message` of the body (with a hint for some statuses).
        message: String,
    },
    /// No token for this URL: neither saved by `faas login` nor in FAAS_TOKEN.
    #[error("not logged in to {0}: run `faas login --username NAME` (or set FAAS_TOKEN)")]
    NotLoggedIn(String),
    /// A wrong argument (exit status 2, as clap's own usage errors).
    #[error("{0}")]
    Usage(String),
    /// A name that names nothing of the caller's.
    #[error("{0}")]
    NotFound(String),
    /// The API could not be reached or the transfer broke.
    #[error("{0}")]
    Transport(String),
    /// A local file or terminal error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An execution ended other than `completed` (or did not end in time).
    #[error("{message}")]
    Execution {
        /// The exit status that tells how it ended.
        code: i32,
        /// What to show.
        message: String,
    },
}

/// Result of a client command.
pub type CliResult<T = ()> = Result<T, CliError>;

impl CliError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Execution { code, .. } => *code,
            CliError::Usage(_) => exit::USAGE,
            _ => exit::ERROR,
        }
    }

    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
        let context = context.into();
        move |source| CliError::Io { context, source }
    }

    /// True for an API answer of this status.
    pub fn is_status(&self, want: u16) -> bool {
        matches!(self, CliError::Api { status, .. } if *status == want)
    }

    fn transport(url: &str, e: &reqwest::Error) -> CliError {
        let mut text = if e.is_connect() {
            format!("cannot reach {url}")
        } else if e.is_timeout() {
            format!("no answer from {url} in time")
        } else {
            format!("request to {url} failed")
        };
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        CliError::Transport(text)
    }
}

/// Text of a path segment (a name or id typed by the user), percent-encoded.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A client of one API with an optional bearer token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client of `target` (its URL and token).
    pub fn new(target: &Target) -> CliResult<Client> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("faas-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Transport(format!("cannot set up HTTP: {e}")))?;
        Ok(Client {
            http,
            base: target.url.trim_end_matches('/').to_string(),
            token: target.token.clone(),
        })
    }

    /// A client of the saved (or overridden) session; an error when not logged in.
    pub fn logged_in() -> CliResult<Client> {
        let target = super::session::target(None)?;
        if target.token.is_none() {
            return Err(CliError::NotLoggedIn(target.url));
        }
        Client::new(&target)
    }

    /// The API's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A request to `path` (from `/`), with the token when there is one.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Sends a request; a non-2xx answer is the API's error.
    pub async fn send(&self, req: RequestBuilder) -> CliResult<Response> {
        let res = req
            .send()
            .await
            .map_err(|e| CliError::transport(&self.base, &e))?;
        if res.status().is_success() {
            return Ok(res);
        }
        Err(api_error(res, self.token.is_some()).await)
    }

    /// Sends a request and reads its JSON answer (`null` for an empty body).
    pub async fn json(&self, req: RequestBuilder) -> CliResult<Value> {
        let res = self.send(req).await?;
        let bytes = res
            .bytes()
            .await
            .map_err(|e| CliError::transport(&self.base, &e))?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| CliError::Transport(format!("the API answered with bad JSON: {e}")))
    }

    /// `GET path` as JSON.
    pub async fn get(&self, path: &str) -> CliResult<Value> {
        self.json(self.request(Method::GET, path)).await
    }

    /// `POST path` with a JSON body, as JSON.
    pub async fn post(&self, path: &str, body: &Value) -> CliResult<Value> {
        self.json(self.request(Method::POST, path).json(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> CliResult<()> {
        self.send(self.request(Method::DELETE, path)).await?;
        Ok(())
    }
}

/// Decodes a JSON answer into `T` (a shape the API documents).
pub fn decode<T: serde::de::DeserializeOwned>(v: Value) -> CliResult<T> {
    serde_json::from_value(v)
        .map_err(|e| CliError::Transport(format!("unexpected answer from the API: {e}")))
}

/// The API's `{"error", "message"}` of a failed answer, or its status and text.
/// With `had_token`, a 401 says to log in again.
async fn api_error(res: Response, had_token: bool) -> CliError {
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let code = body["error"].as_str().unwrap_or("").to_string();
    let mut message = match body["message"].as_str() {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => {
            let short: String = text.trim().chars().take(200).collect();
            format!(
                "HTTP {status}{}",
                if short.is_empty() {
                    String::new()
                } else {
                    format!(": {short}")
                }
            )
        }
    };
    if status == StatusCode::UNAUTHORIZED && had_token {
        message.push_str(" (log in again with `faas login`)");
    }
    CliError::Api {
        status: status.as_u16(),
        code,
        message,
    }
}
