//! The systemd unit: hardening directives, `systemd-analyze verify`, and the shipped
//! gateway.toml run, reloaded and stopped the way the unit does it.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mfa_gateway::config::parse_duration;

use super::common::*;
use crate::support::free_port;

/// `Key=value` lines of a unit file's `[Service]` section (later lines win, as in systemd,
/// except that an empty value is kept as such).
fn service_directives(unit: &str) -> Vec<(String, String)> {
    let mut in_service = false;
    let mut out = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
        } else if in_service && !line.is_empty() && !line.starts_with('#') {
            let (k, v) = line.split_once('=').unwrap();
            out.push((k.to_string(), v.to_string()));
        }
    }
    out
}

fn directive<'a>(d: &'a [(String, String)], key: &str) -> &'a str {
    d.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{key}= missing"))
}

#[test]
fn systemd_unit_is_hardened_and_fits_the_configuration() {
    let unit = read("deploy/systemd/mfa-gateway.service");
    let d = service_directives(&unit);
    for (k, v) in [
        ("User", "mfa-gateway"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("ReadOnlyPaths", "/etc/mfa-gateway"),
        ("Restart", "on-failure"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("EnvironmentFile", "/etc/mfa-gateway/mfa-gateway.env"),
    ] {
        assert_eq!(directive(&d, k), v, "{k}=");
    }
    assert!(
        d.iter()
            .any(|(k, v)| k == "SystemCallFilter" && v == "@system-service")
    );

    let cfg: toml::Value = toml::from_str(&read("deploy/systemd/gateway.toml")).unwrap();
    let grace = parse_duration(cfg["server"]["shutdown_grace"].as_str().unwrap()).unwrap();
    let stop = parse_duration(directive(&d, "TimeoutStopSec")).unwrap();
    assert!(
        stop > grace,
        "TimeoutStopSec {stop:?} <= shutdown_grace {grace:?}"
    );
    // One descriptor per client connection and up to one per upstream connection.
    let max_conn = cfg["server"]["max_connections"].as_integer().unwrap();
    let nofile: i64 = directive(&d, "LimitNOFILE").parse().unwrap();
    assert!(
        nofile > 2 * max_conn,
        "LimitNOFILE {nofile} for {max_conn} connections"
    );
    // Port 8443 needs no capability; the drop-in grants exactly the one for low ports.
    assert!(port_of(cfg["server"]["listen"].as_str().unwrap()) >= 1024);
    let low = service_directives(&read("deploy/systemd/low-port.conf"));
    assert_eq!(
        directive(&low, "CapabilityBoundingSet"),
        "CAP_NET_BIND_SERVICE"
    );
    assert_eq!(
        directive(&low, "AmbientCapabilities"),
        "CAP_NET_BIND_SERVICE"
    );
}

/// Runs `systemd-analyze verify` on a unit text; None when the command is missing.
fn systemd_verify(dir: &Path, unit_text: &str) -> Option<(bool, String)> {
    let path = dir.join("mfa-gateway.service");
    std::fs::write(&path, unit_text).unwrap();
    let out = match Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
    {
        Ok(o) => o,
        Err(_) => return None,
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    // verify checks that ExecStart's binary exists: point it at the one just built.
    let unit = swap(
        &read("deploy/systemd/mfa-gateway.service"),
        "ExecStart=/usr/local/bin/mfa-gateway ",
        &format!("ExecStart={BIN} "),
    );
    let Some((ok, text)) = systemd_verify(dir.path(), &unit) else {
        eprintln!("NOTE: systemd-analyze not found; the unit was not verified");
        return;
    };
    // Unknown or misspelt settings are only warnings: any output about the unit fails.
    assert!(ok && !text.contains("mfa-gateway.service"), "{text}");
    let with_drop_in = format!("{unit}\n{}", read("deploy/systemd/low-port.conf"));
    let (ok, text) = systemd_verify(dir.path(), &with_drop_in).unwrap();
    assert!(ok && !text.contains("mfa-gateway.service"), "{text}");
    // The check can fail: a misspelt setting is reported.
    let broken = swap(&unit, "ProtectHome=yes", "ProtectHomes=yes");
    let (_, text) = systemd_verify(dir.path(), &broken).unwrap();
    assert!(text.contains("ProtectHomes"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_config_runs_reloads_and_stops_as_the_unit_runs_it() {
    let tmp = tempfile::tempdir().unwrap();
    let etc = tmp.path().join("etc/mfa-gateway");
    let (_redis, redis_url) = redis_with_password(tmp.path());
    let (vms, _, _stop) = mfa_gateway::demo::vms::spawn(0).await.unwrap();
    let (https, metrics) = (free_port(), free_port());

    let dev = dev_cert(&etc.join("tls"));
    assert!(
        dev.server.cert.ends_with("tls/server.pem") && dev.server.key.ends_with("tls/server.key")
    );
    let mut text = read("deploy/systemd/gateway.toml");
    text = swap(&text, "/etc/mfa-gateway/", &format!("{}/", etc.display()));
    text = swap(&text, "\"0.0.0.0:8443\"", &format!("\"127.0.0.1:{https}\""));
    text = swap(
        &text,
        "\"127.0.0.1:9090\"",
        &format!("\"127.0.0.1:{metrics}\""),
    );
    text = swap(&text, "http://127.0.0.1:8080", &format!("http://{vms}"));
    text = swap(&text, "redis://127.0.0.1:6379/0", &redis_url);
    write(&etc.join("gateway.toml"), &text);
    write(&etc.join("policy.toml"), &read("config/policy.toml"));

    let example = env_file(&read("deploy/systemd/mfa-gateway.env.example"));
    let names: BTreeSet<String> = example.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(names, secret_env_names(&text), "env file vs gateway.toml");
    let filled = fill_secrets(&example);
    assert_placeholders_refused_and_secrets_accepted(&etc.join("gateway.toml"), &example, &filled);

    let unit = service_directives(&read("deploy/systemd/mfa-gateway.service"));
    let exec: Vec<String> = directive(&unit, "ExecStart")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(exec[0], "/usr/local/bin/mfa-gateway");
    let args = args_moved(&exec[1..], "/etc/mfa-gateway/", &etc);
    let mut gw = Proc::spawn(
        Command::new(BIN).args(&args).envs(filled),
        tmp.path().join("gateway.log"),
    );
    let ca = std::fs::read_to_string(&dev.ca).unwrap();
    let client = assert_serving(&ca, https, metrics, &gw).await;

    // ExecReload: SIGHUP reloads and the process stays.
    gw.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gw.log().contains("certificate unchanged") {
        assert!(Instant::now() < deadline, "{}", gw.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gw.is_running(), "still running after SIGHUP");
    // The SIGHUP line names its trigger and the served certificate's expiry, as the file
    // watcher's lines do.
    let log = gw.log();
    let line: serde_json::Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "TLS certificate unchanged: the files are as last read")
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(line["trigger"], "SIGHUP", "{line}");
    let not_after = line["not_after"].as_str().unwrap();
    assert!(
        not_after.parse::<jiff::Timestamp>().is_ok(),
        "not_after {not_after:?} in {line}"
    );
    wait_ready(&client, https, &gw).await;
    drop(client);

    // systemctl stop: SIGTERM, and a clean exit well within TimeoutStopSec.
    gw.signal("TERM");
    let stop = parse_duration(directive(&unit, "TimeoutStopSec")).unwrap();
    let status = gw.wait_exit(stop);
    assert!(status.success(), "{status}\n{}", gw.log());
    assert_json_logs(&gw.log());
}
