//! Demo VMS: a small stand-in for the legacy Vendor Management System.
//!
//! The gateway is built for a web application that organisations cannot change. To demonstrate
//! it (`mfa-gateway demo`) and to give the integration tests a real upstream, this module plays
//! that application: a login form, an opaque session cookie, one user per VMS role and a few
//! pages behind the login. It knows nothing about MFA; everything it does is what a legacy VMS
//! would do, so the gateway in front of it has to work without its help.
//!
//! It is plain HTTP on loopback, served with hyper directly, with no framework or external
//! assets. Sessions live in memory for 8 hours. One page has a script: `/app`, a small
//! single-page front end that signs in with `fetch` (`POST /api/login`) and then polls
//! `/api/me` with `XMLHttpRequest`, under a strict Content-Security-Policy of its own (its script allowed by hash),
//! as older front ends that cannot be changed do; it knows nothing of the gateway.
//!
//! ```text
//!                 POST /login (form)            GET /home, /vacancies, /api/me
//!                 POST /api/login (JSON)        (session cookie checked each time)
//!   signed out  -------------------------->  signed in  ------------------------+
//!       ^        Set-Cookie: VMSSESSION=..       |   ^                          |
//!       |        Set-Cookie: vms_lang=en         |   +--------------------------+
//!       |        X-VMS-Role: <role>              |
//!       |        X-VMS-User: <user name>         |
//!       +----------------------------------------+
//!          GET|POST /logout (session removed, cookie cleared, logouts += 1)
//!          or 8 h after login (session expires server-side)
//! ```
//!
//! `GET /api/stats` reports how many logins and logouts happened, so tests can see that the
//! gateway ended a session it withheld from the browser.

use std::collections::HashMap;
use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HeaderName, LOCATION, SET_COOKIE,
    X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Body;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// One account of the demo VMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoUser {
    /// Login name typed into the form.
    pub username: &'static str,
    /// Password; `demo` for every account.
    pub password: &'static str,
    /// The role string the VMS reports (`X-VMS-Role`, JSON `role`).
    pub role: &'static str,
    /// Display name shown on the pages.
    pub name: &'static str,
}

/// The demo accounts, one per VMS role.
pub const DEMO_USERS: &[DemoUser] = &[
    DemoUser {
        username: "admin",
        password: "demo",
        role: "Administrator",
        name: "Ada Administrator",
    },
    DemoUser {
        username: "msp",
        password: "demo",
        role: "MSP",
        name: "Morgan Provider",
    },
    DemoUser {
        username: "customer",
        password: "demo",
        role: "Customer",
        name: "Chris Customer",
    },
    DemoUser {
        username: "supplier",
        password: "demo",
        role: "Supplier",
        name: "Sam Supplier (Smith & Sons)",
    },
    DemoUser {
        username: "contractor",
        password: "demo",
        role: "IndependentContractor",
        name: "Connie Contractor",
    },
    DemoUser {
        username: "resource",
        password: "demo",
        role: "Resource",
        name: "René Resource",
    },
];

/// Name of the VMS session cookie.
pub const SESSION_COOKIE: &str = "VMSSESSION";

/// Response header carrying the signed-in user's role on a successful login.
pub const ROLE_HEADER: &str = "X-VMS-Role";

/// [`ROLE_HEADER`] in the lower-case form `http` requires.
const ROLE_HEADER_NAME: HeaderName = HeaderName::from_static("x-vms-role");

/// Response header naming the signed-in user on a successful login: the gateway's identity
/// source (`vms.role.user_header`).
pub const USER_HEADER: &str = "X-VMS-User";

const USER_HEADER_NAME: HeaderName = HeaderName::from_static("x-vms-user");

/// Response header with the signed-in user's e-mail address on a successful login (for
/// `vms.role.email_header`); the address is also in `/api/me` and the JSON login answer.
pub const EMAIL_HEADER: &str = "X-VMS-Email";

const EMAIL_HEADER_NAME: HeaderName = HeaderName::from_static("x-vms-email");

/// A demo user's e-mail address.
pub fn email_of(username: &str) -> String {
    format!("{username}@vms.example")
}

/// Fixed lifetime of a session, counted from login.
const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);

/// Largest request body accepted; bigger ones get `413`.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Random bytes in a session id (base64url without padding: 43 characters).
const SESSION_ID_BYTES: usize = 32;

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long shutdown waits for open connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";

/// Looks up an account by its credentials.
fn find_user(username: &str, password: &str) -> Option<&'static DemoUser> {
    DEMO_USERS
        .iter()
        .find(|u| u.username == username && u.password == password)
}

// === Sessions ===

/// One signed-in browser.
#[derive(Debug, Clone, Copy)]
struct Session {
    user: &'static DemoUser,
    created: Instant,
}

impl Session {
    fn is_live(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.created) < SESSION_LIFETIME
    }
}

/// Session id -> session. Expired entries are dropped when met and on every login.
#[derive(Debug, Default)]
struct SessionStore {
    sessions: HashMap<String, Session>,
}

impl SessionStore {
    fn insert(&mut self, id: String, user: &'static DemoUser, now: Instant) {
        self.sessions.retain(|_, s| s.is_live(now));
        self.sessions.insert(id, Session { user, created: now });
    }

    /// The user of a live session; an expired one is removed.
    fn user(&mut self, id: &str, now: Instant) -> Option<&'static DemoUser> {
        let session = *self.sessions.get(id)?;
        if session.is_live(now) {
            Some(session.user)
        } else {
            self.sessions.remove(id);
            None
        }
    }

    /// Removes a session; `true` if it was live, i.e. a logout really ended something.
    fn remove(&mut self, id: &str, now: Instant) -> bool {
        self.sessions.remove(id).is_some_and(|s| s.is_live(now))
    }

    fn live_count(&self, now: Instant) -> usize {
        self.sessions.values().filter(|s| s.is_live(now)).count()
    }
}

/// A fresh session id: 32 random bytes, base64url without padding.
fn new_session_id() -> Result<String, aws_lc_rs::error::Unspecified> {
    let mut bytes = [0u8; SESSION_ID_BYTES];
    aws_lc_rs::rand::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

// === The application ===

#[derive(Debug, Default)]
struct Inner {
    sessions: Mutex<SessionStore>,
    logins: AtomicU64,
    logouts: AtomicU64,
}

/// The demo VMS. Cheap to clone; clones share sessions and counters.
#[derive(Debug, Clone, Default)]
pub struct DemoVms {
    inner: Arc<Inner>,
}

impl DemoVms {
    /// A VMS with no sessions and zeroed counters.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Serve on the listener until `shutdown` resolves. Errors per connection are logged
    /// (tracing), never panic.
    ///
    /// HTTP/1.1 and HTTP/2 (prior knowledge) are both accepted. On shutdown the listener is
    /// closed and open connections get a few seconds to finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) {
        let graceful = GracefulShutdown::new();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        let mut shutdown = std::pin::pin!(shutdown);

        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let vms = self.clone();
                        let service = service_fn(move |req| {
                            let vms = vms.clone();
                            async move { Ok::<_, Infallible>(vms.handle(req, Instant::now()).await) }
                        });
                        let conn = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .into_owned();
                        let conn = graceful.watch(conn);
                        tokio::spawn(async move {
                            if let Err(error) = conn.await {
                                tracing::debug!(%peer, %error, "demo VMS connection ended with an error");
                            }
                        });
                    }
                    Err(error) => {
                        // Usually out of file descriptors: back off instead of spinning.
                        tracing::warn!(%error, "demo VMS could not accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }

        drop(listener);
        if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                grace = ?SHUTDOWN_GRACE,
                "demo VMS stopped with connections still open"
            );
        }
    }

    /// Number of sessions that are signed in and not expired.
    #[must_use]
    pub fn active_sessions(&self) -> usize {
        self.sessions().live_count(Instant::now())
    }

    /// `(logins, logouts)` since start. Only logouts that ended a live session count.
    #[must_use]
    pub fn stats(&self) -> (u64, u64) {
        (
            self.inner.logins.load(Ordering::Relaxed),
            self.inner.logouts.load(Ordering::Relaxed),
        )
    }

    /// The session map. A panic elsewhere cannot leave it half-updated (every change is a
    /// single map operation), so a poisoned lock is simply taken over.
    fn sessions(&self) -> MutexGuard<'_, SessionStore> {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a session for `user` and returns its id.
    fn start_session(&self, user: &'static DemoUser, now: Instant) -> Option<String> {
        let Ok(id) = new_session_id() else {
            tracing::error!("demo VMS could not draw random bytes for a session id");
            return None;
        };
        self.sessions().insert(id.clone(), user, now);
        self.inner.logins.fetch_add(1, Ordering::Relaxed);
        Some(id)
    }

    /// The user behind the first live session cookie of the request, if any.
    fn current_user<B>(&self, req: &Request<B>, now: Instant) -> Option<&'static DemoUser> {
        let mut sessions = self.sessions();
        session_ids(req).find_map(|id| sessions.user(id, now))
    }

    // === Routing ===

    async fn handle<B>(&self, req: Request<B>, now: Instant) -> Response<Full<Bytes>>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let response = self.route(req, now).await;
        tracing::debug!(%method, %path, status = response.status().as_u16(), "demo VMS request");
        response
    }

    async fn route<B>(&self, req: Request<B>, now: Instant) -> Response<Full<Bytes>>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let method = req.method();
        match req.uri().path() {
            "/" if method == Method::GET => match self.current_user(&req, now) {
                Some(_) => redirect("/home"),
                None => redirect("/login"),
            },
            "/login" if method == Method::GET => self.login_page(&req, now),
            "/login" if method == Method::POST => self.form_login(req, now).await,
            "/api/login" if method == Method::POST => self.api_login(req, now).await,
            "/app" if method == Method::GET => app_page(),
            "/home" if method == Method::GET => match self.current_user(&req, now) {
                Some(user) => html(StatusCode::OK, &home_page(user)),
                None => redirect("/login"),
            },
            "/vacancies" if method == Method::GET => match self.current_user(&req, now) {
                Some(user) => html(StatusCode::OK, &vacancies_page(user)),
                None => redirect("/login"),
            },
            "/api/me" if method == Method::GET => match self.current_user(&req, now) {
                Some(user) => json_response(
                    StatusCode::OK,
                    &json!({"username": user.username, "role": user.role, "name": user.name, "email": email_of(user.username)}),
                ),
                None => json_response(StatusCode::UNAUTHORIZED, &json!({"ok": false})),
            },
            "/api/stats" if method == Method::GET => {
                let (logins, logouts) = self.stats();
                json_response(
                    StatusCode::OK,
                    &json!({"logins": logins, "logouts": logouts}),
                )
            }
            "/logout" if method == Method::GET || method == Method::POST => self.logout(&req, now),
            "/" | "/home" | "/vacancies" | "/api/me" | "/api/stats" | "/app" => {
                method_not_allowed("GET")
            }
            "/login" | "/logout" => method_not_allowed("GET, POST"),
            "/api/login" => method_not_allowed("POST"),
            other => html(StatusCode::NOT_FOUND, &not_found_page(other)),
        }
    }

    // === Handlers ===

    fn login_page<B>(&self, req: &Request<B>, now: Instant) -> Response<Full<Bytes>> {
        // `/login?username=msp` pre-fills the form: the account list links there.
        let prefill = req
            .uri()
            .query()
            .and_then(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "username")
                    .map(|(_, v)| v.into_owned())
            })
            .unwrap_or_default();
        let signed_in = self.current_user(req, now);
        html(StatusCode::OK, &login_page(&prefill, None, signed_in))
    }

    async fn form_login<B>(&self, req: Request<B>, now: Instant) -> Response<Full<Bytes>>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        if !has_media_type(&req, "application/x-www-form-urlencoded") {
            return unsupported_media_type("application/x-www-form-urlencoded");
        }
        let body = match read_body(req).await {
            Ok(body) => body,
            Err(rejection) => return rejection,
        };
        let mut username = String::new();
        let mut password = String::new();
        for (key, value) in form_urlencoded::parse(&body) {
            match key.as_ref() {
                "username" => username = value.into_owned(),
                "password" => password = value.into_owned(),
                _ => {}
            }
        }
        let Some(user) = find_user(&username, &password) else {
            let page = login_page(&username, Some("Invalid username or password"), None);
            return html(StatusCode::OK, &page);
        };
        let Some(id) = self.start_session(user, now) else {
            return server_error();
        };
        let mut response = redirect("/home");
        if !add_login_headers(&mut response, &id, user) {
            return server_error();
        }
        response
            .headers_mut()
            .append(SET_COOKIE, HeaderValue::from_static("vms_lang=en; Path=/"));
        response
    }

    async fn api_login<B>(&self, req: Request<B>, now: Instant) -> Response<Full<Bytes>>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        #[derive(Deserialize)]
        struct Credentials {
            username: String,
            password: String,
        }

        if !has_media_type(&req, JSON) {
            return unsupported_media_type(JSON);
        }
        let body = match read_body(req).await {
            Ok(body) => body,
            Err(rejection) => return rejection,
        };
        let Ok(credentials) = serde_json::from_slice::<Credentials>(&body) else {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({
                    "ok": false,
                    "error": "expected a JSON object {\"username\": string, \"password\": string}",
                }),
            );
        };
        let Some(user) = find_user(&credentials.username, &credentials.password) else {
            return json_response(StatusCode::UNAUTHORIZED, &json!({"ok": false}));
        };
        let Some(id) = self.start_session(user, now) else {
            return server_error();
        };
        let mut response = json_response(
            StatusCode::OK,
            &json!({"ok": true, "user": {"name": user.name, "role": user.role, "email": email_of(user.username)}}),
        );
        if !add_login_headers(&mut response, &id, user) {
            return server_error();
        }
        response
    }

    fn logout<B>(&self, req: &Request<B>, now: Instant) -> Response<Full<Bytes>> {
        let ended = {
            let mut sessions = self.sessions();
            session_ids(req).fold(0u64, |n, id| n + u64::from(sessions.remove(id, now)))
        };
        self.inner.logouts.fetch_add(ended, Ordering::Relaxed);
        let mut response = redirect("/login");
        response.headers_mut().append(
            SET_COOKIE,
            HeaderValue::from_static("VMSSESSION=; Max-Age=0; Path=/"),
        );
        response
    }
}

/// Adds the session cookie and the role and user headers of a successful login. `false` if a value
/// could not be a header (cannot happen with base64url ids and the fixed role strings).
fn add_login_headers(response: &mut Response<Full<Bytes>>, id: &str, user: &DemoUser) -> bool {
    let cookie = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax"
    ));
    let role = HeaderValue::from_str(user.role);
    let name = HeaderValue::from_str(user.username);
    let email = HeaderValue::from_str(&email_of(user.username));
    match (cookie, role, name, email) {
        (Ok(cookie), Ok(role), Ok(name), Ok(email)) => {
            let headers = response.headers_mut();
            headers.append(SET_COOKIE, cookie);
            headers.insert(ROLE_HEADER_NAME, role);
            headers.insert(USER_HEADER_NAME, name);
            headers.insert(EMAIL_HEADER_NAME, email);
            true
        }
        _ => false,
    }
}

// === Reading requests ===

/// Values of every `VMSSESSION` cookie in the request (HTTP/2 may split `Cookie` headers).
fn session_ids<B>(req: &Request<B>) -> impl Iterator<Item = &str> {
    req.headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, value)| *name == SESSION_COOKIE && !value.is_empty())
        .map(|(_, value)| value.trim())
}

/// Whether `Content-Type` names `expected` (parameters such as `charset` are ignored).
fn has_media_type<B>(req: &Request<B>, expected: &str) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(expected))
}

/// Reads the whole body, at most [`MAX_BODY_BYTES`]; the error is the response to send.
async fn read_body<B>(req: Request<B>) -> Result<Bytes, Response<Full<Bytes>>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(payload_too_large());
    }
    match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(payload_too_large()),
        Err(error) => {
            tracing::debug!(%error, "demo VMS could not read a request body");
            Err(text(
                StatusCode::BAD_REQUEST,
                "The request body could not be read.",
            ))
        }
    }
}

// === Building responses ===

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

fn html(status: StatusCode, page: &str) -> Response<Full<Bytes>> {
    respond(status, HTML, page.to_owned())
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    respond(status, JSON, value.to_string())
}

fn text(status: StatusCode, message: &'static str) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", format!("{message}\n"))
}

/// `302 Found` to one of the VMS's own fixed paths.
fn redirect(location: &'static str) -> Response<Full<Bytes>> {
    let body = html! {
        (DOCTYPE) p { "Redirecting to " a href=(location) { (location) } "." } "\n"
    }
    .into_string();
    let mut response = respond(StatusCode::FOUND, HTML, body);
    response
        .headers_mut()
        .insert(LOCATION, HeaderValue::from_static(location));
    response
}

fn method_not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut response = text(
        StatusCode::METHOD_NOT_ALLOWED,
        "This method is not allowed here; see the Allow header.",
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

fn unsupported_media_type(expected: &'static str) -> Response<Full<Bytes>> {
    respond(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "text/plain; charset=utf-8",
        format!("Send the body as {expected}.\n"),
    )
}

fn payload_too_large() -> Response<Full<Bytes>> {
    text(
        StatusCode::PAYLOAD_TOO_LARGE,
        "The request body is larger than 64 KiB.",
    )
}

fn server_error() -> Response<Full<Bytes>> {
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The demo VMS could not start a session; see its log.",
    )
}

// === Pages ===

/// The demo's stylesheet. It is written into the page escaped like any template text, which
/// leaves it unchanged because it contains none of `& < > "` (a unit test checks this).
const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;background:#f3f5f8;color:#1d2430}\
.banner{background:#fff4d6;border-bottom:1px solid #e8d49a;color:#6b5100;padding:.5rem 1rem;text-align:center;font-size:.9rem}\
header{background:#24446b;color:#fff;padding:.8rem 1.5rem;display:flex;justify-content:space-between;align-items:center}\
header .brand{font-weight:600;font-size:1.15rem;letter-spacing:.02em}\
header nav a{color:#dbe7f5;margin-left:1.2rem;text-decoration:none}\
header nav a:hover{color:#fff;text-decoration:underline}\
main{max-width:52rem;margin:2rem auto;padding:0 1rem}\
.card{background:#fff;border:1px solid #dde3ea;border-radius:8px;padding:1.5rem 1.75rem;margin-bottom:1.5rem;box-shadow:0 1px 2px rgba(0,0,0,.04)}\
h1{font-size:1.5rem;margin:0 0 1rem}\
h2{font-size:1.1rem;margin:0 0 .75rem}\
label{display:block;font-weight:600;margin:.75rem 0 .25rem}\
input{width:100%;padding:.55rem .7rem;border:1px solid #b9c3cf;border-radius:5px;font:inherit}\
button{margin-top:1.25rem;background:#24446b;color:#fff;border:0;border-radius:5px;padding:.6rem 1.4rem;font:inherit;cursor:pointer}\
button:hover{background:#1a3352}\
.error{background:#fdecec;border:1px solid #f0b4b4;color:#8a1f1f;border-radius:5px;padding:.6rem .8rem}\
.notice{background:#eaf3ea;border:1px solid #b8d8b8;border-radius:5px;padding:.6rem .8rem}\
table{width:100%;border-collapse:collapse}\
th,td{text-align:left;padding:.45rem .5rem;border-bottom:1px solid #e6eaef}\
th{font-size:.85rem;text-transform:uppercase;letter-spacing:.04em;color:#5a6675}\
a{color:#24446b}\
.muted{color:#5a6675;font-size:.9rem}\
code{background:#eef1f5;padding:.05rem .35rem;border-radius:4px}";

/// The page frame around `content`, a template of this module.
fn layout(title: &str, user: Option<&DemoUser>, content: Markup) -> String {
    html! {
        (DOCTYPE) "\n"
        html lang="en" {
            "\n"
            head {
                "\n" meta charset="utf-8";
                "\n" meta name="viewport" content="width=device-width, initial-scale=1";
                "\n" title { (title) " · Demo VMS" }
                "\n" style { (STYLE) }
                "\n"
            }
            "\n"
            body {
                "\n"
                div class="banner" { "Demo VMS — a stand-in for your Vendor Management System" }
                "\n"
                header {
                    span class="brand" { "Demo VMS" }
                    nav {
                        @if let Some(user) = user {
                            span { (user.name) " · " (user.role) }
                            a href="/home" { "Home" }
                            a href="/vacancies" { "Vacancies" }
                            a href="/logout" { "Sign out" }
                        } @else {
                            a href="/login" { "Sign in" }
                        }
                    }
                }
                "\n"
                main { "\n" (content) "\n" }
                "\n"
            }
            "\n"
        }
        "\n"
    }
    .into_string()
}

/// The script of `/app`: sign-in by `fetch` with JSON, then `/api/me` polled with
/// `XMLHttpRequest` (front ends of both ages). It shows what
/// the VMS answers and nothing else; it has no idea that a gateway may answer instead.
const APP_SCRIPT: &str = "(function(){\
var out=document.getElementById('out'),res=document.getElementById('result'),\
form=document.getElementById('signin');\
window.polls=0;\
function poll(){var x=new XMLHttpRequest();x.open('GET','/api/me');\
x.setRequestHeader('Accept','application/json');\
x.onload=function(){window.polls++;\
if(x.status===200){form.hidden=true;\
out.textContent='Signed in as '+JSON.parse(x.responseText).username;return;}\
form.hidden=false;out.textContent='Not signed in ('+x.status+')';};\
x.onerror=function(){out.textContent='No answer';};x.send();}\
form.addEventListener('submit',function(e){e.preventDefault();\
fetch('/api/login',{method:'POST',headers:{'Content-Type':'application/json'},\
body:JSON.stringify({username:form.username.value,password:form.password.value})})\
.then(function(r){res.textContent=r.status===200?'Signed in':'Sign-in failed ('+r.status+')';poll();})\
.catch(function(){res.textContent='No answer';});});\
poll();setInterval(poll,300);})();";

/// `/app`: the single-page front end, with a CSP that allows only its own script.
fn app_page() -> Response<Full<Bytes>> {
    let content = html! {
        div class="card" {
            "\n" h1 { "Vacancy board" } "\n"
            p id="out" role="status" { "Loading" } "\n"
            p id="result" role="status" {} "\n"
            form id="signin" hidden {
                label for="app-username" { "Username" }
                input id="app-username" name="username" autocomplete="username";
                label for="app-password" { "Password" }
                input id="app-password" name="password" type="password" autocomplete="current-password";
                button type="submit" { "Sign in" }
            }
            "\n"
            script { (crate::pages::html::raw::script(APP_SCRIPT)) }
        }
    };
    let mut response = html(StatusCode::OK, &layout("Vacancy board", None, content));
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, APP_SCRIPT.as_bytes());
    let csp = format!(
        "default-src 'self'; script-src 'sha256-{}'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(http::header::CONTENT_SECURITY_POLICY, v);
    }
    response
}

fn login_page(username: &str, error: Option<&str>, signed_in: Option<&DemoUser>) -> String {
    let content = html! {
        div class="card" {
            "\n" h1 { "Sign in" } "\n"
            @if let Some(user) = signed_in {
                p class="notice" {
                    "You are already signed in as " (user.name) ". "
                    a href="/home" { "Continue to your home page" } "."
                }
                "\n"
            }
            @if let Some(error) = error {
                p class="error" role="alert" { (error) }
                "\n"
            }
            form method="post" action="/login" {
                "\n" label for="username" { "Username" }
                "\n" input id="username" name="username" autocomplete="username" value=(username)
                    required;
                "\n" label for="password" { "Password" }
                "\n" input id="password" name="password" type="password"
                    autocomplete="current-password" required;
                "\n" button type="submit" { "Sign in" }
                "\n"
            }
            "\n"
        }
        "\n"
        div class="card" {
            "\n" h2 { "Demo accounts" } "\n"
            p class="muted" {
                "One account per VMS role. The password for every account is "
                code { "demo" } ". Pick a username to fill it in."
            }
            "\n"
            table {
                "\n"
                thead { tr { th { "Username" } th { "Role" } th { "Name" } } }
                "\n"
                tbody {
                    "\n"
                    @for user in DEMO_USERS {
                        tr {
                            td {
                                a href={ "/login?" (username_query(user.username)) } {
                                    (user.username)
                                }
                            }
                            td { (user.role) }
                            td { (user.name) }
                        }
                        "\n"
                    }
                }
                "\n"
            }
            "\n"
        }
    };
    layout("Sign in", None, content)
}

/// `username=…`, form-encoded, for the links that pre-fill the login form.
fn username_query(username: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("username", username)
        .finish()
}

fn home_page(user: &DemoUser) -> String {
    let content = html! {
        div class="card" {
            "\n" h1 { "Welcome, " (user.name) " (" (user.role) ")" } "\n"
            p { "You are signed in to the Demo VMS as " code { (user.username) } "." } "\n"
            ul {
                "\n" li { a href="/vacancies" { "Browse open vacancies" } }
                "\n" li { a href="/logout" { "Sign out" } }
                "\n"
            }
            "\n"
        }
    };
    layout("Home", Some(user), content)
}

/// Sample rows for the vacancies table: title, client, location, start, rate.
const VACANCIES: &[(&str, &str, &str, &str, &str)] = &[
    (
        "Senior Java Developer",
        "Northwind Logistics",
        "Rotterdam",
        "2026-03-02",
        "€95/h",
    ),
    (
        "Project Manager Infrastructure",
        "Contoso Energy",
        "Utrecht",
        "2026-03-16",
        "€110/h",
    ),
    (
        "Data Analyst",
        "Fabrikam Health",
        "Remote",
        "2026-04-01",
        "€80/h",
    ),
    (
        "Service Desk Lead",
        "Tailspin & Partners",
        "Eindhoven",
        "2026-04-13",
        "€70/h",
    ),
];

fn vacancies_page(user: &DemoUser) -> String {
    let content = html! {
        div class="card" {
            "\n" h1 { "Open vacancies" } "\n"
            table {
                "\n"
                thead {
                    tr {
                        th { "Title" } th { "Client" } th { "Location" } th { "Start" }
                        th { "Rate" }
                    }
                }
                "\n"
                tbody {
                    "\n"
                    @for (title, client, location, start, rate) in VACANCIES {
                        tr {
                            td { (title) } td { (client) } td { (location) } td { (start) }
                            td { (rate) }
                        }
                        "\n"
                    }
                }
                "\n"
            }
            "\n" p class="muted" { "Sample data." } "\n"
        }
    };
    layout("Vacancies", Some(user), content)
}

fn not_found_page(path: &str) -> String {
    let content = html! {
        div class="card" {
            "\n" h1 { "Page not found" } "\n"
            p { "The Demo VMS has no page at " code { (path) } "." } "\n"
            p { a href="/" { "Go to the start page" } } "\n"
        }
    };
    layout("Not found", None, content)
}

// === Convenience ===

/// Convenience: bind 127.0.0.1:port (0 = any), spawn, return the bound address and a handle
/// to stop it.
///
/// Send `()` on the returned sender to stop the server. Dropping the sender does not stop it;
/// it then runs until the Tokio runtime shuts down.
pub async fn spawn(port: u16) -> std::io::Result<(SocketAddr, DemoVms, oneshot::Sender<()>)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    let addr = listener.local_addr()?;
    let vms = DemoVms::new();
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        if stopped.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::spawn(vms.clone().serve(listener, shutdown));
    tracing::info!(%addr, "demo VMS listening");
    Ok((addr, vms, stop))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;

    /// A parsed HTTP/1.1 response.
    #[derive(Debug)]
    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        fn all(&self, name: &str) -> Vec<&str> {
            self.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect()
        }

        fn json(&self) -> serde_json::Value {
            serde_json::from_str(&self.body).unwrap()
        }

        /// The session id from `Set-Cookie: VMSSESSION=...`.
        fn session(&self) -> String {
            let cookie = self
                .all("set-cookie")
                .into_iter()
                .find(|c| c.starts_with("VMSSESSION="))
                .expect("a session cookie");
            let value = cookie.split(';').next().unwrap();
            value.trim_start_matches("VMSSESSION=").to_owned()
        }
    }

    /// Sends one raw HTTP/1.1 request over a fresh connection and reads the reply.
    async fn send(
        addr: SocketAddr,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: vms.test\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in extra {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);

        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
            .await
            .expect("reply within 10 s")
            .unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_owned(), v.trim().to_owned())
            })
            .collect();
        Reply {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    async fn get(addr: SocketAddr, path: &str, session: Option<&str>) -> Reply {
        match session {
            Some(id) => {
                let cookie = format!("vms_lang=en; VMSSESSION={id}");
                send(addr, "GET", path, &[("Cookie", &cookie)], "").await
            }
            None => send(addr, "GET", path, &[], "").await,
        }
    }

    async fn form_login(addr: SocketAddr, username: &str, password: &str) -> Reply {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("username", username)
            .append_pair("password", password)
            .finish();
        let content_type = ("Content-Type", "application/x-www-form-urlencoded");
        send(addr, "POST", "/login", &[content_type], &body).await
    }

    async fn api_login(addr: SocketAddr, body: &str) -> Reply {
        let content_type = ("Content-Type", "application/json");
        send(addr, "POST", "/api/login", &[content_type], body).await
    }

    #[tokio::test]
    async fn form_login_sets_both_cookies_and_role_and_redirects_home() {
        let (addr, vms, _stop) = spawn(0).await.unwrap();
        let reply = form_login(addr, "admin", "demo").await;

        assert_eq!(reply.status, 302);
        assert_eq!(reply.header("location"), Some("/home"));
        assert_eq!(reply.header("x-vms-role"), Some("Administrator"));
        let cookies = reply.all("set-cookie");
        assert_eq!(cookies.len(), 2, "{cookies:?}");
        let id = reply.session();
        assert_eq!(
            cookies[0],
            format!("VMSSESSION={id}; Path=/; HttpOnly; SameSite=Lax")
        );
        assert_eq!(cookies[1], "vms_lang=en; Path=/");
        assert_eq!(URL_SAFE_NO_PAD.decode(&id).unwrap().len(), 32);
        assert_eq!(vms.active_sessions(), 1);
        assert_eq!(vms.stats(), (1, 0));
    }

    #[tokio::test]
    async fn every_demo_user_gets_its_role_header() {
        let (addr, _vms, _stop) = spawn(0).await.unwrap();
        let mut roles = Vec::new();
        for user in DEMO_USERS {
            let reply = form_login(addr, user.username, "demo").await;
            assert_eq!(reply.status, 302, "{}", user.username);
            roles.push(reply.header("x-vms-role").unwrap().to_owned());
        }
        assert_eq!(
            roles,
            [
                "Administrator",
                "MSP",
                "Customer",
                "Supplier",
                "IndependentContractor",
                "Resource"
            ]
        );
    }

    #[tokio::test]
    async fn failed_form_login_shows_form_again_without_cookie() {
        let (addr, vms, _stop) = spawn(0).await.unwrap();
        let reply = form_login(addr, "admin\"><script>", "wrong").await;

        assert_eq!(reply.status, 200);
        assert!(reply.all("set-cookie").is_empty());
        assert_eq!(reply.header("x-vms-role"), None);
        assert!(reply.body.contains("Invalid username or password"));
        assert!(
            reply
                .body
                .contains("value=\"admin&quot;&gt;&lt;script&gt;\"")
        );
        assert!(!reply.body.contains("<script>"));
        assert_eq!(vms.stats(), (0, 0));
        assert_eq!(vms.active_sessions(), 0);

        let wrong_password = form_login(addr, "msp", "not-demo").await;
        assert!(wrong_password.all("set-cookie").is_empty());
    }

    #[tokio::test]
    async fn api_me_needs_a_live_session() {
        let (addr, _vms, _stop) = spawn(0).await.unwrap();
        let anonymous = get(addr, "/api/me", None).await;
        assert_eq!(anonymous.status, 401);
        assert_eq!(anonymous.json(), json!({"ok": false}));

        let forged = get(addr, "/api/me", Some("not-a-session")).await;
        assert_eq!(forged.status, 401);

        let id = form_login(addr, "contractor", "demo").await.session();
        let me = get(addr, "/api/me", Some(&id)).await;
        assert_eq!(me.status, 200);
        assert_eq!(me.header("content-type"), Some("application/json"));
        assert_eq!(
            me.json(),
            json!({
                "username": "contractor",
                "role": "IndependentContractor",
                "name": "Connie Contractor",
                "email": "contractor@vms.example",
            })
        );
    }

    #[tokio::test]
    async fn json_login_success_failure_and_malformed() {
        let (addr, vms, _stop) = spawn(0).await.unwrap();

        let ok = api_login(addr, r#"{"username":"customer","password":"demo"}"#).await;
        assert_eq!(ok.status, 200);
        assert_eq!(
            ok.json(),
            json!({"ok": true, "user": {"name": "Chris Customer", "role": "Customer", "email": "customer@vms.example"}})
        );
        assert_eq!(ok.header("x-vms-role"), Some("Customer"));
        let id = ok.session();
        let me = get(addr, "/api/me", Some(&id)).await;
        assert_eq!(me.json()["username"], "customer");

        let denied = api_login(addr, r#"{"username":"customer","password":"nope"}"#).await;
        assert_eq!(denied.status, 401);
        assert_eq!(denied.json(), json!({"ok": false}));
        assert!(denied.all("set-cookie").is_empty());

        let malformed = api_login(addr, r#"{"username":"customer"}"#).await;
        assert_eq!(malformed.status, 400);
        assert_eq!(malformed.json()["ok"], false);

        let as_form = send(
            addr,
            "POST",
            "/api/login",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            "username=customer&password=demo",
        )
        .await;
        assert_eq!(as_form.status, 415);

        assert_eq!(vms.stats(), (1, 0));
    }

    #[tokio::test]
    async fn logout_ends_the_session_and_clears_the_cookie() {
        let (addr, vms, _stop) = spawn(0).await.unwrap();
        let id = form_login(addr, "msp", "demo").await.session();
        assert_eq!(get(addr, "/home", Some(&id)).await.status, 200);

        let logout = send(
            addr,
            "POST",
            "/logout",
            &[("Cookie", &format!("VMSSESSION={id}"))],
            "",
        )
        .await;
        assert_eq!(logout.status, 302);
        assert_eq!(logout.header("location"), Some("/login"));
        assert_eq!(logout.all("set-cookie"), ["VMSSESSION=; Max-Age=0; Path=/"]);

        let after = get(addr, "/api/me", Some(&id)).await;
        assert_eq!(after.status, 401);
        let home = get(addr, "/home", Some(&id)).await;
        assert_eq!(home.status, 302);
        assert_eq!(home.header("location"), Some("/login"));
        assert_eq!(vms.active_sessions(), 0);
        assert_eq!(vms.stats(), (1, 1));

        // Logging out again (or without a session) ends nothing and counts nothing.
        let again = get(addr, "/logout", Some(&id)).await;
        assert_eq!(again.status, 302);
        assert_eq!(vms.stats(), (1, 1));
    }

    #[tokio::test]
    async fn stats_count_logins_and_logouts() {
        let (addr, vms, _stop) = spawn(0).await.unwrap();
        assert_eq!(
            get(addr, "/api/stats", None).await.json(),
            json!({"logins": 0, "logouts": 0})
        );

        let first = form_login(addr, "admin", "demo").await.session();
        let _second = api_login(addr, r#"{"username":"resource","password":"demo"}"#)
            .await
            .session();
        form_login(addr, "admin", "bad").await;
        get(addr, "/logout", Some(&first)).await;

        let stats = get(addr, "/api/stats", None).await;
        assert_eq!(stats.status, 200);
        assert_eq!(stats.json(), json!({"logins": 2, "logouts": 1}));
        assert_eq!(vms.stats(), (2, 1));
        assert_eq!(vms.active_sessions(), 1);
    }

    #[tokio::test]
    async fn root_home_and_vacancies_follow_the_session() {
        let (addr, _vms, _stop) = spawn(0).await.unwrap();
        let root = get(addr, "/", None).await;
        assert_eq!(
            (root.status, root.header("location")),
            (302, Some("/login"))
        );
        let vacancies = get(addr, "/vacancies", None).await;
        assert_eq!(vacancies.header("location"), Some("/login"));

        let id = form_login(addr, "supplier", "demo").await.session();
        let root = get(addr, "/", Some(&id)).await;
        assert_eq!((root.status, root.header("location")), (302, Some("/home")));

        let home = get(addr, "/home", Some(&id)).await;
        assert_eq!(home.status, 200);
        assert!(
            home.body
                .contains("Welcome, Sam Supplier (Smith &amp; Sons) (Supplier)"),
            "{}",
            home.body
        );
        assert!(home.body.contains("href=\"/vacancies\""));
        assert!(home.body.contains("href=\"/logout\""));
        assert!(
            home.body
                .contains("Demo VMS — a stand-in for your Vendor Management System")
        );

        let vacancies = get(addr, "/vacancies", Some(&id)).await;
        assert_eq!(vacancies.status, 200);
        assert!(vacancies.body.contains("<td>Tailspin &amp; Partners</td>"));
    }

    #[tokio::test]
    async fn login_page_lists_accounts_and_prefills() {
        let (addr, _vms, _stop) = spawn(0).await.unwrap();
        let page = get(addr, "/login?username=%3Cb%3Emsp", None).await;
        assert_eq!(page.status, 200);
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(
            page.body
                .contains("<form method=\"post\" action=\"/login\">")
        );
        assert!(page.body.contains("name=\"username\""));
        assert!(page.body.contains("name=\"password\""));
        assert!(page.body.contains("value=\"&lt;b&gt;msp\""));
        for user in DEMO_USERS {
            assert!(
                page.body
                    .contains(&format!("/login?username={}", user.username))
            );
        }
        assert!(page.body.contains("René Resource"));
    }

    #[tokio::test]
    async fn unknown_paths_and_methods() {
        let (addr, _vms, _stop) = spawn(0).await.unwrap();
        let missing = get(addr, "/nope", None).await;
        assert_eq!(missing.status, 404);
        assert!(missing.body.contains("Page not found"));
        assert!(missing.body.contains("<code>/nope</code>"));
        assert!(not_found_page("/a\"<b>").contains("<code>/a&quot;&lt;b&gt;</code>"));

        let put = send(addr, "PUT", "/login", &[], "").await;
        assert_eq!(put.status, 405);
        assert_eq!(put.header("allow"), Some("GET, POST"));
    }

    #[tokio::test]
    async fn stop_handle_shuts_the_server_down() {
        let (addr, _vms, stop) = spawn(0).await.unwrap();
        assert_eq!(get(addr, "/api/stats", None).await.status, 200);
        stop.send(()).unwrap();
        let mut refused = false;
        for _ in 0..100 {
            if TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(refused, "the listener is still accepting after stop");
    }

    // --- In-process checks (no socket) ---

    fn form_request(
        body: impl Into<Bytes>,
        declared_length: Option<usize>,
    ) -> Request<Full<Bytes>> {
        let mut builder =
            Request::post("/login").header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(len) = declared_length {
            builder = builder.header(CONTENT_LENGTH, len);
        }
        builder.body(Full::new(body.into())).unwrap()
    }

    #[tokio::test]
    async fn bodies_over_64_kib_get_413() {
        let vms = DemoVms::new();
        let now = Instant::now();
        let big = vec![b'a'; MAX_BODY_BYTES + 1];

        // Declared too large: rejected before reading.
        let declared = vms
            .handle(form_request(Bytes::new(), Some(MAX_BODY_BYTES + 1)), now)
            .await;
        assert_eq!(declared.status(), StatusCode::PAYLOAD_TOO_LARGE);

        // No length declared (chunked): stopped while reading.
        let streamed = vms.handle(form_request(big, None), now).await;
        assert_eq!(streamed.status(), StatusCode::PAYLOAD_TOO_LARGE);

        // Exactly at the cap is still read (and is just a failed login).
        let at_cap = vms
            .handle(form_request(vec![b'a'; MAX_BODY_BYTES], None), now)
            .await;
        assert_eq!(at_cap.status(), StatusCode::OK);
        assert_eq!(vms.stats(), (0, 0));
    }

    #[tokio::test]
    async fn sessions_expire_after_eight_hours() {
        let vms = DemoVms::new();
        let t0 = Instant::now();
        let login = vms
            .handle(form_request("username=admin&password=demo", None), t0)
            .await;
        let cookie = login.headers().get(SET_COOKIE).unwrap().to_str().unwrap();
        let pair = cookie.split(';').next().unwrap().to_owned();
        let me = |now| {
            let req = Request::get("/api/me")
                .header(COOKIE, pair.as_str())
                .body(Full::new(Bytes::new()))
                .unwrap();
            let vms = vms.clone();
            async move { vms.handle(req, now).await.status() }
        };

        let almost = t0 + SESSION_LIFETIME - Duration::from_secs(1);
        assert_eq!(me(almost).await, StatusCode::OK);
        assert_eq!(me(t0 + SESSION_LIFETIME).await, StatusCode::UNAUTHORIZED);
        // The expired session was dropped, so it is gone even for an earlier clock.
        assert_eq!(me(t0).await, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn logout_of_an_expired_session_does_not_count() {
        let mut store = SessionStore::default();
        let t0 = Instant::now();
        store.insert("a".into(), &DEMO_USERS[0], t0);
        store.insert("b".into(), &DEMO_USERS[1], t0);
        assert_eq!(store.live_count(t0), 2);
        assert!(!store.remove("a", t0 + SESSION_LIFETIME));
        assert!(store.remove("b", t0));
        assert!(!store.remove("b", t0));
        assert_eq!(store.live_count(t0), 0);
    }

    #[test]
    fn session_ids_are_random_base64url() {
        let a = new_session_id().unwrap();
        let b = new_session_id().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn session_cookie_is_found_among_others_and_across_headers() {
        let req = Request::get("/")
            .header(COOKIE, "vms_lang=en;VMSSESSION=")
            .header(COOKIE, "theme=dark; VMSSESSION=first ; VMSSESSION=second")
            .body(())
            .unwrap();
        let ids: Vec<&str> = session_ids(&req).collect();
        assert_eq!(ids, ["first", "second"]);

        let none = Request::get("/")
            .header(COOKIE, "XVMSSESSION=x")
            .body(())
            .unwrap();
        assert_eq!(session_ids(&none).count(), 0);
    }

    #[test]
    fn media_type_ignores_parameters_and_case() {
        let req = |ct: &str| {
            Request::post("/")
                .header(CONTENT_TYPE, ct)
                .body(())
                .unwrap()
        };
        assert!(has_media_type(
            &req("Application/JSON; charset=utf-8"),
            "application/json"
        ));
        assert!(!has_media_type(&req("text/json"), "application/json"));
        assert!(!has_media_type(
            &Request::post("/").body(()).unwrap(),
            "application/json"
        ));
    }

    #[test]
    fn role_header_name_matches_the_public_constant() {
        assert_eq!(ROLE_HEADER_NAME.as_str(), ROLE_HEADER.to_ascii_lowercase());
    }

    #[test]
    fn the_stylesheet_is_unchanged_by_escaping() {
        assert!(!STYLE.contains(['&', '<', '>', '"']));
        assert!(home_page(&DEMO_USERS[0]).contains(&format!("<style>{STYLE}</style>")));
    }

    #[test]
    fn pages_escape_what_they_show() {
        let page = login_page("\"><script>", Some("<b>no</b>"), None);
        assert!(page.contains(r#"value="&quot;&gt;&lt;script&gt;""#));
        assert!(page.contains("<p class=\"error\" role=\"alert\">&lt;b&gt;no&lt;/b&gt;</p>"));
        assert!(!page.contains("<script>"));
    }
}
