//! Errors by side, mapped to status codes in one place.
//!
//! Like pingora's `ErrorSource`, every failure says whose fault it is:
//!
//! * [`ClientError`]: the request was bad or not allowed (4xx). The user sees a short page.
//! * [`UpstreamError`]: the VMS could not be reached, was too slow or answered garbage
//!   (502/504). Upstream internals never reach the client.
//! * [`InternalError`]: the gateway itself could not do its job, most often because the shared
//!   store is away (503, fail closed) or a key is wrong (500).
//!
//! [`GatewayError::page`] is the only place where an error becomes a status and a page; the
//! text for logs (`Display`) is kept apart from the text users see, and neither contains
//! codes, secrets or cookies.

use http::StatusCode;

use crate::pages::ErrorPage;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error("forbidden")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("body too large")]
    PayloadTooLarge,
    #[error("challenge missing, expired or not this client's")]
    ChallengeExpired,
}

/// Where connecting to the VMS failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectStage {
    /// The VMS's name did not resolve.
    Resolve,
    /// No TCP connection (refused, unreachable) or none within `upstream.connect_timeout`.
    Tcp,
    /// The TLS handshake with an `https` VMS failed (certificate, name, protocol).
    Tls,
}

impl std::fmt::Display for ConnectStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConnectStage::Resolve => "resolving",
            ConnectStage::Tcp => "connecting to",
            ConnectStage::Tls => "TLS with",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection to the VMS; `source` is the operating system's or TLS's own error
    /// (`None` when the connect timeout elapsed or a name resolved to no address).
    #[error("{stage} the VMS at {target} failed")]
    Connect {
        stage: ConnectStage,
        target: String,
        #[source]
        source: Option<std::io::Error>,
    },
    #[error("upstream did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The exchange with the VMS failed after connecting (hyper's error: the connection
    /// closed before an answer, an answer hyper could not parse, ...).
    #[error("upstream request failed")]
    Failed(#[source] hyper::Error),
    /// An answer the gateway refuses to pass on, for the reason given.
    #[error("upstream response not understood: {0}")]
    Protocol(String),
    /// The client's request body broke off or was malformed while it was forwarded: the
    /// client's fault, so it becomes a 400 (see `From<UpstreamError> for GatewayError`).
    #[error("request body from the client could not be read")]
    RequestBody(#[source] hyper::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    #[error("shared store failed")]
    Store(#[from] crate::store::StoreError),
    /// A resource the request needs is held by another request for longer than the
    /// gateway waits (a pre-login session, see `proxy::prelogin::admit`): 503, retry.
    #[error("busy: {0}")]
    Busy(&'static str),
    #[error("crypto failure: {0}")]
    Crypto(String),
    #[error("{0}")]
    Other(String),
}

/// What failed, as one stable name: the `kind` label of `mfa_gateway_errors_total` and of
/// `mfa_gateway_upstream_errors_total`, the `kind` field of the `request failed` log line,
/// and the rows of the operations guide's error table (a test keeps the three in step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    ChallengeExpired,
    UpstreamConnect,
    UpstreamTls,
    UpstreamTimeout,
    UpstreamClosed,
    UpstreamProtocol,
    UpstreamFailed,
    StoreUnavailable,
    StoreCorrupt,
    Busy,
    Crypto,
    Internal,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 17] = [
        ErrorKind::BadRequest,
        ErrorKind::Forbidden,
        ErrorKind::NotFound,
        ErrorKind::MethodNotAllowed,
        ErrorKind::PayloadTooLarge,
        ErrorKind::ChallengeExpired,
        ErrorKind::UpstreamConnect,
        ErrorKind::UpstreamTls,
        ErrorKind::UpstreamTimeout,
        ErrorKind::UpstreamClosed,
        ErrorKind::UpstreamProtocol,
        ErrorKind::UpstreamFailed,
        ErrorKind::StoreUnavailable,
        ErrorKind::StoreCorrupt,
        ErrorKind::Busy,
        ErrorKind::Crypto,
        ErrorKind::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::ChallengeExpired => "challenge_expired",
            ErrorKind::UpstreamConnect => "upstream_connect",
            ErrorKind::UpstreamTls => "upstream_tls",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::UpstreamClosed => "upstream_closed",
            ErrorKind::UpstreamProtocol => "upstream_protocol",
            ErrorKind::UpstreamFailed => "upstream_failed",
            ErrorKind::StoreUnavailable => "store_unavailable",
            ErrorKind::StoreCorrupt => "store_corrupt",
            ErrorKind::Busy => "busy",
            ErrorKind::Crypto => "crypto",
            ErrorKind::Internal => "internal",
        }
    }
}

impl UpstreamError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            UpstreamError::Connect {
                stage: ConnectStage::Tls,
                ..
            } => ErrorKind::UpstreamTls,
            UpstreamError::Connect { .. } => ErrorKind::UpstreamConnect,
            UpstreamError::Timeout(_) => ErrorKind::UpstreamTimeout,
            UpstreamError::Failed(e) if e.is_incomplete_message() || e.is_closed() => {
                ErrorKind::UpstreamClosed
            }
            UpstreamError::Failed(e) if e.is_parse() || e.is_parse_too_large() => {
                ErrorKind::UpstreamProtocol
            }
            UpstreamError::Failed(_) => ErrorKind::UpstreamFailed,
            UpstreamError::Protocol(_) => ErrorKind::UpstreamProtocol,
            UpstreamError::RequestBody(_) => ErrorKind::BadRequest,
        }
    }
}

/// An error and its sources, one after the other (`a: b: c`), for log lines: the kinds say
/// what failed, the sources why (the operating system's, TLS's, hyper's or Redis's words).
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cur = self.0.source();
        while let Some(c) = cur {
            write!(f, ": {c}")?;
            cur = c.source();
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Upstream(UpstreamError),
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl GatewayError {
    /// The page (and through it the status code) a user sees for this error.
    pub fn page(&self) -> ErrorPage {
        match self {
            GatewayError::Client(c) => match c {
                ClientError::BadRequest(_) => ErrorPage::BadRequest,
                ClientError::Forbidden => ErrorPage::Forbidden,
                ClientError::NotFound => ErrorPage::NotFound,
                ClientError::MethodNotAllowed => ErrorPage::BadRequest,
                ClientError::PayloadTooLarge => ErrorPage::PayloadTooLarge,
                ClientError::ChallengeExpired => ErrorPage::ChallengeExpired,
            },
            GatewayError::Upstream(UpstreamError::Timeout(_)) => ErrorPage::GatewayTimeout,
            GatewayError::Upstream(UpstreamError::RequestBody(_)) => ErrorPage::BadRequest,
            GatewayError::Upstream(_) => ErrorPage::BadGateway,
            GatewayError::Internal(InternalError::Store(_) | InternalError::Busy(_)) => {
                ErrorPage::ServiceUnavailable
            }
            GatewayError::Internal(_) => ErrorPage::Internal,
        }
    }

    /// What failed, for metrics and logs.
    pub fn kind(&self) -> ErrorKind {
        match self {
            GatewayError::Client(c) => match c {
                ClientError::BadRequest(_) => ErrorKind::BadRequest,
                ClientError::Forbidden => ErrorKind::Forbidden,
                ClientError::NotFound => ErrorKind::NotFound,
                ClientError::MethodNotAllowed => ErrorKind::MethodNotAllowed,
                ClientError::PayloadTooLarge => ErrorKind::PayloadTooLarge,
                ClientError::ChallengeExpired => ErrorKind::ChallengeExpired,
            },
            GatewayError::Upstream(u) => u.kind(),
            GatewayError::Internal(i) => match i {
                InternalError::Store(crate::store::StoreError::Corrupt(_)) => {
                    ErrorKind::StoreCorrupt
                }
                InternalError::Store(_) => ErrorKind::StoreUnavailable,
                InternalError::Busy(_) => ErrorKind::Busy,
                InternalError::Crypto(_) => ErrorKind::Crypto,
                InternalError::Other(_) => ErrorKind::Internal,
            },
        }
    }

    pub fn status(&self) -> StatusCode {
        self.page().status()
    }

    /// Seconds after which the same request may well succeed (`Retry-After`), where that is
    /// known: a pre-login session busy with another request is free again within moments.
    pub fn retry_after(&self) -> Option<&'static str> {
        match self {
            GatewayError::Internal(InternalError::Busy(_)) => Some("1"),
            _ => None,
        }
    }
}

impl From<UpstreamError> for GatewayError {
    fn from(e: UpstreamError) -> Self {
        match e {
            UpstreamError::RequestBody(_) => {
                GatewayError::Client(ClientError::BadRequest("request body could not be read"))
            }
            other => GatewayError::Upstream(other),
        }
    }
}

impl From<crate::store::StoreError> for GatewayError {
    fn from(e: crate::store::StoreError) -> Self {
        GatewayError::Internal(InternalError::Store(e))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn each_side_maps_to_its_status() {
        let cases: [(GatewayError, u16); 7] = [
            (InternalError::Busy("x").into(), 503),
            (ClientError::BadRequest("x").into(), 400),
            (ClientError::ChallengeExpired.into(), 403),
            (
                UpstreamError::Connect {
                    stage: ConnectStage::Tcp,
                    target: "vms:80".into(),
                    source: Some(std::io::ErrorKind::ConnectionRefused.into()),
                }
                .into(),
                502,
            ),
            (
                UpstreamError::Timeout(std::time::Duration::from_secs(1)).into(),
                504,
            ),
            (
                InternalError::Store(crate::store::StoreError::Unavailable("down".into())).into(),
                503,
            ),
            (InternalError::Crypto("bad key".into()).into(), 500),
        ];
        for (e, s) in cases {
            assert_eq!(e.status().as_u16(), s, "{e}");
        }
        assert_eq!(
            GatewayError::from(InternalError::Busy("x")).retry_after(),
            Some("1")
        );
        assert_eq!(
            GatewayError::from(ClientError::Forbidden).retry_after(),
            None
        );
    }

    #[test]
    fn kinds_are_distinct_and_a_chain_names_every_source() {
        let mut names: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        let e = GatewayError::from(UpstreamError::Connect {
            stage: ConnectStage::Tls,
            target: "vms:443".into(),
            source: Some(std::io::Error::other(
                "invalid peer certificate: UnknownIssuer",
            )),
        });
        assert_eq!(e.kind(), ErrorKind::UpstreamTls);
        assert_eq!(e.status().as_u16(), 502);
        assert_eq!(
            Chain(&e).to_string(),
            "TLS with the VMS at vms:443 failed: invalid peer certificate: UnknownIssuer"
        );
    }

    /// The operations guide's error table names every kind, with the status it gets, and
    /// nothing else.
    #[test]
    fn the_operations_guide_lists_every_kind_with_its_status() {
        let guide = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md"),
        )
        .unwrap();
        let section = guide
            .split("### Error kinds")
            .nth(1)
            .and_then(|s| s.split("\n#").next())
            .unwrap();
        let rows: Vec<(String, u16)> = section
            .lines()
            .filter_map(|l| {
                let mut cells = l.split('|').map(str::trim).skip(1);
                let kind = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
                let status = cells.next()?.parse().ok()?;
                Some((kind.to_string(), status))
            })
            .collect();
        let kinds: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        let listed: Vec<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(listed, kinds, "docs/operations.md, Error kinds");
        // Statuses as the code gives them (one example error per kind).
        let example = |k: ErrorKind| -> GatewayError {
            match k {
                ErrorKind::BadRequest => ClientError::BadRequest("x").into(),
                ErrorKind::Forbidden => ClientError::Forbidden.into(),
                ErrorKind::NotFound => ClientError::NotFound.into(),
                ErrorKind::MethodNotAllowed => ClientError::MethodNotAllowed.into(),
                ErrorKind::PayloadTooLarge => ClientError::PayloadTooLarge.into(),
                ErrorKind::ChallengeExpired => ClientError::ChallengeExpired.into(),
                ErrorKind::UpstreamConnect | ErrorKind::UpstreamTls => UpstreamError::Connect {
                    stage: if k == ErrorKind::UpstreamTls {
                        ConnectStage::Tls
                    } else {
                        ConnectStage::Tcp
                    },
                    target: "vms".into(),
                    source: None,
                }
                .into(),
                ErrorKind::UpstreamTimeout => {
                    UpstreamError::Timeout(std::time::Duration::from_secs(1)).into()
                }
                // hyper's errors cannot be made outside hyper; their status is the one of
                // every other upstream failure.
                ErrorKind::UpstreamClosed
                | ErrorKind::UpstreamProtocol
                | ErrorKind::UpstreamFailed => UpstreamError::Protocol("x".into()).into(),
                ErrorKind::StoreUnavailable => {
                    crate::store::StoreError::Unavailable("x".into()).into()
                }
                ErrorKind::StoreCorrupt => crate::store::StoreError::Corrupt("x".into()).into(),
                ErrorKind::Busy => InternalError::Busy("x").into(),
                ErrorKind::Crypto => InternalError::Crypto("x".into()).into(),
                ErrorKind::Internal => InternalError::Other("x".into()).into(),
            }
        };
        for (kind, status) in &rows {
            let k = ErrorKind::ALL
                .iter()
                .find(|k| k.as_str() == kind)
                .copied()
                .unwrap();
            let e = example(k);
            assert_eq!(e.status().as_u16(), *status, "{kind}");
            if !matches!(
                k,
                ErrorKind::UpstreamClosed | ErrorKind::UpstreamProtocol | ErrorKind::UpstreamFailed
            ) {
                assert_eq!(e.kind(), k);
            }
        }
    }
}
