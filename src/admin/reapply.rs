//! `mfa-gateway admin reapply`: after Redis was restored from a backup, the MFA changes made
//! since that backup are gone from Redis — a stolen phone an MSP disconnected would sign in
//! again. The audit records of those changes are still outside Redis (the log, or an audit
//! export taken before the restore); this re-applies them.
//!
//! Re-applied, as a reset (the secret and recovery codes deleted, sessions ended):
//!
//! * `reset` — an MSP's or administrator's disconnection (the lost-phone case);
//! * `self_mfa_disabled` — the user turned optional MFA off;
//! * `self_phone_replaced` — the restored secret is the *old* phone's; the new one is not in
//!   any record, so the user enrolls again.
//!
//! A record is skipped (and said so) when the user's current record shows it no longer
//! applies: a reset at or after the record's time, or an enrollment after it (the secret now
//! stored is not the one the record removed). So running the command twice changes nothing
//! the second time. Users the restored store does not know are skipped (nothing to remove).
//!
//! Signatures: a record whose signature does not verify with the configured keys is not
//! applied (reported; the exit status is 1). Unsigned records (older versions, or a command
//! run without the keys) are applied, with a warning: a made-up one can only disconnect MFA,
//! which fails closed.

use crate::audit::{Event, Record, Signature};
use crate::auth::crypto::KeyRing;

use super::ops::{Actor, OpError, Ops};

/// Reads audit records from text in any of the forms the gateway writes them: an audit
/// export (`audit export`, JSON lines), the gateway's JSON log (the record in the `audit`
/// field, as a string or an object) or its text log (`audit={...}`). Other lines are ignored.
/// Each record comes with its line number.
pub fn parse_records(text: &str) -> Vec<(usize, Record)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(r) = parse_line(line.trim()) {
            out.push((i + 1, r));
        }
    }
    out
}

fn parse_line(line: &str) -> Option<Record> {
    if line.is_empty() {
        return None;
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        if let Ok(r) = serde_json::from_value::<Record>(v.clone()) {
            return Some(r);
        }
        let inner = v.get("audit").or_else(|| v.pointer("/fields/audit"))?;
        return match inner {
            serde_json::Value::String(s) => serde_json::from_str(s).ok(),
            other => serde_json::from_value(other.clone()).ok(),
        };
    }
    // The text log: `... audit={"v":1,...} ...`.
    let start = line.find("audit={")? + "audit=".len();
    serde_json::Deserializer::from_str(&line[start..])
        .into_iter::<Record>()
        .next()?
        .ok()
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Re-applied (`true` if a secret was removed).
    Applied(bool),
    /// Would be re-applied (`--dry-run`).
    WouldApply,
    /// Not needed, and why.
    Skipped(String),
    /// Not applied because it could not be trusted or done, and why.
    Failed(String),
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Line {
    pub line: usize,
    pub at: String,
    pub event: Event,
    pub user: String,
    pub unsigned: bool,
    pub outcome: Outcome,
}

/// Whether the event is one this command re-applies.
pub fn reapplies(event: Event) -> bool {
    matches!(
        event,
        Event::Reset | Event::SelfMfaDisabled | Event::SelfPhoneReplaced
    )
}

/// Re-applies the records with `ts >= since` (oldest first) with `actor`. `keys`: the key
/// ring to verify signatures with.
pub async fn reapply(
    ops: &Ops,
    records: Vec<(usize, Record)>,
    since: u64,
    keys: &KeyRing,
    actor: &Actor,
    now: u64,
    dry_run: bool,
) -> Vec<Line> {
    let mut records: Vec<(usize, Record)> = records
        .into_iter()
        .filter(|(_, r)| r.ts >= since && reapplies(r.event) && r.user.is_some())
        .collect();
    records.sort_by_key(|(line, r)| (r.ts, *line));
    let mut out = Vec::new();
    for (line, r) in records {
        let user = r.user.clone().unwrap_or_default();
        let signature = r.verify(keys);
        let mut report = Line {
            line,
            at: r.at.clone(),
            event: r.event,
            user: user.clone(),
            unsigned: signature == Signature::Missing,
            outcome: Outcome::WouldApply,
        };
        report.outcome = if signature == Signature::Invalid {
            Outcome::Failed("signature does not match: not applied".into())
        } else {
            apply_one(ops, &r, &user, actor, now, dry_run).await
        };
        out.push(report);
    }
    out
}

async fn apply_one(
    ops: &Ops,
    r: &Record,
    user: &str,
    actor: &Actor,
    now: u64,
    dry_run: bool,
) -> Outcome {
    let current = match ops.store.user(user).await {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    if !current.known() {
        return Outcome::Skipped("user not in the store".into());
    }
    if current.reset_at.is_some_and(|t| t >= r.ts) {
        return Outcome::Skipped("reset again since".into());
    }
    if current.enrolled_at.is_some_and(|t| t > r.ts) {
        return Outcome::Skipped("enrolled again since".into());
    }
    if dry_run {
        return Outcome::WouldApply;
    }
    let reason = format!(
        "re-applied after a restore: {} at {} by {}{}",
        r.event.as_str(),
        r.at,
        r.actor,
        r.reason
            .as_deref()
            .map(|x| format!(" ({x})"))
            .unwrap_or_default()
    );
    // With `admin.reset_requires_enrollment_code`, the re-applied reset makes an enrollment
    // code that nobody is shown: the user's next pairing waits for a new one from the MSP
    // (`admin enrollment-code`), never for the code of the lost reset, which the restored
    // backup may no longer hold.
    match ops.reset(user, actor, &reason, now).await {
        Ok(done) => Outcome::Applied(done.had),
        Err(OpError::UnknownUser) => Outcome::Skipped("user not in the store".into()),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// The report as printed, and whether everything could be applied.
pub fn render(lines: &[Line], dry_run: bool) -> (String, bool) {
    let mut s = String::new();
    let mut ok = true;
    let (mut applied, mut skipped, mut failed) = (0, 0, 0);
    for l in lines {
        let what = match &l.outcome {
            Outcome::Applied(had) => {
                applied += 1;
                format!("re-applied (had an app: {had})")
            }
            Outcome::WouldApply => {
                applied += 1;
                "would re-apply".to_string()
            }
            Outcome::Skipped(why) => {
                skipped += 1;
                format!("skipped: {why}")
            }
            Outcome::Failed(why) => {
                failed += 1;
                ok = false;
                format!("NOT APPLIED: {why}")
            }
        };
        s.push_str(&format!(
            "line {}: {} {} {}{}: {what}\n",
            l.line,
            l.at,
            l.event.as_str(),
            crate::pages::visible_text(&l.user),
            if l.unsigned { " (unsigned)" } else { "" }
        ));
    }
    s.push_str(&format!(
        "{} {applied}, skipped {skipped}, not applied {failed}\n",
        if dry_run {
            "would re-apply"
        } else {
            "re-applied"
        }
    ));
    (s, ok)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::audit::ActorKind;

    #[test]
    fn records_are_read_from_exports_and_both_log_formats() {
        let r = Record::new(Event::Reset, 1_700_000_000, ActorKind::Cli, "cli:ops")
            .user("alice")
            .reason("phone stolen");
        let json = serde_json::to_string(&r).unwrap();
        let json_log = serde_json::json!({
            "timestamp": "2023-11-14T22:13:20Z",
            "level": "INFO",
            "audit": json,
            "message": "reset",
            "target": "audit"
        })
        .to_string();
        let text_log = format!("2023-11-14T22:13:20Z  INFO audit: reset audit={json}");
        let text =
            format!("{json}\nnot a record\n{json_log}\n\n{text_log}\n{{\"level\":\"INFO\"}}\n");
        let got = parse_records(&text);
        assert_eq!(
            got.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            [1, 3, 5],
            "{got:?}"
        );
        assert!(got.iter().all(|(_, x)| *x == r));
    }
}
