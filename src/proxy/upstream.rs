//! The connection to the VMS: a keep-alive pool over plain TCP or TLS, with connect and
//! response-header timeouts, and the mapping of its failures to [`UpstreamError`].
//!
//! The VMS is assumed to speak HTTP/1.1 (legacy applications do); clients that speak HTTP/2
//! to the gateway are served all the same, because every request is rewritten to HTTP/1.1
//! before it leaves.

use std::time::Duration;

use http::{Request, Response, Uri, Version};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::Body;
use crate::config::Upstream as UpstreamConfig;
use crate::error::UpstreamError;
use crate::metrics::{Metrics, UpstreamFailure};

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A pooled client for the one upstream.
#[derive(Clone)]
pub struct Upstream {
    client: Client<Connector, Body>,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    response_timeout: Duration,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("authority", &self.authority)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// `max_head_bytes` bounds the response head the VMS may send (the same limit as for
    /// client requests); a larger one is a 502.
    pub fn new(cfg: &UpstreamConfig, max_head_bytes: usize) -> Result<Self, String> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(cfg.connect_timeout));
        http.set_nodelay(true);
        http.set_keepalive(Some(Duration::from_secs(60)));
        let tls =
            crate::tls::upstream_client_config(cfg.ca.as_deref()).map_err(|e| e.to_string())?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(cfg.pool_idle_timeout)
            .pool_max_idle_per_host(cfg.pool_max_idle)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .http1_preserve_header_case(false)
            .http1_max_buf_size(max_head_bytes.max(8192))
            .set_host(false)
            .build(connector);
        let authority = cfg
            .authority
            .parse()
            .map_err(|e| format!("upstream authority: {e}"))?;
        let scheme = if cfg.https {
            http::uri::Scheme::HTTPS
        } else {
            http::uri::Scheme::HTTP
        };
        Ok(Self {
            client,
            scheme,
            authority,
            response_timeout: cfg.response_timeout,
        })
    }

    /// The absolute URI for a path-and-query on the upstream.
    pub fn uri_for(
        &self,
        path_and_query: Option<&http::uri::PathAndQuery>,
    ) -> Result<Uri, UpstreamError> {
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(
            path_and_query
                .cloned()
                .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")),
        );
        Uri::from_parts(parts).map_err(|e| UpstreamError::Protocol(e.to_string()))
    }

    /// Sends a request whose URI is already absolute; waits at most the response timeout for
    /// the response head. The body then streams without a deadline of its own.
    pub async fn send(
        &self,
        mut req: Request<Body>,
        metrics: &Metrics,
    ) -> Result<Response<Incoming>, UpstreamError> {
        *req.version_mut() = Version::HTTP_11;
        match tokio::time::timeout(self.response_timeout, self.client.request(req)).await {
            Err(_) => {
                metrics.upstream_failure(UpstreamFailure::Timeout);
                Err(UpstreamError::Timeout(self.response_timeout))
            }
            Ok(Err(e)) if client_body_failed(&e) => {
                Err(UpstreamError::RequestBody(error_chain(&e)))
            }
            Ok(Err(e)) if e.is_connect() => {
                metrics.upstream_failure(UpstreamFailure::Connect);
                Err(UpstreamError::Connect(error_chain(&e)))
            }
            Ok(Err(e)) => {
                metrics.upstream_failure(UpstreamFailure::Other);
                Err(UpstreamError::Failed(error_chain(&e)))
            }
            Ok(Ok(resp)) => Ok(resp),
        }
    }
}

/// Whether sending failed because the body the client was sending broke off or was
/// malformed (a bad chunk, a reset stream): hyper then reports an error from the request
/// body, whose cause is the error of the client connection. That is the client's fault, not
/// the VMS's.
fn client_body_failed(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && h.is_user()
            && std::error::Error::source(h).is_some_and(|c| c.is::<hyper::Error>())
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Joins an error with its sources, for one log line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
