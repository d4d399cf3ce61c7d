//! Passkeys and security keys (WebAuthn), beside TOTP: the two ceremonies, with `webauthn-rs`.
//!
//! ```text
//!   registration:   start_registration(user, existing) ──► options (JSON, to the page)
//!                                                        └─► state (kept in the store, once)
//!                   browser: navigator.credentials.create(options) ──► response (JSON)
//!                   finish_registration(response, state) ──► Passkey (public key, counter)
//!
//!   sign-in:        start_authentication(the user's passkeys) ──► options + state
//!                   browser: navigator.credentials.get(options) ──► assertion (JSON)
//!                   finish_authentication(assertion, state) ──► which credential, its counter
//! ```
//!
//! The relying party is the gateway's public origin (`webauthn.origin`, `webauthn.rp_id`): a
//! browser signs the origin it is on into every response, and `webauthn-rs` refuses one made
//! on another origin, which is what makes a passkey useless to a phishing page. The state of a
//! ceremony (its random challenge, and at sign-in the credentials allowed) is kept by the
//! caller in the store and taken exactly once: a response can be used for one ceremony only.
//! User verification (a PIN, a fingerprint, the phone's unlock) is required by the passkey
//! ceremonies of `webauthn-rs`. Nothing here is secret: the store holds public keys and
//! counters only.
//!
//! Pure: no clock, no I/O; the store writes (counter, last use) are the caller's.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use webauthn_rs::prelude::{
    AuthenticationResult, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

/// How long a ceremony may take: the browser's timeout and the state's life in the store.
pub const CEREMONY_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// Longest name a user may give a passkey (characters).
pub const MAX_NAME_CHARS: usize = 60;

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The relying party settings cannot be used (start-up).
    #[error("webauthn settings: {0}")]
    Setup(String),
    /// The browser's response was refused: malformed, another origin, another challenge, a
    /// wrong signature, no user verification.
    #[error("passkey response refused: {0}")]
    Refused(String),
    /// A stored record (ceremony state, passkey) does not read.
    #[error("passkey record unreadable: {0}")]
    Record(String),
}

/// The gateway as a WebAuthn relying party.
pub struct RelyingParty {
    webauthn: Webauthn,
    rp_id: String,
    origin: String,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty")
            .field("rp_id", &self.rp_id)
            .field("origin", &self.origin)
            .finish()
    }
}

/// What a successful sign-in ceremony proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The credential used (base64url).
    pub id: String,
    /// Its signature counter now (0: the authenticator keeps none).
    pub counter: u32,
    /// The stored key record updated with this use (counter, backup state), JSON.
    pub key: String,
}

impl RelyingParty {
    /// The relying party for `rp_id` (a host name) and `origin` (`https://host[:port]`).
    pub fn new(rp_id: &str, origin: &str, rp_name: &str) -> Result<Self, PasskeyError> {
        let url = Url::parse(origin).map_err(|e| PasskeyError::Setup(e.to_string()))?;
        let webauthn = WebauthnBuilder::new(rp_id, &url)
            .map_err(|e| PasskeyError::Setup(e.to_string()))?
            .rp_name(rp_name)
            .timeout(CEREMONY_TTL)
            .build()
            .map_err(|e| PasskeyError::Setup(e.to_string()))?;
        Ok(RelyingParty {
            webauthn,
            rp_id: rp_id.to_string(),
            origin: origin.to_string(),
        })
    }

    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Starts registering a new passkey for `user`; `existing` (the user's key records) are
    /// excluded, so one authenticator is not registered twice. Returns the options for the
    /// page (JSON) and the state to keep.
    pub fn start_registration(
        &self,
        user: &str,
        existing: &[String],
    ) -> Result<(String, Vec<u8>), PasskeyError> {
        let exclude: Vec<_> = existing
            .iter()
            .filter_map(|k| read_key(k).ok())
            .map(|p| p.cred_id().clone())
            .collect();
        let (options, state) = self
            .webauthn
            .start_passkey_registration(user_handle(user), user, user, Some(exclude))
            .map_err(|e| PasskeyError::Setup(e.to_string()))?;
        Ok((to_json(&options)?, to_bytes(&state)?))
    }

    /// Finishes a registration: the new credential's id (base64url) and key record (JSON).
    pub fn finish_registration(
        &self,
        response: &str,
        state: &[u8],
    ) -> Result<(String, String), PasskeyError> {
        let state: PasskeyRegistration = from_bytes(state)?;
        let response: RegisterPublicKeyCredential = serde_json::from_str(response)
            .map_err(|e| PasskeyError::Refused(format!("not a registration response: {e}")))?;
        let passkey = self
            .webauthn
            .finish_passkey_registration(&response, &state)
            .map_err(|e| PasskeyError::Refused(e.to_string()))?;
        Ok((credential_id(&passkey), to_json(&passkey)?))
    }

    /// Starts a sign-in with one of `keys` (the user's key records).
    pub fn start_authentication(&self, keys: &[String]) -> Result<(String, Vec<u8>), PasskeyError> {
        let passkeys = keys
            .iter()
            .map(|k| read_key(k))
            .collect::<Result<Vec<_>, _>>()?;
        let (options, state) = self
            .webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(|e| PasskeyError::Setup(e.to_string()))?;
        Ok((to_json(&options)?, to_bytes(&state)?))
    }

    /// Finishes a sign-in: which of `keys` (id, key record) signed, and its record after this
    /// use. The caller stores the counter in one step that refuses a counter that did not
    /// move ([`crate::store`]'s `use_passkey`).
    pub fn finish_authentication(
        &self,
        response: &str,
        state: &[u8],
        keys: &[(String, String)],
    ) -> Result<Authenticated, PasskeyError> {
        let state: PasskeyAuthentication = from_bytes(state)?;
        let response: PublicKeyCredential = serde_json::from_str(response)
            .map_err(|e| PasskeyError::Refused(format!("not a sign-in response: {e}")))?;
        let result: AuthenticationResult = self
            .webauthn
            .finish_passkey_authentication(&response, &state)
            .map_err(|e| PasskeyError::Refused(e.to_string()))?;
        let id = B64.encode(result.cred_id().as_ref());
        let (_, key) = keys
            .iter()
            .find(|(k, _)| *k == id)
            .ok_or_else(|| PasskeyError::Refused("credential not the user's".into()))?;
        let mut passkey = read_key(key)?;
        passkey.update_credential(&result);
        Ok(Authenticated {
            id,
            counter: result.counter(),
            key: to_json(&passkey)?,
        })
    }
}

/// The WebAuthn user handle of a user: derived from the name (stable, no storage), so an
/// authenticator keeps one entry per user and relying party.
pub fn user_handle(user: &str) -> Uuid {
    let d = crate::auth::crypto::sha256(format!("mfa-gateway webauthn user\0{user}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    Uuid::from_bytes(b)
}

/// A credential's id as the store and the pages name it (base64url).
pub fn credential_id(p: &Passkey) -> String {
    B64.encode(p.cred_id().as_ref())
}

fn read_key(k: &str) -> Result<Passkey, PasskeyError> {
    serde_json::from_str(k).map_err(|e| PasskeyError::Record(e.to_string()))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, PasskeyError> {
    serde_json::to_string(v).map_err(|e| PasskeyError::Record(e.to_string()))
}

fn to_bytes<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, PasskeyError> {
    serde_json::to_vec(v).map_err(|e| PasskeyError::Record(e.to_string()))
}

fn from_bytes<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, PasskeyError> {
    serde_json::from_slice(b).map_err(|e| PasskeyError::Record(e.to_string()))
}

/// A name for a passkey as the user typed it: trimmed, control characters dropped, at most
/// [`MAX_NAME_CHARS`]; `None` when nothing is left.
pub fn clean_name(s: &str) -> Option<String> {
    let n: String = s
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(MAX_NAME_CHARS)
        .collect();
    (!n.is_empty()).then_some(n)
}

#[cfg(test)]
pub mod soft;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::soft::SoftKey;
    use super::*;

    const ORIGIN: &str = "https://mfa.example.com:8443";

    fn rp() -> RelyingParty {
        RelyingParty::new("mfa.example.com", ORIGIN, "Example").unwrap()
    }

    /// A registered soft key and its (id, record).
    fn registered(rp: &RelyingParty) -> (SoftKey, (String, String)) {
        let mut key = SoftKey::new();
        let (options, state) = rp.start_registration("alice", &[]).unwrap();
        let response = key.register(&options, ORIGIN);
        let (id, record) = rp.finish_registration(&response, &state).unwrap();
        assert_eq!(id, key.id());
        (key, (id, record))
    }

    #[test]
    fn a_soft_key_registers_and_signs_in() {
        let rp = rp();
        let (mut key, cred) = registered(&rp);
        let (options, state) = rp
            .start_authentication(std::slice::from_ref(&cred.1))
            .unwrap();
        assert!(
            options.contains(&cred.0),
            "the credential is allowed: {options}"
        );
        let assertion = key.sign(&options, ORIGIN);
        let ok = rp
            .finish_authentication(&assertion, &state, std::slice::from_ref(&cred))
            .unwrap();
        assert_eq!(ok.id, cred.0);
        assert_eq!(ok.counter, key.counter());
        assert!(ok.counter > 0);
    }

    #[test]
    fn a_response_made_on_another_origin_is_refused() {
        let rp = rp();
        let mut key = SoftKey::new();
        let (options, state) = rp.start_registration("alice", &[]).unwrap();
        let phished = key.register(&options, "https://mfa.example.com.evil.test");
        assert!(matches!(
            rp.finish_registration(&phished, &state),
            Err(PasskeyError::Refused(_))
        ));
        let (mut key, cred) = registered(&rp);
        let (options, state) = rp
            .start_authentication(std::slice::from_ref(&cred.1))
            .unwrap();
        let relayed = key.sign(&options, "https://login-example.test");
        assert!(matches!(
            rp.finish_authentication(&relayed, &state, std::slice::from_ref(&cred)),
            Err(PasskeyError::Refused(_))
        ));
    }

    #[test]
    fn an_assertion_for_another_challenge_or_by_another_key_is_refused() {
        let rp = rp();
        let (mut key, cred) = registered(&rp);
        let (options1, _state1) = rp
            .start_authentication(std::slice::from_ref(&cred.1))
            .unwrap();
        let (_options2, state2) = rp
            .start_authentication(std::slice::from_ref(&cred.1))
            .unwrap();
        let stale = key.sign(&options1, ORIGIN);
        assert!(matches!(
            rp.finish_authentication(&stale, &state2, std::slice::from_ref(&cred)),
            Err(PasskeyError::Refused(_))
        ));
        // Another key that claims the registered credential's id: the signature fails.
        let (options, state) = rp
            .start_authentication(std::slice::from_ref(&cred.1))
            .unwrap();
        let mut impostor = SoftKey::with_id(key.id_bytes());
        let forged = impostor.sign(&options, ORIGIN);
        assert!(matches!(
            rp.finish_authentication(&forged, &state, std::slice::from_ref(&cred)),
            Err(PasskeyError::Refused(_))
        ));
    }

    #[test]
    fn a_key_that_does_not_verify_the_user_is_refused() {
        let rp = rp();
        let mut key = SoftKey::new();
        key.user_verified = false;
        let (options, state) = rp.start_registration("alice", &[]).unwrap();
        let response = key.register(&options, ORIGIN);
        assert!(rp.finish_registration(&response, &state).is_err());
    }

    #[test]
    fn registration_excludes_the_user_s_keys_and_garbage_is_refused() {
        let rp = rp();
        let (_key, cred) = registered(&rp);
        let (options, _) = rp
            .start_registration("alice", std::slice::from_ref(&cred.1))
            .unwrap();
        assert!(options.contains(&cred.0), "{options}");
        let (_, state) = rp.start_registration("alice", &[]).unwrap();
        for junk in ["", "{}", "null", "{\"id\":\"x\"}"] {
            assert!(matches!(
                rp.finish_registration(junk, &state),
                Err(PasskeyError::Refused(_))
            ));
        }
        assert!(matches!(
            rp.finish_registration("{}", b"not state"),
            Err(PasskeyError::Record(_))
        ));
    }

    #[test]
    fn the_user_handle_is_stable_and_per_user() {
        assert_eq!(user_handle("alice"), user_handle("alice"));
        assert_ne!(user_handle("alice"), user_handle("bob"));
    }

    #[test]
    fn names_are_trimmed_cleaned_and_bounded() {
        assert_eq!(clean_name("  YubiKey \n"), Some("YubiKey".into()));
        assert_eq!(clean_name(" \t "), None);
        assert_eq!(clean_name(&"x".repeat(100)).unwrap().len(), MAX_NAME_CHARS);
        assert_eq!(clean_name("a\u{7}b"), Some("ab".into()));
    }

    #[test]
    fn settings_that_cannot_work_are_refused() {
        assert!(RelyingParty::new("other.example", ORIGIN, "x").is_err());
        assert!(RelyingParty::new("mfa.example.com", "not a url", "x").is_err());
    }
}
