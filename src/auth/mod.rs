//! Authentication building blocks that need no I/O: TOTP maths and the crypto core.
//!
//! They are kept pure (time, keys and input are passed in; nothing reads the clock, the
//! network or Redis) so that they can be tested exhaustively and reused by the login flow.
//!
//! - [`totp`]: secrets, pairing codes, `otpauth://` URIs and code verification (RFC 6238).
//! - [`crypto`]: master key ring, AEAD for secrets at rest, MACs and random values
//!   (aws-lc-rs).
//! - [`recovery`]: one-time recovery codes and their keyed, stretched storage records.
//! - [`passkey`]: passkeys and security keys (WebAuthn ceremonies, with `webauthn-rs`).

pub mod crypto;
pub mod passkey;
pub mod recovery;
pub mod totp;
