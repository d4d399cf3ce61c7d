//! Prometheus metrics, kept in plain atomics so that recording on the proxied hot path costs a
//! few relaxed increments and no lock or allocation.
//!
//! The set is fixed and small, so a registry crate would add more than it saves. Every metric
//! name and help text is declared here, in one place; [`Metrics::render`] writes the text
//! exposition format served at `<prefix>metrics` (or on the separate metrics listener).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use arc_swap::ArcSwapOption;

use crate::error::ErrorKind;

/// Outcome of one request, as counted in `mfa_gateway_requests_total{outcome=...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Forwarded to the VMS and answered by it.
    Proxied,
    /// Answered by the gateway itself (its pages, health, metrics).
    Gateway,
    /// A login response withheld pending MFA.
    Withheld,
    /// The gateway refused the request (4xx).
    Rejected,
    /// The VMS could not be reached or failed (502/504).
    UpstreamError,
    /// The gateway could not complete the request (503/500).
    Unavailable,
}

const OUTCOMES: [(Outcome, &str); 6] = [
    (Outcome::Proxied, "proxied"),
    (Outcome::Gateway, "gateway"),
    (Outcome::Withheld, "withheld"),
    (Outcome::Rejected, "rejected"),
    (Outcome::UpstreamError, "upstream_error"),
    (Outcome::Unavailable, "unavailable"),
];

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// MFA events counted in `mfa_gateway_mfa_events_total{event=...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaEvent {
    ChallengeIssued,
    EnrollmentStarted,
    Enrolled,
    VerifySuccess,
    VerifyFailure,
    Replay,
    Locked,
    Released,
    Postponed,
    ChallengeExpired,
    SessionStripped,
    UrlSessionStripped,
    Logout,
    StoreError,
    /// The VMS renewed an approved session for the same user; the approval followed it.
    SessionRenewed,
    /// A session cookie set outside a configured login route, for a user the VMS named:
    /// handled as a login.
    LoginOutsideRoute,
    /// The name typed at login differed from the one the VMS reported; the login was ended.
    IdentityMismatch,
    /// A session the VMS set while nobody was signed in was let through as a pre-login
    /// session (`proxy::prelogin`).
    PreLoginOpened,
    /// A pre-login session was not let through: signing in (waiting for the MFA step),
    /// expired, unknown, or the store could not say.
    PreLoginHeld,
    /// A recovery code was accepted in place of an app's code.
    RecoveryCodeUsed,
}

const EVENTS: [(MfaEvent, &str); 20] = [
    (MfaEvent::ChallengeIssued, "challenge_issued"),
    (MfaEvent::EnrollmentStarted, "enrollment_started"),
    (MfaEvent::Enrolled, "enrolled"),
    (MfaEvent::VerifySuccess, "verify_success"),
    (MfaEvent::VerifyFailure, "verify_failure"),
    (MfaEvent::Replay, "replay_rejected"),
    (MfaEvent::Locked, "locked"),
    (MfaEvent::Released, "released"),
    (MfaEvent::Postponed, "postponed"),
    (MfaEvent::ChallengeExpired, "challenge_expired"),
    (MfaEvent::SessionStripped, "session_stripped"),
    (MfaEvent::UrlSessionStripped, "url_session_stripped"),
    (MfaEvent::Logout, "logout"),
    (MfaEvent::StoreError, "store_error"),
    (MfaEvent::SessionRenewed, "session_renewed"),
    (MfaEvent::LoginOutsideRoute, "login_outside_route"),
    (MfaEvent::IdentityMismatch, "identity_mismatch"),
    (MfaEvent::PreLoginOpened, "pre_login_opened"),
    (MfaEvent::PreLoginHeld, "pre_login_held"),
    (MfaEvent::RecoveryCodeUsed, "recovery_code_used"),
];

/// What a request was, for the latency histogram: the VMS's pages are measured apart from the
/// gateway's own pages (which include the MFA step's Redis work) and from probes, so neither
/// hides the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// Forwarded to the VMS (logins included).
    Proxied,
    /// The gateway's own pages and API under the reserved prefix.
    Gateway,
    /// Health, readiness and metrics.
    Probe,
}

impl RequestKind {
    const ALL: [(RequestKind, &'static str); 3] = [
        (RequestKind::Proxied, "proxied"),
        (RequestKind::Gateway, "gateway"),
        (RequestKind::Probe, "probe"),
    ];
}

#[derive(Debug, Default)]
struct Latency {
    buckets: [AtomicU64; 14],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Latency {
    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(b) = BUCKETS
            .iter()
            .position(|le| secs <= *le)
            .and_then(|i| self.buckets.get(i))
        {
            b.fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros().min(u64::MAX as u128) as u64, Relaxed);
    }

    /// Writes the histogram's samples, each with `labels` (`kind="x",` or empty) before `le`.
    fn render(&self, out: &mut String, name: &str, labels: &str) -> std::fmt::Result {
        let mut cumulative = 0;
        for (le, c) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += c.load(Relaxed);
            writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {cumulative}")?;
        }
        let count = self.count.load(Relaxed);
        writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {count}")?;
        let plain = labels.trim_end_matches(',');
        let braces = if plain.is_empty() {
            String::new()
        } else {
            format!("{{{plain}}}")
        };
        writeln!(
            out,
            "{name}_sum{braces} {}",
            self.sum_micros.load(Relaxed) as f64 / 1e6
        )?;
        writeln!(out, "{name}_count{braces} {count}")
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    requests: [AtomicU64; 6],
    /// Per [`RequestKind`]: bucket counts, count and sum.
    latency: [Latency; 3],
    /// By [`ErrorKind`] (its place in [`ErrorKind::ALL`]); only the VMS's kinds are counted.
    upstream_errors: [AtomicU64; ErrorKind::ALL.len()],
    /// Requests answered with an error, by [`ErrorKind`].
    errors: [AtomicU64; ErrorKind::ALL.len()],
    open_connections: AtomicI64,
    parked_connections: AtomicI64,
    tls_handshake_failures: AtomicU64,
    open_tunnels: AtomicI64,
    /// Per worker thread, once the TLS listener is bound (see [`Metrics::register_workers`]).
    workers: ArcSwapOption<WorkerGauges>,
    mfa_events: [AtomicU64; 20],
    cert_reload_failures: AtomicU64,
    policy_reload_failures: AtomicU64,
    policy_ok: AtomicU64,
    store_up: AtomicU64,
    sign_ins_from_one_address: AtomicU64,
    /// Mail jobs by [`MailResult`].
    mail: [AtomicU64; 6],
    /// Jobs in the mail outbox and in its dead list, as this instance last read them.
    mail_outbox: [AtomicU64; 2],
    /// Facts about the running process that the metrics module cannot know by itself (the
    /// certificate's expiry, the active key, the policy phase), written by the start-up code.
    facts: Facts,
    /// Time from sending a request to the VMS to its answer's head.
    vms_latency: Latency,
    /// How long the last look at Redis (the revocation feed's poll) took, in microseconds.
    store_poll_micros: AtomicU64,
    /// VMS logins by policy role, MFA state and what came next (see [`Metrics::login`]).
    logins: std::sync::Mutex<std::collections::BTreeMap<(String, &'static str, &'static str), u64>>,
}

/// The writer of [`Metrics::set_facts`].
#[derive(Default)]
struct Facts(std::sync::OnceLock<FactWriter>);

type FactWriter = Box<dyn Fn(&mut String) + Send + Sync>;

impl std::fmt::Debug for Facts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Facts(set)"
        } else {
            "Facts(unset)"
        })
    }
}

/// Open client connections per worker thread, as `mfa_gateway_worker_connections{worker=N}`.
///
/// The TLS listener counts here from the moment it hands a connection to a worker until the
/// connection ends (TLS handshake, idle and parked time included), and reads the same counts
/// to choose the least-loaded worker; so the gauge is exactly what that choice sees.
#[derive(Debug)]
pub struct WorkerGauges {
    open: Box<[AtomicUsize]>,
}

impl WorkerGauges {
    pub fn new(workers: usize) -> Self {
        Self {
            open: (0..workers).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    /// How many workers are counted.
    pub fn workers(&self) -> usize {
        self.open.len()
    }

    /// Open connections of `worker` (0 for a worker that is not counted).
    pub fn get(&self, worker: usize) -> usize {
        self.open.get(worker).map_or(0, |c| c.load(Relaxed))
    }

    /// A connection was handed to `worker`.
    pub fn opened(&self, worker: usize) {
        if let Some(c) = self.open.get(worker) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// A connection of `worker` ended.
    pub fn closed(&self, worker: usize) {
        if let Some(c) = self.open.get(worker) {
            c.fetch_sub(1, Relaxed);
        }
    }
}

fn kind_index(kind: ErrorKind) -> usize {
    ErrorKind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(ErrorKind::ALL.len() - 1)
}

impl Metrics {
    pub fn new() -> Self {
        let m = Self::default();
        m.policy_ok.store(1, Relaxed);
        m
    }

    pub fn request(&self, kind: RequestKind, outcome: Outcome, elapsed: Duration) {
        let idx = OUTCOMES
            .iter()
            .position(|(o, _)| *o == outcome)
            .unwrap_or(0);
        if let Some(c) = self.requests.get(idx) {
            c.fetch_add(1, Relaxed);
        }
        self.latency[kind as usize].observe(elapsed);
    }

    /// A request to the VMS failed (`kind`: one of the `upstream_*` kinds).
    pub fn upstream_failure(&self, kind: ErrorKind) {
        if let Some(c) = self.upstream_errors.get(kind_index(kind)) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// A request was answered with an error of `kind`.
    pub fn error_answered(&self, kind: ErrorKind) {
        if let Some(c) = self.errors.get(kind_index(kind)) {
            c.fetch_add(1, Relaxed);
        }
    }

    pub fn connection_opened(&self) {
        self.open_connections.fetch_add(1, Relaxed);
    }
    pub fn connection_closed(&self) {
        self.open_connections.fetch_sub(1, Relaxed);
    }
    /// An idle HTTP/1.1 connection released hyper's buffers (`parked`) or resumed.
    pub fn connection_parked(&self, parked: bool) {
        if parked {
            self.parked_connections.fetch_add(1, Relaxed);
        } else {
            self.parked_connections.fetch_sub(1, Relaxed);
        }
    }
    pub fn parked_connections(&self) -> i64 {
        self.parked_connections.load(Relaxed)
    }
    pub fn open_connections(&self) -> i64 {
        self.open_connections.load(Relaxed)
    }
    /// Starts counting connections for `workers` worker threads (replacing an earlier set);
    /// the returned gauges are the ones to update.
    pub fn register_workers(&self, workers: usize) -> Arc<WorkerGauges> {
        let gauges = Arc::new(WorkerGauges::new(workers));
        self.workers.store(Some(Arc::clone(&gauges)));
        gauges
    }
    pub fn tunnel_opened(&self) {
        self.open_tunnels.fetch_add(1, Relaxed);
    }
    pub fn tunnel_closed(&self) {
        self.open_tunnels.fetch_sub(1, Relaxed);
    }
    pub fn handshake_failed(&self) {
        self.tls_handshake_failures.fetch_add(1, Relaxed);
    }
    pub fn mfa(&self, e: MfaEvent) {
        if let Some(c) = EVENTS
            .iter()
            .position(|(x, _)| *x == e)
            .and_then(|i| self.mfa_events.get(i))
        {
            c.fetch_add(1, Relaxed);
        }
    }
    pub fn mfa_count(&self, e: MfaEvent) -> u64 {
        EVENTS
            .iter()
            .position(|(x, _)| *x == e)
            .and_then(|i| self.mfa_events.get(i))
            .map_or(0, |c| c.load(Relaxed))
    }
    pub fn cert_reload_failed(&self) {
        self.cert_reload_failures.fetch_add(1, Relaxed);
    }
    pub fn policy_reload(&self, ok: bool) {
        if !ok {
            self.policy_reload_failures.fetch_add(1, Relaxed);
        }
        self.policy_ok.store(u64::from(ok), Relaxed);
    }
    pub fn policy_ok(&self) -> bool {
        self.policy_ok.load(Relaxed) == 1
    }
    pub fn store_up(&self, up: bool) {
        self.store_up.store(u64::from(up), Relaxed);
    }
    pub fn sign_ins_from_one_address(&self, one: bool) {
        self.sign_ins_from_one_address
            .store(u64::from(one), Relaxed);
    }

    /// The Prometheus text exposition format.
    /// `mfa_gateway_build_info` and the process's resident memory and open descriptors
    /// (Linux: read from `/proc/self`; left out where that cannot be read).
    fn render_process(&self, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "# HELP mfa_gateway_build_info The running version (the value is always 1)."
        )?;
        writeln!(out, "# TYPE mfa_gateway_build_info gauge")?;
        writeln!(
            out,
            "mfa_gateway_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )?;
        if let Some(rss) = resident_bytes() {
            writeln!(
                out,
                "# HELP process_resident_memory_bytes Resident memory of the process."
            )?;
            writeln!(out, "# TYPE process_resident_memory_bytes gauge")?;
            writeln!(out, "process_resident_memory_bytes {rss}")?;
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            writeln!(
                out,
                "# HELP process_open_fds Open file descriptors of the process."
            )?;
            writeln!(out, "# TYPE process_open_fds gauge")?;
            writeln!(out, "process_open_fds {}", dir.count())?;
        }
        Ok(())
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let _ = self.render_into(&mut out);
        out
    }

    /// The VMS answered a request's head after `elapsed`.
    pub fn vms_response(&self, elapsed: Duration) {
        self.vms_latency.observe(elapsed);
    }

    /// The revocation feed's poll (the gateway's regular look at Redis) took `elapsed`.
    pub fn store_poll(&self, elapsed: Duration) {
        self.store_poll_micros
            .store(elapsed.as_micros().min(u64::MAX as u128) as u64, Relaxed);
    }

    /// A VMS login the gateway saw through: the user's policy role (or `unmapped`), the
    /// role's MFA state, and what came next (`released` without a code, `offer`, `enroll`,
    /// `code`). Roles are the policy's (a small, fixed set), so the label set stays bounded.
    pub fn login(&self, role: &str, state: &'static str, next: &'static str) {
        if let Ok(mut m) = self.logins.lock() {
            *m.entry((role.to_string(), state, next)).or_insert(0) += 1;
        }
    }

    /// Registers what writes the process's facts (once; later calls are ignored). It is
    /// called at every scrape and writes whole metric families in the text format.
    pub fn set_facts(&self, write: impl Fn(&mut String) + Send + Sync + 'static) {
        let _ = self.facts.0.set(Box::new(write));
    }

    fn render_into(&self, out: &mut String) -> std::fmt::Result {
        self.render_process(out)?;
        if let Some(write) = self.facts.0.get() {
            write(out);
        }
        writeln!(
            out,
            "# HELP mfa_gateway_requests_total Requests handled, by outcome."
        )?;
        writeln!(out, "# TYPE mfa_gateway_requests_total counter")?;
        for ((_, name), c) in OUTCOMES.iter().zip(&self.requests) {
            writeln!(
                out,
                "mfa_gateway_requests_total{{outcome=\"{name}\"}} {}",
                c.load(Relaxed)
            )?;
        }
        writeln!(
            out,
            "# HELP mfa_gateway_request_duration_seconds Time from request head to response head."
        )?;
        writeln!(out, "# TYPE mfa_gateway_request_duration_seconds histogram")?;
        for ((_, kind), l) in RequestKind::ALL.iter().zip(&self.latency) {
            l.render(
                out,
                "mfa_gateway_request_duration_seconds",
                &format!("kind=\"{kind}\","),
            )?;
        }
        writeln!(
            out,
            "# HELP mfa_gateway_vms_response_seconds Time from sending a request to the VMS to its answer's head."
        )?;
        writeln!(out, "# TYPE mfa_gateway_vms_response_seconds histogram")?;
        self.vms_latency
            .render(out, "mfa_gateway_vms_response_seconds", "")?;
        writeln!(
            out,
            "# HELP mfa_gateway_store_poll_seconds How long the last poll of the revocation feed in Redis took."
        )?;
        writeln!(out, "# TYPE mfa_gateway_store_poll_seconds gauge")?;
        writeln!(
            out,
            "mfa_gateway_store_poll_seconds {}",
            self.store_poll_micros.load(Relaxed) as f64 / 1e6
        )?;
        writeln!(
            out,
            "# HELP mfa_gateway_logins_total VMS logins by policy role, MFA state and what came next."
        )?;
        writeln!(out, "# TYPE mfa_gateway_logins_total counter")?;
        if let Ok(m) = self.logins.lock() {
            for ((role, state, next), n) in m.iter() {
                let role = label_value(role);
                writeln!(
                    out,
                    "mfa_gateway_logins_total{{role=\"{role}\",state=\"{state}\",next=\"{next}\"}} {n}"
                )?;
            }
        }
        writeln!(
            out,
            "# HELP mfa_gateway_upstream_errors_total Failed requests to the VMS, by kind (the operations guide's error table)."
        )?;
        writeln!(out, "# TYPE mfa_gateway_upstream_errors_total counter")?;
        for (kind, c) in ErrorKind::ALL.iter().zip(&self.upstream_errors) {
            if let Some(k) = kind.as_str().strip_prefix("upstream_") {
                writeln!(
                    out,
                    "mfa_gateway_upstream_errors_total{{kind=\"{k}\"}} {}",
                    c.load(Relaxed)
                )?;
            }
        }
        writeln!(
            out,
            "# HELP mfa_gateway_errors_total Requests answered with an error, by kind (the operations guide's error table)."
        )?;
        writeln!(out, "# TYPE mfa_gateway_errors_total counter")?;
        for (kind, c) in ErrorKind::ALL.iter().zip(&self.errors) {
            writeln!(
                out,
                "mfa_gateway_errors_total{{kind=\"{}\"}} {}",
                kind.as_str(),
                c.load(Relaxed)
            )?;
        }
        gauge(
            out,
            "mfa_gateway_open_connections",
            "Client connections currently open.",
            self.open_connections.load(Relaxed),
        )?;
        gauge(
            out,
            "mfa_gateway_parked_connections",
            "Idle HTTP/1.1 keep-alive connections waiting without request buffers.",
            self.parked_connections.load(Relaxed),
        )?;
        writeln!(
            out,
            "# HELP mfa_gateway_worker_connections Client connections held by each worker thread, in TLS handshake, busy, idle or parked."
        )?;
        writeln!(out, "# TYPE mfa_gateway_worker_connections gauge")?;
        // No samples until the TLS listener has registered its workers.
        if let Some(w) = self.workers.load_full() {
            for i in 0..w.workers() {
                writeln!(
                    out,
                    "mfa_gateway_worker_connections{{worker=\"{i}\"}} {}",
                    w.get(i)
                )?;
            }
        }
        gauge(
            out,
            "mfa_gateway_open_tunnels",
            "Upgraded (WebSocket) tunnels currently open.",
            self.open_tunnels.load(Relaxed),
        )?;
        counter(
            out,
            "mfa_gateway_tls_handshake_failures_total",
            "TLS handshakes that failed or timed out.",
            self.tls_handshake_failures.load(Relaxed),
        )?;
        writeln!(
            out,
            "# HELP mfa_gateway_mfa_events_total MFA events, by kind."
        )?;
        writeln!(out, "# TYPE mfa_gateway_mfa_events_total counter")?;
        for ((_, name), c) in EVENTS.iter().zip(&self.mfa_events) {
            writeln!(
                out,
                "mfa_gateway_mfa_events_total{{event=\"{name}\"}} {}",
                c.load(Relaxed)
            )?;
        }
        counter(
            out,
            "mfa_gateway_cert_reload_failures_total",
            "Certificate reloads that failed (the old certificate stays).",
            self.cert_reload_failures.load(Relaxed),
        )?;
        counter(
            out,
            "mfa_gateway_policy_reload_failures_total",
            "Policy reloads that failed (the old policy stays).",
            self.policy_reload_failures.load(Relaxed),
        )?;
        gauge(
            out,
            "mfa_gateway_policy_file_valid",
            "1 when the policy file on disk was loaded, 0 when its last reload failed.",
            self.policy_ok.load(Relaxed) as i64,
        )?;
        gauge(
            out,
            "mfa_gateway_store_up",
            "1 when the shared store (Redis) answered its last check.",
            self.store_up.load(Relaxed) as i64,
        )?;
        gauge(
            out,
            "mfa_gateway_sign_ins_from_one_address",
            "1 when every recent sign-in (3 or more users, 24 h) came from one address while server.trusted_proxies is empty.",
            self.sign_ins_from_one_address.load(Relaxed) as i64,
        )?;
        writeln!(
            out,
            "# HELP mfa_gateway_mail_jobs_total Mail jobs by what became of them (queued, sent, retry, dead, skipped, enqueue_failed)."
        )?;
        writeln!(out, "# TYPE mfa_gateway_mail_jobs_total counter")?;
        for ((_, name), c) in MAIL_RESULTS.iter().zip(&self.mail) {
            writeln!(
                out,
                "mfa_gateway_mail_jobs_total{{result=\"{name}\"}} {}",
                c.load(Relaxed)
            )?;
        }
        writeln!(
            out,
            "# HELP mfa_gateway_mail_outbox_jobs Mail jobs waiting in the outbox, and in its dead list."
        )?;
        writeln!(out, "# TYPE mfa_gateway_mail_outbox_jobs gauge")?;
        for (list, c) in ["queued", "dead"].iter().zip(&self.mail_outbox) {
            writeln!(
                out,
                "mfa_gateway_mail_outbox_jobs{{list=\"{list}\"}} {}",
                c.load(Relaxed)
            )?;
        }
        Ok(())
    }

    /// A mail job went one step further.
    pub fn mail(&self, r: MailResult) {
        if let Some(c) = MAIL_RESULTS
            .iter()
            .position(|(x, _)| *x == r)
            .and_then(|i| self.mail.get(i))
        {
            c.fetch_add(1, Relaxed);
        }
    }

    pub fn mail_count(&self, r: MailResult) -> u64 {
        MAIL_RESULTS
            .iter()
            .position(|(x, _)| *x == r)
            .and_then(|i| self.mail.get(i))
            .map_or(0, |c| c.load(Relaxed))
    }

    /// The outbox's length and the dead list's, as last read.
    pub fn mail_outbox(&self, queued: u64, dead: u64) {
        let [q, d] = &self.mail_outbox;
        q.store(queued, Relaxed);
        d.store(dead, Relaxed);
    }
}

/// What became of a mail job, as counted in `mfa_gateway_mail_jobs_total{result=...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailResult {
    /// Added to the outbox.
    Queued,
    /// Accepted by the mail server.
    Sent,
    /// A delivery failed; tried again later.
    Retry,
    /// Given up after `mail.max_attempts` (moved to the dead list).
    Dead,
    /// Not sent: no address known for the user, or an e-mailed code that expired.
    Skipped,
    /// The outbox could not take it (the store failed); the change itself went on.
    EnqueueFailed,
}

const MAIL_RESULTS: [(MailResult, &str); 6] = [
    (MailResult::Queued, "queued"),
    (MailResult::Sent, "sent"),
    (MailResult::Retry, "retry"),
    (MailResult::Dead, "dead"),
    (MailResult::Skipped, "skipped"),
    (MailResult::EnqueueFailed, "enqueue_failed"),
];

fn gauge(out: &mut String, name: &str, help: &str, v: i64) -> std::fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} gauge")?;
    writeln!(out, "{name} {v}")
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) -> std::fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} counter")?;
    writeln!(out, "{name} {v}")
}

/// A label value in the Prometheus text format: backslash and quote escaped, a line break
/// written as `\n`.
pub fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Resident memory from `/proc/self/status` (`VmRSS`, in kB).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let m = Metrics::new();
        m.request(
            RequestKind::Proxied,
            Outcome::Proxied,
            Duration::from_micros(300),
        );
        m.request(
            RequestKind::Proxied,
            Outcome::Proxied,
            Duration::from_millis(3),
        );
        m.request(
            RequestKind::Proxied,
            Outcome::UpstreamError,
            Duration::from_secs(20),
        );
        m.request(
            RequestKind::Probe,
            Outcome::Gateway,
            Duration::from_micros(50),
        );
        m.login("customer", "enforced", "code");
        m.login("customer", "enforced", "code");
        m.login("supplier", "none", "released");
        m.upstream_failure(ErrorKind::UpstreamTimeout);
        m.error_answered(ErrorKind::UpstreamTimeout);
        m.connection_opened();
        m.mfa(MfaEvent::Replay);
        let text = m.render();
        assert!(
            text.contains("mfa_gateway_requests_total{outcome=\"proxied\"} 2"),
            "{text}"
        );
        assert!(text.contains("mfa_gateway_requests_total{outcome=\"upstream_error\"} 1"));
        let bucket = |kind: &str, le: &str, n: u64| {
            format!(
                "mfa_gateway_request_duration_seconds_bucket{{kind=\"{kind}\",le=\"{le}\"}} {n}\n"
            )
        };
        assert!(text.contains(&bucket("proxied", "0.0005", 1)), "{text}");
        assert!(text.contains(&bucket("proxied", "0.005", 2)));
        assert!(text.contains(&bucket("proxied", "10", 2)));
        assert!(text.contains(&bucket("proxied", "+Inf", 3)));
        // The probe is counted apart.
        assert!(text.contains(&bucket("probe", "0.0005", 1)), "{text}");
        assert!(text.contains(&bucket("probe", "+Inf", 1)));
        assert!(text.contains(&bucket("gateway", "+Inf", 0)));
        assert!(text.contains("mfa_gateway_request_duration_seconds_count{kind=\"proxied\"} 3\n"));
        assert!(text.contains("mfa_gateway_upstream_errors_total{kind=\"timeout\"} 1"));
        assert!(text.contains("mfa_gateway_open_connections 1"));
        assert!(text.contains("mfa_gateway_mfa_events_total{event=\"replay_rejected\"} 1"));
        assert!(text.contains(
            "mfa_gateway_logins_total{role=\"customer\",state=\"enforced\",next=\"code\"} 2\n"
        ));
        assert!(text.contains(
            "mfa_gateway_logins_total{role=\"supplier\",state=\"none\",next=\"released\"} 1\n"
        ));
    }

    #[test]
    fn worker_connections_are_counted_once_registered() {
        let m = Metrics::new();
        let before = m.render();
        assert!(before.contains("# TYPE mfa_gateway_worker_connections gauge\n"));
        assert!(
            !before.contains("mfa_gateway_worker_connections{"),
            "no workers, no samples"
        );
        let w = m.register_workers(3);
        w.opened(0);
        w.opened(0);
        w.opened(2);
        w.opened(2);
        w.closed(2);
        w.opened(7); // not a worker: ignored
        let text = m.render();
        assert!(
            text.contains(
                "# HELP mfa_gateway_worker_connections Client connections held by each worker thread"
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE mfa_gateway_worker_connections gauge\n"));
        assert!(text.contains("mfa_gateway_worker_connections{worker=\"0\"} 2\n"));
        assert!(text.contains("mfa_gateway_worker_connections{worker=\"1\"} 0\n"));
        assert!(text.contains("mfa_gateway_worker_connections{worker=\"2\"} 1\n"));
        assert!(!text.contains("worker=\"3\""));
        assert_eq!(w.get(7), 0);
        assert_eq!(text.matches("mfa_gateway_worker_connections{").count(), 3);
    }

    #[test]
    fn registering_again_replaces_the_workers() {
        let m = Metrics::new();
        m.register_workers(4).opened(3);
        let w = m.register_workers(2);
        w.opened(1);
        let text = m.render();
        assert_eq!(text.matches("mfa_gateway_worker_connections{").count(), 2);
        assert!(text.contains("mfa_gateway_worker_connections{worker=\"1\"} 1\n"));
    }

    #[test]
    fn label_values_are_escaped_as_the_text_format_says() {
        assert_eq!(label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(label_value("msp"), "msp");
    }
}
