//! The crypto core: master key ring, AEAD for data at rest, MACs and random values, all on
//! aws-lc-rs (already in the build through rustls). Recovery codes, built on it, are in
//! [`super::recovery`].
//!
//! # Why a key ring
//!
//! TOTP secrets live in Redis, so they are encrypted under a master key that is not
//! (RFC 4226 7.5, NIST SP 800-63B 5.1.4.2). Master keys must be rotatable without
//! re-enrolling every user: every sealed value and every MAC names the id of the key that
//! made it, new values use the *active* key, and older values still open while their key
//! stays in the ring. [`KeyRing::key_id_of`] finds values that still need re-encryption.
//!
//! # Key derivation
//!
//! A master key is never used directly. For each master key `M` and [`Purpose`] `P`:
//!
//! ```text
//!   PRK         = HKDF-Extract(salt = "mfa-gateway/hkdf-salt/v1", M)        (SHA-256)
//!   AEAD key    = HKDF-Expand(PRK, "mfa-gateway/v1/aead/"   || label(P), 32)
//!   MAC key     = HKDF-Expand(PRK, "mfa-gateway/v1/mac/"    || label(P), 32)
//!   derive(ctx) = HKDF-Expand(PRK, "mfa-gateway/v1/derive/" || label(P) || 0x00 || ctx, 32)
//! ```
//!
//! so a value sealed for one purpose (say a cookie) can never be opened or forged as
//! another (say a TOTP secret). AEAD and MAC subkeys are computed once in [`KeyRing::new`].
//!
//! # Sealed value layout
//!
//! ```text
//!   KeyRing::seal:  | 0x01 | id len (1..=16) | key id | nonce (12) | ciphertext | tag (16) |
//!   seal_with:      | 0x02 | nonce (12) | ciphertext | tag (16) |
//! ```
//!
//! AES-256-GCM with a random 96-bit nonce. The header bytes (version, id length, id) are
//! authenticated together with the caller's `aad`, which binds a value to its context
//! (e.g. the username a TOTP secret belongs to), so a value copied to another user's record
//! fails to open. Every parse is bounds-checked: truncated or garbage input is an error.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::{constant_time, digest, hkdf, hmac, rand};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{
    GeneralPurpose, GeneralPurposeConfig, STANDARD, URL_SAFE_NO_PAD,
};
use zeroize::Zeroizing;

/// Minimum size of a master key (256 bits).
pub const MIN_KEY_LEN: usize = 32;
/// Longest key id; ids use `[A-Za-z0-9_-]`.
pub const MAX_KEY_ID_LEN: usize = 16;

const RING_BLOB_V1: u8 = 0x01;
const KEY_BLOB_V1: u8 = 0x02;
const TAG_LEN: usize = 16;

const HKDF_SALT: &[u8] = b"mfa-gateway/hkdf-salt/v1";
const INFO_AEAD: &[u8] = b"mfa-gateway/v1/aead/";
const INFO_MAC: &[u8] = b"mfa-gateway/v1/mac/";
const INFO_DERIVE: &[u8] = b"mfa-gateway/v1/derive/";

/// Base64 decoders that accept padding or its absence.
const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const LENIENT_URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Errors of the crypto core. Messages never contain key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("key material is empty; create a key with `mfa-gateway gen-key`")]
    KeyMaterialEmpty,
    #[error(
        "key material is not valid base64 (standard or URL-safe alphabet, padding optional); create a key with `mfa-gateway gen-key`"
    )]
    KeyMaterialEncoding,
    #[error(
        "key material decodes to {bytes} bytes; at least {MIN_KEY_LEN} random bytes are required (create a key with `mfa-gateway gen-key`)"
    )]
    KeyTooShort { bytes: usize },
    #[error(
        "key material is one byte repeated, not random; create a key with `mfa-gateway gen-key`"
    )]
    KeyNotRandom,
    #[error("key {id:?} has {bytes} bytes; at least {MIN_KEY_LEN} random bytes are required")]
    RingKeyTooShort { id: String, bytes: usize },
    #[error(
        "key id {id:?} is invalid: use 1 to {MAX_KEY_ID_LEN} characters from A-Z, a-z, 0-9, '_' and '-'"
    )]
    InvalidKeyId { id: String },
    #[error("key id {id:?} is configured twice")]
    DuplicateKeyId { id: String },
    #[error("the active key id {id:?} is not among the configured keys")]
    ActiveKeyMissing { id: String },
    #[error("no master keys configured")]
    NoKeys,
    #[error("the crypto library rejected a key")]
    KeySetup,
    #[error("encryption failed")]
    Seal,
    #[error("encrypted value is malformed or truncated")]
    Malformed,
    #[error(
        "encrypted value has unsupported format version {version}; it was not written by this gateway version"
    )]
    UnsupportedVersion { version: u8 },
    #[error(
        "encrypted value was sealed under key id {id:?}, which is not configured; add that key back to the key ring"
    )]
    UnknownKeyId { id: String },
    #[error("decryption failed: wrong key, wrong context or the value was altered")]
    Open,
    #[error("not a recovery code: expected 16 characters like abcd-efgh-jkmn-pqrs")]
    InvalidRecoveryCode,
}

// === Key material ===

/// Parse operator-supplied key material: base64 (standard or URL-safe alphabet, padding
/// optional) of at least 32 random bytes. Whitespace anywhere is ignored, so wrapped output
/// of `openssl rand -base64 64` works as well.
pub fn parse_key_material(text: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let compact: Zeroizing<String> =
        Zeroizing::new(text.chars().filter(|c| !c.is_ascii_whitespace()).collect());
    if compact.is_empty() {
        return Err(CryptoError::KeyMaterialEmpty);
    }
    let url_safe = compact.contains(['-', '_']);
    let standard = compact.contains(['+', '/']);
    let engine = match (url_safe, standard) {
        (true, true) => return Err(CryptoError::KeyMaterialEncoding),
        (true, false) => &LENIENT_URL_SAFE,
        (false, _) => &LENIENT_STANDARD,
    };
    let bytes = Zeroizing::new(
        engine
            .decode(compact.as_bytes())
            .map_err(|_| CryptoError::KeyMaterialEncoding)?,
    );
    if bytes.len() < MIN_KEY_LEN {
        return Err(CryptoError::KeyTooShort { bytes: bytes.len() });
    }
    if let Some((first, rest)) = bytes.split_first()
        && rest.iter().all(|b| b == first)
    {
        return Err(CryptoError::KeyNotRandom);
    }
    Ok(bytes)
}

/// New key material for `mfa-gateway gen-key`: standard base64 of 32 random bytes.
pub fn generate_key_material() -> String {
    let key = Zeroizing::new(random_bytes::<MIN_KEY_LEN>());
    STANDARD.encode(key.as_slice())
}

// === Purposes ===

/// Domain-separation labels: each use of the master key gets its own subkeys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Encrypting TOTP secrets at rest.
    TotpSecret,
    /// Protecting recovery-code records.
    RecoveryCode,
    /// Gateway session cookies.
    Cookie,
    /// CSRF tokens of the gateway's own forms.
    Csrf,
    /// Pending login challenges (state between password and TOTP).
    Challenge,
    /// Signing audit records.
    AuditSign,
    /// The "remember this browser" cookie (`mfa::remember`).
    RememberBrowser,
    /// The keyed hash of a one-time enrollment code (`auth::enrollment_code`).
    EnrollmentCode,
}

impl Purpose {
    /// Every purpose, for key setup and tests.
    pub const ALL: [Purpose; 8] = [
        Purpose::TotpSecret,
        Purpose::RecoveryCode,
        Purpose::Cookie,
        Purpose::Csrf,
        Purpose::Challenge,
        Purpose::AuditSign,
        Purpose::RememberBrowser,
        Purpose::EnrollmentCode,
    ];

    /// The label mixed into key derivation. Changing one makes existing data unreadable.
    pub fn label(self) -> &'static str {
        match self {
            Purpose::TotpSecret => "totp-secret",
            Purpose::RecoveryCode => "recovery-code",
            Purpose::Cookie => "cookie",
            Purpose::Csrf => "csrf",
            Purpose::Challenge => "challenge",
            Purpose::AuditSign => "audit-sign",
            Purpose::RememberBrowser => "remember-browser",
            Purpose::EnrollmentCode => "enrollment-code",
        }
    }
}

// === Key ring ===

/// Subkeys of one master key for one purpose.
struct SubKeys {
    aead: RandomizedNonceKey,
    mac: hmac::Key,
}

/// Subkeys of one master key for every purpose (a struct rather than an array so that
/// lookup is total and cannot go out of bounds).
struct PurposeKeys {
    totp_secret: SubKeys,
    recovery_code: SubKeys,
    cookie: SubKeys,
    csrf: SubKeys,
    challenge: SubKeys,
    audit_sign: SubKeys,
    remember_browser: SubKeys,
    enrollment_code: SubKeys,
}

impl PurposeKeys {
    fn get(&self, purpose: Purpose) -> &SubKeys {
        match purpose {
            Purpose::TotpSecret => &self.totp_secret,
            Purpose::RecoveryCode => &self.recovery_code,
            Purpose::Cookie => &self.cookie,
            Purpose::Csrf => &self.csrf,
            Purpose::Challenge => &self.challenge,
            Purpose::AuditSign => &self.audit_sign,
            Purpose::RememberBrowser => &self.remember_browser,
            Purpose::EnrollmentCode => &self.enrollment_code,
        }
    }
}

/// One master key, reduced to its HKDF PRK (zeroed on drop by aws-lc-rs) and subkeys.
struct RingKey {
    id: String,
    prk: hkdf::Prk,
    purposes: PurposeKeys,
}

impl RingKey {
    fn new(id: String, master: &[u8]) -> Result<RingKey, CryptoError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(master);
        let sub = |purpose: Purpose| -> Result<SubKeys, CryptoError> {
            let label = purpose.label().as_bytes();
            let aead_key = expand32(&prk, &[INFO_AEAD, label])?;
            let mac_key = expand32(&prk, &[INFO_MAC, label])?;
            Ok(SubKeys {
                aead: RandomizedNonceKey::new(&AES_256_GCM, aead_key.as_slice())
                    .map_err(|_| CryptoError::KeySetup)?,
                mac: hmac::Key::new(hmac::HMAC_SHA256, mac_key.as_slice()),
            })
        };
        let purposes = PurposeKeys {
            totp_secret: sub(Purpose::TotpSecret)?,
            recovery_code: sub(Purpose::RecoveryCode)?,
            cookie: sub(Purpose::Cookie)?,
            csrf: sub(Purpose::Csrf)?,
            challenge: sub(Purpose::Challenge)?,
            audit_sign: sub(Purpose::AuditSign)?,
            remember_browser: sub(Purpose::RememberBrowser)?,
            enrollment_code: sub(Purpose::EnrollmentCode)?,
        };
        Ok(RingKey { id, prk, purposes })
    }
}

fn expand32(prk: &hkdf::Prk, info: &[&[u8]]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let mut out = Zeroizing::new([0u8; 32]);
    prk.expand(info, hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(out.as_mut_slice()))
        .map_err(|_| CryptoError::KeySetup)?;
    Ok(out)
}

fn is_valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Master keys by id, one of them active. `Debug` shows ids only.
pub struct KeyRing {
    active: RingKey,
    others: Vec<RingKey>,
    /// Unique per ring built in this process, so that what was verified under one ring is
    /// never taken for verified under another (see `gate::verified`).
    instance: u64,
}

/// Source of [`KeyRing::instance`].
static RING_INSTANCES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("active", &self.active.id)
            .field("ids", &self.key_ids().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Build a ring from `(id, master key)` pairs. Ids are 1 to 16 characters of
    /// `[A-Za-z0-9_-]`, unique; keys have at least 32 bytes; `active` must be one of them.
    pub fn new(active: &str, keys: Vec<(String, Zeroizing<Vec<u8>>)>) -> Result<Self, CryptoError> {
        if keys.is_empty() {
            return Err(CryptoError::NoKeys);
        }
        for (index, (id, key)) in keys.iter().enumerate() {
            if !is_valid_key_id(id) {
                return Err(CryptoError::InvalidKeyId { id: id.clone() });
            }
            if keys.iter().take(index).any(|(other, _)| other == id) {
                return Err(CryptoError::DuplicateKeyId { id: id.clone() });
            }
            if key.len() < MIN_KEY_LEN {
                return Err(CryptoError::RingKeyTooShort {
                    id: id.clone(),
                    bytes: key.len(),
                });
            }
        }
        let mut active_key = None;
        let mut others = Vec::with_capacity(keys.len().saturating_sub(1));
        for (id, key) in keys {
            let ring_key = RingKey::new(id, &key)?;
            if ring_key.id == active {
                active_key = Some(ring_key);
            } else {
                others.push(ring_key);
            }
        }
        let active = active_key.ok_or_else(|| CryptoError::ActiveKeyMissing {
            id: active.to_owned(),
        })?;
        let instance = RING_INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(KeyRing {
            active,
            others,
            instance,
        })
    }

    /// A number no other ring built in this process has.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// Id of the key used for new seals and MACs.
    pub fn active_id(&self) -> &str {
        &self.active.id
    }

    /// Every configured key id, the active one first.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.active.id.as_str()).chain(self.others.iter().map(|k| k.id.as_str()))
    }

    fn key(&self, id: &str) -> Option<&RingKey> {
        std::iter::once(&self.active)
            .chain(self.others.iter())
            .find(|k| k.id == id)
    }

    /// Encrypt `plaintext` with the active key's subkey for `purpose`; `aad` binds the
    /// context (it must be given again to open). Layout in the module docs.
    pub fn seal(
        &self,
        purpose: Purpose,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let id = self.active.id.as_bytes();
        let id_len = u8::try_from(id.len()).map_err(|_| CryptoError::Seal)?;
        let mut blob = Vec::with_capacity(
            plaintext
                .len()
                .saturating_add(2 + id.len() + NONCE_LEN + TAG_LEN),
        );
        blob.push(RING_BLOB_V1);
        blob.push(id_len);
        blob.extend_from_slice(id);
        let full_aad = [blob.as_slice(), aad].concat();
        let key = &self.active.purposes.get(purpose).aead;
        seal_append(key, &full_aad, plaintext, blob)
    }

    /// Decrypt a value from [`KeyRing::seal`] made with any key still in the ring.
    pub fn open(
        &self,
        purpose: Purpose,
        aad: &[u8],
        blob: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let parsed = parse_ring_blob(blob)?;
        let key = self
            .key(parsed.id)
            .ok_or_else(|| CryptoError::UnknownKeyId {
                id: parsed.id.to_owned(),
            })?;
        let full_aad = [parsed.header, aad].concat();
        open_parts(
            &key.purposes.get(purpose).aead,
            &full_aad,
            parsed.nonce,
            parsed.sealed,
        )
    }

    /// The key id a sealed value names, to find values needing re-encryption after a
    /// rotation. `None` if `blob` is not a well-formed [`KeyRing::seal`] value.
    pub fn key_id_of(blob: &[u8]) -> Option<&str> {
        parse_ring_blob(blob).ok().map(|p| p.id)
    }

    /// HMAC-SHA256 of `data` with the active key's subkey for `purpose`: the key id to
    /// store next to the tag, and the tag.
    pub fn mac(&self, purpose: Purpose, data: &[u8]) -> (&str, [u8; 32]) {
        let tag = hmac::sign(&self.active.purposes.get(purpose).mac, data);
        (self.active_id(), to_array32(tag.as_ref()))
    }

    /// HMAC-SHA256 of `data` with the subkey for `purpose` of key `key_id` (any key in the
    /// ring, not only the active one); `None` if the ring has no such key. For keyed values
    /// whose key id is stored with them (recovery codes, see `auth::recovery`).
    pub fn mac_under(
        &self,
        purpose: Purpose,
        key_id: &str,
        data: &[u8],
    ) -> Option<Zeroizing<[u8; 32]>> {
        let key = self.key(key_id)?;
        let tag = hmac::sign(&key.purposes.get(purpose).mac, data);
        Some(Zeroizing::new(to_array32(tag.as_ref())))
    }

    /// Check a tag from [`KeyRing::mac`] made with key `key_id` (any key in the ring), in
    /// constant time. Unknown key ids and wrong tag lengths are simply `false`.
    pub fn verify_mac(&self, purpose: Purpose, key_id: &str, data: &[u8], tag: &[u8]) -> bool {
        match self.key(key_id) {
            Some(key) => hmac::verify(&key.purposes.get(purpose).mac, data, tag).is_ok(),
            None => false,
        }
    }

    /// A 32-byte key derived from master key `key_id`, `purpose` and `context` (e.g. a random
    /// challenge id), for sealing data with [`seal_with`] whose key only a holder of the
    /// context can re-derive. `None` if `key_id` is not in the ring.
    pub fn derive(
        &self,
        purpose: Purpose,
        key_id: &str,
        context: &[u8],
    ) -> Option<Zeroizing<[u8; 32]>> {
        let key = self.key(key_id)?;
        let label = purpose.label().as_bytes();
        expand32(&key.prk, &[INFO_DERIVE, label, &[0u8], context]).ok()
    }
}

struct RingBlob<'a> {
    header: &'a [u8],
    id: &'a str,
    nonce: &'a [u8],
    sealed: &'a [u8],
}

fn parse_ring_blob(blob: &[u8]) -> Result<RingBlob<'_>, CryptoError> {
    let (&version, rest) = blob.split_first().ok_or(CryptoError::Malformed)?;
    if version != RING_BLOB_V1 {
        return Err(CryptoError::UnsupportedVersion { version });
    }
    let (&id_len, rest) = rest.split_first().ok_or(CryptoError::Malformed)?;
    let id_len = usize::from(id_len);
    let (id, rest) = rest
        .split_at_checked(id_len)
        .ok_or(CryptoError::Malformed)?;
    let id = std::str::from_utf8(id).map_err(|_| CryptoError::Malformed)?;
    if !is_valid_key_id(id) {
        return Err(CryptoError::Malformed);
    }
    let header = blob.get(..2 + id_len).ok_or(CryptoError::Malformed)?;
    let (nonce, sealed) = rest
        .split_at_checked(NONCE_LEN)
        .ok_or(CryptoError::Malformed)?;
    if sealed.len() < TAG_LEN {
        return Err(CryptoError::Malformed);
    }
    Ok(RingBlob {
        header,
        id,
        nonce,
        sealed,
    })
}

/// Seal `plaintext` and append nonce, ciphertext and tag to `blob` (which holds the header).
fn seal_append(
    key: &RandomizedNonceKey,
    aad: &[u8],
    plaintext: &[u8],
    mut blob: Vec<u8>,
) -> Result<Vec<u8>, CryptoError> {
    let mut in_out = plaintext.to_vec();
    let nonce = key
        .seal_in_place_append_tag(Aad::from(aad), &mut in_out)
        .map_err(|_| CryptoError::Seal)?;
    blob.extend_from_slice(nonce.as_ref());
    blob.extend_from_slice(&in_out);
    Ok(blob)
}

fn open_parts(
    key: &RandomizedNonceKey,
    aad: &[u8],
    nonce: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Malformed)?;
    let mut buf = Zeroizing::new(sealed.to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(aad), buf.as_mut_slice())
        .map_err(|_| CryptoError::Open)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

// === Sealing under a derived key ===

/// AES-256-GCM under a caller-held key (e.g. from [`KeyRing::derive`]); layout
/// `0x02 | nonce | ciphertext | tag`, with the version byte authenticated alongside `aad`.
pub fn seal_with(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let key = RandomizedNonceKey::new(&AES_256_GCM, key).map_err(|_| CryptoError::KeySetup)?;
    let blob = vec![KEY_BLOB_V1];
    let full_aad = [&[KEY_BLOB_V1][..], aad].concat();
    seal_append(&key, &full_aad, plaintext, blob)
}

/// Open a value from [`seal_with`].
pub fn open_with(
    key: &[u8; 32],
    aad: &[u8],
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let (&version, rest) = blob.split_first().ok_or(CryptoError::Malformed)?;
    if version != KEY_BLOB_V1 {
        return Err(CryptoError::UnsupportedVersion { version });
    }
    let (nonce, sealed) = rest
        .split_at_checked(NONCE_LEN)
        .ok_or(CryptoError::Malformed)?;
    if sealed.len() < TAG_LEN {
        return Err(CryptoError::Malformed);
    }
    let key = RandomizedNonceKey::new(&AES_256_GCM, key).map_err(|_| CryptoError::KeySetup)?;
    let full_aad = [&[KEY_BLOB_V1][..], aad].concat();
    open_parts(&key, &full_aad, nonce, sealed)
}

// === Small primitives ===

/// `N` bytes from the AWS-LC CSPRNG.
///
/// AWS-LC's `RAND_bytes` never reports failure (it aborts the process itself when it cannot
/// obtain entropy), so the error branch is unreachable in practice; should it ever be taken,
/// the process aborts rather than hand out predictable bytes.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if rand::fill(&mut out).is_err() {
        std::process::abort();
    }
    out
}

/// A random token: 32 random bytes, base64url without padding (43 characters).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    to_array32(digest::digest(&digest::SHA256, data).as_ref())
}

/// Equality in constant time with respect to the contents (lengths are not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// Copy a 32-byte digest or tag into an array without a panicking conversion.
fn to_array32(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = *b;
    }
    out
}

/// Key rings for unit tests elsewhere in the crate.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod testing {
    use super::*;

    /// 32 bytes made from `fill`; not one repeated byte, so it would also pass
    /// `parse_key_material`.
    pub fn key(fill: u8) -> Zeroizing<Vec<u8>> {
        Zeroizing::new((0..32u8).map(|i| i.wrapping_mul(7) ^ fill).collect())
    }

    /// A ring of the keys `(id, fill)` with `active` active.
    pub fn ring(active: &str, ids: &[(&str, u8)]) -> KeyRing {
        KeyRing::new(
            active,
            ids.iter()
                .map(|(id, fill)| ((*id).to_owned(), key(*fill)))
                .collect(),
        )
        .unwrap()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::testing::{key, ring};
    use super::*;

    #[test]
    fn keyring_is_shareable_across_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<KeyRing>();
    }

    #[test]
    fn seal_open_round_trip() {
        let r = ring("k1", &[("k1", 1)]);
        for plaintext in [&b""[..], b"x", b"a twenty byte secret", &[0u8; 1000]] {
            let blob = r.seal(Purpose::TotpSecret, b"alice", plaintext).unwrap();
            assert_eq!(
                blob.len(),
                1 + 1 + 2 + NONCE_LEN + plaintext.len() + TAG_LEN
            );
            assert_eq!(blob.first(), Some(&RING_BLOB_V1));
            assert_eq!(KeyRing::key_id_of(&blob), Some("k1"));
            let opened = r.open(Purpose::TotpSecret, b"alice", &blob).unwrap();
            assert_eq!(opened.as_slice(), plaintext);
        }
    }

    #[test]
    fn seal_uses_fresh_nonces() {
        let r = ring("k1", &[("k1", 1)]);
        let a = r.seal(Purpose::Cookie, b"", b"same").unwrap();
        let b = r.seal(Purpose::Cookie, b"", b"same").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn open_rejects_wrong_context_purpose_key_or_tampering() {
        let r = ring("k1", &[("k1", 1)]);
        let blob = r.seal(Purpose::TotpSecret, b"alice", b"secret").unwrap();
        assert_eq!(
            r.open(Purpose::TotpSecret, b"bob", &blob).unwrap_err(),
            CryptoError::Open
        );
        assert_eq!(
            r.open(Purpose::Cookie, b"alice", &blob).unwrap_err(),
            CryptoError::Open
        );

        // Same id, different key material.
        let other = ring("k1", &[("k1", 2)]);
        assert_eq!(
            other
                .open(Purpose::TotpSecret, b"alice", &blob)
                .unwrap_err(),
            CryptoError::Open
        );

        // Flip every single byte after the header in turn.
        for i in 4..blob.len() {
            let mut t = blob.clone();
            if let Some(b) = t.get_mut(i) {
                *b ^= 0x01;
            }
            assert!(
                r.open(Purpose::TotpSecret, b"alice", &t).is_err(),
                "byte {i}"
            );
        }
        // Appending data breaks the tag too.
        let mut longer = blob.clone();
        longer.push(0);
        assert_eq!(
            r.open(Purpose::TotpSecret, b"alice", &longer).unwrap_err(),
            CryptoError::Open
        );
    }

    #[test]
    fn open_survives_every_truncation_and_garbage() {
        let r = ring("k1", &[("k1", 1)]);
        let blob = r.seal(Purpose::TotpSecret, b"alice", b"secret").unwrap();
        for len in 0..blob.len() {
            let cut = blob.get(..len).unwrap();
            assert!(
                r.open(Purpose::TotpSecret, b"alice", cut).is_err(),
                "len {len}"
            );
        }
        assert_eq!(
            r.open(Purpose::TotpSecret, b"", b"").unwrap_err(),
            CryptoError::Malformed
        );
        assert_eq!(
            r.open(Purpose::TotpSecret, b"", &[0x09, 1, 2]).unwrap_err(),
            CryptoError::UnsupportedVersion { version: 9 }
        );
        // Id length 0, id too long, id with a bad character.
        assert_eq!(
            r.open(Purpose::TotpSecret, b"", &[RING_BLOB_V1, 0, 0, 0])
                .unwrap_err(),
            CryptoError::Malformed
        );
        let mut long_id = vec![RING_BLOB_V1, 17];
        long_id.extend_from_slice(&[b'a'; 17 + NONCE_LEN + TAG_LEN]);
        assert_eq!(
            r.open(Purpose::TotpSecret, b"", &long_id).unwrap_err(),
            CryptoError::Malformed
        );
        let mut bad_id = vec![RING_BLOB_V1, 2, b'k', b'!'];
        bad_id.extend_from_slice(&[0; NONCE_LEN + TAG_LEN]);
        assert_eq!(
            r.open(Purpose::TotpSecret, b"", &bad_id).unwrap_err(),
            CryptoError::Malformed
        );
        assert_eq!(KeyRing::key_id_of(&bad_id), None);
        assert_eq!(KeyRing::key_id_of(&[]), None);
        // Deterministic pseudo-random garbage of many lengths.
        let mut x: u32 = 0x1234_5678;
        for len in 0..300 {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x.to_le_bytes()[0]
                })
                .collect();
            assert!(r.open(Purpose::TotpSecret, b"", &junk).is_err());
            let _ = KeyRing::key_id_of(&junk);
        }
    }

    #[test]
    fn header_is_authenticated() {
        // Two ids with the same material: only the authenticated header tells them apart.
        let r = KeyRing::new(
            "a",
            vec![("a".to_owned(), key(1)), ("b".to_owned(), key(1))],
        )
        .unwrap();
        let blob = r.seal(Purpose::TotpSecret, b"alice", b"secret").unwrap();
        assert_eq!(blob.get(..3), Some(&[RING_BLOB_V1, 1, b'a'][..]));
        let mut relabelled = blob.clone();
        if let Some(id) = relabelled.get_mut(2) {
            *id = b'b';
        }
        assert_eq!(KeyRing::key_id_of(&relabelled), Some("b"));
        assert_eq!(
            r.open(Purpose::TotpSecret, b"alice", &relabelled)
                .unwrap_err(),
            CryptoError::Open
        );
    }

    #[test]
    fn open_names_an_unknown_key_id() {
        let old = ring("old", &[("old", 1)]);
        let blob = old.seal(Purpose::TotpSecret, b"alice", b"secret").unwrap();
        let new = ring("new", &[("new", 2)]);
        assert_eq!(
            new.open(Purpose::TotpSecret, b"alice", &blob).unwrap_err(),
            CryptoError::UnknownKeyId {
                id: "old".to_owned()
            }
        );
    }

    #[test]
    fn rotation_keeps_old_values_readable() {
        let before = ring("k1", &[("k1", 1)]);
        let old_blob = before
            .seal(Purpose::TotpSecret, b"alice", b"secret")
            .unwrap();
        let (old_id, old_tag) = before.mac(Purpose::Cookie, b"session");
        let old_id = old_id.to_owned();

        let after = ring("k2", &[("k1", 1), ("k2", 2)]);
        assert_eq!(after.active_id(), "k2");
        assert_eq!(after.key_ids().collect::<Vec<_>>(), ["k2", "k1"]);
        assert_eq!(KeyRing::key_id_of(&old_blob), Some("k1"));
        assert_eq!(
            after
                .open(Purpose::TotpSecret, b"alice", &old_blob)
                .unwrap()
                .as_slice(),
            b"secret"
        );
        // New values use the new key.
        let new_blob = after
            .seal(Purpose::TotpSecret, b"alice", b"secret")
            .unwrap();
        assert_eq!(KeyRing::key_id_of(&new_blob), Some("k2"));
        // Old MACs still verify under their id; new MACs are made with k2.
        assert!(after.verify_mac(Purpose::Cookie, &old_id, b"session", &old_tag));
        let (new_id, new_tag) = after.mac(Purpose::Cookie, b"session");
        assert_eq!(new_id, "k2");
        assert_ne!(new_tag, old_tag);
        assert!(after.verify_mac(Purpose::Cookie, "k2", b"session", &new_tag));
        // A tag is only valid under the id it was made with.
        assert!(!after.verify_mac(Purpose::Cookie, "k2", b"session", &old_tag));
    }

    #[test]
    fn mac_verification_rejects_wrong_inputs() {
        let r = ring("k1", &[("k1", 1)]);
        let (id, tag) = r.mac(Purpose::Csrf, b"data");
        assert_eq!(id, "k1");
        assert!(r.verify_mac(Purpose::Csrf, "k1", b"data", &tag));
        assert!(!r.verify_mac(Purpose::Csrf, "k1", b"datA", &tag));
        assert!(!r.verify_mac(Purpose::Cookie, "k1", b"data", &tag));
        assert!(!r.verify_mac(Purpose::Csrf, "k9", b"data", &tag));
        assert!(!r.verify_mac(Purpose::Csrf, "k1", b"data", tag.get(..31).unwrap()));
        assert!(!r.verify_mac(Purpose::Csrf, "k1", b"data", &[]));
        let mut bad = tag;
        bad[0] ^= 1;
        assert!(!r.verify_mac(Purpose::Csrf, "k1", b"data", &bad));
        // MACs are deterministic and differ per purpose.
        assert_eq!(r.mac(Purpose::Csrf, b"data").1, tag);
        let tags: Vec<[u8; 32]> = Purpose::ALL.iter().map(|p| r.mac(*p, b"data").1).collect();
        for (i, a) in tags.iter().enumerate() {
            for b in tags.iter().skip(i + 1) {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn derive_differs_per_context_purpose_and_key() {
        let r = ring("k1", &[("k1", 1), ("k2", 2)]);
        let a = r.derive(Purpose::Challenge, "k1", b"challenge-a").unwrap();
        assert_eq!(
            *a,
            *r.derive(Purpose::Challenge, "k1", b"challenge-a").unwrap()
        );
        assert_ne!(
            *a,
            *r.derive(Purpose::Challenge, "k1", b"challenge-b").unwrap()
        );
        assert_ne!(
            *a,
            *r.derive(Purpose::Cookie, "k1", b"challenge-a").unwrap()
        );
        assert_ne!(
            *a,
            *r.derive(Purpose::Challenge, "k2", b"challenge-a").unwrap()
        );
        // The label/context separator keeps "cookie" + "x" apart from "cookiex" + "".
        assert_ne!(
            *r.derive(Purpose::Challenge, "k1", b"").unwrap(),
            *r.derive(Purpose::Challenge, "k1", b"\0").unwrap()
        );
        assert!(r.derive(Purpose::Challenge, "nope", b"x").is_none());
    }

    #[test]
    fn seal_with_round_trip_and_failures() {
        let r = ring("k1", &[("k1", 1)]);
        let k = r.derive(Purpose::Challenge, "k1", b"id-1").unwrap();
        let blob = seal_with(&k, b"ctx", b"pending secret").unwrap();
        assert_eq!(blob.first(), Some(&KEY_BLOB_V1));
        assert_eq!(
            open_with(&k, b"ctx", &blob).unwrap().as_slice(),
            b"pending secret"
        );
        assert_eq!(
            open_with(&k, b"other", &blob).unwrap_err(),
            CryptoError::Open
        );
        let k2 = r.derive(Purpose::Challenge, "k1", b"id-2").unwrap();
        assert_eq!(
            open_with(&k2, b"ctx", &blob).unwrap_err(),
            CryptoError::Open
        );
        for len in 0..blob.len() {
            assert!(open_with(&k, b"ctx", blob.get(..len).unwrap()).is_err());
        }
        // A key-ring blob is not a seal_with blob and vice versa.
        let ring_blob = r.seal(Purpose::Challenge, b"ctx", b"x").unwrap();
        assert_eq!(
            open_with(&k, b"ctx", &ring_blob).unwrap_err(),
            CryptoError::UnsupportedVersion {
                version: RING_BLOB_V1
            }
        );
        assert_eq!(
            r.open(Purpose::Challenge, b"ctx", &blob).unwrap_err(),
            CryptoError::UnsupportedVersion {
                version: KEY_BLOB_V1
            }
        );
    }

    #[test]
    fn keyring_new_validates_ids_and_keys() {
        let k = |id: &str| (id.to_owned(), key(1));
        assert_eq!(KeyRing::new("a", vec![]).unwrap_err(), CryptoError::NoKeys);
        assert_eq!(
            KeyRing::new("a", vec![k("b")]).unwrap_err(),
            CryptoError::ActiveKeyMissing { id: "a".to_owned() }
        );
        for bad in ["", "with space", "k!", "x/y", "abcdefghijklmnopq", "ключ"] {
            assert_eq!(
                KeyRing::new(bad, vec![k(bad)]).unwrap_err(),
                CryptoError::InvalidKeyId { id: bad.to_owned() },
                "{bad:?}"
            );
        }
        assert!(KeyRing::new("Ab-_09abcdefghij", vec![k("Ab-_09abcdefghij")]).is_ok());
        assert_eq!(
            KeyRing::new("a", vec![k("a"), k("a")]).unwrap_err(),
            CryptoError::DuplicateKeyId { id: "a".to_owned() }
        );
        assert_eq!(
            KeyRing::new("a", vec![("a".to_owned(), Zeroizing::new(vec![7; 31]))]).unwrap_err(),
            CryptoError::RingKeyTooShort {
                id: "a".to_owned(),
                bytes: 31
            }
        );
    }

    #[test]
    fn keyring_debug_hides_keys() {
        let r = ring("k2", &[("k1", 1), ("k2", 2)]);
        let text = format!("{r:?}");
        assert_eq!(
            text,
            "KeyRing { active: \"k2\", ids: [\"k2\", \"k1\"], .. }"
        );
    }

    #[test]
    fn parse_key_material_accepts_both_alphabets_with_or_without_padding() {
        // 33 bytes chosen so that standard and URL-safe encodings differ.
        let raw: Vec<u8> = (0..33u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(0xf8))
            .collect();
        let std_text = STANDARD.encode(&raw);
        assert!(std_text.contains(['+', '/']), "{std_text}");
        let url_text = base64::engine::general_purpose::URL_SAFE.encode(&raw);
        assert!(url_text.contains(['-', '_']), "{url_text}");
        for text in [
            std_text.clone(),
            std_text.trim_end_matches('=').to_owned(),
            url_text.clone(),
            url_text.trim_end_matches('=').to_owned(),
            format!("  \n{std_text}\n"),
        ] {
            assert_eq!(
                parse_key_material(&text).unwrap().as_slice(),
                raw.as_slice(),
                "{text:?}"
            );
        }
        // 32 bytes encode with padding; both forms work.
        let raw32: Vec<u8> = (0..32u8).collect();
        let padded = STANDARD.encode(&raw32);
        assert!(padded.ends_with('='));
        assert_eq!(
            parse_key_material(&padded).unwrap().as_slice(),
            raw32.as_slice()
        );
        assert_eq!(
            parse_key_material(padded.trim_end_matches('='))
                .unwrap()
                .as_slice(),
            raw32.as_slice()
        );
        // Wrapped output (a newline in the middle) is accepted.
        let (head, tail) = padded.split_at(20);
        assert_eq!(
            parse_key_material(&format!("{head}\n{tail}"))
                .unwrap()
                .as_slice(),
            raw32.as_slice()
        );
    }

    #[test]
    fn parse_key_material_rejects_short_and_garbage() {
        assert_eq!(
            parse_key_material("").unwrap_err(),
            CryptoError::KeyMaterialEmpty
        );
        assert_eq!(
            parse_key_material(" \n\t").unwrap_err(),
            CryptoError::KeyMaterialEmpty
        );
        let short = STANDARD.encode((0..31u8).collect::<Vec<_>>());
        assert_eq!(
            parse_key_material(&short).unwrap_err(),
            CryptoError::KeyTooShort { bytes: 31 }
        );
        assert_eq!(
            parse_key_material("not base64 at all!").unwrap_err(),
            CryptoError::KeyMaterialEncoding
        );
        assert_eq!(
            parse_key_material("ab+c-d/e_f").unwrap_err(),
            CryptoError::KeyMaterialEncoding
        );
        assert_eq!(
            parse_key_material("0123456789abcdef0123456789abcdef0123456789abcdef\u{e9}")
                .unwrap_err(),
            CryptoError::KeyMaterialEncoding
        );
        assert_eq!(
            parse_key_material(&STANDARD.encode([0u8; 32])).unwrap_err(),
            CryptoError::KeyNotRandom
        );
        // Error text points the operator at the fix and leaks nothing.
        let msg = CryptoError::KeyTooShort { bytes: 31 }.to_string();
        assert!(msg.contains("mfa-gateway gen-key"), "{msg}");
    }

    #[test]
    fn generated_key_material_parses() {
        let text = generate_key_material();
        assert_eq!(text.len(), 44);
        let key = parse_key_material(&text).unwrap();
        assert_eq!(key.len(), 32);
        assert_ne!(generate_key_material(), text);
    }

    #[test]
    fn primitives() {
        assert_eq!(
            sha256(b"abc"),
            [
                0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
                0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
                0xf2, 0x00, 0x15, 0xad
            ]
        );
        assert!(ct_eq(b"same", b"same"));
        assert!(!ct_eq(b"same", b"samE"));
        assert!(!ct_eq(b"same", b"sam"));
        assert!(ct_eq(b"", b""));
        let t = random_token();
        assert_eq!(t.len(), 43);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(random_token(), t);
        assert_ne!(random_bytes::<16>(), random_bytes::<16>());
        let empty: [u8; 0] = random_bytes::<0>();
        assert!(empty.is_empty());
    }
}

#[cfg(test)]
mod props;
