//! Property tests for rewriting the `Cookie` request header.
//!
//! The gate removes the VMS session cookie of unapproved requests and the gateway's own
//! cookies from every request. For any set of cookies spread over any number of header
//! fields, a removed name must be gone completely, and every other cookie must reach the VMS
//! unchanged and in order. For the session cookie "gone" is judged by the most lenient
//! reading a server might apply (commas, case, percent-encoding, quotes), and an approved
//! session must arrive alone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::header::{COOKIE, HeaderMap, HeaderValue};
use proptest::prelude::*;

use super::{filter_for_upstream, remove_request_cookies, request_cookie, request_cookies};

fn cookie() -> impl Strategy<Value = (String, String)> {
    (
        prop_oneof![
            Just("VMSSESSION".to_string()),
            Just("__Host-mfagw".to_string()),
            Just("__Host-mfagw-ch".to_string()),
            "[A-Za-z0-9_-]{1,12}",
        ],
        "[A-Za-z0-9!#$%&'()*+./:<>?@\\[\\]^_`{|}~-]{0,24}",
    )
}

fn removed(name: &str) -> bool {
    name == "VMSSESSION" || name.starts_with("__Host-mfagw")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn removal_is_complete_and_keeps_the_rest_verbatim(
        cookies in prop::collection::vec(cookie(), 0..12),
        splits in prop::collection::vec(any::<bool>(), 12),
        tight in any::<bool>(),
    ) {
        let sep = if tight { ";" } else { "; " };
        let mut fields: Vec<Vec<String>> = vec![Vec::new()];
        for (i, (n, v)) in cookies.iter().enumerate() {
            if i > 0 && splits[i] {
                fields.push(Vec::new());
            }
            fields.last_mut().unwrap().push(format!("{n}={v}"));
        }
        let mut h = HeaderMap::new();
        for f in fields.iter().filter(|f| !f.is_empty()) {
            h.append(COOKIE, HeaderValue::from_str(&f.join(sep)).unwrap());
        }
        let first_session = cookies.iter().find(|(n, _)| n == "VMSSESSION").map(|(_, v)| v.as_str());
        prop_assert_eq!(request_cookie(&h, "VMSSESSION"), first_session);

        let n = remove_request_cookies(&mut h, removed);
        prop_assert_eq!(n, cookies.iter().filter(|(n, _)| removed(n)).count());
        let left: Vec<(String, String)> = request_cookies(&h)
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let kept: Vec<(String, String)> = cookies.iter().filter(|(n, _)| !removed(n)).cloned().collect();
        prop_assert_eq!(left, kept);
        prop_assert!(h.get_all(COOKIE).iter().count() <= 1);
    }

    #[test]
    fn arbitrary_header_bytes_never_smuggle_a_removed_cookie(
        bytes in prop::collection::vec(prop_oneof![0x20u8..0x7f, 0x80u8..=0xff, Just(b'\t')], 0..120),
    ) {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_bytes(&bytes).unwrap());
        h.append(COOKIE, HeaderValue::from_static("VMSSESSION=s"));
        remove_request_cookies(&mut h, removed);
        prop_assert!(request_cookies(&h).all(|(n, _)| !removed(n)));
        prop_assert!(h.get_all(COOKIE).iter().all(|v| v.to_str().is_ok()));
    }
}

/// Session values a lenient server would find: split on `;` and `,`, names unquoted,
/// percent-decoded, without `$`, compared ignoring case.
fn lenient_sessions(h: &HeaderMap) -> Vec<String> {
    h.get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([';', ',']))
        .filter_map(|part| {
            let (name, value) = part.split_once('=')?;
            let name = name.trim().trim_matches('"');
            let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
            name.trim_start_matches('$')
                .eq_ignore_ascii_case("VMSSESSION")
                .then(|| value.trim().to_string())
        })
        .collect()
}

fn disguised() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("VMSSESSION=s1".to_string()),
        Just("VMSSESSION=s2".to_string()),
        Just("vmssession=d1".to_string()),
        Just("VMS%53ESSION=d2".to_string()),
        Just("\"VMSSESSION\"=d3".to_string()),
        Just("$VMSSESSION=d4".to_string()),
        Just("a=1, VMSSESSION=d5".to_string()),
        Just("VMSSESSION=s3,VMSSESSION=d6".to_string()),
        Just("VMSSESSION".to_string()),
        Just("__Host-mfagw=x".to_string()),
        "[a-z]{1,6}=[a-z0-9]{0,6}",
        "[a-z]{1,6}=\"[a-z ,]{0,6}\"",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn only_an_approved_session_reaches_the_vms_and_it_arrives_alone(
        pairs in prop::collection::vec(disguised(), 0..10),
        splits in prop::collection::vec(any::<bool>(), 10),
        keep in any::<bool>(),
    ) {
        let mut fields: Vec<Vec<&str>> = vec![Vec::new()];
        for (i, p) in pairs.iter().enumerate() {
            if i > 0 && splits[i] {
                fields.push(Vec::new());
            }
            fields.last_mut().unwrap().push(p);
        }
        let mut h = HeaderMap::new();
        for f in fields.iter().filter(|f| !f.is_empty()) {
            h.append(COOKIE, HeaderValue::from_str(&f.join("; ")).unwrap());
        }
        let approved = request_cookie(&h, "VMSSESSION").map(str::to_string);
        let harmless: Vec<(String, String)> = request_cookies(&h)
            .filter(|(n, v)| {
                n.bytes().all(|b| b.is_ascii_lowercase()) && n.len() <= 6 && !v.contains("VMSSESSION")
            })
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();

        filter_for_upstream(&mut h, &["VMSSESSION".to_string()], keep);

        let seen = lenient_sessions(&h);
        match (&approved, keep) {
            (Some(v), true) if !v.contains(',') => prop_assert_eq!(seen, vec![v.clone()]),
            _ => prop_assert!(seen.is_empty(), "{:?}", seen),
        }
        prop_assert!(request_cookie(&h, "__Host-mfagw").is_none());
        let left: Vec<(String, String)> = request_cookies(&h)
            .filter(|(n, _)| *n != "VMSSESSION")
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        prop_assert_eq!(left, harmless);
    }
}

/// Found by the `cookies` fuzz target: a comma inside the approved value. A reader that also
/// splits on commas sees only the part before it; nothing else reaches the VMS.
#[test]
fn a_comma_inside_an_approved_value_adds_no_other_session() {
    let mut h = HeaderMap::new();
    h.insert(COOKIE, HeaderValue::from_static("VMSSESSION=abck1.,A"));
    filter_for_upstream(&mut h, &["VMSSESSION".to_string()], true);
    assert_eq!(request_cookie(&h, "VMSSESSION"), Some("abck1.,A"));
    assert_eq!(lenient_sessions(&h), vec!["abck1.".to_string()]);
    let mut h = HeaderMap::new();
    h.insert(
        COOKIE,
        HeaderValue::from_static("VMSSESSION=abc.\t\t,)XiXAAAAIDA"),
    );
    filter_for_upstream(&mut h, &["VMSSESSION".to_string()], true);
    assert_eq!(lenient_sessions(&h), vec!["abc.".to_string()]);
    let mut h = HeaderMap::new();
    h.insert(
        COOKIE,
        HeaderValue::from_static("VMSSESSION=abck1.,VMSSESSION=x"),
    );
    filter_for_upstream(&mut h, &["VMSSESSION".to_string()], true);
    assert!(lenient_sessions(&h).is_empty());
}
