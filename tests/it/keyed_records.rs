//! Finding 9: recovery codes keyed by the key ring, and signed audit records. Someone with
//! write access to Redis but without the key ring can neither plant a recovery code that
//! passes MFA nor change or make up an audit record unnoticed.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mfa_gateway::auth::crypto::{self, KeyRing};
use mfa_gateway::auth::recovery;

use crate::mfa_flow::{enroll, world};
use crate::support::browser::{location, login, post_code, sets_vms_session};
use crate::support::*;

const ENFORCED: &str = "2022-02-01T09:00:00Z";
const PLANTED: &str = "1111 2222 3333 4444 5555";

/// A record of `PLANTED` as an earlier version stored it (PBKDF2, salted, no key).
fn unkeyed_record() -> String {
    let salt = [7u8; 16];
    let mut hash = [0u8; 32];
    aws_lc_rs::pbkdf2::derive(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(10_000).unwrap(),
        &salt,
        PLANTED.replace(' ', "").as_bytes(),
        &mut hash,
    );
    format!(
        "pbkdf2-sha256$10000${}${}",
        URL_SAFE_NO_PAD.encode(salt),
        URL_SAFE_NO_PAD.encode(hash)
    )
}

#[tokio::test]
async fn a_recovery_code_planted_in_redis_does_not_pass() {
    let w = world(ENFORCED, "").await;
    let port = w.redis.port;
    enroll(&client(&w.gw), &w, "customer").await;
    let key = "t:{u:customer}";
    let stored: String = redis_query(port, &["HGET", key, "recovery"]).await.unwrap();
    assert_eq!(stored.lines().count(), 10);
    assert!(
        stored
            .lines()
            .all(|l| l.starts_with("pbkdf2-sha256-keyed$k1$10000$")),
        "{stored}"
    );
    // The attacker knows the password and can write to Redis, but has no key ring: a record
    // of the unkeyed kind, one made with a key ring of their own (same key id), and a keyed
    // record the gateway made for another user's code are added to the customer's codes.
    let own = KeyRing::new(
        "k1",
        vec![(
            "k1".to_string(),
            crypto::parse_key_material(&crypto::generate_key_material()).unwrap(),
        )],
    )
    .unwrap();
    let foreign_keyed = recovery::hash(&own, "customer", PLANTED).unwrap();
    let planted = format!("{stored}\n{}\n{foreign_keyed}", unkeyed_record());
    let _: i64 = redis_query(port, &["HSET", key, "recovery", &planted])
        .await
        .unwrap();
    let c = client(&w.gw);
    assert_eq!(
        location(&login(&c, &w.gw, "customer").await),
        "/.mfa/verify"
    );
    let r = post_code(&c, &w.gw, "/.mfa/verify", PLANTED).await;
    assert_eq!(r.status(), 200, "refused like any wrong code");
    assert!(!sets_vms_session(&r));
    let r = post_code(&c, &w.gw, "/.mfa/verify", &PLANTED.replace(' ', "-")).await;
    assert_eq!(r.status(), 200);
    assert!(!sets_vms_session(&r));
    let left: String = redis_query(port, &["HGET", key, "recovery"]).await.unwrap();
    assert_eq!(left.lines().count(), 12, "nothing consumed");
    // The administration page counts only the records that can still match a code.
    let status = w.gw.gateway().ops().status("customer", 0).await.unwrap();
    assert_eq!(
        status.recovery_codes_left, 11,
        "10 real, 1 keyed (by another ring)"
    );
}

/// Runs the command line and returns (success, stdout, stderr).
fn cli(args: &[&str]) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mfa-gateway"));
    cmd.args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = run_bounded(cmd, Duration::from_secs(30));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_changed_or_made_up_audit_record_is_detected() {
    let w = world(ENFORCED, "").await;
    let port = w.redis.port;
    enroll(&client(&w.gw), &w, "customer").await;
    let cfg = w.gw.dir.join("gateway.toml");
    let cfg = cfg.to_str().unwrap();
    let export = |extra: &[&str]| {
        let mut args = vec!["audit", "export", "--since", "2020-01-01", "--config", cfg];
        args.extend_from_slice(extra);
        cli(&args)
    };
    // Every record the gateway wrote is signed and verifies.
    let (ok, out, err) = export(&["--verify"]);
    assert!(ok, "{err}");
    let n = out.lines().count();
    assert!(n >= 2, "{out}");
    assert!(
        err.contains(&format!("{n} valid, 0 not signed, 0 not matching")),
        "{err}"
    );
    assert!(out.lines().all(|l| l.contains(r#""sig":"k1."#)), "{out}");

    // Someone with Redis write access adds records: a copy of a real one with another user
    // (signature kept), and one without a signature.
    let real = out.lines().last().unwrap();
    let changed = real.replacen(r#""user":"customer""#, r#""user":"mallory""#, 1);
    assert_ne!(changed, real);
    let mut unsigned: serde_json::Value = serde_json::from_str(real).unwrap();
    unsigned.as_object_mut().unwrap().remove("sig");
    let unsigned = unsigned.to_string();
    for forged in [&changed, &unsigned] {
        let _: String = redis_query(port, &["XADD", "t:{audit}", "*", "r", forged])
            .await
            .unwrap();
    }
    let (ok, out, err) = export(&["--verify"]);
    assert!(!ok, "a forged record fails the export");
    assert!(
        err.contains(&format!("{n} valid, 1 not signed, 1 not matching")),
        "{err}"
    );
    assert!(
        err.contains("user=mallory") && err.contains("SIGNATURE DOES NOT MATCH"),
        "{err}"
    );
    // The same check on a file (an export, or records from the log pipeline).
    let file = w.gw.dir.join("export.jsonl");
    std::fs::write(&file, &out).unwrap();
    let (ok, _, err) = cli(&[
        "audit",
        "verify",
        "--config",
        cfg,
        "--file",
        file.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        err.contains(&format!("{n} valid, 1 not signed, 1 not matching")),
        "{err}"
    );
    let clean: String = out.lines().take(n).map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, clean).unwrap();
    let (ok, _, err) = cli(&[
        "audit",
        "verify",
        "--config",
        cfg,
        "--file",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
}
