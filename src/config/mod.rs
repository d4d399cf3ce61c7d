//! Configuration: one TOML file, read in two stages.
//!
//! 1. [`file`](mod@file) holds lenient structs that mirror the file (`deny_unknown_fields`, nearly every
//!    field optional).
//! 2. `validate` turns them into the typed model (`model`, re-exported here as
//!    `config::Config`, `config::Vms`, ...) that the rest of the gateway uses. Every problem is
//!    collected with the key it belongs to (`tls.cert: file not found:
//!    /etc/mfa-gateway/server.pem`) so an operator sees all of them at once, and defaults are
//!    applied there and nowhere else.
//!
//! The model and the rules live apart so that the code reading the configuration sees only
//! the validated types, and every rule sits in one file with one table of tests (`rules`).
//!
//! Relative paths in the file are resolved against the directory that holds the file, so a
//! configuration directory can be moved as a whole. Secrets (keys, passwords) are never
//! required inline: each is `{ file = "..." }` or `{ env = "NAME" }`.

pub mod file;
mod model;
#[cfg(test)]
mod rules;
#[cfg(test)]
pub(crate) mod test_config;
#[cfg(test)]
mod tests;
mod validate;

use std::fmt;
use std::path::Path;

pub use model::*;
pub use validate::parse_duration;

/// Every problem found in a configuration file, each with the key it concerns.
#[derive(Debug, Default)]
pub struct ConfigErrors {
    pub errors: Vec<(String, String)>,
    /// In unit tests, where in the source each error was pushed: the rule tests
    /// (`rules`) check that every rule of `validate` is reached by a case of their table.
    #[cfg(test)]
    sites: Vec<&'static std::panic::Location<'static>>,
}

impl ConfigErrors {
    #[cfg_attr(test, track_caller)]
    fn push(&mut self, key: impl Into<String>, msg: impl Into<String>) {
        self.errors.push((key.into(), msg.into()));
        #[cfg(test)]
        self.sites.push(std::panic::Location::caller());
    }
    fn single(key: impl Into<String>, msg: impl Into<String>) -> Self {
        let mut e = Self::default();
        e.push(key, msg);
        e
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, m)) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if k.is_empty() {
                write!(f, "{m}")?;
            } else {
                write!(f, "{k}: {m}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// How strict loading is. The demo may run without certificate files and keys (it makes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Production,
    Demo,
}

/// Largest configuration file read (the main file, a static role file).
pub const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;
/// Largest secret file read (a key, a password, a token hash list).
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// Whether a secret file can be read by users other than its owner and group (Unix only).
/// Group read is accepted: it is how a Kubernetes `fsGroup` or a service group shares a file.
#[cfg(unix)]
pub fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o007 != 0)
}

/// Whether a secret file can be read by users other than its owner and group (Unix only).
#[cfg(not(unix))]
pub fn readable_by_others(_path: &Path) -> bool {
    false
}

/// Reads a UTF-8 file of at most `limit` bytes. A path that names something endless (a device
/// such as `/dev/zero`) or huge is refused with an error instead of hanging start-up or
/// exhausting memory.
pub fn read_text_limited(path: &Path, limit: u64) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)?;
    if u64::try_from(buf.len()).unwrap_or(u64::MAX) > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    String::from_utf8(buf)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}
