//! Property tests for removing session parameters from URLs.
//!
//! For any path and query built from segments, `;` parameters and `&` pairs (some of them
//! session parameters in any case or percent-encoded), the stripped URL holds no session
//! parameter under the most lenient reading, keeps every other segment, parameter and pair
//! byte for byte and in order, and is left alone when there was nothing to remove.
//!
//! For any path of plain segments, ASP.NET cookieless segments (`(S(x)F(y))`, any letter
//! case, parentheses as written, percent-encoded once or twice or as `%uXXXX`) and segments
//! that only start like one (cut short, with a trailing character, with an encoded `/`), a
//! path with such a near miss is refused, and otherwise exactly the cookieless segments go.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;

use super::{SessionParams, decode};

fn params() -> SessionParams {
    SessionParams::new(["jsessionid", "VMSSESSION"], ["VMSSESSION"])
}

fn is_session(name: &str) -> bool {
    let decoded = String::from_utf8_lossy(&decode(name.as_bytes())).to_ascii_lowercase();
    decoded == "jsessionid" || decoded == "vmssession"
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("jsessionid".to_string()),
        Just("JSESSIONID".to_string()),
        Just("%6Asessionid".to_string()),
        Just("VmsSession".to_string()),
        Just("jsessionid2".to_string()),
        "[a-z%+]{0,6}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    "[A-Za-z0-9%.+-]{0,8}"
}

/// A parameter or pair: name, with or without `=value`.
fn param() -> impl Strategy<Value = String> {
    (name(), proptest::option::of(value())).prop_map(|(n, v)| match v {
        Some(v) => format!("{n}={v}"),
        None => n,
    })
}

fn segment() -> impl Strategy<Value = (String, Vec<String>)> {
    ("[a-z0-9.]{0,6}", proptest::collection::vec(param(), 0..3))
}

fn path_text(segments: &[(String, Vec<String>)]) -> String {
    let mut p = String::new();
    for (base, params) in segments {
        p.push('/');
        p.push_str(base);
        for param in params {
            p.push(';');
            p.push_str(param);
        }
    }
    if p.is_empty() {
        p.push('/');
    }
    p
}

fn param_name(p: &str) -> &str {
    p.split('=').next().unwrap_or(p)
}

proptest! {
    #[test]
    fn only_session_parameters_go(
        segments in proptest::collection::vec(segment(), 0..4),
        pairs in proptest::option::of(proptest::collection::vec(param(), 0..4)),
    ) {
        let path = path_text(&segments);
        let query = pairs.as_ref().map(|p| p.join("&"));
        let had = segments.iter().flat_map(|(_, ps)| ps).any(|p| is_session(param_name(p)))
            || pairs.iter().flatten().any(|p| !p.is_empty() && is_session(param_name(p)));
        let out = params().strip(&path, query.as_deref()).unwrap();
        prop_assert_eq!(out.is_some(), had, "{} {:?} -> {:?}", path, query, out);

        let Some(out) = out else { return Ok(()) };
        // Nothing left to remove.
        let (out_path, out_query) = match out.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (out.clone(), None),
        };
        prop_assert_eq!(params().strip(&out_path, out_query.as_deref()), Ok(None));
        // Everything else kept, in order.
        let kept_segments: Vec<(String, Vec<String>)> = segments
            .iter()
            .map(|(b, ps)| {
                (b.clone(), ps.iter().filter(|p| !is_session(param_name(p))).cloned().collect())
            })
            .collect();
        prop_assert_eq!(&out_path, &path_text(&kept_segments));
        // The query as a server splits it (an empty query is one empty pair); a pair that is
        // empty or not a session parameter stays, and no pair left means no `?` at all.
        let kept_pairs: Vec<&str> = query
            .as_deref()
            .map(|q| q.split('&').filter(|p| p.is_empty() || !is_session(param_name(p))).collect())
            .unwrap_or_default();
        if kept_pairs.is_empty() {
            prop_assert_eq!(out_query, None);
        } else {
            prop_assert_eq!(out_query, Some(kept_pairs.join("&")));
        }
    }
}

/// A path segment of a generated URL, and what it is.
#[derive(Debug, Clone)]
enum Seg {
    Plain(String),
    /// A cookieless segment, in some spelling.
    Form(String),
    /// Starts like a cookieless segment without being one in every reading.
    NearMiss(String),
}

fn form() -> impl Strategy<Value = String> {
    proptest::collection::vec(("[SFAXsfa]", "[a-z0-9]{0,4}"), 1..4).prop_map(|pairs| {
        let inner: String = pairs.iter().map(|(l, v)| format!("{l}({v})")).collect();
        format!("({inner})")
    })
}

/// How a segment is spelled: as is, its parentheses percent-encoded (once, twice, or as
/// `%uXXXX`), in upper or lower case hex.
fn spell(raw: &str, how: u8) -> String {
    let (open, close) = match how % 5 {
        0 => return raw.to_string(),
        1 => ("%28", "%29"),
        2 => ("%2528", "%2529"),
        3 => ("%u0028", "%u0029"),
        _ => ("%28", "%29"),
    };
    let s = raw.replace('(', open).replace(')', close);
    if how % 5 == 4 { s.to_lowercase() } else { s }
}

fn seg() -> impl Strategy<Value = Seg> {
    prop_oneof![
        3 => "[a-z0-9._-]{1,6}".prop_map(Seg::Plain),
        2 => (form(), any::<u8>()).prop_map(|(f, how)| Seg::Form(spell(&f, how))),
        1 => (form(), any::<u8>(), 0u8..4).prop_map(|(f, how, miss)| {
            let broken = match miss {
                0 => f.get(..f.len() - 1).unwrap_or_default().to_string(),
                1 => format!("{f}x"),
                2 => format!("{f}%2Fa"),
                _ => f.replacen(')', "%2F)", 1),
            };
            Seg::NearMiss(spell(&broken, how))
        }),
    ]
}

proptest! {
    #[test]
    fn cookieless_segments_go_and_ambiguous_ones_are_refused(
        segs in proptest::collection::vec(seg(), 1..5),
    ) {
        let path: String = segs
            .iter()
            .map(|s| match s {
                Seg::Plain(t) | Seg::Form(t) | Seg::NearMiss(t) => format!("/{t}"),
            })
            .collect();
        let out = params().strip(&path, None);
        if segs.iter().any(|s| matches!(s, Seg::NearMiss(_))) {
            prop_assert_eq!(out, Err(super::Ambiguous), "{}", path);
            return Ok(());
        }
        let kept: Vec<&str> = segs
            .iter()
            .filter_map(|s| match s {
                Seg::Plain(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        if kept.len() == segs.len() {
            prop_assert_eq!(out, Ok(None), "{}", path);
        } else {
            let want = format!("/{}", kept.join("/"));
            prop_assert_eq!(out.clone(), Ok(Some(want)), "{}", path);
            let again = out.ok().flatten().unwrap_or_default();
            prop_assert_eq!(params().strip(&again, None), Ok(None));
        }
    }
}
