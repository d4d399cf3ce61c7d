//! Fuzzes the configuration file (`config::Config::from_toml`), which `check-config` and
//! start-up read: any text must give a valid configuration or a list of keyed errors, never
//! a panic. Relative paths point into a directory that does not exist.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mfa_gateway::config::{Config, Mode};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/nonexistent-mfa-gateway-fuzz/gateway.toml");
    for mode in [Mode::Production, Mode::Demo] {
        if let Err(errors) = Config::from_toml(text, path, mode) {
            let _ = errors.to_string();
        }
    }
});
