//! Reading and rewriting `Cookie` request headers, and reading `Set-Cookie` response headers.
//!
//! Rewriting must leave every cookie the gateway does not own byte for byte as the client sent
//! it, so the header is split on `;` and re-joined rather than parsed into a jar and
//! re-serialised. HTTP/2 clients may split cookies over several `Cookie` fields; the upstream
//! speaks HTTP/1.1, where they must travel as one header joined by `"; "` (RFC 9113 8.2.3).

use cookie::Cookie;
use http::header::{COOKIE, HeaderMap, HeaderValue, SET_COOKIE};

/// The gateway's own cookies. The `__Host-` prefix makes browsers insist on `Secure`,
/// `Path=/` and no `Domain`, so a sibling sub-domain cannot plant or overwrite them.
pub const APPROVAL_COOKIE: &str = "__Host-mfagw";
pub const CHALLENGE_COOKIE: &str = "__Host-mfagw-ch";
/// The marker of a pre-login session (`proxy::prelogin`).
pub const PRELOGIN_COOKIE: &str = "__Host-mfagw-pre";
/// A random id of the browser that was shown a pending enrollment secret (`mfa::pending`):
/// only that browser is shown the same secret again.
pub const ENROLLING_COOKIE: &str = "__Host-mfagw-pe";
/// A browser the user chose to remember (`mfa::remember`): sealed user, browser id and time.
pub const REMEMBER_COOKIE: &str = "__Host-mfagw-rb";

/// Iterates `(name, value)` pairs over every `Cookie` header, without allocation.
pub fn request_cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let pair = pair.trim_matches(|c| c == ' ' || c == '\t');
            let (n, v) = pair.split_once('=')?;
            Some((n.trim(), v.trim()))
        })
}

/// The first value of the named request cookie.
pub fn request_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    request_cookies(headers)
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// Removes the named cookies from the request and joins split `Cookie` fields into one.
/// Returns how many cookies were removed. The header is left untouched when there is one
/// field and nothing to remove, which is the common case on the hot path.
pub fn remove_request_cookies(headers: &mut HeaderMap, remove: impl Fn(&str) -> bool) -> usize {
    let fields = headers.get_all(COOKIE).iter().count();
    if fields == 0 {
        return 0;
    }
    let hits = request_cookies(headers).filter(|(n, _)| remove(n)).count();
    if hits == 0 && fields == 1 {
        return 0;
    }
    let mut kept: Vec<&str> = Vec::new();
    for v in headers.get_all(COOKIE).iter() {
        // A header that is not visible ASCII cannot be split safely: drop it whole rather
        // than forward a session cookie hidden in it.
        let Ok(v) = v.to_str() else { continue };
        for pair in v.split(';') {
            let pair = pair.trim_matches(|c| c == ' ' || c == '\t');
            if pair.is_empty() {
                continue;
            }
            let name = pair.split_once('=').map_or(pair, |(n, _)| n).trim();
            if !remove(name) {
                kept.push(pair);
            }
        }
    }
    let joined = kept.join("; ");
    headers.remove(COOKIE);
    if !joined.is_empty()
        && let Ok(v) = HeaderValue::from_str(&joined)
    {
        headers.insert(COOKIE, v);
    }
    hits
}

/// Prepares the `Cookie` header of a request for the VMS: removes the gateway's own cookies
/// and everything the VMS could take for one of its `sessions` cookies, except (when
/// `keep_session` is set, for an approved session) the first exact occurrence of each,
/// which is the value the approval was checked against. Returns how many were removed.
///
/// The gateway reads cookies strictly (`;`-separated, exact names, the first occurrence
/// counts). Legacy servers may be more lenient: split on `,` as well (RFC 2965), ignore the
/// case of names, percent-decode them, strip quotes or a leading `$`, or take the last of
/// two cookies with the same name. Any of that could let a session the gateway never saw
/// (or never approved) reach the VMS, so every pair that looks like a session cookie under
/// any of those readings is removed too.
pub fn filter_for_upstream(
    headers: &mut HeaderMap,
    sessions: &[String],
    keep_session: bool,
) -> usize {
    let fields = headers.get_all(COOKIE).iter().count();
    if fields == 0 {
        return 0;
    }
    let mut seen = vec![false; sessions.len()];
    let mut kept: Vec<&str> = Vec::new();
    let mut removed = 0;
    for v in headers.get_all(COOKIE).iter() {
        // Not visible ASCII: cannot be split safely, so it is dropped whole.
        let Ok(v) = v.to_str() else {
            removed += 1;
            continue;
        };
        for pair in v.split(';') {
            let pair = pair.trim_matches(|c| c == ' ' || c == '\t');
            if pair.is_empty() {
                continue;
            }
            let exact = pair.split_once('=').map(|(n, _)| n.trim());
            if exact.is_some_and(|n| {
                n == APPROVAL_COOKIE
                    || n == CHALLENGE_COOKIE
                    || n == PRELOGIN_COOKIE
                    || n == ENROLLING_COOKIE
                    || n == REMEMBER_COOKIE
            }) {
                removed += 1;
                continue;
            }
            if let Some(i) = exact.and_then(|n| sessions.iter().position(|s| s == n)) {
                let first = seen.get(i).is_some_and(|s| !s);
                if let Some(s) = seen.get_mut(i) {
                    *s = true;
                }
                // A value with another session cookie behind a comma is not one a VMS issues.
                if keep_session && first && !hides_session(pair.split(',').skip(1), sessions) {
                    kept.push(pair);
                } else {
                    removed += 1;
                }
                continue;
            }
            if looks_like_session(pair, sessions) {
                removed += 1;
                continue;
            }
            kept.push(pair);
        }
    }
    if removed == 0 && fields == 1 {
        return 0;
    }
    let joined = kept.join("; ");
    headers.remove(COOKIE);
    if !joined.is_empty()
        && let Ok(v) = HeaderValue::from_str(&joined)
    {
        headers.insert(COOKIE, v);
    }
    removed
}

/// Whether some server could read this `;`-separated pair as one of the `sessions` cookies
/// (see [`filter_for_upstream`]).
fn looks_like_session(pair: &str, sessions: &[String]) -> bool {
    hides_session(pair.split(','), sessions)
}

/// Whether one of these `,`-separated parts of a pair reads as a session cookie's name.
fn hides_session<'a>(mut parts: impl Iterator<Item = &'a str>, sessions: &[String]) -> bool {
    parts.any(|part| {
        let name = part.split_once('=').map_or(part, |(n, _)| n);
        let name = name.trim().trim_matches('"').trim();
        let decoded = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
        let name = decoded
            .trim()
            .trim_matches('"')
            .trim_start_matches('$')
            .trim();
        sessions.iter().any(|s| name.eq_ignore_ascii_case(s))
    })
}

/// A cookie set by a response: name, value, and whether it removes the cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    pub removal: bool,
}

/// Every cookie that `Set-Cookie` headers of a response set. Unparsable headers are skipped.
pub fn response_cookies(headers: &HeaderMap) -> Vec<SetCookie> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok())
        .filter_map(|s| Cookie::parse(s).ok())
        .map(|c| {
            let expired = c.max_age().is_some_and(|m| m.is_zero() || m.is_negative())
                || c.expires_datetime()
                    .is_some_and(|t| t.unix_timestamp() <= 0);
            SetCookie {
                removal: expired || c.value().is_empty(),
                name: c.name().to_string(),
                value: c.value().to_string(),
            }
        })
        .collect()
}

/// `Set-Cookie` for one of the gateway's cookies.
pub fn gateway_cookie(
    name: &str,
    value: &str,
    max_age: Option<std::time::Duration>,
    same_site: cookie::SameSite,
) -> HeaderValue {
    let mut c = Cookie::build((name, value))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(same_site);
    if let Some(age) = max_age {
        c = c.max_age(cookie::time::Duration::seconds(
            i64::try_from(age.as_secs()).unwrap_or(i64::MAX),
        ));
    }
    HeaderValue::from_str(&c.build().to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` that removes one of the gateway's cookies.
pub fn clear_gateway_cookie(name: &'static str) -> HeaderValue {
    gateway_cookie(
        name,
        "",
        Some(std::time::Duration::ZERO),
        cookie::SameSite::Lax,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(COOKIE, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn removes_only_named_cookies_and_keeps_others_verbatim() {
        let mut h = headers(&["a=1; VMSSESSION=secret;b=\"q w\"; __Host-mfagw=x"]);
        let n = remove_request_cookies(&mut h, |n| n == "VMSSESSION" || n == APPROVAL_COOKIE);
        assert_eq!(n, 2);
        assert_eq!(h[COOKIE], "a=1; b=\"q w\"");
    }

    #[test]
    fn the_gateways_own_cookies_never_go_upstream() {
        let mut h = headers(&[
            "a=1; __Host-mfagw-pe=browser; __Host-mfagw-ch=c; __Host-mfagw=x; __Host-mfagw-rb=r",
        ]);
        let n = filter_for_upstream(&mut h, &["VMSSESSION".to_string()], true);
        assert_eq!(n, 4);
        assert_eq!(h[COOKIE], "a=1");
    }

    #[test]
    fn joins_http2_cookie_crumbs() {
        let mut h = headers(&["a=1", "b=2"]);
        assert_eq!(remove_request_cookies(&mut h, |_| false), 0);
        assert_eq!(h.get_all(COOKIE).iter().count(), 1);
        assert_eq!(h[COOKIE], "a=1; b=2");
    }

    #[test]
    fn removing_everything_drops_the_header() {
        let mut h = headers(&["VMSSESSION=x"]);
        assert_eq!(remove_request_cookies(&mut h, |n| n == "VMSSESSION"), 1);
        assert!(!h.contains_key(COOKIE));
    }

    #[test]
    fn untouched_single_header_is_not_rewritten() {
        let mut h = headers(&["a=1;b=2"]);
        assert_eq!(remove_request_cookies(&mut h, |n| n == "c"), 0);
        assert_eq!(h[COOKIE], "a=1;b=2");
    }

    #[test]
    fn reads_request_cookies_across_fields() {
        let h = headers(&["a=1; s=abc", "t=2"]);
        assert_eq!(request_cookie(&h, "s"), Some("abc"));
        assert_eq!(request_cookie(&h, "t"), Some("2"));
        assert_eq!(request_cookie(&h, "x"), None);
    }

    #[test]
    fn parses_set_cookie_including_removals() {
        let mut h = HeaderMap::new();
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("VMSSESSION=abc; Path=/; HttpOnly"),
        );
        h.append(SET_COOKIE, HeaderValue::from_static("old=; Max-Age=0"));
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("gone=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
        );
        let c = response_cookies(&h);
        assert_eq!(c.len(), 3);
        assert_eq!(
            c[0],
            SetCookie {
                name: "VMSSESSION".into(),
                value: "abc".into(),
                removal: false
            }
        );
        assert!(c[1].removal && c[2].removal);
    }

    #[test]
    fn gateway_cookie_is_locked_down() {
        let v = gateway_cookie(
            CHALLENGE_COOKIE,
            "id",
            Some(std::time::Duration::from_secs(300)),
            cookie::SameSite::Strict,
        );
        let s = v.to_str().unwrap();
        for part in [
            "__Host-mfagw-ch=id",
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
            "Max-Age=300",
        ] {
            assert!(s.contains(part), "{s} lacks {part}");
        }
    }
}

#[cfg(test)]
mod props;
