//! The extractors on their own: form limits, CSRF binding, signed-in user and administrator.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use http_body_util::Full;

use super::*;
use crate::gate::approval::{APPROVAL_COOKIE, session_hash};
use crate::policy::MfaState;
use crate::proxy::testing::{NOW, gateway};

const SESSION: &str = "s3ss10n";

fn approval(user: &str, role: &str, mfa_passed: bool) -> Approval {
    let names = vec!["VMSSESSION".to_string()];
    Approval {
        issued: NOW - 60,
        expires: NOW + 3600,
        mfa_passed,
        state: MfaState::Enforced,
        session_hash: session_hash(&names, |_| Some(SESSION)).unwrap(),
        role: role.into(),
        user: user.into(),
        epoch: 0,
        id: Some([7; 16]),
    }
}

fn headers_with(gw: &Gateway, a: Option<&Approval>) -> HeaderMap {
    let mut h = HeaderMap::new();
    let cookie = match a {
        Some(a) => format!(
            "VMSSESSION={SESSION}; {APPROVAL_COOKIE}={}",
            a.seal(&gw.keys)
        ),
        None => format!("VMSSESSION={SESSION}"),
    };
    h.insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
    h
}

fn call<'a>(gw: &'a Gateway, headers: HeaderMap) -> Call<'a> {
    Call {
        gw,
        lang: Lang::En,
        now: NOW,
        client: "192.0.2.7".into(),
        method: Method::GET,
        uri: Uri::from_static("/.mfa/admin/"),
        headers,
    }
}

fn status(e: GatewayError) -> StatusCode {
    e.status()
}

fn refused_status(h: Halt) -> StatusCode {
    match h {
        Halt::Refused(r) => r.status(),
        Halt::Failed(e) => panic!("an error instead of a refusal page: {e}"),
    }
}

/// A body that breaks off.
struct Broken;

impl http_body::Body for Broken {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::other("reset"))))
    }
}

// === Form ===

#[tokio::test]
async fn a_form_is_read_with_its_fields() {
    let f = Form::read(Full::new(Bytes::from_static(
        b"csrf=k1.abc&code=123+456&user=a%26b&code=second",
    )))
    .await
    .unwrap();
    assert_eq!(f.get("csrf"), Some("k1.abc"));
    assert_eq!(f.get("code"), Some("123 456"), "the first value counts");
    assert_eq!(f.get("user"), Some("a&b"));
    assert_eq!(f.get("missing"), None);
}

#[tokio::test]
async fn a_missing_form_is_empty_and_fails_its_csrf_check() {
    let gw = gateway();
    let f = Form::read(Full::new(Bytes::new())).await.unwrap();
    assert_eq!(f.get("csrf"), None);
    assert_eq!(Csrf::challenge(&gw, "ch-1").check(&f), Err(BadCsrf));
}

#[tokio::test]
async fn an_oversized_form_is_413_at_one_byte_over_the_limit() {
    let at = Form::read(Full::new(Bytes::from(vec![b'a'; MAX_FORM_BYTES]))).await;
    assert!(at.is_ok(), "the limit itself is allowed");
    let over = Form::read(Full::new(Bytes::from(vec![b'a'; MAX_FORM_BYTES + 1])))
        .await
        .unwrap_err();
    assert_eq!(status(over), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_form_that_breaks_off_is_400() {
    let e = Form::read(Broken).await.unwrap_err();
    assert_eq!(status(e), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_malformed_form_reads_as_wrong_values_never_as_a_valid_token() {
    let gw = gateway();
    let id = "ch-1";
    let good = Csrf::challenge(&gw, id).token();
    // Invalid UTF-8 and broken escapes in the token: it simply does not verify.
    let mut body = b"csrf=".to_vec();
    body.extend_from_slice(good.as_bytes());
    body.extend_from_slice(b"\xff%zz&=&&code");
    let f = Form::read(Full::new(Bytes::from(body))).await.unwrap();
    assert_eq!(Csrf::challenge(&gw, id).check(&f), Err(BadCsrf));
}

// === Query ===

#[test]
fn query_parameters_are_decoded_and_missing_ones_are_none() {
    let q = Query::of(&Uri::from_static(
        "/.mfa/admin/user?u=a%20b&done=reset&u=second",
    ));
    assert_eq!(q.get("u"), Some("a b"));
    assert_eq!(q.get("done"), Some("reset"));
    assert_eq!(q.get("q"), None);
    assert_eq!(Query::of(&Uri::from_static("/.mfa/admin/")).get("q"), None);
}

// === CSRF ===

async fn form_with(token: &str) -> Form {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf", token)
        .finish();
    Form::read(Full::new(Bytes::from(body))).await.unwrap()
}

#[tokio::test]
async fn a_challenge_token_is_bound_to_its_challenge() {
    let gw = gateway();
    let t = Csrf::challenge(&gw, "ch-1").token();
    assert_eq!(
        Csrf::challenge(&gw, "ch-1").check(&form_with(&t).await),
        Ok(())
    );
    assert_eq!(
        Csrf::challenge(&gw, "ch-2").check(&form_with(&t).await),
        Err(BadCsrf)
    );
    for bad in ["", "garbage", "k1.", "k1.AAAA", "k9.AAAA"] {
        assert_eq!(
            Csrf::challenge(&gw, "ch-1").check(&form_with(bad).await),
            Err(BadCsrf),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn a_session_token_is_bound_to_its_session_and_its_page_kind() {
    let gw = gateway();
    let mut a = approval("alice", "msp", true);
    a.id = Some([1; 16]);
    // Another sign-in of the same user: another approval.
    let mut other = a.clone();
    other.session_hash = [9; 16];
    other.id = Some([2; 16]);
    let t = Csrf::session(&gw, CsrfScope::Admin, &a).token();
    let f = form_with(&t).await;
    assert_eq!(Csrf::session(&gw, CsrfScope::Admin, &a).check(&f), Ok(()));
    assert_eq!(
        Csrf::session(&gw, CsrfScope::Admin, &other).check(&f),
        Err(BadCsrf),
        "another session"
    );
    // The VMS renewed the session cookie (sliding expiration): the approval, and an open
    // page's token with it, carries on.
    let mut renewed = a.clone();
    renewed.session_hash = [7; 16];
    assert_eq!(
        Csrf::session(&gw, CsrfScope::Admin, &renewed).check(&f),
        Ok(()),
        "a renewal"
    );
    // An approval from before identities: bound to its session.
    let mut legacy = a.clone();
    legacy.id = None;
    let lt = form_with(&Csrf::session(&gw, CsrfScope::Admin, &legacy).token()).await;
    let mut legacy_other = legacy.clone();
    legacy_other.session_hash = [9; 16];
    assert_eq!(
        Csrf::session(&gw, CsrfScope::Admin, &legacy).check(&lt),
        Ok(())
    );
    assert_eq!(
        Csrf::session(&gw, CsrfScope::Admin, &legacy_other).check(&lt),
        Err(BadCsrf),
        "another session, before identities"
    );
    assert_eq!(
        Csrf::session(&gw, CsrfScope::Account, &a).check(&f),
        Err(BadCsrf),
        "the account page's forms"
    );
    assert_eq!(
        Csrf::challenge(&gw, "alice").check(&f),
        Err(BadCsrf),
        "a challenge's forms"
    );
    assert_eq!(
        Csrf::session(&gw, CsrfScope::Admin, &a).check(&Form::default()),
        Err(BadCsrf),
        "no token"
    );
}

// === Signed-in user and administrator ===

#[test]
fn the_signed_in_user_is_the_approved_session() {
    let gw = gateway();
    let a = approval("alice", "customer", true);
    let h = headers_with(&gw, Some(&a));
    assert_eq!(
        signed_in(&gw, &h, NOW).map(|a| a.user),
        Some("alice".into())
    );
    assert!(user(&call(&gw, h)).is_ok());
}

#[test]
fn without_a_valid_approval_the_user_is_refused_with_403() {
    let gw = gateway();
    let a = approval("alice", "customer", true);
    // No approval; an approval of another session; a forged one; an expired one.
    let mut other = a.clone();
    other.session_hash = [9; 16];
    let mut forged = headers_with(&gw, None);
    forged.insert(
        header::COOKIE,
        HeaderValue::from_str(&format!("VMSSESSION={SESSION}; {APPROVAL_COOKIE}=x.k1.y")).unwrap(),
    );
    for (what, h, now) in [
        ("none", headers_with(&gw, None), NOW),
        ("other session", headers_with(&gw, Some(&other)), NOW),
        ("forged", forged, NOW),
        ("expired", headers_with(&gw, Some(&a)), NOW + 3601),
    ] {
        assert!(signed_in(&gw, &h, now).is_none(), "{what}");
        let mut c = call(&gw, h);
        c.now = now;
        let refused = user(&c).expect_err(what);
        assert_eq!(refused_status(refused), StatusCode::FORBIDDEN, "{what}");
    }
}

async fn denials(gw: &Gateway) -> Vec<String> {
    gw.store
        .audit_recent(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.contains("admin_access_denied"))
        .collect()
}

#[tokio::test]
async fn an_administrator_needs_an_admin_role_and_mfa_in_this_session() {
    let gw = gateway();
    let role = gw.cfg.admin.roles.first().cloned().expect("an admin role");
    let ok = approval("root", &role, true);
    let got = admin(&call(&gw, headers_with(&gw, Some(&ok))))
        .await
        .expect("admin");
    assert_eq!(got.user, "root");
    assert!(denials(&gw).await.is_empty());
    for (what, a, who) in [
        ("anonymous", None, "anonymous"),
        (
            "no MFA in this session",
            Some(approval("root", &role, false)),
            "root",
        ),
        (
            "not an admin role",
            Some(approval("carol", "customer", true)),
            "carol",
        ),
    ] {
        let before = denials(&gw).await.len();
        let h = headers_with(&gw, a.as_ref());
        let refused = admin(&call(&gw, h)).await.expect_err(what);
        assert_eq!(refused_status(refused), StatusCode::FORBIDDEN, "{what}");
        let d = denials(&gw).await;
        assert_eq!(d.len(), before + 1, "{what}: audited once");
        assert!(
            d[0].contains(who) && d[0].contains("path=/.mfa/admin/") && d[0].contains("192.0.2.7"),
            "{what}: {}",
            d[0]
        );
    }
}
