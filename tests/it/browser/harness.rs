//! The browser under test: ChromeDriver and headless Chromium as processes of the test, the
//! world behind them (Redis, the demo VMS, the gateway with TLS), and the checks made on each
//! gateway page (axe-core, screenshots).
//!
//! Chromium reaches the gateway as `https://vms.example.test:PORT`: the name is mapped to
//! 127.0.0.1 with `--host-resolver-rules`, and the test certificate is accepted by pinning the
//! server key (`--ignore-certificate-errors-spki-list`), so no other certificate error is
//! ignored and nothing is added to a trust store.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use mfa_gateway::clock::Clock;
use mfa_gateway::pages::Lang;
use serde_json::{Value, json};
use thirtyfour::prelude::*;

use crate::support::*;

/// The gateway's name as the browser sees it.
pub const HOST: &str = "vms.example.test";

/// Another name of the gateway's address (and certificate), as a phishing page that relays
/// the gateway would have: passkeys are bound to [`HOST`] and must not work here.
pub const PHISH: &str = "vms-login.example.test";

/// The vendored axe-core script (tests/vendor/axe-core/README.md).
const AXE: &str = include_str!("../../vendor/axe-core/axe.min.js");

/// Screenshot widths: a phone (390 CSS px, as an iPhone 12-15) and a laptop.
const WIDTHS: [u32; 2] = [390, 1280];

/// axe rules whose moderate or minor findings are accepted, as (rule id, why). Serious and
/// critical findings are never accepted. Empty: every finding so far was fixed in the pages
/// (the admin user page's events table was a second landmark named like its section,
/// `landmark-unique`; it is a named group now).
const ACCEPTED: &[(&str, &str)] = &[];

/// Where screenshots go: `target/browser-screenshots/<test>/`.
fn screenshot_dir(test: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("browser-screenshots").join(test)
}

/// Whether every screenshot is written (`MFAGW_SCREENSHOTS=1`), not only those of a failed
/// test.
fn always_write_screenshots() -> bool {
    std::env::var("MFAGW_SCREENSHOTS").is_ok_and(|v| v == "1")
}

/// A program on `PATH`, or a clear failure: the browser tests never pass without a browser.
fn require_program(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: the browser tests (tests/it/browser/) drive headless \
                 Chromium through ChromeDriver. Install Debian's packages with \
                 `apt-get install chromium chromium-driver` (./scripts/test does this)."
            )
        })
}

/// A `chromedriver` process of this test on a free port, in a process group of its own so
/// that the Chromium it starts is ended with it.
pub struct ChromeDriver {
    child: Child,
    pub port: u16,
    stopped: bool,
    /// TMPDIR of ChromeDriver and Chromium: the profile and the shared-memory files
    /// (`--disable-dev-shm-usage`) go here and are removed with it, also after a kill.
    tmp: Option<tempfile::TempDir>,
}

impl ChromeDriver {
    pub fn start() -> Self {
        use std::os::unix::process::CommandExt as _;
        let program = require_program("chromedriver");
        let port = free_port();
        let tmp = tempfile::tempdir().unwrap();
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .env("TMPDIR", tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("chromedriver could not be started: {e}"));
        let driver = ChromeDriver {
            child,
            port,
            stopped: false,
            tmp: Some(tmp),
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not listen on port {port} within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }
}

impl ChromeDriver {
    fn stop(&mut self) {
        if self.stopped {
            // Reaped: the id may be another process's by now.
            return;
        }
        self.stopped = true;
        // The whole group: chromedriver and every Chromium process it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Chromium's processes may still be exiting and writing: the removal is retried.
        if let Some(tmp) = self.tmp.take() {
            let path = tmp.keep();
            for _ in 0..20 {
                if std::fs::remove_dir_all(&path).is_ok() || !path.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How a browser session is set up.
#[derive(Clone, Copy)]
pub struct Options {
    /// The browser's language (`Accept-Language`).
    pub lang: Lang,
    /// JavaScript on (the default of every browser) or off.
    pub javascript: bool,
}

/// The base64 SHA-256 of the server key's SubjectPublicKeyInfo, for Chromium's
/// `--ignore-certificate-errors-spki-list`.
fn spki_pin(key_pem_file: &std::path::Path) -> String {
    let pem = std::fs::read_to_string(key_pem_file).unwrap();
    use rcgen::PublicKeyData as _;
    let key = rcgen::KeyPair::from_pem(&pem).unwrap();
    let digest = mfa_gateway::auth::crypto::sha256(&key.subject_public_key_info());
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// One page as it was seen: its name, and a PNG at each of [`WIDTHS`].
struct Shot {
    name: String,
    pngs: Vec<(u32, Vec<u8>)>,
}

/// A Chromium session through the gateway, with the checks every gateway page gets.
pub struct Browser {
    pub driver: WebDriver,
    /// `https://vms.example.test:PORT`
    pub base: String,
    test: String,
    shots: Vec<Shot>,
    /// Pages checked with axe, for the test's own summary.
    pub axe_pages: usize,
    opts: Options,
    // Last: ends Chromium after the session's other fields are gone.
    _chromedriver: ChromeDriver,
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium for the gateway at `gw_port`, trusting the
    /// server key in `key_file`.
    pub async fn start(
        test: &str,
        gw_port: u16,
        key_file: &std::path::Path,
        opts: Options,
    ) -> Self {
        let chromium = require_program("chromium");
        let chromedriver = ChromeDriver::start();
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(&chromium.display().to_string()).unwrap();
        let lang = match opts.lang {
            Lang::En => "en-GB,en",
            Lang::Nl => "nl-NL,nl",
        };
        for arg in [
            "--headless=new".to_string(),
            // Root in a container has no user namespace for the sandbox.
            "--no-sandbox".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-gpu".into(),
            "--disable-extensions".into(),
            "--no-first-run".into(),
            "--window-size=1280,900".into(),
            format!("--host-resolver-rules=MAP {HOST} 127.0.0.1, MAP {PHISH} 127.0.0.1"),
            format!(
                "--ignore-certificate-errors-spki-list={}",
                spki_pin(key_file)
            ),
            format!("--accept-lang={lang}"),
            format!("--lang={}", opts.lang.code()),
        ] {
            caps.add_arg(&arg).unwrap();
        }
        let mut prefs = json!({ "intl": { "accept_languages": lang } });
        if !opts.javascript {
            caps.add_arg("--blink-settings=scriptEnabled=false")
                .unwrap();
            prefs["profile"] = json!({ "managed_default_content_settings": { "javascript": 2 } });
        }
        caps.add_experimental_option("prefs", prefs).unwrap();
        let driver = WebDriver::new(format!("http://127.0.0.1:{}", chromedriver.port), caps)
            .await
            .unwrap_or_else(|e| panic!("Chromium session could not be started: {e}"));
        driver
            .set_page_load_timeout(Duration::from_secs(20))
            .await
            .unwrap();
        Browser {
            driver,
            base: format!("https://{HOST}:{gw_port}"),
            test: test.to_string(),
            shots: Vec::new(),
            axe_pages: 0,
            opts,
            _chromedriver: chromedriver,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn goto(&self, path: &str) {
        self.driver.goto(self.url(path)).await.unwrap();
    }

    /// The path (and query) of the page shown.
    pub async fn path(&self) -> String {
        let u = self.driver.current_url().await.unwrap();
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        }
    }

    /// Waits until the browser shows `path` (a form post navigates after the click returns).
    pub async fn wait_path(&self, path: &str) {
        let start = Instant::now();
        loop {
            let now = self.path().await;
            if now == path {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "expected {path}, the browser shows {now}: {}",
                self.text("body").await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn find(&self, css: &str) -> WebElement {
        match self.driver.find(By::Css(css)).await {
            Ok(el) => el,
            Err(e) => panic!("no `{css}` on {}: {e}", self.path().await),
        }
    }

    pub async fn find_all(&self, css: &str) -> Vec<WebElement> {
        self.driver.find_all(By::Css(css)).await.unwrap()
    }

    /// The visible text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        match self.driver.find(By::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Types `text` into the field `css` (emptied first).
    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Clicks the button (or link) whose visible text is exactly `label`.
    pub async fn click_text(&self, label: &str) {
        for el in self.find_all("main button, main a").await {
            if el.text().await.unwrap_or_default().trim() == label {
                self.click_and_wait(&el).await;
                return;
            }
        }
        panic!(
            "no button or link `{label}` on {}: {}",
            self.path().await,
            self.text("body").await
        );
    }

    /// Clicks `el` and waits until the page it leads to has loaded: the old document is gone
    /// (its root element is stale) and the new one is complete. A form that posts back to
    /// its own URL leaves nothing else to wait for.
    pub async fn click_and_wait(&self, el: &WebElement) {
        let old = self.find("html").await;
        el.click().await.unwrap();
        let start = Instant::now();
        while old.tag_name().await.is_ok() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the click on {} led nowhere",
                el.outer_html().await.unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        loop {
            let state = self
                .driver
                .execute("return document.readyState;", vec![])
                .await
                .map(|r| r.json().clone());
            if matches!(&state, Ok(v) if v == "complete") {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "page load: {state:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The element that has the keyboard focus, as (tag name, id).
    pub async fn focused(&self) -> (String, String) {
        let el = self.driver.active_element().await.unwrap();
        (
            el.tag_name().await.unwrap(),
            el.id().await.unwrap().unwrap_or_default(),
        )
    }

    /// Checks the gateway page now shown at `path`: it is that page, in the browser's
    /// language, axe finds nothing serious, and it is photographed at both widths.
    pub async fn check_page(&mut self, name: &str, path: &str) {
        self.wait_path(path).await;
        let lang = self.driver.find(By::Css("html")).await.unwrap();
        assert_eq!(
            lang.attr("lang").await.unwrap().as_deref(),
            Some(self.opts.lang.code()),
            "{name}: page language"
        );
        self.screenshots(name).await;
        if self.opts.javascript {
            self.axe(name).await;
        }
    }

    /// Runs axe-core on the page; serious and critical violations fail the test, and so do
    /// moderate and minor ones of rules not in [`ACCEPTED`].
    async fn axe(&mut self, name: &str) {
        let loaded = self
            .driver
            .execute("return typeof axe !== 'undefined';", vec![])
            .await
            .unwrap();
        if loaded.json() != &Value::Bool(true) {
            self.driver.execute(AXE, vec![]).await.unwrap();
        }
        let result = self
            .driver
            .execute(
                r#"return axe.run(document, { resultTypes: ['violations'] }).then(r =>
                    r.violations.map(v => ({
                        id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.map(n => n.target.join(' ') + ' | ' + n.failureSummary)
                    })));"#,
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: axe did not run: {e}"));
        let violations = result.json().as_array().cloned().unwrap_or_default();
        let refused: Vec<&Value> = violations
            .iter()
            .filter(|v| {
                let impact = v["impact"].as_str().unwrap_or("serious");
                let id = v["id"].as_str().unwrap_or_default();
                matches!(impact, "serious" | "critical")
                    || !ACCEPTED.iter().any(|(rule, _)| *rule == id)
            })
            .collect();
        assert!(
            refused.is_empty(),
            "{name} ({}): axe-core found {}",
            self.path().await,
            serde_json::to_string_pretty(&refused).unwrap()
        );
        self.axe_pages += 1;
    }

    /// A full-page PNG of the page at each of [`WIDTHS`], kept until the end of the test.
    async fn screenshots(&mut self, name: &str) {
        let cdp = self.driver.cdp();
        let mut pngs = Vec::new();
        for width in WIDTHS {
            // A phone has a touch screen (coarse pointer). Headless Chromium has no pointer
            // at all, so the laptop shot also shows what `.phone-only` hides behind a mouse.
            cdp.send_raw(
                "Emulation.setTouchEmulationEnabled",
                json!({ "enabled": width < 600, "maxTouchPoints": 5 }),
            )
            .await
            .unwrap();
            cdp.send_raw(
                "Emulation.setDeviceMetricsOverride",
                json!({ "width": width, "height": 800, "deviceScaleFactor": 1,
                        "mobile": width < 600 }),
            )
            .await
            .unwrap();
            let metrics = cdp
                .send_raw("Page.getLayoutMetrics", json!({}))
                .await
                .unwrap();
            let height = metrics["cssContentSize"]["height"]
                .as_f64()
                .unwrap_or(800.0)
                .max(800.0);
            let shot = cdp
                .send_raw(
                    "Page.captureScreenshot",
                    json!({ "format": "png", "captureBeyondViewport": true,
                            "clip": { "x": 0, "y": 0, "width": width, "height": height,
                                      "scale": 1 } }),
                )
                .await
                .unwrap();
            let data = shot["data"].as_str().unwrap_or_default();
            let png = base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap();
            pngs.push((width, png));
        }
        cdp.send_raw("Emulation.clearDeviceMetricsOverride", json!({}))
            .await
            .unwrap();
        cdp.send_raw(
            "Emulation.setTouchEmulationEnabled",
            json!({ "enabled": false }),
        )
        .await
        .unwrap();
        self.shots.push(Shot {
            name: name.to_string(),
            pngs,
        });
    }

    /// Writes the screenshots (all of them with `MFAGW_SCREENSHOTS=1`) and ends the session.
    pub async fn finish(mut self) {
        if always_write_screenshots() {
            self.write_screenshots();
        }
        self.shots.clear();
        let driver = self.driver.clone();
        driver.quit().await.unwrap();
    }

    fn write_screenshots(&self) {
        let dir = screenshot_dir(&self.test);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, shot) in self.shots.iter().enumerate() {
            for (width, png) in &shot.pngs {
                let file = dir.join(format!("{:02}-{}-{width}.png", i + 1, shot.name));
                std::fs::write(file, png).unwrap();
            }
        }
        eprintln!("browser screenshots of {}: {}", self.test, dir.display());
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed test: every page seen so far, the failing one included, for a look.
        if std::thread::panicking() && !self.shots.is_empty() {
            self.write_screenshots();
        }
        // No session teardown on the way out of a failed test (thirtyfour would block for
        // up to two minutes on it): the session ends with the processes.
        let _ = self.driver.clone().leak();
        self._chromedriver.stop();
    }
}

/// Redis, the demo VMS and the gateway (real TLS, manual clock), for a browser.
pub struct World {
    pub gw: Gw,
    pub key_file: PathBuf,
    _redis: RedisProc,
    _dir: tempfile::TempDir,
    _certs: Certs,
}

impl World {
    /// A world on `date` (the policy phase follows from it), `mfa_extra` added to `[mfa]`.
    pub async fn start(date: &str, mfa_extra: &str) -> Self {
        Self::start_vms(date, mfa_extra, DEMO_VMS).await
    }

    /// [`World::start`] with another `[vms]` section than the demo's usual one.
    pub async fn start_vms(date: &str, mfa_extra: &str, vms: &str) -> Self {
        let (vms_addr, _vms, stop) = mfa_gateway::demo::vms::spawn(0).await.unwrap();
        std::mem::forget(stop);
        Self::start_upstream(date, mfa_extra, vms, vms_addr).await
    }

    /// A world whose VMS is whatever listens at `upstream` (or nothing).
    pub async fn start_upstream(
        date: &str,
        mfa_extra: &str,
        vms: &str,
        vms_addr: std::net::SocketAddr,
    ) -> Self {
        let redis = RedisProc::start();
        let certs = certs_for(&[HOST]);
        let dir = tempfile::tempdir().unwrap();
        let text = config_text(&certs, vms_addr, &redis.url(), vms, "").replace(
            "revocation_poll = \"200ms\"",
            &format!("revocation_poll = \"200ms\"\n{mfa_extra}"),
        );
        let gw = start_gateway(dir.path(), &text, &certs.ca_pem, Clock::manual(at(date))).await;
        World {
            gw,
            key_file: certs.key.clone(),
            _redis: redis,
            _dir: dir,
            _certs: certs,
        }
    }

    pub async fn browser(&self, test: &str, opts: Options) -> Browser {
        Browser::start(test, self.gw.addr.port(), &self.key_file, opts).await
    }

    /// The TOTP code of `secret` now, by the gateway's clock.
    pub fn code(&self, secret: &[u8]) -> String {
        mfa_gateway::auth::totp::code_at(secret, self.gw.clock.unix())
    }
}
