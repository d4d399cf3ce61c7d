//! The configuration file as written by the operator: lenient structs in which almost
//! everything is optional, so that defaults live in one place (`super::validate`) and every
//! unknown key is an error (`deny_unknown_fields`), which catches typos such as
//! `upsteam.url` before they silently do nothing.
//!
//! Nothing here is trusted: `super::Config::from_toml` turns these structs into the validated
//! [`super::Config`] and names the key of every problem it finds.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub version: Option<u32>,
    pub server: Option<ServerFile>,
    pub tls: Option<TlsFile>,
    pub upstream: Option<UpstreamFile>,
    pub metrics: Option<MetricsFile>,
    pub log: Option<LogFile>,
    pub redis: Option<RedisFile>,
    pub mfa: Option<MfaFile>,
    pub vms: Option<VmsFile>,
    pub policy: Option<PolicyRefFile>,
    pub admin: Option<AdminFile>,
    pub webauthn: Option<WebauthnFile>,
    pub mail: Option<MailFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebauthnFile {
    pub origin: Option<String>,
    pub rp_id: Option<String>,
    pub rp_name: Option<String>,
}

/// `[mail]`: notifications by e-mail (and the code of `mfa.first_enrollment = "email_code"`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailFile {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub security: Option<String>,
    pub ca: Option<String>,
    pub username: Option<String>,
    pub password: Option<SecretFile>,
    pub from: Option<String>,
    pub reply_to: Option<String>,
    pub help_line: Option<String>,
    pub language: Option<String>,
    pub timeout: Option<String>,
    pub max_attempts: Option<u32>,
    pub retry_after: Option<String>,
    pub include_reset_reason: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFile {
    pub name: Option<String>,
    pub sha256: Option<String>,
    pub role: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    pub roles: Option<Vec<String>>,
    pub tokens: Option<Vec<TokenFile>>,
    pub audit_max_records: Option<usize>,
    pub can_reset: Option<BTreeMap<String, Vec<String>>>,
    pub reset_requires_enrollment_code: Option<bool>,
    pub enrollment_code_hours: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    pub listen: Option<String>,
    pub redirect_listen: Option<String>,
    pub public_port: Option<u16>,
    pub prefix: Option<String>,
    pub handshake_timeout: Option<String>,
    pub header_read_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub max_header_bytes: Option<usize>,
    pub max_connections: Option<usize>,
    pub shutdown_grace: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    pub worker_threads: Option<usize>,
    pub ready_requires: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    pub cert: Option<String>,
    pub key: Option<String>,
    pub watch_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    pub url: Option<String>,
    pub host_header: Option<String>,
    pub ca: Option<String>,
    pub connect_timeout: Option<String>,
    pub response_timeout: Option<String>,
    pub pool_idle_timeout: Option<String>,
    pub pool_max_idle: Option<usize>,
    pub readiness_path: Option<String>,
    pub strip_response_headers: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsFile {
    pub enabled: Option<bool>,
    pub listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFile {
    pub format: Option<String>,
    pub level: Option<String>,
}

/// A secret never has to be written inline: it is read from a file or an environment variable.
/// `value` exists for throw-away set-ups (the demo, tests) and is refused elsewhere unless
/// `allow_inline_secrets` is set.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretFile {
    pub file: Option<String>,
    pub env: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisFile {
    pub url: Option<String>,
    pub mode: Option<String>,
    pub nodes: Option<Vec<String>>,
    pub sentinel_master: Option<String>,
    pub password: Option<SecretFile>,
    pub sentinel_password: Option<SecretFile>,
    pub key_prefix: Option<String>,
    pub connect_timeout: Option<String>,
    pub response_timeout: Option<String>,
    pub memory_fallback: Option<bool>,
    pub ca: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    pub id: Option<String>,
    pub file: Option<String>,
    pub env: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfaFile {
    pub issuer: Option<String>,
    pub product_name: Option<String>,
    pub logo: Option<String>,
    pub support_text: Option<String>,
    pub default_language: Option<String>,
    pub window: Option<u8>,
    pub challenge_ttl: Option<String>,
    pub enrollment_ttl: Option<String>,
    pub pending_enrollment_ttl: Option<String>,
    pub offer_quiet_period: Option<String>,
    pub helpdesk_name: Option<String>,
    pub approval_max_age: Option<String>,
    pub max_failures: Option<u32>,
    pub lock_duration: Option<String>,
    pub max_failures_per_address: Option<u32>,
    pub offer_enrollment: Option<bool>,
    pub active_key: Option<String>,
    pub keys: Option<Vec<KeyFile>>,
    pub allow_inline_secrets: Option<bool>,
    pub revocation_poll: Option<String>,
    pub bind_challenge_to_address: Option<bool>,
    pub first_enrollment: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub method: Option<String>,
    pub path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginFile {
    pub method: Option<String>,
    pub path: Option<String>,
    pub username_field: Option<String>,
    pub username_pointer: Option<String>,
    pub success_status: Option<Vec<u16>>,
    pub success_cookie: Option<String>,
    pub posted_by: Option<String>,
    pub landing: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleFile {
    pub source: Option<String>,
    pub header: Option<String>,
    pub pointer: Option<String>,
    pub userinfo_path: Option<String>,
    pub userinfo_user_pointer: Option<String>,
    pub userinfo_role_pointer: Option<String>,
    pub static_file: Option<String>,
    pub user_header: Option<String>,
    pub user_pointer: Option<String>,
    pub map: Option<BTreeMap<String, String>>,
    pub unmapped: Option<String>,
    pub email_header: Option<String>,
    pub email_pointer: Option<String>,
    pub userinfo_email_pointer: Option<String>,
    pub email_map: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmsFile {
    pub session_cookies: Option<Vec<String>>,
    pub url_session_params: Option<Vec<String>>,
    pub login: Option<Vec<LoginFile>>,
    pub logout: Option<Vec<RouteFile>>,
    pub end_session: Option<RouteFile>,
    pub allow_body_on: Option<Vec<RouteFile>>,
    pub role: Option<RoleFile>,
    pub username_case_sensitive: Option<bool>,
    pub typed_username: Option<String>,
    pub case_insensitive_paths: Option<bool>,
    pub max_login_body_bytes: Option<usize>,
    pub max_login_response_bytes: Option<usize>,
    pub session_before_login: Option<String>,
    pub pre_login_ttl: Option<String>,
    pub navigation_helper: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRefFile {
    pub file: Option<String>,
    pub watch_interval: Option<String>,
}

/// Parses configuration text, reporting every unknown or mistyped key at once (each as the
/// key's path and one line of explanation), not only the first: an operator fixing a file
/// should not have to run `check-config` once per typo.
///
/// How: TOML syntax errors stop at once (with line and column). Otherwise the document is
/// deserialized from its parsed form with the path of every failure tracked; the offending
/// key is taken out and the rest deserialized again, until nothing fails or a failure has no
/// key to take out (a missing required key). Bounded by the number of keys in the file.
pub fn parse(text: &str) -> Result<FileConfig, Vec<(String, String)>> {
    let mut doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| vec![(String::new(), one_line(&e.to_string()))])?;
    let mut problems = Vec::new();
    for _ in 0..=count_keys(&doc) {
        let value = toml::Value::Table(doc.clone());
        match serde_path_to_error::deserialize::<_, FileConfig>(value) {
            Ok(file) if problems.is_empty() => return Ok(file),
            Ok(_) => return Err(problems),
            Err(e) => {
                let mut path: Vec<PathStep> = steps(e.path());
                let message = without_table_suffix(&one_line(&e.inner().to_string()));
                let unknown = unknown_field(&message);
                // The path names the unknown key itself, or (for some deserializers) only
                // the table that holds it.
                if let Some(field) = &unknown
                    && !matches!(path.last(), Some(PathStep::Key(k)) if k == field)
                {
                    path.push(PathStep::Key(field.clone()));
                }
                let explanation = match &unknown {
                    Some(_) => format!("unknown key ({})", expected_part(&message)),
                    None => message,
                };
                problems.push((render(&path), explanation));
                if !remove(&mut doc, &path) {
                    return Err(problems);
                }
            }
        }
    }
    Err(problems)
}

#[derive(Debug, Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn steps(path: &serde_path_to_error::Path) -> Vec<PathStep> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|s| match s {
            Segment::Map { key } => Some(PathStep::Key(key.clone())),
            Segment::Seq { index } => Some(PathStep::Index(*index)),
            _ => None,
        })
        .collect()
}

fn render(path: &[PathStep]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            PathStep::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathStep::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Takes the value at `path` out of the document; false when there is nothing to take.
fn remove(doc: &mut toml::Table, path: &[PathStep]) -> bool {
    match path {
        [PathStep::Key(k)] => doc.remove(k).is_some(),
        [PathStep::Key(k), rest @ ..] => doc.get_mut(k).is_some_and(|v| remove_in(v, rest)),
        _ => false,
    }
}

fn remove_in(v: &mut toml::Value, path: &[PathStep]) -> bool {
    match (v, path) {
        (toml::Value::Table(t), p) => remove(t, p),
        (toml::Value::Array(a), [PathStep::Index(i), rest @ ..]) if !rest.is_empty() => {
            a.get_mut(*i).is_some_and(|v| remove_in(v, rest))
        }
        _ => false,
    }
}

fn count_keys(t: &toml::Table) -> usize {
    fn value(v: &toml::Value) -> usize {
        match v {
            toml::Value::Table(t) => count_keys(t),
            toml::Value::Array(a) => a.iter().map(value).sum(),
            _ => 0,
        }
    }
    t.len() + t.values().map(value).sum::<usize>()
}

/// The field name of serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// The "expected one of ..." part of serde's message, for a hint.
fn expected_part(message: &str) -> String {
    message
        .split_once(", ")
        .map_or("not a setting of this table", |(_, e)| e)
        .to_string()
}

/// toml ends its messages with where it was ("... in `mfa.window`"); the key path says it.
fn without_table_suffix(message: &str) -> String {
    match message.rfind(" in `") {
        Some(i) if message.ends_with('`') => message[..i].to_string(),
        _ => message.to_string(),
    }
}

fn one_line(s: &str) -> String {
    s.trim()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
