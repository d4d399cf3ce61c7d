//! What every handler under the reserved prefix takes from a request, written once.
//!
//! The router ([`super::handle`]) splits a request into a [`Call`] (gateway, language, time,
//! client address, method, URI, headers) and its body; handlers then take what they need
//! through these extractors instead of repeating the set-up:
//!
//! | extractor | what it gives | when it fails |
//! |---|---|---|
//! | [`Form::read`] | the `application/x-www-form-urlencoded` body, at most [`MAX_FORM_BYTES`] | `413` if larger, `400` if the body breaks off |
//! | [`Query::of`] | the query parameters | never (a missing one is `None`) |
//! | [`Csrf::session`], [`Csrf::challenge`] | the form token of a signed-in session (account, admin) or of a sign-in's challenge; [`Csrf::check`] checks a form's `csrf` field | the handler shows its page with the CSRF error, `403` |
//! | [`signed_in`] | the approved session of the request, if any | `None` |
//! | [`user`] | the approved session, required | the `403` page |
//! | [`admin`] | an approved session with the MFA step passed in it and a role in `admin.roles` | the `403` page, audited as `admin_access_denied` |
//!
//! A handler returns an [`Answer`]: its response, or a [`Halt`] that is either an error (a
//! page by status, see [`crate::error`]) or an extractor's refusal page, so `?` stops a
//! handler at the first extractor that refuses.

use http::{HeaderMap, Method, Response, Uri};

use crate::audit::{ActorKind, Event, Record};
use crate::error::{ClientError, GatewayError, InternalError};
use crate::gate::Gate;
use crate::gate::approval::Approval;
use crate::gateway::Gateway;
use crate::http::body::{Body, BoxError, CollectError, collect_limited};
use crate::metrics::Outcome;
use crate::mfa::challenge;
use crate::pages::{self, Lang};

/// Forms on the gateway's pages are tiny; anything larger is refused (`413`).
pub const MAX_FORM_BYTES: usize = 4096;

/// One request under the prefix, without its body.
pub struct Call<'a> {
    pub gw: &'a Gateway,
    pub lang: Lang,
    /// The time every decision of this request is made at.
    pub now: u64,
    /// The client's address (the peer, or what trusted proxies say).
    pub client: String,
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
}

impl Call<'_> {
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    pub fn is_post(&self) -> bool {
        self.method == Method::POST
    }
}

/// Why a handler stopped before its own answer.
#[derive(Debug)]
pub enum Halt {
    /// An error: its page and status come from [`GatewayError::page`].
    Failed(GatewayError),
    /// An extractor refused the request with this page (counted as rejected).
    Refused(Box<Response<Body>>),
}

impl From<GatewayError> for Halt {
    fn from(e: GatewayError) -> Self {
        Halt::Failed(e)
    }
}

impl From<ClientError> for Halt {
    fn from(e: ClientError) -> Self {
        Halt::Failed(e.into())
    }
}

impl From<InternalError> for Halt {
    fn from(e: InternalError) -> Self {
        Halt::Failed(e.into())
    }
}

impl From<crate::store::StoreError> for Halt {
    fn from(e: crate::store::StoreError) -> Self {
        Halt::Failed(e.into())
    }
}

/// What a handler returns.
pub type Answer = Result<(Response<Body>, Outcome), Halt>;

/// A submitted `application/x-www-form-urlencoded` form.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// Reads a form body of at most [`MAX_FORM_BYTES`]: larger is `413`, a body that breaks
    /// off is `400`. Invalid UTF-8 is replaced, not refused (the values are then simply
    /// wrong: a token that does not verify, a code in the wrong format).
    pub async fn read<B>(body: B) -> Result<Form, GatewayError>
    where
        B: http_body::Body<Data = bytes::Bytes>,
        B::Error: Into<BoxError>,
    {
        let body = collect_limited(body, MAX_FORM_BYTES)
            .await
            .map_err(|e| match e {
                CollectError::TooLarge => ClientError::PayloadTooLarge,
                CollectError::Io(_) => ClientError::BadRequest("form could not be read"),
            })?;
        Ok(Form(pairs(&body)))
    }

    /// The first value of a field.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
}

/// The query parameters of a request.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn of(uri: &Uri) -> Query {
        Query(uri.query().map(|q| pairs(q.as_bytes())).unwrap_or_default())
    }

    /// The first value of a parameter.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
}

fn pairs(b: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(b)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A form's CSRF token did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadCsrf;

/// The signed-in pages whose forms carry a session-bound token; a token of one is refused
/// by the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrfScope {
    Account,
    Admin,
}

impl CsrfScope {
    fn name(self) -> &'static str {
        match self {
            CsrfScope::Account => "account",
            CsrfScope::Admin => "admin",
        }
    }
}

/// The CSRF token of the forms of one page kind, bound to what proves the user is the one
/// who loaded the page: the signed-in session, or the sign-in's challenge. Stateless: a MAC
/// under the key ring, checked in constant time.
pub struct Csrf<'a> {
    gw: &'a Gateway,
    bound: Bound<'a>,
}

enum Bound<'a> {
    Session(CsrfScope, &'a Approval),
    Challenge(&'a str),
}

impl<'a> Csrf<'a> {
    /// The token of a signed-in session's forms (account and admin pages).
    pub fn session(gw: &'a Gateway, scope: CsrfScope, a: &'a Approval) -> Self {
        Csrf {
            gw,
            bound: Bound::Session(scope, a),
        }
    }

    /// The token of the forms of a sign-in's MFA step, bound to its challenge id.
    pub fn challenge(gw: &'a Gateway, id: &'a str) -> Self {
        Csrf {
            gw,
            bound: Bound::Challenge(id),
        }
    }

    /// The token to put in the page's forms.
    pub fn token(&self) -> String {
        challenge::csrf_token(&self.gw.keys, &self.data())
    }

    /// Checks the form's `csrf` field.
    pub fn check(&self, form: &Form) -> Result<(), BadCsrf> {
        match form.get("csrf") {
            Some(token) if challenge::csrf_ok(&self.gw.keys, &self.data(), token) => Ok(()),
            _ => Err(BadCsrf),
        }
    }

    fn data(&self) -> Vec<u8> {
        match self.bound {
            Bound::Challenge(id) => id.as_bytes().to_vec(),
            Bound::Session(scope, a) => session_data(scope, a),
        }
    }
}

/// A signed-in session's forms are bound to its approval's identity, which renewals keep (a
/// VMS that renews its session cookie, such as ASP.NET's sliding `.ASPXAUTH`, does not break
/// a page that is open); approvals made before identities existed use their session's hash.
fn session_data(scope: CsrfScope, a: &Approval) -> Vec<u8> {
    let mut data = scope.name().as_bytes().to_vec();
    match &a.id {
        Some(id) => {
            data.extend_from_slice(b"id:");
            data.extend_from_slice(id);
        }
        None => data.extend_from_slice(&a.session_hash),
    }
    data
}

/// The signed-in session of a request: its VMS session approved by the gate (approval
/// cookie valid for this session, not revoked).
pub fn signed_in(gw: &Gateway, headers: &HeaderMap, now: u64) -> Option<Approval> {
    // The gate strips what it would not forward; the request itself stays as sent.
    let mut h = headers.clone();
    match gw.gate(&mut h, now) {
        Gate::Approved(a) => Some(Approval::clone(&a)),
        _ => None,
    }
}

/// The signed-in user, required: anyone else gets the `403` page.
pub fn user(call: &Call<'_>) -> Result<Approval, Halt> {
    signed_in(call.gw, &call.headers, call.now).ok_or_else(|| forbidden(call))
}

/// A signed-in administrator: approved session, MFA passed in it, a role in `admin.roles`.
/// Checked on every request to the admin pages, every action included; a refusal is the
/// `403` page (never a redirect loop) and is audited (`admin_access_denied`, with the user
/// if one is signed in).
pub async fn admin(call: &Call<'_>) -> Result<Approval, Halt> {
    let gw = call.gw;
    let a = signed_in(gw, &call.headers, call.now);
    if let Some(a) = a.as_ref()
        && a.mfa_passed
        && gw.cfg.admin.roles.contains(&a.role)
    {
        return Ok(a.clone());
    }
    let who = a.map_or_else(|| "anonymous".to_string(), |a| a.user);
    gw.audit
        .record(
            Record::new(Event::AdminAccessDenied, call.now, ActorKind::User, who)
                .client(&call.client)
                .detail(format!("path={}", call.path())),
        )
        .await;
    Err(forbidden(call))
}

fn forbidden(call: &Call<'_>) -> Halt {
    let page = call
        .gw
        .page_response(pages::ErrorPage::Forbidden, call.lang);
    Halt::Refused(Box::new(page))
}

#[cfg(test)]
#[path = "extract_tests.rs"]
mod tests;
