//! One demo configuration for unit tests, with additions per table, so a test states only
//! what it changes.

use std::path::Path;

use super::{Config, ConfigErrors, Mode};

/// Lines added to the tables of the test configuration; `keys` replaces its `mfa.keys` line.
#[derive(Default)]
pub struct Extra<'a> {
    pub upstream: &'a str,
    pub mfa: &'a str,
    pub keys: Option<&'a str>,
    pub vms: &'a str,
    pub role: &'a str,
    pub admin: &'a str,
}

/// The configuration text, with `key` (key material) as the inline key `k1`.
pub fn text(key: &str, e: &Extra<'_>) -> String {
    let keys = e.keys.map_or_else(
        || format!(r#"keys = [{{ id = "k1", value = "{key}" }}]"#),
        str::to_string,
    );
    let Extra {
        upstream,
        mfa,
        vms,
        role,
        admin,
        ..
    } = e;
    format!(
        r#"
version = 1
[server]
listen = "127.0.0.1:0"
[upstream]
url = "http://127.0.0.1:9"
{upstream}
[redis]
url = "redis://127.0.0.1:9/0"
[mfa]
active_key = "k1"
{keys}
{mfa}
[vms]
session_cookies = ["VMSSESSION"]
{vms}
[[vms.login]]
method = "POST"
path = "/login"
username_field = "username"
[vms.role]
source = "header"
header = "X-VMS-Role"
{role}
[policy]
file = "policy.toml"
[admin]
{admin}
"#
    )
}

/// The test configuration with `e` added, validated in demo mode.
pub fn load(e: &Extra<'_>) -> Result<Config, ConfigErrors> {
    let key = crate::auth::crypto::generate_key_material();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/config-test.toml");
    Config::from_toml(&text(&key, e), &path, Mode::Demo)
}
