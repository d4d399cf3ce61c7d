//! The gateway in front of a VMS that reads requests the way ASP.NET MVC on IIS does, tried
//! as an attacker would (issue: "the gate trusts the VMS, never the client's spelling").
//!
//! The stand-in VMS below has the lenient behaviours of that stack:
//! * routes match case-insensitively, with or without a trailing slash, with `//` collapsed
//!   and dot segments resolved; methods match case-insensitively;
//! * the login form is read from url-encoded *or* multipart bodies, and the user name falls
//!   back to the query string; field names are compared case-insensitively;
//! * `/Account/LogOn` is a second login route the gateway is not told about;
//! * an e-mail alias signs in the same account;
//! * Forms authentication renews the `.ASPXAUTH` ticket on an ordinary request (sliding
//!   expiration), and a `RememberMe` cookie signs a user in on any page without a login;
//! * `/api/me` says whose ticket a request carries (the gateway's identity source).
//!
//! Every test asserts what matters: no page of an enforced, enrolled user is served without
//! that user's code, and the audit trail names the real user.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use mfa_gateway::auth::totp;
use mfa_gateway::clock::Clock;

use crate::support::browser::{csrf, location, pairing_secret, recovery_codes, set_cookies};
use crate::support::*;

/// Accounts of the stand-in: name, role. Every password is `pw`.
const ACCOUNTS: [(&str, &str); 6] = [
    ("sup1", "Supplier"),
    ("cust1", "Customer"),
    ("msp1", "MSP"),
    ("kate", "Customer"),
    // With the Kelvin sign (U+212A): another account, whose name folds to "kate".
    ("\u{212a}ate", "Customer"),
    // With a right-to-left override (U+202E): drawn as "evecarlin" reversed after "eve".
    (SPOOFED, "Customer"),
];

/// A user name that a browser draws as another name, unless the override is made visible.
const SPOOFED: &str = "eve\u{202e}nilrac";
/// How the gateway's pages show it.
const SPOOFED_SHOWN: &str = r"eve\u{202E}nilrac";

#[derive(Default)]
struct State {
    /// ticket -> account name
    tickets: HashMap<String, String>,
    /// Account names whose home page was served, in order.
    homes: Vec<String>,
    /// Tickets ended through `/Account/LogOff`.
    logged_off: Vec<String>,
}

/// The IIS/ASP.NET-style stand-in.
#[derive(Clone, Default)]
struct Iis {
    state: Arc<Mutex<State>>,
    /// Renew the ticket on the next authenticated page view (sliding expiration).
    renew_next: Arc<AtomicBool>,
    /// Login attempts that reached the VMS.
    logins: Arc<AtomicUsize>,
    next: Arc<AtomicUsize>,
}

impl Iis {
    fn homes(&self) -> Vec<String> {
        self.state.lock().unwrap().homes.clone()
    }

    fn clear_homes(&self) {
        self.state.lock().unwrap().homes.clear();
    }

    fn issue(&self, user: &str) -> String {
        let t = format!(
            "T{}x{}",
            self.next.fetch_add(1, Ordering::Relaxed),
            std::process::id()
        );
        self.state
            .lock()
            .unwrap()
            .tickets
            .insert(t.clone(), user.to_string());
        t
    }

    fn user_of<B>(&self, req: &Request<B>) -> Option<(String, String)> {
        let tickets = &self.state.lock().unwrap().tickets;
        cookies(req)
            .into_iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(".ASPXAUTH"))
            .find_map(|(_, v)| tickets.get(&v).map(|u| (u.clone(), v)))
    }

    async fn handle(self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let method = req.method().as_str().to_ascii_uppercase();
        let route = route_of(req.uri().path());
        let resp = match (method.as_str(), route.as_str()) {
            ("POST", "/account/login" | "/account/logon") => self.login(req).await,
            ("GET", "/account/logoff") => {
                let mut st = self.state.lock().unwrap();
                for (n, v) in cookies(&req) {
                    if n.eq_ignore_ascii_case(".ASPXAUTH") && st.tickets.remove(&v).is_some() {
                        st.logged_off.push(v);
                    }
                }
                let mut r = redirect("/Account/Login");
                r.headers_mut().append(
                    "set-cookie",
                    ".ASPXAUTH=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/"
                        .parse()
                        .unwrap(),
                );
                r
            }
            ("GET", "/api/me") => match self.user_of(&req) {
                Some((u, _)) => {
                    let role = ACCOUNTS.iter().find(|(n, _)| *n == u).unwrap().1;
                    json(
                        StatusCode::OK,
                        &format!(r#"{{"user":"{u}","role":"{role}"}}"#),
                    )
                }
                None => json(StatusCode::UNAUTHORIZED, r#"{"user":null}"#),
            },
            ("GET", "/home") => {
                if let Some((u, ticket)) = self.user_of(&req) {
                    let mut r = page(&format!("Welcome {u}"));
                    if self.renew_next.swap(false, Ordering::SeqCst) {
                        // Sliding expiration: a new ticket for the same user; the old one
                        // stays valid until it expires, as Forms authentication does.
                        let _ = ticket;
                        let t = self.issue(&u);
                        r.headers_mut().append(
                            "set-cookie",
                            format!(".ASPXAUTH={t}; path=/; HttpOnly").parse().unwrap(),
                        );
                    }
                    self.state.lock().unwrap().homes.push(u);
                    r
                } else if let Some(u) = cookies(&req)
                    .into_iter()
                    .find(|(n, _)| n == "RememberMe")
                    .map(|(_, v)| v)
                    .filter(|v| ACCOUNTS.iter().any(|(n, _)| n == v))
                {
                    // Remember-me: a session without any login request.
                    let t = self.issue(&u);
                    let mut r = page(&format!("Welcome {u}"));
                    r.headers_mut().append(
                        "set-cookie",
                        format!(".ASPXAUTH={t}; path=/; HttpOnly").parse().unwrap(),
                    );
                    self.state.lock().unwrap().homes.push(u);
                    r
                } else {
                    redirect("/Account/Login")
                }
            }
            _ => {
                let mut r = page("not found");
                *r.status_mut() = StatusCode::NOT_FOUND;
                r
            }
        };
        Ok(resp)
    }

    async fn login(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        self.logins.fetch_add(1, Ordering::SeqCst);
        let ct = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let query = req.uri().query().unwrap_or_default().to_string();
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let mut fields: Vec<(String, String)> = Vec::new();
        if ct.to_ascii_lowercase().starts_with("multipart/form-data") {
            let boundary = multer::parse_boundary(&ct).unwrap();
            let stream = futures_util::stream::once(async move { Ok::<Bytes, Infallible>(body) });
            let mut m = multer::Multipart::new(stream, boundary);
            while let Some(f) = m.next_field().await.unwrap() {
                let name = f.name().unwrap_or_default().to_string();
                fields.push((name, f.text().await.unwrap()));
            }
        } else {
            fields.extend(form_urlencoded::parse(&body).into_owned());
        }
        // Model binding: the form first, then the query string; names case-insensitively.
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .or_else(|| {
                    form_urlencoded::parse(query.as_bytes())
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.into_owned())
                })
        };
        let name = field("UserName").unwrap_or_default();
        let account = name.split('@').next().unwrap_or_default().to_string();
        let known = ACCOUNTS.iter().any(|(n, _)| *n == account);
        if !known || field("Password").as_deref() != Some("pw") {
            return page("Invalid user name or password");
        }
        let t = self.issue(&account);
        let mut r = redirect("/Home");
        r.headers_mut().append(
            "set-cookie",
            format!(".ASPXAUTH={t}; path=/; HttpOnly").parse().unwrap(),
        );
        r
    }
}

/// The route an ASP.NET application matches a path to: decoded, `\` as `/`, dot segments
/// resolved, empty segments and a trailing slash dropped, lower case.
fn route_of(path: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .replace('\\', "/");
    let mut out: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/")).to_lowercase()
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

async fn spawn_iis() -> (SocketAddr, Iis) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let vms = Iis::default();
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

pub const IIS_VMS: &str = r#"
[vms]
session_cookies = [".ASPXAUTH"]
logout = [{ path = "/Account/LogOff" }]
end_session = { method = "GET", path = "/Account/LogOff" }
[[vms.login]]
method = "POST"
path = "/Account/Login"
username_field = "UserName"
success_status = [302]
success_cookie = ".ASPXAUTH"
[vms.role]
source = "userinfo"
userinfo_path = "/api/me"
userinfo_user_pointer = "/user"
userinfo_role_pointer = "/role"
[vms.role.map]
Customer = "customer"
Supplier = "supplier"
MSP = "msp"
"#;

struct World {
    gw: Gw,
    vms: Iis,
    _redis: RedisProc,
    _dir: tempfile::TempDir,
    _certs: Certs,
}

/// In 2022 MFA is enforced for customers and MSP users; suppliers have none.
async fn world(vms_section: &str) -> World {
    let redis = RedisProc::start();
    let (addr, vms) = spawn_iis().await;
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&c, addr, &redis.url(), vms_section, "");
    let gw = start_gateway(
        dir.path(),
        &text,
        &c.ca_pem,
        Clock::manual(at("2022-03-01T10:00:00Z")),
    )
    .await;
    World {
        gw,
        vms,
        _redis: redis,
        _dir: dir,
        _certs: c,
    }
}

async fn form_login(
    c: &reqwest::Client,
    gw: &Gw,
    method: &str,
    path: &str,
    user: &str,
) -> reqwest::Response {
    c.request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        url(gw, path),
    )
    .form(&[("UserName", user), ("Password", "pw")])
    .send()
    .await
    .unwrap()
}

/// Enrolls `user` through the MFA pages after a login answered with the enrollment step.
async fn enroll(c: &reqwest::Client, gw: &Gw, user: &str) -> Vec<u8> {
    let r = form_login(c, gw, "POST", "/Account/Login", user).await;
    if location(&r) != "/.mfa/enroll" {
        panic!(
            "login of {user}: {} {}",
            r.status(),
            r.text().await.unwrap()
        );
    }
    let html = c
        .get(url(gw, "/.mfa/enroll"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let secret = pairing_secret(&html);
    let code = totp::code_at(&secret, gw.clock.unix());
    let r = c
        .post(url(gw, "/.mfa/enroll"))
        .form(&[("csrf", csrf(&html).as_str()), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/.mfa/recovery-codes");
    let html = c
        .get(url(gw, "/.mfa/recovery-codes"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(recovery_codes(&html).len(), 10);
    let r = c
        .post(url(gw, "/.mfa/recovery-codes"))
        .form(&[("csrf", csrf(&html).as_str()), ("action", "continue")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "enrollment of {user} released");
    secret
}

/// Answers the verify page with the code of the next time step.
async fn pass_code(c: &reqwest::Client, gw: &Gw, secret: &[u8]) -> reqwest::Response {
    gw.clock.advance(30);
    let code = totp::code_at(secret, gw.clock.unix());
    let html = c
        .get(url(gw, "/.mfa/verify"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    c.post(url(gw, "/.mfa/verify"))
        .form(&[("csrf", csrf(&html).as_str()), ("code", code.as_str())])
        .send()
        .await
        .unwrap()
}

async fn home(c: &reqwest::Client, gw: &Gw) -> String {
    c.get(url(gw, "/Home"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn sets_ticket(r: &reqwest::Response) -> bool {
    set_cookies(r)
        .iter()
        .any(|c| c.starts_with(".ASPXAUTH=") && !c.starts_with(".ASPXAUTH=;"))
}

/// Attack 1 of the issue: an approved supplier posts an enrolled customer's password to a
/// login path the gateway was not told about, in every spelling IIS accepts. The VMS signs
/// the customer in; the gateway must treat the new session as the customer's login, never as
/// a renewal of the supplier's approval.
#[tokio::test]
async fn an_approved_session_never_turns_into_another_users_without_that_users_code() {
    let w = world(IIS_VMS).await;
    let victim = client(&w.gw);
    let secret = enroll(&victim, &w.gw, "cust1").await;

    let spellings = [
        ("POST", "/account/login"),
        ("POST", "/ACCOUNT/LOGIN"),
        ("POST", "/Account/Login/"),
        ("POST", "//Account/Login"),
        ("post", "/Account/Login"),
        ("POST", "/Account/LogOn"),
        ("POST", "/account/logon/"),
    ];
    for (i, (method, path)) in spellings.into_iter().enumerate() {
        let attacker = client(&w.gw);
        let r = form_login(&attacker, &w.gw, "POST", "/Account/Login", "sup1").await;
        assert_eq!(r.status(), 302, "supplier released at once");
        assert!(sets_ticket(&r));
        assert!(home(&attacker, &w.gw).await.contains("Welcome sup1"));
        w.vms.clear_homes();

        let r = form_login(&attacker, &w.gw, method, path, "cust1").await;
        assert_eq!(
            (r.status().as_u16(), location(&r).as_str()),
            (303, "/.mfa/verify"),
            "{method} {path}: the customer's session waits for the customer's code"
        );
        assert!(
            !sets_ticket(&r),
            "{method} {path}: no ticket reaches the client"
        );
        let page = home(&attacker, &w.gw).await;
        assert!(!page.contains("cust1"), "{method} {path}: {page}");
        if i >= 2 {
            assert!(!w.vms.homes().contains(&"cust1".to_string()));
            continue;
        }
        // A wrong code does not help either (tried twice: more would lock her out).
        let html = attacker
            .get(url(&w.gw, "/.mfa/verify"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let r = attacker
            .post(url(&w.gw, "/.mfa/verify"))
            .form(&[("csrf", csrf(&html).as_str()), ("code", "000000")])
            .send()
            .await
            .unwrap();
        assert!(!sets_ticket(&r), "{method} {path}");
        assert!(
            !w.vms.homes().contains(&"cust1".to_string()),
            "{method} {path}: the customer's page was served to the attacker"
        );
    }
    // The failures were counted against the real user, and the audit trail names her.
    let records = w.gw.gateway().audit.recent_for("cust1", 500, 50).await;
    assert!(
        records
            .iter()
            .any(|r| r.event == mfa_gateway::audit::Event::VerifyFailure),
        "{records:?}"
    );
    // The customer herself still signs in with her code.
    let r = form_login(&victim, &w.gw, "POST", "/Account/Login", "cust1").await;
    assert_eq!(location(&r), "/.mfa/verify");
    let r = pass_code(&victim, &w.gw, &secret).await;
    assert_eq!(r.status(), 302);
    assert!(home(&victim, &w.gw).await.contains("Welcome cust1"));
}

/// Attack 2: a multipart login whose first part's value looks like a url-encoded user name.
/// The gateway reads the body as multipart, as the VMS does, and the VMS names the user.
#[tokio::test]
async fn a_multipart_login_is_read_as_multipart_and_mfa_runs_for_the_vms_user() {
    let w = world(IIS_VMS).await;
    let victim = client(&w.gw);
    enroll(&victim, &w.gw, "cust1").await;
    let attacker = client(&w.gw);
    let form = reqwest::multipart::Form::new()
        .text("Note", "&UserName=decoy&")
        .text("UserName", "cust1")
        .text("Password", "pw");
    let r = attacker
        .post(url(&w.gw, "/Account/Login"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), location(&r).as_str()),
        (303, "/.mfa/verify"),
        "the enrolled customer is asked for her code, not a fresh enrollment for a decoy"
    );
    assert!(!sets_ticket(&r));
    let store = &w.gw.gateway().store;
    assert!(
        !store.user("decoy").await.unwrap().enrolled(),
        "nothing is enrolled for the decoy"
    );
    assert!(!w.vms.homes().contains(&"cust1".to_string()));
}

/// A typed name that differs from the user the VMS signed in (here an e-mail alias the VMS
/// accepts) ends the login: the VMS session is ended, the user sees 403, and the audit trail
/// names the real user.
#[tokio::test]
async fn a_typed_name_that_differs_from_the_vms_user_ends_the_login() {
    let w = world(IIS_VMS).await;
    let c = client(&w.gw);
    let r = form_login(&c, &w.gw, "POST", "/Account/Login", "cust1@example.com").await;
    assert_eq!(r.status(), 403);
    assert!(!sets_ticket(&r));
    eventually(
        std::time::Duration::from_secs(5),
        "session ended",
        async || !w.vms.state.lock().unwrap().logged_off.is_empty(),
    )
    .await;
    let records = w.gw.gateway().audit.recent_for("cust1", 100, 10).await;
    assert!(
        records
            .iter()
            .any(|r| r.event == mfa_gateway::audit::Event::IdentityMismatch),
        "{records:?}"
    );
    assert!(w.vms.homes().is_empty());

    // With `typed_username = "ignore"` the VMS's name counts and MFA runs for it.
    let w = world(&IIS_VMS.replace(
        "session_cookies = [\".ASPXAUTH\"]",
        "session_cookies = [\".ASPXAUTH\"]\ntyped_username = \"ignore\"",
    ))
    .await;
    let c = client(&w.gw);
    let r = form_login(&c, &w.gw, "POST", "/Account/Login", "cust1@example.com").await;
    assert_eq!(
        location(&r),
        "/.mfa/enroll",
        "cust1 enrolls, under her VMS name"
    );
}

/// Ambiguous login requests are refused before anything reaches the VMS.
#[tokio::test]
async fn ambiguous_login_requests_are_refused_before_the_vms() {
    let w = world(IIS_VMS).await;
    let c = client(&w.gw);
    let cases: Vec<(&str, Option<&str>, String)> = vec![
        (
            "/Account/Login",
            Some("application/x-www-form-urlencoded"),
            "UserName=sup1&username=cust1&Password=pw".into(),
        ),
        (
            "/Account/Login?UserName=cust1",
            Some("application/x-www-form-urlencoded"),
            "UserName=sup1&Password=pw".into(),
        ),
        (
            "/account/login/",
            Some("text/plain"),
            "UserName=sup1&Password=pw".into(),
        ),
        ("/Account/Login", None, "UserName=sup1&Password=pw".into()),
        (
            "/Account/Login",
            Some("multipart/form-data; boundary=b"),
            "--b\r\nContent-Disposition: form-data; name=\"UserName\"\r\n\r\nsup1\r\n--b\r\nContent-Disposition: form-data; name=\"USERNAME\"\r\n\r\ncust1\r\n--b--\r\n".into(),
        ),
        (
            "/Account/Login",
            Some("application/json"),
            r#"{"UserName":"sup1","username":"cust1"}"#.into(),
        ),
    ];
    for (path, ct, body) in cases {
        let mut req = c.post(url(&w.gw, path)).body(body.clone());
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 400, "{path} {ct:?} {body}");
    }
    assert_eq!(w.vms.logins.load(Ordering::SeqCst), 0, "nothing forwarded");
    // The user name in the query string alone is what the VMS reads too: a login.
    let r = c
        .post(url(&w.gw, "/Account/Login?UserName=cust1"))
        .form(&[("Password", "pw")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/.mfa/enroll");
}

/// Legitimate sliding renewal keeps an approved user signed in: the approval follows the
/// renewed ticket because the VMS confirms it is the same user.
#[tokio::test]
async fn sliding_renewal_keeps_the_approved_user_signed_in() {
    let w = world(IIS_VMS).await;
    let c = client(&w.gw);
    enroll(&c, &w.gw, "cust1").await;
    assert!(home(&c, &w.gw).await.contains("Welcome cust1"));
    w.vms.renew_next.store(true, Ordering::SeqCst);
    let r = c.get(url(&w.gw, "/Home")).send().await.unwrap();
    assert!(sets_ticket(&r), "the renewed ticket reaches the browser");
    assert!(
        set_cookies(&r)
            .iter()
            .any(|s| s.starts_with("__Host-mfagw=")),
        "with an approval for it: {:?}",
        set_cookies(&r)
    );
    assert!(r.text().await.unwrap().contains("Welcome cust1"));
    // The browser now holds only the renewed ticket and its approval.
    assert!(home(&c, &w.gw).await.contains("Welcome cust1"));
    assert_eq!(
        w.gw.gateway()
            .metrics
            .render()
            .lines()
            .find(|l| l.contains("event=\"session_renewed\""))
            .map(|l| l.ends_with(" 1")),
        Some(true)
    );
}

/// A remember-me cookie signs a user in on an ordinary page, without any login request: the
/// new session is a login like any other and waits for the user's code.
#[tokio::test]
async fn a_session_opened_without_a_login_request_waits_for_the_code() {
    let w = world(IIS_VMS).await;
    let victim = client(&w.gw);
    let secret = enroll(&victim, &w.gw, "cust1").await;
    w.vms.clear_homes();
    let c = plain_client(w.gw.addr, &w.gw.ca_pem);
    let r = c
        .get(url(&w.gw, "/Home"))
        .header("cookie", "RememberMe=cust1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), location(&r).as_str()),
        (303, "/.mfa/verify")
    );
    assert!(!sets_ticket(&r));
    assert!(!r.text().await.unwrap().contains("Welcome"));
    // The withheld page is released after the code, to the browser that holds the challenge.
    let b = client(&w.gw);
    let r = b
        .get(url(&w.gw, "/Home"))
        .header("cookie", "RememberMe=cust1")
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/.mfa/verify");
    let r = pass_code(&b, &w.gw, &secret).await;
    assert!(sets_ticket(&r));
    assert!(r.text().await.unwrap().contains("Welcome cust1"));
}

/// Two VMS accounts whose names fold to one key ("kate" and "Kate" with the Kelvin sign) never
/// share MFA state: the second is refused before it can count failures against the first or
/// enroll under her name, and the first still signs in.
#[tokio::test]
async fn an_account_whose_name_folds_onto_another_is_refused() {
    let w = world(IIS_VMS).await;
    let kate = client(&w.gw);
    let secret = enroll(&kate, &w.gw, "kate").await;
    let other = client(&w.gw);
    let r = form_login(&other, &w.gw, "POST", "/Account/Login", "\u{212a}ate").await;
    assert_eq!(r.status(), 403);
    assert!(!sets_ticket(&r));
    let records = w.gw.gateway().audit.recent_for("kate", 100, 10).await;
    assert!(
        records
            .iter()
            .any(|r| r.event == mfa_gateway::audit::Event::IdentityMismatch),
        "{records:?}"
    );
    // The same person in other ASCII letter case is the same account.
    let again = client(&w.gw);
    let r = form_login(&again, &w.gw, "POST", "/Account/Login", "kate").await;
    assert_eq!(location(&r), "/.mfa/verify");
    let r = pass_code(&again, &w.gw, &secret).await;
    assert_eq!(r.status(), 302);
    assert!(home(&again, &w.gw).await.contains("Welcome kate"));
}

/// The page as a reader sees it: its text without the tags (the attribute values of a form
/// may keep a name exactly, to send it back).
fn shown_text(html: &str) -> String {
    html.split('<')
        .map(|part| part.split_once('>').map_or(part, |(_, text)| text))
        .collect()
}

async fn gateway_page(c: &reqwest::Client, gw: &Gw, path: &str) -> String {
    let r = c.get(url(gw, path)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

/// Display spoofing (issue 14, lower finding): a VMS user name carrying a right-to-left
/// override is shown with the override as a visible escape, on the user's own page and on
/// the MSP's search, user page and audit view, so the MSP is never shown another name than
/// the stored one; the forms still act on the stored name.
#[tokio::test]
async fn a_name_with_a_bidirectional_override_is_shown_as_it_is_stored() {
    let w = world(IIS_VMS).await;
    let eve = client(&w.gw);
    enroll(&eve, &w.gw, SPOOFED).await;
    let html = gateway_page(&eve, &w.gw, "/.mfa/account").await;
    assert!(
        html.contains(&format!("Signed in as <strong>{SPOOFED_SHOWN}</strong>")),
        "{html}"
    );
    assert!(!html.contains('\u{202e}'), "{html}");

    let msp = client(&w.gw);
    enroll(&msp, &w.gw, "msp1").await;
    let html = gateway_page(&msp, &w.gw, "/.mfa/admin/?q=eve").await;
    assert!(
        html.contains(&format!(
            r#"<a href="/.mfa/admin/user?u=eve%E2%80%AEnilrac">{SPOOFED_SHOWN}</a>"#
        )),
        "{html}"
    );
    assert!(!html.contains('\u{202e}'), "{html}");

    let html = gateway_page(&msp, &w.gw, "/.mfa/admin/user?u=eve%E2%80%AEnilrac").await;
    let text = shown_text(&html);
    assert!(!text.contains('\u{202e}'), "{text}");
    assert!(
        html.contains(&format!("<title>MFA for {SPOOFED_SHOWN} – ")),
        "{html}"
    );
    assert!(html.contains(&format!("<h1>MFA for {SPOOFED_SHOWN}</h1>")));
    assert!(html.contains(&format!("disconnect MFA for {SPOOFED_SHOWN}</label>")));
    // The audit view: the enrollment names the user as its actor.
    assert!(
        html.contains(&format!(r#"data-label="By">{SPOOFED_SHOWN}</td>"#)),
        "{html}"
    );
    // The only place the stored name is written as it is: the value the forms send back.
    assert!(html.contains(&format!(
        r#"<input type="hidden" name="user" value="{SPOOFED}">"#
    )));
    let r = msp
        .post(url(&w.gw, "/.mfa/admin/reset"))
        .form(&[
            ("csrf", csrf(&html).as_str()),
            ("action", "reset"),
            ("user", SPOOFED),
            ("reason", "phone lost"),
            ("confirm", "yes"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let records = w.gw.gateway().audit.recent_for(SPOOFED, 100, 10).await;
    assert!(
        records
            .iter()
            .any(|r| r.event == mfa_gateway::audit::Event::Reset),
        "{records:?}"
    );
}
