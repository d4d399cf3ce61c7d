//! Reads the validity period (`notBefore`, `notAfter`) of an X.509 certificate.
//!
//! Why: operators want to see when the certificate the gateway is serving expires (logged on
//! every reload), and the development certificate is replaced when it is close to expiry.
//! rustls and webpki validate dates but do not expose them, and a full X.509 parser would be a
//! new dependency for two timestamps, so this module walks just enough DER to reach them.
//!
//! How: RFC 5280 4.1 fixes the layout, and everything before `validity` is skipped as opaque
//! TLVs:
//!
//! ```text
//! Certificate ::= SEQUENCE {
//!   tbsCertificate SEQUENCE {
//!     version        [0] EXPLICIT INTEGER OPTIONAL   -- skipped when present
//!     serialNumber   INTEGER                         -- skipped
//!     signature      AlgorithmIdentifier (SEQUENCE)  -- skipped
//!     issuer         Name (SEQUENCE)                 -- skipped
//!     validity       SEQUENCE { notBefore Time, notAfter Time }   <-- read
//!     ...                                            -- ignored
//!   }
//!   ...
//! }
//! Time ::= UTCTime "YYMMDDHHMMSSZ" | GeneralizedTime "YYYYMMDDHHMMSSZ"
//! ```
//!
//! Only the DER forms RFC 5280 4.1.2.5 allows are accepted (UTC, whole seconds, `Z`).

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

const TAG_SEQUENCE: u8 = 0x30;
const TAG_INTEGER: u8 = 0x02;
const TAG_EXPLICIT_0: u8 = 0xa0;
const TAG_UTC_TIME: u8 = 0x17;
const TAG_GENERALIZED_TIME: u8 = 0x18;

/// The period in which a certificate is valid, both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// First second the certificate is valid.
    pub not_before: Timestamp,
    /// Last second the certificate is valid.
    pub not_after: Timestamp,
}

/// Why the validity could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidityError {
    /// The DER ends in the middle of an element.
    #[error("certificate DER is truncated")]
    Truncated,
    /// A length uses an encoding DER forbids or that is too large.
    #[error("certificate DER has an unsupported length encoding")]
    BadLength,
    /// An element has a different type than RFC 5280 prescribes at that position.
    #[error("certificate DER has tag {found:#04x} where {expected} was expected")]
    UnexpectedTag {
        /// The tag found.
        found: u8,
        /// What should have been there.
        expected: &'static str,
    },
    /// A time value is not in the RFC 5280 form.
    #[error("certificate has a malformed validity time")]
    BadTime,
}

/// Returns the validity period of a DER-encoded X.509 certificate.
pub fn validity(cert_der: &[u8]) -> Result<Validity, ValidityError> {
    let (certificate, _) = expect(cert_der, TAG_SEQUENCE, "Certificate SEQUENCE")?;
    let (tbs, _) = expect(certificate, TAG_SEQUENCE, "TBSCertificate SEQUENCE")?;
    let mut rest = tbs;
    if rest.first() == Some(&TAG_EXPLICIT_0) {
        rest = read_tlv(rest)?.2;
    }
    let (_serial, rest) = expect(rest, TAG_INTEGER, "serialNumber INTEGER")?;
    let (_signature, rest) = expect(rest, TAG_SEQUENCE, "signature AlgorithmIdentifier")?;
    let (_issuer, rest) = expect(rest, TAG_SEQUENCE, "issuer Name")?;
    let (validity, _) = expect(rest, TAG_SEQUENCE, "Validity SEQUENCE")?;
    let (not_before, rest) = read_time(validity)?;
    let (not_after, _) = read_time(rest)?;
    Ok(Validity {
        not_before,
        not_after,
    })
}

/// Splits one TLV off `input`: `(tag, content, rest)`.
fn read_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), ValidityError> {
    let (&tag, rest) = input.split_first().ok_or(ValidityError::Truncated)?;
    let (&first, rest) = rest.split_first().ok_or(ValidityError::Truncated)?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        // Long form: the low bits count the length octets. 0x80 (indefinite) is BER only.
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return Err(ValidityError::BadLength);
        }
        let (octets, rest) = rest
            .split_at_checked(count)
            .ok_or(ValidityError::Truncated)?;
        let len = octets
            .iter()
            .fold(0usize, |acc, octet| (acc << 8) | usize::from(*octet));
        (len, rest)
    };
    let (content, rest) = rest.split_at_checked(len).ok_or(ValidityError::Truncated)?;
    Ok((tag, content, rest))
}

/// Reads a TLV that must carry `tag`: `(content, rest)`.
fn expect<'a>(
    input: &'a [u8],
    tag: u8,
    expected: &'static str,
) -> Result<(&'a [u8], &'a [u8]), ValidityError> {
    let (found, content, rest) = read_tlv(input)?;
    if found == tag {
        Ok((content, rest))
    } else {
        Err(ValidityError::UnexpectedTag { found, expected })
    }
}

/// Reads a `Time` (UTCTime or GeneralizedTime): `(timestamp, rest)`.
fn read_time(input: &[u8]) -> Result<(Timestamp, &[u8]), ValidityError> {
    let (tag, content, rest) = read_tlv(input)?;
    let text = std::str::from_utf8(content).map_err(|_| ValidityError::BadTime)?;
    let digits = text.strip_suffix('Z').ok_or(ValidityError::BadTime)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValidityError::BadTime);
    }
    let (year, tail) = match (tag, digits.len()) {
        (TAG_UTC_TIME, 12) => {
            // RFC 5280 4.1.2.5.1: YY >= 50 means 19YY, otherwise 20YY.
            let yy = number(digits, 0, 2)?;
            let year = if yy >= 50 { 1900 + yy } else { 2000 + yy };
            (year, digits.get(2..).ok_or(ValidityError::BadTime)?)
        }
        (TAG_GENERALIZED_TIME, 14) => (
            number(digits, 0, 4)?,
            digits.get(4..).ok_or(ValidityError::BadTime)?,
        ),
        (TAG_UTC_TIME | TAG_GENERALIZED_TIME, _) => return Err(ValidityError::BadTime),
        (found, _) => {
            return Err(ValidityError::UnexpectedTag {
                found,
                expected: "UTCTime or GeneralizedTime",
            });
        }
    };
    let field = |start: usize| -> Result<i8, ValidityError> {
        i8::try_from(number(tail, start, start + 2)?).map_err(|_| ValidityError::BadTime)
    };
    let datetime = DateTime::new(
        year,
        field(0)?,
        field(2)?,
        field(4)?,
        field(6)?,
        field(8)?,
        0,
    )
    .map_err(|_| ValidityError::BadTime)?;
    let timestamp = TimeZone::UTC
        .to_timestamp(datetime)
        .map_err(|_| ValidityError::BadTime)?;
    Ok((timestamp, rest))
}

/// Parses the ASCII digits `text[start..end]` (already checked to be digits).
fn number(text: &str, start: usize, end: usize) -> Result<i16, ValidityError> {
    text.get(start..end)
        .and_then(|s| s.parse::<i16>().ok())
        .ok_or(ValidityError::BadTime)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair, date_time_ymd};

    fn cert_with(not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.not_before = date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = date_time_ymd(not_after.0, not_after.1, not_after.2);
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn reads_utc_time_dates() {
        let der = cert_with((2026, 11, 26), (2027, 2, 24));
        let v = validity(&der).unwrap();
        assert_eq!(v.not_before, ts("2026-11-26T00:00:00Z"));
        assert_eq!(v.not_after, ts("2027-02-24T00:00:00Z"));
    }

    #[test]
    fn reads_generalized_time_and_last_century() {
        // rcgen writes UTCTime before 2050 and GeneralizedTime from 2050 on (RFC 5280).
        let der = cert_with((1975, 1, 1), (2051, 6, 30));
        let v = validity(&der).unwrap();
        assert_eq!(v.not_before, ts("1975-01-01T00:00:00Z"));
        assert_eq!(v.not_after, ts("2051-06-30T00:00:00Z"));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let der = cert_with((2026, 1, 1), (2026, 4, 1));
        for len in 0..der.len() {
            let prefix = der.get(..len).unwrap();
            assert!(validity(prefix).is_err(), "prefix of {len} bytes parsed");
        }
    }

    #[test]
    fn rejects_non_certificates() {
        assert_eq!(validity(b""), Err(ValidityError::Truncated));
        assert_eq!(
            validity(&[0x04, 0x01, 0x00]),
            Err(ValidityError::UnexpectedTag {
                found: 0x04,
                expected: "Certificate SEQUENCE"
            })
        );
        assert_eq!(validity(&[0x30, 0x80, 0x00]), Err(ValidityError::BadLength));
    }

    #[test]
    fn parses_hand_built_times() {
        let utc = [&[TAG_UTC_TIME, 13][..], b"491231235959Z"].concat();
        assert_eq!(read_time(&utc).unwrap().0, ts("2049-12-31T23:59:59Z"));
        let gen_time = [&[TAG_GENERALIZED_TIME, 15][..], b"20500101000000Z"].concat();
        assert_eq!(read_time(&gen_time).unwrap().0, ts("2050-01-01T00:00:00Z"));
        let signed = [&[TAG_UTC_TIME, 13][..], b"49+231235959Z"].concat();
        assert_eq!(read_time(&signed), Err(ValidityError::BadTime));
        let month13 = [&[TAG_UTC_TIME, 13][..], b"491331235959Z"].concat();
        assert_eq!(read_time(&month13), Err(ValidityError::BadTime));
        let local = [&[TAG_UTC_TIME, 13][..], b"4912312359590"].concat();
        assert_eq!(read_time(&local), Err(ValidityError::BadTime));
    }
}
