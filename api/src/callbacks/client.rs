//! [`Sender`]: the HTTP client of callbacks. No proxy from the environment, no
//! redirects followed, a whole-request timeout, at most [`MAX_ANSWER_BYTES`] of an
//! answer read, and a DNS resolver that drops every address the policy refuses
//! ([`super::guard`]) and fails when none is left: a name that resolves to a
//! loopback address at delivery time is refused, whatever it resolved to before.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, USER_AGENT};

use super::guard;
use super::sign::{EXECUTION_ID_HEADER, SIGNATURE_HEADER};

/// Most bytes of a receiver's answer read.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Longest error text kept of a failed attempt.
const ERROR_MAX: usize = 512;

/// How one POST went.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The receiver answered 2xx.
    Delivered(u16),
    /// The receiver answered another status (retried).
    Rejected(u16),
    /// No answer: connection error, timeout, a name that does not resolve (retried).
    Unreachable(String),
    /// The address policy refuses the URL or every address of its host (final).
    Refused(String),
}

/// Text that starts every refusal of the resolver (found again in a request's
/// chain of causes, whatever wraps it).
const REFUSAL: &str = "refused by the callback address policy: ";

/// A refusal of the resolver.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{REFUSAL}{}", self.0)
    }
}

impl std::error::Error for Refused {}

/// The error of a resolution.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A name lookup: the system resolver, or a fixed table in tests.
type Lookup =
    Arc<dyn Fn(String) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> + Send + Sync>;

/// The system resolver (`getaddrinfo` on a blocking thread).
fn system_lookup() -> Lookup {
    Arc::new(
        |host: String| -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
            Box::pin(
                async move { Ok(tokio::net::lookup_host((host.as_str(), 0)).await?.collect()) },
            )
        },
    )
}

/// Resolves with `lookup`, keeping only addresses the policy allows.
struct GuardedResolver {
    allow_private: bool,
    lookup: Lookup,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(resolve_guarded(
            host,
            self.allow_private,
            self.lookup.clone(),
        ))
    }
}

async fn resolve_guarded(
    host: String,
    allow_private: bool,
    lookup: Lookup,
) -> Result<Addrs, BoxError> {
    guard::check_name(&host, allow_private).map_err(|why| Box::new(Refused(why)))?;
    let found = lookup(host.clone()).await?;
    let kept =
        guard::keep_allowed(&host, found, allow_private).map_err(|why| Box::new(Refused(why)))?;
    Ok(Box::new(kept.into_iter()))
}

/// POSTs signed callbacks.
pub struct Sender {
    http: reqwest::Client,
    allow_private: bool,
}

impl Sender {
    /// A client with the given policy and timeout of a whole attempt.
    pub fn new(allow_private: bool, timeout: Duration) -> Result<Self, String> {
        Self::with_lookup(allow_private, timeout, system_lookup())
    }

    fn with_lookup(allow_private: bool, timeout: Duration, lookup: Lookup) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private,
                lookup,
            }))
            .build()
            .map_err(|e| format!("callback client: {e}"))?;
        Ok(Sender {
            http,
            allow_private,
        })
    }

    /// POSTs `body` (JSON) to `url` with its signature and execution id.
    pub async fn post(
        &self,
        url: &str,
        execution_id: &str,
        body: Vec<u8>,
        signature: &str,
    ) -> Outcome {
        // The policy may have changed since the submit: check the URL again (an IP
        // literal never reaches the resolver).
        let url = match guard::check_url(url, self.allow_private) {
            Ok(url) => url,
            Err(why) => return Outcome::Refused(format!("the callback URL {why}")),
        };
        let sent = self
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(
                USER_AGENT,
                concat!("faas-callbacks/", env!("CARGO_PKG_VERSION")),
            )
            .header(SIGNATURE_HEADER, signature)
            .header(EXECUTION_ID_HEADER, execution_id)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(mut res) => {
                let status = res.status();
                drain(&mut res).await;
                if status.is_success() {
                    Outcome::Delivered(status.as_u16())
                } else {
                    Outcome::Rejected(status.as_u16())
                }
            }
            Err(e) => match refusal(&e) {
                Some(why) => Outcome::Refused(why),
                None => Outcome::Unreachable(describe(&e)),
            },
        }
    }
}

/// Reads at most [`MAX_ANSWER_BYTES`] of the answer (its content is not used).
async fn drain(res: &mut reqwest::Response) {
    let mut read = 0;
    while read < MAX_ANSWER_BYTES {
        match res.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            _ => return,
        }
    }
}

/// The resolver's refusal in `e`'s chain of causes, if that is why it failed.
fn refusal(e: &reqwest::Error) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(r) = c.downcast_ref::<Refused>() {
            return Some(r.0.clone());
        }
        if let Some(why) = c.to_string().strip_prefix(REFUSAL) {
            return Some(why.to_string());
        }
        cause = c.source();
    }
    None
}

/// `e` with its causes, as one line of bounded length.
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else {
        e.to_string()
    };
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    faas_runtime::model::truncate(&text, ERROR_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name resolves to `to` (nothing leaves the machine).
    fn fixed(to: &'static [&'static str]) -> Lookup {
        Arc::new(
            move |_host: String| -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
                let addrs = to
                    .iter()
                    .map(|a| SocketAddr::new(a.parse().unwrap(), 0))
                    .collect();
                Box::pin(async move { Ok(addrs) })
            },
        )
    }

    fn resolver(allow_private: bool, to: &'static [&'static str]) -> GuardedResolver {
        GuardedResolver {
            allow_private,
            lookup: fixed(to),
        }
    }

    async fn resolve(r: &GuardedResolver, name: &str) -> Result<Vec<SocketAddr>, String> {
        match r.resolve(name.parse().unwrap()).await {
            Ok(addrs) => Ok(addrs.collect()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses_and_fails_when_none_is_left() {
        let both = &["127.0.0.1", "93.184.215.14"];
        let kept = resolve(&resolver(false, both), "hooks.example")
            .await
            .unwrap();
        assert_eq!(
            kept,
            vec![SocketAddr::new("93.184.215.14".parse().unwrap(), 0)]
        );
        let err = resolve(&resolver(false, &["10.0.0.8", "::1"]), "rebind.example")
            .await
            .unwrap_err();
        assert!(err.contains("loopback") || err.contains("private"), "{err}");
        let metadata = &["169.254.169.254"];
        assert!(
            resolve(&resolver(true, metadata), "meta.example")
                .await
                .is_err()
        );
        assert_eq!(
            resolve(&resolver(true, both), "hooks.example")
                .await
                .unwrap()
                .len(),
            2
        );
        let err = resolve(&resolver(false, both), "localhost")
            .await
            .unwrap_err();
        assert!(err.contains("loopback"), "{err}");
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_at_delivery_is_refused_not_retried() {
        let sender =
            Sender::with_lookup(false, Duration::from_secs(2), fixed(&["127.0.0.1"])).unwrap();
        let outcome = sender
            .post(
                "http://rebind.example:9/hook",
                "e1",
                b"{}".to_vec(),
                "t=1,v1=00",
            )
            .await;
        match outcome {
            Outcome::Refused(why) => assert!(why.contains("127.0.0.1"), "{why}"),
            other => panic!("refused expected, got {other:?}"),
        }
        let outcome = sender
            .post(
                "http://[::ffff:127.0.0.1]:9/hook",
                "e1",
                b"{}".to_vec(),
                "t=1,v1=00",
            )
            .await;
        assert!(matches!(outcome, Outcome::Refused(_)), "{outcome:?}");
    }
}
