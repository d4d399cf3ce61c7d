//! A first enrollment confirmed by e-mail (`mfa.first_enrollment = "email_code"`).
//!
//! Without it, whoever passes the VMS password sets up the first authenticator app (trust on
//! first use): a stolen password becomes a stolen factor. With it, the enrollment page first
//! mails an 8-digit code to the address the VMS has for the user, and shows the QR code only
//! once that code is typed:
//!
//! ```text
//!  sign-in, not enrolled, never reset ─► code mailed (outbox, at once) ─► code typed ─► QR code
//!          │ no address known: "contact your MSP" (fail closed)   │ wrong: counted like a
//!          │                                                      │ wrong app code (lock)
//!          └ "send a new code": at most MAX_SENDS per CODE_TTL    └ expired: send a new one
//! ```
//!
//! The code is random, valid [`CODE_TTL`] and once; the store keeps only its keyed hash
//! (`store::outbox`), the outbox job holds it sealed. Attempts are taken like those at an
//! app's code (`codes::check_email_code`): counted per user and address before the check, in
//! one atomic step, and locked after `mfa.max_failures`. After an MSP reset the first
//! enrollment rule does not apply (the reset has its own step).

use crate::auth::crypto::Purpose;
use crate::config::FirstEnrollment;
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::mail::{Job, Kind, seal_code};
use crate::mfa::challenge::EmailCheck;
use crate::store::{CodeIssue, UserRecord};

pub use crate::mail::sender::CODE_TTL;

/// Codes mailed per user until [`CODE_TTL`] passes without a send (each code lives that long).
pub const MAX_SENDS: u32 = 3;

/// Digits of a code.
pub const CODE_DIGITS: usize = crate::auth::enrollment_code::DIGITS;

/// Whether a sign-in of a user with `record` must confirm a code mailed to them before
/// enrolling: with `email_code`, for users without the app whose pairing does not wait for an
/// MSP's one-time enrollment code instead (a reset without that code is covered too).
pub fn first_enrollment_check(gw: &Gateway, record: &UserRecord) -> Option<EmailCheck> {
    (gw.cfg.mfa.first_enrollment == FirstEnrollment::EmailCode
        && !record.enrolled()
        && !record.enrollment_code_required())
    .then(EmailCheck::default)
}

/// Whether a first factor set up outside a sign-in (the settings page) is refused: the
/// e-mailed code is asked only in a sign-in, so a first factor is set up there. A user who
/// has a passkey already adds the app without it.
pub fn blocks_self_service(gw: &Gateway, record: &UserRecord, has_passkeys: bool) -> bool {
    !has_passkeys && first_enrollment_check(gw, record).is_some()
}

/// Whether the code is still to be typed in this sign-in.
pub fn pending(check: Option<EmailCheck>) -> bool {
    check.is_some_and(|c| !c.confirmed)
}

/// Codes are made and read as the MSP's one-time enrollment codes are: 8 uniform digits.
pub use crate::auth::enrollment_code::{new_code, normalize};

/// The keyed hash the store keeps of a user's code.
pub fn hash(gw: &Gateway, user: &str, code: &str) -> String {
    let data = [b"email-code\n", user.as_bytes(), b"\n", code.as_bytes()].concat();
    let (_, tag) = gw.keys.mac(Purpose::Challenge, &data);
    tag.iter().map(|b| format!("{b:02x}")).collect()
}

/// What [`send`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// A code is on its way to this (masked) address.
    Sent { to: String },
    /// [`MAX_SENDS`] codes were sent within [`CODE_TTL`]: none now.
    Limit { to: String },
    /// No address is known for the user: the user must call their MSP.
    NoAddress,
}

/// Makes a new code for `user`, keeps its hash and puts its mail in the outbox (sent within
/// about a second while the mail server is up).
pub async fn send(gw: &Gateway, user: &str, now: u64) -> Result<Sent, GatewayError> {
    let contact = gw.store.contact(user).await?;
    let (Some(address), Some(outbox)) = (contact.email, gw.mail.as_ref()) else {
        return Ok(Sent::NoAddress);
    };
    let to = mask(&address);
    let code = zeroize::Zeroizing::new(new_code());
    let h = hash(gw, user, &code);
    match gw
        .store
        .email_code_issue(user, &h, CODE_TTL, MAX_SENDS)
        .await?
    {
        CodeIssue::Limit => return Ok(Sent::Limit { to }),
        CodeIssue::Stored { n } => {
            tracing::info!(user = %user, send = n, "enrollment code mailed");
        }
    }
    let mut job = Job::new(user, Kind::EmailCode, now);
    job.sealed_code = seal_code(&gw.keys, user, &code);
    job.expires = Some(now + CODE_TTL.as_secs());
    if !outbox.push(&job, 0).await {
        // The code is stored but cannot be mailed: "try again" (503), as when Redis is away.
        return Err(crate::store::StoreError::Unavailable(
            "the mail outbox did not take the code".into(),
        )
        .into());
    }
    Ok(Sent::Sent { to })
}

/// An address as the page shows it: the first letter of the name, dots, the domain
/// (`c•••@example.com`), so the user knows where to look and a bystander learns little.
pub fn mask(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((name, domain)) => {
            let first: String = name.chars().take(1).collect();
            format!("{first}\u{2022}\u{2022}\u{2022}@{domain}")
        }
        None => "\u{2022}\u{2022}\u{2022}".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_eight_digits_and_typed_ones_are_normalised() {
        for _ in 0..100 {
            let c = new_code();
            assert_eq!(c.len(), 8);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
        assert_eq!(normalize("1234 5678").as_deref(), Some("12345678"));
        assert_eq!(normalize("1234-5678").as_deref(), Some("12345678"));
        assert_eq!(normalize("123456"), None);
        assert_eq!(normalize("1234567a"), None);
        assert_eq!(normalize(&"1".repeat(40)), None);
    }

    #[test]
    fn addresses_are_masked() {
        assert_eq!(
            mask("customer@example.test"),
            "c\u{2022}\u{2022}\u{2022}@example.test"
        );
        assert_eq!(mask("x"), "\u{2022}\u{2022}\u{2022}");
    }

    #[test]
    fn pending_until_confirmed() {
        assert!(!pending(None));
        assert!(pending(Some(EmailCheck::default())));
        assert!(!pending(Some(EmailCheck {
            sent: true,
            confirmed: true
        })));
    }
}
