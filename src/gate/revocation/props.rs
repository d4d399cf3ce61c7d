//! Property test of the ordering rule: which approvals a revocation ends.
//!
//! A generated history of logins, renewals, logouts, MSP resets and feed polls runs against
//! the real store operations (the in-process store, same semantics as the Redis scripts) and
//! the real per-instance snapshots, on three instances whose clocks are arbitrarily far apart
//! and which read the feed at arbitrary moments. The model next to it knows only the order in
//! which things happened in the store. Whatever the clocks and the poll timing:
//!
//! * once every instance has read the feed, an approval (or a renewal of it) whose login read
//!   the user's state before a later reset, or that was logged out, is revoked everywhere;
//! * an approval whose login read the user's state after the user's last reset, and that was
//!   not logged out, is never revoked, on any instance, at any moment (no clock decides
//!   otherwise, and a logout of one approval never touches another on the same session);
//! * a login without MFA (the epoch from the instance's own feed view) survives whenever that
//!   instance had read every reset of the user before the login.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use proptest::prelude::*;

use super::{Revocations, revoke_user};
use crate::gate::approval::Approval;
use crate::policy::MfaState;
use crate::store::{Store, memory::MemoryStore};

const INSTANCES: usize = 3;
const USERS: [&str; 3] = ["ann", "bob", "cas"];
/// Longer than any generated history, so nothing expires while the property looks.
const MAX_AGE: Duration = Duration::from_secs(10_000_000);
const BASE: u64 = 1_800_000_000;

#[derive(Debug, Clone)]
enum Op {
    /// A login with MFA: the epoch is read from the store with the user's state.
    Login {
        user: usize,
        at: usize,
        session: u8,
    },
    /// A login of a role without MFA: the epoch from the instance's feed view.
    LoginNoMfa {
        user: usize,
        at: usize,
        session: u8,
    },
    /// The VMS rotates the session of an earlier approval, on some instance.
    Renew {
        which: prop::sample::Index,
        session: u8,
    },
    Logout {
        which: prop::sample::Index,
        at: usize,
    },
    Reset {
        user: usize,
        at: usize,
    },
    Poll {
        at: usize,
    },
    /// Time passes (on every instance alike; the offsets stay).
    Wait {
        secs: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let at = 0..INSTANCES;
    let user = 0..USERS.len();
    prop_oneof![
        4 => (user.clone(), at.clone(), 0u8..4).prop_map(|(user, at, session)| Op::Login { user, at, session }),
        2 => (user.clone(), at.clone(), 0u8..4).prop_map(|(user, at, session)| Op::LoginNoMfa { user, at, session }),
        2 => (any::<prop::sample::Index>(), 0u8..4).prop_map(|(which, session)| Op::Renew { which, session }),
        2 => (any::<prop::sample::Index>(), at.clone()).prop_map(|(which, at)| Op::Logout { which, at }),
        2 => (user, at.clone()).prop_map(|(user, at)| Op::Reset { user, at }),
        3 => at.prop_map(|at| Op::Poll { at }),
        1 => (0u64..5).prop_map(|secs| Op::Wait { secs }),
    ]
}

/// What the model knows about one approval.
#[derive(Debug)]
struct Issued {
    approval: Approval,
    /// Index of the approval it renews (itself for a login): logouts and resets follow it.
    root: usize,
    /// How many resets of the user the store had made when the login read the state.
    resets_before: u64,
    /// For a login without MFA: whether the instance had read all of them by then.
    view_current: bool,
    mfa: bool,
}

fn run(clock_offsets: [i64; INSTANCES], ops: Vec<Op>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = Store::Memory(MemoryStore::new());
        let instances: Vec<_> = (0..INSTANCES).map(|_| Revocations::new()).collect();
        let mut t = BASE;
        let clock = |t: u64, at: usize| t.saturating_add_signed(clock_offsets[at]);
        let mut resets = [0u64; USERS.len()];
        // Resets of each user every instance has read (or made itself).
        let mut seen = [[0u64; USERS.len()]; INSTANCES];
        let mut issued: Vec<Issued> = Vec::new();
        let mut logged_out: Vec<usize> = Vec::new();
        let mut next_id = 0u8;
        let session_hash = |s: u8| [s; 16];
        for op in ops {
            match op {
                Op::Login { user, at, session } | Op::LoginNoMfa { user, at, session } => {
                    let mfa = matches!(op, Op::Login { .. });
                    let epoch = if mfa {
                        store.user(USERS[user]).await.unwrap().epoch
                    } else {
                        instances[at].user_epoch(USERS[user])
                    };
                    next_id = next_id.wrapping_add(1);
                    let now = clock(t, at);
                    issued.push(Issued {
                        approval: Approval {
                            issued: now,
                            expires: now + MAX_AGE.as_secs(),
                            mfa_passed: mfa,
                            state: MfaState::Enforced,
                            session_hash: session_hash(session),
                            role: "customer".into(),
                            user: USERS[user].into(),
                            epoch,
                            id: Some([next_id; 16]),
                        },
                        root: issued.len(),
                        resets_before: resets[user],
                        view_current: seen[at][user] == resets[user],
                        mfa,
                    });
                }
                Op::Renew { which, session } => {
                    if issued.is_empty() {
                        continue;
                    }
                    let i = which.index(issued.len());
                    let old = &issued[i];
                    let renewed = Issued {
                        approval: Approval {
                            session_hash: session_hash(session),
                            ..old.approval.clone()
                        },
                        root: old.root,
                        resets_before: old.resets_before,
                        view_current: old.view_current,
                        mfa: old.mfa,
                    };
                    issued.push(renewed);
                }
                Op::Logout { which, at } => {
                    if issued.is_empty() {
                        continue;
                    }
                    let i = which.index(issued.len());
                    let entry = super::logout_entry(&issued[i].approval);
                    let now = clock(t, at);
                    instances[at].apply(std::slice::from_ref(&entry), now);
                    store.revoke(&entry, now, MAX_AGE).await.unwrap();
                    logged_out.push(issued[i].root);
                }
                Op::Reset { user, at } => {
                    let now = clock(t, at);
                    revoke_user(&store, Some(&instances[at]), USERS[user], now, MAX_AGE)
                        .await
                        .unwrap();
                    resets[user] += 1;
                    seen[at][user] = resets[user];
                }
                Op::Poll { at } => {
                    prop_assert!(instances[at].poll_once(&store, clock(t, at)).await);
                    seen[at] = resets;
                }
                Op::Wait { secs } => t += secs,
            }
            // At every moment: what must survive survives everywhere.
            for a in &issued {
                let must_survive = !logged_out.contains(&a.root)
                    && a.resets_before
                        == resets[USERS.iter().position(|u| *u == a.approval.user).unwrap()]
                    && (a.mfa || a.view_current);
                if must_survive {
                    for (n, r) in instances.iter().enumerate() {
                        prop_assert!(!r.is_revoked(&a.approval), "instance {n} revoked {:?}", a);
                    }
                }
            }
        }
        // Every instance reads the feed: what must end has ended everywhere.
        for (at, r) in instances.iter().enumerate() {
            prop_assert!(r.poll_once(&store, clock(t, at)).await);
        }
        for a in &issued {
            let user = USERS.iter().position(|u| *u == a.approval.user).unwrap();
            let must_end = logged_out.contains(&a.root) || a.resets_before < resets[user];
            for (n, r) in instances.iter().enumerate() {
                if must_end {
                    prop_assert!(r.is_revoked(&a.approval), "instance {n} kept {:?}", a);
                } else if a.mfa || a.view_current {
                    prop_assert!(!r.is_revoked(&a.approval), "instance {n} ended {:?}", a);
                }
            }
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn revocations_follow_the_store_order_not_the_clocks(
        clock_offsets in prop::array::uniform3(-100_000i64..100_000),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        run(clock_offsets, ops)?;
    }
}
