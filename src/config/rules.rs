//! One test case per validation rule, through [`Config::from_toml`] (and, for the rules that
//! need the policy's roles, [`Config::check_policy_roles`]).
//!
//! Each case is the test configuration (`test_config`) with a minimal mutation, a few
//! `key = value` settings, and the error it must produce: the key the error names and a
//! fragment of its message. The shipped examples must validate as they are.
//!
//! Every error records where it was pushed (`ConfigErrors::push` tracks its caller in unit
//! tests), so [`every_rule_in_the_source_has_a_case`] can compare the rules reached by the
//! table with every `errors.push(` in `validate.rs`: a rule added without a case fails it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::test_config;
use super::{Config, ConfigErrors, Mode};
use crate::policy::Policy;

/// The value that takes a key out of the configuration.
const REMOVE: &str = "<remove>";
/// The key whose value is appended to the text as it is (for TOML syntax errors).
const RAW: &str = "<raw>";
/// A valid token hash for `admin.tokens`.
const HASH: &str = "\"0000000000000000000000000000000000000000000000000000000000000000\"";

/// One rule: a mutation of the test configuration and the error it must cause.
struct Case {
    mode: Mode,
    /// `(dotted key, TOML value)`; array elements by index (`vms.login.0.path`), [`REMOVE`]
    /// takes the key out, `{dir}` in a value is the directory of [`Fixture`].
    edits: &'static [(&'static str, &'static str)],
    key: &'static str,
    msg: &'static str,
}

/// A case in demo mode (as `test_config::load`).
const fn demo(
    key: &'static str,
    msg: &'static str,
    edits: &'static [(&'static str, &'static str)],
) -> Case {
    Case {
        mode: Mode::Demo,
        edits,
        key,
        msg,
    }
}

/// A case in production mode: the test configuration gets certificate and key files and a
/// key file first ([`PRODUCTION`]).
const fn prod(
    key: &'static str,
    msg: &'static str,
    edits: &'static [(&'static str, &'static str)],
) -> Case {
    Case {
        mode: Mode::Production,
        edits,
        key,
        msg,
    }
}

/// What the test configuration needs to be valid in production mode.
const PRODUCTION: &[(&str, &str)] = &[
    ("tls.cert", r#""{dir}/cert.pem""#),
    ("tls.key", r#""{dir}/key.pem""#),
    ("mfa.keys", r#"[{ id = "k1", file = "{dir}/k1.key" }]"#),
];

/// The roles of `config/policy.toml`, for [`Config::check_policy_roles`].
fn policy_roles() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy.toml");
    Policy::load(&path).unwrap().roles().to_vec()
}

/// Every rule of `validate.rs`, in the order of the source.
fn cases() -> Vec<Case> {
    vec![
        // Reading the file.
        demo(
            "",
            "config-test.toml: TOML parse error",
            &[(RAW, "[server")],
        ),
        demo("server.lisen", "unknown key", &[("server.lisen", r#""x""#)]),
        // The second stage, against the policy's roles.
        demo(
            "vms.role.map.Staff",
            "\"staf\" is not a role of the policy file",
            &[("vms.role.map.Staff", r#""staf""#)],
        ),
        demo(
            "vms.role.static_file",
            "the role \"contracter\" is neither a key of vms.role.map nor a role",
            &[
                ("vms.role.source", r#""static""#),
                ("vms.role.static_file", r#""{dir}/roles-unknown.toml""#),
            ],
        ),
        demo(
            "admin.roles[1]",
            "\"admins\" is not a role of the policy file",
            &[("admin.roles", r#"["msp", "admins"]"#)],
        ),
        // The whole file.
        demo("version", "unsupported version 2", &[("version", "2")]),
        demo(
            "upstream.strip_response_headers",
            "lists \"x-vms-role\", which vms.role reads",
            &[("upstream.strip_response_headers", r#"["X-VMS-Role"]"#)],
        ),
        demo(
            "metrics.listen",
            "must differ from server.listen",
            &[("metrics.listen", r#""127.0.0.1:0""#)],
        ),
        // Shared helpers: files, durations, addresses, secrets.
        demo(
            "policy.file",
            "not a regular file",
            &[("policy.file", r#""{dir}/adir""#)],
        ),
        demo(
            "policy.file",
            "file not found",
            &[("policy.file", r#""no-such-policy.toml""#)],
        ),
        demo(
            "server.idle_timeout",
            "not a duration: \"soon\"",
            &[("server.idle_timeout", r#""soon""#)],
        ),
        demo(
            "server.listen",
            "not an address with port: \"localhost\"",
            &[("server.listen", r#""localhost""#)],
        ),
        demo(
            "redis.password",
            "give exactly one of `file`, `env` or `value`",
            &[("redis.password", r#"{ file = "pw", env = "PW" }"#)],
        ),
        prod(
            "redis.password",
            "inline `value` secrets are refused",
            &[("redis.password", r#"{ value = "pw" }"#)],
        ),
        demo(
            "redis.password",
            "cannot read secret file",
            &[("redis.password", r#"{ file = "{dir}/no-such-file" }"#)],
        ),
        demo(
            "redis.password",
            "environment variable MFA_GATEWAY_TEST_NEVER_SET is not set or empty",
            &[(
                "redis.password",
                r#"{ env = "MFA_GATEWAY_TEST_NEVER_SET" }"#,
            )],
        ),
        // [server]
        demo(
            "server.prefix",
            "must start and end with '/'",
            &[("server.prefix", r#""/x""#)],
        ),
        demo(
            "server.trusted_proxies[1]",
            "not an IP address or CIDR: \"proxy\"",
            &[("server.trusted_proxies", r#"["10.0.0.0/8", "proxy"]"#)],
        ),
        demo(
            "server.max_header_bytes",
            "must be between 8192 and 1048576",
            &[("server.max_header_bytes", "100")],
        ),
        demo(
            "server.ready_requires[1]",
            "\"upstream\", \"store\" or \"policy\", not \"disk\"",
            &[("server.ready_requires", r#"["upstream", "disk"]"#)],
        ),
        // [tls]
        prod(
            "tls.key",
            "required (PEM file path)",
            &[("tls.key", REMOVE)],
        ),
        prod(
            "tls.cert",
            "required (PEM file path)",
            &[("tls.cert", REMOVE)],
        ),
        // [upstream]
        demo("upstream.url", "required", &[("upstream.url", REMOVE)]),
        demo(
            "upstream.url",
            "not a URL: \"http://exa mple\"",
            &[("upstream.url", r#""http://exa mple""#)],
        ),
        demo(
            "upstream.url",
            "scheme must be http or https",
            &[("upstream.url", r#""ftp://127.0.0.1:9""#)],
        ),
        // `http::Uri` always has an authority with a scheme; its host may be empty.
        demo(
            "upstream.url",
            "missing host",
            &[("upstream.url", r#""http://:8080""#)],
        ),
        demo(
            "upstream.url",
            "must not have a path or query",
            &[("upstream.url", r#""http://127.0.0.1:9/app""#)],
        ),
        demo(
            "upstream.host_header",
            "\"preserve\", \"upstream\" or a host name, not \"\"",
            &[("upstream.host_header", r#""""#)],
        ),
        demo(
            "upstream.ca",
            "only meaningful with an https:// upstream",
            &[("upstream.ca", r#""{dir}/ca.pem""#)],
        ),
        demo(
            "upstream.readiness_path",
            "must start with '/'",
            &[("upstream.readiness_path", r#""health""#)],
        ),
        demo(
            "upstream.strip_response_headers[0]",
            "\"Set-Cookie\" cannot be removed",
            &[("upstream.strip_response_headers", r#"["Set-Cookie"]"#)],
        ),
        demo(
            "upstream.strip_response_headers[0]",
            "not a header name: \"a b\"",
            &[("upstream.strip_response_headers", r#"["a b"]"#)],
        ),
        demo(
            "upstream.strip_response_headers",
            "at most 64 names, not 65",
            &[("upstream.strip_response_headers", "{65 names}")],
        ),
        // [log]
        demo(
            "log.format",
            "\"text\" or \"json\", not \"xml\"",
            &[("log.format", r#""xml""#)],
        ),
        demo(
            "log.level",
            "not a log filter",
            &[("log.level", r#""info,[""#)],
        ),
        // [redis]
        demo(
            "redis.mode",
            "\"standalone\", \"sentinel\" or \"cluster\", not \"ring\"",
            &[("redis.mode", r#""ring""#)],
        ),
        demo(
            "redis.url",
            "not a redis:// or rediss:// URL",
            &[("redis.url", r#""http://127.0.0.1:6379""#)],
        ),
        demo(
            "redis.nodes",
            "standalone mode takes one URL",
            &[("redis.nodes", r#"["redis://127.0.0.1:6380"]"#)],
        ),
        demo(
            "redis.sentinel_master",
            "required in sentinel mode",
            &[("redis.mode", r#""sentinel""#)],
        ),
        demo(
            "redis.nodes",
            "in sentinel mode every sentinel URL is rediss://",
            &[
                ("redis.mode", r#""sentinel""#),
                ("redis.sentinel_master", r#""m""#),
                ("redis.nodes", r#"["rediss://127.0.0.1:26379"]"#),
            ],
        ),
        demo(
            "redis.sentinel_password",
            "only meaningful in sentinel mode",
            &[("redis.sentinel_password", r#"{ value = "pw" }"#)],
        ),
        demo(
            "redis.key_prefix",
            "must not contain '{', '}' or spaces",
            &[("redis.key_prefix", r#""mfa{1}""#)],
        ),
        demo(
            "redis.ca",
            "only meaningful with rediss:// URLs",
            &[("redis.ca", r#""{dir}/ca.pem""#)],
        ),
        prod(
            "redis.memory_fallback",
            "only allowed in demo mode",
            &[("redis.memory_fallback", "true")],
        ),
        // [mfa]
        demo(
            "mfa.issuer",
            "must be 1 to 64 characters",
            &[("mfa.issuer", r#""""#)],
        ),
        demo(
            "mfa.default_language",
            "\"en\" or \"nl\", not \"de\"",
            &[("mfa.default_language", r#""de""#)],
        ),
        demo(
            "mfa.window",
            "at most 3 steps either side",
            &[("mfa.window", "4")],
        ),
        demo(
            "mfa.max_failures",
            "between 1 and 100",
            &[("mfa.max_failures", "0")],
        ),
        demo(
            "mfa.keys[0].id",
            "required",
            &[("mfa.keys", r#"[{ value = "x" }]"#)],
        ),
        prod(
            "mfa.keys[0]",
            "inline `value` keys are refused",
            &[("mfa.keys", r#"[{ id = "k1", value = "x" }]"#)],
        ),
        demo(
            "mfa.keys[1].id",
            "duplicate key id \"k1\"",
            &[(
                "mfa.keys",
                r#"[{ id = "k1", value = "x" }, { id = "k1", value = "y" }]"#,
            )],
        ),
        prod(
            "mfa.keys",
            "at least one encryption key is required",
            &[("mfa.keys", REMOVE)],
        ),
        demo(
            "mfa.active_key",
            "no key with id \"k2\" in mfa.keys",
            &[("mfa.active_key", r#""k2""#)],
        ),
        demo(
            "mfa.challenge_ttl",
            "between 30s and 1h",
            &[("mfa.challenge_ttl", r#""10s""#)],
        ),
        demo(
            "mfa.enrollment_ttl",
            "between mfa.challenge_ttl and 2h",
            &[("mfa.enrollment_ttl", r#""3h""#)],
        ),
        demo(
            "mfa.pending_enrollment_ttl",
            "between mfa.enrollment_ttl and 30d",
            &[("mfa.pending_enrollment_ttl", r#""60d""#)],
        ),
        demo(
            "mfa.offer_quiet_period",
            "at most 366d",
            &[("mfa.offer_quiet_period", r#""400d""#)],
        ),
        demo(
            "mfa.helpdesk_name",
            "1 to 80 characters, no control characters",
            &[("mfa.helpdesk_name", r#""  ""#)],
        ),
        demo(
            "mfa.logo",
            "must be .svg, .png, .jpg or .webp",
            &[("mfa.logo", r#""{dir}/logo.gif""#)],
        ),
        demo(
            "mfa.logo",
            "larger than 256 KiB",
            &[("mfa.logo", r#""{dir}/big.png""#)],
        ),
        // A regular file that cannot be read (a link to /proc/self/mem, which fails at
        // offset 0 even for root).
        demo(
            "mfa.logo",
            "cannot read",
            &[("mfa.logo", r#""{dir}/unreadable.png""#)],
        ),
        // [vms]
        demo(
            "vms.session_cookies",
            "name at least one cookie",
            &[("vms.session_cookies", "[]")],
        ),
        demo(
            "vms.session_cookies[0]",
            "not a cookie name: \"VMS SESSION\"",
            &[("vms.session_cookies", r#"["VMS SESSION"]"#)],
        ),
        demo(
            "vms.login",
            "describe at least one login request",
            &[("vms.login", REMOVE)],
        ),
        demo(
            "vms.login[0].username_pointer",
            "a JSON pointer starts with '/': \"user\"",
            &[
                ("vms.login.0.username_field", REMOVE),
                ("vms.login.0.username_pointer", r#""user""#),
            ],
        ),
        demo(
            "vms.login[0]",
            "give exactly one of username_field (form) or username_pointer (JSON)",
            &[("vms.login.0.username_pointer", r#""/user""#)],
        ),
        demo(
            "vms.login[0].success_status",
            "not an HTTP status: 700",
            &[("vms.login.0.success_status", "[200, 700]")],
        ),
        demo(
            "vms.login[0].success_cookie",
            "\"OTHER\" is not one of vms.session_cookies",
            &[("vms.login.0.success_cookie", r#""OTHER""#)],
        ),
        demo(
            "vms.login[0].posted_by",
            "\"form\" or \"script\", not \"fetch\"",
            &[("vms.login.0.posted_by", r#""fetch""#)],
        ),
        demo(
            "vms.login[0].landing",
            "a path on the VMS such as \"/home\", not \"//evil.example\"",
            &[
                ("vms.login.0.posted_by", r#""script""#),
                ("vms.login.0.landing", r#""//evil.example""#),
            ],
        ),
        demo(
            "vms.login[0].landing",
            "required with posted_by = \"script\"",
            &[("vms.login.0.posted_by", r#""script""#)],
        ),
        demo(
            "vms.login[0].landing",
            "only with posted_by = \"script\"",
            &[("vms.login.0.landing", r#""/home""#)],
        ),
        demo(
            "vms.typed_username",
            "\"must_match\" or \"ignore\", not \"strict\"",
            &[("vms.typed_username", r#""strict""#)],
        ),
        demo(
            "vms.role.unmapped",
            "\"none\", \"available\" or \"enforced\"",
            &[("vms.role.unmapped", r#""sometimes""#)],
        ),
        demo(
            "vms.url_session_params[0]",
            "not a parameter name: \"a b\"",
            &[("vms.url_session_params", r#"["a b"]"#)],
        ),
        demo(
            "vms.session_before_login",
            "\"none\", \"rotates\" or \"same_id\", not \"sometimes\"",
            &[("vms.session_before_login", r#""sometimes""#)],
        ),
        demo(
            "vms.pre_login_ttl",
            "between 1 minute and 24 hours",
            &[
                ("vms.session_before_login", r#""rotates""#),
                ("vms.role.user_header", r#""X-VMS-User""#),
                ("vms.pre_login_ttl", r#""10s""#),
            ],
        ),
        demo(
            "vms.session_before_login",
            "\"same_id\" needs vms.end_session",
            &[
                ("vms.session_before_login", r#""same_id""#),
                ("vms.role.user_header", r#""X-VMS-User""#),
            ],
        ),
        demo(
            "vms.session_before_login",
            "a session before login needs the VMS to say on any answer whether someone is signed in",
            &[("vms.session_before_login", r#""rotates""#)],
        ),
        // [vms.role]: who the VMS says the user is.
        demo(
            "vms.role.user_header",
            "only with source = \"header\"",
            &[
                ("vms.role.source", r#""json_body""#),
                ("vms.role.pointer", r#""/role""#),
                ("vms.role.user_header", r#""X-VMS-User""#),
            ],
        ),
        demo(
            "vms.role.user_pointer",
            "only with source = \"json_body\"",
            &[("vms.role.user_pointer", r#""/user""#)],
        ),
        demo(
            "vms.role.user_header",
            "not a header name: \"a b\"",
            &[("vms.role.user_header", r#""a b""#)],
        ),
        demo(
            "vms.role.user_pointer",
            "a JSON pointer starts with '/': \"user\"",
            &[
                ("vms.role.source", r#""json_body""#),
                ("vms.role.pointer", r#""/role""#),
                ("vms.role.user_pointer", r#""user""#),
            ],
        ),
        // [vms.role]: where the role comes from.
        demo(
            "vms.role.header",
            "not a header name: \"a b\"",
            &[("vms.role.header", r#""a b""#)],
        ),
        demo(
            "vms.role.pointer",
            "required for source = \"json_body\"",
            &[("vms.role.source", r#""json_body""#)],
        ),
        demo(
            "vms.role.userinfo_role_pointer",
            "required: a JSON pointer such as \"/role\"",
            &[
                ("vms.role.source", r#""userinfo""#),
                ("vms.role.userinfo_path", r#""/me""#),
            ],
        ),
        demo(
            "vms.role.userinfo_user_pointer",
            "a JSON pointer starts with '/'",
            &[
                ("vms.role.source", r#""userinfo""#),
                ("vms.role.userinfo_path", r#""/me""#),
                ("vms.role.userinfo_role_pointer", r#""/role""#),
                ("vms.role.userinfo_user_pointer", r#""user""#),
            ],
        ),
        demo(
            "vms.role.static_file",
            "required for source = \"static\"",
            &[("vms.role.source", r#""static""#)],
        ),
        demo(
            "vms.role.static_file",
            "roles-bad.toml: ",
            &[
                ("vms.role.source", r#""static""#),
                ("vms.role.static_file", r#""{dir}/roles-bad.toml""#),
            ],
        ),
        demo(
            "vms.role.source",
            "\"header\", \"json_body\", \"userinfo\" or \"static\", not \"ldap\"",
            &[("vms.role.source", r#""ldap""#)],
        ),
        // Routes (login, logout, end_session, allow_body_on, userinfo_path).
        demo(
            "vms.login[0].method",
            "not an HTTP method: \"GE T\"",
            &[("vms.login.0.method", r#""GE T""#)],
        ),
        demo(
            "vms.login[0].path",
            "a path starting with '/' without query: \"/login?x=1\"",
            &[("vms.login.0.path", r#""/login?x=1""#)],
        ),
        demo(
            "vms.login[0].path",
            "required",
            &[("vms.login.0.path", REMOVE)],
        ),
        demo(
            "vms.allow_body_on[0].method",
            "required",
            &[("vms.allow_body_on", r#"[{ path = "/x" }]"#)],
        ),
        demo(
            "vms.allow_body_on[0].method",
            "POST requests may carry a body anyway",
            &[("vms.allow_body_on", r#"[{ method = "POST", path = "/x" }]"#)],
        ),
        // [mail], mfa.first_enrollment and the address source (vms.role.email_*).
        demo(
            "mfa.first_enrollment",
            "\"open\" or \"email_code\", not \"sms\"",
            &[("mfa.first_enrollment", r#""sms""#)],
        ),
        demo(
            "mfa.first_enrollment",
            "\"email_code\" needs a [mail] section",
            &[("mfa.first_enrollment", r#""email_code""#)],
        ),
        demo(
            "vms.role.email_header",
            "give at most one of email_header",
            &[
                ("vms.role.email_header", r#""X-VMS-Email""#),
                ("vms.role.email_map", r#"{ alice = "a@example.test" }"#),
            ],
        ),
        demo(
            "vms.role.email_header",
            "not a header name: \"a b\"",
            &[("vms.role.email_header", r#""a b""#)],
        ),
        demo(
            "vms.role.email_pointer",
            "only with source = \"json_body\"",
            &[("vms.role.email_pointer", r#""/email""#)],
        ),
        demo(
            "vms.role.email_pointer",
            "a JSON pointer starts with '/': \"email\"",
            &[
                ("vms.role.source", r#""json_body""#),
                ("vms.role.pointer", r#""/role""#),
                ("vms.role.email_pointer", r#""email""#),
            ],
        ),
        demo(
            "vms.role.userinfo_email_pointer",
            "only with source = \"userinfo\"",
            &[("vms.role.userinfo_email_pointer", r#""/email""#)],
        ),
        demo(
            "vms.role.email_map.alice",
            "not an e-mail address: \"alice\"",
            &[("vms.role.email_map", r#"{ alice = "alice" }"#)],
        ),
        demo(
            "mail.host",
            "required: the mail server's host name",
            &[("mail.from", r#""gateway@example.test""#)],
        ),
        demo(
            "mail.security",
            "\"starttls\", \"tls\" or \"none-for-tests-on-loopback-only\", not \"ssl\"",
            &[
                ("mail.host", r#""127.0.0.1""#),
                ("mail.security", r#""none-for-tests-on-loopback-only""#),
                ("mail.from", r#""gateway@example.test""#),
                ("mail.security", r#""ssl""#),
            ],
        ),
        demo(
            "mail.security",
            "plain SMTP only to a loopback address",
            &[
                ("mail.host", r#""127.0.0.1""#),
                ("mail.security", r#""none-for-tests-on-loopback-only""#),
                ("mail.from", r#""gateway@example.test""#),
                ("mail.host", r#""smtp.example.test""#),
            ],
        ),
        demo(
            "mail.port",
            "must be 1 to 65535",
            &[
                ("mail.host", r#""127.0.0.1""#),
                ("mail.security", r#""none-for-tests-on-loopback-only""#),
                ("mail.from", r#""gateway@example.test""#),
                ("mail.port", "0"),
            ],
        ),
        demo(
            "mail.password",
            "an inline `value` is refused",
            &[
                ("mail.host", r#""smtp.example.test""#),
                ("mail.from", r#""gateway@example.test""#),
                ("mail.username", r#""gw""#),
                ("mail.password", r#"{ value = "x" }"#),
            ],
        ),
        demo(
            "mail.username",
            "give both mail.username and mail.password, or neither",
            &[
                ("mail.host", r#""smtp.example.test""#),
                ("mail.from", r#""gateway@example.test""#),
                ("mail.username", r#""gw""#),
            ],
        ),
        demo(
            "mail.username",
            "no credentials over plain SMTP",
            &[
                ("mail.host", r#""127.0.0.1""#),
                ("mail.security", r#""none-for-tests-on-loopback-only""#),
                ("mail.from", r#""gateway@example.test""#),
                ("mail.username", r#""gw""#),
                ("mail.password", r#"{ env = "PATH" }"#),
            ],
        ),
        demo(
            "mail.from",
            "required: the sender",
            &[
                ("mail.host", r#""127.0.0.1""#),
                ("mail.security", r#""none-for-tests-on-loopback-only""#),
                ("mail.from", r#""gateway@example.test""#),
                ("mail.from", r#""not an address""#),
            ],
        ),
        demo(
            "mail.reply_to",
            "not an e-mail address: \"x\"",
            &[
                ("mail.host", r#""127.0.0.1""#),
                ("mail.security", r#""none-for-tests-on-loopback-only""#),
                ("mail.from", r#""gateway@example.test""#),
                ("mail.reply_to", r#""x""#),
            ],
        ),
        demo(
            "mail.help_line",
            "1 to 200 characters",
            &[
                ("mail.host", r#""127.0.0.1""#),
                ("mail.security", r#""none-for-tests-on-loopback-only""#),
                ("mail.from", r#""gateway@example.test""#),
                ("mail.help_line", r#""""#),
            ],
        ),
        demo(
            "mail.language",
            "\"en\" or \"nl\", not \"de\"",
            &[
                ("mail.host", r#""127.0.0.1""#),
                ("mail.security", r#""none-for-tests-on-loopback-only""#),
                ("mail.from", r#""gateway@example.test""#),
                ("mail.language", r#""de""#),
            ],
        ),
        demo(
            "mail.max_attempts",
            "between 1 and 100",
            &[
                ("mail.host", r#""127.0.0.1""#),
                ("mail.security", r#""none-for-tests-on-loopback-only""#),
                ("mail.from", r#""gateway@example.test""#),
                ("mail.max_attempts", "0"),
            ],
        ),
        demo(
            "mail.retry_after",
            "from 1s to 1h",
            &[
                ("mail.host", r#""127.0.0.1""#),
                ("mail.security", r#""none-for-tests-on-loopback-only""#),
                ("mail.from", r#""gateway@example.test""#),
                ("mail.retry_after", r#""2h""#),
            ],
        ),
        // [admin]
        demo(
            "admin.tokens[0].name",
            "1 to 64 characters of [A-Za-z0-9._-]",
            &[("admin.tokens", "[{ name = \"a b\", sha256 = {hash} }]")],
        ),
        demo(
            "admin.tokens[0].role",
            "role \"customer\" may reset nobody",
            &[(
                "admin.tokens",
                "[{ name = \"desk\", sha256 = {hash}, role = \"customer\" }]",
            )],
        ),
        demo(
            "admin.tokens[0].sha256",
            "64 hex characters",
            &[("admin.tokens", r#"[{ name = "desk", sha256 = "abc" }]"#)],
        ),
        demo(
            "admin.enrollment_code_hours",
            "1 to 720 hours",
            &[("admin.enrollment_code_hours", "0")],
        ),
        // [webauthn]
        demo(
            "webauthn.origin",
            "required: the gateway's public https origin",
            &[("webauthn.rp_name", r#""x""#)],
        ),
        demo(
            "webauthn.origin",
            "not an https origin (https://host[:port], no path)",
            &[("webauthn.origin", r#""http://mfa.example.com""#)],
        ),
        demo(
            "webauthn.origin",
            "must name a host, not an IP address",
            &[("webauthn.origin", r#""https://127.0.0.1:8443""#)],
        ),
        demo(
            "webauthn.rp_id",
            "is neither the origin's host \"mfa.example.com\" nor a parent domain of it",
            &[
                ("webauthn.origin", r#""https://mfa.example.com""#),
                ("webauthn.rp_id", r#""ample.com""#),
            ],
        ),
        demo(
            "webauthn.rp_name",
            "must be 1 to 64 characters",
            &[
                ("webauthn.origin", r#""https://mfa.example.com""#),
                ("webauthn.rp_name", "\"\""),
            ],
        ),
    ]
}

/// Files the cases point at, in a directory of their own.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let write = |name: &str, content: &[u8]| {
            let path = d.join(name);
            std::fs::write(&path, content).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
        };
        write(
            "k1.key",
            crate::auth::crypto::generate_key_material().as_bytes(),
        );
        write("cert.pem", b"not checked here");
        write("key.pem", b"not checked here");
        write("ca.pem", b"not checked here");
        write("logo.gif", b"GIF89a");
        write("big.png", &vec![0u8; 256 * 1024 + 1]);
        write("roles-unknown.toml", b"[users]\nalice = \"contracter\"\n");
        write("roles-bad.toml", b"users = ");
        std::fs::create_dir(d.join("adir")).unwrap();
        #[cfg(target_os = "linux")]
        std::os::unix::fs::symlink("/proc/self/mem", d.join("unreadable.png")).unwrap();
        Fixture { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `value` with the fixture's placeholders filled in.
    fn fill(&self, value: &str) -> String {
        let names: Vec<String> = (0..65).map(|i| format!("\"x-h{i}\"")).collect();
        value
            .replace("{dir}", &self.path().display().to_string())
            .replace("{hash}", HASH)
            .replace("{65 names}", &format!("[{}]", names.join(", ")))
    }

    /// The test configuration in `mode` with `edits` applied, as TOML text.
    fn text(&self, mode: Mode, edits: &[(&str, &str)]) -> String {
        let key = crate::auth::crypto::generate_key_material();
        let base = test_config::text(&key, &test_config::Extra::default());
        let mut doc: toml::Table = base.parse().unwrap();
        let production = if mode == Mode::Production {
            PRODUCTION
        } else {
            &[]
        };
        let mut raw = String::new();
        for (path, value) in production.iter().chain(edits) {
            if *path == RAW {
                raw.push_str(value);
                raw.push('\n');
            } else {
                edit(&mut doc, path, value, |v| self.fill(v));
            }
        }
        toml::to_string(&doc).unwrap() + &raw
    }
}

/// Sets (or with [`REMOVE`] takes out) the value at a dotted path, creating tables on the way.
fn edit(doc: &mut toml::Table, path: &str, value: &str, fill: impl Fn(&str) -> String) {
    let parts: Vec<&str> = path.split('.').collect();
    let (last, parents) = parts.split_last().unwrap();
    let mut cur = doc;
    let mut parts = parents.iter();
    while let Some(p) = parts.next() {
        let next = cur
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let next = match next {
            // An array of tables: the next part is the element's index.
            toml::Value::Array(a) => {
                let i: usize = parts.next().and_then(|i| i.parse().ok()).unwrap();
                &mut a[i]
            }
            v => v,
        };
        cur = match next {
            toml::Value::Table(t) => t,
            other => panic!("{p} in {path} is not a table: {other:?}"),
        };
    }
    if value == REMOVE {
        assert!(cur.remove(*last).is_some(), "{path}: nothing to remove");
    } else {
        let v: toml::Table = format!("v = {}", fill(value)).parse().unwrap();
        cur.insert(last.to_string(), v["v"].clone());
    }
}

/// The configuration path the cases are read as: relative paths resolve in `config/`.
fn config_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/config-test.toml")
}

/// Validates `text` like start-up does: the file, then its roles against the policy.
fn validate(text: &str, mode: Mode, roles: &[String]) -> Result<Config, ConfigErrors> {
    let cfg = Config::from_toml(text, &config_path(), mode)?;
    cfg.check_policy_roles(roles)?;
    Ok(cfg)
}

/// Runs every case: for each, the source location of the expected error, or why it failed.
fn run_cases() -> Vec<Result<&'static std::panic::Location<'static>, String>> {
    let fixture = Fixture::new();
    let roles = policy_roles();
    cases()
        .iter()
        .map(|case| {
            let text = fixture.text(case.mode, case.edits);
            let label = format!("{:?} {:?}", case.mode, case.edits);
            match validate(&text, case.mode, &roles) {
                Ok(_) => Err(format!(
                    "{label}: validated, expected {}: ...{}...",
                    case.key, case.msg
                )),
                Err(e) => e
                    .errors
                    .iter()
                    .zip(&e.sites)
                    .find(|((k, m), _)| k == case.key && m.contains(case.msg))
                    .map(|(_, site)| *site)
                    .ok_or_else(|| {
                        format!(
                            "{label}: expected {}: ...{}...; got:\n{e}",
                            case.key, case.msg
                        )
                    }),
            }
        })
        .collect()
}

#[test]
fn every_rule_refuses_its_case_with_its_key_and_message() {
    let failures: Vec<String> = run_cases().into_iter().filter_map(Result::err).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The line of every `errors.push(` in `validate.rs` (the line of `push`, which is where
/// `#[track_caller]` places the call).
fn push_sites_in_source() -> BTreeSet<u32> {
    let source = include_str!("validate.rs");
    let mut sites = BTreeSet::new();
    let mut rest = source;
    let mut offset = 0;
    while let Some(i) = rest.find("errors") {
        let after = &rest[i + "errors".len()..];
        let trimmed = after.trim_start();
        if trimmed.starts_with(".push(") {
            let push_at = offset + i + "errors".len() + (after.len() - trimmed.len()) + 1;
            let line = source[..push_at].matches('\n').count() + 1;
            sites.insert(u32::try_from(line).unwrap());
        }
        offset += i + "errors".len();
        rest = &source[offset..];
    }
    sites
}

#[cfg(target_os = "linux")]
#[test]
fn every_rule_in_the_source_has_a_case() {
    let in_source = push_sites_in_source();
    assert!(
        in_source.len() > 80,
        "the scan of validate.rs found only {} rules",
        in_source.len()
    );
    let reached: BTreeSet<u32> = run_cases()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|site| site.file().ends_with("validate.rs"))
        .map(|site| site.line())
        .collect();
    let source: Vec<&str> = include_str!("validate.rs").lines().collect();
    let missing: Vec<String> = in_source
        .difference(&reached)
        .map(|l| {
            let at = usize::try_from(*l).unwrap();
            format!(
                "validate.rs:{l}: {}",
                source[at - 1..(at + 2).min(source.len())]
                    .iter()
                    .map(|s| s.trim())
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        })
        .collect();
    assert!(
        missing.is_empty(),
        "rules without a case in `cases()`:\n{}",
        missing.join("\n")
    );
    let unknown: Vec<&u32> = reached.difference(&in_source).collect();
    assert!(
        unknown.is_empty(),
        "cases reached pushes the scan did not find (lines {unknown:?}): fix the scan"
    );
}

#[test]
fn the_test_configuration_is_valid_in_both_modes() {
    let fixture = Fixture::new();
    let roles = policy_roles();
    for mode in [Mode::Demo, Mode::Production] {
        let cfg = validate(&fixture.text(mode, &[]), mode, &roles)
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert!(cfg.warnings.is_empty(), "{mode:?}: {:?}", cfg.warnings);
    }
}

#[test]
fn the_demo_configuration_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let cfg = Config::from_toml(&text, &path, Mode::Demo).unwrap_or_else(|e| panic!("{e}"));
    let policy = Policy::load(&cfg.policy.file).unwrap();
    cfg.check_policy_roles(policy.roles())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
}

/// The example, in production mode, with its files under `/etc/mfa-gateway/` made in a
/// directory of the test's own.
#[test]
fn the_example_configuration_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/gateway.example.toml");
    let etc = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("/etc/mfa-gateway/", &format!("{}/", etc.path().display()));
    for (name, content) in [
        ("tls/server.pem", "not checked here".to_string()),
        ("tls/server.key", "not checked here".to_string()),
        (
            "keys/2026-01.key",
            crate::auth::crypto::generate_key_material(),
        ),
    ] {
        let file = etc.path().join(name);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, content).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
    let cfg = Config::from_toml(&text, &path, Mode::Production).unwrap_or_else(|e| panic!("{e}"));
    let policy = Policy::load(&cfg.policy.file).unwrap();
    cfg.check_policy_roles(policy.roles())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    assert_eq!(cfg.webauthn, None, "passkeys are off unless configured");
    // The commented [webauthn] section, taken in as written.
    let uncommented: String = text
        .lines()
        .map(|l| {
            let keys = ["# [webauthn]", "# origin = ", "# rp_id = ", "# rp_name = "];
            match keys.iter().any(|k| l.starts_with(k)) {
                true => &l[2..],
                false => l,
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let cfg =
        Config::from_toml(&uncommented, &path, Mode::Production).unwrap_or_else(|e| panic!("{e}"));
    let w = cfg.webauthn.unwrap();
    assert_eq!(
        (w.origin.as_str(), w.host.as_str(), w.port, w.rp_id.as_str()),
        (
            "https://vms.example.com",
            "vms.example.com",
            443,
            "vms.example.com"
        )
    );
    assert_eq!(w.rp_name, "VMS");
}
