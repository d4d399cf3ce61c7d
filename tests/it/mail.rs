//! E-mail notifications and the outbox, end to end: a real SMTP server (Python's `aiosmtpd`,
//! started on a free loopback port; every message it accepts is written, decoded, as one
//! JSON file into a folder the test reads), a real Redis, the demo VMS and the real gateway.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mfa_gateway::clock::Clock;

use crate::support::browser::*;
use crate::support::*;

/// Where the shipped policy enforces MFA for customers and MSPs.
const ENFORCED: &str = "2022-02-01T09:00:00Z";

/// The SMTP server: accepts every message and writes `{rcpt, subject, text, html}` of each
/// into the folder, one file per message.
const SMTP_SERVER: &str = r#"
import asyncio, email, email.policy, json, os, sys, time
from aiosmtpd.controller import Controller
port, folder = int(sys.argv[1]), sys.argv[2]
class Keep:
    async def handle_DATA(self, server, session, envelope):
        m = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        out = {
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "auth": bool(session.authenticated),
            "rcpt": envelope.rcpt_tos,
            "from": str(m["from"]),
            "subject": str(m["subject"]),
            "text": m.get_body(("plain",)).get_content(),
            "html": m.get_body(("html",)).get_content(),
        }
        name = os.path.join(folder, "%d.json" % time.time_ns())
        with open(name + ".tmp", "w") as f:
            json.dump(out, f)
        os.rename(name + ".tmp", name)
        return "250 OK"
kw = {}
mode = sys.argv[3] if len(sys.argv) > 3 else "plain"
if mode != "plain":
    import ssl
    from aiosmtpd.smtp import AuthResult, LoginPassword
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])
    def auth(server, session, envelope, mechanism, data):
        ok = isinstance(data, LoginPassword) and data.login == b"gw" and data.password == b"s3cret"
        return AuthResult(success=ok, handled=False)
    kw = dict(authenticator=auth, auth_required=True, auth_require_tls=True)
    if mode == "starttls":
        kw.update(tls_context=ctx, require_starttls=True)
    else:
        # The whole connection is TLS; aiosmtpd offers AUTH here only without this check.
        kw.update(ssl_context=ctx, auth_require_tls=False)
c = Controller(Keep(), hostname="127.0.0.1", port=port, **kw)
c.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"#;

/// A running SMTP server; stopped (killed) on drop.
pub struct Smtp {
    child: Option<Child>,
    pub port: u16,
    pub folder: PathBuf,
    /// `plain`, or `starttls` / `tls` with the certificate and key that follow.
    args: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Smtp {
    pub fn start() -> Self {
        Self::start_with(&["plain"])
    }

    /// A server that speaks TLS (`starttls`: required before anything else; `tls`: from the
    /// first byte) with `certs`' server certificate, and requires the login `gw` / `s3cret`.
    pub fn start_tls(mode: &str, certs: &Certs) -> Self {
        Self::start_with(&[
            mode,
            certs.cert.to_str().unwrap(),
            certs.key.to_str().unwrap(),
        ])
    }

    fn start_with(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("inbox");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(dir.path().join("smtp.py"), SMTP_SERVER).unwrap();
        let mut s = Smtp {
            child: None,
            port: free_port(),
            folder,
            args: args.iter().map(|a| a.to_string()).collect(),
            _dir: dir,
        };
        s.restart();
        s
    }

    /// Starts the server (again) on its port.
    pub fn restart(&mut self) {
        use std::io::BufRead as _;
        let mut child = Command::new("python3")
            .arg(self._dir.path().join("smtp.py"))
            .arg(self.port.to_string())
            .arg(&self.folder)
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with aiosmtpd (python3 -m pip install aiosmtpd)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP server did not start");
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The messages received so far, oldest first.
    pub fn inbox(&self) -> Vec<serde_json::Value> {
        read_inbox(&self.folder)
    }

    /// Waits until `n` messages were received (at most `limit`), and returns them.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<serde_json::Value> {
        let start = std::time::Instant::now();
        loop {
            let got = self.inbox();
            if got.len() >= n {
                return got;
            }
            assert!(
                start.elapsed() < limit,
                "{} of {n} mails after {limit:?}: {got:#?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_inbox(folder: &Path) -> Vec<serde_json::Value> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

/// The `[mail]` section for `smtp`, and addresses for the demo VMS's users (a static map).
pub fn mail_section(smtp: &Smtp) -> String {
    format!(
        r#"
[mail]
host = "127.0.0.1"
port = {port}
security = "none-for-tests-on-loopback-only"
from = "VMS sign-in <mfa@example.test>"
help_line = "the service desk on 020 555 0100"
timeout = "1s"
retry_after = "1s"
max_attempts = 50
"#,
        port = smtp.port
    )
}

/// The demo VMS with users' addresses.
pub fn vms_with_addresses() -> String {
    format!(
        "{DEMO_VMS}\n[vms.role.email_map]\ncustomer = \"customer@example.test\"\n\
         msp = \"msp@example.test\"\nadmin = \"admin@example.test\"\n"
    )
}

pub struct MailWorld {
    pub gw: Gw,
    pub redis: RedisProc,
    pub smtp: Smtp,
    pub text: String,
    pub dir: tempfile::TempDir,
    _certs: Certs,
}

pub async fn mail_world(mfa_lines: &str) -> MailWorld {
    mail_world_with(mfa_lines, &vms_with_addresses()).await
}

pub async fn mail_world_with(mfa_lines: &str, vms: &str) -> MailWorld {
    mail_world_at(ENFORCED, mfa_lines, vms).await
}

pub async fn mail_world_at(date: &str, mfa_lines: &str, vms: &str) -> MailWorld {
    mail_world_policy(date, mfa_lines, vms, POLICY).await
}

pub async fn mail_world_policy(date: &str, mfa_lines: &str, vms: &str, policy: &str) -> MailWorld {
    let smtp = Smtp::start();
    let redis = RedisProc::start();
    let (vms_addr, _vms, stop) = mfa_gateway::demo::vms::spawn(0).await.unwrap();
    std::mem::forget(stop);
    std::mem::forget(_vms);
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), policy).unwrap();
    let text = config_text(&c, vms_addr, &redis.url(), vms, &mail_section(&smtp))
        .replace("[mfa]\n", &format!("[mfa]\n{mfa_lines}\n"));
    let gw = start_gateway(dir.path(), &text, &c.ca_pem, Clock::manual(at(date))).await;
    MailWorld {
        gw,
        redis,
        smtp,
        text,
        dir,
        _certs: c,
    }
}

/// A browser whose `Accept-Language` asks for `lang`.
pub fn browser_in(gw: &Gw, lang: &str) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(gw.ca_pem.as_bytes()).unwrap();
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("accept-language", lang.parse().unwrap());
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .resolve("localhost", gw.addr)
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .default_headers(h)
        .http1_only()
        .build()
        .unwrap()
}

fn msp() -> mfa_gateway::admin::ops::Actor {
    mfa_gateway::admin::ops::Actor {
        kind: mfa_gateway::audit::ActorKind::Admin,
        name: "msp-anna".into(),
        client: Some("198.51.100.9".into()),
        rank: mfa_gateway::admin::ops::Rank::Role {
            role: "administrator".into(),
            user: Some("msp-anna".into()),
        },
    }
}

/// Posts `path` as the form on `page` would, with its CSRF token and the current code of
/// `secret`.
async fn post_code_form(
    c: &reqwest::Client,
    gw: &Gw,
    page: &str,
    path: &str,
    secret: &[u8],
) -> reqwest::Response {
    let html = get_text(c, gw, page).await;
    let code = mfa_gateway::auth::totp::code_at(secret, gw.clock.unix());
    post_form(
        c,
        gw,
        path,
        &[("csrf", csrf(&html).as_str()), ("code", code.as_str())],
    )
    .await
}

fn field<'a>(m: &'a serde_json::Value, k: &str) -> &'a str {
    m[k].as_str().unwrap_or_default()
}

/// No mail may carry the app's secret (as its pairing code), a recovery code, a TOTP code or
/// a link.
fn assert_no_secrets(m: &serde_json::Value, secret: &[u8], recovery: &[String]) {
    let pairing = mfa_gateway::auth::totp::pairing_code(secret).replace(' ', "");
    for part in ["text", "html", "subject"] {
        let body = field(m, part).replace([' ', '-'], "");
        assert!(!body.contains(&pairing), "the secret in a mail: {m:#}");
        for code in recovery {
            assert!(
                !body.contains(&code.replace([' ', '-'], "")),
                "a recovery code in a mail: {m:#}"
            );
        }
        assert!(!field(m, part).contains("http"), "a link in a mail: {m:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_to_mfa_is_mailed_in_the_users_language() {
    let w = mail_world("").await;
    let gw = &w.gw;
    // A Dutch browser enrolls: the mail is Dutch, to the address the VMS has for the user.
    let nl = browser_in(gw, "nl-NL,nl;q=0.9");
    let secret = enroll(&nl, gw, "customer").await;
    let got = w.smtp.wait_for(1, Duration::from_secs(20)).await;
    let m = &got[0];
    assert_eq!(m["rcpt"], serde_json::json!(["customer@example.test"]));
    assert!(field(m, "from").contains("mfa@example.test"));
    assert!(
        field(m, "subject").starts_with("Er is een authenticator-app ingesteld"),
        "{m:#}"
    );
    let text = field(m, "text");
    assert!(text.contains("Hallo customer,"), "{text}");
    assert!(
        text.contains("Wanneer: 2022-02-01 10:00 (Europe/Amsterdam)"),
        "{text}"
    );
    assert!(text.contains("Vanaf adres: 127.0.0.1"), "{text}");
    assert!(text.contains("020 555 0100"), "who to call: {text}");
    assert!(field(m, "html").contains("Hallo customer,"));
    assert_no_secrets(m, &secret, &[]);
    // One mail for the enrollment: the recovery codes made with it are not a second one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(w.smtp.inbox().len(), 1, "{:#?}", w.smtp.inbox());

    // An English browser: enrollment in English.
    let en = browser_in(gw, "en-GB");
    let secret2 = enroll(&en, gw, "admin").await;
    let got = w.smtp.wait_for(2, Duration::from_secs(20)).await;
    let m = &got[1];
    assert_eq!(m["rcpt"], serde_json::json!(["admin@example.test"]));
    assert_eq!(
        field(m, "subject"),
        "An authenticator app was set up for your account - VMS sign-in"
    );
    assert!(field(m, "text").contains("When: 2022-02-01 10:00 (Europe/Amsterdam)"));
    assert!(
        field(m, "text").contains("If this was not you, contact the service desk on 020 555 0100")
    );
    assert_no_secrets(m, &secret2, &[]);

    // An MSP resets the Dutch user: who and when, never the reason (not configured).
    gw.clock.advance(3600);
    let g = gw.gateway();
    assert!(
        g.ops()
            .reset("customer", &msp(), "private: phone stolen", gw.clock.unix())
            .await
            .unwrap()
            .had
    );
    let got = w.smtp.wait_for(3, Duration::from_secs(20)).await;
    let m = &got[2];
    assert_eq!(m["rcpt"], serde_json::json!(["customer@example.test"]));
    assert!(
        field(m, "subject").starts_with("Je MFA is gereset"),
        "{m:#}"
    );
    assert!(field(m, "text").contains("Door: msp-anna"), "{m:#}");
    assert!(
        !field(m, "text").contains("198.51.100.9"),
        "not the MSP's address: {m:#}"
    );
    assert!(field(m, "text").contains("Wanneer: 2022-02-01 11:00 (Europe/Amsterdam)"));
    assert!(
        !field(m, "text").contains("phone stolen"),
        "no reason: {m:#}"
    );
    assert!(!field(m, "html").contains("phone stolen"));
    assert_eq!(
        g.metrics.mail_count(mfa_gateway::metrics::MailResult::Sent),
        3
    );
    let metrics = g.metrics.render();
    assert!(
        metrics.contains("mfa_gateway_mail_jobs_total{result=\"sent\"} 3"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_never_holds_a_sign_in_and_nothing_is_lost_across_a_restart() {
    let mut w = mail_world("").await;
    w.smtp.stop();
    // Sign-ins while the mail server is down: each is as quick as ever (a generous bound; a
    // connection to a closed port fails at once anyway, and no sign-in waits for a mail).
    for user in ["customer", "admin", "msp"] {
        let c = client(&w.gw);
        let t = std::time::Instant::now();
        enroll(&c, &w.gw, user).await;
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{user}: {:?}",
            t.elapsed()
        );
    }
    let g = w.gw.gateway();
    eventually(
        Duration::from_secs(20),
        "failed deliveries are retried",
        || async {
            g.metrics
                .mail_count(mfa_gateway::metrics::MailResult::Retry)
                >= 3
        },
    )
    .await;
    assert!(w.smtp.inbox().is_empty());
    let queued: u64 = redis_query(w.redis.port, &["ZCARD", "t:{mail}:q"])
        .await
        .unwrap();
    assert_eq!(queued, 3, "three mails wait in the outbox");
    // This gateway stops; another one (a process of its own) takes the sender's lease, fails
    // to deliver while the mail server is still down, and is killed (SIGKILL) with the lease
    // held and the jobs in the outbox.
    w.gw.stop().await;
    let mut killed = Command::new(env!("CARGO_BIN_EXE_mfa-gateway"))
        .arg("run")
        .arg("--config")
        .arg(w.dir.path().join("gateway.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually(
        Duration::from_secs(20),
        "the second gateway holds the lease",
        || async {
            redis_query::<Option<String>>(w.redis.port, &["GET", "t:{mail}:lease"])
                .await
                .unwrap()
                .is_some()
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    killed.kill().unwrap();
    killed.wait().unwrap();
    let lease: Option<String> = redis_query(w.redis.port, &["GET", "t:{mail}:lease"])
        .await
        .unwrap();
    assert!(lease.is_some(), "the killed gateway's lease is left behind");
    assert_eq!(
        redis_query::<u64>(w.redis.port, &["ZCARD", "t:{mail}:q"])
            .await
            .unwrap(),
        3
    );
    // The mail server comes back and a new gateway starts on the same Redis: once the dead
    // gateway's lease has run out, every mail arrives.
    w.smtp.restart();
    let gw2 = start_gateway(w.dir.path(), &w.text, &w.gw.ca_pem, w.gw.clock.clone()).await;
    let got = w.smtp.wait_for(3, Duration::from_secs(40)).await;
    let mut to: Vec<String> = got
        .iter()
        .map(|m| m["rcpt"][0].as_str().unwrap().to_string())
        .collect();
    to.sort();
    assert_eq!(
        to,
        [
            "admin@example.test",
            "customer@example.test",
            "msp@example.test"
        ]
    );
    eventually(Duration::from_secs(10), "the outbox is empty", || async {
        redis_query::<u64>(w.redis.port, &["ZCARD", "t:{mail}:q"])
            .await
            .unwrap()
            == 0
    })
    .await;
    drop(gw2);
}

/// The 8-digit code in an enrollment code mail.
fn code_in(m: &serde_json::Value) -> String {
    let text = field(m, "text");
    text.split_whitespace()
        .find(|w| w.len() == 8 && w.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in {text}"))
        .to_string()
}

/// Posts the code form of the e-mailed code's page.
async fn post_email_form(
    c: &reqwest::Client,
    gw: &Gw,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let html = c
        .get(url(gw, "/.mfa/enroll"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = csrf(&html);
    let mut form = vec![("csrf", token.as_str())];
    form.extend_from_slice(fields);
    c.post(url(gw, "/.mfa/enroll"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_code_first_enrollment_end_to_end() {
    let w = mail_world("first_enrollment = \"email_code\"").await;
    let gw = &w.gw;
    let c = client(gw);
    let r = login(&c, gw, "customer").await;
    assert_eq!(
        (r.status().as_u16(), location(&r).as_str()),
        (303, "/.mfa/enroll")
    );
    // The enrollment page asks for the mailed code first: no QR code, no pairing code.
    let page = c.get(url(gw, "/.mfa/enroll")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Check your e-mail"), "{html}");
    assert!(
        html.contains("c\u{2022}\u{2022}\u{2022}@example.test"),
        "{html}"
    );
    assert!(
        try_pairing_secret(&html).is_none(),
        "no QR code before the e-mailed code"
    );
    let got = w.smtp.wait_for(1, Duration::from_secs(20)).await;
    let m = &got[0];
    assert_eq!(m["rcpt"], serde_json::json!(["customer@example.test"]));
    assert!(
        field(m, "subject").starts_with("Your code to set up MFA"),
        "{m:#}"
    );
    assert!(!field(m, "text").contains("http") && !field(m, "html").contains("href"));
    let first = code_in(m);
    // Reloading the page sends no second code.
    let _ = c.get(url(gw, "/.mfa/enroll")).send().await.unwrap();
    // A new code on request: only the newest works.
    let r = post_email_form(&c, gw, &[("action", "send-again")]).await;
    assert!(r.text().await.unwrap().contains("A new code is on its way"));
    let got = w.smtp.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 2, "one code per request: {got:#?}");
    let second = code_in(&got[1]);
    assert_ne!(first, second);
    // A wrong (here: the replaced) code is refused and counted like a wrong app code.
    let r = post_email_form(&c, gw, &[("code", first.as_str())]).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Check your e-mail"));
    let g = gw.gateway();
    assert_eq!(g.store.user_failures("customer").await.unwrap(), 1);
    // The right one: on to the QR code, and the enrollment as ever.
    let r = post_email_form(&c, gw, &[("code", second.as_str())]).await;
    assert_eq!(
        (r.status().as_u16(), location(&r).as_str()),
        (303, "/.mfa/enroll")
    );
    let html = c
        .get(url(gw, "/.mfa/enroll"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let secret = pairing_secret(&html);
    let code = mfa_gateway::auth::totp::code_at(&secret, gw.clock.unix());
    let r = c
        .post(url(gw, "/.mfa/enroll"))
        .form(&[("csrf", csrf(&html).as_str()), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    let r = through_recovery_codes(&c, gw, r).await;
    assert_eq!(r.status(), 302);
    assert!(sets_vms_session(&r));
    assert!(g.store.user("customer").await.unwrap().enrolled());
    // The code is used up; the enrollment's own notice follows, without any code.
    let got = w.smtp.wait_for(3, Duration::from_secs(20)).await;
    assert!(field(&got[2], "subject").starts_with("An authenticator app was set up"));
    assert!(!field(&got[2], "text").contains(&second));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_code_without_a_known_address_sends_the_user_to_the_msp() {
    // Only the customer has an address.
    let vms = format!("{DEMO_VMS}\n[vms.role.email_map]\ncustomer = \"customer@example.test\"\n");
    let w = mail_world_with("first_enrollment = \"email_code\"", &vms).await;
    let gw = &w.gw;
    let c = client(gw);
    let r = login(&c, gw, "msp").await;
    assert_eq!(location(&r), "/.mfa/enroll");
    let page = c.get(url(gw, "/.mfa/enroll")).send().await.unwrap();
    assert_eq!(page.status(), 403);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("no address is known for your account"),
        "{html}"
    );
    assert!(try_pairing_secret(&html).is_none());
    assert!(try_csrf(&html).is_none(), "no way forward but the MSP");
    // A code typed anyway changes nothing.
    let r = c
        .post(url(gw, "/.mfa/enroll"))
        .form(&[("csrf", "x"), ("code", "12345678")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!gw.gateway().store.user("msp").await.unwrap().enrolled());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(w.smtp.inbox().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_codes_a_new_phone_and_mfa_turned_off_are_mailed() {
    // MFA is offered (optional) to customers on this date, so it can also be turned off.
    let w = mail_world_at("2021-12-01T09:00:00Z", "", &vms_with_addresses()).await;
    let gw = &w.gw;
    let c = browser_in(gw, "nl");
    assert_eq!(location(&login(&c, gw, "customer").await), "/.mfa/offer");
    let html = get_text(&c, gw, "/.mfa/offer").await;
    let r = post_form(
        &c,
        gw,
        "/.mfa/offer",
        &[("csrf", csrf(&html).as_str()), ("action", "setup")],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/enroll");
    let html = get_text(&c, gw, "/.mfa/enroll").await;
    let secret = pairing_secret(&html);
    let code = mfa_gateway::auth::totp::code_at(&secret, gw.clock.unix());
    let r = post_form(
        &c,
        gw,
        "/.mfa/enroll",
        &[("csrf", csrf(&html).as_str()), ("code", code.as_str())],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/recovery-codes");
    let html = get_text(&c, gw, "/.mfa/recovery-codes").await;
    let codes = recovery_codes(&html);
    let r = post_form(
        &c,
        gw,
        "/.mfa/recovery-codes",
        &[("csrf", csrf(&html).as_str()), ("action", "continue")],
    )
    .await;
    assert_eq!(r.status(), 302);
    w.smtp.wait_for(1, Duration::from_secs(20)).await;

    // A sign-in with a recovery code (a new browser, same language).
    gw.clock.advance(60);
    let c2 = browser_in(gw, "nl");
    assert_eq!(location(&login(&c2, gw, "customer").await), "/.mfa/verify");
    assert_eq!(
        location(&post_code(&c2, gw, "/.mfa/verify", &codes[0]).await),
        "/.mfa/notice"
    );
    let got = w.smtp.wait_for(2, Duration::from_secs(20)).await;
    assert!(
        field(&got[1], "subject").starts_with("Er is ingelogd met een herstelcode"),
        "{:#}",
        got[1]
    );
    assert!(
        field(&got[1], "text").contains("Herstelcodes over: 9"),
        "{:#}",
        got[1]
    );

    // New recovery codes on the settings page.
    gw.clock.advance(30);
    let r = post_code_form(
        &c,
        gw,
        "/.mfa/account",
        "/.mfa/account/recovery-codes",
        &secret,
    )
    .await;
    assert_eq!(r.status(), 200);
    let fresh = recovery_codes(&r.text().await.unwrap());
    let got = w.smtp.wait_for(3, Duration::from_secs(20)).await;
    assert!(
        field(&got[2], "subject").starts_with("Er zijn nieuwe herstelcodes gemaakt"),
        "{:#}",
        got[2]
    );

    // A new phone: one mail (the recovery codes made with it are not a second one).
    gw.clock.advance(30);
    let r = post_code_form(
        &c,
        gw,
        "/.mfa/account",
        "/.mfa/account/replace-phone",
        &secret,
    )
    .await;
    assert_eq!(location(&r), "/.mfa/account/enroll");
    let html = get_text(&c, gw, "/.mfa/account/enroll").await;
    let new_secret = pairing_secret(&html);
    let code = mfa_gateway::auth::totp::code_at(&new_secret, gw.clock.unix());
    let r = post_form(
        &c,
        gw,
        "/.mfa/account/enroll",
        &[("csrf", csrf(&html).as_str()), ("code", code.as_str())],
    )
    .await;
    assert_eq!(r.status(), 200);
    let newest = recovery_codes(&r.text().await.unwrap());
    let got = w.smtp.wait_for(4, Duration::from_secs(20)).await;
    assert!(
        field(&got[3], "subject").starts_with("Je MFA-app is naar een nieuwe telefoon overgezet"),
        "{:#}",
        got[3]
    );

    // MFA turned off.
    gw.clock.advance(30);
    let r = post_code_form(
        &c,
        gw,
        "/.mfa/account",
        "/.mfa/account/disable",
        &new_secret,
    )
    .await;
    assert_eq!(r.status(), 303);
    let got = w.smtp.wait_for(5, Duration::from_secs(20)).await;
    assert!(
        field(&got[4], "subject").starts_with("MFA is uitgezet"),
        "{:#}",
        got[4]
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = w.smtp.inbox();
    assert_eq!(got.len(), 5, "one mail per change: {got:#?}");
    let all_codes: Vec<String> = codes.iter().chain(&fresh).chain(&newest).cloned().collect();
    for m in &got {
        assert_eq!(m["rcpt"], serde_json::json!(["customer@example.test"]));
        assert!(field(m, "text").contains("Hallo customer,"));
        assert_no_secrets(m, &secret, &all_codes);
        assert_no_secrets(m, &new_secret, &[]);
    }
}

/// The address a login leaves with the user, from each kind of source `vms.role` reads
/// (the demo VMS gives `<user>@vms.example` in a header, the JSON login answer and `/api/me`),
/// for a user whose role needs MFA and one whose role does not (noted in the background).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_comes_from_the_vms_as_configured() {
    use crate::mfa_flow::{FORM_LOGIN, JSON_LOGIN, json_login, world_with_role_source};
    let cases = [
        (
            "source = \"header\"\nheader = \"X-VMS-Role\"\nuser_header = \"X-VMS-User\"\nemail_header = \"X-VMS-Email\"",
            FORM_LOGIN,
        ),
        (
            "source = \"json_body\"\npointer = \"/user/role\"\nemail_pointer = \"/user/email\"",
            JSON_LOGIN,
        ),
        (
            "source = \"userinfo\"\nuserinfo_path = \"/api/me\"\nuserinfo_user_pointer = \"/username\"\nuserinfo_role_pointer = \"/role\"\nuserinfo_email_pointer = \"/email\"",
            FORM_LOGIN,
        ),
    ];
    for (role, login_route) in cases {
        let w = world_with_role_source(role, login_route, None).await;
        for user in ["customer", "supplier"] {
            let c = browser_in(&w.gw, "nl-BE, en;q=0.5");
            if login_route == JSON_LOGIN {
                json_login(&c, &w.gw, user).await;
            } else {
                login(&c, &w.gw, user).await;
            }
            let store = w.gw.gateway().store.clone();
            eventually(Duration::from_secs(5), "the address is kept", || async {
                store.contact(user).await.unwrap().email.is_some()
            })
            .await;
            let contact = store.contact(user).await.unwrap();
            assert_eq!(
                contact,
                mfa_gateway::store::Contact {
                    email: Some(format!("{user}@vms.example")),
                    lang: Some("nl".into()),
                },
                "{role}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_browser_is_mailed() {
    // Customers may be remembered for 30 days in the enforced phase.
    let policy = format!("{POLICY}\n[phase.remember_browser_days]\ncustomer = 30\n");
    let w = mail_world_policy(ENFORCED, "", &vms_with_addresses(), &policy).await;
    let gw = &w.gw;
    let secret = enroll(&browser_in(gw, "en"), gw, "customer").await;
    w.smtp.wait_for(1, Duration::from_secs(20)).await;
    let c = browser_in(gw, "en");
    assert_eq!(location(&login(&c, gw, "customer").await), "/.mfa/verify");
    let html = get_text(&c, gw, "/.mfa/verify").await;
    gw.clock.advance(30);
    let code = mfa_gateway::auth::totp::code_at(&secret, gw.clock.unix());
    let r = post_form(
        &c,
        gw,
        "/.mfa/verify",
        &[
            ("csrf", csrf(&html).as_str()),
            ("code", code.as_str()),
            ("remember", "yes"),
        ],
    )
    .await;
    assert_eq!(r.status(), 302);
    let got = w.smtp.wait_for(2, Duration::from_secs(20)).await;
    let m = &got[1];
    assert_eq!(m["rcpt"], serde_json::json!(["customer@example.test"]));
    assert_eq!(
        field(m, "subject"),
        "A browser was remembered for your account - VMS sign-in"
    );
    assert!(field(m, "text").contains("From address: 127.0.0.1"));
    assert!(!field(m, "text").contains(&code));
    assert_no_secrets(m, &secret, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_that_refuses_the_job_does_not_fail_the_sign_in() {
    let w = mail_world("").await;
    // The outbox key holds a string: every ZADD fails (WRONGTYPE), as a store that takes some
    // writes and not others would.
    let _: () = redis_query(w.redis.port, &["SET", "t:{mail}:q", "blocked"])
        .await
        .unwrap();
    let c = client(&w.gw);
    enroll(&c, &w.gw, "customer").await;
    assert_eq!(get_status(&c, &w.gw, "/home").await, 200, "signed in");
    let g = w.gw.gateway();
    assert_eq!(
        g.metrics
            .mail_count(mfa_gateway::metrics::MailResult::EnqueueFailed),
        1
    );
    assert_eq!(
        g.metrics
            .mail_count(mfa_gateway::metrics::MailResult::Queued),
        0
    );
    assert!(g.store.user("customer").await.unwrap().enrolled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_codes_are_limited_to_three_per_quarter_hour() {
    let w = mail_world("first_enrollment = \"email_code\"").await;
    let gw = &w.gw;
    let c = client(gw);
    login(&c, gw, "customer").await;
    let _ = get_text(&c, gw, "/.mfa/enroll").await;
    for _ in 0..2 {
        let r = post_email_form(&c, gw, &[("action", "send-again")]).await;
        assert!(r.text().await.unwrap().contains("A new code is on its way"));
    }
    let r = post_email_form(&c, gw, &[("action", "send-again")]).await;
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("No more codes can be sent right now. Try again in 15 minutes")
    );
    // A new sign-in does not start the count again.
    let c2 = client(gw);
    login(&c2, gw, "customer").await;
    let html = get_text(&c2, gw, "/.mfa/enroll").await;
    assert!(
        html.contains("No more codes can be sent right now"),
        "{html}"
    );
    let got = w.smtp.wait_for(3, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(w.smtp.inbox().len(), 3, "{got:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_email_codes_lock_like_wrong_app_codes() {
    let w = mail_world("first_enrollment = \"email_code\"").await;
    let gw = &w.gw;
    let c = client(gw);
    login(&c, gw, "customer").await;
    let _ = get_text(&c, gw, "/.mfa/enroll").await;
    let got = w.smtp.wait_for(1, Duration::from_secs(20)).await;
    let right = code_in(&got[0]);
    let wrong = if right == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            post_email_form(&c, gw, &[("code", wrong)])
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 429],
        "the fifth wrong code locks"
    );
    // Locked: even the right code is refused now.
    let r = post_email_form(&c, gw, &[("code", right.as_str())]).await;
    assert_eq!(r.status(), 429);
    assert!(
        gw.gateway()
            .store
            .user_lock("customer")
            .await
            .unwrap()
            .is_some()
    );
    let events = gw.gateway().store.audit_recent(20).await.unwrap();
    assert!(
        events
            .iter()
            .filter(|e| e.contains("verify_failure"))
            .count()
            >= 5
    );
    assert!(events.iter().any(|e| e.contains("\"locked\"")));
}

/// STARTTLS and implicit TLS, with a password from a file: the server's certificate is checked
/// against `mail.ca`, and the login goes over TLS only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_over_starttls_or_tls_with_a_login() {
    for mode in ["starttls", "tls"] {
        let certs = certs();
        let smtp = Smtp::start_tls(mode, &certs);
        let redis = RedisProc::start();
        let (vms_addr, _vms, stop) = mfa_gateway::demo::vms::spawn(0).await.unwrap();
        std::mem::forget(stop);
        std::mem::forget(_vms);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &certs.ca_pem).unwrap();
        std::fs::write(dir.path().join("smtp-password"), "s3cret\n").unwrap();
        let mail = format!(
            "[mail]\nhost = \"localhost\"\nport = {}\nsecurity = \"{mode}\"\nca = \"ca.pem\"\n\
             username = \"gw\"\npassword = {{ file = \"smtp-password\" }}\n\
             from = \"mfa@example.test\"\ntimeout = \"2s\"\nretry_after = \"1s\"\n",
            smtp.port
        );
        let text = config_text(&certs, vms_addr, &redis.url(), &vms_with_addresses(), &mail);
        let gw = start_gateway(
            dir.path(),
            &text,
            &certs.ca_pem,
            Clock::manual(at(ENFORCED)),
        )
        .await;
        enroll(&client(&gw), &gw, "customer").await;
        let got = smtp.wait_for(1, Duration::from_secs(20)).await;
        assert_eq!(got[0]["tls"], true, "{mode}: {:#}", got[0]);
        assert_eq!(got[0]["auth"], true, "{mode}");
        assert_eq!(got[0]["rcpt"], serde_json::json!(["customer@example.test"]));
    }
    // Without the test CA the server's certificate is not trusted: nothing is sent (never in
    // plain text), and the job waits with the reason.
    let certs = certs();
    let smtp = Smtp::start_tls("starttls", &certs);
    let redis = RedisProc::start();
    let (vms_addr, _vms, stop) = mfa_gateway::demo::vms::spawn(0).await.unwrap();
    std::mem::forget(stop);
    std::mem::forget(_vms);
    let dir = tempfile::tempdir().unwrap();
    let mail = format!(
        "[mail]\nhost = \"localhost\"\nport = {}\nfrom = \"mfa@example.test\"\ntimeout = \"2s\"\n",
        smtp.port
    );
    let text = config_text(&certs, vms_addr, &redis.url(), &vms_with_addresses(), &mail);
    let gw = start_gateway(
        dir.path(),
        &text,
        &certs.ca_pem,
        Clock::manual(at(ENFORCED)),
    )
    .await;
    enroll(&client(&gw), &gw, "customer").await;
    let mut error = String::new();
    for _ in 0..100 {
        let q: Vec<String> = redis_query(redis.port, &["ZRANGE", "t:{mail}:q", "0", "-1"])
            .await
            .unwrap();
        if let Some(e) = q
            .first()
            .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
            .and_then(|j| j["error"].as_str().map(str::to_string))
        {
            error = e;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert!(smtp.inbox().is_empty());
}

/// A first set-up of a passkey (a role that counts passkeys only) asks for the mailed code
/// first, like an app's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_code_comes_before_a_first_passkey_too() {
    let smtp = Smtp::start();
    let redis = RedisProc::start();
    let (vms_addr, _vms, stop) = mfa_gateway::demo::vms::spawn(0).await.unwrap();
    std::mem::forget(stop);
    std::mem::forget(_vms);
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), crate::passkey::policy()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    let extra = format!("[webauthn]\norigin = \"{origin}\"\n{}", mail_section(&smtp));
    let vms = format!("{DEMO_VMS}\n[vms.role.email_map]\nadmin = \"admin@example.test\"\n");
    let text = config_text(&c, vms_addr, &redis.url(), &vms, &extra)
        .replace("[mfa]\n", "[mfa]\nfirst_enrollment = \"email_code\"\n");
    let gw = start_gateway_on(
        dir.path(),
        &text,
        &c.ca_pem,
        Clock::manual(at("2022-03-02T09:00:00Z")),
        listener,
    )
    .await;
    let b = client(&gw);
    assert_eq!(location(&login(&b, &gw, "admin").await), "/.mfa/passkey");
    let html = get_text(&b, &gw, "/.mfa/passkey").await;
    assert!(html.contains("Check your e-mail"), "{html}");
    assert!(
        crate::passkey::options(&html).is_none(),
        "no passkey set-up yet"
    );
    let got = smtp.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(got[0]["rcpt"], serde_json::json!(["admin@example.test"]));
    let code = code_in(&got[0]);
    let r = post_form(
        &b,
        &gw,
        "/.mfa/passkey",
        &[("csrf", csrf(&html).as_str()), ("code", code.as_str())],
    )
    .await;
    assert_eq!(
        (r.status().as_u16(), location(&r).as_str()),
        (303, "/.mfa/passkey")
    );
    let html = get_text(&b, &gw, "/.mfa/passkey").await;
    assert!(
        crate::passkey::options(&html).is_some(),
        "now the passkey set-up: {html}"
    );
}

/// With `email_code`, a first factor cannot be set up from the settings page, where no code is
/// asked: a user who put the offer off is sent to a sign-in, which mails the code first.
#[tokio::test]
async fn email_code_cannot_be_skipped_from_the_settings_page() {
    let w = mail_world_at(
        "2021-11-15T09:00:00Z",
        "first_enrollment = \"email_code\"",
        &vms_with_addresses(),
    )
    .await;
    let gw = &w.gw;
    let c = client(gw);
    let r = login(&c, gw, "customer").await;
    assert_eq!(location(&r), "/.mfa/offer");
    let html = get_text(&c, gw, "/.mfa/offer").await;
    let r = post_form(
        &c,
        gw,
        "/.mfa/offer",
        &[("csrf", csrf(&html).as_str()), ("action", "postpone")],
    )
    .await;
    assert!(sets_vms_session(&r), "signed in without MFA (opt-in)");
    let html = get_text(&c, gw, "/.mfa/account").await;
    let r = post_form(
        &c,
        gw,
        "/.mfa/account/set-up",
        &[("csrf", csrf(&html).as_str())],
    )
    .await;
    assert_eq!(r.status(), 409);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("A code is then sent to your e-mail address first"),
        "{text}"
    );
    assert!(try_pairing_secret(&text).is_none(), "no pairing");
    let r = c.get(url(gw, "/.mfa/account/enroll")).send().await.unwrap();
    let text = r.text().await.unwrap();
    assert!(try_pairing_secret(&text).is_none(), "no pairing started");
    assert!(
        !gw.gateway()
            .store
            .user("customer")
            .await
            .unwrap()
            .enrolled()
    );
}

/// The e-mailed code's store step on Redis: a wrong code leaves the right one, the right one
/// goes once, and no code pending (expired, or never sent) is told apart from a wrong one,
/// so it is not counted as a guess.
#[tokio::test]
async fn an_emailed_code_is_right_wrong_or_not_pending_in_one_step() {
    use mfa_gateway::store::{CodeIssue, CodeTake};
    let w = mail_world("first_enrollment = \"email_code\"").await;
    let store = &w.gw.gateway().store;
    assert_eq!(
        store.email_code_take("nobody", "h1").await.unwrap(),
        CodeTake::NonePending
    );
    let ttl = Duration::from_secs(900);
    assert_eq!(
        store.email_code_issue("ann", "h1", ttl, 3).await.unwrap(),
        CodeIssue::Stored { n: 1 }
    );
    assert_eq!(
        store.email_code_take("ann", "h2").await.unwrap(),
        CodeTake::Wrong
    );
    assert_eq!(
        store.email_code_take("ann", "h1").await.unwrap(),
        CodeTake::Right
    );
    assert_eq!(
        store.email_code_take("ann", "h1").await.unwrap(),
        CodeTake::NonePending
    );
}
