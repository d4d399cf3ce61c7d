//! The MFA path: enrolled users in Redis, and logins with a code challenge through the gateway.
//!
//! Replay protection accepts each 30-second time step once per user, and the gateway runs on
//! the real clock. So `seed` enrolls many users with a confirming step a few steps in the past,
//! and `mfa` logs each user in exactly once, with the code of the current step: no request is
//! refused as a replay, and no clock is faked.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mfa_gateway::auth::crypto::Purpose;
use mfa_gateway::auth::totp;
use mfa_gateway::config::Config;
use mfa_gateway::store::{Store, redis::RedisStore};

use crate::{Opts, client, emit, percentile, user_name, user_secret};

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `seed --config FILE --users N --prefix P`: enrolls users P0..P(N-1).
pub async fn seed(opts: &Opts) -> Result<(), String> {
    let cfg = Config::load(&opts.path("config")?).map_err(|e| e.to_string())?;
    let keys = mfa_gateway::run::key_ring(&cfg, false).map_err(|e| e.to_string())?;
    let store = Store::Redis(RedisStore::new(&cfg.redis));
    store.ping().await.map_err(|e| e.to_string())?;
    let users: usize = opts.num("users", 1000)?;
    let prefix = opts.str("prefix")?;
    let now = unix_now();
    let past_step = totp::step_of(now).saturating_sub(4);
    let start = Instant::now();
    let mut fresh = 0;
    for i in 0..users {
        let user = user_name(prefix, i);
        let sealed = keys
            .seal(Purpose::TotpSecret, user.as_bytes(), &user_secret(&user))
            .map_err(|e| e.to_string())?;
        if store
            .enroll(&user, &sealed, keys.active_id(), now, past_step, None)
            .await
            .map_err(|e| e.to_string())?
            == mfa_gateway::store::EnrollResult::Enrolled
        {
            fresh += 1;
        }
    }
    eprintln!(
        "seeded {fresh} of {users} users in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The `name=value` part of every `Set-Cookie` of a response.
fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(|s| s.trim().to_string())
        .collect()
}

fn csrf_of(html: &str) -> Option<&str> {
    let marker = r#"name="csrf" value=""#;
    let start = html.find(marker)? + marker.len();
    let rest = html.get(start..)?;
    rest.get(..rest.find('"')?)
}

/// Timings of one login with a code challenge.
pub struct RoundTrip {
    /// The approved session's cookies (VMS session and approval).
    pub cookies: Vec<String>,
    pub verify: Duration,
    pub total: Duration,
}

/// Login POST (intercepted), challenge page, code POST (released).
pub async fn login_with_code(
    http: &reqwest::Client,
    base: &str,
    user: &str,
) -> Result<RoundTrip, String> {
    let start = Instant::now();
    let login = http
        .post(format!("{base}/login"))
        .form(&[("username", user), ("password", "bench")])
        .send()
        .await
        .map_err(|e| format!("login: {e}"))?;
    if login.status() != reqwest::StatusCode::SEE_OTHER {
        return Err(format!("login: expected 303, got {}", login.status()));
    }
    let location = login
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !location.ends_with("/verify") {
        return Err(format!("login: sent to {location:?}, not to the code page"));
    }
    let challenge = set_cookies(&login).join("; ");
    let _ = login.bytes().await;
    let page = http
        .get(format!("{base}{location}"))
        .header(reqwest::header::COOKIE, &challenge)
        .send()
        .await
        .map_err(|e| format!("code page: {e}"))?;
    let html = page.text().await.map_err(|e| format!("code page: {e}"))?;
    let csrf = csrf_of(&html).ok_or("code page without a form token")?;
    let code = totp::code_at(&user_secret(user), unix_now());
    let t = Instant::now();
    let released = http
        .post(format!("{base}{location}"))
        .header(reqwest::header::COOKIE, &challenge)
        .form(&[("csrf", csrf), ("code", code.as_str())])
        .send()
        .await
        .map_err(|e| format!("code: {e}"))?;
    let status = released.status();
    let cookies = set_cookies(&released);
    let _ = released.bytes().await;
    let verify = t.elapsed();
    if status != reqwest::StatusCode::FOUND {
        return Err(format!("code: expected the released 302, got {status}"));
    }
    let kept: Vec<String> = cookies
        .into_iter()
        .filter(|c| c.starts_with("VMSSESSION=") || c.starts_with("__Host-mfagw="))
        .collect();
    if kept.len() != 2 {
        return Err("release without both session and approval cookie".into());
    }
    Ok(RoundTrip {
        cookies: kept,
        verify,
        total: start.elapsed(),
    })
}

/// `cookie --url BASE --ca FILE --user NAME`: prints the approved session's Cookie header.
pub async fn cookie(opts: &Opts) -> Result<(), String> {
    let http = client(&opts.path("ca")?, 1)?;
    let rt = login_with_code(&http, &opts.loopback_url("url")?, opts.str("user")?).await?;
    println!("{}", rt.cookies.join("; "));
    Ok(())
}

/// `mfa --url BASE --ca FILE --users N --prefix P --concurrency C --max-seconds S`.
pub async fn round_trips(opts: &Opts) -> Result<(), String> {
    let users: usize = opts.num("users", 1000)?;
    let concurrency: usize = opts.num("concurrency", 50)?;
    let max_secs: u64 = opts.num("max-seconds", 60)?;
    let prefix = opts.str("prefix")?.to_string();
    let base = opts.loopback_url("url")?;
    let http = client(&opts.path("ca")?, concurrency)?;
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(max_secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, base, prefix, next) = (
            http.clone(),
            base.clone(),
            prefix.clone(),
            Arc::clone(&next),
        );
        tasks.push(tokio::spawn(async move {
            let mut verify = Vec::new();
            let mut total = Vec::new();
            let mut errors = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= users || Instant::now() >= deadline {
                    break;
                }
                match login_with_code(&http, &base, &user_name(&prefix, i)).await {
                    Ok(rt) => {
                        verify.push(rt.verify.as_secs_f64() * 1000.0);
                        total.push(rt.total.as_secs_f64() * 1000.0);
                    }
                    Err(e) => errors.push(e),
                }
            }
            (verify, total, errors)
        }));
    }
    let mut verify = Vec::new();
    let mut total = Vec::new();
    let mut errors = Vec::new();
    for t in tasks {
        let (v, tt, e) = t.await.map_err(|e| e.to_string())?;
        verify.extend(v);
        total.extend(tt);
        errors.extend(e);
    }
    let secs = start.elapsed().as_secs_f64();
    verify.sort_by(f64::total_cmp);
    total.sort_by(f64::total_cmp);
    if let Some(e) = errors.first() {
        eprintln!("{} round trips failed; first: {e}", errors.len());
    }
    emit(
        opts,
        &serde_json::json!({
            "round_trips": total.len(),
            "errors": errors.len(),
            "seconds": secs,
            "round_trips_per_s": total.len() as f64 / secs.max(1e-9),
            "concurrency": concurrency,
            "verify_ms": {
                "p50": percentile(&verify, 50.0),
                "p99": percentile(&verify, 99.0),
                "max": verify.last().copied().unwrap_or(0.0),
            },
            "round_trip_ms": {
                "p50": percentile(&total, 50.0),
                "p99": percentile(&total, 99.0),
            },
        }),
    )
}
