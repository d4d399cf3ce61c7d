//! Shared by the deployment checks: reading files under deploy/, rewriting a shipped
//! configuration onto loopback and a temporary directory, and running the built binary and a
//! password-protected redis-server as child processes that are killed when dropped.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mfa_gateway::config::DEFAULT_PREFIX;
use mfa_gateway::config::file::FileConfig;
use yaml_rust2::{Yaml, YamlLoader};

use crate::support::client_for;
use crate::support::free_port;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mfa-gateway");
/// The password of the test redis-server, given to the gateway as MFA_REDIS_PASSWORD.
pub const REDIS_PASSWORD: &str = "deploy-test-password-3f9c";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

pub fn yaml(rel: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The one document of `docs` whose `kind` is `kind`.
pub fn doc<'a>(docs: &'a [Yaml], kind: &str) -> &'a Yaml {
    let found: Vec<&Yaml> = docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect();
    assert_eq!(found.len(), 1, "exactly one {kind}");
    found[0]
}

pub fn strs(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .unwrap_or_else(|| panic!("not a list: {y:?}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// `text` with `from` replaced; `from` must occur, so a changed file cannot make the
/// rewrite (and with it the test) silently do nothing.
pub fn swap(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "expected {from:?} in the file");
    text.replace(from, to)
}

pub fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// The environment variables a configuration reads its secrets from.
pub fn secret_env_names(toml_text: &str) -> BTreeSet<String> {
    let f: FileConfig = toml::from_str(toml_text).unwrap();
    let mut names = BTreeSet::new();
    if let Some(env) = f.redis.and_then(|r| r.password).and_then(|p| p.env) {
        names.insert(env);
    }
    for k in f.mfa.and_then(|m| m.keys).unwrap_or_default() {
        names.insert(k.env.expect("keys come from the environment in deploy/"));
    }
    names
}

/// `NAME=value` lines of an environment file (comments and blank lines skipped).
pub fn env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Real values for placeholder secrets: a fresh key for every key variable, the test
/// Redis password for the password. Every value must be a placeholder in the example.
pub fn fill_secrets(example: &[(String, String)]) -> Vec<(String, String)> {
    example
        .iter()
        .map(|(k, v)| {
            assert!(v.starts_with("REPLACE"), "{k} must be a placeholder: {v}");
            let real = if k.starts_with("MFA_KEY_") {
                mfa_gateway::auth::crypto::generate_key_material()
            } else {
                assert_eq!(k, "MFA_REDIS_PASSWORD");
                REDIS_PASSWORD.to_string()
            };
            (k.clone(), real)
        })
        .collect()
}

/// A child process killed on drop, its stderr kept in a file for failure messages.
pub struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    pub fn spawn(cmd: &mut Command, log: PathBuf) -> Self {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .env_remove("RUST_LOG")
            .spawn()
            .unwrap();
        Proc { child, log }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    /// Waits for the process to exit by itself, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "no exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A redis-server on loopback that requires the test password.
pub fn redis_with_password(dir: &Path) -> (Proc, String) {
    let port = free_port();
    let proc = Proc::spawn(
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--requirepass", REDIS_PASSWORD])
            .arg("--dir")
            .arg(dir),
        dir.join("redis.log"),
    );
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (proc, format!("redis://127.0.0.1:{port}/0"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("redis-server did not start on {port}");
}

/// Polls `/.mfa/ready` until it answers 200 with every part it reports up (Redis too, which
/// does not decide readiness by default), and returns its JSON body.
pub async fn wait_ready(client: &reqwest::Client, port: u16, gw: &Proc) -> serde_json::Value {
    let url = format!("https://localhost:{port}{DEFAULT_PREFIX}ready");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        match client.get(&url).send().await {
            Ok(r) if r.status() == 200 => {
                let body: serde_json::Value = r.json().await.unwrap();
                if body["store"]["status"] == "ok" && body["policy"] == "ok" {
                    return body;
                }
                last = body.to_string();
            }
            Ok(r) => last = format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not ready: {last}\n--- gateway log ---\n{}", gw.log());
}

/// Ready with every part up, healthy, and metrics on the separate listener.
pub async fn assert_serving(ca_pem: &str, https: u16, metrics: u16, gw: &Proc) -> reqwest::Client {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], https));
    let client = client_for(addr, ca_pem, false);
    let ready = wait_ready(&client, https, gw).await;
    assert_eq!(ready["upstream"], "ok", "{ready}");
    assert_eq!(ready["store"]["kind"], "redis", "{ready}");
    assert_eq!(ready["store"]["status"], "ok", "{ready}");
    let health = client
        .get(format!("https://localhost:{https}{DEFAULT_PREFIX}health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let text = reqwest::get(format!("http://127.0.0.1:{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("mfa_gateway_store_up 1"), "{text}");
    // Not on the public listener when metrics.listen is set.
    let public = client
        .get(format!("https://localhost:{https}{DEFAULT_PREFIX}metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
    client
}

/// Every stderr line is one JSON object (log.format / --log-format json).
pub fn assert_json_logs(log: &str) {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no log lines");
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{l}");
    }
    assert!(log.contains("\"mfa-gateway listening\""), "{log}");
}

/// Runs `check-config` with `envs`; returns (success, stderr).
pub fn check_config(config: &Path, envs: &[(String, String)]) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(config)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The placeholders refuse to start; the filled-in secrets pass the gateway's validation.
pub fn assert_placeholders_refused_and_secrets_accepted(
    config: &Path,
    example: &[(String, String)],
    filled: &[(String, String)],
) {
    let (ok, err) = check_config(config, example);
    assert!(!ok, "a placeholder key must be refused");
    assert!(err.contains("mfa.keys"), "{err}");
    let (ok, err) = check_config(config, filled);
    assert!(ok, "{err}");
}

/// The command line of a deployment, with its container or host paths moved to `to`.
pub fn args_moved(args: &[String], from: &str, to: &Path) -> Vec<String> {
    let to = format!("{}/", to.display());
    args.iter().map(|a| a.replace(from, &to)).collect()
}

pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

pub fn dev_cert(dir: &Path) -> mfa_gateway::tls::devcert::DevCertFiles {
    mfa_gateway::tls::devcert::write_to(dir, &[], jiff::Timestamp::now()).unwrap()
}
