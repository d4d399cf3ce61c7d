//! One pending enrollment secret per user, until the enrollment is confirmed.
//!
//! A user who scans a QR code and then lets the sign-in expire (installing an app takes a
//! while) must meet the same QR code at the next sign-in: the entry already in the app then
//! works. So the secret shown at enrollment is kept in the store per user (sealed with the key
//! ring like an enrolled secret, under its own associated data) for
//! `mfa.pending_enrollment_ttl`, and every enrollment page of that user (a sign-in, the offer's
//! "set up", the self-service set-up) shows it until a code confirms it; the enrollment removes
//! it in the same store step. When an earlier one can no longer be shown (it expired, or was
//! sealed with a key since removed) the new one is marked as replacing it, and the page says
//! to delete the earlier entry from the app.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use crate::auth::crypto::Purpose;
use crate::auth::totp;
use crate::error::{GatewayError, InternalError};
use crate::gateway::Gateway;
use crate::store::Pending;

fn aad(user: &str) -> Vec<u8> {
    let mut a = b"pending-enrollment:".to_vec();
    a.extend_from_slice(user.as_bytes());
    a
}

/// The user's pending secret (base64url, as a challenge carries it) and whether it replaces an
/// earlier one that was shown and not confirmed.
pub async fn secret_for(
    gw: &Gateway,
    user: &str,
    now: u64,
) -> Result<(String, bool), GatewayError> {
    let ttl = gw.cfg.mfa.pending_enrollment_ttl;
    let mut discard: Option<Vec<u8>> = None;
    // Twice at most: a stored secret that does not open is discarded once.
    for _ in 0..2 {
        let fresh = totp::new_secret();
        let sealed = gw
            .keys
            .seal(Purpose::TotpSecret, &aad(user), fresh.as_slice())
            .map_err(|e| InternalError::Crypto(e.to_string()))?;
        match gw
            .store
            .pending_secret(user, &sealed, ttl, now, discard.as_deref())
            .await?
        {
            Pending::Created { replaced } => return Ok((B64.encode(fresh.as_slice()), replaced)),
            Pending::Existing(blob) => match gw.keys.open(Purpose::TotpSecret, &aad(user), &blob) {
                Ok(secret) => return Ok((B64.encode(secret.as_slice()), false)),
                Err(_) => {
                    tracing::info!(user = %user, "a pending enrollment secret no longer opens (key removed?); a new one is shown");
                    discard = Some(blob);
                }
            },
        }
    }
    Err(InternalError::Crypto("the pending enrollment secret does not open".into()).into())
}
