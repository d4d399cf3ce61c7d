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
//! * `/api/me` says whose ticket a request carries (the gateway's identity source);
//! * cookieless forms authentication: the ticket is also read from a cookieless path segment
//!   (`/(F(ticket))/`, `/(S(x)F(ticket))/`, IIS-decoded, `%uXXXX` too), from the
//!   `AspFilterSessionId` header, and from a query parameter named like the cookie
//!   (cross-application redirects; pairs split at `&` and `;`); cookieless segments are
//!   removed before routing;
//! * every answer advertises the stack (`Server`, `X-Powered-By`, `X-AspNet-Version`,
//!   `X-AspNetMvc-Version`).
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
    /// Every request that reached the VMS: method, path and query, `Host` fields,
    /// `AspFilterSessionId` present.
    seen: Vec<Seen>,
}

#[derive(Debug, Clone)]
#[allow(dead_code)]
struct Seen {
    target: String,
    hosts: Vec<String>,
    asp_filter: bool,
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

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// The ticket's user: from the cookie, or (cookieless forms authentication) from the URL
    /// or the `AspFilterSessionId` header.
    fn user_of<B>(&self, req: &Request<B>) -> Option<(String, String)> {
        let tickets = &self.state.lock().unwrap().tickets;
        let from_cookie = cookies(req)
            .into_iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(".ASPXAUTH"))
            .map(|(_, v)| v);
        let from_path = iis_decode(req.uri().path())
            .split('/')
            .filter_map(cookieless_values)
            .flatten()
            .filter(|(k, _)| *k == 'F')
            .map(|(_, v)| v)
            .collect::<Vec<_>>();
        let from_header = req
            .headers()
            .get("aspfiltersessionid")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| cookieless_values(&format!("({v})")))
            .into_iter()
            .flatten()
            .filter(|(k, _)| *k == 'F')
            .map(|(_, v)| v);
        let from_query = req
            .uri()
            .query()
            .unwrap_or_default()
            .split(['&', ';'])
            .filter_map(|p| p.split_once('='))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(".ASPXAUTH"))
            .map(|(_, v)| v.to_string())
            .collect::<Vec<_>>();
        from_cookie
            .chain(from_path)
            .chain(from_header)
            .chain(from_query)
            .find_map(|v| tickets.get(&v).map(|u| (u.clone(), v)))
    }

    async fn handle(self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        self.state.lock().unwrap().seen.push(Seen {
            target: req
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            hosts: req
                .headers()
                .get_all("host")
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect(),
            asp_filter: req.headers().contains_key("aspfiltersessionid"),
        });
        let mut resp = self.answer(req).await;
        let h = resp.headers_mut();
        h.insert("server", "Microsoft-IIS/10.0".parse().unwrap());
        h.insert("x-powered-by", "ASP.NET".parse().unwrap());
        h.insert("x-aspnet-version", "4.0.30319".parse().unwrap());
        h.insert("x-aspnetmvc-version", "5.2".parse().unwrap());
        Ok(resp)
    }

    async fn answer(self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let method = req.method().as_str().to_ascii_uppercase();
        let route = route_of(req.uri().path());
        match (method.as_str(), route.as_str()) {
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
        }
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

/// The route an ASP.NET application matches a path to: decoded (`%uXXXX` too), `\` as `/`,
/// cookieless segments removed, dot segments resolved, empty segments and a trailing slash
/// dropped, lower case.
fn route_of(path: &str) -> String {
    let decoded = iis_decode(path).replace('\\', "/");
    let mut out: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        if cookieless_values(seg).is_some() {
            continue;
        }
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

/// A path as HTTP.sys decodes it: `%uXXXX` and `%XX`.
fn iis_decode(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(i) = rest.find("%u") {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 2..i + 6)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32);
        match code {
            Some(c) => {
                out.push(c);
                rest = &rest[i + 6..];
            }
            None => {
                out.push_str("%u");
                rest = &rest[i + 2..];
            }
        }
    }
    out.push_str(rest);
    percent_encoding::percent_decode_str(&out)
        .decode_utf8_lossy()
        .into_owned()
}

/// The values of a cookieless segment, `(S(x)F(y))` -> `[('S', "x"), ('F', "y")]`, as
/// ASP.NET's `IsValidHeader` reads them (capital letters only); `None` for another segment.
fn cookieless_values(seg: &str) -> Option<Vec<(char, String)>> {
    let inner = seg.strip_prefix('(')?.strip_suffix(')')?;
    let mut out = Vec::new();
    let mut rest = inner;
    while !rest.is_empty() {
        let mut chars = rest.chars();
        let letter = chars.next().filter(char::is_ascii_uppercase)?;
        let after = chars.as_str().strip_prefix('(')?;
        let end = after.find(')')?;
        out.push((letter, after[..end].to_string()));
        rest = &after[end + 1..];
    }
    (!out.is_empty()).then_some(out)
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
    assert_eq!(r.status(), 200, "the answer shows the enrollment code");
    let records = w.gw.gateway().audit.recent_for(SPOOFED, 100, 10).await;
    assert!(
        records
            .iter()
            .any(|r| r.event == mfa_gateway::audit::Event::Reset),
        "{records:?}"
    );
}

/// The ticket the stand-in issued last for `user` (what an attacker would have stolen).
fn ticket_of(vms: &Iis, user: &str) -> String {
    let st = vms.state.lock().unwrap();
    let mut t: Vec<&String> = st
        .tickets
        .iter()
        .filter(|(_, u)| *u == user)
        .map(|(t, _)| t)
        .collect();
    t.sort();
    t.last().map(|t| t.to_string()).unwrap()
}

/// A stolen forms ticket in a cookieless URL (path segment, query parameter) or in the
/// `AspFilterSessionId` header never reaches the VMS: the segment and the parameter are
/// removed (the rest of the request still goes where it was going), the header is dropped,
/// and a segment that cannot be read one way only is refused.
#[tokio::test]
async fn a_ticket_in_a_cookieless_url_or_header_never_reaches_the_vms() {
    let w = world(IIS_VMS).await;
    let victim = client(&w.gw);
    enroll(&victim, &w.gw, "cust1").await;
    let t = ticket_of(&w.vms, "cust1");
    let u = |s: &str| s.replace("TICKET", &t);

    // The attack is real: the VMS itself serves her page for each spelling.
    let direct = reqwest::Client::new();
    let vms_addr = w.gw.gateway().cfg.upstream.authority.clone();
    for path in [
        "/(F(TICKET))/Home",
        "/(S(lit3py55t21z5v55vlm25s55)F(TICKET))/Home",
        "/%28F%28TICKET%29%29/Home",
        "/%u0028F%u0028TICKET%u0029%u0029/Home",
        "/Home?a=1;.aspxauth=TICKET",
    ] {
        let page = direct
            .get(format!("http://{vms_addr}{}", u(path)))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("Welcome cust1"), "{path} directly: {page}");
    }
    w.vms.clear_homes();
    w.vms.state.lock().unwrap().seen.clear();

    let attacker = client(&w.gw);
    for path in [
        "/(F(TICKET))/Home",
        "/(S(lit3py55t21z5v55vlm25s55)F(TICKET))/Home",
        "/(s(x)f(TICKET))/Home",
        "/%28F%28TICKET%29%29/Home",
        "/%2528F%2528TICKET%2529%2529/Home",
        "/%u0028F%u0028TICKET%u0029%u0029/Home",
        "/(A(anon))/(F(TICKET))/Home/",
        "/Home?a=1;.aspxauth=TICKET",
        "/Home?a=1;.ASPXAUTH=TICKET&b=2",
        "/Home?.AspxAuth=TICKET",
    ] {
        let r = attacker.get(url(&w.gw, &u(path))).send().await.unwrap();
        assert_eq!(
            (r.status().as_u16(), location(&r).as_str()),
            (302, "/Account/Login"),
            "{path}: the VMS sees a logged-out client on /Home"
        );
    }
    let r = attacker
        .get(url(&w.gw, "/Home"))
        .header("AspFilterSessionId", u("S(x)F(TICKET)"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/Account/Login", "AspFilterSessionId dropped");
    assert!(w.vms.homes().is_empty(), "{:?}", w.vms.homes());
    let seen = w.vms.seen();
    assert!(seen.iter().all(|s| !s.asp_filter), "{seen:?}");
    assert!(
        seen.iter()
            .filter(|s| s.target.starts_with("/Home"))
            .all(|s| !s.target.contains(&t)),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|s| s.target == "/Home?a=1&b=2"),
        "the other pairs stay: {seen:?}"
    );

    // Segments that cannot be read one way only are refused before the VMS.
    let before = w.vms.seen().len();
    for path in [
        "/(F(TICKET))%2FHome",
        "/(F(TICKET)/Home",
        "/(F(TICKET))x/Home",
        "/%28F%28TICKET%29/Home",
        "/(S(x));a=b/Home",
        "/(S(x))/.mfa/health",
    ] {
        let r = attacker.get(url(&w.gw, &u(path))).send().await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
    }
    assert_eq!(w.vms.seen().len(), before, "nothing forwarded");

    // The approved user herself still gets her page through such a link: the session
    // travels in the cookie.
    assert!(
        home(&victim, &w.gw).await.contains("Welcome cust1"),
        "plain link"
    );
    let page = victim
        .get(url(&w.gw, "/(S(abc))/Home"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Welcome cust1"), "{page}");
    let m = w.gw.gateway().metrics.render();
    assert!(
        m.lines()
            .any(|l| l.contains("event=\"url_session_stripped\"") && !l.ends_with(" 0")),
        "{m}"
    );
}

/// A login posted to a cookieless spelling of the login route is still a login: the
/// segment is removed, the route recognised, and the customer waits for her code.
#[tokio::test]
async fn a_login_through_a_cookieless_url_is_still_a_login() {
    let w = world(IIS_VMS).await;
    let victim = client(&w.gw);
    enroll(&victim, &w.gw, "cust1").await;
    w.vms.state.lock().unwrap().seen.clear();
    let c = client(&w.gw);
    let r = form_login(&c, &w.gw, "POST", "/(S(x))/Account/Login", "cust1").await;
    assert_eq!(
        (r.status().as_u16(), location(&r).as_str()),
        (303, "/.mfa/verify")
    );
    assert!(!sets_ticket(&r));
    let seen = w.vms.seen();
    assert_eq!(
        seen.first().map(|s| s.target.as_str()),
        Some("/Account/Login"),
        "{seen:?}"
    );
    // The typed name is read there, as on the route itself: an alias ends the login.
    let c = client(&w.gw);
    let r = form_login(
        &c,
        &w.gw,
        "POST",
        "/(S(x))/account/login/",
        "cust1@example.com",
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(!sets_ticket(&r));
}

type TlsStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn tls_to(gw: &Gw, alpn: &[u8]) -> TlsStream {
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(gw.ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// Sends raw HTTP/1.1 bytes and returns the status and head of the answer.
async fn raw_h1(gw: &Gw, request: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tls_to(gw, b"http/1.1").await;
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head)
}

/// Sends one HTTP/2 request with `:authority` from `uri` and the given `host` fields.
async fn h2_get(gw: &Gw, uri: &str, hosts: &[&str]) -> u16 {
    let io = TokioIo::new(tls_to(gw, b"h2").await);
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = Request::get(uri)
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    for h in hosts {
        req.headers_mut().append("host", h.parse().unwrap());
    }
    send.send_request(req).await.unwrap().status().as_u16()
}

/// Requests whose host cannot be read one way only get 400 and never reach the VMS: two
/// `Host` fields, HTTP/1.1 without `Host`, an absolute-form target naming another host than
/// `Host`, and over HTTP/2 a `host` field that differs from `:authority`.
#[tokio::test]
async fn a_request_with_an_ambiguous_host_is_refused() {
    let w = world(IIS_VMS).await;
    let port = w.gw.addr.port();
    let refused = [
        "GET /Home HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
        "GET /Home HTTP/1.1\r\nHost: evil.example\r\nhost: localhost\r\nConnection: close\r\n\r\n",
        "GET /Home HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET https://evil.example/Home HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        "GET https://localhost/Home HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
        "GET /Home HTTP/1.1\r\nHost: localhost@evil.example\r\nConnection: close\r\n\r\n",
        "GET /.mfa/health HTTP/1.1\r\nConnection: close\r\n\r\n",
    ];
    for request in refused {
        let (status, head) = raw_h1(&w.gw, request).await;
        assert_eq!(status, 400, "{request:?}: {head}");
    }
    let h2_uri = format!("https://localhost:{port}/Home");
    assert_eq!(h2_get(&w.gw, &h2_uri, &["evil.example"]).await, 400);
    assert_eq!(
        h2_get(
            &w.gw,
            &h2_uri,
            &[&format!("localhost:{port}"), "evil.example"]
        )
        .await,
        400
    );
    assert!(w.vms.seen().is_empty(), "{:?}", w.vms.seen());

    // Unambiguous spellings pass, and the VMS sees the one host.
    let passed = [
        "GET /Home HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_string(),
        "GET /Home HTTP/1.0\r\n\r\n".to_string(),
        format!(
            "GET https://LOCALHOST:{port}/Home HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
        ),
    ];
    for request in &passed {
        let (status, head) = raw_h1(&w.gw, request).await;
        assert_eq!(status, 302, "{request:?}: {head}");
    }
    assert_eq!(h2_get(&w.gw, &h2_uri, &[]).await, 302);
    assert_eq!(
        h2_get(&w.gw, &h2_uri, &[&format!("LocalHost:{port}")]).await,
        302
    );
    let seen = w.vms.seen();
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert!(seen.iter().all(|s| s.hosts.len() == 1), "{seen:?}");
}

/// The VMS's banners (`Server`, `X-Powered-By`, `X-AspNet-Version`, `X-AspNetMvc-Version`)
/// reach no client by default: not on a page, a refused or released login, a withheld login
/// released after the code, or a renewal. `upstream.strip_response_headers` changes the list.
#[tokio::test]
async fn the_vms_banners_never_reach_a_client() {
    const BANNERS: [&str; 4] = [
        "server",
        "x-powered-by",
        "x-aspnet-version",
        "x-aspnetmvc-version",
    ];
    fn banners(r: &reqwest::Response) -> Vec<String> {
        BANNERS
            .iter()
            .filter(|b| r.headers().contains_key(**b))
            .map(|b| b.to_string())
            .collect()
    }
    let w = world(IIS_VMS).await;
    let c = client(&w.gw);
    let mut answers = Vec::new();
    // A page, a 404, a failed login (the VMS's own answer).
    answers.push(("page", c.get(url(&w.gw, "/Home")).send().await.unwrap()));
    answers.push(("404", c.get(url(&w.gw, "/nope")).send().await.unwrap()));
    let r = c
        .post(url(&w.gw, "/Account/Login"))
        .form(&[("UserName", "cust1"), ("Password", "wrong")])
        .send()
        .await
        .unwrap();
    answers.push(("failed login", r));
    // A login released at once (supplier), a page with its session.
    let sup = client(&w.gw);
    answers.push((
        "released login",
        form_login(&sup, &w.gw, "POST", "/Account/Login", "sup1").await,
    ));
    answers.push((
        "approved page",
        sup.get(url(&w.gw, "/Home")).send().await.unwrap(),
    ));
    // A login withheld for the code, then released.
    let secret = enroll(&client(&w.gw), &w.gw, "cust1").await;
    let cust = client(&w.gw);
    let r = form_login(&cust, &w.gw, "POST", "/Account/Login", "cust1").await;
    assert_eq!(location(&r), "/.mfa/verify");
    answers.push(("withheld login", r));
    let r = pass_code(&cust, &w.gw, &secret).await;
    assert!(sets_ticket(&r), "released after the code");
    answers.push(("released after the code", r));
    // A sliding renewal.
    w.vms.renew_next.store(true, Ordering::SeqCst);
    let r = cust.get(url(&w.gw, "/Home")).send().await.unwrap();
    assert!(sets_ticket(&r), "renewed");
    answers.push(("renewal", r));
    for (what, r) in &answers {
        assert_eq!(banners(r), Vec::<String>::new(), "{what}");
    }

    // `[]` keeps them; a list of its own removes just those.
    for (list, kept) in [
        ("[]", &BANNERS[..]),
        (
            "[\"x-powered-by\", \"X-ASPNET-VERSION\"]",
            &["server", "x-aspnetmvc-version"][..],
        ),
    ] {
        let redis = RedisProc::start();
        let (addr, _vms) = spawn_iis().await;
        let certs = certs();
        let dir = tempfile::tempdir().unwrap();
        let text = config_text(&certs, addr, &redis.url(), IIS_VMS, "").replace(
            "readiness_path = \"/\"\n",
            &format!("readiness_path = \"/\"\nstrip_response_headers = {list}\n"),
        );
        let gw = start_gateway(
            dir.path(),
            &text,
            &certs.ca_pem,
            Clock::manual(at("2022-03-01T10:00:00Z")),
        )
        .await;
        let c = client(&gw);
        let r = c.get(url(&gw, "/Home")).send().await.unwrap();
        assert_eq!(banners(&r), kept.to_vec(), "{list}");
        let r = form_login(&c, &gw, "POST", "/Account/Login", "sup1").await;
        assert_eq!(banners(&r), kept.to_vec(), "{list}: released login");
    }
}

/// A remembered browser on the lenient VMS: a login spelled as IIS reads it (another letter
/// case, a trailing slash) and posted as multipart, by someone holding another user's
/// remember cookie, still asks for the signing-in user's code; the cookie's own user skips it.
#[tokio::test]
async fn a_remembered_browser_never_stands_in_for_another_users_code() {
    let redis = RedisProc::start();
    let (addr, vms) = spawn_iis().await;
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.toml"),
        format!("{POLICY}\n[phase.remember_browser_days]\ncustomer = 30\n"),
    )
    .unwrap();
    let text = config_text(&c, addr, &redis.url(), IIS_VMS, "");
    let gw = start_gateway(
        dir.path(),
        &text,
        &c.ca_pem,
        Clock::manual(at("2022-03-01T10:00:00Z")),
    )
    .await;
    let cust1 = client(&gw);
    let secret1 = enroll(&cust1, &gw, "cust1").await;
    enroll(&client(&gw), &gw, "kate").await;

    // cust1 signs in with a code and ticks "don't ask again on this browser".
    let b = client(&gw);
    form_login(&b, &gw, "POST", "/Account/Login", "cust1").await;
    gw.clock.advance(30);
    let html = crate::support::browser::get_text(&b, &gw, "/.mfa/verify").await;
    let code = totp::code_at(&secret1, gw.clock.unix());
    let r = crate::support::browser::post_form(
        &b,
        &gw,
        "/.mfa/verify",
        &[
            ("csrf", csrf(&html).as_str()),
            ("code", code.as_str()),
            ("remember", "yes"),
        ],
    )
    .await;
    assert!(sets_ticket(&r), "cust1 signed in");
    let remembered = set_cookies(&r)
        .iter()
        .find(|c| c.starts_with("__Host-mfagw-rb=") && !c.starts_with("__Host-mfagw-rb=;"))
        .map(|c| c.split(';').next().unwrap().to_string())
        .expect("the browser is remembered");

    let multipart_login = |user: &'static str| {
        let remembered = remembered.clone();
        let gw = &gw;
        async move {
            let c = plain_client(gw.addr, &gw.ca_pem);
            let form = reqwest::multipart::Form::new()
                .text("UserName", user)
                .text("Password", "pw");
            c.post(url(gw, "/ACCOUNT/login/"))
                .header("cookie", remembered)
                .multipart(form)
                .send()
                .await
                .unwrap()
        }
    };
    // Another user's sign-in with cust1's cookie: kate's code is asked, no ticket leaves.
    let r = multipart_login("kate").await;
    assert_eq!(
        (r.status().as_u16(), location(&r).as_str()),
        (303, "/.mfa/verify")
    );
    assert!(!sets_ticket(&r));
    assert!(!vms.homes().contains(&"kate".to_string()));
    // The cookie is genuine: its own user, spelled the same way, goes straight in.
    let r = multipart_login("cust1").await;
    assert!(sets_ticket(&r), "{} {}", r.status(), location(&r));
}
