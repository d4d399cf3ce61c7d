//! A gateway for unit tests of the request path: memory store, demo-mode configuration with
//! one session cookie (`VMSSESSION`), a manual clock at [`NOW`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use crate::auth::crypto;
use crate::clock::Clock;
use crate::config::{Config, Mode};
use crate::gateway::Gateway;
use crate::live_policy::LivePolicy;
use crate::store::{Store, memory::MemoryStore};

pub const NOW: u64 = 1_772_452_800;

pub fn gateway() -> Arc<Gateway> {
    let key = crypto::generate_key_material();
    let text = crate::config::test_config::text(&key, &Default::default());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/gate-memo-test.toml");
    let cfg = Config::from_toml(&text, &path, Mode::Demo).unwrap();
    let keys = crypto::KeyRing::new(
        "k1",
        vec![("k1".into(), crypto::parse_key_material(&key).unwrap())],
    )
    .unwrap();
    let policy = LivePolicy::load(cfg.policy.file.clone()).unwrap();
    Gateway::new(
        Arc::new(cfg),
        keys,
        Store::Memory(MemoryStore::new()),
        policy,
        Clock::manual(i64::try_from(NOW).unwrap()),
    )
    .unwrap()
}
