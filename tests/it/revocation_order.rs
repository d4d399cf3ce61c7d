//! Revocations ordered by the store, not by instance clocks: MSP resets and logouts end exactly
//! the approvals issued before them, on every instance, whatever the instances' clocks say and
//! within the same second.
//!
//! The VMS stand-in here keeps one session id per account and signs that same id in again at
//! the next login (as applications that key sessions by account, or that let a pre-login session
//! become signed in without a new id, do), and rotates the id on `GET /renew` (a sliding renewal
//! outside any login). Every gateway runs with a manual clock; two instances share one Redis.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use mfa_gateway::auth::crypto::sha256;
use mfa_gateway::clock::Clock;
use mfa_gateway::gate::approval::{APPROVAL_COOKIE, Approval, session_hash};
use mfa_gateway::metrics::MfaEvent;
use mfa_gateway::policy::MfaState;

use crate::support::browser::*;
use crate::support::*;

/// A date on which the shipped policy enforces MFA for customers (and none for resources).
const ENFORCED: &str = "2022-02-01T09:00:00Z";
const TOKEN: &str = "revocation-order-token-0123456789";

/// The VMS stand-in's state: session id -> signed-in account (absent: signed out), and per
/// account the id it hands out at login.
#[derive(Default)]
struct Sessions {
    live: HashMap<String, String>,
    ids: HashMap<String, String>,
    renewals: u64,
}

type Stub = Arc<Mutex<Sessions>>;

fn role(user: &str) -> Option<&'static str> {
    Some(match user {
        "admin" => "Administrator",
        "msp" => "MSP",
        "customer" => "Customer",
        "resource" => "Resource",
        _ => return None,
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn reply(status: u16, cookie: Option<String>, extra: &[(&str, &str)]) -> Response<Full<Bytes>> {
    let mut r = Response::builder().status(status);
    if let Some(c) = cookie {
        r = r.header("set-cookie", c);
    }
    for (k, v) in extra {
        r = r.header(*k, *v);
    }
    r.body(Full::new(Bytes::from_static(b"{}"))).unwrap()
}

async fn vms(stub: Stub, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let session = req
        .headers()
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split("; "))
        .find_map(|c| c.strip_prefix("VMSSESSION="))
        .map(str::to_string);
    let path = req.uri().path().to_string();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let mut s = stub.lock().unwrap();
    let resp = match path.as_str() {
        "/login" => {
            let form = String::from_utf8_lossy(&body).into_owned();
            let field = |name: &str| {
                form.split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                    .unwrap_or_default()
                    .to_string()
            };
            let user = field("username");
            match role(&user) {
                Some(role) if field("password") == "demo" => {
                    let id = s
                        .ids
                        .entry(user.clone())
                        .or_insert_with(|| hex(&sha256(user.as_bytes())[..16]))
                        .clone();
                    s.live.insert(id.clone(), user.clone());
                    let cookie = format!("VMSSESSION={id}; Path=/; HttpOnly");
                    reply(
                        302,
                        Some(cookie),
                        &[
                            ("location", "/home"),
                            ("x-vms-role", role),
                            ("x-vms-user", &user),
                        ],
                    )
                }
                _ => reply(200, None, &[]),
            }
        }
        "/logout" => {
            if let Some(id) = &session {
                s.live.remove(id);
            }
            reply(302, None, &[("location", "/login")])
        }
        "/renew" => match session.and_then(|id| s.live.remove(&id).map(|u| (id, u))) {
            Some((old, user)) => {
                s.renewals += 1;
                let id = hex(&sha256(format!("{old}/{}", s.renewals).as_bytes())[..16]);
                s.ids.insert(user.clone(), id.clone());
                s.live.insert(id.clone(), user.clone());
                // The renewed session names its user, as the gateway's identity source.
                reply(
                    200,
                    Some(format!("VMSSESSION={id}; Path=/; HttpOnly")),
                    &[("x-vms-user", &user)],
                )
            }
            None => reply(401, None, &[]),
        },
        "/home" | "/api/me" => {
            if session.is_some_and(|id| s.live.contains_key(&id)) {
                reply(200, None, &[])
            } else {
                reply(401, None, &[])
            }
        }
        _ => reply(404, None, &[]),
    };
    Ok(resp)
}

async fn spawn_vms(stub: Stub) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let stub = Arc::clone(&stub);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |r| vms(Arc::clone(&stub), r));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

/// Gateway instances sharing one Redis, one key ring and the VMS stand-in. Instance `i` runs
/// `offsets[i]` seconds ahead of the first; instances with equal offsets share one clock.
struct Fleet {
    gws: Vec<Gw>,
    redis: RedisProc,
    _dirs: Vec<tempfile::TempDir>,
    _certs: Certs,
}

async fn fleet(offsets: &[i64], poll: &str) -> Fleet {
    let redis = RedisProc::start();
    let vms_addr = spawn_vms(Stub::default()).await;
    let certs = certs();
    let hash = hex(&sha256(TOKEN.as_bytes()));
    // The service desk here resets administrators too: its token acts as one. Re-enrollments
    // right after a reset are what these tests time, so a reset here makes no enrollment code
    // (`tests/it/reset_code.rs` covers the code).
    let token = format!(
        "[admin]\ntokens = [{{ name = \"servicedesk\", sha256 = \"{hash}\", role = \"administrator\" }}]\nreset_requires_enrollment_code = false\n"
    );
    let text = config_text(&certs, vms_addr, &redis.url(), DEMO_VMS, &token).replace(
        "revocation_poll = \"200ms\"",
        &format!("revocation_poll = \"{poll}\""),
    );
    let mut clocks: Vec<(i64, Clock)> = Vec::new();
    let (mut gws, mut dirs) = (Vec::new(), Vec::new());
    for &offset in offsets {
        let clock = match clocks.iter().find(|(o, _)| *o == offset) {
            Some((_, c)) => c.clone(),
            None => {
                let c = Clock::manual(at(ENFORCED) + offset);
                clocks.push((offset, c.clone()));
                c
            }
        };
        let dir = tempfile::tempdir().unwrap();
        gws.push(start_gateway(dir.path(), &text, &certs.ca_pem, clock).await);
        dirs.push(dir);
    }
    Fleet {
        gws,
        redis,
        _dirs: dirs,
        _certs: certs,
    }
}

/// The status of `GET /api/me` on `gw` with these cookies (another browser's, copied).
async fn me(gw: &Gw, cookies: &str) -> u16 {
    plain_client(gw.addr, &gw.ca_pem)
        .get(url(gw, "/api/me"))
        .header("cookie", cookies)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn stripped(gw: &Gw) -> u64 {
    gw.gateway().metrics.mfa_count(MfaEvent::SessionStripped)
}

/// Reads the revocation feed now (for instances configured with a long poll interval).
async fn poll(gw: &Gw) {
    let g = gw.gateway();
    assert!(g.revocations.poll_once(&g.store, gw.clock.unix()).await);
}

/// The MSP's service desk disconnects the user's MFA through the JSON API on `gw`.
async fn api_reset(gw: &Gw, user: &str) {
    let api = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(gw.ca_pem.as_bytes()).unwrap()])
        .resolve("localhost", gw.addr)
        .build()
        .unwrap();
    let r = api
        .post(url(gw, &format!("/.mfa/admin/api/users/{user}/reset")))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"reason": "phone lost"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "reset of {user}");
}

/// Waits (real time, at most 5 s) until `gw` answers `want` for these cookies.
async fn until_status(gw: &Gw, cookies: &str, want: u16, what: &str) {
    eventually(Duration::from_secs(5), what, async || {
        me(gw, cookies).await == want
    })
    .await;
}

#[tokio::test]
async fn a_reset_ends_what_was_approved_before_it_and_a_re_enrollment_in_the_same_second_works() {
    let f = fleet(&[0, 0], "200ms").await;
    let (a, b) = (&f.gws[0], &f.gws[1]);
    let second = a.clock.unix();

    // Approved just before the reset, in the same second: works on both instances.
    let (_, before) = enrolled(a, "customer").await;
    let c = client(a);
    let r = login_with_code(&c, a, "customer", &before).await;
    let old = cookie_header(&r);
    let second = second + 30;
    assert_eq!(a.clock.unix(), second);
    assert_eq!(me(a, &old).await, 200);
    assert_eq!(me(b, &old).await, 200);

    api_reset(a, "customer").await;
    assert_eq!(
        me(a, &old).await,
        401,
        "ended at once where the reset was made"
    );
    let stripped_b = stripped(b);
    until_status(b, &old, 401, "B ends the approval issued before the reset").await;
    assert!(stripped(b) > stripped_b, "the gateway on B stripped it");

    // The user signs in at once and enrolls a new phone, still in the reset's second.
    let fresh = client(a);
    let secret = enroll(&fresh, a, "customer").await;
    assert_ne!(secret, before);
    assert_eq!(a.clock.unix(), second, "the same second as the reset");
    assert_eq!(
        get_status(&fresh, a, "/api/me").await,
        200,
        "the new session works"
    );
    let new = cookie_header(&login_with_code(&client(b), b, "customer", &secret).await);
    poll(a).await;
    poll(b).await;
    assert_eq!(me(a, &new).await, 200, "and on every instance");
    assert_eq!(me(b, &new).await, 200);
    assert_eq!(me(b, &old).await, 401, "the old one stays ended");

    // The epoch lives in the user's record and never goes down: with the record's field lost
    // (a restored backup), the next reset still goes above what the instances have seen.
    let epoch = async || -> Option<String> {
        redis_query(f.redis.port, &["HGET", "t:{u:customer}", "epoch"])
            .await
            .unwrap()
    };
    // A reset revokes twice (before and after deleting the secret): two epochs.
    assert_eq!(epoch().await.as_deref(), Some("2"));
    let _: i64 = redis_query(f.redis.port, &["HDEL", "t:{u:customer}", "epoch"])
        .await
        .unwrap();
    api_reset(a, "customer").await;
    assert_eq!(epoch().await.as_deref(), Some("4"));
    poll(b).await;
    assert_eq!(me(b, &new).await, 401, "ended by the second reset");
}

#[tokio::test]
async fn logout_then_immediate_sign_in_on_the_same_session_id_works_and_the_old_copy_stays_dead() {
    let f = fleet(&[0, 0], "200ms").await;
    let (a, b) = (&f.gws[0], &f.gws[1]);

    // A role without MFA: logout and sign-in again within one second.
    let c = client(a);
    let r = login(&c, a, "resource").await;
    assert_eq!(location(&r), "/home");
    let first = cookie_header(&r);
    assert_eq!(me(b, &first).await, 200);
    let second = a.clock.unix();
    assert!(
        c.get(url(a, "/logout"))
            .send()
            .await
            .unwrap()
            .status()
            .is_redirection()
    );
    let r = login(&c, a, "resource").await;
    assert_eq!(location(&r), "/home");
    let again = cookie_header(&r);
    assert_eq!(a.clock.unix(), second, "within the second of the logout");
    let session = |h: &str| {
        h.split("; ")
            .find(|c| c.starts_with("VMSSESSION="))
            .unwrap()
            .to_string()
    };
    assert_eq!(
        session(&first),
        session(&again),
        "the VMS signed the same id in again"
    );
    assert_eq!(
        get_status(&c, a, "/api/me").await,
        200,
        "the new login works"
    );
    // The copy of the logged-out pair (same VMS session, now signed in again) does not.
    assert_eq!(me(a, &first).await, 401);
    until_status(b, &first, 401, "B ends the logged-out approval").await;
    poll(b).await;
    assert_eq!(me(b, &again).await, 200, "B lets the new login through");

    // With MFA: logout, and sign in again with the next code.
    let (_, secret) = enrolled(a, "customer").await;
    let c = client(a);
    let first = cookie_header(&login_with_code(&c, a, "customer", &secret).await);
    assert!(
        c.get(url(a, "/logout"))
            .send()
            .await
            .unwrap()
            .status()
            .is_redirection()
    );
    let again = cookie_header(&login_with_code(&c, a, "customer", &secret).await);
    assert_eq!(session(&first), session(&again));
    assert_eq!(get_status(&c, a, "/api/me").await, 200);
    assert_eq!(me(a, &first).await, 401);
    until_status(b, &first, 401, "B ends the logged-out approval").await;
    assert_eq!(me(b, &again).await, 200);
}

#[tokio::test]
async fn a_session_approved_on_an_instance_20_s_ahead_dies_on_both_after_a_reset_on_the_other() {
    let f = fleet(&[0, 20], "200ms").await;
    let (a, b) = (&f.gws[0], &f.gws[1]);
    assert_eq!(b.clock.unix(), a.clock.unix() + 20);

    // Approved on B (its clock 20 s ahead), then reset on A: by A's clock the approval was
    // issued 20 s after the reset.
    let (cookies, _) = enrolled(b, "customer").await;
    assert_eq!(me(a, &cookies).await, 200);
    assert_eq!(me(b, &cookies).await, 200);
    api_reset(a, "customer").await;
    assert_eq!(me(a, &cookies).await, 401, "ended on A");
    until_status(b, &cookies, 401, "ended on B").await;

    // A new enrollment on B, right after the reset, works on both.
    let (cookies, _) = enrolled(b, "customer").await;
    poll(a).await;
    poll(b).await;
    assert_eq!(me(b, &cookies).await, 200);
    assert_eq!(me(a, &cookies).await, 200);
}

/// Enrolls `user` on `gw` with a new browser: the cookies it then holds (VMS session and
/// approval) as a `Cookie` header another client can send, and the secret.
async fn enrolled(gw: &Gw, user: &str) -> (String, Vec<u8>) {
    let (r, secret) = try_enroll(&client(gw), gw, user).await.unwrap();
    assert_eq!(r.status(), 302, "enrollment of {user}");
    (cookie_header(&r), secret)
}

#[tokio::test]
async fn a_renewal_on_another_instance_inside_the_poll_window_does_not_survive_the_reset() {
    // Instances read the feed only when the test says so: B is inside its poll window.
    let f = fleet(&[0, 0], "1h").await;
    let (a, b) = (&f.gws[0], &f.gws[1]);
    let (old, _) = enrolled(a, "customer").await;
    assert_eq!(me(b, &old).await, 200);

    api_reset(a, "customer").await;
    assert_eq!(me(a, &old).await, 401);
    // Seconds later, before B has read the reset, the VMS renews the session through B.
    a.clock.advance(5);
    let r = plain_client(b.addr, &b.ca_pem)
        .get(url(b, "/renew"))
        .header("cookie", &old)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "B did not know of the reset yet and renewed"
    );
    let renewed = cookie_header(&r);
    assert!(
        renewed.contains("VMSSESSION=") && renewed.contains(&format!("{APPROVAL_COOKIE}=")),
        "{renewed}"
    );
    assert_eq!(me(b, &renewed).await, 200, "still inside B's poll window");

    poll(b).await;
    assert_eq!(
        me(b, &renewed).await,
        401,
        "the renewal ends on B with the reset"
    );
    assert_eq!(me(a, &renewed).await, 401, "and on A");
    assert_eq!(me(b, &old).await, 401);
}

/// Cookies and feed entries written by the previous version: a version 1 approval still
/// works, a user revocation without epoch still ends it (by its second, as before), a logout
/// without approval id ends version 1 approvals of that session only, and a reset made by
/// this version ends version 1 approvals whenever they were issued.
#[tokio::test]
async fn approvals_and_revocations_of_the_previous_version_keep_working() {
    let f = fleet(&[0], "1h").await;
    let gw = &f.gws[0];
    let g = gw.gateway();
    let now = gw.clock.unix();
    let current = cookie_header(&login(&client(gw), gw, "resource").await);
    let vms = current
        .split("; ")
        .find(|c| c.starts_with("VMSSESSION="))
        .unwrap()
        .to_string();
    let hash = session_hash(&["VMSSESSION".to_string()], |_| {
        vms.strip_prefix("VMSSESSION=")
    })
    .unwrap();
    let v1 = |issued: u64| {
        let sealed = Approval {
            issued,
            expires: issued + 3600,
            mfa_passed: false,
            state: MfaState::None,
            session_hash: hash,
            role: "resource".into(),
            user: "resource".into(),
            epoch: 0,
            id: None,
        }
        .seal(&g.keys);
        format!("{vms}; {APPROVAL_COOKIE}={sealed}")
    };
    let feed = |json: String| async move {
        let _: String = redis_query(f.redis.port, &["XADD", "t:{rev}", "*", "e", json.as_str()])
            .await
            .unwrap();
    };
    let user =
        mfa_gateway::gate::revocation::hex16(&mfa_gateway::gate::approval::user_hash("resource"));

    let old = v1(now);
    assert_eq!(me(gw, &old).await, 200, "a version 1 cookie still opens");
    feed(format!(
        r#"{{"kind":"user","hash":"{user}","before":{},"until":{}}}"#,
        now + 1,
        now + 3600
    ))
    .await;
    poll(gw).await;
    assert_eq!(me(gw, &old).await, 401, "an old-format reset still ends it");
    gw.clock.advance(1);
    let later = v1(now + 1);
    assert_eq!(
        me(gw, &later).await,
        200,
        "issued after that reset's second"
    );

    // An old-format logout names the session: version 1 approvals of it end, a login of this
    // version on the same session id does not.
    feed(format!(
        r#"{{"kind":"session","hash":"{}","until":{}}}"#,
        mfa_gateway::gate::revocation::hex16(&hash),
        now + 3600
    ))
    .await;
    poll(gw).await;
    assert_eq!(me(gw, &later).await, 401);
    let c = client(gw);
    let current = cookie_header(&login(&c, gw, "resource").await);
    assert!(current.contains(&vms), "the same VMS session id");
    assert_eq!(me(gw, &current).await, 200);

    // A reset by this version ends a version 1 approval issued after every older entry. (The
    // administrator's login is withheld for MFA, but the VMS session it made is live.)
    assert_eq!(
        location(&login(&client(gw), gw, "admin").await),
        "/.mfa/enroll"
    );
    let admin_vms = format!("VMSSESSION={}", hex(&sha256(b"admin")[..16]));
    let sealed = Approval {
        issued: gw.clock.unix() + 100,
        expires: gw.clock.unix() + 3600,
        mfa_passed: true,
        state: MfaState::Enforced,
        session_hash: session_hash(&["VMSSESSION".to_string()], |_| {
            admin_vms.strip_prefix("VMSSESSION=")
        })
        .unwrap(),
        role: "administrator".into(),
        user: "admin".into(),
        epoch: 0,
        id: None,
    }
    .seal(&g.keys);
    let old = format!("{admin_vms}; {APPROVAL_COOKIE}={sealed}");
    assert_eq!(me(gw, &old).await, 200);
    api_reset(gw, "admin").await;
    assert_eq!(me(gw, &old).await, 401);
}
