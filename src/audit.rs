//! The audit trail: every change to anyone's MFA, and every MFA decision, as a record that
//! says what happened, to whom, who did it and why.
//!
//! Each record goes two ways:
//!
//! * to the log as one structured line (target `audit`, field `audit` holding the record:
//!   a nested object in JSON logs ([`json_log`]), `audit={...}` in text logs), so a log
//!   pipeline keeps it even when Redis is away, and a Redis restore cannot take it back;
//! * to a Redis stream (`P{audit}`), trimmed to about `admin.audit_max_records`, which the
//!   administration pages read and `mfa-gateway audit export` writes out.
//!
//! The schema is stable (`v` = 1) and holds nothing secret: no codes, secrets, cookies or
//! tokens, only names, times, outcomes and the reasons administrators type.
//!
//! Each record is signed (`sig`: `<key id>.<base64url HMAC-SHA256>`) with the key ring's
//! [`Purpose::AuditSign`] key over its canonical form (the record's JSON without `sig`), so a
//! record changed or made up by someone with write access to Redis (or to the log pipeline)
//! but without the key ring is detected by `mfa-gateway audit export --verify` or
//! `mfa-gateway audit verify`. Signatures cover single records: a deleted record is not
//! detected this way (the log keeps a copy of every record).

pub mod json_log;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::auth::crypto::{KeyRing, Purpose};
use crate::store::Store;

/// Mixed into every audit signature, so a MAC of this purpose means nothing else.
const SIGN_CONTEXT: &[u8] = b"mfa-gateway audit v1\n";

pub const SCHEMA_VERSION: u8 = 1;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Enrolled,
    VerifySuccess,
    VerifyFailure,
    ReplayRejected,
    Locked,
    Unlocked,
    Reset,
    /// A reset that did not complete (the detail says which stage failed).
    ResetFailed,
    RecoveryCodeUsed,
    RecoveryCodesIssued,
    EnrollmentPostponed,
    OfferDeclined,
    SelfPhoneReplaced,
    SelfMfaDisabled,
    /// A self-service set-up or phone replacement refused because the user's MFA changed
    /// while it was in progress (enrolled or replaced elsewhere).
    SelfChangeRefused,
    PolicyReloaded,
    PolicyReloadFailed,
    AdminApiCall,
    AdminAccessDenied,
    /// A reset or unlock refused by rank (`admin.can_reset`) or because it was the actor's own.
    AdminActionRefused,
    /// Enrolled secrets sealed again with the active key (`admin reseal`).
    SecretsResealed,
    /// The name typed at login differed from the one the VMS reported; the login was ended.
    IdentityMismatch,
    /// A user ticked "don't ask for a code on this browser" with a right code.
    BrowserRemembered,
    /// Remembered browsers were forgotten: one or all, by the user, an MSP, a reset, a phone
    /// replacement or MFA turned off (the detail says which).
    BrowserForgotten,
    /// A one-time enrollment code was issued for a user (by a reset or on its own); the
    /// detail says until when, never the code.
    EnrollmentCodeIssued,
    /// The user typed the right enrollment code in a sign-in: pairing an app may follow.
    EnrollmentCodeAccepted,
    /// An enrollment code was refused (wrong, expired or none pending; the detail says which).
    EnrollmentCodeRefused,
    /// A passkey or security key was added (at a sign-in or on the account page).
    PasskeyAdded,
    /// A passkey was renamed by its user.
    PasskeyRenamed,
    /// A passkey was removed by its user (a reset removes them all: `reset`).
    PasskeyRemoved,
    /// A passkey answer was refused (another origin, a wrong signature, a removed
    /// credential, a counter that did not move); the detail says why.
    PasskeyRefused,
}

impl Event {
    /// Every event, for the administration pages' words and the tests.
    pub const ALL: [Event; 31] = [
        Event::Enrolled,
        Event::VerifySuccess,
        Event::VerifyFailure,
        Event::ReplayRejected,
        Event::Locked,
        Event::Unlocked,
        Event::Reset,
        Event::ResetFailed,
        Event::RecoveryCodeUsed,
        Event::RecoveryCodesIssued,
        Event::EnrollmentPostponed,
        Event::OfferDeclined,
        Event::SelfPhoneReplaced,
        Event::SelfMfaDisabled,
        Event::SelfChangeRefused,
        Event::PolicyReloaded,
        Event::PolicyReloadFailed,
        Event::AdminApiCall,
        Event::AdminAccessDenied,
        Event::AdminActionRefused,
        Event::SecretsResealed,
        Event::IdentityMismatch,
        Event::BrowserRemembered,
        Event::BrowserForgotten,
        Event::EnrollmentCodeIssued,
        Event::EnrollmentCodeAccepted,
        Event::EnrollmentCodeRefused,
        Event::PasskeyAdded,
        Event::PasskeyRenamed,
        Event::PasskeyRemoved,
        Event::PasskeyRefused,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Event::Enrolled => "enrolled",
            Event::VerifySuccess => "verify_success",
            Event::VerifyFailure => "verify_failure",
            Event::ReplayRejected => "replay_rejected",
            Event::Locked => "locked",
            Event::Unlocked => "unlocked",
            Event::Reset => "reset",
            Event::ResetFailed => "reset_failed",
            Event::RecoveryCodeUsed => "recovery_code_used",
            Event::RecoveryCodesIssued => "recovery_codes_issued",
            Event::EnrollmentPostponed => "enrollment_postponed",
            Event::OfferDeclined => "offer_declined",
            Event::SelfPhoneReplaced => "self_phone_replaced",
            Event::SelfMfaDisabled => "self_mfa_disabled",
            Event::SelfChangeRefused => "self_change_refused",
            Event::PolicyReloaded => "policy_reloaded",
            Event::PolicyReloadFailed => "policy_reload_failed",
            Event::AdminApiCall => "admin_api_call",
            Event::IdentityMismatch => "identity_mismatch",
            Event::AdminAccessDenied => "admin_access_denied",
            Event::AdminActionRefused => "admin_action_refused",
            Event::SecretsResealed => "secrets_resealed",
            Event::BrowserRemembered => "browser_remembered",
            Event::BrowserForgotten => "browser_forgotten",
            Event::EnrollmentCodeIssued => "enrollment_code_issued",
            Event::EnrollmentCodeAccepted => "enrollment_code_accepted",
            Event::EnrollmentCodeRefused => "enrollment_code_refused",
            Event::PasskeyAdded => "passkey_added",
            Event::PasskeyRenamed => "passkey_renamed",
            Event::PasskeyRemoved => "passkey_removed",
            Event::PasskeyRefused => "passkey_refused",
        }
    }
}

/// Who did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// The user, about themselves (logins, self-service).
    User,
    /// An administrator on the administration pages.
    Admin,
    /// An API client, by token name.
    Api,
    /// The break-glass command line.
    Cli,
    /// The gateway itself (policy reloads, locks).
    System,
}

/// One audit record (schema version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub v: u8,
    /// Unix seconds.
    pub ts: u64,
    /// The same instant, RFC 3339 in UTC.
    pub at: String,
    pub event: Event,
    /// The user the event is about.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user: Option<String>,
    pub actor_kind: ActorKind,
    /// User name, administrator name, token name, `cli:<os user>` or `gateway`.
    pub actor: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// Client address, where there is one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub client: Option<String>,
    /// Short extra facts (e.g. `remaining=7`, `minutes=15`, `path=/.mfa/admin/api/...`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
    /// The signature: `<key id>.<base64url HMAC-SHA256 of the canonical form>`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sig: Option<String>,
}

/// What [`Record::verify`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// Signed by a key of the ring, and unchanged since.
    Valid,
    /// No signature (written before records were signed, or stripped).
    Missing,
    /// A signature that does not match: the record was changed or made up, or its key is no
    /// longer in the ring.
    Invalid,
}

impl Record {
    pub fn new(event: Event, now: u64, actor_kind: ActorKind, actor: impl Into<String>) -> Self {
        let at = crate::clock::timestamp_of(now).to_string();
        Record {
            v: SCHEMA_VERSION,
            ts: now,
            at,
            event,
            user: None,
            actor_kind,
            actor: actor.into(),
            reason: None,
            client: None,
            detail: None,
            sig: None,
        }
    }

    /// The bytes a signature covers: the record's JSON without `sig`.
    fn signed_bytes(&self) -> Option<Vec<u8>> {
        let unsigned = Record {
            sig: None,
            ..self.clone()
        };
        let json = serde_json::to_vec(&unsigned).ok()?;
        Some([SIGN_CONTEXT, json.as_slice()].concat())
    }

    /// Signs the record with the ring's active key (replacing any signature).
    pub fn sign(&mut self, keys: &KeyRing) {
        use base64::Engine as _;
        self.sig = self.signed_bytes().map(|data| {
            let (kid, tag) = keys.mac(Purpose::AuditSign, &data);
            format!(
                "{kid}.{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag)
            )
        });
    }

    /// Checks the record's signature against the ring (any key still in it).
    pub fn verify(&self, keys: &KeyRing) -> Signature {
        use base64::Engine as _;
        let Some(sig) = &self.sig else {
            return Signature::Missing;
        };
        let valid = sig.split_once('.').is_some_and(|(kid, tag)| {
            let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag);
            match (tag, self.signed_bytes()) {
                (Ok(tag), Some(data)) => keys.verify_mac(Purpose::AuditSign, kid, &data, &tag),
                _ => false,
            }
        });
        if valid {
            Signature::Valid
        } else {
            Signature::Invalid
        }
    }
    pub fn user(mut self, u: impl Into<String>) -> Self {
        self.user = Some(u.into());
        self
    }
    pub fn reason(mut self, r: impl Into<String>) -> Self {
        self.reason = Some(r.into());
        self
    }
    pub fn client(mut self, c: impl Into<String>) -> Self {
        self.client = Some(c.into());
        self
    }
    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }

    /// The CSV header matching [`Record::csv_row`].
    pub const CSV_HEADER: &'static str = "at,ts,event,user,actor_kind,actor,reason,client,detail";

    pub fn csv_row(&self) -> String {
        let kind = serde_json::to_value(self.actor_kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        [
            csv(&self.at),
            self.ts.to_string(),
            self.event.as_str().to_string(),
            csv(self.user.as_deref().unwrap_or("")),
            kind,
            csv(&self.actor),
            csv(self.reason.as_deref().unwrap_or("")),
            csv(self.client.as_deref().unwrap_or("")),
            csv(self.detail.as_deref().unwrap_or("")),
        ]
        .join(",")
    }
}

/// RFC 4180 quoting; a leading `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet does
/// not run a typed reason as a formula.
fn csv(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Something told of every record once it is written (the e-mail notifications,
/// `crate::mail`, which sits above this layer). It must not wait on anything slow: it runs in
/// the request that made the record.
pub trait Observer: Send + Sync {
    fn observe<'a>(
        &'a self,
        record: &'a Record,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;
}

/// Where records go.
#[derive(Clone)]
pub struct Audit {
    store: Store,
    keep: usize,
    /// Signs every record; `None` only where no key ring could be read (a break-glass command
    /// run without access to the keys), whose records then go out unsigned.
    keys: Option<Arc<KeyRing>>,
    /// Told of every record after it is written.
    observer: Option<Arc<dyn Observer>>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("keep", &self.keep)
            .field("signed", &self.keys.is_some())
            .finish_non_exhaustive()
    }
}

impl Audit {
    /// An audit trail whose records are signed with `keys` (`None`: unsigned).
    pub fn new(store: Store, keep: usize, keys: Option<Arc<KeyRing>>) -> Self {
        Self {
            store,
            keep,
            keys,
            observer: None,
        }
    }

    /// The same trail, whose records are also shown to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Signs, logs the record and appends it to the stream. A store failure is logged; the
    /// log line already holds the record.
    pub async fn record(&self, mut r: Record) {
        if let Some(keys) = &self.keys {
            r.sign(keys);
        }
        let json = match serde_json::to_string(&r) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "audit record could not be encoded");
                return;
            }
        };
        // `json_log::TARGET`; a literal, as tracing's macros need.
        tracing::info!(target: "audit", audit = %json, "{}", r.event.as_str());
        if let Err(e) = self.store.audit_append(&json, self.keep).await {
            tracing::error!(target: "audit", error = %e, "audit record not stored in Redis (kept in the log only)");
        }
        if let Some(o) = &self.observer {
            o.observe(&r).await;
        }
    }

    /// Like [`Audit::record`], for places that cannot wait (policy reloads).
    pub fn record_in_background(&self, r: Record) {
        let this = self.clone();
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move { this.record(r).await });
        }
    }

    /// Records of a user, newest first, from the latest `scan` records.
    pub async fn recent_for(&self, user: &str, scan: usize, max: usize) -> Vec<Record> {
        match self.store.audit_recent(scan).await {
            Ok(rows) => rows
                .iter()
                .filter_map(|j| serde_json::from_str::<Record>(j).ok())
                .filter(|r| r.user.as_deref() == Some(user))
                .take(max)
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// Reads every stored record with `ts >= since`, optionally only of one user, oldest first.
pub async fn export(
    store: &Store,
    since: u64,
    user: Option<&str>,
) -> Result<Vec<Record>, crate::store::StoreError> {
    let mut out = Vec::new();
    let mut after = "0".to_string();
    loop {
        let page = store.audit_range(&after, 1000).await?;
        let Some((last, _)) = page.last() else { break };
        let last = last.clone();
        for (_, json) in &page {
            if let Ok(r) = serde_json::from_str::<Record>(json)
                && r.ts >= since
                && user.is_none_or(|u| r.user.as_deref() == Some(u))
            {
                out.push(r);
            }
        }
        if page.len() < 1000 {
            break;
        }
        after = last;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn schema_is_stable() {
        let r = Record::new(Event::Reset, 1_700_000_000, ActorKind::Admin, "msp1")
            .user("alice")
            .reason("lost phone");
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(
            j,
            r#"{"v":1,"ts":1700000000,"at":"2023-11-14T22:13:20Z","event":"reset","user":"alice","actor_kind":"admin","actor":"msp1","reason":"lost phone"}"#
        );
        assert_eq!(serde_json::from_str::<Record>(&j).unwrap(), r);
    }

    #[tokio::test]
    async fn records_are_signed_and_a_changed_record_is_detected() {
        let keys = Arc::new(crate::auth::crypto::testing::ring("k1", &[("k1", 1)]));
        let store = Store::Memory(crate::store::memory::MemoryStore::new());
        let audit = Audit::new(store.clone(), 10_000, Some(Arc::clone(&keys)));
        audit
            .record(
                Record::new(Event::Reset, 1_700_000_000, ActorKind::Admin, "msp1")
                    .user("alice")
                    .reason("lost phone"),
            )
            .await;
        let stored = export(&store, 0, None).await.unwrap();
        let r = stored.first().unwrap();
        assert!(r.sig.as_deref().unwrap().starts_with("k1."));
        assert_eq!(r.verify(&keys), Signature::Valid);
        // Any change to any field, the signature stripped, a foreign ring.
        let changes: [fn(&mut Record); 6] = [
            |r| r.user = Some("bob".into()),
            |r| r.actor = "admin".into(),
            |r| r.ts += 1,
            |r| r.reason = None,
            |r| r.event = Event::Unlocked,
            |r| r.detail = Some("x".into()),
        ];
        for change in changes {
            let mut t = r.clone();
            change(&mut t);
            assert_eq!(t.verify(&keys), Signature::Invalid, "{t:?}");
        }
        let mut t = r.clone();
        t.sig = None;
        assert_eq!(t.verify(&keys), Signature::Missing);
        let mut t = r.clone();
        t.sig = Some("k1.garbage!".into());
        assert_eq!(t.verify(&keys), Signature::Invalid);
        let foreign = crate::auth::crypto::testing::ring("k1", &[("k1", 2)]);
        assert_eq!(r.verify(&foreign), Signature::Invalid);
        // A record forged with another ring's key.
        let mut forged = r.clone();
        forged.user = Some("bob".into());
        forged.sign(&foreign);
        assert_eq!(forged.verify(&keys), Signature::Invalid);
        // JSON round trip keeps it valid.
        let back: Record = serde_json::from_str(&serde_json::to_string(r).unwrap()).unwrap();
        assert_eq!(back.verify(&keys), Signature::Valid);
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let r = Record::new(Event::Reset, 0, ActorKind::Cli, "cli:root")
            .user("bob")
            .reason("=cmd(), \"x\"");
        let row = r.csv_row();
        assert_eq!(
            row,
            r#"1970-01-01T00:00:00Z,0,reset,bob,cli,cli:root,"'=cmd(), ""x""",,"#
        );
        assert_eq!(
            Record::CSV_HEADER.split(',').count(),
            row.split(',').count() - 1,
            "one comma inside the quoted reason"
        );
    }

    #[tokio::test]
    async fn export_filters_by_time_and_user() {
        let store = Store::Memory(crate::store::memory::MemoryStore::new());
        let audit = Audit::new(store.clone(), 10_000, None);
        for (ts, u) in [(10, "a"), (20, "b"), (30, "a")] {
            audit
                .record(Record::new(Event::VerifySuccess, ts, ActorKind::User, u).user(u))
                .await;
        }
        let all = export(&store, 15, None).await.unwrap();
        assert_eq!(all.iter().map(|r| r.ts).collect::<Vec<_>>(), vec![20, 30]);
        let a = export(&store, 0, Some("a")).await.unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(audit.recent_for("a", 100, 10).await.first().unwrap().ts, 30);
    }
}
