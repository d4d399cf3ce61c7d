//! One pending enrollment secret per user, until the enrollment is confirmed.
//!
//! A user who scans a QR code and then lets the sign-in expire (installing an app takes a
//! while) must meet the same QR code at the next sign-in: the entry already in the app then
//! works. So the secret shown at enrollment is kept in the store per user (sealed with the key
//! ring like an enrolled secret) for `mfa.pending_enrollment_ttl`, and every enrollment page
//! of that user (a sign-in, the offer's "set up", the self-service set-up) shows it until a
//! code confirms it; the enrollment removes it in the same store step.
//!
//! Only to the same browser, though. Whoever knows the password can open an enrollment page;
//! if every browser were shown the one pending secret, someone who looked at it with the
//! password alone would hold a working copy of the app the owner confirms later, unnoticed.
//! So the secret is sealed with a random id of the browser it was shown to (the
//! [`ENROLLING_COOKIE`], never sent to the VMS) in its associated data: another browser cannot
//! open it, and is shown a new secret in its place (one pending secret per user still). When an
//! earlier one could not be shown again (it expired, it belongs to another browser, or it was
//! sealed with a key since removed) the new one is marked as replacing it, and the page says
//! to delete the earlier entry from the app.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use crate::auth::crypto::Purpose;
use crate::auth::totp;
use crate::error::{GatewayError, InternalError};
use crate::gateway::Gateway;
use crate::store::Pending;

use crate::gate::cookies::{self, ENROLLING_COOKIE};

fn aad(user: &str, browser: &str) -> Vec<u8> {
    let mut a = b"pending-enrollment:".to_vec();
    a.extend_from_slice(&crate::auth::crypto::sha256(browser.as_bytes()));
    a.extend_from_slice(user.as_bytes());
    a
}

/// The browser's id from its [`ENROLLING_COOKIE`], or a new one (`true`: to be set with
/// [`browser_cookie`]).
pub fn browser_id(headers: &http::HeaderMap) -> (String, bool) {
    let valid = |v: &&str| {
        v.len() == 43
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    match cookies::request_cookie(headers, ENROLLING_COOKIE).filter(valid) {
        Some(v) => (v.to_string(), false),
        None => (crate::auth::crypto::random_token(), true),
    }
}

/// The cookie that keeps a new browser id as long as a pending secret lives.
pub fn browser_cookie(gw: &Gateway, id: &str) -> http::HeaderValue {
    cookies::gateway_cookie(
        ENROLLING_COOKIE,
        id,
        Some(gw.cfg.mfa.pending_enrollment_ttl),
        cookie::SameSite::Strict,
    )
}

/// The user's pending secret for the browser `browser` (base64url, as a challenge carries it)
/// and whether it replaces an earlier one that was shown and not confirmed.
pub async fn secret_for(
    gw: &Gateway,
    user: &str,
    browser: &str,
    now: u64,
) -> Result<(String, bool), GatewayError> {
    let aad = aad(user, browser);
    let ttl = gw.cfg.mfa.pending_enrollment_ttl;
    let mut discard: Option<Vec<u8>> = None;
    // A stored secret that does not open (another browser's) is discarded; a few times at most,
    // should browsers keep taking turns.
    for _ in 0..3 {
        let fresh = totp::new_secret();
        let sealed = gw
            .keys
            .seal(Purpose::TotpSecret, &aad, fresh.as_slice())
            .map_err(|e| InternalError::Crypto(e.to_string()))?;
        match gw
            .store
            .pending_secret(user, &sealed, ttl, now, discard.as_deref())
            .await?
        {
            Pending::Created { replaced } => return Ok((B64.encode(fresh.as_slice()), replaced)),
            Pending::Existing(blob) => match gw.keys.open(Purpose::TotpSecret, &aad, &blob) {
                Ok(secret) => return Ok((B64.encode(secret.as_slice()), false)),
                Err(_) => {
                    tracing::info!(user = %user, "the pending enrollment secret was shown to another browser (or its key was removed); a new one is shown");
                    discard = Some(blob);
                }
            },
        }
    }
    Err(InternalError::Crypto("the pending enrollment secret does not open".into()).into())
}
