//! VMSs whose session cookie exists before login (issue: "pre-login sessions").
//!
//! The stand-in below keeps its sessions the way Tomcat/Spring (`JSESSIONID`) and PHP
//! (`PHPSESSID`) applications do: the login page creates an anonymous session holding the
//! form's CSRF token, and the login POST is refused unless its token matches the session's.
//! A successful login either gives the session a new id (Spring Security's
//! `changeSessionId`, PHP's `session_regenerate_id()`) or marks the same id as signed in
//! (older Java applications, most PHP). Routes are matched leniently (case, trailing slash,
//! `//`), and `/j_security_check` is a second login path the gateway is not told about.
//!
//! Two gateway instances share one Redis; a test browser keeps its own cookie jar and may send
//! any request to either instance. What every test asserts: no signed-in page of an enforced
//! user is served before that user's code, on either instance.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use mfa_gateway::auth::totp;
use mfa_gateway::clock::Clock;
use mfa_gateway::metrics::MfaEvent;

use crate::support::browser::{csrf, location, pairing_secret, recovery_codes};
use crate::support::*;

/// Accounts of the stand-in: name, role. Every password is `pw`.
const ACCOUNTS: [(&str, &str); 3] = [("sup1", "Supplier"), ("cust1", "Customer"), ("msp1", "MSP")];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Tomcat + Spring Security: `JSESSIONID`, a new id at login.
    SpringRotates,
    /// An older Java application: `JSESSIONID`, the same id becomes signed in.
    SpringSameId,
    /// PHP without `session_regenerate_id()`: `PHPSESSID`, the same id.
    PhpSameId,
}

impl Kind {
    fn cookie(self) -> &'static str {
        match self {
            Kind::PhpSameId => "PHPSESSID",
            _ => "JSESSIONID",
        }
    }
    fn rotates(self) -> bool {
        self == Kind::SpringRotates
    }
    fn setting(self) -> &'static str {
        if self.rotates() { "rotates" } else { "same_id" }
    }
}

#[derive(Default)]
struct Session {
    csrf: String,
    user: Option<String>,
}

/// One request as the stand-in handled it: what the session it carried was at that moment.
#[derive(Clone, Debug)]
struct Handled {
    method: String,
    route: String,
    /// The session the request carried, if the VMS knew it.
    id: Option<String>,
    /// Who was signed in to that session when the VMS handled the request.
    user: Option<String>,
}

#[derive(Default)]
struct State {
    sessions: HashMap<String, Session>,
    /// Users whose signed-in page (`/home`) was served, in order.
    homes: Vec<String>,
    /// Every request, in the order the stand-in handled them.
    handled: Vec<Handled>,
}

#[derive(Clone)]
struct Vms {
    kind: Kind,
    state: Arc<Mutex<State>>,
    next: Arc<AtomicUsize>,
    /// Name the signed-in user and role in headers of every answer (`X-VMS-User`,
    /// `X-VMS-Role`), for the gateway's `header` role source.
    identity_headers: bool,
    /// Milliseconds every request waits before it is handled (a slow VMS, so that requests
    /// overlap); 0 by default.
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl Vms {
    fn homes(&self) -> Vec<String> {
        self.state.lock().unwrap().homes.clone()
    }
    fn served_to(&self, user: &str) -> bool {
        self.homes().iter().any(|u| u == user)
    }
    fn clear_homes(&self) {
        self.state.lock().unwrap().homes.clear();
    }
    fn slow(&self, ms: u64) {
        self.delay_ms.store(ms, Ordering::Relaxed);
    }
    fn handled(&self) -> Vec<Handled> {
        self.state.lock().unwrap().handled.clone()
    }
    fn clear_handled(&self) {
        self.state.lock().unwrap().handled.clear();
    }
    fn user_of_id(&self, id: &str) -> Option<String> {
        let st = self.state.lock().unwrap();
        st.sessions.get(id).and_then(|s| s.user.clone())
    }

    fn new_id(&self) -> String {
        format!(
            "S{}x{}",
            self.next.fetch_add(1, Ordering::Relaxed),
            std::process::id()
        )
    }

    /// The request's session id, if the VMS knows it.
    fn session_of<B>(&self, req: &Request<B>) -> Option<String> {
        let st = self.state.lock().unwrap();
        cookies(req)
            .into_iter()
            .filter(|(n, _)| n == self.kind.cookie())
            .map(|(_, v)| v)
            .find(|v| st.sessions.contains_key(v))
    }

    /// `session_start()`: the request's session, or a new anonymous one (its id to set).
    fn start(&self, req: &Request<Incoming>) -> (String, Option<String>) {
        if let Some(id) = self.session_of(req) {
            return (id, None);
        }
        let id = self.new_id();
        let token = format!("csrf-{}", self.new_id());
        self.state.lock().unwrap().sessions.insert(
            id.clone(),
            Session {
                csrf: token,
                user: None,
            },
        );
        (id.clone(), Some(id))
    }

    fn set_cookie(&self, r: &mut Response<Full<Bytes>>, id: &str) {
        r.headers_mut().append(
            "set-cookie",
            format!("{}={id}; Path=/; HttpOnly", self.kind.cookie())
                .parse()
                .unwrap(),
        );
    }

    async fn handle(self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let delay = self.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        let asked = self.session_of(&req);
        {
            let user = asked.as_deref().and_then(|id| self.user_of_id(id));
            self.state.lock().unwrap().handled.push(Handled {
                method: req.method().as_str().to_ascii_uppercase(),
                route: route_of(req.uri().path()),
                id: asked.clone(),
                user,
            });
        }
        let mut resp = self.answer(req).await;
        if self.identity_headers {
            // The session the answer leaves the client with: a new one it sets, or the one
            // the request carried.
            let set = resp
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(|c| c.split(';').next()?.split_once('='))
                .find(|(n, _)| *n == self.kind.cookie())
                .map(|(_, v)| v.to_string());
            if let Some(u) = set.or(asked).and_then(|id| self.user_of_id(&id)) {
                let role = ACCOUNTS.iter().find(|(n, _)| *n == u).unwrap().1;
                resp.headers_mut().insert("x-vms-user", u.parse().unwrap());
                resp.headers_mut()
                    .insert("x-vms-role", role.parse().unwrap());
            }
        }
        Ok(resp)
    }

    async fn answer(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let method = req.method().as_str().to_ascii_uppercase();
        let route = route_of(req.uri().path());
        match (method.as_str(), route.as_str()) {
            ("GET", "/login") => {
                let (id, new) = self.start(&req);
                let token = self.state.lock().unwrap().sessions[&id].csrf.clone();
                let mut r = page(&format!(
                    r#"<form method="post" action="/login"><input type="hidden" name="_csrf" value="{token}"></form>"#
                ));
                if let Some(id) = new {
                    self.set_cookie(&mut r, &id);
                }
                r
            }
            ("POST", "/login" | "/j_security_check") => self.login(req).await,
            // A single-sign-on link the gateway is not told about: signs the request's session
            // in on a GET (the same id), as some legacy applications do.
            ("GET", "/sso") => {
                let q: HashMap<String, String> =
                    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                        .into_owned()
                        .collect();
                let name = q.get("username").cloned().unwrap_or_default();
                match self.session_of(&req) {
                    Some(id)
                        if ACCOUNTS.iter().any(|(n, _)| *n == name)
                            && q.get("password").map(String::as_str) == Some("pw") =>
                    {
                        let mut st = self.state.lock().unwrap();
                        st.sessions.get_mut(&id).unwrap().user = Some(name);
                        drop(st);
                        redirect("/home")
                    }
                    _ => page("Bad credentials"),
                }
            }
            // A state-changing request of a signed-in user (who did it: see `handled`).
            ("POST", "/write") => match self.session_of(&req).and_then(|id| self.user_of_id(&id)) {
                Some(u) => page(&format!("written by {u}")),
                None => redirect("/login"),
            },
            // The login page's assets: served within the session, never opening one.
            ("GET", r) if r.starts_with("/static/") => page("asset"),
            ("GET", "/logout") => {
                if let Some(id) = self.session_of(&req) {
                    self.state.lock().unwrap().sessions.remove(&id);
                }
                redirect("/login")
            }
            ("GET", "/api/me") => match self.session_of(&req).and_then(|id| self.user_of_id(&id)) {
                Some(u) => {
                    let role = ACCOUNTS.iter().find(|(n, _)| *n == u).unwrap().1;
                    json(
                        StatusCode::OK,
                        &format!(r#"{{"user":"{u}","role":"{role}"}}"#),
                    )
                }
                None => json(StatusCode::UNAUTHORIZED, r#"{"user":null}"#),
            },
            ("GET", "/home") => match self.session_of(&req).and_then(|id| self.user_of_id(&id)) {
                Some(u) => {
                    self.state.lock().unwrap().homes.push(u.clone());
                    page(&format!("Welcome {u}"))
                }
                None => {
                    // An anonymous visitor gets a session (and is sent to the login page).
                    let (_, new) = self.start(&req);
                    let mut r = redirect("/login");
                    if let Some(id) = new {
                        self.set_cookie(&mut r, &id);
                    }
                    r
                }
            },
            _ => {
                let mut r = page("not found");
                *r.status_mut() = StatusCode::NOT_FOUND;
                r
            }
        }
    }

    async fn login(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let id = self.session_of(&req);
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
        let Some(id) = id else {
            let mut r = page("Invalid CSRF token");
            *r.status_mut() = StatusCode::FORBIDDEN;
            return r;
        };
        let token_ok = {
            let st = self.state.lock().unwrap();
            st.sessions.get(&id).map(|s| s.csrf.as_str()) == form.get("_csrf").map(String::as_str)
        };
        if !token_ok {
            let mut r = page("Invalid CSRF token");
            *r.status_mut() = StatusCode::FORBIDDEN;
            return r;
        }
        let name = form.get("username").cloned().unwrap_or_default();
        if !ACCOUNTS.iter().any(|(n, _)| *n == name)
            || form.get("password").map(String::as_str) != Some("pw")
        {
            return page("Bad credentials");
        }
        let mut r = redirect("/home");
        let mut st = self.state.lock().unwrap();
        if self.kind.rotates() {
            let mut s = st.sessions.remove(&id).unwrap();
            s.user = Some(name);
            let new = self.new_id();
            st.sessions.insert(new.clone(), s);
            drop(st);
            self.set_cookie(&mut r, &new);
        } else {
            st.sessions.get_mut(&id).unwrap().user = Some(name);
        }
        r
    }
}

/// The route a lenient application matches: `//` collapsed, trailing slash dropped, lower
/// case.
fn route_of(path: &str) -> String {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    format!("/{}", segs.join("/")).to_lowercase()
}

fn cookies<B>(req: &Request<B>) -> Vec<(String, String)> {
    req.headers()
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn page(text: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(format!(
        "<!doctype html><title>VMS</title><p>{text}</p>"
    ))));
    r.headers_mut()
        .insert("content-type", "text/html; charset=utf-8".parse().unwrap());
    r
}

fn json(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

fn redirect(to: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::FOUND;
    r.headers_mut().insert("location", to.parse().unwrap());
    r
}

async fn spawn_vms(kind: Kind, identity_headers: bool) -> (SocketAddr, Vms) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let vms = Vms {
        kind,
        state: Arc::default(),
        next: Arc::default(),
        identity_headers,
        delay_ms: Arc::default(),
    };
    let v = vms.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let v = v.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| v.clone().handle(req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    (addr, vms)
}

fn vms_section(cookie: &str, setting: &str) -> String {
    format!(
        r#"
[vms]
session_cookies = ["{cookie}"]
session_before_login = "{setting}"
pre_login_ttl = "10m"
logout = [{{ path = "/logout" }}]
end_session = {{ method = "GET", path = "/logout" }}
[[vms.login]]
method = "POST"
path = "/login"
username_field = "username"
success_status = [302]
[vms.role]
source = "userinfo"
userinfo_path = "/api/me"
userinfo_user_pointer = "/user"
userinfo_role_pointer = "/role"
[vms.role.map]
Customer = "customer"
Supplier = "supplier"
MSP = "msp"
"#
    )
}

/// Two gateway instances (one configuration, one clock) sharing one Redis, in front of one
/// stand-in. In 2022 MFA is enforced for customers and MSP users; suppliers have none.
struct World {
    gws: Vec<Gw>,
    vms: Vms,
    redis: RedisProc,
    _dirs: Vec<tempfile::TempDir>,
    _certs: Certs,
}

/// The role source: `userinfo` (the default of these tests) or `header`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    UserInfo,
    Header,
}

async fn world_with(kind: Kind, setting: &str) -> World {
    world_from(kind, setting, Source::UserInfo).await
}

async fn world_from(kind: Kind, setting: &str, source: Source) -> World {
    let redis = RedisProc::start();
    let (addr, vms) = spawn_vms(kind, source == Source::Header).await;
    let c = certs();
    let mut section = vms_section(kind.cookie(), setting);
    if source == Source::Header {
        section = section
            .lines()
            .filter(|l| !l.starts_with("userinfo_"))
            .map(|l| {
                if l == "source = \"userinfo\"" {
                    "source = \"header\"\nheader = \"X-VMS-Role\"\nuser_header = \"X-VMS-User\""
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
    }
    let text = config_text(&c, addr, &redis.url(), &section, "");
    let clock = Clock::manual(at("2022-03-01T10:00:00Z"));
    let mut gws = Vec::new();
    let mut dirs = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        gws.push(start_gateway(dir.path(), &text, &c.ca_pem, clock.clone()).await);
        dirs.push(dir);
    }
    World {
        gws,
        vms,
        redis,
        _dirs: dirs,
        _certs: c,
    }
}

async fn world(kind: Kind) -> World {
    world_with(kind, kind.setting()).await
}

/// A browser with its own cookie jar, sending each request to the instance it is told.
#[derive(Clone)]
struct Browser {
    jar: Arc<Mutex<BTreeMap<String, String>>>,
    clients: Vec<(reqwest::Client, u16)>,
}

impl Browser {
    fn new(w: &World) -> Self {
        Browser {
            jar: Arc::default(),
            clients: w
                .gws
                .iter()
                .map(|g| (plain_client(g.addr, &g.ca_pem), g.addr.port()))
                .collect(),
        }
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().unwrap().get(name).cloned()
    }

    fn header(&self) -> String {
        self.jar
            .lock()
            .unwrap()
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn absorb(&self, r: &reqwest::Response) {
        let mut jar = self.jar.lock().unwrap();
        for sc in r.headers().get_all("set-cookie") {
            let sc = sc.to_str().unwrap();
            let c = cookie::Cookie::parse(sc.to_string()).unwrap();
            let gone =
                c.value().is_empty() || c.max_age().is_some_and(|m| m.is_zero() || m.is_negative());
            if gone {
                jar.remove(c.name());
            } else {
                jar.insert(c.name().to_string(), c.value().to_string());
            }
        }
    }

    /// Sends without taking the answer's cookies (an attacker's copy, or a look only).
    async fn send_only(
        &self,
        on: usize,
        method: &str,
        path: &str,
        form: Option<&[(&str, &str)]>,
    ) -> reqwest::Response {
        let (c, port) = &self.clients[on];
        let mut b = c
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("https://localhost:{port}{path}"),
            )
            .header("cookie", self.header());
        if let Some(f) = form {
            b = b.form(f);
        }
        b.send().await.unwrap()
    }

    async fn send(
        &self,
        on: usize,
        method: &str,
        path: &str,
        form: Option<&[(&str, &str)]>,
    ) -> reqwest::Response {
        let r = self.send_only(on, method, path, form).await;
        self.absorb(&r);
        r
    }

    async fn get(&self, on: usize, path: &str) -> reqwest::Response {
        self.send(on, "GET", path, None).await
    }

    /// The login page: the anonymous session and its CSRF token.
    async fn login_page(&self, on: usize) -> String {
        let r = self.get(on, "/login").await;
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        let rest = &html[html.find("name=\"_csrf\" value=\"").unwrap() + 20..];
        rest[..rest.find('"').unwrap()].to_string()
    }

    async fn post_login(&self, on: usize, path: &str, user: &str) -> reqwest::Response {
        let token = self.login_page(on).await;
        self.send(
            on,
            "POST",
            path,
            Some(&[("_csrf", &token), ("username", user), ("password", "pw")]),
        )
        .await
    }

    async fn home(&self, on: usize) -> String {
        self.get(on, "/home").await.text().await.unwrap()
    }

    async fn page_text(&self, on: usize, path: &str) -> String {
        self.get(on, path).await.text().await.unwrap()
    }

    async fn form(&self, on: usize, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.send(on, "POST", path, Some(fields)).await
    }
}

fn sets(r: &reqwest::Response, name: &str) -> bool {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with(&format!("{name}=")) && !c.starts_with(&format!("{name}=;")))
}

/// Enrolls `user` (a fresh login answered with the enrollment step), the MFA pages on
/// instance `mfa_on`; returns the secret. The login is released at the end.
async fn enroll(b: &Browser, w: &World, login_on: usize, mfa_on: usize, user: &str) -> Vec<u8> {
    let r = b.post_login(login_on, "/login", user).await;
    assert_eq!(
        location(&r),
        "/.mfa/enroll",
        "login of {user}: {}",
        r.status()
    );
    let html = b.page_text(mfa_on, "/.mfa/enroll").await;
    let secret = pairing_secret(&html);
    let code = totp::code_at(&secret, w.gws[0].clock.unix());
    let r = b
        .form(
            mfa_on,
            "/.mfa/enroll",
            &[("csrf", csrf(&html).as_str()), ("code", code.as_str())],
        )
        .await;
    assert_eq!(location(&r), "/.mfa/recovery-codes");
    let html = b.page_text(mfa_on, "/.mfa/recovery-codes").await;
    assert_eq!(recovery_codes(&html).len(), 10);
    let r = b
        .form(
            mfa_on,
            "/.mfa/recovery-codes",
            &[("csrf", csrf(&html).as_str()), ("action", "continue")],
        )
        .await;
    assert_eq!(r.status(), 302, "enrollment of {user} released");
    secret
}

/// Answers the verify page with the code of the next time step.
async fn pass_code(b: &Browser, w: &World, on: usize, secret: &[u8]) -> reqwest::Response {
    w.gws[0].clock.advance(30);
    let code = totp::code_at(secret, w.gws[0].clock.unix());
    let html = b.page_text(on, "/.mfa/verify").await;
    b.form(
        on,
        "/.mfa/verify",
        &[("csrf", csrf(&html).as_str()), ("code", code.as_str())],
    )
    .await
}

/// The browser's session, read on both instances: the page is never a signed-in page of
/// `user`, and the VMS never served one.
async fn nothing_signed_in(b: &Browser, w: &World, user: &str, what: &str) {
    for on in 0..2 {
        let page = b.send_only(on, "GET", "/home", None).await;
        let text = page.text().await.unwrap();
        assert!(!text.contains(user), "{what}, instance {on}: {text}");
        let me = b.send_only(on, "GET", "/api/me", None).await;
        assert_eq!(
            me.status(),
            401,
            "{what}, instance {on}: the VMS saw nobody"
        );
    }
    assert!(!w.vms.served_to(user), "{what}: {:?}", w.vms.homes());
}

/// Every point of the issue for one kind of VMS: suppliers pass, an enforced user enrolls
/// and is challenged, nothing signed in reaches the VMS before the code on either instance,
/// logout and a new login work.
async fn the_whole_flow(kind: Kind) {
    the_whole_flow_from(kind, Source::UserInfo).await;
}

async fn the_whole_flow_from(kind: Kind, source: Source) {
    let w = world_from(kind, kind.setting(), source).await;
    let cookie = kind.cookie();

    // The login page's anonymous session reaches the browser, marked, and comes back to the
    // VMS on either instance (so the CSRF token matches).
    let sup = Browser::new(&w);
    let r = sup.get(0, "/login").await;
    assert!(sets(&r, cookie), "{kind:?}: the anonymous session passes");
    assert!(
        sets(&r, "__Host-mfagw-pre"),
        "{kind:?}: marked as pre-login"
    );
    let anon = sup.cookie(cookie).unwrap();
    assert!(w.vms.user_of_id(&anon).is_none());
    assert_eq!(
        w.gws[0]
            .gateway()
            .metrics
            .mfa_count(MfaEvent::PreLoginOpened),
        1
    );

    // A supplier (no MFA) is released at once; the login is posted on the other instance.
    let r = sup.post_login(1, "/login", "sup1").await;
    assert_eq!(r.status(), 302, "{kind:?}: supplier released");
    assert_eq!(location(&r), "/home");
    assert_eq!(sets(&r, cookie), kind.rotates(), "{kind:?}");
    assert!(sets(&r, "__Host-mfagw"));
    for on in 0..2 {
        assert!(sup.home(on).await.contains("Welcome sup1"), "{kind:?} {on}");
    }

    // An enforced customer, not enrolled: the login waits for the enrollment; the session it
    // was made on reaches no signed-in page on either instance meanwhile.
    let cust = Browser::new(&w);
    let r = cust.post_login(0, "/login", "cust1").await;
    assert_eq!(location(&r), "/.mfa/enroll", "{kind:?}");
    assert!(
        !sets(&r, cookie),
        "{kind:?}: no session cookie before the MFA step"
    );
    assert!(!sets(&r, "__Host-mfagw"));
    nothing_signed_in(&cust, &w, "cust1", &format!("{kind:?} before enrollment")).await;
    // The browser still holds the id it had: the MFA step finishes on it (same id).
    drop(r);
    let html = cust.page_text(1, "/.mfa/enroll").await;
    let secret = pairing_secret(&html);
    let code = totp::code_at(&secret, w.gws[0].clock.unix());
    let r = cust
        .form(
            1,
            "/.mfa/enroll",
            &[("csrf", csrf(&html).as_str()), ("code", code.as_str())],
        )
        .await;
    assert_eq!(location(&r), "/.mfa/recovery-codes");
    let html = cust.page_text(0, "/.mfa/recovery-codes").await;
    let r = cust
        .form(
            0,
            "/.mfa/recovery-codes",
            &[("csrf", csrf(&html).as_str()), ("action", "continue")],
        )
        .await;
    assert_eq!(r.status(), 302, "{kind:?}: released after enrollment");
    assert_eq!(sets(&r, cookie), kind.rotates());
    assert!(cust.cookie("__Host-mfagw-pre").is_none(), "marker cleared");
    for on in 0..2 {
        assert!(
            cust.home(on).await.contains("Welcome cust1"),
            "{kind:?} {on}"
        );
    }

    // Logout: the next anonymous session is a pre-login session again, and a new login
    // asks for the code.
    let r = cust.get(0, "/logout").await;
    assert_eq!(r.status(), 302);
    w.vms.clear_homes();
    let r = cust.get(1, "/login").await;
    assert!(
        sets(&r, cookie),
        "{kind:?}: a new anonymous session after logout"
    );
    assert!(
        sets(&r, "__Host-mfagw-pre"),
        "{kind:?}: a pre-login session again"
    );
    let r = cust.post_login(1, "/login", "cust1").await;
    assert_eq!(location(&r), "/.mfa/verify", "{kind:?}: enrolled now");
    nothing_signed_in(&cust, &w, "cust1", &format!("{kind:?} before the code")).await;
    // A wrong code releases nothing.
    let html = cust.page_text(0, "/.mfa/verify").await;
    let r = cust
        .form(
            0,
            "/.mfa/verify",
            &[("csrf", csrf(&html).as_str()), ("code", "000000")],
        )
        .await;
    assert!(!sets(&r, "__Host-mfagw"));
    nothing_signed_in(&cust, &w, "cust1", &format!("{kind:?} after a wrong code")).await;
    let r = pass_code(&cust, &w, 1, &secret).await;
    assert_eq!(r.status(), 302, "{kind:?}: released with the code");
    for on in 0..2 {
        assert!(
            cust.home(on).await.contains("Welcome cust1"),
            "{kind:?} {on}"
        );
    }
    // The supplier was never disturbed.
    assert!(sup.home(0).await.contains("Welcome sup1"));
}

#[tokio::test]
async fn spring_rotating_session_suppliers_pass_and_customers_need_their_code() {
    the_whole_flow(Kind::SpringRotates).await;
}

#[tokio::test]
async fn spring_same_id_session_suppliers_pass_and_customers_need_their_code() {
    the_whole_flow(Kind::SpringSameId).await;
}

#[tokio::test]
async fn php_session_suppliers_pass_and_customers_need_their_code() {
    the_whole_flow(Kind::PhpSameId).await;
}

/// The login answer comes from instance 0; instance 1 is asked with the same cookies the
/// instant after, and all the while the login is on its way: never a signed-in page.
///
/// The VMS side is checked too: the stand-in is slow on purpose (every request waits before
/// it is handled, so the racer's requests overlap the login) and records, per request,
/// whether its session was signed in when it handled it. No request other than the login
/// itself (and the gateway's own identification of the answers, `/api/me`) is ever handled
/// as the signed-in user before the code: with the same id, requests on one pre-login session
/// reach the VMS one at a time, and every one admitted after the login sees "signing in".
async fn the_other_instance_never_serves_the_login_before_the_code(kind: Kind) {
    let w = world(kind).await;
    let setup = Browser::new(&w);
    let secret = enroll(&setup, &w, 0, 1, "cust1").await;
    w.vms.clear_homes();
    w.vms.clear_handled();
    w.vms.slow(15);

    for round in 0..5 {
        let b = Browser::new(&w);
        let token = b.login_page(round % 2).await;
        let racer = {
            let b = b.clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for _ in 0..40 {
                    let r = b.send_only(1, "GET", "/home", None).await;
                    let challenge = location(&r) == "/.mfa/verify";
                    answers.push((r.status().as_u16(), challenge, r.text().await.unwrap()));
                }
                answers
            })
        };
        let r = b
            .send(
                0,
                "POST",
                "/login",
                Some(&[("_csrf", &token), ("username", "cust1"), ("password", "pw")]),
            )
            .await;
        // The instant after the answer, on the other instance.
        let after = b.send_only(1, "GET", "/home", None).await;
        let mut challenges = usize::from(location(&r) == "/.mfa/verify");
        assert!(
            challenges == 1 || (!kind.rotates() && r.status() == 403),
            "{kind:?} round {round}: {} {}",
            r.status(),
            location(&r)
        );
        assert!(!sets(&r, "__Host-mfagw"));
        let after = after.text().await.unwrap();
        assert!(!after.contains("cust1"), "{kind:?} round {round}: {after}");
        let mut refused = 0;
        for (status, challenge, page) in racer.await.unwrap() {
            assert!(
                !page.contains("cust1"),
                "{kind:?} round {round}: {status} {page}"
            );
            challenges += usize::from(challenge);
            refused += usize::from(status == 403);
        }
        eprintln!(
            "{kind:?} round {round}: login answer {}, racer: {refused} refused, {} challenge(s)",
            r.status(),
            challenges - usize::from(location(&r) == "/.mfa/verify")
        );
        assert_eq!(
            challenges, 1,
            "{kind:?} round {round}: one challenge for the login"
        );
        if kind.rotates() {
            // The rotated id never left the gateway: the VMS served it to nobody.
            assert!(!w.vms.served_to("cust1"), "{kind:?} round {round}");
        }
        // Nothing but the gateway's identification was handled as cust1 before the code.
        let handled = w.vms.handled();
        let as_cust1: Vec<&Handled> = handled
            .iter()
            .filter(|h| h.user.as_deref() == Some("cust1"))
            .filter(|h| !(h.method == "GET" && h.route == "/api/me"))
            .collect();
        assert!(
            as_cust1.is_empty(),
            "{kind:?} round {round}: handled as the signed-in user before the code: {as_cust1:?}"
        );
        let on_session = handled.iter().filter(|h| h.id.is_some()).count();
        eprintln!(
            "{kind:?} round {round}: {} requests handled by the VMS, {on_session} with a session",
            handled.len()
        );
        w.vms.clear_handled();
    }
    w.vms.slow(0);
    // Without a race, the code releases the login as usual.
    let b = Browser::new(&w);
    let r = b.post_login(0, "/login", "cust1").await;
    assert_eq!(location(&r), "/.mfa/verify");
    let r = pass_code(&b, &w, 1, &secret).await;
    assert_eq!(r.status(), 302);
    assert!(b.home(0).await.contains("Welcome cust1"));
}

#[tokio::test]
async fn spring_rotating_nothing_signed_in_on_the_other_instance() {
    the_other_instance_never_serves_the_login_before_the_code(Kind::SpringRotates).await;
}

#[tokio::test]
async fn same_id_nothing_signed_in_on_the_other_instance() {
    the_other_instance_never_serves_the_login_before_the_code(Kind::SpringSameId).await;
    the_other_instance_never_serves_the_login_before_the_code(Kind::PhpSameId).await;
}

/// The bypass issue's attacks, repeated: a pre-login session posts an enforced user's
/// password to spellings of the login route and to a login path the gateway was not told
/// about; an approved supplier session signs in a customer.
async fn login_spellings_and_aliases_need_the_code(kind: Kind) {
    login_spellings_and_aliases_need_the_code_from(kind, Source::UserInfo).await;
}

async fn login_spellings_and_aliases_need_the_code_from(kind: Kind, source: Source) {
    let w = world_from(kind, kind.setting(), source).await;
    let setup = Browser::new(&w);
    enroll(&setup, &w, 0, 0, "cust1").await;
    w.vms.clear_homes();

    let spellings = [
        ("POST", "/login"),
        ("POST", "/LOGIN"),
        ("POST", "/login/"),
        ("POST", "//login"),
        ("post", "/login"),
        ("POST", "/j_security_check"),
    ];
    for (method, path) in spellings {
        let b = Browser::new(&w);
        let token = b.login_page(1).await;
        let r = b
            .send(
                0,
                method,
                path,
                Some(&[("_csrf", &token), ("username", "cust1"), ("password", "pw")]),
            )
            .await;
        assert_eq!(
            (r.status().as_u16(), location(&r).as_str()),
            (303, "/.mfa/verify"),
            "{kind:?} {method} {path}: the customer's login waits for her code"
        );
        assert!(!sets(&r, "__Host-mfagw"));
        nothing_signed_in(&b, &w, "cust1", &format!("{kind:?} {method} {path}")).await;
    }

    // An approved supplier session posts the customer's password to the login route.
    for (method, path) in &spellings[..5] {
        let sup = Browser::new(&w);
        let r = sup.post_login(0, "/login", "sup1").await;
        assert_eq!(r.status(), 302);
        assert!(sup.home(1).await.contains("Welcome sup1"));
        w.vms.clear_homes();
        let token = sup.login_page(0).await;
        let r = sup
            .send(
                1,
                method,
                path,
                Some(&[("_csrf", &token), ("username", "cust1"), ("password", "pw")]),
            )
            .await;
        assert!(
            !sets(&r, "__Host-mfagw"),
            "{kind:?} {method} {path}: no approval for the customer"
        );
        if r.status() == 303 {
            assert_eq!(location(&r), "/.mfa/verify", "{kind:?} {method} {path}");
        }
        for on in 0..2 {
            let page = sup.home(on).await;
            assert!(
                !page.contains("cust1"),
                "{kind:?} {method} {path} {on}: {page}"
            );
        }
        assert!(!w.vms.served_to("cust1"), "{kind:?} {method} {path}");
    }
}

#[tokio::test]
async fn spring_rotating_login_spellings_and_aliases_need_the_code() {
    login_spellings_and_aliases_need_the_code(Kind::SpringRotates).await;
}

#[tokio::test]
async fn spring_same_id_login_spellings_and_aliases_need_the_code() {
    login_spellings_and_aliases_need_the_code(Kind::SpringSameId).await;
}

#[tokio::test]
async fn php_login_spellings_and_aliases_need_the_code() {
    login_spellings_and_aliases_need_the_code(Kind::PhpSameId).await;
}

/// Expired or removed pre-login records fail closed: the session no longer reaches the VMS,
/// and the VMS's next anonymous session is a pre-login session of its own.
#[tokio::test]
async fn an_expired_or_removed_pre_login_session_no_longer_reaches_the_vms() {
    let w = world(Kind::SpringSameId).await;
    let b = Browser::new(&w);
    b.login_page(0).await;
    let first = b.cookie("JSESSIONID").unwrap();
    let first_marker = b.cookie("__Host-mfagw-pre").unwrap();

    // The record is gone (Redis expired it, or an operator removed it): the session is
    // removed from the request; the VMS answers with a new anonymous session.
    let keys: Vec<String> = redis_query(w.redis.port, &["KEYS", "t:{pl:*"])
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        !keys[0].contains(&first),
        "the key holds a hash, not the session id"
    );
    let _: i64 = redis_query(w.redis.port, &["DEL", &keys[0]]).await.unwrap();
    let r = b.get(1, "/login").await;
    assert!(sets(&r, "JSESSIONID"));
    let second = b.cookie("JSESSIONID").unwrap();
    assert_ne!(first, second);
    // The old id with its (still valid) marker: refused.
    let old = Browser::new(&w);
    old.jar
        .lock()
        .unwrap()
        .insert("JSESSIONID".into(), first.clone());
    old.jar
        .lock()
        .unwrap()
        .insert("__Host-mfagw-pre".into(), first_marker);
    let r = old
        .send_only(
            0,
            "POST",
            "/login",
            Some(&[("_csrf", "x"), ("username", "sup1"), ("password", "pw")]),
        )
        .await;
    assert_eq!(r.status(), 403, "the VMS saw no session: CSRF refused");

    // The marker expires with vms.pre_login_ttl (10 minutes here): the session is unapproved.
    w.gws[0].clock.advance(11 * 60);
    let r = b
        .send(
            0,
            "POST",
            "/login",
            Some(&[
                ("_csrf", "whatever"),
                ("username", "sup1"),
                ("password", "pw"),
            ]),
        )
        .await;
    assert_eq!(r.status(), 403, "expired marker: the VMS saw no session");
    // And a fresh login page works again.
    let r = b.post_login(0, "/login", "sup1").await;
    assert_eq!(r.status(), 302);
    assert!(b.home(1).await.contains("Welcome sup1"));
}

/// `rotates` configured for a VMS that signs in the same id: the gateway notices from the VMS
/// and refuses; the session is ended upstream.
#[tokio::test]
async fn a_vms_said_to_rotate_that_does_not_is_refused() {
    let w = world_with(Kind::SpringSameId, "rotates").await;
    let b = Browser::new(&w);
    let r = b.post_login(0, "/login", "sup1").await;
    assert_eq!(r.status(), 502, "refused, not released");
    assert!(!sets(&r, "__Host-mfagw"));
    let id = b.cookie("JSESSIONID").unwrap();
    mfa_gateway_eventually_ended(&w, &id).await;
    nothing_signed_in(&b, &w, "sup1", "rotates said, same id done").await;
}

async fn mfa_gateway_eventually_ended(w: &World, id: &str) {
    eventually(
        std::time::Duration::from_secs(5),
        "the VMS session is ended",
        async || w.vms.user_of_id(id).is_none(),
    )
    .await;
}

/// The default ("none") in front of such a VMS: the anonymous session never reaches the
/// browser (today's behaviour, unchanged), so the login fails on its CSRF check.
#[tokio::test]
async fn without_pre_login_sessions_the_anonymous_session_is_withheld_as_before() {
    let w = world_with(Kind::SpringRotates, "none").await;
    let b = Browser::new(&w);
    let r = b.get(0, "/login").await;
    assert!(!sets(&r, "JSESSIONID"));
    assert!(!sets(&r, "__Host-mfagw-pre"));
    let r = b.post_login(0, "/login", "sup1").await;
    assert_eq!(r.status(), 403);
}

/// `check-config` says what the choice means; a role source that cannot say "nobody" on any
/// answer is refused.
#[test]
fn check_config_explains_the_choice() {
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    let check = |vms: &str| {
        let text = config_text(
            &c,
            "127.0.0.1:9".parse().unwrap(),
            "redis://127.0.0.1:9/0",
            vms,
            "",
        );
        let f = dir.path().join("gateway.toml");
        std::fs::write(&f, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mfa-gateway"))
            .arg("check-config")
            .arg(&f)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + String::from_utf8_lossy(&out.stderr).as_ref(),
        )
    };
    let (ok, out) = check(&vms_section("JSESSIONID", "same_id"));
    assert!(ok, "{out}");
    assert!(
        out.contains("sessions before login: same_id")
            && out.contains("held back on every instance")
            && out.contains("one at a time on all instances"),
        "{out}"
    );
    let (ok, out) = check(&vms_section("JSESSIONID", "rotates"));
    assert!(
        ok && out.contains("sessions before login: rotates"),
        "{out}"
    );
    let (ok, out) = check(&vms_section("PHPSESSID", "none"));
    assert!(ok && out.contains("sessions before login: none"), "{out}");
    let json_body = vms_section("PHPSESSID", "same_id").replace(
        "source = \"userinfo\"",
        "source = \"json_body\"\npointer = \"/role\"",
    );
    let json_body: String = json_body
        .lines()
        .filter(|l| !l.starts_with("userinfo_"))
        .collect::<Vec<_>>()
        .join("\n");
    let (ok, out) = check(&json_body);
    assert!(!ok, "{out}");
    assert!(
        out.contains("vms.session_before_login: a session before login needs the VMS"),
        "{out}"
    );
}

/// `same_id`: an approved session posts another user's password to a login path the gateway
/// was not told about, and the VMS signs the same id in as that user. The gateway asks the VMS
/// after every such request: the session is ended in the VMS before anything is answered
/// (so no instance reaches it, whatever its approval cache says), the approval is revoked,
/// and the attempt is audited for the real user. The approved user's own requests pass.
#[tokio::test]
async fn same_id_an_approved_session_signed_in_as_another_user_is_ended() {
    for kind in [Kind::SpringSameId, Kind::PhpSameId] {
        let w = world(kind).await;
        let setup = Browser::new(&w);
        enroll(&setup, &w, 0, 0, "cust1").await;
        w.vms.clear_homes();
        let sup = Browser::new(&w);
        let r = sup.post_login(0, "/login", "sup1").await;
        assert_eq!(r.status(), 302);
        let id = sup.cookie(kind.cookie()).unwrap();
        let token = sup.login_page(1).await;
        let own = [
            ("_csrf", token.as_str()),
            ("username", "sup1"),
            ("password", "pw"),
        ];
        let r = sup.send(1, "POST", "/j_security_check", Some(&own)).await;
        assert_eq!(
            r.status(),
            302,
            "{kind:?}: the same user: the answer passes"
        );
        assert!(sup.home(0).await.contains("Welcome sup1"));

        let other = [
            ("_csrf", token.as_str()),
            ("username", "cust1"),
            ("password", "pw"),
        ];
        let r = sup.send(1, "POST", "/j_security_check", Some(&other)).await;
        assert_eq!(r.status(), 403, "{kind:?}");
        assert!(!sets(&r, "__Host-mfagw"));
        assert!(
            w.vms.user_of_id(&id).is_none(),
            "{kind:?}: ended in the VMS before the answer"
        );
        for on in [0, 1, 0] {
            let page = sup.home(on).await;
            assert!(!page.contains("cust1"), "{kind:?} {on}: {page}");
        }
        assert!(!w.vms.served_to("cust1"), "{kind:?}");
        let records = w.gws[1].gateway().audit.recent_for("cust1", 500, 50).await;
        assert!(
            records
                .iter()
                .any(|r| r.event == mfa_gateway::audit::Event::IdentityMismatch),
            "{records:?}"
        );
    }
}

/// A same-id VMS signs an approved session in as somebody else on a GET to a path the gateway
/// does not know (a single-sign-on link): the answer is refused and the session ended, with
/// either role source.
#[tokio::test]
async fn same_id_an_approved_session_signed_in_on_a_get_is_ended() {
    for (kind, source) in [
        (Kind::SpringSameId, Source::UserInfo),
        (Kind::PhpSameId, Source::Header),
    ] {
        let w = world_from(kind, kind.setting(), source).await;
        let setup = Browser::new(&w);
        enroll(&setup, &w, 0, 0, "cust1").await;
        w.vms.clear_homes();
        let sup = Browser::new(&w);
        let r = sup.post_login(0, "/login", "sup1").await;
        assert_eq!(r.status(), 302);
        let id = sup.cookie(kind.cookie()).unwrap();
        assert!(sup.home(1).await.contains("Welcome sup1"));
        let r = sup
            .send(1, "GET", "/sso?username=cust1&password=pw", None)
            .await;
        assert_eq!(r.status(), 403, "{kind:?}");
        assert!(
            w.vms.user_of_id(&id).is_none(),
            "{kind:?}: ended in the VMS before the answer"
        );
        for on in [0, 1] {
            let page = sup.home(on).await;
            assert!(!page.contains("cust1"), "{kind:?} {on}: {page}");
        }
        assert!(!w.vms.served_to("cust1"), "{kind:?}");
        // The same user's own link is fine.
        let me = Browser::new(&w);
        me.post_login(1, "/login", "sup1").await;
        let r = me
            .send(0, "GET", "/sso?username=sup1&password=pw", None)
            .await;
        assert_eq!(r.status(), 302, "{kind:?}");
        assert!(me.home(1).await.contains("Welcome sup1"));
    }
}

/// A request that changes state holds an approved same-id session alone: requests of that
/// session sent (to either instance) while a sign-in as another user is in the VMS wait, and
/// find the session ended. None of them is handled by the VMS as the other user.
#[tokio::test]
async fn same_id_no_request_runs_alongside_a_sign_in_as_another_user() {
    for signin_by_get in [false, true] {
        let w = world(Kind::SpringSameId).await;
        let setup = Browser::new(&w);
        enroll(&setup, &w, 0, 0, "cust1").await;
        let sup = Browser::new(&w);
        assert_eq!(sup.post_login(0, "/login", "sup1").await.status(), 302);
        let token = sup.login_page(1).await;
        w.vms.clear_handled();
        w.vms.clear_homes();
        w.vms.slow(150);
        let attack = {
            let sup = sup.clone();
            tokio::spawn(async move {
                if signin_by_get {
                    sup.send_only(1, "GET", "/sso?username=cust1&password=pw", None)
                        .await
                        .status()
                } else {
                    let f = [
                        ("_csrf", token.as_str()),
                        ("username", "cust1"),
                        ("password", "pw"),
                    ];
                    sup.send_only(1, "POST", "/j_security_check", Some(&f))
                        .await
                        .status()
                }
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // GETs alongside a GET sign-in are checked but may run; what changes state may not.
        let routes: &[(&str, &str)] = if signin_by_get {
            &[("POST", "/write"), ("POST", "/write"), ("POST", "/write")]
        } else {
            &[
                ("POST", "/write"),
                ("GET", "/home"),
                ("POST", "/write"),
                ("GET", "/home"),
            ]
        };
        let others: Vec<_> = routes
            .iter()
            .enumerate()
            .map(|(i, (m, p))| {
                let sup = sup.clone();
                let (m, p) = (m.to_string(), p.to_string());
                tokio::spawn(async move {
                    let r = sup.send_only(i % 2, &m, &p, None).await;
                    let status = r.status().as_u16();
                    (p, status, r.text().await.unwrap_or_default())
                })
            })
            .collect();
        assert_eq!(attack.await.unwrap(), 403, "get: {signin_by_get}");
        for o in others {
            let (p, status, body) = o.await.unwrap();
            assert!(!body.contains("cust1"), "{p} {status}: {body}");
        }
        w.vms.slow(0);
        let handled = w.vms.handled();
        // As the customer, the VMS handled only the gateway's own identification and the
        // ending of the session.
        let as_customer: Vec<_> = handled
            .iter()
            .filter(|h| h.user.as_deref() == Some("cust1"))
            .collect();
        assert!(
            as_customer
                .iter()
                .all(|h| h.route == "/api/me" || h.route == "/logout"),
            "get: {signin_by_get}: {as_customer:?}"
        );
        assert!(
            handled.iter().filter(|h| h.route == "/write").count() > 0
                || routes.iter().all(|(m, _)| *m != "POST"),
            "the writes reached the VMS (without the session) or were refused: {handled:?}"
        );
        assert!(!w.vms.served_to("cust1"));
    }
}

/// The sign-in of a same-id session is one step in Redis: of many answers that see the same
/// sign-in at once (on any instance), exactly one switches the record and goes on.
#[tokio::test]
async fn exactly_one_of_concurrent_sign_ins_switches_the_record() {
    use mfa_gateway::store::PreState;
    let w = world(Kind::PhpSameId).await;
    let store = w.gws[0].gateway().store.clone();
    let other = w.gws[1].gateway().store.clone();
    let hash = "00ff".repeat(8);
    assert_eq!(store.pre_state(&hash).await.unwrap(), PreState::Missing);
    assert_eq!(
        store
            .pre_sign_in(&hash, "cust1", std::time::Duration::from_secs(60))
            .await
            .unwrap(),
        PreState::Missing,
        "no record: nothing to sign in"
    );
    assert!(
        store
            .pre_open(&hash, std::time::Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert_eq!(store.pre_state(&hash).await.unwrap(), PreState::Anonymous);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        let h = hash.clone();
        tasks.push(tokio::spawn(async move {
            s.pre_sign_in(&h, "cust1", std::time::Duration::from_secs(60))
                .await
                .unwrap()
        }));
    }
    let mut switched = 0;
    for t in tasks {
        if t.await.unwrap() == PreState::Anonymous {
            switched += 1;
        }
    }
    assert_eq!(switched, 1);
    assert_eq!(other.pre_state(&hash).await.unwrap(), PreState::SigningIn);
    // A later anonymous answer never makes it anonymous again.
    assert!(
        !store
            .pre_open(&hash, std::time::Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert_eq!(store.pre_state(&hash).await.unwrap(), PreState::SigningIn);
    store.pre_drop(&hash).await.unwrap();
    assert_eq!(other.pre_state(&hash).await.unwrap(), PreState::Missing);
}

/// The same with the `header` role source: the VMS names the signed-in user in a header of
/// every answer, and an answer without it means nobody.
#[tokio::test]
async fn with_the_user_in_a_header_of_every_answer() {
    for kind in [Kind::SpringRotates, Kind::SpringSameId, Kind::PhpSameId] {
        the_whole_flow_from(kind, Source::Header).await;
        login_spellings_and_aliases_need_the_code_from(kind, Source::Header).await;
    }
}

/// `same_id`: the lease a request takes on its pre-login session never outlives it for long.
/// A live lease carries a TTL (the backstop); a request that fails (the VMS answers after
/// `upstream.response_timeout`, 4 s here) gives it back on its error path, long before the
/// TTL; a lease another request holds longer than the wait answers 503 with `Retry-After`;
/// a lease left by a request that died (its instance crashed) expires, and the waiting
/// request then goes on with its session.
#[tokio::test]
async fn same_id_a_lease_left_behind_is_given_back_or_expires() {
    use std::time::Duration;
    let w = world(Kind::SpringSameId).await;
    let port = w.redis.port;
    let b = Browser::new(&w);
    b.login_page(0).await;
    let keys: Vec<String> = redis_query(port, &["KEYS", "t:{pl:*"]).await.unwrap();
    assert_eq!(
        keys.len(),
        1,
        "the record only, its lease given back: {keys:?}"
    );
    let lease = format!("{}:lease", keys[0]);
    let exists = async |k: &str| redis_query::<i64>(port, &["EXISTS", k]).await.unwrap() == 1;

    // In flight: the lease exists and carries its TTL (2 x (1 s + 4 s) + 5 s here).
    w.vms.slow(5000);
    let slow = {
        let b = b.clone();
        tokio::spawn(async move { b.send_only(1, "GET", "/login", None).await.status() })
    };
    eventually(
        Duration::from_secs(3),
        "the slow request holds the lease",
        async || exists(&lease).await,
    )
    .await;
    let ttl: i64 = redis_query(port, &["PTTL", &lease]).await.unwrap();
    assert!(ttl > 0 && ttl <= 15_000, "{ttl}");
    assert_eq!(slow.await.unwrap(), 504);
    w.vms.slow(0);
    // Given back by the failed request itself, not by the TTL (still about 11 s to go), and
    // the session dropped first: the VMS may still be at work on that request, so no login on
    // that id may follow. The session no longer reaches the VMS.
    eventually(
        Duration::from_secs(3),
        "the failed request's lease given back",
        async || !exists(&lease).await,
    )
    .await;
    assert!(!exists(&keys[0]).await, "the timed-out session is dropped");
    let dropped = b.cookie("JSESSIONID").unwrap();
    w.vms.clear_handled();
    b.send_only(0, "GET", "/static/app.css", None).await;
    assert!(
        w.vms
            .handled()
            .iter()
            .all(|h| h.id.as_deref() != Some(dropped.as_str())),
        "{:?}",
        w.vms.handled()
    );
    // A new login page: a new pre-login session.
    b.login_page(0).await;
    let keys: Vec<String> = redis_query(port, &["KEYS", "t:{pl:*"]).await.unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let lease = format!("{}:lease", keys[0]);

    // Held by another request for longer than the wait: 503, try again later.
    let _: () = redis_query(port, &["SET", &lease, "another", "PX", "60000"])
        .await
        .unwrap();
    let r = b.send_only(0, "GET", "/static/app.css", None).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert!(!sets(&r, "JSESSIONID"));

    // Left by a request whose instance died: it expires (1 s here) while the next request
    // waits, which then reaches the VMS with its session (no new session opened).
    let _: () = redis_query(port, &["SET", &lease, "crashed", "PX", "1000"])
        .await
        .unwrap();
    w.vms.clear_handled();
    let r = b.send_only(1, "GET", "/static/app.css", None).await;
    assert_eq!(r.status(), 200);
    assert!(!sets(&r, "JSESSIONID"));
    let id = b.cookie("JSESSIONID").unwrap();
    assert!(
        w.vms
            .handled()
            .iter()
            .any(|h| h.route == "/static/app.css" && h.id.as_deref() == Some(id.as_str())),
        "{:?}",
        w.vms.handled()
    );
    assert!(!exists(&lease).await, "given back after the answer");
    // The login on that session still works.
    let r = b.post_login(0, "/login", "sup1").await;
    assert_eq!(r.status(), 302);
    assert!(b.home(1).await.contains("Welcome sup1"));
}

/// `same_id`: a page load sends the login page and its assets at once, on both instances;
/// they reach the (slow) VMS one at a time, all with the pre-login session, and all succeed.
#[tokio::test]
async fn same_id_concurrent_anonymous_page_loads_all_pass() {
    let w = world(Kind::SpringSameId).await;
    let b = Browser::new(&w);
    b.login_page(0).await;
    let id = b.cookie("JSESSIONID").unwrap();
    w.vms.clear_handled();
    w.vms.slow(50);
    let paths = [
        "/login",
        "/static/app.css",
        "/static/app.js",
        "/static/logo.png",
        "/static/font.woff2",
        "/home",
        "/static/print.css",
        "/static/i18n.js",
    ];
    let loads: Vec<_> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let b = b.clone();
            let p = p.to_string();
            tokio::spawn(async move {
                let r = b.send_only(i % 2, "GET", &p, None).await;
                (p, r.status().as_u16(), sets(&r, "JSESSIONID"))
            })
        })
        .collect();
    for l in loads {
        let (p, status, new_session) = l.await.unwrap();
        // An anonymous /home is sent to the login page.
        let want = if p == "/home" { 302 } else { 200 };
        assert_eq!(status, want, "{p}");
        assert!(!new_session, "{p}: the VMS saw the pre-login session");
    }
    w.vms.slow(0);
    let handled = w.vms.handled();
    for p in paths {
        assert!(
            handled
                .iter()
                .any(|h| h.route == p && h.id.as_deref() == Some(id.as_str()) && h.user.is_none()),
            "{p}: {handled:?}"
        );
    }
    // The login on that session still works.
    let r = b.post_login(1, "/login", "sup1").await;
    assert_eq!(r.status(), 302);
    assert!(b.home(0).await.contains("Welcome sup1"));
}
