//! Secrets never reach the logs.
//!
//! Operators ship gateway logs to log stores that many people can read, so a TOTP code, an
//! enrollment secret, a VMS session cookie, the gateway's own cookies, a CSRF token or key
//! material in a log line would hand out exactly what MFA protects. This module runs the real
//! binary as a child process with JSON logs at `trace` (the most verbose level, every crate)
//! captured to a file, drives a full flow through it over HTTP/1.1 and HTTP/2 (enrollment,
//! wrong codes, a correct code, a second login, logout, refused requests with forged
//! cookies), and then searches every log line for every secret value the flow produced.
//!
//! The child-process fixture ([`GatewayProcess`]) is also used by `bad_input`, which checks
//! the same captured log for panics.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use mfa_gateway::auth::totp;

use crate::support::*;

/// The real `mfa-gateway` binary serving on loopback, with its log captured to a file.
pub struct GatewayProcess {
    child: Child,
    pub addr: SocketAddr,
    pub ca_pem: String,
    /// The master key from the configuration (base64), to forge cookies in tests.
    pub key: String,
    pub log: PathBuf,
    _redis: RedisProc,
    _certs: Certs,
    _dir: tempfile::TempDir,
}

impl GatewayProcess {
    /// Starts Redis, the demo VMS (in this process) and the gateway binary in front of it.
    /// `server_extra` lines go into `[server]`, `mfa_extra` lines into `[mfa]`.
    pub async fn start(server_extra: &str, mfa_extra: &str) -> Self {
        let (vms_addr, _vms, stop) = mfa_gateway::demo::vms::spawn(0).await.unwrap();
        std::mem::forget(stop);
        Self::start_in_front_of(vms_addr, server_extra, mfa_extra).await
    }

    /// Like [`GatewayProcess::start`], in front of another upstream (configured as the
    /// demo VMS is: form login at `/login`, session cookie `VMSSESSION`, role header).
    pub async fn start_in_front_of(
        vms_addr: SocketAddr,
        server_extra: &str,
        mfa_extra: &str,
    ) -> Self {
        Self::start_logging(vms_addr, server_extra, mfa_extra, "trace").await
    }

    /// Like [`GatewayProcess::start_in_front_of`], logging at `level` (`trace` makes a long
    /// stream of body chunks slow to log).
    pub async fn start_logging(
        vms_addr: SocketAddr,
        server_extra: &str,
        mfa_extra: &str,
        level: &str,
    ) -> Self {
        let redis = RedisProc::start();
        let certs = certs();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let text = config_text(
            &certs,
            vms_addr,
            &redis.url(),
            DEMO_VMS,
            &format!("[log]\nformat = \"json\"\nlevel = \"{level}\"\n"),
        )
        .replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{port}\"\n{server_extra}"),
        )
        .replace(
            "revocation_poll = \"200ms\"",
            &format!("revocation_poll = \"200ms\"\n{mfa_extra}"),
        );
        let key = text
            .split("value = \"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap()
            .to_string();
        std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
        let cfg = dir.path().join("gateway.toml");
        std::fs::write(&cfg, &text).unwrap();
        let log = dir.path().join("gateway.log");
        let child = Command::new(env!("CARGO_BIN_EXE_mfa-gateway"))
            .arg("--config")
            .arg(&cfg)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut p = GatewayProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            ca_pem: certs.ca_pem.clone(),
            key,
            log,
            _redis: redis,
            _certs: certs,
            _dir: dir,
        };
        p.wait_healthy().await;
        p
    }

    async fn wait_healthy(&mut self) {
        let c = self.client();
        for _ in 0..200 {
            if let Ok(r) = c.get(self.url("/.mfa/health")).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "gateway exited at start:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("gateway not healthy:\n{}", self.log_text());
    }

    /// The gateway's process id (for `/proc/<pid>/...`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn client(&self) -> reqwest::Client {
        client_for(self.addr, &self.ca_pem, false)
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process is still running and its log shows no panic.
    pub async fn assert_alive(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "gateway process exited:\n{}",
            self.log_text()
        );
        let r = self.client().get(self.url("/.mfa/health")).send().await;
        assert_eq!(r.map(|r| r.status().as_u16()).ok(), Some(200), "health");
        let log = self.log_text();
        assert!(
            !log.contains("panicked"),
            "panic in the gateway log:\n{log}"
        );
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Values a browser-like client saw during a flow, for the log search.
pub struct Flow;

impl Flow {
    pub async fn login(c: &reqwest::Client, g: &GatewayProcess, user: &str) -> reqwest::Response {
        c.post(g.url("/login"))
            .form(&[("username", user), ("password", "demo")])
            .send()
            .await
            .unwrap()
    }

    pub fn location(r: &reqwest::Response) -> String {
        r.headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    /// `name=value` of every cookie the response sets (attributes dropped).
    pub fn cookies(r: &reqwest::Response) -> Vec<(String, String)> {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| {
                let first = v.to_str().ok()?.split(';').next()?;
                let (n, v) = first.split_once('=')?;
                Some((n.to_string(), v.to_string()))
            })
            .collect()
    }

    pub fn cookie(r: &reqwest::Response, name: &str) -> Option<String> {
        Self::cookies(r)
            .into_iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v)
    }

    pub fn csrf(html: &str) -> String {
        let i = html.find("name=\"csrf\"").expect("csrf field");
        let rest = &html[i..];
        let v = rest.find("value=\"").unwrap() + 7;
        rest[v..v + rest[v..].find('"').unwrap()].to_string()
    }

    /// The pairing code as shown (grouped) and the secret bytes.
    pub fn pairing(html: &str) -> (String, Vec<u8>) {
        let tag = "<p class=\"pairing\">";
        let start = html.find(tag).expect("pairing code shown") + tag.len();
        let shown = html[start..start + html[start..].find('<').unwrap()].to_string();
        let compact: String = shown.chars().filter(|c| *c != ' ').collect();
        let bytes = totp_rs::Secret::try_from_base32(&compact)
            .unwrap()
            .as_ref()
            .to_vec();
        (shown, bytes)
    }

    pub async fn page(c: &reqwest::Client, g: &GatewayProcess, path: &str) -> String {
        c.get(g.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn post_code(
        c: &reqwest::Client,
        g: &GatewayProcess,
        path: &str,
        code: &str,
    ) -> reqwest::Response {
        let html = Self::page(c, g, path).await;
        c.post(g.url(path))
            .form(&[("csrf", Self::csrf(&html).as_str()), ("code", code)])
            .send()
            .await
            .unwrap()
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A six-digit code that is not valid around `now` for `secret`.
pub fn wrong_code(secret: &[u8], seed: u32) -> String {
    let now = unix_now();
    (0..)
        .map(|i: u32| format!("{:06}", (seed.wrapping_mul(7919) + i * 104_729) % 1_000_000))
        .find(|c| totp::verify(secret, c, now, 2).is_none() && !c.starts_with("00"))
        .unwrap()
}

/// Whether `needle` (all digits) occurs in `hay` as a whole number, not inside a longer run
/// of digits (so a code is not "found" in the middle of an unrelated long number).
fn has_number(hay: &str, needle: &str) -> bool {
    let b = hay.as_bytes();
    hay.match_indices(needle).any(|(i, _)| {
        let before = i.checked_sub(1).map(|j| b[j]);
        let after = b.get(i + needle.len()).copied();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// Every log line as JSON, without its timestamp (whose fraction of a second is six digits
/// and would make codes appear by chance).
fn log_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| match serde_json::from_str::<serde_json::Value>(l) {
            Ok(serde_json::Value::Object(mut m)) => {
                m.remove("timestamp");
                serde_json::Value::Object(m).to_string()
            }
            _ => l.to_string(),
        })
        .collect()
}

#[tokio::test]
async fn a_full_flow_leaves_no_secret_in_the_logs() {
    let mut g = GatewayProcess::start("", "").await;
    let mut codes: Vec<String> = Vec::new();
    let mut secrets: Vec<String> = vec![g.key.clone()];

    // Enrollment, with a wrong code first.
    let c = g.client();
    let r = Flow::login(&c, &g, "customer").await;
    assert_eq!(Flow::location(&r), "/.mfa/enroll");
    let challenge1 = Flow::cookie(&r, "__Host-mfagw-ch").unwrap();
    let html = Flow::page(&c, &g, "/.mfa/enroll").await;
    let csrf1 = Flow::csrf(&html);
    let (shown, secret) = Flow::pairing(&html);
    let wrong = wrong_code(&secret, 1);
    codes.push(wrong.clone());
    let r = Flow::post_code(&c, &g, "/.mfa/enroll", &wrong).await;
    assert_eq!(r.status(), 200);
    let now = unix_now();
    let good = totp::code_at(&secret, now);
    codes.push(good.clone());
    let r = c
        .post(g.url("/.mfa/enroll"))
        .form(&[("csrf", csrf1.as_str()), ("code", good.as_str())])
        .send()
        .await
        .unwrap();
    // The recovery codes are shown once; they are secrets too.
    assert_eq!(Flow::location(&r), "/.mfa/recovery-codes");
    let html = Flow::page(&c, &g, "/.mfa/recovery-codes").await;
    let recovery = crate::support::browser::recovery_codes(&html);
    assert_eq!(recovery.len(), 10);
    for code in &recovery {
        codes.push(code.replace(' ', ""));
        codes.push(code.clone());
    }
    let r = c
        .post(g.url("/.mfa/recovery-codes"))
        .form(&[("csrf", Flow::csrf(&html).as_str()), ("action", "continue")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "enrollment confirmed");
    let session1 = Flow::cookie(&r, "VMSSESSION").unwrap();
    let approval1 = Flow::cookie(&r, "__Host-mfagw").unwrap();
    assert_eq!(c.get(g.url("/home")).send().await.unwrap().status(), 200);

    // A second login on another client, over HTTP/2: two wrong codes, then the next step's code (the
    // window accepts one step ahead, and the enrollment step cannot be used twice).
    let c2 = client_for(g.addr, &g.ca_pem, true);
    let r = Flow::login(&c2, &g, "customer").await;
    assert_eq!(Flow::location(&r), "/.mfa/verify");
    let challenge2 = Flow::cookie(&r, "__Host-mfagw-ch").unwrap();
    let csrf2 = Flow::csrf(&Flow::page(&c2, &g, "/.mfa/verify").await);
    for seed in [2, 3] {
        let w = wrong_code(&secret, seed);
        codes.push(w.clone());
        assert_eq!(
            Flow::post_code(&c2, &g, "/.mfa/verify", &w).await.status(),
            200
        );
    }
    let next = totp::code_at(&secret, now + 30);
    codes.push(next.clone());
    let r = Flow::post_code(&c2, &g, "/.mfa/verify", &next).await;
    assert_eq!(r.status(), 302, "second login released");
    let session2 = Flow::cookie(&r, "VMSSESSION").unwrap();
    let approval2 = Flow::cookie(&r, "__Host-mfagw").unwrap();
    assert_eq!(c2.get(g.url("/home")).send().await.unwrap().status(), 200);
    // Logout ends the approval.
    let r = c2.get(g.url("/logout")).send().await.unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());

    // Forged and stale values in refused requests are not logged either.
    let forged = [
        "ForgedApprovalValue1",
        "ForgedChallengeValue2",
        "ForgedCsrfValue3",
        "ForgedSessionValue4",
    ];
    let raw = g.client();
    let cookie = format!(
        "__Host-mfagw={}; __Host-mfagw-ch={}; VMSSESSION={}",
        forged[0], forged[1], forged[3]
    );
    for path in ["/home", "/.mfa/verify", "/.mfa/enroll"] {
        let r = raw
            .post(g.url(path))
            .header("cookie", &cookie)
            .form(&[("csrf", forged[2]), ("code", "424242")])
            .send()
            .await
            .unwrap();
        assert!(r.status().as_u16() < 500);
    }
    codes.push("424242".into());
    let r = raw
        .post(g.url("/.mfa/verify"))
        .header("cookie", format!("__Host-mfagw-ch={challenge2}"))
        .form(&[("csrf", forged[2]), ("code", "424243")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "released challenge");
    codes.push("424243".into());
    secrets.extend(forged.iter().map(|s| s.to_string()));
    g.assert_alive().await;

    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let b64s = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    secrets.extend([
        shown.clone(),
        shown.replace(' ', ""),
        b64(&secret),
        b64s(&secret),
        hex,
        session1,
        session2,
        approval1.clone(),
        approval2.clone(),
        // The MACed parts of the approvals on their own.
        approval1.split('.').next_back().unwrap().to_string(),
        approval2.split('.').next_back().unwrap().to_string(),
        challenge1,
        challenge2.clone(),
        csrf1.split('.').next_back().unwrap().to_string(),
        csrf2.split('.').next_back().unwrap().to_string(),
    ]);

    let text = g.log_text();
    let lines = log_lines(&text);
    assert!(
        lines.len() >= 10 && text.contains("verify_success"),
        "the log was captured:\n{text}"
    );
    for line in &lines {
        for s in &secrets {
            assert!(
                !line.contains(s.as_str()),
                "secret {s:?} in log line: {line}"
            );
        }
        for code in &codes {
            assert!(!has_number(line, code), "code {code} in log line: {line}");
        }
    }
}

#[test]
fn number_search_ignores_longer_runs() {
    assert!(has_number("code 123456 x", "123456"));
    assert!(has_number("\"123456\"", "123456"));
    assert!(!has_number("91234567", "123456"));
    assert!(!has_number("nothing", "123456"));
}

#[tokio::test]
async fn a_redis_outage_is_logged_when_it_starts_and_when_it_ends_not_at_every_poll() {
    let mut g = GatewayProcess::start("", "").await;
    g._redis.stop();
    // Fifteen polls of the revocation feed (every 200 ms) without an answer.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let count = |text: &str, what: &str| text.lines().filter(|l| l.contains(what)).count();
    assert_eq!(
        count(&g.log_text(), "revocation feed unreachable"),
        1,
        "one line when the outage starts"
    );
    g._redis.restart();
    eventually(Duration::from_secs(10), "the recovery line", async || {
        count(&g.log_text(), "revocation feed reachable again") == 1
    })
    .await;
    g.assert_alive().await;
}

/// Every log message the operations guide's table of log lines names is one the gateway
/// writes: each fragment of a message (split at `...` and `<placeholders>`) of 8 characters or
/// more appears in the sources.
#[test]
fn every_log_message_the_operations_guide_names_exists() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = String::new();
    let mut stack = vec![root.join("src")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                sources.push_str(&std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let guide = std::fs::read_to_string(root.join("docs/operations.md")).unwrap();
    let mut checked = 0;
    let mut missing = Vec::new();
    for row in guide.lines().filter(|l| {
        ["| INFO", "| WARN", "| ERROR", "| DEBUG"]
            .iter()
            .any(|p| l.starts_with(p))
    }) {
        let Some(message_column) = row.split('|').nth(2) else {
            continue;
        };
        for quoted in message_column.split('`').skip(1).step_by(2) {
            let mut rest = quoted.to_string();
            // `<key>` and `...` stand for what varies.
            while let (Some(a), Some(b)) = (rest.find('<'), rest.find('>')) {
                if b < a {
                    break;
                }
                rest.replace_range(a..=b, "...");
            }
            for fragment in rest.split("...").map(|f| f.trim().trim_end_matches(';')) {
                if fragment.len() < 8 {
                    continue;
                }
                checked += 1;
                if !sources.contains(fragment) {
                    missing.push(fragment.to_string());
                }
            }
        }
    }
    assert!(checked >= 20, "only {checked} messages found");
    assert!(
        missing.is_empty(),
        "named in docs/operations.md, not in src/: {missing:#?}"
    );
}

/// Issue 22: in JSON logs an audit record is a nested object (a log store can index
/// `audit.user`), not a string inside the line, in the gateway's log and in the break-glass
/// command's (`--log-format json`); `admin reapply --from` reads such a log, signatures
/// checked.
#[tokio::test]
async fn audit_records_are_objects_in_json_logs_and_reapply_reads_them() {
    let g = GatewayProcess::start("", "").await;
    let c = g.client();
    // An enrollment: the gateway writes an `enrolled` record.
    let r = Flow::login(&c, &g, "customer").await;
    assert_eq!(Flow::location(&r), "/.mfa/enroll");
    let html = Flow::page(&c, &g, "/.mfa/enroll").await;
    let (_, secret) = Flow::pairing(&html);
    let code = totp::code_at(&secret, unix_now());
    let r = c
        .post(g.url("/.mfa/enroll"))
        .form(&[
            ("csrf", Flow::csrf(&html).as_str()),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(Flow::location(&r), "/.mfa/recovery-codes");
    let audit_lines = |text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["target"] == "audit" && !v["audit"].is_null())
            .collect()
    };
    eventually(Duration::from_secs(5), "the enrolled record", async || {
        audit_lines(&g.log_text())
            .iter()
            .any(|v| v["audit"]["event"] == "enrolled")
    })
    .await;
    let gateway_log = g.log_text();
    let logged = audit_lines(&gateway_log);
    for v in &logged {
        assert!(v["audit"].is_object(), "a string, not an object: {v}");
    }
    let enrolled = logged
        .iter()
        .find(|v| v["audit"]["event"] == "enrolled")
        .unwrap();
    assert_eq!(enrolled["audit"]["user"], "customer", "{enrolled}");
    assert_eq!(enrolled["message"], "enrolled");
    assert_eq!(enrolled["level"], "INFO");
    assert!(enrolled["audit"]["sig"].is_string(), "signed: {enrolled}");

    // The break-glass command line, with JSON logs on stderr.
    let cfg = g._dir.path().join("gateway.toml");
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mfa-gateway"))
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    let cfg_s = cfg.to_str().unwrap();
    let reset = cli(&[
        "--log-format",
        "json",
        "admin",
        "--config",
        cfg_s,
        "reset",
        "customer",
        "--reason",
        "phone lost",
    ]);
    let cli_log = String::from_utf8_lossy(&reset.stderr).into_owned();
    assert!(reset.status.success(), "{cli_log}");
    let cli_records = audit_lines(&cli_log);
    // The reset, and the enrollment code it made (its expiry, never the code).
    assert_eq!(cli_records.len(), 2, "{cli_log}");
    assert_eq!(cli_records[0]["audit"]["event"], "reset", "{cli_log}");
    assert_eq!(
        cli_records[1]["audit"]["event"], "enrollment_code_issued",
        "{cli_log}"
    );
    let code_line = String::from_utf8_lossy(&reset.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("Enrollment code: ")
                .map(|c| c[..9].replace(' ', ""))
        })
        .unwrap_or_default();
    assert_eq!(code_line.len(), 8, "the code is printed once");
    assert!(!cli_log.contains(&code_line), "never in the log: {cli_log}");
    assert_eq!(cli_records[0]["audit"]["reason"], "phone lost");
    assert!(
        cli_records[0]["audit"]["actor"]
            .as_str()
            .unwrap()
            .starts_with("cli:")
    );

    // Both logs, as a log store would give them back, read by `admin reapply`: the reset is
    // found, its signature verifies, and it holds already.
    let file = g._dir.path().join("exported.log");
    std::fs::write(&file, format!("{gateway_log}{cli_log}")).unwrap();
    let run = cli(&[
        "admin",
        "--config",
        cfg_s,
        "reapply",
        "--since",
        "0",
        "--from",
        file.to_str().unwrap(),
        "--dry-run",
    ]);
    let out = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(run.status.success(), "{out}");
    assert!(
        out.contains("reset customer: skipped: reset again since"),
        "{out}"
    );
    assert!(!out.contains("unsigned"), "{out}");
}
