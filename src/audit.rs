//! The audit trail: every change to anyone's MFA, and every MFA decision, as a record that
//! says what happened, to whom, who did it and why.
//!
//! Each record goes two ways:
//!
//! * to the log as one structured line (target `audit`, field `audit` holding the record as
//!   JSON), so a log pipeline keeps it even when Redis is away;
//! * to a Redis stream (`P{audit}`), trimmed to about `admin.audit_max_records`, which the
//!   administration pages read and `mfa-gateway audit export` writes out.
//!
//! The schema is stable (`v` = 1) and holds nothing secret: no codes, secrets, cookies or
//! tokens, only names, times, outcomes and the reasons administrators type.

use serde::{Deserialize, Serialize};

use crate::store::Store;

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
    /// Enrolled secrets sealed again with the active key (`admin reseal`).
    SecretsResealed,
    /// The name typed at login differed from the one the VMS reported; the login was ended.
    IdentityMismatch,
}

impl Event {
    /// Every event, for the administration pages' words and the tests.
    pub const ALL: [Event; 21] = [
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
        Event::SecretsResealed,
        Event::IdentityMismatch,
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
            Event::SecretsResealed => "secrets_resealed",
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
}

impl Record {
    pub fn new(event: Event, now: u64, actor_kind: ActorKind, actor: impl Into<String>) -> Self {
        let at = jiff::Timestamp::from_second(i64::try_from(now).unwrap_or(0))
            .map(|t| t.to_string())
            .unwrap_or_default();
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

/// Where records go.
#[derive(Clone, Debug)]
pub struct Audit {
    store: Store,
    keep: usize,
}

impl Audit {
    pub fn new(store: Store, keep: usize) -> Self {
        Self { store, keep }
    }

    /// Logs the record and appends it to the stream. A store failure is logged; the log line
    /// already holds the record.
    pub async fn record(&self, r: Record) {
        let json = match serde_json::to_string(&r) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "audit record could not be encoded");
                return;
            }
        };
        tracing::info!(target: "audit", audit = %json, "{}", r.event.as_str());
        if let Err(e) = self.store.audit_append(&json, self.keep).await {
            tracing::error!(target: "audit", error = %e, "audit record not stored in Redis (kept in the log only)");
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
        let audit = Audit::new(store.clone(), 10_000);
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
