//! TOTP (RFC 6238) for the gateway: secrets, pairing codes, `otpauth://` URIs and code
//! verification, on top of totp-rs.
//!
//! The parameters are fixed to what every authenticator app named in the VMS announcement
//! (Salesforce, Microsoft, Google, Authy, LastPass) supports, because several of them
//! silently ignore `algorithm`, `digits` and `period` in a QR code and would then show wrong
//! codes: HMAC-SHA-1, 6 digits, 30-second steps (the RFC 6238 defaults) and a 160-bit secret
//! (RFC 4226 section 4, requirement R6: at least 128 bits, 160 recommended).
//!
//! Every function takes the time as an argument; nothing here reads the clock. Verification
//! returns the matched time step so that the caller can enforce one-time use (RFC 6238 5.2:
//! accept a step only if it is greater than the last accepted one), which totp-rs leaves to
//! the caller.
//!
//! ```text
//!   steps:      s-2     s-1      s      s+1     s+2        s = unix_now / 30
//!   window 1:    x     [ok]    [ok]    [ok]     x         -> Some(matched step)
//! ```

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use totp_rs::{Algorithm, Builder, Secret, Totp};
use zeroize::Zeroizing;

use crate::auth::crypto::random_bytes;

/// Secret size in bytes: 160 bits, RFC 4226 section 4 (R6) recommendation.
pub const SECRET_LEN: usize = 20;
/// Smallest secret accepted for verification: 128 bits, RFC 4226 section 4 (R6) minimum.
pub const MIN_SECRET_LEN: usize = 16;
/// Code length: 6 digits, the RFC 4226/6238 default every app supports.
pub const DIGITS: usize = DIGITS_U8 as usize;
const DIGITS_U8: u8 = 6;
/// Time step: 30 seconds, RFC 6238 section 5.2 recommendation.
pub const STEP_SECONDS: u64 = 30;
/// Steps accepted on either side of the current one: RFC 6238 5.2 recommends at most one
/// step of network delay.
pub const DEFAULT_WINDOW: u8 = 1;

/// Longest raw input [`normalize_code`] looks at; anything longer is not a code.
const MAX_CODE_INPUT: usize = 32;

/// Characters left as they are in the `otpauth://` label and issuer parameter: RFC 3986
/// unreserved characters. Everything else, including `:`, `@`, `&`, `=` and spaces, is
/// percent-encoded.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Why an enrollment URI could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error(
        "TOTP issuer {issuer:?} is invalid: it must be non-empty and must not contain ':' (the label separator of otpauth URIs)"
    )]
    InvalidIssuer { issuer: String },
    #[error("TOTP account name is empty")]
    EmptyAccount,
    #[error("TOTP secret has {bytes} bytes; at least {MIN_SECRET_LEN} are required (RFC 4226 R6)")]
    SecretTooShort { bytes: usize },
}

/// A new random 160-bit secret from the AWS-LC CSPRNG.
pub fn new_secret() -> Zeroizing<Vec<u8>> {
    let bytes = Zeroizing::new(random_bytes::<SECRET_LEN>());
    Zeroizing::new(bytes.to_vec())
}

/// Base32 (RFC 4648, no padding) of the secret, as apps expect it.
fn secret_base32(secret: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(Secret::from(secret).to_base32())
}

/// The secret for manual entry beside the QR code: Base32 without padding, in groups of
/// four separated by spaces (`JBSW Y3DP EHPK 3PXP ...`).
pub fn pairing_code(secret: &[u8]) -> String {
    let b32 = secret_base32(secret);
    let mut out = String::with_capacity(b32.len() + b32.len() / 4);
    for (i, c) in b32.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// Check that an issuer can be used in an `otpauth://` URI; meant for configuration
/// validation at startup so that enrollment cannot fail on it later.
pub fn check_issuer(issuer: &str) -> Result<(), TotpError> {
    if issuer.trim().is_empty() || issuer.contains(':') {
        return Err(TotpError::InvalidIssuer {
            issuer: issuer.to_owned(),
        });
    }
    Ok(())
}

/// The Key URI apps scan from the QR code:
/// `otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER`.
///
/// The issuer appears both as the label prefix and as a parameter (Key URI format) and may
/// not contain a colon. Both parts are percent-encoded; a colon in the account name becomes
/// `%3A`, and since the issuer has none, the first separator in the label is always the
/// issuer's. `algorithm`, `digits` and `period` are left out: they are the defaults, and
/// apps that ignore them behave the same as apps that honour them.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> Result<String, TotpError> {
    check_issuer(issuer)?;
    if account.is_empty() {
        return Err(TotpError::EmptyAccount);
    }
    if secret.len() < MIN_SECRET_LEN {
        return Err(TotpError::SecretTooShort {
            bytes: secret.len(),
        });
    }
    let issuer = utf8_percent_encode(issuer, URI_COMPONENT).to_string();
    let account = utf8_percent_encode(account, URI_COMPONENT);
    let secret = secret_base32(secret);
    Ok(format!(
        "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}",
        secret.as_str()
    ))
}

/// A typed code in canonical form: spaces and dashes removed, then exactly six ASCII
/// digits, else `None` (including for non-ASCII digits such as `١٢٣٤٥٦`).
pub fn normalize_code(input: &str) -> Option<String> {
    if input.len() > MAX_CODE_INPUT {
        return None;
    }
    let code: String = input
        .chars()
        .filter(|c| !(c.is_ascii_whitespace() || *c == '-'))
        .collect();
    (code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

/// The time step (RFC 6238 `T`) that contains `unix` seconds.
pub fn step_of(unix: u64) -> u64 {
    unix / STEP_SECONDS
}

fn totp(secret: &[u8], window: u8) -> Totp {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS_U8)
        .with_step_duration(STEP_SECONDS)
        .with_skew(u16::from(window))
        .with_secret(secret)
        .build_noncompliant()
}

/// Verify `code` against `secret` at `unix_now`, accepting `window` steps on either side.
/// Returns the matched time step, which the caller must accept only once (replay guard).
///
/// The code is normalized first (see [`normalize_code`]). totp-rs compares tokens in
/// constant time. Secrets shorter than 128 bits and times so large that the step
/// arithmetic would overflow are rejected rather than trusted.
pub fn verify(secret: &[u8], code: &str, unix_now: u64, window: u8) -> Option<u64> {
    let code = normalize_code(code)?;
    if secret.len() < MIN_SECRET_LEN {
        return None;
    }
    // totp-rs computes (step + window) * 30; make sure that fits.
    step_of(unix_now)
        .checked_add(u64::from(window))?
        .checked_mul(STEP_SECONDS)?;
    totp(secret, window).check(&code, unix_now)
}

/// The code for `secret` at `unix` seconds, for tests and the demo.
pub fn code_at(secret: &[u8], unix: u64) -> String {
    totp(secret, 0).generate(unix).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const RFC_SHA1: &[u8] = b"12345678901234567890";
    const RFC_SHA256: &[u8] = b"12345678901234567890123456789012";
    const RFC_SHA512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    /// RFC 6238 Appendix B: (time, SHA1, SHA256, SHA512), 8 digits, 30 s, T0 = 0.
    const RFC6238: [(u64, &str, &str, &str); 6] = [
        (59, "94287082", "46119246", "90693936"),
        (1111111109, "07081804", "68084774", "25091201"),
        (1111111111, "14050471", "67062674", "99943326"),
        (1234567890, "89005924", "91819424", "93441116"),
        (2000000000, "69279037", "90698825", "38618901"),
        (20000000000, "65353130", "77737706", "47863826"),
    ];

    /// RFC 4226 Appendix D: HOTP values for counters 0..=9, key "12345678901234567890".
    const RFC4226: [&str; 10] = [
        "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
        "520489",
    ];

    fn rfc_totp(algorithm: Algorithm, secret: &[u8]) -> Totp {
        Builder::new()
            .with_algorithm(algorithm)
            .with_digits(8)
            .with_step_duration(30)
            .with_skew(0)
            .with_secret(secret)
            .build()
            .unwrap()
    }

    #[test]
    fn rfc6238_appendix_b_vectors() {
        let sha1 = rfc_totp(Algorithm::SHA1, RFC_SHA1);
        let sha256 = rfc_totp(Algorithm::SHA256, RFC_SHA256);
        let sha512 = rfc_totp(Algorithm::SHA512, RFC_SHA512);
        for (t, c1, c256, c512) in RFC6238 {
            assert_eq!(sha1.generate(t).to_string(), c1, "SHA1 at {t}");
            assert_eq!(sha256.generate(t).to_string(), c256, "SHA256 at {t}");
            assert_eq!(sha512.generate(t).to_string(), c512, "SHA512 at {t}");
            assert_eq!(sha1.check(c1, t), Some(step_of(t)), "SHA1 check at {t}");
            assert_eq!(sha256.check(c256, t), Some(step_of(t)));
            assert_eq!(sha512.check(c512, t), Some(step_of(t)));
        }
    }

    #[test]
    fn rfc4226_appendix_d_vectors_through_our_functions() {
        // With 30-second steps, counter c is the step starting at c * 30.
        for (counter, expected) in (0u64..).zip(RFC4226) {
            let t = counter * STEP_SECONDS;
            assert_eq!(code_at(RFC_SHA1, t), expected, "counter {counter}");
            assert_eq!(code_at(RFC_SHA1, t + 29), expected, "end of step {counter}");
            assert_eq!(verify(RFC_SHA1, expected, t, 0), Some(counter));
        }
    }

    #[test]
    fn window_accepts_one_step_either_side() {
        let now = 1_700_000_000;
        let s = step_of(now);
        let at = |offset: i64| {
            code_at(
                RFC_SHA1,
                s.checked_add_signed(offset).unwrap() * STEP_SECONDS,
            )
        };
        assert_eq!(verify(RFC_SHA1, &at(0), now, 1), Some(s));
        assert_eq!(verify(RFC_SHA1, &at(-1), now, 1), Some(s - 1));
        assert_eq!(verify(RFC_SHA1, &at(1), now, 1), Some(s + 1));
        assert_eq!(verify(RFC_SHA1, &at(-2), now, 1), None);
        assert_eq!(verify(RFC_SHA1, &at(2), now, 1), None);
        // Window 0 accepts only the current step; window 2 reaches two steps.
        assert_eq!(verify(RFC_SHA1, &at(1), now, 0), None);
        assert_eq!(verify(RFC_SHA1, &at(2), now, 2), Some(s + 2));
        assert_eq!(DEFAULT_WINDOW, 1);
    }

    #[test]
    fn window_at_time_zero_does_not_underflow() {
        assert_eq!(verify(RFC_SHA1, "755224", 0, 1), Some(0));
        assert_eq!(verify(RFC_SHA1, "287082", 0, 1), Some(1));
        assert_eq!(verify(RFC_SHA1, "359152", 0, 1), None);
    }

    #[test]
    fn verify_accepts_typed_formatting_but_not_garbage() {
        let t = 59;
        let code = code_at(RFC_SHA1, t);
        assert_eq!(code, "287082");
        assert_eq!(verify(RFC_SHA1, "287 082", t, 1), Some(1));
        assert_eq!(verify(RFC_SHA1, " 287-082\n", t, 1), Some(1));
        let huge = "1".repeat(1_000_000);
        for bad in [
            "",
            "12345",
            "1234567",
            "abcdef",
            "28708a",
            "+87082",
            "١٢٣٤٥٦",
            "２８７０８２",
            "287082\0",
            huge.as_str(),
        ] {
            assert_eq!(verify(RFC_SHA1, bad, t, 1), None, "{bad:?}");
        }
        // Right code, wrong secret.
        assert_eq!(verify(b"another-twenty-bytes", &code, t, 1), None);
    }

    #[test]
    fn verify_rejects_short_secrets_and_extreme_times() {
        let short = b"fifteen-bytes!!";
        assert_eq!(short.len(), 15);
        assert_eq!(verify(short, &code_at(short, 100), 100, 1), None);
        // At u64::MAX the step arithmetic would overflow inside totp-rs.
        for t in [u64::MAX, u64::MAX - 29, u64::MAX / 30 * 30] {
            assert_eq!(verify(RFC_SHA1, &code_at(RFC_SHA1, t), t, 255), None, "{t}");
            assert_eq!(verify(RFC_SHA1, "000000", t, 1), None);
        }
        // Far future but representable: still works.
        let t = 20_000_000_000;
        assert_eq!(
            verify(RFC_SHA1, &code_at(RFC_SHA1, t), t, 1),
            Some(step_of(t))
        );
    }

    #[test]
    fn normalize_code_rules() {
        assert_eq!(normalize_code("123456").as_deref(), Some("123456"));
        assert_eq!(normalize_code(" 123 456 ").as_deref(), Some("123456"));
        assert_eq!(normalize_code("123-456").as_deref(), Some("123456"));
        assert_eq!(normalize_code("012345").as_deref(), Some("012345"));
        for bad in [
            "",
            "12345",
            "1234567",
            "abcdef",
            "١٢٣٤٥٦",
            "12345６",
            "12.456",
            "-",
            "      ",
        ] {
            assert_eq!(normalize_code(bad), None, "{bad:?}");
        }
        assert_eq!(normalize_code(&"1".repeat(100_000)), None);
        assert_eq!(normalize_code(&format!("{}123456", " ".repeat(40))), None);
    }

    #[test]
    fn step_of_counts_thirty_second_steps() {
        assert_eq!(step_of(0), 0);
        assert_eq!(step_of(29), 0);
        assert_eq!(step_of(30), 1);
        assert_eq!(step_of(59), 1);
        assert_eq!(step_of(1111111109), 0x023523EC);
        assert_eq!(step_of(20000000000), 0x27BC86AA);
    }

    #[test]
    fn new_secret_is_random_and_160_bits() {
        let a = new_secret();
        let b = new_secret();
        assert_eq!(a.len(), SECRET_LEN);
        assert_ne!(*a, *b);
        // A fresh secret works end to end.
        let t = 1_000_000;
        assert_eq!(verify(&a, &code_at(&a, t), t, 1), Some(step_of(t)));
    }

    #[test]
    fn pairing_code_is_grouped_base32() {
        // RFC 4648 test vector: "foobar" -> MZXW6YTBOI (no padding).
        assert_eq!(pairing_code(b"foobar"), "MZXW 6YTB OI");
        assert_eq!(
            pairing_code(RFC_SHA1),
            "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ"
        );
        let code = pairing_code(&new_secret());
        assert_eq!(code.len(), 32 + 7);
        let groups: Vec<&str> = code.split(' ').collect();
        assert_eq!(groups.len(), 8);
        assert!(groups.iter().all(|g| g.len() == 4));
        assert!(
            code.bytes()
                .all(|b| b == b' ' || b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        );
        // The pairing code decodes back to the secret, as an app typing it in would.
        let secret = new_secret();
        let typed = pairing_code(&secret).replace(' ', "");
        assert_eq!(
            Secret::try_from_base32(typed).unwrap().as_bytes(),
            secret.as_slice()
        );
    }

    #[test]
    fn otpauth_uri_format() {
        let uri = otpauth_uri("Acme VMS", "alice@example.com", RFC_SHA1).unwrap();
        assert_eq!(
            uri,
            "otpauth://totp/Acme%20VMS:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20VMS"
        );
        // totp-rs parses it back with the same parameters.
        let parsed = Totp::from_url(&uri).unwrap();
        assert_eq!(parsed.issuer(), Some("Acme VMS"));
        assert_eq!(parsed.account_name(), "alice@example.com");
        assert_eq!(parsed.secret().as_bytes(), RFC_SHA1);
        assert_eq!(parsed.digits(), 6);
        assert_eq!(parsed.step(), 30);
        assert_eq!(parsed.algorithm(), Algorithm::SHA1);
    }

    #[test]
    fn otpauth_uri_encodes_special_characters() {
        let uri = otpauth_uri("Bäcker & Söhne", "dom\\user:1 ?#&=/+%", RFC_SHA1).unwrap();
        assert_eq!(
            uri,
            "otpauth://totp/B%C3%A4cker%20%26%20S%C3%B6hne:dom%5Cuser%3A1%20%3F%23%26%3D%2F%2B%25\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=B%C3%A4cker%20%26%20S%C3%B6hne"
        );
        // Exactly one literal ':' (the separator) and one '?'.
        assert_eq!(uri.matches(':').count(), 2); // "otpauth:" and the label separator
        assert_eq!(uri.matches('?').count(), 1);
        // A parser that splits at the first separator recovers both parts. totp-rs's strict
        // builder refuses colons in names, so use its unchecked parser.
        let parsed = Totp::from_url_unchecked(&uri).unwrap();
        assert_eq!(parsed.issuer(), Some("Bäcker & Söhne"));
        assert_eq!(parsed.account_name(), "dom\\user:1 ?#&=/+%");
        assert_eq!(parsed.secret().as_bytes(), RFC_SHA1);
    }

    #[test]
    fn otpauth_uri_rejects_bad_input() {
        assert_eq!(
            otpauth_uri("Acme:VMS", "alice", RFC_SHA1).unwrap_err(),
            TotpError::InvalidIssuer {
                issuer: "Acme:VMS".to_owned()
            }
        );
        assert!(matches!(
            otpauth_uri("  ", "alice", RFC_SHA1),
            Err(TotpError::InvalidIssuer { .. })
        ));
        assert_eq!(
            otpauth_uri("Acme", "", RFC_SHA1).unwrap_err(),
            TotpError::EmptyAccount
        );
        assert_eq!(
            otpauth_uri("Acme", "alice", b"short").unwrap_err(),
            TotpError::SecretTooShort { bytes: 5 }
        );
        assert!(check_issuer("Acme VMS").is_ok());
        assert!(check_issuer("a:b").is_err());
    }
}

#[cfg(test)]
mod props;
