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
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisProc {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut r = RedisProc {
            port: free_port(),
            dir,
            child: None,
        };
        r.spawn();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
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
    let dir = tempfile::tempdir().unwrap();
    let files =
        mfa_gateway::tls::devcert::write_to(dir.path(), &[], jiff::Timestamp::now()).unwrap();
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
response_timeout = "2s"
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
    let cfg_path = dir.join("gateway.toml");
    if !dir.join("policy.toml").exists() {
        std::fs::write(dir.join("policy.toml"), POLICY).unwrap();
    }
    std::fs::write(&cfg_path, config).unwrap();
    let cfg = Config::from_toml(config, &cfg_path, Mode::Production)
        .unwrap_or_else(|e| panic!("config: {e}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
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
