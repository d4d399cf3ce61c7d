//! Property test of the gate: whatever mix of cookie headers a client sends (HTTP/2 crumbs,
//! names in other cases or with `$`, quoted values, duplicates, approvals of other sessions
//! and users, garbage), the `Cookie` headers the VMS receives carry a session value only when
//! the gate approved exactly that session, for the user its approval names; and every reading
//! a lenient VMS could make of those headers finds only that session.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::{HeaderMap, HeaderValue, header};
use proptest::prelude::*;

use super::Gate;
use crate::gate::approval::{APPROVAL_COOKIE, Approval, session_hash};
use crate::policy::MfaState;
use crate::proxy::testing::{NOW, gateway};

const ALICE_SESSION: &str = "alice-s3ss";
const BOB_SESSION: &str = "bob-s3ss";

fn approval(user: &str, session: &str) -> Approval {
    let names = vec!["VMSSESSION".to_string()];
    Approval {
        issued: NOW - 60,
        expires: NOW + 3600,
        mfa_passed: true,
        state: MfaState::Enforced,
        session_hash: session_hash(&names, |_| Some(session)).unwrap(),
        role: "customer".into(),
        user: user.into(),
        epoch: 0,
        id: Some([u8::try_from(user.len()).unwrap(); 16]),
    }
}

/// One `name=value` crumb of a `Cookie` header.
#[derive(Debug, Clone)]
enum Crumb {
    Session(&'static str, &'static str),
    Approval(&'static str, &'static str),
    Other(String),
}

fn crumb() -> impl Strategy<Value = Crumb> {
    let session_name = prop_oneof![
        Just("VMSSESSION"),
        Just("vmssession"),
        Just("$VMSSESSION"),
        Just(" VMSSESSION"),
        Just("VMSSESSION "),
        Just("\"VMSSESSION\""),
        Just("VMS%53ESSION"),
    ];
    let value = prop_oneof![
        Just(ALICE_SESSION),
        Just(BOB_SESSION),
        Just("\"alice-s3ss\""),
        Just("stolen"),
        Just(""),
    ];
    prop_oneof![
        (session_name, value).prop_map(|(n, v)| Crumb::Session(n, v)),
        // Approvals as the gateway issues them: each bound to its own user's session.
        prop_oneof![
            Just(Crumb::Approval("alice", ALICE_SESSION)),
            Just(Crumb::Approval("bob", BOB_SESSION)),
        ],
        "[a-z_]{1,6}=[a-z0-9,;\"]{0,6}".prop_map(Crumb::Other),
    ]
}

/// Every value a lenient server could take for the session cookie: split on `;` and `,`,
/// names trimmed, unquoted, percent-decoded, `$`-stripped and compared without case.
fn lenient_sessions(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([';', ',']))
        .filter_map(|part| {
            let (name, value) = part.split_once('=')?;
            let name = name.trim().trim_matches('"');
            let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
            name.trim_start_matches('$')
                .eq_ignore_ascii_case("vmssession")
                .then(|| value.trim().trim_matches('"').to_string())
        })
        .filter(|v| !v.is_empty())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn only_the_approved_users_own_session_reaches_the_vms(
        fields in proptest::collection::vec(proptest::collection::vec(crumb(), 0..5), 0..4),
    ) {
        let gw = gateway();
        let mut h = HeaderMap::new();
        for field in &fields {
            let text = field
                .iter()
                .map(|c| match c {
                    Crumb::Session(n, v) => format!("{n}={v}"),
                    Crumb::Approval(u, s) => {
                        format!("{APPROVAL_COOKIE}={}", approval(u, s).seal(&gw.keys))
                    }
                    Crumb::Other(o) => o.clone(),
                })
                .collect::<Vec<_>>()
                .join("; ");
            if let Ok(v) = HeaderValue::from_str(&text) {
                h.append(header::COOKIE, v);
            }
        }
        // Twice: the second time through the per-thread memo of whole headers.
        for round in 0..2 {
            let mut sent = h.clone();
            let gate = gw.gate(&mut sent, NOW + round);
            let seen = lenient_sessions(&sent);
            if seen.is_empty() {
                continue;
            }
            let Gate::Approved(a) = &gate else {
                panic!("a session reached the VMS without an approval: {seen:?} from {h:?}");
            };
            let own = match a.user.as_str() {
                "alice" => ALICE_SESSION,
                "bob" => BOB_SESSION,
                other => panic!("approval of an unknown user {other}"),
            };
            prop_assert!(
                seen.iter().all(|v| v == own),
                "{} approved, VMS could read {seen:?} from {h:?}", a.user
            );
            prop_assert!(sent.get_all(header::COOKIE).iter().count() <= 1);
        }
    }
}
