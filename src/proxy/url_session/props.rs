//! Property tests for removing session parameters from URLs.
//!
//! For any path and query built from segments, `;` parameters and `&` pairs (some of them
//! session parameters in any case or percent-encoded), the stripped URL holds no session
//! parameter under the most lenient reading, keeps every other segment, parameter and pair
//! byte for byte and in order, and is left alone when there was nothing to remove.

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
