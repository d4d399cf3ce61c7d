//! Which request paths belong to the gateway, which go to the VMS, and which are refused.
//!
//! The reserved prefix (`/.mfa/` by default) is matched on the raw path, byte for byte, and
//! only exact paths under it reach a gateway handler; nothing under it is ever forwarded.
//! Legacy servers, however, often read a path more leniently than the gateway does: they
//! decode `%2e` and `%2f`, treat `\` as `/`, drop `;jsessionid=...` parameters, merge `//`,
//! resolve `..`, and compare case-insensitively. Forwarding `//.mfa/health`,
//! `/%2emfa/health` or `/.MFA/health` would hand the VMS a request that it may read as one
//! under the reserved prefix. Such disguised paths are refused (400) instead, so that one
//! path never means "gateway" to one reader and "VMS" to the other:
//!
//! ```text
//!   raw path starts with the prefix         -> Owned   (exact handler or 404, never forwarded)
//!   raw path not origin-form ("*", "host")  -> Refuse
//!   lenient reading starts with the prefix  -> Refuse
//!   anything else                           -> Forward (untouched)
//! ```
//!
//! Browsers normalise dot segments (also `%2e`) before they send a request, so refusing
//! these costs real users nothing.

use std::borrow::Cow;

/// What to do with a request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathVerdict {
    /// Under the reserved prefix, as written: the gateway answers.
    Owned,
    /// Not the gateway's: forwarded to the VMS unchanged.
    Forward,
    /// Ambiguous or not a path: refused with 400.
    Refuse,
}

/// How many rounds of percent-decoding a lenient server might apply (double decoding).
const DECODE_ROUNDS: usize = 3;

/// Classifies `path` (the request's raw path, without query) against `prefix` (`/x/`).
pub fn classify(path: &str, prefix: &str) -> PathVerdict {
    let bare = prefix.trim_end_matches('/');
    if path.starts_with(prefix) || path == bare {
        return PathVerdict::Owned;
    }
    if !path.starts_with('/') {
        return PathVerdict::Refuse;
    }
    if is_plain(path) {
        // The lenient reading of a plain path is the path in lower case: compare in place.
        let fold = |p: &str| {
            path.len() >= p.len()
                && path
                    .as_bytes()
                    .get(..p.len())
                    .is_some_and(|b| b.eq_ignore_ascii_case(p.as_bytes()))
        };
        return if fold(prefix) || path.eq_ignore_ascii_case(bare) {
            PathVerdict::Refuse
        } else {
            PathVerdict::Forward
        };
    }
    let lenient = lenient_reading(path);
    let prefix_lc = prefix.to_ascii_lowercase();
    if lenient.starts_with(&prefix_lc) || lenient == prefix_lc.trim_end_matches('/') {
        return PathVerdict::Refuse;
    }
    PathVerdict::Forward
}

/// A path that no lenient reading changes except for case: no percent-escape, backslash or
/// `;` parameter, no empty segment, no segment that starts or ends with a dot (which covers
/// `.`, `..` and trailing dots), no space. Almost every request's path is plain, and its
/// [`lenient_reading`] is then its lower-case form.
fn is_plain(path: &str) -> bool {
    let b = path.as_bytes();
    path.is_ascii()
        && !b.iter().any(|c| matches!(c, b'%' | b'\\' | b';' | b' '))
        && !b
            .windows(2)
            .any(|w| matches!(w, [b'/', b'.'] | [b'.', b'/'] | [b'/', b'/']))
        && !path.ends_with('.')
}

/// The path as the most lenient common server would read it: percent-decoded (repeatedly),
/// `\` as `/`, `;` parameters dropped, empty, `.` and `..` segments resolved, trailing dots
/// and spaces of a segment ignored, lower case.
pub fn lenient_reading(path: &str) -> String {
    let segments = lenient_segments(path, true);
    let mut s = segments.joined;
    if s.is_empty() || segments.trailing_slash {
        s.push('/');
    }
    s
}

/// The path a VMS route matches, as a lenient server routes it: [`lenient_reading`] without
/// the trailing slash (ASP.NET and Spring MVC 5 ignore it), and in lower case only when the
/// VMS compares paths case-insensitively. Login and logout routes are matched on this, so
/// `//Account/Login/`, `/ACCOUNT/LOGIN` or `/account;x=y/login` cannot slip past them.
pub fn route_reading(path: &str, case_insensitive: bool) -> String {
    let s = lenient_segments(path, case_insensitive).joined;
    if s.is_empty() { "/".to_string() } else { s }
}

struct Segments {
    /// `/a/b` for the segments `a` and `b`; empty for none.
    joined: String,
    trailing_slash: bool,
}

fn lenient_segments(path: &str, lower: bool) -> Segments {
    let mut decoded: Cow<'_, str> = Cow::Borrowed(path);
    for _ in 0..DECODE_ROUNDS {
        if !decoded.contains('%') {
            break;
        }
        let next = percent_encoding::percent_decode_str(&decoded)
            .decode_utf8_lossy()
            .into_owned();
        if next == decoded {
            break;
        }
        decoded = Cow::Owned(next);
    }
    let mut unified = decoded.replace('\\', "/");
    if lower {
        // Upper then lower case: a case-insensitive server may compare either way, and
        // characters such as the long s (U+017F) or the Kelvin sign (U+212A) fold to ASCII
        // letters only in one of the two directions.
        unified = unified.to_uppercase().to_lowercase();
    }
    let mut out: Vec<&str> = Vec::new();
    for raw in unified.split('/') {
        let seg = raw.split(';').next().unwrap_or_default();
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => {
                let trimmed = s.trim_end_matches(['.', ' ']);
                out.push(if trimmed.is_empty() { s } else { trimmed });
            }
        }
    }
    let mut joined = String::with_capacity(unified.len() + 1);
    for seg in &out {
        joined.push('/');
        joined.push_str(seg);
    }
    Segments {
        joined,
        trailing_slash: unified.ends_with('/'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/.mfa/";

    /// The verdict by the full lenient reading, as `classify` gave it before the fast path.
    fn classify_slow(path: &str, prefix: &str) -> PathVerdict {
        let bare = prefix.trim_end_matches('/');
        if path.starts_with(prefix) || path == bare {
            return PathVerdict::Owned;
        }
        if !path.starts_with('/') {
            return PathVerdict::Refuse;
        }
        let lenient = lenient_reading(path);
        let prefix_lc = prefix.to_ascii_lowercase();
        if lenient.starts_with(&prefix_lc) || lenient == prefix_lc.trim_end_matches('/') {
            return PathVerdict::Refuse;
        }
        PathVerdict::Forward
    }

    #[test]
    fn routes_are_read_as_a_lenient_vms_routes_them() {
        for p in [
            "/Account/Login",
            "/account/login",
            "/ACCOUNT/LOGIN",
            "/Account/Login/",
            "//Account/Login",
            "/Account//Login",
            "/Account/./Login",
            "/x/../Account/Login",
            "/Account;a=b/Login;jsessionid=1",
            "/Account%2fLogin",
            "/Account%252FLogin",
            "/Account\\Login",
            "/%41ccount/Login",
            "/Account/Login.",
        ] {
            assert_eq!(route_reading(p, true), "/account/login", "{p}");
        }
        assert_eq!(route_reading("/Account/Login/", false), "/Account/Login");
        assert_ne!(route_reading("/account/login", false), "/Account/Login");
        assert_ne!(route_reading("/Account/Logon", true), "/account/login");
        assert_eq!(route_reading("/", true), "/");
        assert_eq!(route_reading("//", true), "/");
        // Letters that fold to ASCII only one way round (long s, Kelvin sign).
        assert_eq!(
            route_reading("/acco\u{17f}nt", true),
            route_reading("/ACCOSNT", true)
        );
        assert_eq!(route_reading("/\u{212a}ate", true), "/kate");
    }

    #[test]
    fn plain_paths_read_as_their_lower_case() {
        for p in [
            "/",
            "/app/orders",
            "/App/Orders/",
            "/static/app.v2.js",
            "/a-b_c~d/e!f",
        ] {
            assert!(is_plain(p), "{p}");
            assert_eq!(lenient_reading(p), p.to_ascii_lowercase(), "{p}");
        }
        for p in [
            "/a//b", "/a/./b", "/a/../b", "/.x", "/x.", "/x./y", "/%2e", "/a\\b", "/a;b",
        ] {
            assert!(!is_plain(p), "{p}");
        }
    }

    #[test]
    fn the_fast_path_agrees_with_the_full_reading() {
        let parts = [
            "", "/", ".", "..", "mfa", ".mfa", ".MFA", "x", "%2e", ";p", "\\", "a.", "MFA-GW",
        ];
        for prefix in ["/.mfa/", "/mfa-gw/"] {
            for a in parts {
                for b in parts {
                    for c in parts {
                        let path = format!("/{a}{b}/{c}");
                        assert_eq!(
                            classify(&path, prefix),
                            classify_slow(&path, prefix),
                            "{path} under {prefix}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_prefix_as_written_is_owned() {
        for p in [
            "/.mfa/health",
            "/.mfa/",
            "/.mfa",
            "/.mfa/../x",
            "/.mfa/nope",
        ] {
            assert_eq!(classify(p, P), PathVerdict::Owned, "{p}");
        }
    }

    #[test]
    fn disguised_prefixes_are_refused() {
        for p in [
            "//.mfa/health",
            "/%2emfa/health",
            "/%2Emfa/health",
            "/.MFA/health",
            "/.Mfa",
            "/.mfa%2fhealth",
            "/.mfa%2Fhealth",
            "/.mfa%5chealth",
            "/.mfa;x=1/health",
            "/x/../.mfa/health",
            "/./.mfa/verify",
            "/%252emfa/health",
            "/.mfa./health",
            "/.mfa%20/health",
            "///.mfa",
        ] {
            assert_eq!(classify(p, P), PathVerdict::Refuse, "{p}");
        }
    }

    #[test]
    fn other_targets_are_refused() {
        for p in ["*", "", "localhost:443", "x/y"] {
            assert_eq!(classify(p, P), PathVerdict::Refuse, "{p:?}");
        }
    }

    #[test]
    fn ordinary_paths_are_forwarded() {
        for p in [
            "/",
            "/login",
            "/home",
            "/a//b",
            "/x/../y",
            "/files/%2e%2e/z",
            "/mfa/health",
            "/.mfax/health",
            "/.mfa-old/x",
            "/x/.mfa/health",
            "/%ff%fe",
            "/login;jsessionid=1",
        ] {
            assert_eq!(classify(p, P), PathVerdict::Forward, "{p}");
        }
    }

    #[test]
    fn lenient_reading_resolves_what_servers_resolve() {
        assert_eq!(lenient_reading("/a/./b/../c//d;x=1/"), "/a/c/d/");
        assert_eq!(lenient_reading("/../../"), "/");
        assert_eq!(lenient_reading("/A%2FB"), "/a/b");
        assert_eq!(lenient_reading("/%2525252e"), "/%2e");
    }
}
