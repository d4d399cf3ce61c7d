//! The gateway's own error pages.
//!
//! When the gateway itself must answer with an error (bad form, the VMS unreachable, the MFA
//! store down, a sign-in that took too long), users get a short page in their language that
//! says what happened in plain words and gives one way forward: a link to `/`, labelled
//! "Back to sign in" where starting over is the fix, or "Try again" where waiting is. The
//! status code is shown in small print so support can tell cases apart. No detail of the
//! cause is ever shown.

use bytes::Bytes;
use http::header::RETRY_AFTER;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use maud::html;

use super::headers::html_response;
use super::html::fill;
use super::lang::Lang;
use super::layout::{Branding, render};
use super::strings::{ErrorText, strings};

/// Seconds a client should wait before retrying a 429 or 503 (`Retry-After`).
const RETRY_AFTER_SECS: &str = "60";

/// An error the gateway answers with a page of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorPage {
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    /// The MFA challenge expired before the user finished; they must sign in again.
    ChallengeExpired,
    /// The VMS could not be reached or answered garbage.
    BadGateway,
    /// The VMS did not answer in time.
    GatewayTimeout,
    /// The MFA store is unavailable.
    ServiceUnavailable,
    Internal,
}

impl ErrorPage {
    /// The HTTP status the page is served with.
    pub fn status(&self) -> StatusCode {
        match self {
            ErrorPage::BadRequest => StatusCode::BAD_REQUEST,
            ErrorPage::Forbidden | ErrorPage::ChallengeExpired => StatusCode::FORBIDDEN,
            ErrorPage::NotFound => StatusCode::NOT_FOUND,
            ErrorPage::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorPage::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorPage::BadGateway => StatusCode::BAD_GATEWAY,
            ErrorPage::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorPage::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorPage::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn text(&self, lang: Lang) -> &'static ErrorText {
        let e = &strings(lang).error_pages;
        match self {
            ErrorPage::BadRequest => &e.bad_request,
            ErrorPage::Forbidden => &e.forbidden,
            ErrorPage::NotFound => &e.not_found,
            ErrorPage::PayloadTooLarge => &e.payload_too_large,
            ErrorPage::TooManyRequests => &e.too_many_requests,
            ErrorPage::ChallengeExpired => &e.challenge_expired,
            ErrorPage::BadGateway => &e.bad_gateway,
            ErrorPage::GatewayTimeout => &e.gateway_timeout,
            ErrorPage::ServiceUnavailable => &e.service_unavailable,
            ErrorPage::Internal => &e.internal,
        }
    }

    /// Whether the way forward is to retry (the problem is temporary) rather than to start
    /// the sign-in over.
    fn is_temporary(&self) -> bool {
        matches!(
            self,
            ErrorPage::TooManyRequests
                | ErrorPage::BadGateway
                | ErrorPage::GatewayTimeout
                | ErrorPage::ServiceUnavailable
                | ErrorPage::Internal
        )
    }
}

/// Renders an error page.
pub fn error_page(lang: Lang, branding: &Branding, page: ErrorPage) -> String {
    error_page_with(lang, branding, page, None)
}

/// [`error_page`], with a link to the MFA settings page (`account`) for a signed-in user.
pub fn error_page_with(
    lang: Lang,
    branding: &Branding,
    page: ErrorPage,
    account: Option<&str>,
) -> String {
    let text = page.text(lang);
    let common = &strings(lang).common;
    let link = if page.is_temporary() {
        common.try_again
    } else {
        common.back_to_sign_in
    };
    let content = html! {
        h1 { (text.title) }
        p { (fill(text.message, "{helpdesk}", branding.helpdesk(lang))) }
        a class="button primary" href="/" { (link) }
        @if let Some(account) = account {
            p { a href=(account) { (common.account_link) } }
        }
        p class="muted" { (fill(common.error_code, "{status}", page.status().as_str())) }
    };
    render(lang, branding, text.title, content)
}

/// An error page as a complete response, with `Retry-After` where waiting helps.
pub fn error_response(lang: Lang, branding: &Branding, page: ErrorPage) -> Response<Full<Bytes>> {
    let mut response = html_response(page.status(), error_page(lang, branding, page));
    if matches!(
        page,
        ErrorPage::TooManyRequests | ErrorPage::ServiceUnavailable
    ) {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const ALL: [ErrorPage; 10] = [
        ErrorPage::BadRequest,
        ErrorPage::Forbidden,
        ErrorPage::NotFound,
        ErrorPage::PayloadTooLarge,
        ErrorPage::TooManyRequests,
        ErrorPage::ChallengeExpired,
        ErrorPage::BadGateway,
        ErrorPage::GatewayTimeout,
        ErrorPage::ServiceUnavailable,
        ErrorPage::Internal,
    ];

    #[test]
    fn statuses() {
        let got: Vec<u16> = ALL.iter().map(|p| p.status().as_u16()).collect();
        assert_eq!(got, vec![400, 403, 404, 413, 429, 403, 502, 504, 503, 500]);
    }

    #[test]
    fn expired_sign_in_sends_the_user_back_to_sign_in() {
        let page = error_page(Lang::En, &Branding::default(), ErrorPage::ChallengeExpired);
        assert!(page.contains("<h1>Your sign-in took too long</h1>"));
        assert!(page.contains(r#"<a class="button primary" href="/">Back to sign in</a>"#));
        assert!(page.contains("Error code: 403"));
    }

    #[test]
    fn store_outage_asks_to_retry_in_a_minute() {
        let page = error_page(
            Lang::Nl,
            &Branding::default(),
            ErrorPage::ServiceUnavailable,
        );
        assert!(page.contains("Probeer het over een minuut opnieuw."));
        assert!(page.contains(r#"href="/">Opnieuw proberen</a>"#));
        assert!(page.contains("Foutcode: 503"));
    }

    #[test]
    fn every_page_has_its_own_title() {
        for lang in [Lang::En, Lang::Nl] {
            let mut titles: Vec<_> = ALL.iter().map(|p| p.text(lang).title).collect();
            titles.sort_unstable();
            titles.dedup();
            assert_eq!(titles.len(), ALL.len(), "{lang:?}");
        }
    }

    #[test]
    fn response_adds_retry_after_only_where_waiting_helps() {
        for page in ALL {
            let r = error_response(Lang::En, &Branding::default(), page);
            assert_eq!(r.status(), page.status());
            let retry = r.headers().get(RETRY_AFTER).is_some();
            assert_eq!(
                retry,
                matches!(
                    page,
                    ErrorPage::TooManyRequests | ErrorPage::ServiceUnavailable
                ),
                "{page:?}"
            );
            assert!(r.headers().get("content-security-policy").is_some());
        }
    }
}
