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
    let text = format!(
        r#"
version = 1
[server]
listen = "127.0.0.1:0"
[upstream]
url = "http://127.0.0.1:9"
[redis]
url = "redis://127.0.0.1:9/0"
[mfa]
active_key = "k1"
keys = [{{ id = "k1", value = "{key}" }}]
[vms]
session_cookies = ["VMSSESSION"]
[[vms.login]]
method = "POST"
path = "/login"
username_field = "username"
[vms.role]
source = "header"
header = "X-VMS-Role"
[policy]
file = "policy.toml"
"#
    );
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
