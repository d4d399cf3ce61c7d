//! Start-up and the process lifecycle: from a validated [`Config`] to running listeners and
//! background tasks (certificate and policy watchers, revocation feed, session sweeper), and
//! the signals an operator uses: SIGHUP reloads certificate and policy, SIGTERM or Ctrl-C
//! shuts down gracefully.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::auth::crypto::{self, KeyRing};
use crate::clock::Clock;
use crate::config::Config;
use crate::gateway::Gateway;
use crate::live_policy::LivePolicy;
use crate::server::Listeners;
use crate::store::{Store, memory::MemoryStore, redis::RedisStore};
use crate::tls::{CertPaths, ReloadingCert};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("mfa.keys: {0}")]
    Keys(String),
    #[error("policy.file: {0}")]
    Policy(String),
    #[error("tls: {0}")]
    Tls(String),
    #[error("upstream: {0}")]
    Upstream(String),
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    #[error("webauthn: {0}")]
    Webauthn(String),
}

/// The origin passkeys are bound to must be a name the gateway's certificate covers: a
/// browser reaches it there, and a certificate without it means the origin is mistyped (or
/// the gateway is not the public endpoint it names).
fn check_origin_name(
    w: &crate::config::Webauthn,
    cert: &rustls::sign::CertifiedKey,
) -> Result<(), StartError> {
    let refuse = |why: String| StartError::Webauthn(format!("webauthn.origin {}: {why}", w.origin));
    let leaf = cert
        .cert
        .first()
        .ok_or_else(|| refuse("the certificate chain is empty".into()))?;
    let parsed = rustls::server::ParsedCertificate::try_from(leaf)
        .map_err(|e| refuse(format!("the certificate does not parse: {e}")))?;
    let name = rustls_pki_types::ServerName::try_from(w.host.clone())
        .map_err(|e| refuse(format!("not a host name: {e}")))?;
    rustls::client::verify_server_name(&parsed, &name).map_err(|_| {
        refuse(format!(
            "the certificate in [tls] does not cover {:?}: passkeys are bound to the name users reach the gateway by",
            w.host
        ))
    })
}

/// How to start, beyond the configuration.
#[derive(Debug, Default)]
pub struct Options {
    pub clock: Clock,
    /// A pre-bound HTTPS listener (tests bind port 0).
    pub https_listener: Option<TcpListener>,
    /// Demo mode: a random key and a development certificate when none is configured.
    pub demo: bool,
    /// Where the demo keeps its development certificate.
    pub dev_cert_dir: Option<PathBuf>,
    /// Use this store instead of building one from the configuration.
    pub store: Option<Store>,
}

pub struct Running {
    pub gateway: Arc<Gateway>,
    pub listeners: Listeners,
    pub cert: Arc<ReloadingCert>,
    /// The development CA, when a development certificate was made.
    pub dev_ca: Option<PathBuf>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// SIGHUP: re-read the certificate and the policy. Failures keep what is in force.
    /// The certificate's lines are the file watcher's (`tls::reload`), with `trigger=SIGHUP`,
    /// so an operator looks for one line whichever way the new files were found.
    pub fn reload(&self) {
        let cert = self.cert.paths().cert.display().to_string();
        let not_after = || {
            self.cert
                .not_after()
                .map_or_else(|| "unknown".to_string(), |t| t.to_string())
        };
        match self.cert.reload() {
            Ok(true) => tracing::info!(
                trigger = "SIGHUP",
                cert,
                not_after = not_after(),
                "TLS certificate reloaded; new connections use it"
            ),
            Ok(false) => tracing::info!(
                trigger = "SIGHUP",
                cert,
                not_after = not_after(),
                "TLS certificate unchanged: the files are as last read"
            ),
            Err(e) => {
                self.gateway.metrics.cert_reload_failed();
                tracing::error!(
                    trigger = "SIGHUP",
                    error = %e,
                    "TLS certificate reload failed; still serving the previous certificate"
                );
            }
        }
        let _ = self.gateway.policy.reload(&self.gateway.metrics);
    }

    pub async fn shutdown(self) {
        self.listeners.shutdown().await;
        for t in self.tasks {
            t.abort();
        }
    }
}

/// The demo's key: made once and kept beside the development certificate, so enrollments
/// stored in a real Redis still open after the demo restarts.
fn demo_key(dir: Option<&std::path::Path>) -> Result<String, StartError> {
    let Some(dir) = dir else {
        return Ok(crypto::generate_key_material());
    };
    let path = dir.join("demo.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(text);
    }
    let text = crypto::generate_key_material();
    std::fs::create_dir_all(dir)
        .map_err(|e| StartError::Keys(format!("{}: {e}", dir.display())))?;
    std::fs::write(&path, &text)
        .map_err(|e| StartError::Keys(format!("{}: {e}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    tracing::warn!(file = %path.display(), "DEMO: made a development key; never use it in production");
    Ok(text)
}

/// The metric families [`write_facts`] adds to every scrape (checked against the docs and
/// alert rules by the test suite, and against a running gateway's output).
pub const FACT_METRICS: [&str; 3] = [
    "mfa_gateway_cert_not_after_seconds",
    "mfa_gateway_active_key_info",
    "mfa_gateway_policy_phase_info",
];

/// The facts behind `mfa_gateway_cert_not_after_seconds`, `mfa_gateway_active_key_info` and
/// `mfa_gateway_policy_phase_info`, read at each scrape (a reloaded certificate or policy
/// shows at once). Key ids and phase names are labels an operator chose; nothing secret.
fn write_facts(
    out: &mut String,
    cert: &ReloadingCert,
    policy: &LivePolicy,
    key_id: &str,
    now: jiff::Timestamp,
) {
    use std::fmt::Write as _;
    let label = crate::metrics::label_value;
    if let Some(not_after) = cert.not_after() {
        let _ = writeln!(
            out,
            "# HELP mfa_gateway_cert_not_after_seconds Expiry of the served TLS certificate (Unix time).\n\
             # TYPE mfa_gateway_cert_not_after_seconds gauge\n\
             mfa_gateway_cert_not_after_seconds {}",
            not_after.as_second()
        );
    }
    let _ = writeln!(
        out,
        "# HELP mfa_gateway_active_key_info The key new secrets and approvals are sealed with (the value is always 1).\n\
         # TYPE mfa_gateway_active_key_info gauge\n\
         mfa_gateway_active_key_info{{key_id=\"{}\"}} 1",
        label(key_id)
    );
    let phase = policy
        .current()
        .phase_label_at(now)
        .unwrap_or_else(|| "none".to_string());
    let _ = writeln!(
        out,
        "# HELP mfa_gateway_policy_phase_info The policy phase in force (the value is always 1).\n\
         # TYPE mfa_gateway_policy_phase_info gauge\n\
         mfa_gateway_policy_phase_info{{phase=\"{}\"}} 1",
        label(&phase)
    );
}

pub fn key_ring(cfg: &Config, demo: bool) -> Result<KeyRing, StartError> {
    key_ring_with(cfg, demo, None)
}

fn key_ring_with(
    cfg: &Config,
    demo: bool,
    demo_dir: Option<&std::path::Path>,
) -> Result<KeyRing, StartError> {
    if cfg.mfa.keys.is_empty() {
        if !demo {
            return Err(StartError::Keys("no key configured".into()));
        }
        let material = crypto::parse_key_material(&demo_key(demo_dir)?)
            .map_err(|e| StartError::Keys(e.to_string()))?;
        return KeyRing::new("demo", vec![("demo".into(), material)])
            .map_err(|e| StartError::Keys(e.to_string()));
    }
    let mut keys = Vec::new();
    for k in &cfg.mfa.keys {
        let material = crypto::parse_key_material(&k.material)
            .map_err(|e| StartError::Keys(format!("key {:?}: {e}", k.id)))?;
        keys.push((k.id.clone(), material));
    }
    KeyRing::new(&cfg.mfa.active_key, keys).map_err(|e| StartError::Keys(e.to_string()))
}

/// Builds the store from the configuration; in demo mode falls back to memory, loudly.
pub async fn store_for(cfg: &Config) -> Store {
    let redis = Store::Redis(RedisStore::new(&cfg.redis));
    if cfg.redis.memory_fallback
        && let Err(e) = redis.ping().await
    {
        tracing::warn!(error = %e, "*** Redis does not answer: using the IN-MEMORY store. Nothing is shared or kept. Demo only. ***");
        return Store::Memory(MemoryStore::new());
    }
    redis
}

pub async fn start(cfg: Config, opts: Options) -> Result<Running, StartError> {
    crate::tls::install_crypto_provider();
    let keys = key_ring_with(&cfg, opts.demo, opts.dev_cert_dir.as_deref())?;
    let store = match opts.store {
        Some(s) => s,
        None => store_for(&cfg).await,
    };
    if let Err(e) = store.ping().await {
        tracing::warn!(error = %e, "the store does not answer yet; logins that need MFA get 503 until it does");
    }
    let policy = LivePolicy::load(cfg.policy.file.clone()).map_err(StartError::Policy)?;
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    cfg.check_policy_roles(policy.current().roles())
        .map_err(|e| StartError::Policy(format!("roles that are not in the policy file:\n{e}")))?;
    if !cfg.vms.identity_from_vms() {
        tracing::warn!(
            "the VMS reports no user name (vms.role): the name typed at login is trusted; see `check-config`"
        );
    }
    let (cert_paths, dev_ca) = match (&cfg.tls.cert, &cfg.tls.key) {
        (Some(c), Some(k)) => (
            CertPaths {
                cert: c.clone(),
                key: k.clone(),
            },
            None,
        ),
        _ => {
            let dir = opts
                .dev_cert_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("certs/dev"));
            let files = crate::tls::devcert::ensure(&dir, &[], jiff::Timestamp::now())
                .map_err(|e| StartError::Tls(e.to_string()))?;
            (files.server, Some(files.ca))
        }
    };
    let cert = ReloadingCert::load(cert_paths).map_err(|e| StartError::Tls(e.to_string()))?;
    if let Some(w) = &cfg.webauthn {
        check_origin_name(w, &cert.current())?;
    }
    if policy.current().uses_webauthn() && cfg.webauthn.is_none() {
        return Err(StartError::Policy(
            "the policy counts passkeys (methods = [\"webauthn\"]) but the configuration has no [webauthn] section".into(),
        ));
    }
    let tls =
        crate::tls::server_config(Arc::clone(&cert) as Arc<dyn rustls::server::ResolvesServerCert>)
            .map_err(|e| StartError::Tls(e.to_string()))?;
    let cfg = Arc::new(cfg);
    let gateway = Gateway::new(
        Arc::clone(&cfg),
        keys,
        store.clone(),
        Arc::clone(&policy),
        opts.clock.clone(),
    )
    .map_err(StartError::Upstream)?;
    policy.set_audit(gateway.audit.clone());
    gateway.metrics.set_facts({
        let (cert, policy, clock) = (Arc::clone(&cert), Arc::clone(&policy), opts.clock.clone());
        let key_id = gateway.keys.active_id().to_string();
        move |out: &mut String| write_facts(out, &cert, &policy, &key_id, clock.timestamp())
    });
    gateway
        .revocations
        .poll_once(&store, gateway.clock.unix())
        .await;
    let listeners = crate::server::bind(Arc::clone(&gateway), tls, opts.https_listener).await?;
    if let Some(w) = &cfg.webauthn
        && w.port != listeners.https.port()
        && w.port != cfg.server.public_port
    {
        return Err(StartError::Webauthn(format!(
            "webauthn.origin {} names port {}, but the gateway listens on port {} (server.public_port {}): browsers would refuse every passkey",
            w.origin,
            w.port,
            listeners.https.port(),
            cfg.server.public_port
        )));
    }
    let shutdown = listeners.shutdown_signal();
    let mut tasks = vec![
        cert.spawn_watcher(cfg.tls.watch_interval, shutdown.clone(), {
            let metrics = Arc::clone(&gateway.metrics);
            move || metrics.cert_reload_failed()
        }),
        policy.spawn_watcher(
            Arc::clone(&gateway.metrics),
            cfg.policy.watch_interval,
            shutdown.clone(),
        ),
        gateway.revocations.spawn_poller(
            store.clone(),
            gateway.clock.clone(),
            cfg.mfa.revocation_poll,
            Arc::clone(&gateway.metrics),
            shutdown.clone(),
        ),
    ];
    let upstream = gateway.upstream.clone();
    tasks.push(crate::periodic::spawn_every(
        (cfg.upstream.pool_idle_timeout / 2).max(Duration::from_secs(1)),
        shutdown.clone(),
        move || {
            upstream.evict_idle();
            std::future::ready(())
        },
    ));
    // Open WebSocket tunnels end with their session's approval (logout, reset, expiry, a
    // policy that now needs MFA), checked as often as the revocation feed is read.
    let gw = Arc::clone(&gateway);
    tasks.push(crate::periodic::spawn_every(
        cfg.mfa.revocation_poll,
        shutdown.clone(),
        move || {
            let now = gw.clock.unix();
            let closed = gw
                .tunnels
                .sweep(|a| a.expires > now && gw.still_valid(a, now));
            if closed > 0 {
                tracing::info!(closed, "closed WebSocket tunnels whose approval ended");
            }
            std::future::ready(())
        },
    ));
    let gw = Arc::clone(&gateway);
    tasks.push(crate::periodic::spawn_every(
        crate::gate::sign_in_addresses::CHECK_EVERY,
        shutdown.clone(),
        move || {
            gw.check_sign_in_addresses(gw.clock.unix());
            std::future::ready(())
        },
    ));
    if let Some(t) = mail_sender(&gateway, &cfg, &policy, shutdown.clone()) {
        tasks.push(t);
    }
    tasks.extend(crate::mfa::sweeper::spawn(
        Arc::clone(&gateway),
        Duration::from_secs(5),
        shutdown,
    ));
    let plain =
        |a: Option<std::net::SocketAddr>| a.map_or_else(|| "off".to_string(), |a| a.to_string());
    let phase = policy
        .current()
        .phase_label_at(gateway.clock.timestamp())
        .unwrap_or_else(|| "none".to_string());
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        https = %listeners.https,
        redirect = %plain(listeners.redirect),
        metrics = %plain(listeners.metrics),
        upstream = %cfg.upstream.url,
        store = store.kind(),
        active_key = gateway.keys.active_id(),
        keys = %gateway.keys.key_ids().collect::<Vec<_>>().join(","),
        policy_phase = %phase,
        "mfa-gateway listening"
    );
    Ok(Running {
        gateway,
        listeners,
        cert,
        dev_ca,
        tasks,
    })
}

/// Starts the mail sender, with `[mail]` (see `mail::sender`). A transport that cannot be
/// built (an unreadable `mail.ca`) is logged; the gateway runs on and mails wait in the
/// outbox.
fn mail_sender(
    gateway: &Arc<Gateway>,
    cfg: &Config,
    policy: &Arc<LivePolicy>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let m = cfg.mail.as_ref()?;
    let outbox = gateway.mail.clone()?;
    tracing::info!("{}", cfg.mail_note());
    let smtp = match crate::mail::sender::Smtp::new(m) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "the mail transport could not be set up: mails wait in the outbox");
            return None;
        }
    };
    let policy = Arc::clone(policy);
    let sender = crate::mail::sender::Sender {
        outbox,
        deliver: Arc::new(smtp),
        keys: Arc::clone(&gateway.keys),
        metrics: Arc::clone(&gateway.metrics),
        clock: gateway.clock.clone(),
        sched: crate::clock::Clock::System,
        tz: Arc::new(move || {
            jiff::tz::TimeZone::get(policy.current().timezone_name())
                .unwrap_or(jiff::tz::TimeZone::UTC)
        }),
        help: m.help_line.clone(),
        product: cfg.mfa.product_name.clone(),
        language: crate::pages::Lang::from_code(&m.language).unwrap_or(crate::pages::Lang::En),
        max_attempts: m.max_attempts,
        retry_after: m.retry_after,
        timeout: m.timeout,
        dead_keep: 1000,
    };
    Some(crate::mail::sender::spawn(sender, shutdown))
}

/// Runs until SIGTERM or Ctrl-C; SIGHUP reloads certificate and policy.
pub async fn run_until_signal(running: Running) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup()).ok();
        let mut term = signal(SignalKind::terminate()).ok();
        loop {
            tokio::select! {
                _ = async { match hup.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending::<()>().await } } => {
                    tracing::info!("SIGHUP: reloading certificate and policy");
                    running.reload();
                }
                _ = async { match term.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending::<()>().await } } => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutting down: no new connections; waiting for requests in flight");
    running.shutdown().await;
}
