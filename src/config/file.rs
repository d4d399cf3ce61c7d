//! The configuration file as written by the operator: lenient structs in which almost
//! everything is optional, so that defaults live in one place (`super::validate`) and every
//! unknown key is an error (`deny_unknown_fields`), which catches typos such as
//! `upsteam.url` before they silently do nothing.
//!
//! Nothing here is trusted: `super::Config::from_file` turns these structs into the validated
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFile {
    pub name: Option<String>,
    pub sha256: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    pub roles: Option<Vec<String>>,
    pub tokens: Option<Vec<TokenFile>>,
    pub audit_max_records: Option<usize>,
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRefFile {
    pub file: Option<String>,
    pub watch_interval: Option<String>,
}
