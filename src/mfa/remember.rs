//! "Don't ask for a code on this browser for N days": remembered browsers.
//!
//! Where the policy allows it for the role (`remember_browser_days` of the phase in effect), the
//! code page offers a checkbox. A right code with the box ticked stores a record in the shared
//! store (a random browser id, when it was remembered, the user's revocation epoch, a short
//! browser summary) and sets the [`REMEMBER_COOKIE`] in that browser. The next sign-in of the
//! same user in that browser skips the code step when all of this holds:
//!
//! * the cookie opens: it is sealed (AES-256-GCM, so encrypted and authenticated) with the key
//!   ring's [`Purpose::RememberBrowser`] key, with the user name in its associated data: a
//!   cookie made for another user, or changed by one bit, does not open;
//! * the role's `remember_browser_days` today is above 0, and the browser was remembered less
//!   than that many days ago (a later phase with fewer days shortens it; 0 ends it);
//! * the store still has the record, in one atomic step that also notes the use: the user is
//!   enrolled, the record is there (not forgotten), and its epoch is not below the user's
//!   revocation epoch (an MSP reset and a replaced phone raise it).
//!
//! Anything else (no cookie, another user's, a forged one, a forgotten browser, a store error)
//! asks for the code as before: a failure here never lets anyone in, it only costs a code.
//!
//! Forgetting is a store operation on the user's one record (`P{u:U}:rb`), so it reaches every
//! instance at once: "forget" and "forget all" on the account page, an MSP on the admin page,
//! and every MSP reset, phone replacement and MFA turned off (which forget all). The cookie
//! alone, without the password, gets nothing: it only replaces the code after the VMS accepted
//! the password of that same user.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use http::HeaderValue;

use crate::audit::{ActorKind, Audit, Event, Record};
use crate::auth::crypto::{KeyRing, Purpose};
use crate::gate::cookies::{self, REMEMBER_COOKIE};
use crate::gateway::Gateway;
use crate::store::{RememberedBrowser, Store, StoreError};

/// The version byte of the cookie's sealed payload.
const VERSION: u8 = 1;
/// Mixed into the associated data of every remember cookie, with the user name.
const AAD_CONTEXT: &[u8] = b"mfa-gateway remember-browser v1\0";
/// Longest cookie value read; a real one is about 100 characters.
const MAX_COOKIE_LEN: usize = 256;

/// What a remember cookie holds (sealed, for one user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RememberCookie {
    /// The random browser id, the key of the store's record.
    pub id: [u8; 16],
    /// When the browser was remembered (Unix seconds).
    pub at: u64,
}

impl RememberCookie {
    /// The store's id of this browser (hex).
    pub fn id_hex(&self) -> String {
        crate::gate::revocation::hex16(&self.id)
    }
}

fn aad(user: &str) -> Vec<u8> {
    [AAD_CONTEXT, user.as_bytes()].concat()
}

/// The cookie value for `user`: base64url of the sealed `version | id | at`.
pub fn seal(keys: &KeyRing, user: &str, c: &RememberCookie) -> Result<String, String> {
    let mut plain = Vec::with_capacity(25);
    plain.push(VERSION);
    plain.extend_from_slice(&c.id);
    plain.extend_from_slice(&c.at.to_be_bytes());
    keys.seal(Purpose::RememberBrowser, &aad(user), &plain)
        .map(|b| B64.encode(b))
        .map_err(|e| e.to_string())
}

/// Opens a cookie value for `user`; `None` unless it was sealed for exactly this user with a
/// key still in the ring and is unchanged.
pub fn open(keys: &KeyRing, user: &str, value: &str) -> Option<RememberCookie> {
    if value.is_empty() || value.len() > MAX_COOKIE_LEN {
        return None;
    }
    let blob = B64.decode(value).ok()?;
    let plain = keys
        .open(Purpose::RememberBrowser, &aad(user), &blob)
        .ok()?;
    let (&version, rest) = plain.split_first()?;
    if version != VERSION || rest.len() != 24 {
        return None;
    }
    let (id, at) = rest.split_at(16);
    Some(RememberCookie {
        id: id.try_into().ok()?,
        at: u64::from_be_bytes(at.try_into().ok()?),
    })
}

/// `Set-Cookie` for a remembered browser: `__Host-` prefix, `Secure`, `HttpOnly`,
/// `SameSite=Lax` (it must come along with the VMS's own login form), `Max-Age` = the days.
pub fn set_cookie(value: &str, days: u32) -> HeaderValue {
    cookies::gateway_cookie(
        REMEMBER_COOKIE,
        value,
        Some(max_age(days)),
        cookie::SameSite::Lax,
    )
}

/// `Set-Cookie` that removes the remember cookie.
pub fn clear_cookie() -> HeaderValue {
    cookies::clear_gateway_cookie(REMEMBER_COOKIE)
}

fn max_age(days: u32) -> Duration {
    Duration::from_secs(u64::from(days) * 86_400)
}

/// The days the policy in force allows remembering a browser for `role` at `now` (0: off).
/// Always 0 for the roles of `admin.roles`: a sign-in without a code must never open the
/// administration pages, which need the MFA step passed in the session.
pub fn days_for(gw: &Gateway, role: &str, now: u64) -> u32 {
    if gw.cfg.admin.roles.iter().any(|r| r == role) {
        return 0;
    }
    gw.policy
        .current()
        .remember_browser_days(role, crate::clock::timestamp_of(now))
}

/// At a sign-in of `user` (role `role`): the remembered browser that lets it skip the code,
/// if the request's cookie (`value`) opens for this user, the policy still allows remembering
/// for the role and the store's record is valid (see the module documentation). Its last use
/// is noted in the same store step.
pub async fn recognize(
    gw: &Gateway,
    user: &str,
    role: &str,
    value: Option<&str>,
    now: u64,
) -> Result<Option<RememberedBrowser>, StoreError> {
    let days = days_for(gw, role, now);
    if days == 0 {
        return Ok(None);
    }
    let Some(c) = value.and_then(|v| open(&gw.keys, user, v)) else {
        return Ok(None);
    };
    let max_age = max_age(days);
    if c.at.saturating_add(max_age.as_secs()) <= now {
        return Ok(None);
    }
    let found = gw
        .store
        .use_remembered_browser(user, &c.id_hex(), now, max_age)
        .await?;
    // The store's record is the authority; it must be the one this cookie was made with.
    Ok(found.filter(|r| r.first_seen == c.at))
}

/// Remembers this browser for `user` after a right code with the box ticked: a new random id
/// (replacing the one of an earlier cookie of the same user in this browser), the record in the
/// store (only while the user is enrolled at `epoch`), and the cookie to set. `None` when the
/// store refused (MFA reset or changed meanwhile): nothing is remembered.
pub async fn remember(
    gw: &Gateway,
    user: &str,
    epoch: u64,
    request: &http::HeaderMap,
    days: u32,
    now: u64,
) -> Result<Option<(HeaderValue, RememberedBrowser)>, crate::error::GatewayError> {
    let earlier = cookies::request_cookie(request, REMEMBER_COOKIE)
        .and_then(|v| open(&gw.keys, user, v))
        .map(|c| c.id_hex());
    let c = RememberCookie {
        id: crate::auth::crypto::random_bytes(),
        at: now,
    };
    let agent = request
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(agent_summary)
        .unwrap_or_else(|| ";".to_string());
    let rec = RememberedBrowser {
        id: c.id_hex(),
        first_seen: now,
        last_used: now,
        epoch,
        agent,
    };
    if !gw
        .store
        .remember_browser(user, &rec, earlier.as_deref(), now, max_age(days))
        .await?
    {
        return Ok(None);
    }
    let value = seal(&gw.keys, user, &c).map_err(crate::error::InternalError::Crypto)?;
    Ok(Some((set_cookie(&value, days), rec)))
}

/// Who forgets remembered browsers, for the audit record.
pub struct Forgetter<'a> {
    pub kind: ActorKind,
    pub name: &'a str,
    pub client: Option<&'a str>,
}

/// Forgets every remembered browser of `user` (one store step, every instance) and audits
/// `browser_forgotten` when there were any, with `why` (`via=reset`, ...) in the detail.
pub async fn forget_all(
    store: &Store,
    audit: &Audit,
    user: &str,
    by: &Forgetter<'_>,
    why: &str,
    now: u64,
) -> Result<usize, StoreError> {
    let n = store.forget_browsers(user).await?;
    if n > 0 {
        let mut r = Record::new(Event::BrowserForgotten, now, by.kind, by.name)
            .user(user)
            .detail(format!("all=true count={n} {why}"));
        if let Some(c) = by.client {
            r = r.client(c);
        }
        audit.record(r).await;
    }
    Ok(n)
}

/// Forgets one remembered browser of `user` (by its store id) and audits it; false if there
/// was no such browser.
pub async fn forget_one(
    store: &Store,
    audit: &Audit,
    user: &str,
    id: &str,
    by: &Forgetter<'_>,
    now: u64,
) -> Result<bool, StoreError> {
    if !valid_id(id) || !store.forget_browser(user, id).await? {
        return Ok(false);
    }
    let mut r = Record::new(Event::BrowserForgotten, now, by.kind, by.name)
        .user(user)
        .detail(format!("browser={}", short_id(id)));
    if let Some(c) = by.client {
        r = r.client(c);
    }
    audit.record(r).await;
    Ok(true)
}

/// Whether `id` is a browser id as the store keeps them (32 lowercase hex digits).
pub fn valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The first 8 hex digits of a browser id: enough to tell a user's few browsers apart in the
/// audit trail, too short to be of use to anyone reading it.
pub fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// A short summary of a `User-Agent`: `browser;system`, each one of a few known names or
/// empty. Nothing else of the header is kept (it is shown to the user and the MSP, and need
/// not be trusted: a browser can claim anything here).
pub fn agent_summary(ua: &str) -> String {
    let has = |s: &str| ua.contains(s);
    let browser = if has("Edg/") || has("EdgA/") || has("EdgiOS/") {
        "Edge"
    } else if has("OPR/") || has("Opera") {
        "Opera"
    } else if has("SamsungBrowser/") {
        "Samsung Internet"
    } else if has("Firefox/") || has("FxiOS/") {
        "Firefox"
    } else if has("Chrome/") || has("CriOS/") || has("Chromium/") {
        "Chrome"
    } else if has("Safari/") {
        "Safari"
    } else {
        ""
    };
    let system = if has("iPhone") || has("iPad") || has("iPod") {
        "iOS"
    } else if has("Android") {
        "Android"
    } else if has("Windows") {
        "Windows"
    } else if has("CrOS") {
        "ChromeOS"
    } else if has("Macintosh") || has("Mac OS X") {
        "macOS"
    } else if has("Linux") || has("X11") {
        "Linux"
    } else {
        ""
    };
    format!("{browser};{system}")
}

/// The two parts of a stored [`agent_summary`] (`None` where unknown).
pub fn agent_parts(stored: &str) -> (Option<&str>, Option<&str>) {
    let (b, s) = stored.split_once(';').unwrap_or((stored, ""));
    ((!b.is_empty()).then_some(b), (!s.is_empty()).then_some(s))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::auth::crypto::testing::ring;

    fn c() -> RememberCookie {
        RememberCookie {
            id: [7; 16],
            at: 1_700_000_000,
        }
    }

    #[test]
    fn a_cookie_opens_for_its_user_only() {
        let keys = ring("k1", &[("k1", 1)]);
        let v = seal(&keys, "alice", &c()).unwrap();
        assert_eq!(open(&keys, "alice", &v), Some(c()));
        assert_eq!(open(&keys, "bob", &v), None, "another user's cookie");
        assert_eq!(open(&keys, "Alice", &v), None);
        // Encrypted: neither the id nor the time is readable in the value.
        let raw = B64.decode(&v).unwrap();
        assert!(!raw.windows(16).any(|w| w == [7; 16]));
        // Sealed twice, two different values (random nonce).
        assert_ne!(seal(&keys, "alice", &c()).unwrap(), v);
    }

    #[test]
    fn a_changed_forged_or_foreign_cookie_does_not_open() {
        let keys = ring("k1", &[("k1", 1)]);
        let v = seal(&keys, "alice", &c()).unwrap();
        let mut raw = B64.decode(&v).unwrap();
        for i in 0..raw.len() {
            raw[i] ^= 1;
            assert_eq!(
                open(&keys, "alice", &B64.encode(&raw)),
                None,
                "bit flipped at {i}"
            );
            raw[i] ^= 1;
        }
        for junk in ["", "x", "%%%", &"A".repeat(300), &v[..v.len() - 2]] {
            assert_eq!(open(&keys, "alice", junk), None, "{junk:?}");
        }
        // Another gateway's key ring (another secret key with the same id).
        let other = ring("k1", &[("k1", 2)]);
        assert_eq!(open(&other, "alice", &v), None);
        // A value sealed with the same key for another purpose.
        let mut plain = vec![VERSION];
        plain.extend_from_slice(&[7; 16]);
        plain.extend_from_slice(&1u64.to_be_bytes());
        let approval_like = keys.seal(Purpose::Cookie, &aad("alice"), &plain).unwrap();
        assert_eq!(open(&keys, "alice", &B64.encode(approval_like)), None);
        // A rotated ring still opens cookies of a key it keeps.
        let rotated = ring("k2", &[("k2", 3), ("k1", 1)]);
        assert_eq!(open(&rotated, "alice", &v), Some(c()));
    }

    #[test]
    fn the_cookie_is_host_only_secure_http_only_lax_with_the_days_as_max_age() {
        let h = set_cookie("v", 30);
        let s = h.to_str().unwrap();
        assert!(s.starts_with("__Host-mfagw-rb=v;"), "{s}");
        for part in [
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
            "Max-Age=2592000",
        ] {
            assert!(s.contains(part), "{part}: {s}");
        }
        assert!(!s.contains("Domain"), "{s}");
        assert!(clear_cookie().to_str().unwrap().contains("Max-Age=0"));
    }

    #[test]
    fn user_agents_are_summed_up_in_known_names_only() {
        for (ua, want) in [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
                "Firefox;Windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
                "Safari;macOS",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0 Mobile/15E148 Safari/604.1",
                "Chrome;iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
                "Chrome;Android",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0",
                "Edge;Windows",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0 Safari/537.36",
                "Chrome;Linux",
            ),
            ("curl/8.5.0", ";"),
            ("<script>alert(1)</script>", ";"),
        ] {
            assert_eq!(agent_summary(ua), want, "{ua}");
        }
        assert_eq!(
            agent_parts("Firefox;Windows"),
            (Some("Firefox"), Some("Windows"))
        );
        assert_eq!(agent_parts(";"), (None, None));
        assert_eq!(agent_parts(""), (None, None));
    }

    #[test]
    fn browser_ids_are_32_lowercase_hex_digits() {
        assert!(valid_id(&c().id_hex()));
        assert!(!valid_id("ABCDEF0123456789ABCDEF0123456789"));
        assert!(!valid_id("0123"));
        assert!(!valid_id(&"g".repeat(32)));
        assert_eq!(short_id("0123456789abcdef0123456789abcdef"), "01234567");
    }
}
