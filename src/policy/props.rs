//! Property tests for the dated policy.
//!
//! The example tests in `policy.rs` pin the shipped dates; these check the rules for any
//! policy and any instant: a decision equals that of the last phase started (a model written
//! independently, on instants rather than local dates), a phase begins exactly at local
//! midnight in the policy's zone (also where daylight saving time skips midnight), the
//! "next change" promise holds, and the shipped rollout never steps back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jiff::civil::{Date, date};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp};
use proptest::prelude::*;

use super::{MfaState, Policy};

const SHIPPED: &str = include_str!("../../config/policy.toml");

/// Zones with ordinary, midnight-skipping and half-hour transitions, and one (Apia) that
/// skipped a whole day.
const ZONES: [&str; 8] = [
    "UTC",
    "Europe/Amsterdam",
    "America/Santiago",
    "America/Havana",
    "Asia/Tehran",
    "Pacific/Apia",
    "Australia/Lord_Howe",
    "America/St_Johns",
];

const STATES: [MfaState; 3] = [MfaState::None, MfaState::Available, MfaState::Enforced];

fn rank(s: MfaState) -> u8 {
    match s {
        MfaState::None => 0,
        MfaState::Available => 1,
        MfaState::Enforced => 2,
    }
}

fn day(offset: i64) -> Date {
    date(1990, 1, 1)
        .checked_add(Span::new().days(offset))
        .unwrap()
}

/// A random policy as plain data.
#[derive(Debug, Clone)]
struct Model {
    zone: &'static str,
    roles: Vec<String>,
    /// Strictly increasing start dates, each with one state per role.
    phases: Vec<(Date, Vec<MfaState>)>,
}

impl Model {
    fn toml(&self) -> String {
        let roles: Vec<String> = self.roles.iter().map(|r| format!("{r:?}")).collect();
        let mut t = format!(
            "timezone = {:?}\nroles = [{}]\nrecovery_codes = true\n",
            self.zone,
            roles.join(", ")
        );
        for (from, states) in &self.phases {
            t.push_str(&format!("\n[[phase]]\nfrom = {from}\n[phase.roles]\n"));
            for (r, s) in self.roles.iter().zip(states) {
                t.push_str(&format!("{r} = \"{}\"\n", s.as_str()));
            }
        }
        t
    }

    /// The state at an instant: the last phase whose local midnight is not after it.
    fn state_at(&self, role: usize, at: Timestamp) -> MfaState {
        let tz = TimeZone::get(self.zone).unwrap();
        self.phases
            .iter()
            .rev()
            .find(|(from, _)| from.to_zoned_datetime(tz.clone()).unwrap().timestamp() <= at)
            .map_or(MfaState::None, |(_, states)| states[role])
    }
}

fn model() -> impl Strategy<Value = Model> {
    (
        prop::sample::select(&ZONES[..]),
        1usize..5,
        0i64..40_000,
        prop::collection::vec((1i64..800, prop::collection::vec(0usize..3, 5)), 1..6),
    )
        .prop_map(|(zone, nroles, start, raw)| {
            let roles = (0..nroles).map(|i| format!("role-{i}")).collect();
            let mut at = start;
            let phases = raw
                .into_iter()
                .map(|(gap, states)| {
                    at += gap;
                    (
                        day(at),
                        states[..nroles].iter().map(|&i| STATES[i]).collect(),
                    )
                })
                .collect();
            Model {
                zone,
                roles,
                phases,
            }
        })
}

fn instant() -> impl Strategy<Value = Timestamp> {
    // 1990 .. about 2160, in seconds, plus a sub-second part.
    (631_152_000i64..6_000_000_000, 0i32..1_000_000_000)
        .prop_map(|(s, ns)| Timestamp::new(s, ns).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_decision_is_that_of_the_last_phase_started(m in model(), at in instant()) {
        let p = Policy::from_toml(&m.toml()).unwrap();
        for (i, role) in m.roles.iter().enumerate() {
            let d = p.decide(role, at).unwrap();
            prop_assert_eq!(d.state, m.state_at(i, at), "{} at {}", role, at);
            prop_assert_eq!(p.decide_on(role, p.today(at)), Some(d));
        }
        prop_assert!(p.decide("not-a-role", at).is_none());
    }

    #[test]
    fn each_phase_begins_at_local_midnight(m in model()) {
        let p = Policy::from_toml(&m.toml()).unwrap();
        let tz = TimeZone::get(m.zone).unwrap();
        for (k, (from, states)) in m.phases.iter().enumerate() {
            let start = from.to_zoned_datetime(tz.clone()).unwrap().timestamp();
            let before = start - SignedDuration::from_nanos(1);
            for (i, role) in m.roles.iter().enumerate() {
                prop_assert_eq!(p.decide(role, start).unwrap().state, states[i]);
                let previous = if k == 0 { MfaState::None } else { m.phases[k - 1].1[i] };
                prop_assert_eq!(p.decide(role, before).unwrap().state, previous);
                prop_assert_eq!(p.decide_on(role, *from).unwrap().state, states[i]);
            }
        }
    }

    #[test]
    fn nothing_changes_before_the_announced_next_change(m in model(), at in instant()) {
        let p = Policy::from_toml(&m.toml()).unwrap();
        match p.next_change_after(at) {
            Some(next) => {
                prop_assert!(next > at);
                let just_before = next - SignedDuration::from_nanos(1);
                for role in &m.roles {
                    prop_assert_eq!(
                        p.decide(role, at).unwrap().state,
                        p.decide(role, just_before).unwrap().state
                    );
                }
            }
            None => {
                let later = at + SignedDuration::from_hours(24 * 365 * 50);
                for role in &m.roles {
                    prop_assert_eq!(
                        p.decide(role, at).unwrap().state,
                        p.decide(role, later).unwrap().state
                    );
                }
            }
        }
    }

    #[test]
    fn the_shipped_rollout_never_steps_back(a in -30_000i64..80_000, b in -30_000i64..80_000) {
        let p = Policy::from_toml(SHIPPED).unwrap();
        let (early, late) = (day(a.min(b)), day(a.max(b)));
        for role in p.roles() {
            let s1 = p.decide_on(role, early).unwrap().state;
            let s2 = p.decide_on(role, late).unwrap().state;
            prop_assert!(rank(s1) <= rank(s2), "{} went from {} on {} to {} on {}", role, s1, early, s2, late);
            if s1 == MfaState::Enforced {
                prop_assert_eq!(s2, MfaState::Enforced);
            }
        }
    }

    #[test]
    fn the_shipped_policy_agrees_by_date_and_by_instant(offset in -30_000i64..80_000) {
        let p = Policy::from_toml(SHIPPED).unwrap();
        let tz = TimeZone::get(p.timezone_name()).unwrap();
        let d = day(offset);
        let midnight = d.to_zoned_datetime(tz.clone()).unwrap().timestamp();
        let last_ns = midnight - SignedDuration::from_nanos(1);
        let yesterday = d.yesterday().unwrap();
        for role in p.roles() {
            prop_assert_eq!(p.decide(role, midnight), p.decide_on(role, d));
            prop_assert_eq!(p.decide(role, last_ns), p.decide_on(role, yesterday));
        }
    }
}
