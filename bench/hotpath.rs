//! The per-request hot path, for the CPU-only regression guard and profiles.
//!
//! Wall-clock timings are useless on a shared 2-core CI machine, so the guard counts
//! instructions under `valgrind --tool=callgrind` instead. This program runs one workload N
//! times inside a function whose name the guard gives to callgrind's `--toggle-collect`, so
//! only the loop is counted (not start-up):
//!
//! * `pass`: what the gateway does for a proxied request carrying an approved VMS session:
//!   language negotiation, route classification, the look for session ids in the URL,
//!   `Gateway::gate` (the decision this thread remembered for the same `Cookie` header,
//!   revocation and policy checks, the header for the VMS), `rewrite_request` (hop-by-hop
//!   headers, Host, X-Forwarded-*, upstream URI), the check for a body on a method without one
//!   (`http::body_rules`), the exchange with the VMS through the gateway's pool and hyper's
//!   HTTP/1.1 client connection (`http::upstream`: checkout, request written, answer head and
//!   1 KiB body read to its end, connection checked back in), response header clean-up
//!   (hop-by-hop headers and the VMS's banners, `upstream.strip_response_headers`) and the
//!   request metric. The VMS is a stand-in on a thread of its own, over loopback TCP; only this
//!   thread's instructions are counted, so its work and the kernel's are not;
//! * `nomfa`: the same for a session approved without MFA (a role where MFA is not enforced),
//!   which adds a policy decision per request;
//! * `fresh`: `pass` with a different session and approval cookie each time, more of them
//!   than the per-thread caches of verified approvals (`gate::verified`) and of gate decisions
//!   (`gate::memo`) hold, so every
//!   request pays the full verification: the first request of a session;
//! * `anon`: the same request without a session cookie;
//! * `base`: the baseline, SHA-256 of the same request head, N times.
//!
//! The guard compares each workload with the baseline in the same build, so the ratio does not
//! move with the compiler's optimisation level as much as raw counts would.
//!
//! The client side of the HTTP/1.1 exchange is hyper's: the counts include its connection
//! task (which runs on this thread: the loop drives a single-threaded runtime), the channel
//! between that task and the request's, and tokio's socket readiness. Not included: the TLS
//! and HTTP work for the browser's connection (hyper's server side, rustls).
//!
//! Usage: `bench-hotpath pass|fresh|nomfa|anon|base N` (prints the wall time per iteration, for
//! information only).

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Uri, header};
use http_body_util::BodyExt;
use mfa_gateway::auth::crypto::{self, KeyRing};
use mfa_gateway::clock::Clock;
use mfa_gateway::config::{Config, Mode};
use mfa_gateway::gate::Gate;
use mfa_gateway::gate::approval::{APPROVAL_COOKIE, Approval, session_hash};
use mfa_gateway::gate::cookies;
use mfa_gateway::gateway::Gateway;
use mfa_gateway::http::body::Body;
use mfa_gateway::http::{ConnInfo, body_rules, headers};
use mfa_gateway::live_policy::LivePolicy;
use mfa_gateway::metrics::{Outcome, RequestKind};
use mfa_gateway::policy::MfaState;
use mfa_gateway::store::{Store, memory::MemoryStore};

/// 2026-03-02T12:00:00Z: inside the shipped policy's "enforced" phase for customers.
const NOW: u64 = 1_772_452_800;

const CONFIG: &str = r#"
version = 1
[server]
listen = "127.0.0.1:0"
[upstream]
url = "http://VMS_ADDRESS"
[redis]
url = "redis://127.0.0.1:9/0"
[mfa]
active_key = "k1"
keys = [{ id = "k1", value = "KEY" }]
[vms]
session_cookies = ["VMSSESSION"]
logout = [{ path = "/logout" }]
[[vms.login]]
method = "POST"
path = "/login"
username_field = "username"
success_status = [302]
success_cookie = "VMSSESSION"
[vms.role]
source = "header"
header = "X-VMS-Role"
[policy]
file = "policy.toml"
"#;

/// Everything one iteration needs, built once.
#[derive(Clone)]
struct Fixture {
    gw: Arc<Gateway>,
    conn: ConnInfo,
    uri: Uri,
    request_headers: HeaderMap,
    /// The request headers of each iteration in turn (`fresh`: one per session).
    variants: Vec<HeaderMap>,
    head_bytes: Vec<u8>,
}

fn fixture(kind: &str, vms: SocketAddr) -> Result<Fixture, String> {
    let key = crypto::generate_key_material();
    let text = CONFIG
        .replace("KEY", &key)
        .replace("VMS_ADDRESS", &vms.to_string());
    // Resolved against the repository's config/ folder, where the shipped policy lives.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/bench-hotpath.toml");
    let cfg = Config::from_toml(&text, &path, Mode::Demo).map_err(|e| e.to_string())?;
    let material = crypto::parse_key_material(&key).map_err(|e| e.to_string())?;
    let keys = KeyRing::new("k1", vec![("k1".into(), material)]).map_err(|e| e.to_string())?;
    let policy = LivePolicy::load(cfg.policy.file.clone())?;
    let gw = Gateway::new(
        Arc::new(cfg),
        keys,
        Store::Memory(MemoryStore::new()),
        policy,
        Clock::manual(i64::try_from(NOW).map_err(|e| e.to_string())?),
    )?;

    let session = "Zk3q9V1bX0c2mNw7yLr4TtUe8sPoA6hJdGfKi5Ba0Qs";
    let names = vec!["VMSSESSION".to_string()];
    let hash = session_hash(&names, |n| (n == "VMSSESSION").then_some(session))
        .ok_or("no session hash")?;
    let (mfa_passed, state, role) = match kind {
        "nomfa" => (false, MfaState::None, "supplier"),
        _ => (true, MfaState::Enforced, "customer"),
    };
    let approval = Approval {
        issued: NOW - 600,
        expires: NOW + 12 * 3600,
        mfa_passed,
        state,
        session_hash: hash,
        role: role.into(),
        user: "alice.jansen@example.com".into(),
        epoch: 0,
        id: Some([1; 16]),
    }
    .seal(&gw.keys);
    let cookie = if kind == "anon" {
        "_ga=GA1.2.1234567890.1700000000; theme=light".to_string()
    } else {
        format!(
            "VMSSESSION={session}; {APPROVAL_COOKIE}={approval}; _ga=GA1.2.1234567890.1700000000"
        )
    };
    let mut h = HeaderMap::new();
    let pairs = [
        ("host", "vms.example.com"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        (
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("accept-language", "nl,en-US;q=0.7,en;q=0.3"),
        ("accept-encoding", "gzip, deflate, br"),
        ("connection", "keep-alive"),
        ("upgrade-insecure-requests", "1"),
        ("cookie", cookie.as_str()),
    ];
    let mut head_bytes = b"GET /app/orders?page=2 HTTP/1.1\r\n".to_vec();
    for (n, v) in pairs {
        h.append(
            header::HeaderName::from_static(n),
            HeaderValue::from_str(v).map_err(|e| e.to_string())?,
        );
        head_bytes.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    head_bytes.extend_from_slice(b"\r\n");
    let peer: SocketAddr = "127.0.0.1:50000".parse().map_err(|_| "peer address")?;
    let variants = if kind == "fresh" {
        fresh_variants(&gw, &h)?
    } else {
        vec![h.clone()]
    };
    Ok(Fixture {
        gw,
        conn: ConnInfo { peer },
        uri: Uri::from_static("/app/orders?page=2"),
        variants,
        request_headers: h,
        head_bytes,
    })
}

/// More sessions than the per-thread cache of verified approvals holds (4096), so that
/// cycling through them never finds one still remembered.
const FRESH_SESSIONS: usize = 5000;

/// `request` with its session and approval cookie replaced, for each of `FRESH_SESSIONS`
/// distinct approved sessions.
fn fresh_variants(gw: &Gateway, request: &HeaderMap) -> Result<Vec<HeaderMap>, String> {
    let names = vec!["VMSSESSION".to_string()];
    (0..FRESH_SESSIONS)
        .map(|i| {
            let session = format!("Zk3q9V1bX0c2mNw7yLr4TtUe8sPoA6hJdGfKi5Ba{i:06}");
            let hash = session_hash(&names, |_| Some(session.as_str())).ok_or("no hash")?;
            let approval = Approval {
                issued: NOW - 600,
                expires: NOW + 12 * 3600,
                mfa_passed: true,
                state: MfaState::Enforced,
                session_hash: hash,
                role: "customer".into(),
                user: format!("user{i}@example.com"),
                epoch: 0,
                id: Some([1; 16]),
            }
            .seal(&gw.keys);
            let mut h = request.clone();
            let cookie = format!(
                "VMSSESSION={session}; {APPROVAL_COOKIE}={approval}; _ga=GA1.2.1234567890.1700000000"
            );
            h.insert(
                header::COOKIE,
                HeaderValue::from_str(&cookie).map_err(|e| e.to_string())?,
            );
            Ok(h)
        })
        .collect()
}

/// The VMS's answer: a page of 1 KiB, keep-alive.
fn vms_answer() -> Vec<u8> {
    let mut answer = b"HTTP/1.1 200 OK\r\n".to_vec();
    for (n, v) in [
        ("content-type", "text/html; charset=utf-8"),
        ("content-length", "1024"),
        ("connection", "keep-alive"),
        ("keep-alive", "timeout=5"),
        ("cache-control", "no-cache"),
        ("date", "Mon, 02 Mar 2026 12:00:00 GMT"),
    ] {
        answer.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    answer.extend_from_slice(b"\r\n");
    answer.extend_from_slice(&[b'x'; 1024]);
    answer
}

/// A stand-in VMS on a thread of its own (not counted): answers every request head on a
/// connection with [`vms_answer`]. The requests have no body.
fn spawn_vms() -> Result<SocketAddr, String> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let answer = vms_answer();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let _ = s.set_nodelay(true);
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let n = match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        if s.write_all(&answer).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// One proxied request's work in the gateway, including the exchange with the VMS.
async fn one_request(f: &Fixture, i: u64) -> Result<bool, String> {
    let gw = &f.gw;
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = Method::GET;
    parts.uri = f.uri.clone();
    let index = usize::try_from(i).unwrap_or(0) % f.variants.len().max(1);
    parts.headers = f.variants.get(index).unwrap_or(&f.request_headers).clone();
    // As `Gateway::handle`: the language is only negotiated for the gateway's own pages.
    let lang = parts.headers.get(header::ACCEPT_LANGUAGE).cloned();
    // As `Gateway::route`: one host only, no body where the method has none.
    let req = Request::from_parts(parts, Body::empty());
    headers::check_host(req.version(), req.uri(), req.headers()).map_err(|e| e.to_string())?;
    body_rules::check(&req, &gw.cfg.vms.allow_body_on).map_err(|e| e.to_string())?;
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path();
    let owned = mfa_gateway::vms_reading::path::classify(path, &gw.paths.prefix);
    // As `Gateway::route`: session ids in the URL (none here, the common case).
    let url_session = gw
        .cfg
        .vms
        .url_session_params
        .strip(path, parts.uri.query())
        .map_err(|_| "ambiguous URL session".to_string())?;
    let login = gw
        .cfg
        .vms
        .login
        .iter()
        .any(|l| l.method == parts.method && l.path == path);
    let logout = gw
        .cfg
        .vms
        .logout
        .iter()
        .any(|r| r.matches(&parts.method, path));
    let now = gw.clock.unix();
    let gate = gw.gate(&mut parts.headers, now);
    let approved = matches!(gate, Gate::Approved(_));
    gw.rewrite_request(&mut parts, f.conn)
        .map_err(|e| e.to_string())?;
    // As `Gateway::pass_through`: the exchange with the VMS; the body is then read to its end
    // as hyper's server side would send it on, which returns the connection to the pool.
    let resp = gw
        .upstream
        .send(Request::from_parts(parts, body), &gw.metrics)
        .await
        .map_err(|e| e.to_string())?;
    let (mut resp, body) = resp.into_parts();
    headers::strip_hop_by_hop_and(&mut resp.headers, &gw.cfg.upstream.strip_response_headers);
    let body: Bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    if body.len() != 1024 {
        return Err(format!("a body of {} bytes from the VMS", body.len()));
    }
    gw.metrics.request(
        RequestKind::Proxied,
        Outcome::Proxied,
        Duration::from_micros(250),
    );
    black_box((lang, owned, url_session, login, logout, gate, resp, body));
    Ok(approved)
}

/// The measured loop. (Callgrind's `--toggle-collect` flips collection at every function
/// whose name matches, so the requests run in a function of another name: a closure in here
/// would be named after this function and switch the count off.)
#[inline(never)]
fn hot_loop(f: &Fixture, rt: &tokio::runtime::Runtime, n: u64) -> Result<u64, String> {
    rt.block_on(requests(f, n))
}

async fn requests(f: &Fixture, n: u64) -> Result<u64, String> {
    let mut approved = 0;
    for i in 0..n {
        if one_request(black_box(f), i).await? {
            approved += 1;
        }
    }
    Ok(approved)
}

#[inline(never)]
fn base_loop(f: &Fixture, n: u64) -> u8 {
    let mut acc = 0u8;
    for _ in 0..n {
        let d = crypto::sha256(black_box(&f.head_bytes));
        acc ^= d.first().copied().unwrap_or(0);
    }
    acc
}

/// Checks, before anything is counted, that the workload takes the path it claims to.
fn check(kind: &str, f: &Fixture) -> Result<(), String> {
    let mut h = f.request_headers.clone();
    let gate = f.gw.gate(&mut h, f.gw.clock.unix());
    let sent = cookies::request_cookie(&h, "VMSSESSION").is_some();
    let leaked = cookies::request_cookie(&h, APPROVAL_COOKIE).is_some();
    let ok = match kind {
        "pass" | "fresh" | "nomfa" | "base" => matches!(gate, Gate::Approved(_)) && sent && !leaked,
        "anon" => matches!(gate, Gate::Anonymous) && !sent && !leaked,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "workload {kind}: the gate did not take the expected path ({gate:?})"
        ))
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench-hotpath pass|fresh|nomfa|anon|base N";
    let kind = args.next().ok_or(usage)?;
    let n: u64 = args
        .next()
        .ok_or(usage)?
        .parse()
        .map_err(|_| usage.to_string())?;
    let vms = spawn_vms()?;
    let f = fixture(&kind, vms)?;
    check(&kind, &f)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    // Outside the count: the VMS connection is opened, and used once.
    let warm = Fixture {
        variants: vec![f.request_headers.clone()],
        ..f.clone()
    };
    rt.block_on(one_request(&warm, 0))?;
    let start = Instant::now();
    if kind == "base" {
        black_box(base_loop(&f, n));
    } else {
        let approved = hot_loop(&f, &rt, n)?;
        let want = if kind == "anon" { 0 } else { n };
        if approved != want {
            return Err(format!(
                "{approved} of {n} requests approved, expected {want}"
            ));
        }
    }
    let per = start.elapsed().as_nanos() / u128::from(n.max(1));
    println!("{kind}: {n} iterations, {per} ns each (wall clock; information only)");
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-hotpath: {e}");
            ExitCode::FAILURE
        }
    }
}
