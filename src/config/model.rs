//! The validated configuration: the types the rest of the gateway reads, with every default
//! applied and every value checked (by `super::validate`, the only place that builds them).
//! Nothing here parses the file; methods answer questions about a valid configuration.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, Method, Uri};
use ipnet::IpNet;
use zeroize::Zeroizing;

use crate::policy::MfaState;

/// The default reserved prefix: a dot-directory no web application routes to.
pub const DEFAULT_PREFIX: &str = "/.mfa/";

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from (for reloads and messages).
    pub source: PathBuf,
    pub server: Server,
    pub tls: Tls,
    pub upstream: Upstream,
    pub metrics: Metrics,
    pub log: Log,
    pub redis: Redis,
    pub mfa: Mfa,
    pub vms: Vms,
    pub policy: PolicyRef,
    pub admin: Admin,
    /// Passkeys and security keys (`[webauthn]`); `None`: not offered.
    pub webauthn: Option<Webauthn>,
    /// `[mail]`: notifications by e-mail; `None` (no `[mail]` section): notifications are off.
    pub mail: Option<Mail>,
    /// Things that work but an operator should fix (a secret file others can read), logged at
    /// start-up and printed by `check-config`, each one line naming the key.
    pub warnings: Vec<String>,
}

/// The gateway as a WebAuthn relying party (`[webauthn]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webauthn {
    /// The public origin users reach the gateway on: `https://host[:port]`, no path.
    pub origin: String,
    /// Its host name.
    pub host: String,
    /// Its port (443 when the origin names none).
    pub port: u16,
    /// The relying party id: the host, or a parent domain of it.
    pub rp_id: String,
    /// The name authenticators show.
    pub rp_name: String,
}

/// An API token: the operator keeps the token, the gateway only its SHA-256.
#[derive(Debug, Clone)]
pub struct ApiToken {
    pub name: String,
    pub sha256: [u8; 32],
    /// The policy role whose ranking (`admin.can_reset`) the token acts with.
    pub role: String,
}

/// In `admin.can_reset`: every user, whatever their role (also one whose role is not known).
pub const ANY_ROLE: &str = "*";

#[derive(Debug, Clone)]
pub struct Admin {
    /// Policy roles whose users (signed in with MFA) may use the administration pages.
    pub roles: Vec<String>,
    pub tokens: Vec<ApiToken>,
    /// Approximate number of audit records kept in Redis (older ones are trimmed).
    pub audit_max_records: usize,
    /// Per actor role, the roles of the users whose MFA it may reset (disconnect) or unlock;
    /// [`ANY_ROLE`] for everyone. A role not listed may change nobody. Nobody may change their
    /// own MFA this way.
    pub can_reset: BTreeMap<String, Vec<String>>,
    /// Whether a reset makes a one-time enrollment code that the user must type before a new
    /// app can be paired (`admin.reset_requires_enrollment_code`, default true).
    pub reset_requires_enrollment_code: bool,
    /// How long an enrollment code is valid (`admin.enrollment_code_hours`, default 72 h).
    pub enrollment_code_ttl: Duration,
    /// Every role named in this section by the operator, with its key: each must be a policy
    /// role ([`Config::check_policy_roles`]).
    pub role_refs: Vec<(String, String)>,
}

impl Admin {
    /// Whether an actor of `actor_role` may reset or unlock a user of `target_role` (`None`:
    /// the user's role is not known, which only [`ANY_ROLE`] covers).
    pub fn may_reset(&self, actor_role: &str, target_role: Option<&str>) -> bool {
        self.can_reset.get(actor_role).is_some_and(|targets| {
            targets
                .iter()
                .any(|t| t == ANY_ROLE || Some(t.as_str()) == target_role)
        })
    }
}

/// The default of `admin.can_reset`: an MSP may reset customers, suppliers, contractors,
/// resources and other MSPs; an administrator anyone (but never themselves).
pub fn default_can_reset() -> BTreeMap<String, Vec<String>> {
    BTreeMap::from([
        (
            "msp".to_string(),
            ["customer", "supplier", "contractor", "resource", "msp"]
                .map(String::from)
                .to_vec(),
        ),
        ("administrator".to_string(), vec![ANY_ROLE.to_string()]),
    ])
}

#[derive(Debug, Clone)]
pub struct Server {
    pub listen: SocketAddr,
    pub redirect_listen: Option<SocketAddr>,
    /// The HTTPS port named in redirects from the plain listener (default: `listen`'s port).
    pub public_port: u16,
    /// Reserved path prefix, always starting and ending with `/`.
    pub prefix: String,
    pub handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
    pub trusted_proxies: Vec<IpNet>,
    pub worker_threads: Option<usize>,
    /// What `/.mfa/ready` must find working to answer 200.
    pub ready_requires: ReadyRequires,
}

/// The parts readiness depends on (`server.ready_requires`). Every part is always checked and
/// reported; only these decide 200 or 503.
///
/// Redis and the policy file are shared by every instance, so by default they do not decide:
/// when Redis is away, every instance is equally affected, approved sessions keep working
/// without it, and taking all instances out of service would end those too. A broken policy
/// file leaves the previous policy in force. The VMS decides: an instance that cannot reach it
/// can serve nothing but its own pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyRequires {
    pub upstream: bool,
    pub store: bool,
    pub policy: bool,
}

impl Default for ReadyRequires {
    fn default() -> Self {
        ReadyRequires {
            upstream: true,
            store: false,
            policy: false,
        }
    }
}

impl ReadyRequires {
    /// The names, as in the configuration.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.upstream, "upstream"),
            (self.store, "store"),
            (self.policy, "policy"),
        ]
        .into_iter()
        .filter_map(|(on, n)| on.then_some(n))
        .collect()
    }
}

#[derive(Debug, Clone)]
pub struct Tls {
    /// `None` only in demo mode, where a development certificate is made at start.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub watch_interval: Duration,
}

/// What `Host` the upstream sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostHeader {
    /// The host the client asked for (`Host`, or `:authority` over HTTP/2).
    Preserve,
    /// The upstream URL's host and port.
    Upstream,
    /// A fixed value.
    Fixed(String),
}

#[derive(Debug, Clone)]
pub struct Upstream {
    pub url: Uri,
    pub https: bool,
    /// `host:port` of the upstream.
    pub authority: String,
    pub host_header: HostHeader,
    pub ca: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub pool_idle_timeout: Duration,
    pub pool_max_idle: usize,
    pub readiness_path: String,
    /// Headers removed from every VMS answer before it reaches a client (they advertise the
    /// VMS's software stack): `Server`, `X-Powered-By`, `X-AspNet-Version`,
    /// `X-AspNetMvc-Version` by default.
    pub strip_response_headers: Box<[HeaderName]>,
}

/// The default of `upstream.strip_response_headers`.
pub const STRIP_RESPONSE_HEADERS: [&str; 4] = [
    "Server",
    "X-Powered-By",
    "X-AspNet-Version",
    "X-AspNetMvc-Version",
];

/// The most names `upstream.strip_response_headers` may list (one bit each while an answer's
/// headers are scanned, see `http::headers::strip_hop_by_hop_and`).
pub const STRIP_RESPONSE_HEADERS_MAX: usize = 64;

#[derive(Debug, Clone)]
pub struct Metrics {
    pub enabled: bool,
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Log {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisMode {
    Standalone,
    Sentinel,
    Cluster,
}

#[derive(Clone)]
pub struct Redis {
    pub mode: RedisMode,
    /// Standalone: one URL. Sentinel: the sentinels. Cluster: seed nodes.
    pub nodes: Vec<String>,
    pub sentinel_master: Option<String>,
    pub password: Option<Zeroizing<String>>,
    /// Sentinel mode: the password of the sentinels themselves (their `requirepass`), which
    /// may differ from the data nodes' `password`.
    pub sentinel_password: Option<Zeroizing<String>>,
    pub key_prefix: String,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    /// Use the in-memory store when Redis does not answer at start (demo only).
    pub memory_fallback: bool,
    /// CA bundle (PEM) for `rediss://` servers signed by a private CA.
    pub ca: Option<PathBuf>,
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field("mode", &self.mode)
            .field(
                "nodes",
                &self.nodes.iter().map(|n| redact_url(n)).collect::<Vec<_>>(),
            )
            .field("sentinel_master", &self.sentinel_master)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "sentinel_password",
                &self.sentinel_password.as_ref().map(|_| "<redacted>"),
            )
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

/// Hides the password part of a `redis://user:pass@host` URL for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s + 3 => {
            format!("{}://<redacted>@{}", &url[..s], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// Key material as read from its source; parsed by the crypto module.
#[derive(Clone)]
pub struct KeySource {
    pub id: String,
    pub material: Zeroizing<String>,
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySource")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct Mfa {
    pub issuer: String,
    pub product_name: String,
    /// Logo as a `data:` URI, inlined into pages (no external requests).
    pub logo_data_uri: Option<String>,
    pub support_text: Option<String>,
    pub default_language: String,
    pub window: u8,
    pub challenge_ttl: Duration,
    /// How long the enrollment step of a sign-in waits (installing an app takes longer than
    /// typing a code).
    pub enrollment_ttl: Duration,
    /// How long a user's secret shown at enrollment but not yet confirmed is kept, so a
    /// sign-in after an expired one shows the same QR code.
    pub pending_enrollment_ttl: Duration,
    /// How long a user who said "Not now" to the MFA offer is not asked again.
    pub offer_quiet_period: Duration,
    /// Who helps users with a lost phone, as named on users' pages (`None`: "your
    /// administrator" in the page's language).
    pub helpdesk_name: Option<String>,
    pub approval_max_age: Duration,
    pub max_failures: u32,
    pub lock_duration: Duration,
    pub max_failures_per_address: u32,
    pub offer_enrollment: bool,
    pub active_key: String,
    /// Empty only in demo mode (a random key is made at start).
    pub keys: Vec<KeySource>,
    pub revocation_poll: Duration,
    pub bind_challenge_to_address: bool,
    /// What a user's first enrollment needs before the QR code is shown.
    pub first_enrollment: FirstEnrollment,
}

/// `mfa.first_enrollment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstEnrollment {
    /// Whoever passes the VMS password may pair an app (trust on first use).
    Open,
    /// A code sent to the user's e-mail address (from the VMS) must be typed first.
    EmailCode,
}

/// How the gateway talks to the mail server (`mail.security`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailSecurity {
    /// Plain connection upgraded with STARTTLS (required, never skipped); port 587 by default.
    StartTls,
    /// TLS from the first byte ("implicit TLS", SMTPS); port 465 by default.
    Tls,
    /// No TLS at all: only to a server on a loopback address (tests, a local relay).
    PlainLoopback,
}

impl MailSecurity {
    pub fn as_str(self) -> &'static str {
        match self {
            MailSecurity::StartTls => "starttls",
            MailSecurity::Tls => "tls",
            MailSecurity::PlainLoopback => "none-for-tests-on-loopback-only",
        }
    }
}

/// `[mail]`, validated.
#[derive(Clone)]
pub struct Mail {
    pub host: String,
    pub port: u16,
    pub security: MailSecurity,
    /// Extra CA certificates (PEM) trusted for the mail server, besides the system's.
    pub ca: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<Zeroizing<String>>,
    /// The sender address (`Name <address>` or a bare address), checked.
    pub from: String,
    pub reply_to: Option<String>,
    /// Who to call if a change was not the user's own doing, as written in every mail.
    pub help_line: Option<String>,
    /// `"en"` or `"nl"`: the language of mails to users whose language is not known.
    pub language: String,
    /// Connection and command timeout towards the mail server.
    pub timeout: Duration,
    /// Deliveries tried per mail before it goes to the dead list.
    pub max_attempts: u32,
    /// The wait after the first failed delivery; it doubles with each failure (at most 1 h).
    pub retry_after: Duration,
    /// A reset's mail quotes the reason the MSP typed.
    pub include_reset_reason: bool,
}

impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mail")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// One line for `check-config` and the start-up log: whether notifications are on, how
    /// they are sent, where addresses come from, and what a first enrollment needs.
    pub fn mail_note(&self) -> String {
        let first = match self.mfa.first_enrollment {
            FirstEnrollment::Open => "first enrollment: open (mfa.first_enrollment = \"open\")",
            FirstEnrollment::EmailCode => {
                "first enrollment: a code sent by e-mail is asked before the QR code (mfa.first_enrollment = \"email_code\")"
            }
        };
        let Some(m) = &self.mail else {
            return format!("notifications by e-mail: off (no [mail] section); {first}");
        };
        let source = match &self.vms.email_source {
            None => "WARNING no address source (set vms.role.email_header, email_pointer, userinfo_email_pointer or email_map): nothing can be sent".to_string(),
            Some(EmailSource::Header(h)) => format!("addresses from the login answer's header {h}"),
            Some(EmailSource::JsonBody(p)) => format!("addresses from the login answer's JSON at {p}"),
            Some(EmailSource::UserInfo(p)) => format!("addresses from the user-info answer at {p}"),
            Some(EmailSource::Static(m)) => format!("addresses from vms.role.email_map ({} users)", m.len()),
        };
        format!(
            "notifications by e-mail: on, via {}:{} ({}) from {}; {source}; {first}",
            m.host,
            m.port,
            m.security.as_str(),
            m.from
        )
    }
}

/// Where the VMS tells a user's e-mail address (`vms.role.email_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailSource {
    /// A header of the login answer (`email_header`).
    Header(HeaderName),
    /// A JSON pointer into the login answer's body (`email_pointer`, source `json_body`).
    JsonBody(String),
    /// A JSON pointer into the user-info answer (`userinfo_email_pointer`, source `userinfo`).
    UserInfo(String),
    /// A fixed table user name -> address (`email_map`; names normalised like logins).
    Static(BTreeMap<String, String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsernameIn {
    /// A field of an `application/x-www-form-urlencoded` body.
    FormField(String),
    /// A JSON pointer into an `application/json` body.
    JsonPointer(String),
}

#[derive(Debug, Clone)]
pub struct LoginRoute {
    pub method: Method,
    pub path: String,
    pub username: UsernameIn,
    /// Statuses that mean "logged in"; empty means any status.
    pub success_status: Vec<u16>,
    /// A cookie that must be set by the response for it to count as a successful login.
    pub success_cookie: Option<String>,
    /// `posted_by = "script"`: the path the page goes to after the MFA step (the released
    /// answer is a redirect there with the VMS's cookies, since the script that posted the
    /// login is gone by then). `None`: a form login, released byte for byte.
    pub landing: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: Option<Method>,
    pub path: String,
}

/// A method without a body (GET, HEAD, OPTIONS, DELETE, TRACE) and a path on which the
/// operator allows a request body all the same (`vms.allow_body_on`, see
/// `http::body_rules`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyAllowed {
    pub method: Method,
    pub path: String,
}

impl Route {
    pub fn matches(&self, method: &Method, path: &str) -> bool {
        self.path == path && self.method.as_ref().is_none_or(|m| m == method)
    }
}

impl LoginRoute {
    fn path_matches(&self, path: &str, reading: &mut Option<String>, ci: bool) -> bool {
        route_path_matches(&self.path, path, reading, ci)
    }
}

#[derive(Debug, Clone)]
pub enum RoleSource {
    /// (a) a response header of the login response.
    Header(HeaderName),
    /// (b) a JSON pointer into the login response body.
    JsonBody(String),
    /// (c) a request the gateway sends itself with the fresh session cookie.
    UserInfo {
        path: String,
        user_pointer: Option<String>,
        role_pointer: String,
    },
    /// (d) a static file mapping user name to role.
    Static {
        path: PathBuf,
        users: HashMap<String, String>,
    },
}

/// Where the VMS itself says whose session a new session cookie is (see `proxy::login`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportedUser {
    /// A header of the answer that set the session (`source = "header"`, `user_header`).
    Header(HeaderName),
    /// A JSON pointer into a login answer's body (`source = "json_body"`, `user_pointer`).
    JsonBody(String),
    /// The user-info answer (`source = "userinfo"`, `userinfo_user_pointer`).
    UserInfo,
    /// Nothing: the name typed in the login request is trusted.
    Nothing,
}

/// What a typed user name that differs from the name the VMS reports means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypedUsername {
    /// The login fails closed: the VMS session is ended, the user sees an error page, and the
    /// attempt is audited.
    MustMatch,
    /// The VMS's name counts; the typed one is ignored (for VMSs that accept aliases such as
    /// an e-mail address).
    Ignore,
}

#[derive(Debug, Clone)]
pub struct Vms {
    pub session_cookies: Vec<String>,
    /// Path (`;name=`) and query (`name=`) parameters removed from every forwarded URL,
    /// because they would carry a session past the gate (`vms_reading::url_session`).
    pub url_session_params: crate::vms_reading::url_session::SessionParams,
    pub login: Vec<LoginRoute>,
    pub logout: Vec<Route>,
    pub end_session: Option<Route>,
    /// Requests of a method without a body that may carry one anyway; they are sent with
    /// `Connection: close`.
    pub allow_body_on: Vec<BodyAllowed>,
    pub role_source: RoleSource,
    /// Where a user's e-mail address comes from (`None`: not known, no mail is sent).
    pub email_source: Option<EmailSource>,
    /// VMS role string -> policy role.
    pub role_map: BTreeMap<String, String>,
    /// What applies to a user whose role cannot be found or mapped.
    pub unmapped: MfaState,
    pub username_case_sensitive: bool,
    /// Who the VMS says a new session belongs to.
    pub reported_user: ReportedUser,
    pub typed_username: TypedUsername,
    /// Login and logout routes are matched as a case-insensitive server reads paths.
    pub case_insensitive_paths: bool,
    pub max_login_body_bytes: usize,
    pub max_login_response_bytes: usize,
    /// Whether the VMS keeps a session before login, and what its login does with it
    /// (`proxy::prelogin`).
    pub session_before_login: SessionBeforeLogin,
    /// How long a pre-login session is let through without a login.
    pub pre_login_ttl: Duration,
    /// Add the script that moves the window to the MFA step to the VMS's HTML pages
    /// (`proxy::navigation_helper`).
    pub navigation_helper: bool,
}

/// What a VMS does with its session cookie before and at login (`vms.session_before_login`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionBeforeLogin {
    /// The session cookie is first set at login (`.ASPXAUTH`): a session cookie without an
    /// approval never reaches the VMS.
    None,
    /// A session exists before login and the login gives it a new id (Spring Security's
    /// `changeSessionId`, `session_regenerate_id()` in PHP).
    Rotates,
    /// A session exists before login and the same id becomes signed in.
    SameId,
}

impl SessionBeforeLogin {
    /// Whether anonymous sessions are let through as pre-login sessions.
    pub fn pre_login(self) -> bool {
        self != SessionBeforeLogin::None
    }
}

impl Vms {
    /// One line for `check-config`: what happens to a session the VMS sets before login.
    pub fn session_before_login_note(&self) -> String {
        let ttl = self.pre_login_ttl.as_secs();
        match self.session_before_login {
            SessionBeforeLogin::None => "sessions before login: none (vms.session_before_login = \"none\"): a session cookie reaches the VMS only with an approval; a VMS that keeps a CSRF token in an anonymous session (JSESSIONID, PHPSESSID, ASP.NET_SessionId) cannot be signed in to; choose \"rotates\" or \"same_id\" for it".to_string(),
            SessionBeforeLogin::Rotates => format!("sessions before login: rotates (vms.session_before_login = \"rotates\"): an anonymous session (the VMS reports no user) passes for up to {ttl} s, checked in Redis on every request; the login must give a new session id, which is withheld until the MFA step is done, and the old id is dropped; a session that becomes signed in without a new id is ended and refused"),
            SessionBeforeLogin::SameId => format!("sessions before login: same_id (vms.session_before_login = \"same_id\"): an anonymous session (the VMS reports no user) passes for up to {ttl} s, checked in Redis on every request and its answers identified by the VMS; its requests reach the VMS one at a time on all instances (a lease in Redis, held until the answer is identified; a request that finds it taken waits up to upstream.response_timeout, then 503); when the VMS says it is signed in, the id is held back on every instance until the MFA step is done; a login request with an approved session goes to the VMS without it (sign out before signing in as another user), and after any other request of an approved session the VMS is asked whether it is still the same user's (if not: ended with vms.end_session, 403), while the request holds the session in Redis (GET and HEAD alongside each other, other methods alone, on all instances)"),
        }
    }

    /// Whether the identity of a session comes from the VMS, or from the typed name.
    pub fn identity_from_vms(&self) -> bool {
        self.reported_user != ReportedUser::Nothing
    }

    /// One line for `check-config`: where the identity of a new session comes from.
    pub fn identity_note(&self) -> String {
        match &self.reported_user {
            ReportedUser::Header(h) => format!(
                "identity: the user name comes from the VMS (response header {h}); a typed name that differs {}",
                self.typed_note()
            ),
            ReportedUser::JsonBody(p) => format!(
                "identity: the user name comes from the VMS (login answer's JSON at {p}); a typed name that differs {}; a session renewed outside a login cannot be confirmed and is not passed on",
                self.typed_note()
            ),
            ReportedUser::UserInfo => format!(
                "identity: the user name comes from the VMS (user-info answer); a typed name that differs {}",
                self.typed_note()
            ),
            ReportedUser::Nothing => "identity: WARNING the user name typed in the login request is trusted, because the role source reports no user name (set vms.role.user_header, vms.role.user_pointer or vms.role.userinfo_user_pointer); a session cookie set outside a recognised login is never passed on".to_string(),
        }
    }

    fn typed_note(&self) -> &'static str {
        match self.typed_username {
            TypedUsername::MustMatch => "ends the login (vms.typed_username = \"must_match\")",
            TypedUsername::Ignore => "is ignored (vms.typed_username = \"ignore\")",
        }
    }

    /// The login route a request is for, matched as leniently as a VMS might read it: the
    /// method case-insensitively, the path after `vms_reading::path::route_reading`.
    pub fn login_route(&self, method: &Method, path: &str) -> Option<usize> {
        let mut reading = None;
        self.login.iter().position(|l| {
            method.as_str().eq_ignore_ascii_case(l.method.as_str())
                && l.path_matches(path, &mut reading, self.case_insensitive_paths)
        })
    }

    /// Whether a request is a configured logout, matched like [`Vms::login_route`].
    pub fn is_logout(&self, method: &Method, path: &str) -> bool {
        let mut reading = None;
        self.logout.iter().any(|r| {
            r.method
                .as_ref()
                .is_none_or(|m| method.as_str().eq_ignore_ascii_case(m.as_str()))
                && route_path_matches(&r.path, path, &mut reading, self.case_insensitive_paths)
        })
    }
}

/// Whether `path` (a request's raw path) reads as the configured `route` (a plain path):
/// byte for byte, or as a lenient VMS reads it (see `vms_reading::path::route_reading`). `reading`
/// caches the request's reading across routes.
fn route_path_matches(
    route: &str,
    path: &str,
    reading: &mut Option<String>,
    case_insensitive: bool,
) -> bool {
    if route == path {
        return true;
    }
    let r = reading
        .get_or_insert_with(|| crate::vms_reading::path::route_reading(path, case_insensitive));
    *r == crate::vms_reading::path::route_reading(route, case_insensitive)
}

#[derive(Debug, Clone)]
pub struct PolicyRef {
    pub file: PathBuf,
    pub watch_interval: Duration,
}

/// The form in which user names are compared and stored: trimmed, and lower-cased unless the
/// VMS treats user names as case-sensitive.
pub fn normalize_username(raw: &str, case_sensitive: bool) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    // NFKC first, so that compatibility forms (fullwidth letters, the Kelvin sign, ligatures)
    // read as what they look like; then Unicode case folding (not just lower case: "ß" and
    // "SS" fold alike) and NFKC again, which the folding may have left denormalised.
    let t: String = raw.trim().nfkc().collect();
    if case_sensitive {
        t
    } else {
        caseless::default_case_fold_str(&t).nfkc().collect()
    }
}
