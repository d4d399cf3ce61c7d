//! Re-encryption of the enrolled TOTP secrets with the active key, the last step of a key
//! rotation (`mfa-gateway admin reseal`).
//!
//! # Why
//!
//! A secret sealed with an old key opens only while that key stays in `mfa.keys`. Without
//! re-encryption an old key could never leave the ring, and a rotation would never end: the
//! key it was meant to retire would keep protecting the secrets of everyone who enrolled
//! before it. Resealing opens each such secret with the key it names and seals it again with
//! the active key; afterwards the old key protects nothing stored and can be removed.
//!
//! # How it stays safe next to running gateways
//!
//! The walk goes over the index of users (`P{users}`: everyone who logged in or enrolled)
//! page by page. For each user whose secret names a key other than the active one:
//!
//! ```text
//!   read record ──► no secret ──────────────────────────► not enrolled (skip)
//!        │          sealed with the active key ─────────► current (skip)
//!        ▼
//!   open with the key it names ──► fails ────────────────► unreadable (reported, kept)
//!        ▼
//!   seal with the active key (same user bound in, fresh nonce)
//!        ▼
//!   replace only if the stored secret is still the one read ──► yes: resealed
//!        │ no (reset, new phone or a new enrollment meanwhile)
//!        └──► read again (at most three times)
//! ```
//!
//! The replacement is a compare-and-set in one Redis script, so a reset or a new phone that
//! happens while the walk runs is never undone, and the write waits for a replica as an
//! enrollment does. Only the secret and its `key_id` change: last use, the replay guard's
//! last step and the recovery codes stay as they are, and users notice nothing. The secrets
//! exist in plain text only in memory, for the moment between opening and sealing, and never
//! reach the output or the log.

use std::collections::BTreeMap;

use crate::auth::crypto::{KeyRing, Purpose};
use crate::store::{Store, StoreError};

/// Users read from the index at a time.
const PAGE: usize = 500;
/// Attempts per user when the stored secret keeps changing under the walk.
const ATTEMPTS: usize = 3;

/// What a walk found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResealReport {
    /// Users in the index.
    pub users: usize,
    /// Of those, users with a secret.
    pub enrolled: usize,
    /// Secrets that were already sealed with the active key.
    pub current: usize,
    /// Secrets sealed with another key, by that key's id: resealed now (or, in a dry run,
    /// that would be).
    pub resealed: BTreeMap<String, usize>,
    /// Secrets that do not open, with why (user name, reason). They are left as they are.
    pub unreadable: Vec<(String, String)>,
    /// Secrets that changed under the walk on every attempt (left for another run).
    pub busy: Vec<String>,
    /// Why the walk stopped early (Redis failed). What was resealed before stays resealed.
    pub stopped: Option<String>,
}

impl ResealReport {
    /// Every enrolled secret is sealed with the active key (or would be, in a dry run).
    pub fn complete(&self) -> bool {
        self.unreadable.is_empty() && self.busy.is_empty() && self.stopped.is_none()
    }

    pub fn resealed_total(&self) -> usize {
        self.resealed.values().sum()
    }

    /// The summary printed by the command line (user names, key ids and counts only).
    pub fn render(&self, active: &str, dry_run: bool) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let verb = if dry_run { "to reseal" } else { "resealed" };
        let _ = writeln!(
            out,
            "users in the index: {}, enrolled: {}",
            self.users, self.enrolled
        );
        let _ = writeln!(
            out,
            "already sealed with the active key {active:?}: {}",
            self.current
        );
        for (id, n) in &self.resealed {
            let _ = writeln!(out, "{verb} from key {id:?} to {active:?}: {n}");
        }
        if self.resealed.is_empty() {
            let _ = writeln!(out, "{verb}: 0");
        }
        if !self.unreadable.is_empty() {
            let _ = writeln!(
                out,
                "could not open (left as they are): {}",
                self.unreadable.len()
            );
            // Names come from the store (the VMS): shown with control characters escaped, so
            // a name cannot send escape sequences to the operator's terminal.
            for (user, why) in &self.unreadable {
                let _ = writeln!(out, "  {}: {why}", crate::pages::visible_text(user));
            }
        }
        if !self.busy.is_empty() {
            let _ = writeln!(
                out,
                "changed on every attempt while this ran (run it again): {}",
                self.busy.len()
            );
            for user in &self.busy {
                let _ = writeln!(out, "  {}", crate::pages::visible_text(user));
            }
        }
        if let Some(why) = &self.stopped {
            let _ = writeln!(out, "stopped early: {why}");
        }
        let done = if dry_run {
            format!(
                "dry run: nothing was written; {} secret(s) would be resealed",
                self.resealed_total()
            )
        } else if self.complete() {
            format!("every enrolled secret is now sealed with {active:?}")
        } else {
            "not every enrolled secret is sealed with the active key: keep the older keys in mfa.keys".to_string()
        };
        let _ = writeln!(out, "{done}");
        out
    }
}

/// Walks every user in the index and reseals, with the active key of `keys`, each secret
/// sealed with another key. With `dry_run` nothing is written: the report says what would
/// be resealed and which secrets do not open. A Redis failure stops the walk; the report
/// then says so (`stopped`) and still counts what was done before, so it can be audited.
pub async fn reseal_all(store: &Store, keys: &KeyRing, dry_run: bool) -> ResealReport {
    let mut report = ResealReport::default();
    if let Err(e) = walk(store, keys, dry_run, &mut report).await {
        report.stopped = Some(e.to_string());
    }
    report
}

async fn walk(
    store: &Store,
    keys: &KeyRing,
    dry_run: bool,
    report: &mut ResealReport,
) -> Result<(), StoreError> {
    let mut after = String::new();
    loop {
        let page = store.users_after(&after, PAGE).await?;
        for user in &page {
            report.users += 1;
            reseal_user(store, keys, user, dry_run, report).await?;
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after.clone_from(last),
            _ => return Ok(()),
        }
    }
}

async fn reseal_user(
    store: &Store,
    keys: &KeyRing,
    user: &str,
    dry_run: bool,
    report: &mut ResealReport,
) -> Result<(), StoreError> {
    let active = keys.active_id();
    for attempt in 0..ATTEMPTS {
        let Some(sealed) = store.user(user).await?.secret else {
            return Ok(());
        };
        if attempt == 0 {
            report.enrolled += 1;
        }
        let former = match KeyRing::key_id_of(&sealed) {
            Some(id) if id == active => {
                report.current += 1;
                return Ok(());
            }
            Some(id) => id.to_string(),
            None => {
                report
                    .unreadable
                    .push((user.to_string(), "not a sealed value".to_string()));
                return Ok(());
            }
        };
        let secret = match keys.open(Purpose::TotpSecret, user.as_bytes(), &sealed) {
            Ok(s) => s,
            Err(e) => {
                report.unreadable.push((user.to_string(), e.to_string()));
                return Ok(());
            }
        };
        if dry_run {
            *report.resealed.entry(former).or_default() += 1;
            return Ok(());
        }
        let resealed = keys
            .seal(Purpose::TotpSecret, user.as_bytes(), &secret)
            .map_err(|e| StoreError::Corrupt(format!("sealing failed: {e}")))?;
        if store
            .reseal_secret(user, &sealed, &resealed, active)
            .await?
        {
            *report.resealed.entry(former).or_default() += 1;
            return Ok(());
        }
    }
    report.busy.push(user.to_string());
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::auth::crypto::testing::ring;
    use crate::store::memory::MemoryStore;
    async fn enroll(store: &Store, keys: &KeyRing, user: &str, secret: &[u8]) {
        let sealed = keys
            .seal(Purpose::TotpSecret, user.as_bytes(), secret)
            .unwrap();
        assert_eq!(
            store
                .enroll(user, &sealed, keys.active_id(), 1_000, 33, None)
                .await
                .unwrap(),
            crate::store::EnrollResult::Enrolled
        );
    }

    fn secret_of(user: &str) -> Vec<u8> {
        format!("secret of {user}").into_bytes()
    }

    #[test]
    fn names_in_the_report_cannot_reach_the_terminal_as_control_characters() {
        let report = ResealReport {
            unreadable: vec![("eve\u{1b}[2Jmallory".into(), "bad".into())],
            busy: vec!["kim\u{202e}".into()],
            ..ResealReport::default()
        };
        let text = report.render("k2", true);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{202e}'),
            "{text}"
        );
        assert!(text.contains("eve\\u{1B}[2Jmallory"), "{text}");
    }

    #[tokio::test]
    async fn old_secrets_move_to_the_active_key_and_still_open() {
        let store = Store::Memory(MemoryStore::new());
        let old = ring("k1", &[("k1", 1)]);
        // More users than one page, so the walk crosses pages.
        let users: Vec<String> = (0..PAGE + 7).map(|i| format!("user{i:04}")).collect();
        for u in &users[..PAGE] {
            enroll(&store, &old, u, &secret_of(u)).await;
        }
        let rotated = ring("k2", &[("k1", 1), ("k2", 2)]);
        for u in &users[PAGE..PAGE + 3] {
            enroll(&store, &rotated, u, &secret_of(u)).await;
        }
        for u in &users[PAGE + 3..] {
            store
                .note_login(u, "supplier", 1_000, &Default::default())
                .await
                .unwrap();
        }
        let before = store.user(&users[0]).await.unwrap();

        let dry = reseal_all(&store, &rotated, true).await;
        assert_eq!(dry.resealed.get("k1"), Some(&PAGE));
        assert_eq!(
            store.user(&users[0]).await.unwrap(),
            before,
            "dry run wrote"
        );

        let report = reseal_all(&store, &rotated, false).await;
        assert_eq!(report.users, PAGE + 7);
        assert_eq!(report.enrolled, PAGE + 3);
        assert_eq!(report.current, 3);
        assert_eq!(report.resealed.get("k1"), Some(&PAGE));
        assert!(report.complete());

        // With the old key gone, every secret still opens, bound to its own user; everything
        // but the secret is as it was.
        let only_new = ring("k2", &[("k2", 2)]);
        for u in &users[..PAGE + 3] {
            let rec = store.user(u).await.unwrap();
            let sealed = rec.secret.clone().unwrap();
            assert_eq!(KeyRing::key_id_of(&sealed), Some("k2"));
            let opened = only_new
                .open(Purpose::TotpSecret, u.as_bytes(), &sealed)
                .unwrap();
            assert_eq!(opened.as_slice(), secret_of(u).as_slice());
        }
        let after = store.user(&users[0]).await.unwrap();
        assert_eq!(
            (after.enrolled_at, after.last_used, after.last_step),
            (before.enrolled_at, before.last_used, before.last_step)
        );

        // A second run has nothing left to do.
        let again = reseal_all(&store, &rotated, false).await;
        assert_eq!((again.current, again.resealed_total()), (PAGE + 3, 0));
        assert!(
            again
                .render("k2", false)
                .contains("every enrolled secret is now sealed with \"k2\"")
        );
    }

    #[tokio::test]
    async fn secrets_that_do_not_open_are_reported_and_left_alone() {
        let store = Store::Memory(MemoryStore::new());
        let gone = ring("k0", &[("k0", 9)]);
        enroll(&store, &gone, "alice", b"alice's secret").await;
        let stored = store.user("alice").await.unwrap().secret;
        let keys = ring("k2", &[("k1", 1), ("k2", 2)]);
        enroll(&store, &keys, "bob", b"bob's secret").await;

        let report = reseal_all(&store, &keys, false).await;
        assert_eq!(report.unreadable.len(), 1);
        assert_eq!(report.unreadable[0].0, "alice");
        assert!(
            report.unreadable[0].1.contains("k0"),
            "{:?}",
            report.unreadable
        );
        assert!(!report.complete());
        assert_eq!(store.user("alice").await.unwrap().secret, stored);
        let text = report.render("k2", false);
        assert!(text.contains("alice"), "{text}");
        assert!(text.contains("keep the older keys"), "{text}");
        assert!(!text.contains("secret'"), "no secret in the output: {text}");
    }

    #[tokio::test]
    async fn a_secret_replaced_meanwhile_is_not_overwritten() {
        let store = Store::Memory(MemoryStore::new());
        let old = ring("k1", &[("k1", 1)]);
        enroll(&store, &old, "carol", b"old phone").await;
        let stale = store.user("carol").await.unwrap().secret.unwrap();
        let keys = ring("k2", &[("k1", 1), ("k2", 2)]);
        let newer = keys
            .seal(Purpose::TotpSecret, b"carol", b"new phone")
            .unwrap();
        store
            .replace_secret("carol", &newer, "k2", 2_000, 66)
            .await
            .unwrap();
        let resealed = keys
            .seal(Purpose::TotpSecret, b"carol", b"old phone")
            .unwrap();
        assert!(
            !store
                .reseal_secret("carol", &stale, &resealed, "k2")
                .await
                .unwrap()
        );
        assert_eq!(store.user("carol").await.unwrap().secret, Some(newer));
    }
}
