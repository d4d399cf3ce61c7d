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
    #[error("too many requests")]
    TooManyRequests,
    #[error("challenge missing, expired or not this client's")]
    ChallengeExpired,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect to upstream: {0}")]
    Connect(String),
    #[error("upstream did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("upstream request failed: {0}")]
    Failed(String),
    #[error("upstream response not understood: {0}")]
    Protocol(String),
    /// The client's request body broke off or was malformed while it was forwarded: the
    /// client's fault, so it becomes a 400 (see `From<UpstreamError> for GatewayError`).
    #[error("request body from the client could not be read: {0}")]
    RequestBody(String),
}

#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    #[error("shared store unavailable: {0}")]
    StoreUnavailable(String),
    /// A resource the request needs is held by another request for longer than the
    /// gateway waits (a pre-login session, see `proxy::prelogin::admit`): 503, retry.
    #[error("busy: {0}")]
    Busy(&'static str),
    #[error("crypto failure: {0}")]
    Crypto(String),
    #[error("{0}")]
    Other(String),
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
                ClientError::TooManyRequests => ErrorPage::TooManyRequests,
                ClientError::ChallengeExpired => ErrorPage::ChallengeExpired,
            },
            GatewayError::Upstream(UpstreamError::Timeout(_)) => ErrorPage::GatewayTimeout,
            GatewayError::Upstream(UpstreamError::RequestBody(_)) => ErrorPage::BadRequest,
            GatewayError::Upstream(_) => ErrorPage::BadGateway,
            GatewayError::Internal(InternalError::StoreUnavailable(_) | InternalError::Busy(_)) => {
                ErrorPage::ServiceUnavailable
            }
            GatewayError::Internal(_) => ErrorPage::Internal,
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
        GatewayError::Internal(InternalError::StoreUnavailable(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_side_maps_to_its_status() {
        let cases: [(GatewayError, u16); 8] = [
            (InternalError::Busy("x").into(), 503),
            (ClientError::BadRequest("x").into(), 400),
            (ClientError::ChallengeExpired.into(), 403),
            (UpstreamError::Connect("refused".into()).into(), 502),
            (
                UpstreamError::Timeout(std::time::Duration::from_secs(1)).into(),
                504,
            ),
            (InternalError::StoreUnavailable("down".into()).into(), 503),
            (InternalError::Crypto("bad key".into()).into(), 500),
            (UpstreamError::RequestBody("bad chunk".into()).into(), 400),
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
}
