//! Test fixtures: a private redis-server, an echo upstream, the gateway, a browser-like client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use mfa_gateway::clock::Clock;
use mfa_gateway::config::{Config, Mode};
use mfa_gateway::run::{Options, Running, start};

/// A redis-server of our own: own port, own data directory, killed on drop.
pub struct RedisProc {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    /// Extra arguments (TLS, password).
    extra: Vec<String>,
}

/// A loopback port nobody listens on, for a server a test starts (redis-server, the gateway
/// binary) that binds it a moment later.
///
/// Chosen below Linux's ephemeral range (32768-60999), where the kernel takes the local ports
/// of outgoing connections: a port asked of the kernel with `bind(0)` comes from that range,
/// and the many client connections of tests running in parallel could take it between this
/// check and the server's own bind ("Address already in use"). Ports are handed out in turn
/// from a per-process starting point, so parallel tests do not pick the same one either.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let start = std::process::id().wrapping_mul(7919)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
    let _ = NEXT.compare_exchange(
        u32::MAX,
        start % COUNT,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(FIRST + n % COUNT).unwrap();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl RedisProc {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut r = RedisProc {
            port: free_port(),
            dir,
            child: None,
            extra: Vec::new(),
        };
        r.spawn();
        r
    }

    /// A server that speaks only TLS (with the given certificate files) and wants a password.
    pub fn start_tls(cert: &Path, key: &Path, ca: &Path, password: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let path = |p: &Path| p.display().to_string();
        let extra = vec![
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            path(cert),
            "--tls-key-file".into(),
            path(key),
            "--tls-ca-cert-file".into(),
            path(ca),
            "--tls-auth-clients".into(),
            "no".into(),
            "--requirepass".into(),
            password.into(),
        ];
        let mut r = RedisProc {
            port,
            dir,
            child: None,
            extra,
        };
        r.spawn();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn spawn(&mut self) {
        let plain_port = if self.extra.is_empty() {
            self.port.to_string()
        } else {
            "0".into()
        };
        let child = Command::new("redis-server")
            .args(&self.extra)
            .args([
                "--port",
                &plain_port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (the test command installs it)");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for RedisProc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Shared TLS material for one test: a development CA and a server certificate.
pub struct Certs {
    /// Keeps the files alive as long as the certificates are used.
    _dir: tempfile::TempDir,
    pub ca_pem: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn certs() -> Certs {
    certs_for(&[])
}

/// Like [`certs`], with the server certificate also valid for `extra_names`.
pub fn certs_for(extra_names: &[&str]) -> Certs {
    let dir = tempfile::tempdir().unwrap();
    let files =
        mfa_gateway::tls::devcert::write_to(dir.path(), extra_names, jiff::Timestamp::now())
            .unwrap();
    Certs {
        ca_pem: std::fs::read_to_string(files.ca).unwrap(),
        cert: files.server.cert,
        key: files.server.key,
        _dir: dir,
    }
}

pub const POLICY: &str = include_str!("../../config/policy.toml");

/// A gateway configuration for tests. `extra` is appended (more tables).
pub fn config_text(
    certs: &Certs,
    upstream: SocketAddr,
    redis_url: &str,
    vms_section: &str,
    extra: &str,
) -> String {
    let key = mfa_gateway::auth::crypto::generate_key_material();
    format!(
        r#"
version = 1
[server]
listen = "127.0.0.1:0"
shutdown_grace = "5s"
trusted_proxies = []

[tls]
cert = "{cert}"
key = "{key_file}"
watch_interval = "200ms"

[upstream]
url = "http://{upstream}"
connect_timeout = "1s"
response_timeout = "4s"
readiness_path = "/"

[redis]
url = "{redis_url}"
key_prefix = "t:"
connect_timeout = "500ms"
response_timeout = "500ms"

[mfa]
issuer = "Test VMS"
allow_inline_secrets = true
revocation_poll = "200ms"
keys = [{{ id = "k1", value = "{key}" }}]

[policy]
file = "policy.toml"
watch_interval = "200ms"

{vms_section}
{extra}
"#,
        cert = certs.cert.display(),
        key_file = certs.key.display(),
    )
}

pub const DEMO_VMS: &str = r#"
[vms]
session_cookies = ["VMSSESSION"]
logout = [{ path = "/logout" }]
end_session = { method = "GET", path = "/logout" }
[[vms.login]]
method = "POST"
path = "/login"
username_field = "username"
success_status = [302]
success_cookie = "VMSSESSION"
[vms.role]
source = "header"
header = "X-VMS-Role"
user_header = "X-VMS-User"
[vms.role.map]
Administrator = "administrator"
MSP = "msp"
Customer = "customer"
Supplier = "supplier"
IndependentContractor = "contractor"
Resource = "resource"
"#;

/// A running gateway plus what the test needs to talk to it.
pub struct Gw {
    pub running: Option<Running>,
    pub addr: SocketAddr,
    pub clock: Clock,
    pub dir: PathBuf,
    pub ca_pem: String,
}

impl Gw {
    pub fn gateway(&self) -> &Arc<mfa_gateway::gateway::Gateway> {
        &self.running.as_ref().unwrap().gateway
    }
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

/// Writes the config (and the shipped policy) into `dir` and starts a gateway.
pub async fn start_gateway(dir: &Path, config: &str, ca_pem: &str, clock: Clock) -> Gw {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    start_gateway_on(dir, config, ca_pem, clock, listener).await
}

/// [`start_gateway`] on a listener bound before (a configuration that names its port, such
/// as `webauthn.origin`).
pub async fn start_gateway_on(
    dir: &Path,
    config: &str,
    ca_pem: &str,
    clock: Clock,
    listener: tokio::net::TcpListener,
) -> Gw {
    let cfg_path = dir.join("gateway.toml");
    if !dir.join("policy.toml").exists() {
        std::fs::write(dir.join("policy.toml"), POLICY).unwrap();
    }
    std::fs::write(&cfg_path, config).unwrap();
    let cfg = Config::from_toml(config, &cfg_path, Mode::Production)
        .unwrap_or_else(|e| panic!("config: {e}"));
    let running = start(
        cfg,
        Options {
            clock: clock.clone(),
            https_listener: Some(listener),
            ..Options::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("start: {e}"));
    let addr = running.listeners.https;
    Gw {
        running: Some(running),
        addr,
        clock,
        dir: dir.to_path_buf(),
        ca_pem: ca_pem.to_string(),
    }
}

/// A browser-like client: trusts the test CA, resolves `localhost` to the gateway, keeps
/// cookies, does not follow redirects by itself (tests follow them to look at each step).
pub fn client(gw: &Gw) -> reqwest::Client {
    client_for(gw.addr, &gw.ca_pem, false)
}

pub fn client_for(addr: SocketAddr, ca_pem: &str, http2: bool) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    let mut b = reqwest::Client::builder()
        .tls_certs_only([ca])
        .resolve("localhost", addr)
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10));
    b = if http2 {
        b.http2_prior_knowledge()
    } else {
        b.http1_only()
    };
    b.build().unwrap()
}

pub fn url(gw: &Gw, path: &str) -> String {
    format!("https://localhost:{}{path}", gw.addr.port())
}

/// Unix seconds of a UTC date-time, for the manual clock.
pub fn at(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_second()
}

// ---------------------------------------------------------------------------------------------
// Redis topologies (replicas, sentinels, cluster) for the scale-out tests.

/// A `redis-server` process (data node or sentinel) with its own port and directory, killed
/// on drop.
pub struct RedisNode {
    pub port: u16,
    /// Keeps the node's files (data, sentinel configuration) as long as it runs.
    _dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisNode {
    /// A data node on a free loopback port; `extra` arguments follow the defaults
    /// (no persistence, replication without the 5 s diskless delay).
    pub fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--repl-diskless-sync-delay", "0"])
            .arg("--dir")
            .arg(dir.path())
            .args(extra);
        Self::spawn(cmd, port, dir)
    }

    /// A sentinel watching the master at `master_port` under the name `name`, quorum 2,
    /// down after 1 s, fail-over timeout 5 s.
    pub fn sentinel(name: &str, master_port: u16) -> Self {
        Self::sentinel_with(|port| {
            format!(
                "port {port}\n\
                 sentinel monitor {name} 127.0.0.1 {master_port} 2\n\
                 sentinel down-after-milliseconds {name} 1000\n\
                 sentinel failover-timeout {name} 5000\n"
            )
        })
    }

    /// A sentinel that speaks only TLS and wants `password`, watching the TLS master of
    /// [`RedisProc::start_tls`] (whose password is `master_password`) with quorum 1.
    pub fn tls_sentinel(
        name: &str,
        master_port: u16,
        c: &Certs,
        password: &str,
        master_password: &str,
    ) -> Self {
        Self::sentinel_with(|port| {
            format!(
                "port 0\ntls-port {port}\n\
                 tls-cert-file {cert}\ntls-key-file {key}\ntls-ca-cert-file {ca}\n\
                 tls-auth-clients no\ntls-replication yes\nrequirepass {password}\n\
                 sentinel monitor {name} 127.0.0.1 {master_port} 1\n\
                 sentinel auth-pass {name} {master_password}\n\
                 sentinel down-after-milliseconds {name} 1000\n",
                cert = c.cert.display(),
                key = c.key.display(),
                ca = c.cert.parent().unwrap().join("ca.pem").display(),
            )
        })
    }

    /// A sentinel on a free loopback port, in a directory of its own, with the configuration
    /// `conf(port)` gives (after `bind` and `dir`, which are set here).
    fn sentinel_with(conf: impl FnOnce(u16) -> String) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let file = dir.path().join("sentinel.conf");
        let text = format!(
            "bind 127.0.0.1\ndir {}\n{}",
            dir.path().display(),
            conf(port)
        );
        std::fs::write(&file, text).unwrap();
        let mut cmd = Command::new("redis-server");
        cmd.arg(&file).arg("--sentinel");
        Self::spawn(cmd, port, dir)
    }

    fn spawn(mut cmd: Command, port: u16, dir: tempfile::TempDir) -> Self {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (the test command installs it)");
        let node = RedisNode {
            port,
            _dir: dir,
            child: Some(child),
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return node;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not start on port {port}");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Ends the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops (SIGSTOP) or resumes (SIGCONT) the process: alive for the kernel, silent for
    /// everyone else.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().map(Child::id).unwrap();
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    }
}

impl Drop for RedisNode {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too.
        self.kill();
    }
}

/// One command to the Redis (or sentinel) on `port`, over a connection of its own with
/// timeouts, so a test never hangs on a dead or stopped server.
pub async fn redis_query<T: redis::FromRedisValue>(
    port: u16,
    args: &[&str],
) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let cfg = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(3)));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(&mut conn).await
}

/// The `field:value` lines of an `INFO` (or `CLUSTER INFO`) answer, as a lookup.
pub fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// Polls `check` until it says true, at most `limit`; returns how long it took. Each attempt
/// is itself cut off at the deadline. Panics with `what` when the time is up.
pub async fn eventually<F>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: AsyncFnMut() -> bool,
{
    let start = std::time::Instant::now();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Ok(true) = tokio::time::timeout_at(deadline, check()).await {
            return start.elapsed();
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("not within {limit:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// A Redis Cluster of `n` primaries (no replicas) on loopback, created with
/// `redis-cli --cluster create` and ready (`cluster_state:ok` on every node).
pub struct Cluster {
    pub nodes: Vec<RedisNode>,
}

impl Cluster {
    pub async fn start(n: usize) -> Self {
        let nodes: Vec<RedisNode> = (0..n)
            .map(|_| {
                // The bus port is chosen too: port + 10000 may be out of range or taken.
                let bus = free_port().to_string();
                RedisNode::start(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-port",
                    &bus,
                    "--cluster-node-timeout",
                    "5000",
                ])
            })
            .collect();
        let mut cmd = Command::new("redis-cli");
        cmd.args(["--cluster", "create"])
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = tokio::task::spawn_blocking(move || run_bounded(cmd, Duration::from_secs(60)))
            .await
            .unwrap();
        assert!(out.status.success(), "redis-cli --cluster create: {out:?}");
        let cluster = Cluster { nodes };
        for node in &cluster.nodes {
            let port = node.port;
            eventually(Duration::from_secs(30), "cluster_state:ok", async || {
                redis_query::<String>(port, &["CLUSTER", "INFO"])
                    .await
                    .is_ok_and(|i| info_field(&i, "cluster_state").as_deref() == Some("ok"))
            })
            .await;
        }
        cluster
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisNode::url).collect()
    }
}

/// Runs a command to its end, killing it if it takes longer than `limit`.
pub fn run_bounded(mut cmd: Command, limit: Duration) -> std::process::Output {
    let mut child = cmd.spawn().unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// `[redis]` lines naming several nodes, e.g. `redis_lines("cluster", &urls, None)`.
pub fn redis_lines(mode: &str, nodes: &[String], sentinel_master: Option<&str>) -> String {
    let list = nodes
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let mut s = format!("mode = \"{mode}\"\nnodes = [{list}]");
    if let Some(m) = sentinel_master {
        s.push_str(&format!("\nsentinel_master = \"{m}\""));
    }
    s
}

/// [`config_text`] with `redis` (lines such as [`redis_lines`] makes) in place of the one URL,
/// Redis timeouts of 1 s for a loaded machine, and `mfa_extra` added to `[mfa]`.
pub fn config_with_redis(
    certs: &Certs,
    upstream: SocketAddr,
    redis: &str,
    vms_section: &str,
    mfa_extra: &str,
) -> String {
    const PLACEHOLDER: &str = "redis://placeholder";
    config_text(certs, upstream, PLACEHOLDER, vms_section, "")
        .replace(&format!("url = \"{PLACEHOLDER}\""), redis)
        .replace("connect_timeout = \"500ms\"", "connect_timeout = \"1s\"")
        .replace("response_timeout = \"500ms\"", "response_timeout = \"1s\"")
        .replace(
            "revocation_poll = \"200ms\"",
            &format!("revocation_poll = \"200ms\"\n{mfa_extra}"),
        )
}

/// A client without a cookie store, for sending another browser's cookies by hand.
pub fn plain_client(addr: SocketAddr, ca_pem: &str) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .resolve("localhost", addr)
        .redirect(reqwest::redirect::Policy::none())
        .http1_only()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The browser's steps through the MFA pages against the demo VMS.
pub mod browser {
    use super::{Gw, url};
    use mfa_gateway::auth::totp;

    /// Posts the demo VMS's login form (password `demo`).
    pub async fn try_login(
        c: &reqwest::Client,
        gw: &Gw,
        user: &str,
    ) -> reqwest::Result<reqwest::Response> {
        c.post(url(gw, "/login"))
            .form(&[("username", user), ("password", "demo")])
            .send()
            .await
    }

    pub async fn login(c: &reqwest::Client, gw: &Gw, user: &str) -> reqwest::Response {
        try_login(c, gw, user).await.unwrap()
    }

    pub fn location(r: &reqwest::Response) -> String {
        r.headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    pub fn set_cookies(r: &reqwest::Response) -> Vec<String> {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    }

    pub fn sets_vms_session(r: &reqwest::Response) -> bool {
        set_cookies(r)
            .iter()
            .any(|c| c.starts_with("VMSSESSION=") && !c.starts_with("VMSSESSION=;"))
    }

    /// A `Cookie` header carrying every cookie a response set (not the removals).
    pub fn cookie_header(r: &reqwest::Response) -> String {
        set_cookies(r)
            .iter()
            .filter_map(|c| c.split(';').next())
            .filter(|nv| !nv.ends_with('='))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn csrf(html: &str) -> String {
        try_csrf(html).expect("the page has a form with a CSRF token")
    }

    pub fn try_csrf(html: &str) -> Option<String> {
        let rest = &html[html.find("name=\"csrf\"")?..];
        let v = rest.find("value=\"")? + 7;
        Some(rest[v..v + rest[v..].find('"')?].to_string())
    }

    /// The secret behind the pairing code on the enrollment page (Base32, in groups of four).
    pub fn pairing_secret(html: &str) -> Vec<u8> {
        let secret = try_pairing_secret(html).expect("the enrollment page shows a pairing code");
        assert_eq!(secret.len(), 20, "160-bit secret");
        secret
    }

    pub fn try_pairing_secret(html: &str) -> Option<Vec<u8>> {
        const TAG: &str = "<p class=\"pairing\">";
        let start = html.find(TAG)? + TAG.len();
        let code = &html[start..start + html[start..].find('<')?];
        if !code.split(' ').all(|g| g.len() == 4) {
            return None;
        }
        let compact: String = code.chars().filter(|c| *c != ' ').collect();
        totp_rs::Secret::try_from_base32(&compact)
            .ok()
            .map(|s| s.as_ref().to_vec())
    }

    /// GETs an MFA page and posts `code` with its form token.
    pub async fn post_code(
        c: &reqwest::Client,
        gw: &Gw,
        page: &str,
        code: &str,
    ) -> reqwest::Response {
        try_post_code(c, gw, page, code).await.unwrap()
    }

    pub async fn try_post_code(
        c: &reqwest::Client,
        gw: &Gw,
        page: &str,
        code: &str,
    ) -> Result<reqwest::Response, String> {
        let r = c
            .get(url(gw, page))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = r.status();
        let html = r.text().await.map_err(|e| e.to_string())?;
        let token = try_csrf(&html).ok_or(format!("{page}: {status}, no form"))?;
        c.post(url(gw, page))
            .form(&[("csrf", token.as_str()), ("code", code)])
            .send()
            .await
            .map_err(|e| e.to_string())
    }

    /// Logs a first-time user in and enrolls: the enrollment page's answer to the code
    /// (302 with the session when it worked) and the secret.
    pub async fn try_enroll(
        c: &reqwest::Client,
        gw: &Gw,
        user: &str,
    ) -> Result<(reqwest::Response, Vec<u8>), String> {
        let r = try_login(c, gw, user).await.map_err(|e| e.to_string())?;
        if (r.status().as_u16(), location(&r).as_str()) != (303, "/.mfa/enroll") {
            return Err(format!("login of {user}: {} {}", r.status(), location(&r)));
        }
        let page = c
            .get(url(gw, "/.mfa/enroll"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let html = page.text().await.map_err(|e| e.to_string())?;
        let secret = try_pairing_secret(&html).ok_or("no pairing code")?;
        let token = try_csrf(&html).ok_or("no form")?;
        let code = totp::code_at(&secret, gw.clock.unix());
        let r = c
            .post(url(gw, "/.mfa/enroll"))
            .form(&[("csrf", token.as_str()), ("code", code.as_str())])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if location(&r) != "/.mfa/recovery-codes" {
            return Ok((r, secret));
        }
        // The recovery codes are shown once; "continue" releases the login.
        let html = c
            .get(url(gw, "/.mfa/recovery-codes"))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        assert_eq!(
            recovery_codes(&html).len(),
            10,
            "ten recovery codes shown once"
        );
        let token = try_csrf(&html).ok_or("no form on the recovery codes page")?;
        let r = c
            .post(url(gw, "/.mfa/recovery-codes"))
            .form(&[("csrf", token.as_str()), ("action", "continue")])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Ok((r, secret))
    }

    /// Enrolls `user` (must work) and returns the secret; the client is then logged in.
    pub async fn enroll(c: &reqwest::Client, gw: &Gw, user: &str) -> Vec<u8> {
        let (r, secret) = try_enroll(c, gw, user).await.unwrap();
        assert_eq!(r.status(), 302, "enrollment of {user} confirmed");
        assert!(sets_vms_session(&r));
        secret
    }

    /// Logs an enrolled user in with the code of the next time step: the released VMS
    /// answer, or what went wrong (a 503 while Redis fails over, an enrollment page if the
    /// enrollment was lost, ...).
    pub async fn try_login_with_code(
        c: &reqwest::Client,
        gw: &Gw,
        user: &str,
        secret: &[u8],
    ) -> Result<reqwest::Response, String> {
        let r = try_login(c, gw, user).await.map_err(|e| e.to_string())?;
        if (r.status().as_u16(), location(&r).as_str()) != (303, "/.mfa/verify") {
            return Err(format!("login of {user}: {} {}", r.status(), location(&r)));
        }
        gw.clock.advance(30);
        let code = totp::code_at(secret, gw.clock.unix());
        let r = try_post_code(c, gw, "/.mfa/verify", &code).await?;
        if r.status() != 302 || !sets_vms_session(&r) {
            return Err(format!("code of {user}: {}", r.status()));
        }
        Ok(r)
    }

    pub async fn login_with_code(
        c: &reqwest::Client,
        gw: &Gw,
        user: &str,
        secret: &[u8],
    ) -> reqwest::Response {
        try_login_with_code(c, gw, user, secret).await.unwrap()
    }

    /// After an enrollment: when the policy gives recovery codes, the gateway shows them once
    /// (10 codes, 20 digits each) and releases the login on "continue".
    pub async fn through_recovery_codes(
        c: &reqwest::Client,
        gw: &Gw,
        r: reqwest::Response,
    ) -> reqwest::Response {
        if location(&r) != "/.mfa/recovery-codes" {
            return r;
        }
        assert!(!sets_vms_session(&r));
        let html = c
            .get(url(gw, "/.mfa/recovery-codes"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(recovery_codes(&html).len(), 10, "ten recovery codes shown");
        c.post(url(gw, "/.mfa/recovery-codes"))
            .form(&[("csrf", csrf(&html).as_str()), ("action", "continue")])
            .send()
            .await
            .unwrap()
    }

    /// The recovery codes on a page: runs of five groups of four digits.
    pub fn recovery_codes(html: &str) -> Vec<String> {
        let mut out = Vec::new();
        let chars: Vec<char> = html.chars().collect();
        let mut i = 0;
        while i + 24 <= chars.len() {
            let cand: String = chars[i..i + 24].iter().collect();
            let ok = cand.split(' ').count() == 5
                && cand
                    .split(' ')
                    .all(|g| g.len() == 4 && g.chars().all(|c| c.is_ascii_digit()));
            let bounded = (i == 0 || !chars[i - 1].is_ascii_digit())
                && chars.get(i + 24).is_none_or(|c| !c.is_ascii_digit());
            if ok && bounded {
                out.push(cand);
                i += 24;
            } else {
                i += 1;
            }
        }
        out
    }

    /// POSTs a form to a path of the gateway.
    pub async fn post_form(
        c: &reqwest::Client,
        gw: &Gw,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        c.post(url(gw, path)).form(fields).send().await.unwrap()
    }

    /// The status of a GET of a path of the gateway.
    pub async fn get_status(c: &reqwest::Client, gw: &Gw, path: &str) -> u16 {
        c.get(url(gw, path)).send().await.unwrap().status().as_u16()
    }

    /// The body of a GET of a path of the gateway.
    pub async fn get_text(c: &reqwest::Client, gw: &Gw, path: &str) -> String {
        c.get(url(gw, path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}
