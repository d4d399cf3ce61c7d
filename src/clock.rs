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
        jiff::Timestamp::from_second(i64::try_from(self.unix()).unwrap_or(0))
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }
}
