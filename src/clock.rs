//! The gateway's notion of "now".
//!
//! Every decision that depends on time (policy phases, TOTP steps, expiries, locks) receives
//! `now` as an argument; only the request boundary reads this clock. Tests and the benchmark
//! run the real gateway with a [`Clock::manual`] clock, so dates such as 2021-10-31 and
//! 2022-01-01 can be tested without touching the machine's clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Debug, Clone, Default)]
pub enum Clock {
    #[default]
    System,
    /// Unix seconds, settable from outside.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    pub fn manual(unix: i64) -> Self {
        Clock::Manual(Arc::new(AtomicI64::new(unix)))
    }

    /// Moves a manual clock (no effect on the system clock).
    pub fn set(&self, unix: i64) {
        if let Clock::Manual(t) = self {
            t.store(unix, Ordering::SeqCst);
        }
    }

    pub fn advance(&self, secs: i64) {
        if let Clock::Manual(t) = self {
            t.fetch_add(secs, Ordering::SeqCst);
        }
    }

    /// Seconds since the Unix epoch.
    pub fn unix(&self) -> u64 {
        match self {
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            Clock::Manual(t) => u64::try_from(t.load(Ordering::SeqCst)).unwrap_or(0),
        }
    }

    pub fn timestamp(&self) -> jiff::Timestamp {
        timestamp_of(self.unix())
    }
}

/// The instant `secs` seconds after the Unix epoch, for date arithmetic (the policy's phases,
/// the audit trail's `at`, the pages' times). The one conversion from the `u64` seconds that
/// auth logic, cookies and the store carry. Beyond jiff's range (after the year 9999) it is
/// the last instant jiff knows, never an early one: a date check must not fall back to a
/// phase before MFA.
pub fn timestamp_of(secs: u64) -> jiff::Timestamp {
    let max = jiff::Timestamp::MAX.as_second();
    let s = i64::try_from(secs).unwrap_or(max).min(max);
    jiff::Timestamp::from_second(s).unwrap_or(jiff::Timestamp::MAX)
}

#[cfg(test)]
mod conversion_tests {
    use super::timestamp_of;

    #[test]
    fn seconds_become_instants_and_never_fall_back_to_the_epoch() {
        assert_eq!(timestamp_of(0), jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(
            timestamp_of(1_640_995_200).to_string(),
            "2022-01-01T00:00:00Z"
        );
        let last = jiff::Timestamp::MAX.as_second();
        assert_eq!(timestamp_of(u64::MAX).as_second(), last);
        assert_eq!(timestamp_of(i64::MAX as u64).as_second(), last);
    }
}
