//! A software authenticator for tests: an ES256 (P-256) key that answers the gateway's
//! WebAuthn options as a browser with a security key would (attestation "none", user present
//! and verified, a counter that rises by one per signature), on whatever origin it is told.
//! The unit tests of `auth::passkey` and the integration tests (which include this file) use
//! it; it depends only on crates the gateway uses anyway.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

fn sha256(b: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b)
        .as_ref()
        .to_vec()
}

pub struct SoftKey {
    key: EcdsaKeyPair,
    id: Vec<u8>,
    counter: u32,
    /// Whether it says it verified the user (PIN, fingerprint).
    pub user_verified: bool,
}

impl Default for SoftKey {
    fn default() -> Self {
        Self::new()
    }
}

impl SoftKey {
    pub fn new() -> Self {
        let mut id = vec![0u8; 32];
        aws_lc_rs::rand::fill(&mut id).unwrap();
        Self::with_id(&id)
    }

    /// A fresh key under a given credential id.
    pub fn with_id(id: &[u8]) -> Self {
        SoftKey {
            key: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap(),
            id: id.to_vec(),
            counter: 0,
            user_verified: true,
        }
    }

    /// The credential id, base64url.
    pub fn id(&self) -> String {
        B64.encode(&self.id)
    }

    pub fn id_bytes(&self) -> &[u8] {
        &self.id
    }

    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// Sets the counter (a cloned key replaying an old one).
    pub fn set_counter(&mut self, c: u32) {
        self.counter = c;
    }

    fn flags(&self, attested: bool) -> u8 {
        let mut f = 0x01; // user present
        if self.user_verified {
            f |= 0x04;
        }
        if attested {
            f |= 0x40;
        }
        f
    }

    /// The answer to creation options (`{"publicKey": {...}}`, as the gateway sends them),
    /// made on `origin`: a `RegisterPublicKeyCredential` as JSON.
    pub fn register(&mut self, options: &str, origin: &str) -> String {
        let o: serde_json::Value = serde_json::from_str(options).unwrap();
        let pk = &o["publicKey"];
        let rp_id = pk["rp"]["id"].as_str().unwrap();
        let challenge = pk["challenge"].as_str().unwrap();
        let client_data = serde_json::json!({
            "type": "webauthn.create",
            "challenge": challenge,
            "origin": origin,
            "crossOrigin": false,
        })
        .to_string();
        let point = self.key.public_key().as_ref().to_vec(); // 0x04 | x | y
        let mut cose = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
        cose.extend_from_slice(&point[1..33]);
        cose.extend_from_slice(&[0x22, 0x58, 0x20]);
        cose.extend_from_slice(&point[33..65]);
        let mut auth = Vec::new();
        auth.extend_from_slice(&sha256(rp_id.as_bytes()));
        auth.push(self.flags(true));
        auth.extend_from_slice(&self.counter.to_be_bytes());
        auth.extend_from_slice(&[0u8; 16]); // AAGUID
        auth.extend_from_slice(&u16::try_from(self.id.len()).unwrap().to_be_bytes());
        auth.extend_from_slice(&self.id);
        auth.extend_from_slice(&cose);
        // {"fmt": "none", "attStmt": {}, "authData": h'...'}
        let mut att = vec![0xa3, 0x63];
        att.extend_from_slice(b"fmt");
        att.push(0x64);
        att.extend_from_slice(b"none");
        att.push(0x67);
        att.extend_from_slice(b"attStmt");
        att.push(0xa0);
        att.push(0x68);
        att.extend_from_slice(b"authData");
        att.push(0x59);
        att.extend_from_slice(&u16::try_from(auth.len()).unwrap().to_be_bytes());
        att.extend_from_slice(&auth);
        serde_json::json!({
            "id": self.id(),
            "rawId": self.id(),
            "type": "public-key",
            "response": {
                "attestationObject": B64.encode(&att),
                "clientDataJSON": B64.encode(client_data.as_bytes()),
            },
            "extensions": {},
        })
        .to_string()
    }

    /// The answer to request options (`{"publicKey": {...}}`), made on `origin`: a
    /// `PublicKeyCredential` (assertion) as JSON. The counter rises by one.
    pub fn sign(&mut self, options: &str, origin: &str) -> String {
        let o: serde_json::Value = serde_json::from_str(options).unwrap();
        let pk = &o["publicKey"];
        let rp_id = pk["rpId"].as_str().unwrap();
        let challenge = pk["challenge"].as_str().unwrap();
        self.counter += 1;
        let client_data = serde_json::json!({
            "type": "webauthn.get",
            "challenge": challenge,
            "origin": origin,
            "crossOrigin": false,
        })
        .to_string();
        let mut auth = Vec::new();
        auth.extend_from_slice(&sha256(rp_id.as_bytes()));
        auth.push(self.flags(false));
        auth.extend_from_slice(&self.counter.to_be_bytes());
        let mut signed = auth.clone();
        signed.extend_from_slice(&sha256(client_data.as_bytes()));
        let sig = self.key.sign(&SystemRandom::new(), &signed).unwrap();
        serde_json::json!({
            "id": self.id(),
            "rawId": self.id(),
            "type": "public-key",
            "response": {
                "authenticatorData": B64.encode(&auth),
                "clientDataJSON": B64.encode(client_data.as_bytes()),
                "signature": B64.encode(sig.as_ref()),
                "userHandle": null,
            },
            "extensions": {},
        })
        .to_string()
    }
}
