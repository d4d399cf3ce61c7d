//! Which audit records become mails: every change to a user's MFA that the user should hear
//! of. The audit trail shows each record to [`Notifier`] once it is written; the mail is one
//! command on the outbox ([`super::Outbox::push`]), whose failure only logs and counts.
//!
//! | record | mail |
//! |---|---|
//! | `enrolled` | an app was set up |
//! | `self_phone_replaced` | the app moved to a new phone |
//! | `self_mfa_disabled` | MFA turned off |
//! | `reset` of an enrolled user | reset by an MSP: by whom and when; the reason only with `mail.include_reset_reason` |
//! | `recovery_code_used` | a recovery code used, with how many remain |
//! | `recovery_codes_issued` | new recovery codes (not when made with an enrollment or a new phone, in the same request: one mail is enough) |
//! | `browser_remembered` | a browser remembered |
//! | `passkey_added`, `passkey_removed` | a passkey added, removed |

use std::sync::Arc;

use super::{Job, Kind, Outbox};
use crate::audit::{ActorKind, Event, Observer, Record};

/// Turns audit records into mail jobs.
pub struct Notifier {
    outbox: Outbox,
    include_reset_reason: bool,
}

impl Notifier {
    pub fn new(outbox: Outbox, include_reset_reason: bool) -> Arc<Self> {
        Arc::new(Notifier {
            outbox,
            include_reset_reason,
        })
    }

    /// The job a record calls for, if any.
    pub fn job_for(&self, r: &Record) -> Option<Job> {
        let user = r.user.as_deref()?;
        let detail = r.detail.as_deref().unwrap_or("");
        let kind = match r.event {
            Event::Enrolled => Kind::Enrolled,
            Event::SelfPhoneReplaced => Kind::PhoneReplaced,
            Event::SelfMfaDisabled => Kind::MfaDisabled,
            Event::Reset if detail.contains("enrolled=true") => Kind::Reset,
            Event::RecoveryCodeUsed => Kind::RecoveryCodeUsed,
            // Made with a new app, phone or first passkey: said in that change's own mail.
            Event::RecoveryCodesIssued if detail.contains("with=") => return None,
            Event::RecoveryCodesIssued => Kind::RecoveryCodesIssued,
            Event::BrowserRemembered => Kind::BrowserRemembered,
            Event::PasskeyAdded => Kind::PasskeyAdded,
            Event::PasskeyRemoved => Kind::PasskeyRemoved,
            _ => return None,
        };
        let mut job = Job::new(user, kind, r.ts);
        job.client.clone_from(&r.client);
        match kind {
            Kind::Reset => {
                // The MSP's own address means nothing to the user: their name does.
                job.client = None;
                job.by = Some(r.actor.clone());
                if self.include_reset_reason {
                    job.reason.clone_from(&r.reason);
                }
            }
            Kind::RecoveryCodeUsed => {
                job.remaining = detail
                    .split_whitespace()
                    .find_map(|f| f.strip_prefix("remaining="))
                    .and_then(|n| n.parse().ok());
            }
            _ => {}
        }
        if r.actor_kind != ActorKind::User && kind != Kind::Reset {
            job.by = Some(r.actor.clone());
        }
        Some(job)
    }
}

impl Observer for Notifier {
    fn observe<'a>(
        &'a self,
        r: &'a Record,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            if let Some(job) = self.job_for(r) {
                // Due at once (score 0: before any time the sender reads).
                self.outbox.push(&job, 0).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::metrics::Metrics;
    use crate::store::Store;
    use crate::store::memory::MemoryStore;

    fn notifier(reason: bool) -> Arc<Notifier> {
        let store = Store::Memory(MemoryStore::new());
        Notifier::new(Outbox::new(store, Arc::new(Metrics::new())), reason)
    }

    fn rec(e: Event, ts: u64) -> Record {
        Record::new(e, ts, ActorKind::User, "alice")
            .user("alice")
            .client("192.0.2.1")
    }

    #[test]
    fn each_change_to_mfa_makes_one_job_and_nothing_else_does() {
        let n = notifier(false);
        let cases = [
            (Event::Enrolled, Some(Kind::Enrolled)),
            (Event::SelfPhoneReplaced, Some(Kind::PhoneReplaced)),
            (Event::SelfMfaDisabled, Some(Kind::MfaDisabled)),
            (Event::RecoveryCodeUsed, Some(Kind::RecoveryCodeUsed)),
            (Event::BrowserRemembered, Some(Kind::BrowserRemembered)),
            (Event::PasskeyAdded, Some(Kind::PasskeyAdded)),
            (Event::PasskeyRemoved, Some(Kind::PasskeyRemoved)),
            (Event::PasskeyRefused, None),
            (Event::VerifySuccess, None),
            (Event::VerifyFailure, None),
            (Event::Locked, None),
            (Event::PolicyReloaded, None),
        ];
        for (i, (e, want)) in cases.into_iter().enumerate() {
            let got = n.job_for(&rec(e, 100 + i as u64)).map(|j| j.kind);
            assert_eq!(got, want, "{e:?}");
        }
        // Recovery codes on their own (the settings page) get a mail; made with an enrollment
        // or a first passkey (`with=` in the detail) they do not: that change's mail says it.
        assert_eq!(
            n.job_for(&rec(Event::RecoveryCodesIssued, 500).detail("count=10"))
                .map(|j| j.kind),
            Some(Kind::RecoveryCodesIssued)
        );
        n.job_for(&rec(Event::Enrolled, 600)).unwrap();
        for with in ["count=10 with=enrollment", "count=10 with=passkey"] {
            assert_eq!(
                n.job_for(&rec(Event::RecoveryCodesIssued, 600).detail(with)),
                None,
                "{with}"
            );
        }
        // Whatever the time: one second later the same.
        assert_eq!(
            n.job_for(&rec(Event::RecoveryCodesIssued, 601).detail("count=10 with=enrollment")),
            None
        );
    }

    #[test]
    fn a_reset_names_the_msp_and_the_reason_only_when_allowed() {
        let r = Record::new(Event::Reset, 10, ActorKind::Admin, "msp1")
            .user("alice")
            .reason("lost phone, ticket 42")
            .detail("enrolled=true")
            .client("198.51.100.9");
        let j = notifier(false).job_for(&r).unwrap();
        assert_eq!(
            (j.kind, j.by.as_deref(), j.reason),
            (Kind::Reset, Some("msp1"), None)
        );
        assert_eq!(j.client, None, "not the MSP's address");
        let j = notifier(true).job_for(&r).unwrap();
        assert_eq!(j.reason.as_deref(), Some("lost phone, ticket 42"));
        // A reset of a user who had no app changes nothing the user must hear of.
        let r = r.detail("enrolled=false");
        assert_eq!(notifier(true).job_for(&r), None);
    }

    #[test]
    fn recovery_code_used_carries_the_count() {
        let r = rec(Event::RecoveryCodeUsed, 1).detail("remaining=7");
        assert_eq!(notifier(false).job_for(&r).unwrap().remaining, Some(7));
    }

    #[tokio::test]
    async fn observing_a_record_queues_its_job() {
        let store = Store::Memory(MemoryStore::new());
        let metrics = Arc::new(Metrics::new());
        let n = Notifier::new(Outbox::new(store.clone(), Arc::clone(&metrics)), false);
        n.observe(&rec(Event::SelfMfaDisabled, 5)).await;
        n.observe(&rec(Event::VerifySuccess, 6)).await;
        let jobs = store
            .outbox_claim(1, std::time::Duration::from_secs(1), 10)
            .await
            .unwrap();
        assert_eq!(jobs.len(), 1);
        let j: Job = serde_json::from_str(&jobs[0]).unwrap();
        assert_eq!(
            (j.kind, j.at, j.user.as_str()),
            (Kind::MfaDisabled, 5, "alice")
        );
        assert_eq!(metrics.mail_count(crate::metrics::MailResult::Queued), 1);
    }
}
