//! Fuzzes the policy file (`policy::Policy::from_toml`). Operators edit it by hand and the
//! gateway reloads it while running, so a broken file must be an error, never a panic; and a
//! file that loads must answer for every listed role at any instant, on any date.

#![no_main]

use jiff::Timestamp;
use jiff::civil::{Date, date};
use libfuzzer_sys::fuzz_target;
use mfa_gateway::policy::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = Policy::from_toml(text) else {
        return;
    };
    let instants = [
        Timestamp::MIN,
        Timestamp::UNIX_EPOCH,
        Timestamp::from_second(1_640_995_200).unwrap_or(Timestamp::UNIX_EPOCH),
        Timestamp::MAX,
    ];
    for at in instants {
        let _ = policy.today(at);
        let _ = policy.next_change_after(at);
        for role in policy.roles() {
            assert!(policy.decide(role, at).is_some(), "{role} at {at}");
        }
    }
    for on in [Date::MIN, date(2022, 1, 1), Date::MAX] {
        let _ = policy.render_matrix(on);
        for role in policy.roles() {
            assert!(policy.decide_on(role, on).is_some());
        }
    }
});
