//! [`Link`]: the client and JetStream context every NATS backend shares, and the
//! one place where async-nats errors become [`crate::Error`]s.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::{self, ErrorCode};
use async_nats::{Client, ConnectErrorKind, ConnectOptions, Event, ServerAddr};
use bytes::Bytes;
use tokio::sync::watch;

use super::{NatsAuth, NatsConfig};
use crate::{Error, Result};

/// Longest pause between two reconnection attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(2);

/// One NATS connection with its JetStream context; cheap to clone.
#[derive(Clone)]
pub(crate) struct Link {
    client: Client,
    js: jetstream::Context,
    /// True from a disconnection until the next connection.
    down: watch::Receiver<bool>,
    /// Replicas of the streams this process creates.
    replicas: usize,
}

impl Link {
    /// Connects once (no retry: a wrong URL fails at once); reconnects forever after.
    pub(crate) async fn connect(url: &str, config: &NatsConfig) -> Result<Self> {
        let (tx, down) = watch::channel(false);
        let servers = server_addrs(url)?;
        let options = options(&config.auth)
            .await?
            .name("faas")
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(config.request_timeout))
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| {
                let ms = 100u64.saturating_mul(attempts as u64);
                Duration::from_millis(ms).min(MAX_RECONNECT_DELAY)
            })
            .event_callback(move |event| {
                let tx = tx.clone();
                async move { on_event(&tx, event) }
            });
        let shown = redact(url);
        let client = options.connect(servers).await.map_err(|e| match e.kind() {
            ConnectErrorKind::ServerParse => Error::Invalid(format!("NATS url {shown:?}: {e}")),
            ConnectErrorKind::AuthorizationViolation => Error::Invalid(format!(
                "NATS at {shown} refused the credentials (FAAS_NATS_USER/FAAS_NATS_PASSWORD, FAAS_NATS_TOKEN or FAAS_NATS_CREDS): {e}"
            )),
            ConnectErrorKind::Tls => Error::Invalid(format!("TLS to NATS at {shown}: {e}")),
            _ => Error::Unavailable(format!("cannot connect to NATS at {shown}: {e}")),
        })?;
        let js = jetstream::ContextBuilder::new()
            .timeout(config.request_timeout)
            .ack_timeout(config.request_timeout)
            .build(client.clone());
        tracing::info!(url = %shown, "connected to NATS");
        Ok(Link {
            client,
            js,
            down,
            replicas: config.replicas.max(1),
        })
    }

    /// Replicas of the streams this process creates.
    pub(crate) fn replicas(&self) -> usize {
        self.replicas
    }

    /// The core NATS client.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The JetStream context.
    pub(crate) fn js(&self) -> &jetstream::Context {
        &self.js
    }

    /// `Unavailable` while the connection is down (the client is reconnecting).
    pub(crate) fn check(&self) -> Result<()> {
        match self.client.connection_state() {
            State::Connected => Ok(()),
            state => Err(Error::Unavailable(format!(
                "NATS connection is {state:?}; reconnecting"
            ))),
        }
    }

    /// Runs `op` while the connection is up: `Unavailable` at once if it is down,
    /// or as soon as it drops before `op` completes (instead of a request timeout).
    pub(crate) async fn run<F: Future>(&self, what: &str, op: F) -> Result<F::Output> {
        self.check()?;
        let mut down = self.down.clone();
        // Only a disconnection after this point counts: the flag may still be set
        // from an outage the client has already recovered from.
        down.mark_unchanged();
        let dropped = async move {
            while down.changed().await.is_ok() {
                if *down.borrow_and_update() {
                    return;
                }
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            biased;
            out = op => Ok(out),
            () = dropped => Err(Error::Unavailable(format!(
                "NATS connection lost during {what}"
            ))),
        }
    }

    /// An infrastructure fault while doing `what`: retryable `Unavailable`.
    pub(crate) fn fault(&self, what: &str, err: impl Display) -> Error {
        let down = match self.client.connection_state() {
            State::Connected => "",
            _ => " (connection lost)",
        };
        Error::Unavailable(format!("NATS {what}{down}: {err}"))
    }

    /// A request/reply round trip on the plain client (acks with confirmation).
    pub(crate) async fn request(&self, what: &str, subject: String, body: Bytes) -> Result<Bytes> {
        self.run(what, self.client.request(subject, body))
            .await?
            .map(|m| m.payload)
            .map_err(|e| self.fault(what, e))
    }
}

/// The servers of a comma-separated URL list.
fn server_addrs(url: &str) -> Result<Vec<ServerAddr>> {
    let servers = url
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ServerAddr>()
                .map_err(|e| Error::Invalid(format!("NATS url {:?}: {e}", redact(s))))
        })
        .collect::<Result<Vec<_>>>()?;
    if servers.is_empty() {
        return Err(Error::Invalid("NATS_URL names no server".into()));
    }
    Ok(servers)
}

/// The URL without any `user:password@` part, for logs and errors.
pub fn redact(url: &str) -> String {
    url.split(',')
        .map(|u| match (u.find("://"), u.rfind('@')) {
            (Some(s), Some(at)) if at > s => format!("{}://***@{}", &u[..s], &u[at + 1..]),
            _ => u.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Connect options carrying the credentials and TLS settings.
async fn options(auth: &NatsAuth) -> Result<ConnectOptions> {
    let mut o = match &auth.creds_file {
        Some(path) => ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| Error::Invalid(format!("NATS creds file {}: {e}", path.display())))?,
        None => ConnectOptions::new(),
    };
    match (&auth.user, &auth.password) {
        (Some(u), Some(p)) => o = o.user_and_password(u.clone(), p.clone()),
        (None, None) => {}
        _ => {
            return Err(Error::Invalid(
                "FAAS_NATS_USER and FAAS_NATS_PASSWORD go together".into(),
            ));
        }
    }
    if let Some(t) = &auth.token {
        o = o.token(t.clone());
    }
    if let Some(ca) = &auth.ca_file {
        o = o.add_root_certificates(ca.clone()).require_tls(true);
    }
    match (&auth.client_cert, &auth.client_key) {
        (Some(c), Some(k)) => o = o.add_client_certificate(c.clone(), k.clone()),
        (None, None) => {}
        _ => {
            return Err(Error::Invalid(
                "FAAS_NATS_CERT and FAAS_NATS_KEY go together".into(),
            ));
        }
    }
    if auth.require_tls {
        o = o.require_tls(true);
    }
    Ok(o)
}

fn on_event(down: &watch::Sender<bool>, event: Event) {
    match event {
        Event::Connected => {
            down.send_replace(false);
            tracing::info!("NATS connection (re)established");
        }
        Event::Disconnected => {
            down.send_replace(true);
            tracing::warn!("NATS connection lost; reconnecting");
        }
        Event::LameDuckMode => tracing::warn!("NATS server entered lame duck mode"),
        other => tracing::debug!(event = %other, "NATS client event"),
    }
}

/// The JetStream API error code somewhere in `err` or its sources.
pub(crate) fn api_code(err: &(dyn std::error::Error + 'static)) -> Option<ErrorCode> {
    use async_nats::jetstream::context::{
        CreateStreamError, CreateStreamErrorKind, DeleteStreamError, DeleteStreamErrorKind,
        GetStreamError, GetStreamErrorKind,
    };
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(api) = e.downcast_ref::<jetstream::Error>() {
            return Some(api.error_code());
        }
        if let Some(g) = e.downcast_ref::<GetStreamError>()
            && let GetStreamErrorKind::JetStream(api) = g.kind()
        {
            return Some(api.error_code());
        }
        if let Some(c) = e.downcast_ref::<CreateStreamError>()
            && let CreateStreamErrorKind::JetStream(api) = c.kind()
        {
            return Some(api.error_code());
        }
        if let Some(d) = e.downcast_ref::<DeleteStreamError>()
            && let DeleteStreamErrorKind::JetStream(api) = d.kind()
        {
            return Some(api.error_code());
        }
        cur = e.source();
    }
    None
}

/// True when `err` says the stream (bucket) does not exist.
pub(crate) fn is_stream_not_found(err: &(dyn std::error::Error + 'static)) -> bool {
    api_code(err) == Some(ErrorCode::STREAM_NOT_FOUND)
}

/// `Invalid` unless `name` can name a JetStream bucket (`[A-Za-z0-9_-]+`).
pub(crate) fn check_bucket(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
    if !ok {
        return Err(Error::Invalid(format!("invalid bucket name {name:?}")));
    }
    Ok(())
}
