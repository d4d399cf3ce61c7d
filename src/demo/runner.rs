//! `mfa-gateway demo`: the demo VMS and the gateway in front of it, in one process.
//!
//! It is what a newcomer runs first: no files to prepare, no Redis needed (it uses one when
//! it answers), a development certificate made on the spot, and a banner that says where to
//! go and how to enroll an authenticator app.

use std::path::PathBuf;

use crate::config::{Config, Mode};
use crate::run::{Options, start};

const DEFAULT_CONFIG: &str = "config/demo.toml";

pub async fn run(config: Option<PathBuf>) -> Result<(), String> {
    let path = config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read {}: {e} (run the demo from the repository root)",
            path.display()
        )
    })?;
    let cfg = Config::from_toml(&text, &path, Mode::Demo)
        .map_err(|e| format!("{} is not valid:\n{e}", path.display()))?;
    let upstream = cfg.upstream.authority.clone();
    let vms_listener = tokio::net::TcpListener::bind(&upstream)
        .await
        .map_err(|e| format!("demo VMS cannot listen on {upstream}: {e}"))?;
    let vms = super::vms::DemoVms::new();
    let (stop_vms, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(vms.serve(vms_listener, async move {
        let _ = stopped.await;
    }));
    let running = start(
        cfg,
        Options {
            demo: true,
            dev_cert_dir: Some(PathBuf::from("certs/dev")),
            ..Options::default()
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let https = running.listeners.https;
    let store = running.gateway.store.kind();
    let ca = running
        .dev_ca
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    println!("{}", banner(&https.to_string(), &upstream, store, &ca));
    crate::run::run_until_signal(running).await;
    let _ = stop_vms.send(());
    Ok(())
}

fn banner(https: &str, upstream: &str, store: &str, ca: &str) -> String {
    let store_line = if store == "memory" {
        "Store:       IN-MEMORY (no Redis answered) - nothing is shared or kept; demo only"
    } else {
        "Store:       Redis at redis://127.0.0.1:6379 (key prefix mfa-demo:)"
    };
    let port = https.rsplit(':').next().unwrap_or("8443");
    format!(
        r#"
================================================================================
 mfa-gateway DEMO
================================================================================
 Open:        https://localhost:{port}/   (gateway, TLS, in front of the demo VMS)
 Script app:  https://localhost:{port}/app   (a front end that signs in by fetch)
 Demo VMS:    http://{upstream}/   (the stand-in legacy VMS; do not use directly)
 {store_line}
 Certificate: development CA at {ca}
              (your browser will warn: accept it, or import that CA for this demo)

 Accounts (password "demo" for all):
   admin       Administrator          MFA enforced (policy phase of 2022-01-01)
   msp         MSP                    MFA enforced
   customer    Customer               MFA enforced
   supplier    Supplier               no MFA (not offered to this role)
   contractor  IndependentContractor  no MFA
   resource    Resource               no MFA

 First login of admin/msp/customer: the gateway shows a QR code. Scan it with an
 authenticator app (Google, Microsoft, Salesforce, Authy or LastPass Authenticator),
 or type the pairing code, then enter the 6-digit code the app shows. Next logins
 ask only for the code. Stop with Ctrl-C.
================================================================================
"#
    )
}
