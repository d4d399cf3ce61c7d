//! Approved sessions, checked on every proxied request without a Redis round trip.
//!
//! When a login is released, the gateway sets its own cookie ([`APPROVAL_COOKIE`]) next to the
//! VMS session cookie. It holds a small MACed record:
//!
//! ```text
//!  value = base64url(payload) "." key-id "." base64url(HMAC-SHA256(key, "v1" | key-id | payload))
//!  payload = version(1)=2 | issued(8) | expires(8) | flags(1) | state(1)
//!          | epoch(8) | approval-id(16)
//!          | session-hash(16) | role-len(1) role | user-len(1) user
//! ```
//!
//! `session-hash` is SHA-256 of the VMS session cookie(s), truncated to 128 bits: the raw
//! session value is never stored anywhere. A request that carries a VMS session cookie is
//! forwarded with it only if an approval cookie verifies, is unexpired, names the same session
//! hash, and is not revoked (see `revocation`). Otherwise the session cookie is removed before
//! the request reaches the VMS, which then sees a logged-out client.
//!
//! Trade-offs (see docs/design.md): verification is local and costs two hashes; revocation
//! (logout, MSP reset) is pushed to every instance through the revocation feed and takes
//! effect within one poll interval; the cookie lives at most `mfa.approval_max_age`.
//!
//! What a revocation compares is never a clock. `epoch` is the user's revocation epoch as the
//! store had it when the login read the user's MFA state: every user revocation (an MSP
//! reset, MFA changes) raises it in the store, so "issued before the revocation" means
//! "epoch below the revocation's" on every instance, whatever their clocks say. The
//! `approval-id` is random per login and is what a logout revokes: not the session hash,
//! which a VMS may hand out again (the same session id signed in again, or a token that only
//! differs by the second it was made in). A renewal (the VMS rotating its session cookie)
//! copies both, so the renewed cookie shares the fate of the one it replaces.
//!
//! Version 1 cookies (written before epochs existed: no epoch, no id) are still accepted
//! until they expire; they count as epoch 0 and are re-sealed as version 1 on renewal, so
//! they stay subject to the rules they were issued under (see `revocation`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use crate::auth::crypto::{KeyRing, Purpose, sha256};
use crate::policy::MfaState;

pub use crate::gate::cookies::APPROVAL_COOKIE;

/// The payload version written for new approvals.
const VERSION: u8 = 2;
/// The payload version of approvals written before revocation epochs (read, and re-sealed on
/// renewal, until the last of them has expired).
const VERSION_LEGACY: u8 = 1;
const FLAG_MFA: u8 = 1;

/// What the gateway knows about an approved session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub issued: u64,
    pub expires: u64,
    /// The user passed the MFA step in this session (not just a login without MFA).
    pub mfa_passed: bool,
    /// The policy state of the role when the session was approved.
    pub state: MfaState,
    pub session_hash: [u8; 16],
    pub role: String,
    pub user: String,
    /// The user's revocation epoch in the store when the login read the user's MFA state:
    /// revoked once a user revocation with a higher epoch is known. 0 for version 1 cookies.
    pub epoch: u64,
    /// Random identity of this approval, kept by renewals: what a logout revokes. `None` for
    /// a version 1 cookie (then a logout revokes its session hash).
    pub id: Option<[u8; 16]>,
}

/// Why an approval cookie was not accepted (for metrics and debug logs; never shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Malformed,
    BadMac,
    Expired,
    OtherSession,
}

/// SHA-256 over the configured session cookies present, in configuration order, truncated.
/// `None` when none of them is present.
pub fn session_hash<'a>(
    names: &[String],
    lookup: impl Fn(&str) -> Option<&'a str>,
) -> Option<[u8; 16]> {
    let mut material = Vec::with_capacity(128);
    session_material(names, lookup, &mut material);
    hash_material(&material)
}

/// What [`session_hash`] hashes: `name=value` and a zero byte for each configured session
/// cookie present (empty values skipped), in configuration order, appended to `out`.
pub fn session_material<'a>(
    names: &[String],
    lookup: impl Fn(&str) -> Option<&'a str>,
    out: &mut Vec<u8>,
) {
    for name in names {
        if let Some(v) = lookup(name) {
            if v.is_empty() {
                continue;
            }
            out.extend_from_slice(name.as_bytes());
            out.push(b'=');
            out.extend_from_slice(v.as_bytes());
            out.push(0);
        }
    }
}

/// The session hash of material from [`session_material`]; `None` for no material.
pub fn hash_material(material: &[u8]) -> Option<[u8; 16]> {
    if material.is_empty() {
        return None;
    }
    let full = sha256(material);
    let mut out = [0u8; 16];
    out.copy_from_slice(full.get(..16)?);
    Some(out)
}

/// A short, stable, non-reversible identifier of a user for the revocation feed.
pub fn user_hash(user: &str) -> [u8; 16] {
    let full = sha256(user.as_bytes());
    let mut out = [0u8; 16];
    if let Some(s) = full.get(..16) {
        out.copy_from_slice(s);
    }
    out
}

fn state_byte(s: MfaState) -> u8 {
    match s {
        MfaState::None => 0,
        MfaState::Available => 1,
        MfaState::Enforced => 2,
    }
}

fn state_from(b: u8) -> Option<MfaState> {
    match b {
        0 => Some(MfaState::None),
        1 => Some(MfaState::Available),
        2 => Some(MfaState::Enforced),
        _ => None,
    }
}

impl Approval {
    fn payload(&self) -> Vec<u8> {
        let role = self.role.as_bytes();
        let user = self.user.as_bytes();
        let mut p = Vec::with_capacity(60 + role.len() + user.len());
        p.push(if self.id.is_some() {
            VERSION
        } else {
            VERSION_LEGACY
        });
        p.extend_from_slice(&self.issued.to_be_bytes());
        p.extend_from_slice(&self.expires.to_be_bytes());
        p.push(if self.mfa_passed { FLAG_MFA } else { 0 });
        p.push(state_byte(self.state));
        if let Some(id) = &self.id {
            p.extend_from_slice(&self.epoch.to_be_bytes());
            p.extend_from_slice(id);
        }
        p.extend_from_slice(&self.session_hash);
        p.push(u8::try_from(role.len()).unwrap_or(0));
        p.extend_from_slice(
            role.get(..usize::from(u8::try_from(role.len()).unwrap_or(0)))
                .unwrap_or_default(),
        );
        p.push(u8::try_from(user.len()).unwrap_or(0));
        p.extend_from_slice(
            user.get(..usize::from(u8::try_from(user.len()).unwrap_or(0)))
                .unwrap_or_default(),
        );
        p
    }

    fn parse(p: &[u8]) -> Option<Approval> {
        let mut r = Reader(p);
        let version = r.u8()?;
        if version != VERSION && version != VERSION_LEGACY {
            return None;
        }
        let issued = u64::from_be_bytes(r.take(8)?.try_into().ok()?);
        let expires = u64::from_be_bytes(r.take(8)?.try_into().ok()?);
        let flags = r.u8()?;
        let state = state_from(r.u8()?)?;
        let (epoch, id) = if version == VERSION {
            let epoch = u64::from_be_bytes(r.take(8)?.try_into().ok()?);
            let id: [u8; 16] = r.take(16)?.try_into().ok()?;
            (epoch, Some(id))
        } else {
            (0, None)
        };
        let session_hash: [u8; 16] = r.take(16)?.try_into().ok()?;
        let rl = usize::from(r.u8()?);
        let role = String::from_utf8(r.take(rl)?.to_vec()).ok()?;
        let ul = usize::from(r.u8()?);
        let user = String::from_utf8(r.take(ul)?.to_vec()).ok()?;
        if !r.0.is_empty() {
            return None;
        }
        Some(Approval {
            issued,
            expires,
            mfa_passed: flags & FLAG_MFA != 0,
            state,
            session_hash,
            role,
            user,
            epoch,
            id,
        })
    }

    /// The cookie value, MACed with the active key.
    pub fn seal(&self, keys: &KeyRing) -> String {
        let payload = self.payload();
        let kid = keys.active_id().to_string();
        let tag = keys.mac(Purpose::Cookie, &mac_input(&kid, &payload)).1;
        format!("{}.{kid}.{}", B64.encode(&payload), B64.encode(tag))
    }

    /// Verifies a cookie value: MAC (any known key), expiry and session binding.
    pub fn open(
        value: &str,
        keys: &KeyRing,
        session: &[u8; 16],
        now: u64,
    ) -> Result<Approval, Rejection> {
        if value.len() > 1024 {
            return Err(Rejection::Malformed);
        }
        let mut parts = value.split('.');
        let (Some(p), Some(kid), Some(t), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejection::Malformed);
        };
        let payload = B64.decode(p).map_err(|_| Rejection::Malformed)?;
        let tag = B64.decode(t).map_err(|_| Rejection::Malformed)?;
        if !keys.verify_mac(Purpose::Cookie, kid, &mac_input(kid, &payload), &tag) {
            return Err(Rejection::BadMac);
        }
        let a = Approval::parse(&payload).ok_or(Rejection::Malformed)?;
        if now >= a.expires || a.issued > now.saturating_add(300) {
            return Err(Rejection::Expired);
        }
        if !crate::auth::crypto::ct_eq(&a.session_hash, session) {
            return Err(Rejection::OtherSession);
        }
        Ok(a)
    }
}

fn mac_input(kid: &str, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(3 + kid.len() + payload.len());
    m.extend_from_slice(b"v1");
    m.extend_from_slice(kid.as_bytes());
    m.push(0);
    m.extend_from_slice(payload);
    m
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use zeroize::Zeroizing;

    fn ring(active: &str) -> KeyRing {
        KeyRing::new(
            active,
            vec![
                ("old".into(), Zeroizing::new(vec![1u8; 32])),
                ("new".into(), Zeroizing::new(vec![2u8; 32])),
            ],
        )
        .unwrap()
    }

    fn sample() -> Approval {
        Approval {
            issued: 1000,
            expires: 2000,
            mfa_passed: true,
            state: MfaState::Enforced,
            session_hash: [7; 16],
            role: "msp".into(),
            user: "alice".into(),
            epoch: 3,
            id: Some([9; 16]),
        }
    }

    #[test]
    fn round_trip_and_binding() {
        let keys = ring("new");
        let v = sample().seal(&keys);
        assert_eq!(Approval::open(&v, &keys, &[7; 16], 1500).unwrap(), sample());
        assert_eq!(
            Approval::open(&v, &keys, &[8; 16], 1500),
            Err(Rejection::OtherSession)
        );
        assert_eq!(
            Approval::open(&v, &keys, &[7; 16], 2000),
            Err(Rejection::Expired)
        );
    }

    #[test]
    fn tampering_and_garbage_are_rejected() {
        let keys = ring("new");
        let v = sample().seal(&keys);
        let mut parts: Vec<String> = v.split('.').map(String::from).collect();
        let mut payload = B64.decode(&parts[0]).unwrap();
        payload[17] ^= 1; // flip the MFA flag
        parts[0] = B64.encode(payload);
        assert_eq!(
            Approval::open(&parts.join("."), &keys, &[7; 16], 1500),
            Err(Rejection::BadMac)
        );
        for junk in [
            "",
            ".",
            "..",
            "a.b.c",
            "a.b.c.d",
            &"x".repeat(5000),
            "AAAA.new.AAAA",
        ] {
            assert!(
                Approval::open(junk, &keys, &[7; 16], 1500).is_err(),
                "{junk}"
            );
        }
    }

    #[test]
    fn survives_key_rotation_but_not_key_removal() {
        let v = sample().seal(&ring("old"));
        assert!(Approval::open(&v, &ring("new"), &[7; 16], 1500).is_ok());
        let only_new =
            KeyRing::new("new", vec![("new".into(), Zeroizing::new(vec![2u8; 32]))]).unwrap();
        assert_eq!(
            Approval::open(&v, &only_new, &[7; 16], 1500),
            Err(Rejection::BadMac)
        );
    }

    /// A cookie exactly as the previous version wrote it (payload version 1, no epoch, no
    /// id), built byte by byte here rather than with `seal`.
    fn legacy_cookie(keys: &KeyRing, issued: u64, expires: u64) -> String {
        let mut p = vec![1u8];
        p.extend_from_slice(&issued.to_be_bytes());
        p.extend_from_slice(&expires.to_be_bytes());
        p.push(FLAG_MFA);
        p.push(2);
        p.extend_from_slice(&[7; 16]);
        p.push(3);
        p.extend_from_slice(b"msp");
        p.push(5);
        p.extend_from_slice(b"alice");
        let kid = keys.active_id().to_string();
        let tag = keys.mac(Purpose::Cookie, &mac_input(&kid, &p)).1;
        format!("{}.{kid}.{}", B64.encode(&p), B64.encode(tag))
    }

    #[test]
    fn a_cookie_of_the_previous_version_still_opens_as_epoch_zero_without_id() {
        let keys = ring("new");
        let v = legacy_cookie(&keys, 1000, 2000);
        let a = Approval::open(&v, &keys, &[7; 16], 1500).unwrap();
        assert_eq!(
            a,
            Approval {
                epoch: 0,
                id: None,
                ..sample()
            }
        );
        // Re-sealed (a renewal) it stays what it was: version 1, byte for byte.
        assert_eq!(a.seal(&keys), v);
        assert_eq!(
            Approval::open(&v, &keys, &[7; 16], 2000),
            Err(Rejection::Expired)
        );
    }

    #[test]
    fn epoch_and_id_are_sealed_and_unknown_versions_refused() {
        let keys = ring("new");
        let v = sample().seal(&keys);
        let payload = B64.decode(v.split('.').next().unwrap()).unwrap();
        assert_eq!(payload[0], VERSION);
        assert_eq!(&payload[19..27], &3u64.to_be_bytes());
        assert_eq!(&payload[27..43], &[9; 16]);
        for version in [0u8, 3, 255] {
            let mut p = payload.clone();
            p[0] = version;
            let tag = keys.mac(Purpose::Cookie, &mac_input("new", &p)).1;
            let forged = format!("{}.new.{}", B64.encode(&p), B64.encode(tag));
            assert_eq!(
                Approval::open(&forged, &keys, &[7; 16], 1500),
                Err(Rejection::Malformed),
                "version {version}"
            );
        }
        // A version 2 payload that claims to be version 1 does not parse either.
        let mut p = payload.clone();
        p[0] = VERSION_LEGACY;
        let tag = keys.mac(Purpose::Cookie, &mac_input("new", &p)).1;
        let forged = format!("{}.new.{}", B64.encode(&p), B64.encode(tag));
        assert!(Approval::open(&forged, &keys, &[7; 16], 1500).is_err());
    }

    #[test]
    fn session_hash_depends_on_configured_cookies_only() {
        let names = vec!["S".to_string(), "T".to_string()];
        let a = [("x", "1"), ("S", "abc")];
        let b = [("S", "abc"), ("y", "2")];
        let c = [("S", "abd")];
        let h = |c: &[(&'static str, &'static str)]| {
            session_hash(&names, |n| c.iter().find(|(k, _)| *k == n).map(|(_, v)| *v))
        };
        assert_eq!(h(&a), h(&b));
        assert_ne!(h(&a), h(&c));
        assert_eq!(h(&[("x", "1")]), None);
        assert_eq!(h(&[("S", "")]), None);
    }
}

#[cfg(test)]
mod props;
