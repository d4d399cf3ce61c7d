//! Validation: the lenient file structs ([`super::file`]) into the typed model
//! ([`super::model`]). Every rule is here, each one naming the key it concerns, and every
//! default is applied here and nowhere else. All problems are collected before failing, so an
//! operator fixes a file in one go. The rules are tested one by one in `super::rules`, which
//! also checks that no rule here is left without a test case.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{HeaderName, Method, Uri};
use ipnet::IpNet;
use zeroize::Zeroizing;

use super::file::{self, FileConfig, SecretFile};
use super::model::*;
use super::{
    ConfigErrors, MAX_CONFIG_BYTES, MAX_SECRET_BYTES, Mode, read_text_limited, readable_by_others,
};
use crate::policy::MfaState;

/// Headers the gateway or the browser cannot do without; they are never stripped.
const NEVER_STRIPPED: [&str; 6] = [
    "set-cookie",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "location",
];

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = read_text_limited(path, MAX_CONFIG_BYTES).map_err(|e| {
            ConfigErrors::single("", format!("cannot read {}: {e}", path.display()))
        })?;
        Self::from_toml(&text, path, Mode::Production)
    }

    /// Parses and validates configuration text; `path` names the file for relative paths.
    pub fn from_toml(text: &str, path: &Path, mode: Mode) -> Result<Config, ConfigErrors> {
        let file: FileConfig = file::parse(text).map_err(|problems| {
            let mut errors = ConfigErrors::default();
            for (key, msg) in problems {
                if key.is_empty() {
                    errors.push("", format!("{}: {msg}", path.display()));
                } else {
                    errors.push(key, msg);
                }
            }
            errors
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let case_sensitive = file
            .vms
            .as_ref()
            .and_then(|v| v.username_case_sensitive)
            .unwrap_or(false);
        let allow_inline = mode == Mode::Demo
            || file
                .mfa
                .as_ref()
                .and_then(|m| m.allow_inline_secrets)
                .unwrap_or(false);
        Validator {
            base,
            errors: ConfigErrors::default(),
            warnings: Vec::new(),
            mode,
            case_sensitive,
            allow_inline,
        }
        .run(file, path)
    }

    /// The second half of validation, once the policy file is read: every role the `[admin]`
    /// section names (`admin.roles`, `admin.can_reset`, `admin.tokens[].role`) and every
    /// target of `vms.role.map` must be one of the policy's roles, and every role of the
    /// static role file must map to one (a map entry or a policy role, case-insensitively),
    /// so that a typo cannot silently give or take away a right, or force users into
    /// enrollment under `vms.role.unmapped`.
    pub fn check_policy_roles(&self, policy_roles: &[String]) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::default();
        let listed = policy_roles.join(", ");
        for (vms_role, role) in &self.vms.role_map {
            if !policy_roles.iter().any(|r| r == role) {
                let hint = policy_roles
                    .iter()
                    .find(|r| r.eq_ignore_ascii_case(role))
                    .map(|r| format!("; did you mean {r:?}?"))
                    .unwrap_or_default();
                errors.push(
                    format!("vms.role.map.{vms_role}"),
                    format!("{role:?} is not a role of the policy file ({listed}){hint}"),
                );
            }
        }
        if let RoleSource::Static { path, users } = &self.vms.role_source {
            let mut unmapped: Vec<&str> = users
                .values()
                .map(String::as_str)
                .filter(|v| {
                    !self.vms.role_map.keys().any(|k| k.eq_ignore_ascii_case(v))
                        && !policy_roles.iter().any(|r| r.eq_ignore_ascii_case(v))
                })
                .collect();
            unmapped.sort_unstable();
            unmapped.dedup();
            for v in unmapped {
                errors.push(
                    "vms.role.static_file",
                    format!(
                        "{}: the role {v:?} is neither a key of vms.role.map nor a role of the policy file ({listed})",
                        path.display()
                    ),
                );
            }
        }
        for (key, role) in &self.admin.role_refs {
            if !policy_roles.iter().any(|r| r == role) {
                errors.push(
                    key.clone(),
                    format!("{role:?} is not a role of the policy file ({listed})"),
                );
            }
        }
        if errors.errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn toml_error(e: &toml::de::Error) -> String {
    // toml's Display already includes line/column and the offending key.
    e.to_string().trim().replace('\n', " ")
}

struct Validator {
    base: PathBuf,
    errors: ConfigErrors,
    warnings: Vec<String>,
    mode: Mode,
    case_sensitive: bool,
    /// Inline `value` secrets are accepted (demo, tests, `mfa.allow_inline_secrets`).
    allow_inline: bool,
}

impl Validator {
    fn run(mut self, f: FileConfig, path: &Path) -> Result<Config, ConfigErrors> {
        if let Some(v) = f.version
            && v != 1
        {
            self.errors.push(
                "version",
                format!("unsupported version {v} (this gateway reads version 1)"),
            );
        }
        let server = self.server(f.server.unwrap_or_default());
        let tls = self.tls(f.tls.unwrap_or_default());
        let upstream = self.upstream(f.upstream.unwrap_or_default());
        let metrics = self.metrics(f.metrics.unwrap_or_default());
        let log = self.log(f.log.unwrap_or_default());
        let redis = self.redis(f.redis.unwrap_or_default());
        let mfa = self.mfa(f.mfa.unwrap_or_default());
        let vms = self.vms(f.vms.unwrap_or_default());
        let policy = self.policy(f.policy.unwrap_or_default());
        let admin = self.admin(f.admin.unwrap_or_default());
        let webauthn = f.webauthn.and_then(|w| {
            let name = mfa.as_ref().map_or("VMS", |m| m.issuer.as_str());
            self.webauthn(w, name)
        });
        let mail = f.mail.and_then(|m| self.mail(m));
        if let (Some(m), Some(v)) = (&mfa, &vms)
            && m.first_enrollment == FirstEnrollment::EmailCode
            && (mail.is_none() || v.email_source.is_none())
        {
            self.errors.push(
                "mfa.first_enrollment",
                "\"email_code\" needs a [mail] section and a source of users' addresses (vms.role.email_header, email_pointer, userinfo_email_pointer or email_map)",
            );
        }
        if let (Some(u), Some(v)) = (&upstream, &vms) {
            // The gateway reads these headers of the answer that sets a session; stripping
            // them first would leave it without the user's identity.
            let read: [Option<&HeaderName>; 2] = [
                match &v.role_source {
                    RoleSource::Header(h) => Some(h),
                    _ => None,
                },
                match &v.reported_user {
                    ReportedUser::Header(h) => Some(h),
                    _ => None,
                },
            ];
            for h in read.into_iter().flatten() {
                if u.strip_response_headers.contains(h) {
                    self.errors.push(
                        "upstream.strip_response_headers",
                        format!("lists {h:?}, which vms.role reads to identify the user"),
                    );
                }
            }
        }
        if let (Some(m), Some(s)) = (&metrics, &server)
            && m.listen == Some(s.listen)
        {
            self.errors
                .push("metrics.listen", "must differ from server.listen");
        }
        match (server, tls, upstream, metrics, log, redis, mfa, vms, policy) {
            (
                Some(server),
                Some(tls),
                Some(upstream),
                Some(metrics),
                Some(log),
                Some(redis),
                Some(mfa),
                Some(vms),
                Some(policy),
            ) if self.errors.errors.is_empty() => Ok(Config {
                admin,
                webauthn,
                mail,
                warnings: self.warnings,
                source: path.to_path_buf(),
                server,
                tls,
                upstream,
                metrics,
                log,
                redis,
                mfa,
                vms,
                policy,
            }),
            _ => Err(self.errors),
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    fn existing_file(&mut self, key: &str, p: &str) -> Option<PathBuf> {
        let path = self.path(p);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Some(path),
            Ok(_) => {
                self.errors
                    .push(key, format!("not a regular file: {}", path.display()));
                None
            }
            Err(_) => {
                self.errors
                    .push(key, format!("file not found: {}", path.display()));
                None
            }
        }
    }

    fn duration(&mut self, key: &str, v: Option<String>, default: Duration) -> Duration {
        match v {
            None => default,
            Some(s) => match parse_duration(&s) {
                Ok(d) => d,
                Err(e) => {
                    self.errors.push(key, e);
                    default
                }
            },
        }
    }

    fn addr(&mut self, key: &str, v: &str) -> Option<SocketAddr> {
        match v.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.errors.push(
                    key,
                    format!("not an address with port: {v:?} (example: \"0.0.0.0:8443\")"),
                );
                None
            }
        }
    }

    fn secret(&mut self, key: &str, s: &SecretFile) -> Option<Zeroizing<String>> {
        let count = [s.file.is_some(), s.env.is_some(), s.value.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if count != 1 {
            self.errors
                .push(key, "give exactly one of `file`, `env` or `value`");
            return None;
        }
        if s.value.is_some() && !self.allow_inline {
            self.errors.push(
                key,
                "inline `value` secrets are refused: use `file` or `env` (or set mfa.allow_inline_secrets for a test set-up)",
            );
            return None;
        }
        if let Some(f) = &s.file {
            let path = self.path(f);
            if readable_by_others(&path) {
                self.warnings.push(format!(
                    "{key}: {} can be read by every user on this host; restrict it (chmod o-rwx)",
                    path.display()
                ));
            }
            return match read_text_limited(&path, MAX_SECRET_BYTES) {
                Ok(t) => Some(Zeroizing::new(t.trim().to_string())),
                Err(e) => {
                    self.errors.push(
                        key,
                        format!("cannot read secret file {}: {e}", path.display()),
                    );
                    None
                }
            };
        }
        if let Some(name) = &s.env {
            return match std::env::var(name) {
                Ok(t) if !t.trim().is_empty() => Some(Zeroizing::new(t.trim().to_string())),
                _ => {
                    self.errors.push(
                        key,
                        format!("environment variable {name} is not set or empty"),
                    );
                    None
                }
            };
        }
        s.value.as_ref().map(|v| Zeroizing::new(v.clone()))
    }

    fn server(&mut self, s: file::ServerFile) -> Option<Server> {
        let listen = self.addr(
            "server.listen",
            s.listen.as_deref().unwrap_or("0.0.0.0:8443"),
        );
        let redirect_listen = match s.redirect_listen.as_deref() {
            None => None,
            Some(a) => Some(self.addr("server.redirect_listen", a)?),
        };
        let prefix = s.prefix.unwrap_or_else(|| DEFAULT_PREFIX.to_string());
        if !valid_prefix(&prefix) {
            self.errors.push(
                "server.prefix",
                format!("must start and end with '/', be at least 3 characters and use only [A-Za-z0-9._~-] between: {prefix:?}"),
            );
        }
        let mut trusted = Vec::new();
        for (i, p) in s.trusted_proxies.unwrap_or_default().iter().enumerate() {
            let parsed = p
                .parse::<IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(IpNet::from));
            match parsed {
                Ok(n) => trusted.push(n),
                Err(_) => self.errors.push(
                    format!("server.trusted_proxies[{i}]"),
                    format!("not an IP address or CIDR: {p:?}"),
                ),
            }
        }
        let max_header_bytes = s.max_header_bytes.unwrap_or(64 * 1024);
        if !(8192..=1024 * 1024).contains(&max_header_bytes) {
            self.errors.push(
                "server.max_header_bytes",
                "must be between 8192 and 1048576",
            );
        }
        let ready_requires = match s.ready_requires {
            None => ReadyRequires::default(),
            Some(parts) => {
                let mut r = ReadyRequires {
                    upstream: false,
                    store: false,
                    policy: false,
                };
                for (i, part) in parts.iter().enumerate() {
                    match part.as_str() {
                        "upstream" => r.upstream = true,
                        "store" => r.store = true,
                        "policy" => r.policy = true,
                        other => self.errors.push(
                            format!("server.ready_requires[{i}]"),
                            format!("\"upstream\", \"store\" or \"policy\", not {other:?}"),
                        ),
                    }
                }
                r
            }
        };
        let server = Server {
            listen: listen?,
            redirect_listen,
            public_port: s
                .public_port
                .unwrap_or_else(|| listen.map(|l| l.port()).unwrap_or(443)),
            prefix,
            handshake_timeout: self.duration(
                "server.handshake_timeout",
                s.handshake_timeout,
                Duration::from_secs(10),
            ),
            header_read_timeout: self.duration(
                "server.header_read_timeout",
                s.header_read_timeout,
                Duration::from_secs(30),
            ),
            idle_timeout: self.duration(
                "server.idle_timeout",
                s.idle_timeout,
                Duration::from_secs(120),
            ),
            max_header_bytes,
            max_connections: s.max_connections.unwrap_or(20_000),
            shutdown_grace: self.duration(
                "server.shutdown_grace",
                s.shutdown_grace,
                Duration::from_secs(30),
            ),
            trusted_proxies: trusted,
            worker_threads: s.worker_threads,
            ready_requires,
        };
        Some(server)
    }

    fn tls(&mut self, t: file::TlsFile) -> Option<Tls> {
        let watch_interval = self.duration(
            "tls.watch_interval",
            t.watch_interval,
            Duration::from_secs(5),
        );
        match (t.cert, t.key) {
            (Some(c), Some(k)) => {
                let cert = self.existing_file("tls.cert", &c);
                let key = self.existing_file("tls.key", &k);
                Some(Tls {
                    cert: Some(cert?),
                    key: Some(key?),
                    watch_interval,
                })
            }
            (None, None) if self.mode == Mode::Demo => Some(Tls {
                cert: None,
                key: None,
                watch_interval,
            }),
            (c, _) => {
                let key = if c.is_none() { "tls.cert" } else { "tls.key" };
                self.errors.push(key, "required (PEM file path)");
                None
            }
        }
    }

    fn upstream(&mut self, u: file::UpstreamFile) -> Option<Upstream> {
        let Some(url) = u.url else {
            self.errors.push(
                "upstream.url",
                "required (for example \"http://127.0.0.1:8080\")",
            );
            return None;
        };
        let uri: Uri = match url.parse() {
            Ok(u) => u,
            Err(e) => {
                self.errors
                    .push("upstream.url", format!("not a URL: {url:?} ({e})"));
                return None;
            }
        };
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                self.errors.push(
                    "upstream.url",
                    format!("scheme must be http or https: {url:?}"),
                );
                return None;
            }
        };
        let Some(auth) = uri.authority().filter(|a| !a.host().is_empty()) else {
            self.errors
                .push("upstream.url", format!("missing host: {url:?}"));
            return None;
        };
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            self.errors.push(
                "upstream.url",
                "must not have a path or query (the gateway forwards paths unchanged)",
            );
        }
        let port = auth.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = format!("{}:{port}", auth.host());
        let host_header = match u.host_header.as_deref() {
            None | Some("preserve") => HostHeader::Preserve,
            Some("upstream") => HostHeader::Upstream,
            Some(v) if http::HeaderValue::from_str(v).is_ok() && !v.is_empty() => {
                HostHeader::Fixed(v.to_string())
            }
            Some(v) => {
                self.errors.push(
                    "upstream.host_header",
                    format!("\"preserve\", \"upstream\" or a host name, not {v:?}"),
                );
                HostHeader::Preserve
            }
        };
        let ca = match u.ca.as_deref() {
            Some(c) => Some(self.existing_file("upstream.ca", c)?),
            None => None,
        };
        if ca.is_some() && !https {
            self.errors
                .push("upstream.ca", "only meaningful with an https:// upstream");
        }
        let readiness_path = u.readiness_path.unwrap_or_else(|| "/".to_string());
        if !readiness_path.starts_with('/') {
            self.errors
                .push("upstream.readiness_path", "must start with '/'");
        }
        Some(Upstream {
            url: uri.clone(),
            https,
            authority,
            host_header,
            ca,
            connect_timeout: self.duration(
                "upstream.connect_timeout",
                u.connect_timeout,
                Duration::from_secs(5),
            ),
            response_timeout: self.duration(
                "upstream.response_timeout",
                u.response_timeout,
                Duration::from_secs(60),
            ),
            pool_idle_timeout: self.duration(
                "upstream.pool_idle_timeout",
                u.pool_idle_timeout,
                // Below the keep-alive timeouts of common Java servers (Tomcat 20 s, Jetty
                // 30 s), so the VMS rarely closes a connection the gateway is about to use.
                Duration::from_secs(15),
            ),
            pool_max_idle: u.pool_max_idle.unwrap_or(256),
            readiness_path,
            strip_response_headers: self.strip_response_headers(u.strip_response_headers),
        })
    }

    fn strip_response_headers(&mut self, names: Option<Vec<String>>) -> Box<[HeaderName]> {
        const KEY: &str = "upstream.strip_response_headers";
        let names = names.unwrap_or_else(|| {
            STRIP_RESPONSE_HEADERS
                .iter()
                .map(|n| n.to_string())
                .collect()
        });
        let mut out: Vec<HeaderName> = Vec::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            match HeaderName::from_bytes(n.as_bytes()) {
                Ok(h) if NEVER_STRIPPED.contains(&h.as_str()) => self.errors.push(
                    format!("{KEY}[{i}]"),
                    format!("{n:?} cannot be removed: the gateway or the browser needs it"),
                ),
                Ok(h) => {
                    if !out.contains(&h) {
                        out.push(h);
                    }
                }
                Err(_) => self
                    .errors
                    .push(format!("{KEY}[{i}]"), format!("not a header name: {n:?}")),
            }
        }
        if out.len() > STRIP_RESPONSE_HEADERS_MAX {
            self.errors.push(
                KEY,
                format!(
                    "at most {STRIP_RESPONSE_HEADERS_MAX} names, not {}",
                    out.len()
                ),
            );
            out.truncate(STRIP_RESPONSE_HEADERS_MAX);
        }
        out.into_boxed_slice()
    }

    /// `[webauthn]`: the origin must be `https://host[:port]` (nothing after it), the
    /// relying party id its host or a parent domain of it (what browsers accept), a name.
    fn webauthn(&mut self, w: file::WebauthnFile, issuer: &str) -> Option<Webauthn> {
        let Some(origin) = w.origin else {
            self.errors.push(
                "webauthn.origin",
                "required: the gateway's public https origin",
            );
            return None;
        };
        let parsed = origin
            .strip_prefix("https://")
            .map(|rest| rest.strip_suffix('/').unwrap_or(rest))
            .filter(|rest| !rest.is_empty() && !rest.contains(['/', '?', '#', '@']))
            .and_then(|authority| authority.parse::<http::uri::Authority>().ok());
        let Some(authority) = parsed else {
            self.errors.push(
                "webauthn.origin",
                format!("not an https origin (https://host[:port], no path): {origin:?}"),
            );
            return None;
        };
        let host = authority.host().to_ascii_lowercase();
        if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
            self.errors.push(
                "webauthn.origin",
                "must name a host, not an IP address (browsers refuse passkeys there)",
            );
            return None;
        }
        let port = authority.port_u16().unwrap_or(443);
        let rp_id = w.rp_id.unwrap_or_else(|| host.clone()).to_ascii_lowercase();
        if rp_id != host && !host.ends_with(&format!(".{rp_id}")) {
            self.errors.push(
                "webauthn.rp_id",
                format!(
                    "{rp_id:?} is neither the origin's host {host:?} nor a parent domain of it"
                ),
            );
            return None;
        }
        let rp_name = w.rp_name.unwrap_or_else(|| issuer.to_string());
        if rp_name.is_empty() || rp_name.chars().count() > 64 {
            self.errors
                .push("webauthn.rp_name", "must be 1 to 64 characters");
            return None;
        }
        let origin = match authority.port_u16() {
            Some(p) => format!("https://{host}:{p}"),
            None => format!("https://{host}"),
        };
        Some(Webauthn {
            origin,
            host,
            port,
            rp_id,
            rp_name,
        })
    }

    fn metrics(&mut self, m: file::MetricsFile) -> Option<Metrics> {
        let listen = match m.listen.as_deref() {
            Some(a) => Some(self.addr("metrics.listen", a)?),
            None => None,
        };
        Some(Metrics {
            enabled: m.enabled.unwrap_or(true),
            listen,
        })
    }

    fn log(&mut self, l: file::LogFile) -> Option<Log> {
        let format = match l.format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                self.errors
                    .push("log.format", format!("\"text\" or \"json\", not {other:?}"));
                LogFormat::Text
            }
        };
        let level = l.level.unwrap_or_else(|| "info".to_string());
        if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
            self.errors.push(
                "log.level",
                format!(
                    "not a log filter: {level:?} (example: \"info\" or \"info,mfa_gateway=debug\")"
                ),
            );
        }
        Some(Log { format, level })
    }

    fn redis(&mut self, r: file::RedisFile) -> Option<Redis> {
        let mode = match r.mode.as_deref() {
            None | Some("standalone") => RedisMode::Standalone,
            Some("sentinel") => RedisMode::Sentinel,
            Some("cluster") => RedisMode::Cluster,
            Some(other) => {
                self.errors.push(
                    "redis.mode",
                    format!("\"standalone\", \"sentinel\" or \"cluster\", not {other:?}"),
                );
                RedisMode::Standalone
            }
        };
        let mut nodes = r.nodes.unwrap_or_default();
        // Where each URL came from, so an error names the key the operator wrote.
        let from_url = r.url.is_some();
        if let Some(u) = r.url {
            nodes.insert(0, u);
        }
        if nodes.is_empty() {
            nodes.push("redis://127.0.0.1:6379/0".to_string());
        }
        for (i, n) in nodes.iter().enumerate() {
            if !(n.starts_with("redis://")
                || n.starts_with("rediss://")
                || n.starts_with("redis+unix://")
                || n.starts_with("unix://"))
            {
                let key = match (from_url, i) {
                    (true, 0) => "redis.url".to_string(),
                    (true, i) => format!("redis.nodes[{}]", i - 1),
                    (false, i) => format!("redis.nodes[{i}]"),
                };
                self.errors.push(
                    key,
                    format!("not a redis:// or rediss:// URL: {:?}", redact_url(n)),
                );
            }
        }
        if mode == RedisMode::Standalone && nodes.len() > 1 {
            self.errors.push("redis.nodes", "standalone mode takes one URL (use mode = \"sentinel\" or \"cluster\" for several)");
        }
        if mode == RedisMode::Sentinel && r.sentinel_master.is_none() {
            self.errors
                .push("redis.sentinel_master", "required in sentinel mode");
        }
        // The scheme of the sentinels' URLs decides TLS for the master too, so a mix would
        // leave it unclear which the operator meant.
        if mode == RedisMode::Sentinel {
            let tls = nodes.iter().filter(|n| n.starts_with("rediss://")).count();
            if tls != 0 && tls != nodes.len() {
                self.errors.push(
                    "redis.nodes",
                    "in sentinel mode every sentinel URL is rediss:// (TLS to the sentinels and \
                     the master) or none is",
                );
            }
        }
        let password = r
            .password
            .as_ref()
            .and_then(|p| self.secret("redis.password", p));
        let sentinel_password = r
            .sentinel_password
            .as_ref()
            .and_then(|p| self.secret("redis.sentinel_password", p));
        if sentinel_password.is_some() && mode != RedisMode::Sentinel {
            self.errors.push(
                "redis.sentinel_password",
                "only meaningful in sentinel mode",
            );
        }
        let key_prefix = r.key_prefix.unwrap_or_else(|| "mfa:".to_string());
        if key_prefix.contains(['{', '}', ' ']) {
            self.errors
                .push("redis.key_prefix", "must not contain '{', '}' or spaces");
        }
        let ca = match r.ca.as_deref() {
            Some(c) => self.existing_file("redis.ca", c),
            None => None,
        };
        if ca.is_some() && !nodes.iter().any(|n| n.starts_with("rediss://")) {
            self.errors
                .push("redis.ca", "only meaningful with rediss:// URLs");
        }
        let memory_fallback = r.memory_fallback.unwrap_or(false);
        if memory_fallback && self.mode != Mode::Demo {
            self.errors.push(
                "redis.memory_fallback",
                "only allowed in demo mode: state would not be shared or kept",
            );
        }
        Some(Redis {
            mode,
            nodes,
            sentinel_master: r.sentinel_master,
            password,
            sentinel_password,
            key_prefix,
            connect_timeout: self.duration(
                "redis.connect_timeout",
                r.connect_timeout,
                Duration::from_secs(2),
            ),
            response_timeout: self.duration(
                "redis.response_timeout",
                r.response_timeout,
                Duration::from_secs(2),
            ),
            memory_fallback,
            ca,
        })
    }

    fn mfa(&mut self, m: file::MfaFile) -> Option<Mfa> {
        let issuer = m.issuer.unwrap_or_else(|| "VMS".to_string());
        if issuer.is_empty() || issuer.len() > 64 {
            self.errors.push("mfa.issuer", "must be 1 to 64 characters");
        }
        let logo_data_uri = match m.logo.as_deref() {
            None => None,
            Some(p) => self.logo(p),
        };
        let default_language = m.default_language.unwrap_or_else(|| "en".to_string());
        if !matches!(default_language.as_str(), "en" | "nl") {
            self.errors.push(
                "mfa.default_language",
                format!("\"en\" or \"nl\", not {default_language:?}"),
            );
        }
        let window = m.window.unwrap_or(1);
        if window > 3 {
            self.errors.push(
                "mfa.window",
                "at most 3 steps either side (RFC 6238 recommends 1)",
            );
        }
        let max_failures = m.max_failures.unwrap_or(5);
        if !(1..=100).contains(&max_failures) {
            self.errors.push(
                "mfa.max_failures",
                "between 1 and 100 (NIST SP 800-63B allows at most 100)",
            );
        }
        let allow_inline = self.allow_inline;
        let mut keys = Vec::new();
        for (i, k) in m.keys.unwrap_or_default().iter().enumerate() {
            let key = format!("mfa.keys[{i}]");
            let Some(id) = k.id.clone() else {
                self.errors.push(format!("{key}.id"), "required");
                continue;
            };
            let secret = SecretFile {
                file: k.file.clone(),
                env: k.env.clone(),
                value: k.value.clone(),
            };
            if secret.value.is_some() && !allow_inline {
                self.errors
                    .push(&key, "inline `value` keys are refused: use `file` or `env`");
                continue;
            }
            if keys.iter().any(|x: &KeySource| x.id == id) {
                self.errors
                    .push(format!("{key}.id"), format!("duplicate key id {id:?}"));
            }
            if let Some(material) = self.secret(&key, &secret) {
                keys.push(KeySource { id, material });
            }
        }
        let active_key = m
            .active_key
            .unwrap_or_else(|| keys.last().map(|k| k.id.clone()).unwrap_or_default());
        if keys.is_empty() {
            if self.mode != Mode::Demo {
                self.errors.push("mfa.keys", "at least one encryption key is required (generate one with `mfa-gateway gen-key`)");
            }
        } else if !keys.iter().any(|k| k.id == active_key) {
            self.errors.push(
                "mfa.active_key",
                format!("no key with id {active_key:?} in mfa.keys"),
            );
        }
        let challenge_ttl = self.duration(
            "mfa.challenge_ttl",
            m.challenge_ttl,
            Duration::from_secs(300),
        );
        if !(Duration::from_secs(30)..=Duration::from_secs(3600)).contains(&challenge_ttl) {
            self.errors.push("mfa.challenge_ttl", "between 30s and 1h");
        }
        let enrollment_ttl = self.duration(
            "mfa.enrollment_ttl",
            m.enrollment_ttl,
            Duration::from_secs(30 * 60).max(challenge_ttl),
        );
        if !(challenge_ttl..=Duration::from_secs(2 * 3600)).contains(&enrollment_ttl) {
            self.errors
                .push("mfa.enrollment_ttl", "between mfa.challenge_ttl and 2h");
        }
        let pending_enrollment_ttl = self.duration(
            "mfa.pending_enrollment_ttl",
            m.pending_enrollment_ttl,
            Duration::from_secs(24 * 3600),
        );
        if !(enrollment_ttl..=Duration::from_secs(30 * 24 * 3600)).contains(&pending_enrollment_ttl)
        {
            self.errors.push(
                "mfa.pending_enrollment_ttl",
                "between mfa.enrollment_ttl and 30d",
            );
        }
        let offer_quiet_period = self.duration(
            "mfa.offer_quiet_period",
            m.offer_quiet_period,
            Duration::from_secs(30 * 24 * 3600),
        );
        if offer_quiet_period > Duration::from_secs(366 * 24 * 3600) {
            self.errors.push(
                "mfa.offer_quiet_period",
                "at most 366d (0: ask at every sign-in)",
            );
        }
        let helpdesk_name = m.helpdesk_name.map(|h| h.trim().to_string());
        if helpdesk_name.as_deref().is_some_and(|h| {
            h.is_empty() || h.chars().count() > 80 || h.chars().any(char::is_control)
        }) {
            self.errors.push(
                "mfa.helpdesk_name",
                "1 to 80 characters, no control characters",
            );
        }
        Some(Mfa {
            issuer,
            product_name: m.product_name.unwrap_or_else(|| "VMS sign-in".to_string()),
            logo_data_uri,
            support_text: m.support_text,
            default_language,
            window,
            challenge_ttl,
            enrollment_ttl,
            pending_enrollment_ttl,
            offer_quiet_period,
            helpdesk_name,
            approval_max_age: self.duration(
                "mfa.approval_max_age",
                m.approval_max_age,
                Duration::from_secs(12 * 3600),
            ),
            max_failures,
            lock_duration: self.duration(
                "mfa.lock_duration",
                m.lock_duration,
                Duration::from_secs(15 * 60),
            ),
            max_failures_per_address: m.max_failures_per_address.unwrap_or(20),
            offer_enrollment: m.offer_enrollment.unwrap_or(true),
            active_key,
            keys,
            revocation_poll: self.duration(
                "mfa.revocation_poll",
                m.revocation_poll,
                Duration::from_secs(2),
            ),
            bind_challenge_to_address: m.bind_challenge_to_address.unwrap_or(false),
            first_enrollment: match m.first_enrollment.as_deref() {
                None | Some("open") => FirstEnrollment::Open,
                Some("email_code") => FirstEnrollment::EmailCode,
                Some(other) => {
                    self.errors.push(
                        "mfa.first_enrollment",
                        format!("\"open\" or \"email_code\", not {other:?}"),
                    );
                    FirstEnrollment::Open
                }
            },
        })
    }

    fn logo(&mut self, p: &str) -> Option<String> {
        use base64::Engine;
        let path = self.existing_file("mfa.logo", p)?;
        let mime = match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("svg") => "image/svg+xml",
            Some("png") => "image/png",
            Some("jpg" | "jpeg") => "image/jpeg",
            Some("webp") => "image/webp",
            _ => {
                self.errors
                    .push("mfa.logo", "must be .svg, .png, .jpg or .webp");
                return None;
            }
        };
        match std::fs::read(&path) {
            Ok(b) if b.len() <= 256 * 1024 => Some(format!(
                "data:{mime};base64,{}",
                base64::engine::general_purpose::STANDARD.encode(b)
            )),
            Ok(_) => {
                self.errors.push("mfa.logo", "larger than 256 KiB");
                None
            }
            Err(e) => {
                self.errors
                    .push("mfa.logo", format!("cannot read {}: {e}", path.display()));
                None
            }
        }
    }

    fn vms(&mut self, v: file::VmsFile) -> Option<Vms> {
        let session_cookies = v.session_cookies.unwrap_or_default();
        if session_cookies.is_empty() {
            self.errors.push(
                "vms.session_cookies",
                "name at least one cookie that carries the VMS session",
            );
        }
        for (i, c) in session_cookies.iter().enumerate() {
            if c.is_empty() || !c.bytes().all(is_cookie_name_byte) {
                self.errors.push(
                    format!("vms.session_cookies[{i}]"),
                    format!("not a cookie name: {c:?}"),
                );
            }
        }
        let mut login = Vec::new();
        let routes = v.login.unwrap_or_default();
        if routes.is_empty() {
            self.errors.push(
                "vms.login",
                "describe at least one login request ([[vms.login]] with method and path)",
            );
        }
        for (i, l) in routes.into_iter().enumerate() {
            let key = format!("vms.login[{i}]");
            let method = self.method(
                &format!("{key}.method"),
                l.method.as_deref().unwrap_or("POST"),
            );
            let path = self.route_path(&format!("{key}.path"), l.path.as_deref());
            let username = match (l.username_field, l.username_pointer) {
                (Some(f), None) => Some(UsernameIn::FormField(f)),
                (None, Some(p)) if p.is_empty() || p.starts_with('/') => {
                    Some(UsernameIn::JsonPointer(p))
                }
                (None, Some(p)) => {
                    self.errors.push(
                        format!("{key}.username_pointer"),
                        format!("a JSON pointer starts with '/': {p:?}"),
                    );
                    None
                }
                _ => {
                    self.errors.push(
                        &key,
                        "give exactly one of username_field (form) or username_pointer (JSON)",
                    );
                    None
                }
            };
            let success_status = l.success_status.unwrap_or_else(|| vec![200, 302, 303]);
            for s in &success_status {
                if !(100..=599).contains(s) {
                    self.errors.push(
                        format!("{key}.success_status"),
                        format!("not an HTTP status: {s}"),
                    );
                }
            }
            if let Some(c) = &l.success_cookie
                && !session_cookies.contains(c)
            {
                self.errors.push(
                    format!("{key}.success_cookie"),
                    format!("{c:?} is not one of vms.session_cookies"),
                );
            }
            let script = match l.posted_by.as_deref() {
                None | Some("form") => false,
                Some("script") => true,
                Some(other) => {
                    self.errors.push(
                        format!("{key}.posted_by"),
                        format!("\"form\" or \"script\", not {other:?}"),
                    );
                    false
                }
            };
            let landing = match (script, l.landing) {
                (true, Some(p))
                    if p.starts_with('/')
                        && !p.starts_with("//")
                        && !p.contains('\\')
                        && p.parse::<http::uri::PathAndQuery>().is_ok() =>
                {
                    Some(p)
                }
                (true, Some(p)) => {
                    self.errors.push(
                        format!("{key}.landing"),
                        format!("a path on the VMS such as \"/home\", not {p:?}"),
                    );
                    None
                }
                (true, None) => {
                    self.errors.push(
                        format!("{key}.landing"),
                        "required with posted_by = \"script\": the page the browser goes to after the MFA step",
                    );
                    None
                }
                (false, Some(_)) => {
                    self.errors.push(
                        format!("{key}.landing"),
                        "only with posted_by = \"script\" (a form login's answer is released as the VMS sent it)",
                    );
                    None
                }
                (false, None) => None,
            };
            if let (Some(method), Some(path), Some(username)) = (method, path, username) {
                login.push(LoginRoute {
                    method,
                    path,
                    username,
                    success_status,
                    success_cookie: l.success_cookie,
                    landing,
                });
            }
        }
        let mut logout = Vec::new();
        for (i, r) in v.logout.unwrap_or_default().into_iter().enumerate() {
            if let Some(r) = self.route(&format!("vms.logout[{i}]"), r) {
                logout.push(r);
            }
        }
        let end_session = match v.end_session {
            Some(r) => self.route("vms.end_session", r),
            None => None,
        };
        let mut allow_body_on = Vec::new();
        for (i, r) in v.allow_body_on.unwrap_or_default().into_iter().enumerate() {
            if let Some(a) = self.body_allowed(&format!("vms.allow_body_on[{i}]"), r) {
                allow_body_on.push(a);
            }
        }
        let role = v.role.unwrap_or_default();
        let role_source = self.role_source(&role)?;
        let reported_user = self.reported_user(&role, &role_source);
        let email_source = self.email_source(&role, &role_source);
        let typed_username = match v.typed_username.as_deref().unwrap_or("must_match") {
            "must_match" => TypedUsername::MustMatch,
            "ignore" => TypedUsername::Ignore,
            other => {
                self.errors.push(
                    "vms.typed_username",
                    format!("\"must_match\" or \"ignore\", not {other:?}"),
                );
                TypedUsername::MustMatch
            }
        };
        let unmapped = match role
            .unmapped
            .as_deref()
            .unwrap_or("enforced")
            .parse::<MfaState>()
        {
            Ok(s) => s,
            Err(_) => {
                self.errors.push(
                    "vms.role.unmapped",
                    "\"none\", \"available\" or \"enforced\"",
                );
                MfaState::Enforced
            }
        };
        let url_session_params = match v.url_session_params {
            Some(names) => {
                for (i, n) in names.iter().enumerate() {
                    if n.is_empty() || !n.bytes().all(is_cookie_name_byte) {
                        self.errors.push(
                            format!("vms.url_session_params[{i}]"),
                            format!("not a parameter name: {n:?}"),
                        );
                    }
                }
                names
            }
            // The servlet default, and each session cookie's own name (a servlet container
            // with a renamed session cookie uses that name as the path parameter too).
            None => std::iter::once("jsessionid".to_string())
                .chain(session_cookies.iter().cloned())
                .collect(),
        };
        // A query pair named like a session cookie is removed whatever the list says: ASP.NET
        // reads the forms ticket from one (cross-application redirects).
        let url_session_params = crate::vms_reading::url_session::SessionParams::new(
            url_session_params,
            &session_cookies,
        );
        let session_before_login = match v.session_before_login.as_deref().unwrap_or("none") {
            "none" => SessionBeforeLogin::None,
            "rotates" => SessionBeforeLogin::Rotates,
            "same_id" => SessionBeforeLogin::SameId,
            other => {
                self.errors.push(
                    "vms.session_before_login",
                    format!("\"none\", \"rotates\" or \"same_id\", not {other:?}"),
                );
                SessionBeforeLogin::None
            }
        };
        let pre_login_ttl = self.duration(
            "vms.pre_login_ttl",
            v.pre_login_ttl,
            Duration::from_secs(30 * 60),
        );
        if session_before_login.pre_login() {
            if !(Duration::from_secs(60)..=Duration::from_secs(24 * 3600)).contains(&pre_login_ttl)
            {
                self.errors.push(
                    "vms.pre_login_ttl",
                    "between 1 minute and 24 hours (how long a login page may be left open)",
                );
            }
            if session_before_login == SessionBeforeLogin::SameId && end_session.is_none() {
                self.errors.push(
                    "vms.session_before_login",
                    "\"same_id\" needs vms.end_session: a session the VMS signed in as somebody else is ended with it, at once for every instance",
                );
            }
            // Whether a session is signed in is decided from the VMS, on any answer: only a
            // user-info request or a header on every answer can say "nobody".
            match &reported_user {
                ReportedUser::UserInfo | ReportedUser::Header(_) => {}
                _ => self.errors.push(
                    "vms.session_before_login",
                    "a session before login needs the VMS to say on any answer whether someone is signed in: source = \"userinfo\" with userinfo_user_pointer, or source = \"header\" with user_header",
                ),
            }
        }
        Some(Vms {
            session_cookies,
            url_session_params,
            login,
            logout,
            end_session,
            allow_body_on,
            role_source,
            email_source,
            role_map: role.map.clone().unwrap_or_default(),
            unmapped,
            username_case_sensitive: v.username_case_sensitive.unwrap_or(false),
            reported_user,
            typed_username,
            case_insensitive_paths: v.case_insensitive_paths.unwrap_or(true),
            max_login_body_bytes: v.max_login_body_bytes.unwrap_or(64 * 1024),
            max_login_response_bytes: v.max_login_response_bytes.unwrap_or(1024 * 1024),
            session_before_login,
            pre_login_ttl,
            navigation_helper: v.navigation_helper.unwrap_or(false),
        })
    }

    /// Where the VMS reports the user name: `user_header` with the header source,
    /// `user_pointer` with the JSON source, `userinfo_user_pointer` with user info.
    fn reported_user(&mut self, r: &file::RoleFile, source: &RoleSource) -> ReportedUser {
        if r.user_header.is_some() && !matches!(source, RoleSource::Header(_)) {
            self.errors.push(
                "vms.role.user_header",
                "only with source = \"header\" (user info names the user with userinfo_user_pointer)",
            );
        }
        if r.user_pointer.is_some() && !matches!(source, RoleSource::JsonBody(_)) {
            self.errors.push(
                "vms.role.user_pointer",
                "only with source = \"json_body\" (user info names the user with userinfo_user_pointer)",
            );
        }
        match source {
            RoleSource::Header(_) => match r.user_header.as_deref() {
                Some(h) => match HeaderName::from_bytes(h.as_bytes()) {
                    Ok(h) => ReportedUser::Header(h),
                    Err(_) => {
                        self.errors
                            .push("vms.role.user_header", format!("not a header name: {h:?}"));
                        ReportedUser::Nothing
                    }
                },
                None => ReportedUser::Nothing,
            },
            RoleSource::JsonBody(_) => match r.user_pointer.as_deref() {
                Some(p) if p.starts_with('/') => ReportedUser::JsonBody(p.to_string()),
                Some(p) => {
                    self.errors.push(
                        "vms.role.user_pointer",
                        format!("a JSON pointer starts with '/': {p:?}"),
                    );
                    ReportedUser::Nothing
                }
                None => ReportedUser::Nothing,
            },
            RoleSource::UserInfo { user_pointer, .. } => {
                if user_pointer.is_some() {
                    ReportedUser::UserInfo
                } else {
                    ReportedUser::Nothing
                }
            }
            RoleSource::Static { .. } => ReportedUser::Nothing,
        }
    }

    /// Where users' e-mail addresses come from: at most one of the `email_*` settings, each
    /// with the role source it reads from.
    fn email_source(&mut self, r: &file::RoleFile, source: &RoleSource) -> Option<EmailSource> {
        let given = [
            r.email_header.is_some(),
            r.email_pointer.is_some(),
            r.userinfo_email_pointer.is_some(),
            r.email_map.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            self.errors.push(
                "vms.role.email_header",
                "give at most one of email_header, email_pointer, userinfo_email_pointer and email_map",
            );
            return None;
        }
        let pointer = |v: &mut Self, key: &str, p: &str| {
            if p.starts_with('/') {
                Some(p.to_string())
            } else {
                v.errors
                    .push(key, format!("a JSON pointer starts with '/': {p:?}"));
                None
            }
        };
        if let Some(h) = &r.email_header {
            return match HeaderName::from_bytes(h.as_bytes()) {
                Ok(h) => Some(EmailSource::Header(h)),
                Err(_) => {
                    self.errors
                        .push("vms.role.email_header", format!("not a header name: {h:?}"));
                    None
                }
            };
        }
        if let Some(p) = &r.email_pointer {
            if !matches!(source, RoleSource::JsonBody(_)) {
                self.errors.push(
                    "vms.role.email_pointer",
                    "only with source = \"json_body\" (user info gives the address with userinfo_email_pointer)",
                );
                return None;
            }
            return pointer(self, "vms.role.email_pointer", p).map(EmailSource::JsonBody);
        }
        if let Some(p) = &r.userinfo_email_pointer {
            if !matches!(source, RoleSource::UserInfo { .. }) {
                self.errors.push(
                    "vms.role.userinfo_email_pointer",
                    "only with source = \"userinfo\"",
                );
                return None;
            }
            return pointer(self, "vms.role.userinfo_email_pointer", p).map(EmailSource::UserInfo);
        }
        let map = r.email_map.as_ref()?;
        let mut out = BTreeMap::new();
        for (user, address) in map {
            if !valid_mailbox(address) {
                self.errors.push(
                    format!("vms.role.email_map.{user}"),
                    format!("not an e-mail address: {address:?}"),
                );
                continue;
            }
            out.insert(
                normalize_username(user, self.case_sensitive),
                address.trim().to_string(),
            );
        }
        Some(EmailSource::Static(out))
    }

    /// `[mail]`.
    fn mail(&mut self, m: file::MailFile) -> Option<Mail> {
        let host = m.host.unwrap_or_default().trim().to_string();
        if host.is_empty() || host.len() > 253 || host.contains(char::is_whitespace) {
            self.errors.push(
                "mail.host",
                "required: the mail server's host name or address",
            );
        }
        let security = match m.security.as_deref().unwrap_or("starttls") {
            "starttls" => MailSecurity::StartTls,
            "tls" => MailSecurity::Tls,
            "none-for-tests-on-loopback-only" => MailSecurity::PlainLoopback,
            other => {
                self.errors.push(
                    "mail.security",
                    format!("\"starttls\", \"tls\" or \"none-for-tests-on-loopback-only\", not {other:?}"),
                );
                MailSecurity::StartTls
            }
        };
        if security == MailSecurity::PlainLoopback && !is_loopback_host(&host) {
            self.errors.push(
                "mail.security",
                format!("plain SMTP only to a loopback address (127.0.0.1, ::1, localhost), not {host:?}: use \"starttls\" or \"tls\""),
            );
        }
        let port = m.port.unwrap_or(match security {
            MailSecurity::StartTls => 587,
            MailSecurity::Tls => 465,
            MailSecurity::PlainLoopback => 25,
        });
        if port == 0 {
            self.errors.push("mail.port", "must be 1 to 65535");
        }
        let ca =
            m.ca.as_deref()
                .and_then(|p| self.existing_file("mail.ca", p));
        let password = match &m.password {
            None => None,
            Some(s) if s.value.is_some() => {
                self.errors.push(
                    "mail.password",
                    "an inline `value` is refused: use `file` or `env`",
                );
                None
            }
            Some(s) => self.secret("mail.password", s),
        };
        let username = m.username.filter(|u| !u.is_empty());
        if username.is_some() != m.password.is_some() {
            self.errors.push(
                "mail.username",
                "give both mail.username and mail.password, or neither",
            );
        }
        if security == MailSecurity::PlainLoopback && username.is_some() {
            self.errors.push(
                "mail.username",
                "no credentials over plain SMTP: use \"starttls\" or \"tls\"",
            );
        }
        let from = m.from.unwrap_or_default();
        if !valid_mailbox(&from) {
            self.errors.push(
                "mail.from",
                format!("required: the sender, an address or \"Name <address>\", not {from:?}"),
            );
        }
        if let Some(r) = &m.reply_to
            && !valid_mailbox(r)
        {
            self.errors
                .push("mail.reply_to", format!("not an e-mail address: {r:?}"));
        }
        let help_line = m.help_line.map(|h| h.trim().to_string());
        if help_line.as_deref().is_some_and(|h| {
            h.is_empty() || h.chars().count() > 200 || h.chars().any(char::is_control)
        }) {
            self.errors.push(
                "mail.help_line",
                "1 to 200 characters, no control characters",
            );
        }
        let language = m.language.unwrap_or_else(|| "en".to_string());
        if !matches!(language.as_str(), "en" | "nl") {
            self.errors.push(
                "mail.language",
                format!("\"en\" or \"nl\", not {language:?}"),
            );
        }
        let max_attempts = m.max_attempts.unwrap_or(10);
        if !(1..=100).contains(&max_attempts) {
            self.errors.push("mail.max_attempts", "between 1 and 100");
        }
        let timeout = self.duration("mail.timeout", m.timeout, Duration::from_secs(15));
        let retry_after = self.duration("mail.retry_after", m.retry_after, Duration::from_secs(30));
        if retry_after.is_zero() || retry_after > Duration::from_secs(3600) {
            self.errors.push("mail.retry_after", "from 1s to 1h");
        }
        Some(Mail {
            host,
            port,
            security,
            ca,
            username,
            password,
            from: from.trim().to_string(),
            reply_to: m.reply_to.map(|r| r.trim().to_string()),
            help_line,
            language,
            timeout,
            max_attempts,
            retry_after,
            include_reset_reason: m.include_reset_reason.unwrap_or(false),
        })
    }

    fn role_source(&mut self, r: &file::RoleFile) -> Option<RoleSource> {
        let source = r.source.as_deref().unwrap_or("header");
        let src = match source {
            "header" => {
                let h = r.header.as_deref().unwrap_or("X-VMS-Role");
                match HeaderName::from_bytes(h.as_bytes()) {
                    Ok(h) => RoleSource::Header(h),
                    Err(_) => {
                        self.errors
                            .push("vms.role.header", format!("not a header name: {h:?}"));
                        return None;
                    }
                }
            }
            "json_body" => match r.pointer.as_deref() {
                Some(p) if p.starts_with('/') => RoleSource::JsonBody(p.to_string()),
                _ => {
                    self.errors.push("vms.role.pointer", "required for source = \"json_body\": a JSON pointer such as \"/user/role\"");
                    return None;
                }
            },
            "userinfo" => {
                let path = self.route_path("vms.role.userinfo_path", r.userinfo_path.as_deref())?;
                let Some(role_pointer) = r
                    .userinfo_role_pointer
                    .clone()
                    .filter(|p| p.starts_with('/'))
                else {
                    self.errors.push(
                        "vms.role.userinfo_role_pointer",
                        "required: a JSON pointer such as \"/role\"",
                    );
                    return None;
                };
                if let Some(p) = &r.userinfo_user_pointer
                    && !p.starts_with('/')
                {
                    self.errors.push(
                        "vms.role.userinfo_user_pointer",
                        "a JSON pointer starts with '/'",
                    );
                }
                RoleSource::UserInfo {
                    path,
                    user_pointer: r.userinfo_user_pointer.clone(),
                    role_pointer,
                }
            }
            "static" => {
                let Some(p) = r.static_file.as_deref() else {
                    self.errors
                        .push("vms.role.static_file", "required for source = \"static\"");
                    return None;
                };
                let path = self.existing_file("vms.role.static_file", p)?;
                let users = match load_static_roles(&path, self.case_sensitive) {
                    Ok(u) => u,
                    Err(e) => {
                        self.errors.push("vms.role.static_file", e);
                        return None;
                    }
                };
                RoleSource::Static { path, users }
            }
            other => {
                self.errors.push(
                    "vms.role.source",
                    format!("\"header\", \"json_body\", \"userinfo\" or \"static\", not {other:?}"),
                );
                return None;
            }
        };
        Some(src)
    }

    fn method(&mut self, key: &str, m: &str) -> Option<Method> {
        match Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
            Ok(m) => Some(m),
            Err(_) => {
                self.errors.push(key, format!("not an HTTP method: {m:?}"));
                None
            }
        }
    }

    fn route_path(&mut self, key: &str, p: Option<&str>) -> Option<String> {
        match p {
            Some(p) if p.starts_with('/') && !p.contains(['?', '#']) => Some(p.to_string()),
            Some(p) => {
                self.errors.push(
                    key,
                    format!("a path starting with '/' without query: {p:?}"),
                );
                None
            }
            None => {
                self.errors.push(key, "required");
                None
            }
        }
    }

    fn route(&mut self, key: &str, r: file::RouteFile) -> Option<Route> {
        let method = match r.method.as_deref() {
            None | Some("*") => None,
            Some(m) => Some(self.method(&format!("{key}.method"), m)?),
        };
        let path = self.route_path(&format!("{key}.path"), r.path.as_deref())?;
        Some(Route { method, path })
    }

    /// One `vms.allow_body_on` entry: a method that has no body (any other may carry one
    /// anyway) and an exact path.
    fn body_allowed(&mut self, key: &str, r: file::RouteFile) -> Option<BodyAllowed> {
        let method = match r.method.as_deref() {
            None => {
                self.errors.push(format!("{key}.method"), "required");
                None
            }
            Some(m) => match self.method(&format!("{key}.method"), m) {
                Some(m) if crate::vms_reading::method_without_body(&m) => Some(m),
                Some(m) => {
                    self.errors.push(
                        format!("{key}.method"),
                        format!(
                            "{m} requests may carry a body anyway; list only GET, HEAD, OPTIONS, DELETE or TRACE"
                        ),
                    );
                    None
                }
                None => None,
            },
        };
        let path = self.route_path(&format!("{key}.path"), r.path.as_deref());
        Some(BodyAllowed {
            method: method?,
            path: path?,
        })
    }

    fn admin(&mut self, a: file::AdminFile) -> Admin {
        /// The longest an enrollment code may stay valid: 30 days.
        const MAX_ENROLLMENT_CODE_HOURS: u64 = 720;
        let mut role_refs = Vec::new();
        if let Some(roles) = &a.roles {
            for (i, r) in roles.iter().enumerate() {
                role_refs.push((format!("admin.roles[{i}]"), r.clone()));
            }
        }
        let roles = a
            .roles
            .unwrap_or_else(|| vec!["msp".to_string(), "administrator".to_string()]);
        let can_reset = match a.can_reset {
            Some(map) => {
                for (actor, targets) in &map {
                    let key = format!("admin.can_reset.{actor}");
                    role_refs.push((key.clone(), actor.clone()));
                    for (i, t) in targets.iter().enumerate() {
                        if t != ANY_ROLE {
                            role_refs.push((format!("{key}[{i}]"), t.clone()));
                        }
                    }
                }
                map
            }
            None => default_can_reset(),
        };
        let mut tokens = Vec::new();
        for (i, t) in a.tokens.unwrap_or_default().into_iter().enumerate() {
            let key = format!("admin.tokens[{i}]");
            let name = t.name.unwrap_or_default();
            if name.is_empty()
                || name.len() > 64
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                self.errors.push(
                    format!("{key}.name"),
                    "1 to 64 characters of [A-Za-z0-9._-]",
                );
            }
            let hash = t.sha256.as_deref().and_then(parse_hex32);
            // A token acts as an MSP unless the operator says otherwise.
            let role = match t.role {
                Some(r) => {
                    role_refs.push((format!("{key}.role"), r.clone()));
                    r
                }
                None => "msp".to_string(),
            };
            if !can_reset.contains_key(&role) {
                self.errors.push(
                    format!("{key}.role"),
                    format!(
                        "role {role:?} may reset nobody: it has no entry in admin.can_reset (set the token's role, or add the role there)"
                    ),
                );
            }
            match hash {
                Some(sha256) => tokens.push(ApiToken { name, sha256, role }),
                None => self.errors.push(
                    format!("{key}.sha256"),
                    "64 hex characters: the SHA-256 of the token (make a token with `mfa-gateway gen-token`)",
                ),
            }
        }
        let hours = a.enrollment_code_hours.unwrap_or(72);
        if !(1..=MAX_ENROLLMENT_CODE_HOURS).contains(&hours) {
            self.errors.push(
                "admin.enrollment_code_hours",
                format!(
                    "1 to {MAX_ENROLLMENT_CODE_HOURS} hours: how long the one-time code read to a user after a reset stays valid"
                ),
            );
        }
        Admin {
            roles,
            tokens,
            audit_max_records: a.audit_max_records.unwrap_or(100_000).max(1000),
            can_reset,
            reset_requires_enrollment_code: a.reset_requires_enrollment_code.unwrap_or(true),
            enrollment_code_ttl: Duration::from_secs(
                hours.clamp(1, MAX_ENROLLMENT_CODE_HOURS) * 3600,
            ),
            role_refs,
        }
    }

    fn policy(&mut self, p: file::PolicyRefFile) -> Option<PolicyRef> {
        let file = self.existing_file("policy.file", p.file.as_deref().unwrap_or("policy.toml"))?;
        Some(PolicyRef {
            file,
            watch_interval: self.duration(
                "policy.watch_interval",
                p.watch_interval,
                Duration::from_secs(5),
            ),
        })
    }
}

/// 64 hex characters -> 32 bytes.
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Parses `"30s"`, `"5m"`, `"12h"`, `"1h 30m"`, `"250ms"`.
/// An address or `Name <address>` that a mail can be sent to.
fn valid_mailbox(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty() && s.len() <= 320 && s.parse::<lettre::message::Mailbox>().is_ok()
}

/// A host that is this machine: `localhost` or a loopback address.
fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|_| format!("not a duration: {s:?} (examples: \"30s\", \"5m\", \"12h\")"))
}

fn valid_prefix(p: &str) -> bool {
    p.len() >= 3
        && p.starts_with('/')
        && p.ends_with('/')
        && p[1..p.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The static user-to-role file: a TOML table `[users]` of `"username" = "role"`.
fn load_static_roles(path: &Path, case_sensitive: bool) -> Result<HashMap<String, String>, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct StaticRoles {
        users: BTreeMap<String, String>,
    }
    let text = read_text_limited(path, MAX_CONFIG_BYTES)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let parsed: StaticRoles =
        toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), toml_error(&e)))?;
    Ok(parsed
        .users
        .into_iter()
        .map(|(k, v)| (normalize_username(&k, case_sensitive), v))
        .collect())
}
