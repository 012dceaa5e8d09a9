//! Outbound HTTP of guests (`wasi:http/outgoing-handler`) under the function's
//! [`OutboundPolicy`]:
//!
//! 1. the request's scheme, host and port must match an entry of the function's
//!    `allowed_outbound_hosts` (`HTTP-request-denied` otherwise; none by default);
//! 2. the host is resolved here, and every address is checked by
//!    [`faas_runtime::addresses`] (`destination-IP-prohibited` when none is left);
//!    the connection goes to one of the checked addresses, never through a second
//!    resolution (no DNS rebinding between check and connect);
//! 3. `https` runs TLS (rustls, the webpki roots, the request's host as the server
//!    name); the exchange is HTTP/1.1 (no redirects followed, no proxy);
//! 4. bounded: connection (name resolution and TLS included), the response's head
//!    and every pause within its body by the operator's timeouts (a guest's
//!    `request-options` may shorten them, never lengthen), the response body by
//!    `max_response_bytes`, and the requests in flight per instance.

use std::future::poll_fn;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use faas_runtime::addresses;
use faas_runtime::outbound::{ALLOW_PRIVATE_SETTING, OutboundPolicy, OutboundScheme};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_rustls::rustls;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// What `send_request` hands back after the response's head: the response and
/// the connection's remaining I/O.
type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type Sent = Result<(http::Response<WasiBody>, IoFuture), Error>;

/// The outbound hooks of one guest instance.
pub(crate) struct Outbound {
    policy: Arc<OutboundPolicy>,
    in_flight: Arc<Semaphore>,
}

impl Outbound {
    /// Hooks enforcing `policy`.
    pub(crate) fn new(policy: OutboundPolicy) -> Self {
        let permits = policy.limits.max_in_flight.max(1);
        Outbound {
            policy: Arc::new(policy),
            in_flight: Arc::new(Semaphore::new(permits)),
        }
    }
}

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        let policy = self.policy.clone();
        let in_flight = self.in_flight.clone();
        Box::new(async move { send(&policy, in_flight, request, options).await })
    }
}

/// Where a request goes.
struct Target {
    scheme: OutboundScheme,
    /// As in the URI (an IPv6 literal in brackets).
    host: String,
    /// The host when it is an IP literal.
    ip: Option<IpAddr>,
    port: u16,
}

impl Target {
    fn of(uri: &http::Uri) -> Result<Self, Error> {
        let scheme = uri
            .scheme_str()
            .and_then(OutboundScheme::parse)
            .ok_or(Error::HttpProtocolError)?;
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or(Error::HttpRequestUriInvalid)?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        Ok(Target {
            scheme,
            host: host.to_string(),
            ip: bare.parse().ok(),
            port: uri.port_u16().unwrap_or(scheme.default_port()),
        })
    }
}

/// The timeouts of one request: the operator's, shortened by the guest's options.
struct Timeouts {
    connect: Duration,
    first_byte: Duration,
    between_bytes: Duration,
}

impl Timeouts {
    fn new(policy: &OutboundPolicy, options: Option<RequestOptions>) -> Self {
        let o = options.unwrap_or_default();
        let pick = |guest: Option<Duration>, limit: Duration| guest.map_or(limit, |g| g.min(limit));
        let l = &policy.limits;
        Timeouts {
            connect: pick(o.connect_timeout, l.connect_timeout),
            first_byte: pick(o.first_byte_timeout, l.first_byte_timeout),
            between_bytes: pick(o.between_bytes_timeout, l.between_bytes_timeout)
                .max(Duration::from_millis(1)),
        }
    }
}

/// Sends one request of a guest (the span names the authority only: paths and
/// queries may carry the guest's secrets).
#[tracing::instrument(name = "outbound", skip_all, fields(method = %request.method(),
    authority = request.uri().authority().map_or("", |a| a.as_str())))]
async fn send(
    policy: &OutboundPolicy,
    in_flight: Arc<Semaphore>,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Sent {
    let target = Target::of(request.uri())?;
    if !policy.allows(target.scheme, &target.host, target.port) {
        tracing::info!("outbound request denied: the host is not in allowed_outbound_hosts");
        return Err(Error::HttpRequestDenied);
    }
    let permit = in_flight
        .try_acquire_owned()
        .map_err(|_| Error::ConnectionLimitReached)?;
    let timeouts = Timeouts::new(policy, options);
    let connecting = connect(&target, policy.limits.allow_private);
    let stream = tokio::time::timeout(timeouts.connect, connecting)
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
    let handshake = hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream));
    let (sender, conn) = tokio::time::timeout(timeouts.connect, handshake)
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
    *request.uri_mut() = origin_form(request.uri())?;
    let (response, io) = exchange(sender, conn, request, timeouts.first_byte).await?;
    let max = policy.limits.max_response_bytes;
    if let Some(len) = content_length(response.headers())
        && len > max
    {
        tracing::info!(len, max, "outbound response refused: its body is too large");
        return Err(Error::HttpResponseBodySize(Some(len)));
    }
    let body = response.map(|incoming| {
        Bounded {
            incoming,
            idle: timeouts.between_bytes,
            pause: Box::pin(tokio::time::sleep(timeouts.between_bytes)),
            left: max,
            max,
            done: false,
            _permit: permit,
        }
        .boxed_unsync()
    });
    Ok((body, io))
}

/// A byte stream to the server, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Resolves, checks every address, connects to the first checked one that
/// answers, and runs TLS for `https`.
async fn connect(target: &Target, allow_private: bool) -> Result<Box<dyn Stream>, Error> {
    let allowed = checked_addresses(target, allow_private).await?;
    let mut last = None;
    let mut tcp = None;
    for addr in allowed {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let tcp = match (tcp, last) {
        (Some(s), _) => s,
        (None, Some(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(Error::ConnectionRefused);
        }
        (None, e) => {
            tracing::info!(error = ?e, "outbound connection failed");
            return Err(Error::DestinationUnavailable);
        }
    };
    let _ = tcp.set_nodelay(true);
    match target.scheme {
        OutboundScheme::Http => Ok(Box::new(tcp)),
        OutboundScheme::Https => Ok(Box::new(tls(target, tcp).await?)),
    }
}

/// The addresses of the target the policy allows (an IP literal is not resolved).
async fn checked_addresses(target: &Target, allow_private: bool) -> Result<Vec<SocketAddr>, Error> {
    let refused = |why: String| {
        tracing::info!(%why, "outbound request refused by the address policy");
        Error::DestinationIpProhibited
    };
    let found = match target.ip {
        Some(ip) => vec![SocketAddr::new(ip, target.port)],
        None => {
            addresses::check_name(&target.host, allow_private, ALLOW_PRIVATE_SETTING)
                .map_err(refused)?;
            tokio::net::lookup_host((target.host.as_str(), target.port))
                .await
                .map_err(|e| {
                    tracing::info!(error = %e, "outbound name resolution failed");
                    Error::DnsError {
                        rcode: Some("address not available".into()),
                        info_code: None,
                    }
                })?
                .collect()
        }
    };
    addresses::keep_allowed(&target.host, found, allow_private, ALLOW_PRIVATE_SETTING)
        .map_err(refused)
}

/// The client configuration of TLS (built once).
fn tls_config() -> Result<Arc<rustls::ClientConfig>, Error> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    let built = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    });
    built
        .clone()
        .map_err(|e| Error::InternalError(Some(format!("TLS configuration: {e}"))))
}

async fn tls(
    target: &Target,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Error> {
    use rustls::pki_types::ServerName;
    let name = match target.ip {
        Some(ip) => ServerName::IpAddress(ip.into()),
        None => {
            ServerName::try_from(target.host.clone()).map_err(|_| Error::HttpRequestUriInvalid)?
        }
    };
    let connector = tokio_rustls::TlsConnector::from(tls_config()?);
    connector
        .connect(name, tcp)
        .await
        .map_err(|e| tls_error(&e))
}

/// The `wasi:http` error of a failed TLS handshake.
fn tls_error(e: &std::io::Error) -> Error {
    tracing::info!(error = %e, "outbound TLS handshake failed");
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(_)) => Error::TlsCertificateError,
        Some(rustls::Error::AlertReceived(alert)) => Error::TlsAlertReceived {
            alert_id: Some(u8::from(*alert)),
            alert_message: Some(format!("{alert:?}")),
        },
        _ => Error::TlsProtocolError,
    }
}

/// The URI as sent on a connection to the server itself: path and query only.
fn origin_form(uri: &http::Uri) -> Result<http::Uri, Error> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)
}

/// Sends the request and waits at most `first_byte` for the response's head,
/// driving the connection meanwhile; returns the response and what is left of
/// the connection's I/O (its body).
async fn exchange(
    mut sender: hyper::client::conn::http1::SendRequest<WasiBody>,
    conn: hyper::client::conn::http1::Connection<TokioIo<Box<dyn Stream>>, WasiBody>,
    request: http::Request<WasiBody>,
    first_byte: Duration,
) -> Result<(http::Response<Incoming>, IoFuture), Error> {
    let send = async {
        tokio::time::timeout(first_byte, sender.send_request(request))
            .await
            .map_err(|_| Error::HttpResponseTimeout)?
            .map_err(Error::from)
    };
    let mut send = pin!(send);
    let mut conn = Some(conn);
    let response = poll_fn(|cx| match send.as_mut().poll(cx) {
        Poll::Ready(r) => Poll::Ready(r),
        Poll::Pending => {
            let Some(c) = conn.as_mut() else {
                return Poll::Pending;
            };
            let ended = ready!(Pin::new(c).poll(cx));
            conn = None;
            match ended {
                Ok(()) => send.as_mut().poll(cx),
                Err(e) => Poll::Ready(Err(Error::from(e))),
            }
        }
    })
    .await?;
    let io: IoFuture = Box::new(async move {
        match conn {
            Some(c) => c.await.map_err(Error::from),
            None => Ok(()),
        }
    });
    Ok((response, io))
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// A response body cut after `max` bytes or a pause of `idle`; holds the
/// request's in-flight permit until it ends.
struct Bounded {
    incoming: Incoming,
    idle: Duration,
    pause: Pin<Box<Sleep>>,
    left: u64,
    max: u64,
    done: bool,
    _permit: OwnedSemaphorePermit,
}

impl Bounded {
    fn fail(&mut self, e: Error) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.done = true;
        Poll::Ready(Some(Err(e)))
    }
}

impl Body for Bounded {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                if n > this.left {
                    tracing::info!(
                        max = this.max,
                        "outbound response cut: its body is too large"
                    );
                    return this.fail(Error::HttpResponseBodySize(Some(this.max)));
                }
                this.left -= n;
                this.pause.as_mut().reset(Instant::now() + this.idle);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => this.fail(Error::from(e)),
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                ready!(this.pause.as_mut().poll(cx));
                tracing::info!("outbound response cut: its body stalled");
                this.fail(Error::ConnectionReadTimeout)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_runtime::outbound::OutboundLimits;

    fn target(uri: &str) -> Target {
        Target::of(&uri.parse().unwrap()).unwrap_or_else(|e| panic!("{uri}: {e}"))
    }

    #[test]
    fn targets_take_default_ports_and_ip_literals() {
        let t = target("https://API.example.com/x?y");
        assert_eq!((t.scheme, t.port, t.ip), (OutboundScheme::Https, 443, None));
        let t = target("http://[::1]:8080/");
        assert_eq!((t.host.as_str(), t.port), ("[::1]", 8080));
        assert_eq!(t.ip, Some("::1".parse().unwrap()));
        assert!(Target::of(&"ftp://example.com/".parse().unwrap()).is_err());
        let uri: http::Uri = "https://example.com/a/b?c=d".parse().unwrap();
        assert_eq!(origin_form(&uri).unwrap().to_string(), "/a/b?c=d");
    }

    #[test]
    fn guests_may_shorten_timeouts_never_lengthen() {
        let policy = OutboundPolicy::default();
        let options = RequestOptions {
            connect_timeout: Some(Duration::from_millis(5)),
            first_byte_timeout: Some(Duration::from_secs(3600)),
            between_bytes_timeout: None,
        };
        let t = Timeouts::new(&policy, Some(options));
        let l = OutboundLimits::default();
        assert_eq!(t.connect, Duration::from_millis(5));
        assert_eq!(t.first_byte, l.first_byte_timeout);
        assert_eq!(t.between_bytes, l.between_bytes_timeout);
    }

    #[tokio::test]
    async fn private_addresses_are_refused_before_any_connection() {
        for (uri, allow) in [
            ("http://127.0.0.1:9/", false),
            ("http://localhost:9/", false),
            ("http://[::ffff:127.0.0.1]:9/", false),
            ("http://169.254.169.254/", true),
        ] {
            let got = checked_addresses(&target(uri), allow).await;
            assert!(
                matches!(got, Err(Error::DestinationIpProhibited)),
                "{uri}: {got:?}"
            );
        }
        let got = checked_addresses(&target("http://127.0.0.1:9/"), true).await;
        assert_eq!(got.unwrap(), vec!["127.0.0.1:9".parse().unwrap()]);
    }

    #[tokio::test]
    async fn tls_is_configured() {
        assert!(tls_config().is_ok());
    }
}
