//! A withheld login: the VMS response that grants a session, kept until the user passes the
//! MFA step, and what the step needs (which page, the pending enrollment secret).
//!
//! ```text
//!   VMS login ok ──► Challenge{step} sealed in the store (TTL) ──► 303 to the step's page
//!                    │                                             with the challenge cookie
//!                    ├─ Offer ──"set up"──► Enroll ──code ok──► release (approved, MFA)
//!                    │        └─"not now"──────────────────────► release (approved, no MFA)
//!                    ├─ Enroll ──"postpone" (grace)────────────► release (approved, no MFA)
//!                    │        └─"cancel" (opt-in only, as "not now")► release (approved, no MFA)
//!                    ├─ Verify ──code ok───────────────────────► release (approved, MFA)
//!                    │        └─recovery code ok──► Notice ──"continue"──► release (approved, MFA)
//!                    └─ (after Enroll, when the policy gives recovery codes)
//!                       Recovery (codes shown once) ──"continue"──► release (approved, MFA)
//!   Recovery and Notice may also finish at the self-service page ("settings"): the VMS
//!   answer's cookies are released on a 303 there instead of the answer itself.
//!   TTL passes ──► nothing is released; the sweeper ends the withheld VMS session
//!   (an Enroll step's TTL is mfa.enrollment_ttl, the others' mfa.challenge_ttl)
//! ```
//!
//! The record is sealed (AES-256-GCM) under a key derived from the gateway key ring **and the
//! random challenge id**, which exists only in the client's cookie; the store holds it under
//! a hash of that id. Someone who can read Redis therefore cannot recover a withheld session.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

use crate::auth::crypto::{self, KeyRing, Purpose};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Verify,
    Enroll,
    /// The one-time enrollment code an MSP gave after a reset, typed before the pairing.
    EnrollmentCode,
    Offer,
    /// After enrollment: the new recovery codes are shown once.
    Recovery,
    /// After a recovery code was used: how many remain.
    Notice,
    /// Setting up a passkey: the role's methods count passkeys only and the user has none.
    Passkey,
}

/// The VMS response, exactly as received (minus hop-by-hop headers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withheld {
    pub status: u16,
    /// Header name and base64url value, in order (every `Set-Cookie` kept separate).
    pub headers: Vec<(String, String)>,
    /// Base64url body.
    pub body: String,
}

impl Withheld {
    pub fn capture(parts: &http::response::Parts, body: &[u8]) -> Self {
        Self {
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().to_string(), B64.encode(v.as_bytes())))
                .collect(),
            body: B64.encode(body),
        }
    }

    /// Rebuilds the response. Fails (None) only if the record was tampered with.
    pub fn rebuild(&self) -> Option<(http::StatusCode, http::HeaderMap, Vec<u8>)> {
        let status = http::StatusCode::from_u16(self.status).ok()?;
        let mut headers = http::HeaderMap::with_capacity(self.headers.len());
        for (n, v) in &self.headers {
            let name = http::HeaderName::from_bytes(n.as_bytes()).ok()?;
            let value = http::HeaderValue::from_bytes(&B64.decode(v).ok()?).ok()?;
            headers.append(name, value);
        }
        Some((status, headers, B64.decode(&self.body).ok()?))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Challenge {
    pub user: String,
    pub role: String,
    /// Policy state (none/available/enforced) that applied at login.
    pub state: String,
    pub step: Step,
    pub can_postpone: bool,
    pub created: u64,
    pub expires: u64,
    /// Client address, when challenges are bound to it.
    pub client: Option<String>,
    /// The enrollment secret shown to the user (base64url), until confirmed.
    pub pending_secret: Option<String>,
    /// Entry in the store's pending set (to end the VMS session if this expires).
    pub pending_member: Option<String>,
    pub session_hash: [u8; 16],
    pub response: Withheld,
    /// Recovery codes to show once (step `Recovery`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
    /// Recovery codes left after one was used (step `Notice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_remaining: Option<usize>,
    /// The user's revocation epoch read with the user's state at login; the approval carries
    /// it (see `revocation`). 0 in challenges made before epochs existed: the most
    /// conservative value (any live user revocation ends the approval).
    #[serde(default)]
    pub epoch: u64,
    /// The pending secret shown is a new one in place of an earlier one that was shown and
    /// never confirmed: the page tells the user to delete that entry from the app.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending_replaced: bool,
    /// A login posted by a script (`[[vms.login]] posted_by = "script"`): after the MFA step
    /// the browser is sent here with the VMS's cookies, instead of the answer the script got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landing: Option<String>,
    /// After the right one-time enrollment code: the ticket (random) whose hash the store
    /// noted with the code's use; only an enrollment carrying it may pair an app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_ticket: Option<String>,
    /// The second factors the policy counted for the role at login (codes only in challenges
    /// made before passkeys existed).
    #[serde(default)]
    pub methods: crate::policy::MfaMethods,
    /// The user postponed setting up a passkey (grace) and signs in with the app's code
    /// this once, although the role's methods no longer count codes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub code_in_grace: bool,
    /// A first enrollment under `mfa.first_enrollment = "email_code"`: where its e-mailed
    /// code stands (`mfa::email_code`). `None`: no code is asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_check: Option<EmailCheck>,
}

impl Challenge {
    /// Whether a code from the app signs in (recovery codes always do).
    pub fn takes_app_codes(&self) -> bool {
        self.methods.totp || self.code_in_grace
    }
}

/// Where the e-mailed code of a first enrollment stands, for one sign-in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailCheck {
    /// A code was sent for this sign-in (reloading the page does not send another).
    #[serde(default)]
    pub sent: bool,
    /// The right code was typed: the QR code may be shown.
    #[serde(default)]
    pub confirmed: bool,
}

/// A fresh random challenge id (what the cookie holds).
pub fn new_id() -> String {
    crypto::random_token()
}

/// The store key for a challenge id: a hash, so the store never holds the id itself.
pub fn store_key(id: &str) -> String {
    let h = crypto::sha256(id.as_bytes());
    h.iter().take(20).map(|b| format!("{b:02x}")).collect()
}

/// CSRF token for forms bound to `data` (a challenge's id, or a signed-in session's scope and
/// identity): `<key id>.<MAC>`, verifiable statelessly.
pub fn csrf_token(keys: &KeyRing, data: &[u8]) -> String {
    let (kid, tag) = keys.mac(Purpose::Csrf, data);
    format!("{kid}.{}", B64.encode(tag))
}

pub fn csrf_ok(keys: &KeyRing, data: &[u8], token: &str) -> bool {
    let Some((kid, tag)) = token.split_once('.') else {
        return false;
    };
    let Ok(tag) = B64.decode(tag) else {
        return false;
    };
    keys.verify_mac(Purpose::Csrf, kid, data, &tag)
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("challenge could not be encoded: {0}")]
    Encode(String),
    #[error("challenge record does not open (tampered, other key or other id)")]
    Open,
}

impl Challenge {
    pub fn seal(&self, keys: &KeyRing, id: &str) -> Result<Vec<u8>, SealError> {
        let json = serde_json::to_vec(self).map_err(|e| SealError::Encode(e.to_string()))?;
        let kid = keys.active_id().to_string();
        let key = keys
            .derive(Purpose::Challenge, &kid, id.as_bytes())
            .ok_or(SealError::Open)?;
        let sealed = crypto::seal_with(&key, store_key(id).as_bytes(), &json)
            .map_err(|e| SealError::Encode(e.to_string()))?;
        let kid_len =
            u8::try_from(kid.len()).map_err(|_| SealError::Encode("key id too long".into()))?;
        let mut out = Vec::with_capacity(1 + kid.len() + sealed.len());
        out.push(kid_len);
        out.extend_from_slice(kid.as_bytes());
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub fn open(keys: &KeyRing, id: &str, blob: &[u8]) -> Result<Challenge, SealError> {
        let (&kid_len, rest) = blob.split_first().ok_or(SealError::Open)?;
        let kid_len = usize::from(kid_len);
        if rest.len() < kid_len {
            return Err(SealError::Open);
        }
        let (kid, sealed) = rest.split_at(kid_len);
        let kid = std::str::from_utf8(kid).map_err(|_| SealError::Open)?;
        let key = keys
            .derive(Purpose::Challenge, kid, id.as_bytes())
            .ok_or(SealError::Open)?;
        let json = crypto::open_with(&key, store_key(id).as_bytes(), sealed)
            .map_err(|_| SealError::Open)?;
        serde_json::from_slice(&json).map_err(|_| SealError::Open)
    }
}

pub fn step_path(gw: &crate::gateway::Gateway, s: Step) -> &str {
    match s {
        Step::Verify => &gw.paths.verify,
        Step::Enroll => &gw.paths.enroll,
        Step::EnrollmentCode => &gw.paths.enrollment_code,
        Step::Offer => &gw.paths.offer,
        Step::Recovery => &gw.paths.recovery,
        Step::Notice => &gw.paths.notice,
        Step::Passkey => &gw.paths.passkey,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use zeroize::Zeroizing;

    fn keys() -> KeyRing {
        KeyRing::new("k1", vec![("k1".into(), Zeroizing::new(vec![9u8; 32]))]).unwrap()
    }

    fn sample() -> Challenge {
        Challenge {
            user: "alice".into(),
            role: "msp".into(),
            state: "enforced".into(),
            step: Step::Verify,
            can_postpone: false,
            created: 1,
            expires: 301,
            client: None,
            pending_secret: None,
            pending_member: None,
            session_hash: [1; 16],
            response: Withheld {
                status: 302,
                headers: vec![("set-cookie".into(), B64.encode("S=1"))],
                body: String::new(),
            },
            recovery_codes: None,
            recovery_remaining: None,
            epoch: 4,
            pending_replaced: false,
            landing: Some("/home".into()),
            enrollment_ticket: None,
            methods: crate::policy::MfaMethods::TOTP,
            code_in_grace: false,
            email_check: None,
        }
    }

    #[test]
    fn a_challenge_written_before_epochs_reads_as_epoch_zero() {
        let mut v = serde_json::to_value(sample()).unwrap();
        assert_eq!(v["epoch"], 4);
        v.as_object_mut().unwrap().remove("epoch");
        let ch: Challenge = serde_json::from_value(v).unwrap();
        assert_eq!(ch.epoch, 0);
    }

    #[test]
    fn seals_under_the_id_and_opens_only_with_it() {
        let k = keys();
        let id = new_id();
        let blob = sample().seal(&k, &id).unwrap();
        assert_eq!(Challenge::open(&k, &id, &blob).unwrap().user, "alice");
        assert!(
            Challenge::open(&k, &new_id(), &blob).is_err(),
            "another id cannot open it"
        );
        let mut bad = blob.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(Challenge::open(&k, &id, &bad).is_err());
        assert!(Challenge::open(&k, &id, &[]).is_err());
        assert!(Challenge::open(&k, &id, &[200]).is_err());
    }

    #[test]
    fn csrf_is_bound_to_the_challenge() {
        let k = keys();
        let t = csrf_token(&k, b"a");
        assert!(csrf_ok(&k, b"a", &t));
        assert!(!csrf_ok(&k, b"b", &t));
        assert!(!csrf_ok(&k, b"a", "garbage"));
        assert!(!csrf_ok(&k, b"a", ""));
    }

    #[test]
    fn withheld_response_rebuilds_byte_identical() {
        let mut resp = http::Response::builder()
            .status(302)
            .header("location", "/home");
        resp = resp
            .header("set-cookie", "A=1; Path=/")
            .header("set-cookie", "B=2; HttpOnly");
        let (parts, _) = resp.body(()).unwrap().into_parts();
        let w = Withheld::capture(&parts, b"body\x00\xff");
        let (status, headers, body) = w.rebuild().unwrap();
        assert_eq!(status, 302);
        assert_eq!(headers, parts.headers);
        assert_eq!(body, b"body\x00\xff");
    }
}

#[cfg(test)]
mod props;
