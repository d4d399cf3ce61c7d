//! The Dockerfile (built like CI, runs unprivileged) and compose.yaml: the two commands its
//! containers run, started side by side on loopback, put a working gateway in front of the
//! demo VMS.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mfa_gateway::config::DEFAULT_PREFIX;
use yaml_rust2::Yaml;

use super::common::*;
use crate::support::free_port;

/// Dockerfile instructions, continuation lines joined: (INSTRUCTION, rest).
fn dockerfile() -> Vec<(String, String)> {
    let text = read("deploy/container/Dockerfile");
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if current.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(t);
        let (ins, rest) = current.split_once(' ').unwrap();
        out.push((ins.to_uppercase(), rest.trim().to_string()));
        current.clear();
    }
    out
}

fn instructions(df: &[(String, String)], ins: &str) -> Vec<String> {
    df.iter()
        .filter(|(i, _)| i == ins)
        .map(|(_, r)| r.clone())
        .collect()
}

fn json_args(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("exec form expected ({e}): {s}"))
}

#[test]
fn dockerfile_builds_like_ci_and_runs_unprivileged() {
    let df = dockerfile();
    let from = instructions(&df, "FROM");
    assert_eq!(from.len(), 2, "two stages: {from:?}");
    assert!(
        from[0].starts_with("rust:") && from[0].contains("bookworm"),
        "{from:?}"
    );
    assert!(from[1].starts_with("debian:bookworm-slim"), "{from:?}");
    // The builder's Rust is at least the crate's rust-version.
    let arg = instructions(&df, "ARG");
    let rust = arg
        .iter()
        .find_map(|a| a.strip_prefix("RUST_VERSION="))
        .expect("ARG RUST_VERSION");
    let manifest: toml::Value = toml::from_str(&read("Cargo.toml")).unwrap();
    let msrv = manifest["package"]["rust-version"].as_str().unwrap();
    let v = |s: &str| -> Vec<u32> { s.split('.').map(|p| p.parse().unwrap()).collect() };
    assert!(
        v(rust)[..2] >= v(msrv)[..2],
        "Rust {rust} < rust-version {msrv}"
    );
    let run = instructions(&df, "RUN").join("\n");
    // The same locked build CI's commands use (`--locked`), nothing else compiled.
    assert!(run.contains("cargo build --release --locked "), "{run}");
    // Only the binary crosses from the builder.
    let copies = instructions(&df, "COPY");
    let from_build: Vec<&String> = copies.iter().filter(|c| c.starts_with("--from=")).collect();
    assert_eq!(from_build.len(), 1, "{copies:?}");
    let bin_dest = from_build[0].split_whitespace().last().unwrap().to_string();
    let entry = json_args(&instructions(&df, "ENTRYPOINT")[0]);
    assert_eq!(entry, [bin_dest]);
    let user = instructions(&df, "USER");
    let uid: u32 = user
        .last()
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        uid >= 1000,
        "numeric non-root user (runAsNonRoot checks it): {user:?}"
    );
    assert_eq!(instructions(&df, "EXPOSE"), ["8443"]);
    let cmd = json_args(&instructions(&df, "CMD")[0]);
    assert_eq!(cmd[..2], ["--config", "/etc/mfa-gateway/gateway.toml"]);
    // The build context leaves out build output and secrets.
    let ignore = read("deploy/container/Dockerfile.dockerignore");
    for p in ["target", ".git", "deploy/container/.env"] {
        assert!(ignore.lines().any(|l| l.trim() == p), "{p} in dockerignore");
    }
}

/// `(host path, container path)` of a compose service's volumes.
fn volumes(service: &Yaml) -> Vec<(String, String)> {
    strs(&service["volumes"])
        .iter()
        .map(|v| {
            let mut parts = v.split(':');
            (
                parts.next().unwrap().to_string(),
                parts.next().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_services_run_a_gateway_in_front_of_the_demo_vms() {
    let compose = &yaml("deploy/container/compose.yaml")[0];
    let services = &compose["services"];
    let (redis_svc, demo_svc, gw_svc) = (
        &services["redis"],
        &services["demo-vms"],
        &services["gateway"],
    );
    // Redis keeps its data: AOF on, password required, nothing evicted.
    let redis_cmd = strs(&redis_svc["command"]).join(" ");
    for flag in [
        "--appendonly yes",
        "--requirepass ${MFA_REDIS_PASSWORD",
        "--maxmemory-policy noeviction",
    ] {
        assert!(redis_cmd.contains(flag), "{flag} in {redis_cmd}");
    }
    let df = dockerfile();
    let workdir = instructions(&df, "WORKDIR").last().unwrap().clone();
    let cmd = json_args(&instructions(&df, "CMD")[0]);

    let tmp = tempfile::tempdir().unwrap();
    let etc = tmp.path().join("etc/mfa-gateway");
    let state = tmp.path().join("var/lib/mfa-gateway");
    std::fs::create_dir_all(&state).unwrap();
    let (_redis, redis_url) = redis_with_password(tmp.path());
    let (vms_port, inner, inner_redis, https, metrics) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );

    // Mount the files where compose mounts them.
    let container = root().join("deploy/container");
    let mount = |svc: &Yaml, text_for: &dyn Fn(&str, String) -> String| {
        for (host, target) in volumes(svc) {
            if let Some(rest) = target.strip_prefix("/etc/mfa-gateway/") {
                let text = std::fs::read_to_string(container.join(&host)).unwrap();
                write(&etc.join(rest), &text_for(rest, text));
            } else {
                assert_eq!(
                    target, workdir,
                    "the demo's state volume is its working directory"
                );
            }
        }
    };
    mount(demo_svc, &|name, text| {
        if name != "demo-vms.toml" {
            return text;
        }
        let t = swap(
            &text,
            "http://0.0.0.0:8081",
            &format!("http://127.0.0.1:{vms_port}"),
        );
        let t = swap(&t, "\"127.0.0.1:9443\"", &format!("\"127.0.0.1:{inner}\""));
        swap(&t, "127.0.0.1:6379", &format!("127.0.0.1:{inner_redis}"))
    });
    assert_eq!(
        std::fs::read_to_string(etc.join("policy.toml")).unwrap(),
        read("config/policy.toml")
    );

    // demo-vms: `mfa-gateway demo` in the image's working directory; healthy once the
    // development certificate exists.
    let demo_args = args_moved(&strs(&demo_svc["command"]), "/etc/mfa-gateway/", &etc);
    let demo = Proc::spawn(
        Command::new(BIN).args(&demo_args).current_dir(&state),
        tmp.path().join("demo.log"),
    );
    let health = strs(&demo_svc["healthcheck"]["test"]);
    assert_eq!(health[..3], ["CMD", "test", "-s"]);
    let cert_rel = health[3]
        .strip_prefix(&format!("{workdir}/"))
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::metadata(state.join(&cert_rel)).is_ok_and(|m| m.len() > 0) {
        assert!(Instant::now() < deadline, "no certificate\n{}", demo.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // gateway: the image's CMD, compose's environment, the demo's certificate.
    let gw_text = read("deploy/container/gateway.toml");
    let tls_cert: toml::Value = toml::from_str(&gw_text).unwrap();
    assert_eq!(tls_cert["tls"]["cert"].as_str(), Some(health[3].as_str()));
    let state_prefix = format!("{workdir}/");
    mount(gw_svc, &|name, text| {
        if name != "gateway.toml" {
            return text;
        }
        let t = swap(&text, &state_prefix, &format!("{}/", state.display()));
        let t = swap(&t, "\"0.0.0.0:8443\"", &format!("\"127.0.0.1:{https}\""));
        let t = swap(&t, "\"0.0.0.0:9090\"", &format!("\"127.0.0.1:{metrics}\""));
        let t = swap(
            &t,
            "http://demo-vms:8081",
            &format!("http://127.0.0.1:{vms_port}"),
        );
        swap(&t, "redis://redis:6379/0", &redis_url)
    });
    let published: Vec<String> = strs(&gw_svc["ports"]);
    assert!(
        published.contains(&"127.0.0.1:8443:8443".to_string()),
        "{published:?}"
    );
    let env_names: BTreeSet<String> = gw_svc["environment"]
        .as_hash()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(env_names, secret_env_names(&gw_text));
    let example = env_file(&read("deploy/container/env.example"));
    let example_names: BTreeSet<String> = example.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        example_names, env_names,
        "env.example vs compose environment"
    );
    let filled = fill_secrets(&example);
    let config = etc.join("gateway.toml");
    assert_placeholders_refused_and_secrets_accepted(&config, &example, &filled);

    let gw = Proc::spawn(
        Command::new(BIN)
            .args(args_moved(&cmd, "/etc/mfa-gateway/", &etc))
            .envs(filled),
        tmp.path().join("gateway.log"),
    );
    let ca =
        std::fs::read_to_string(state.join(Path::new(&cert_rel).with_file_name("ca.pem"))).unwrap();
    let client = assert_serving(&ca, https, metrics, &gw).await;
    assert_json_logs(&gw.log());

    // Through the gateway to the demo VMS: a supplier logs in without MFA, a customer is
    // sent to enroll, and completing enrollment seals a secret in the password-protected
    // Redis with the key from the environment and releases the VMS session.
    let base = format!("https://localhost:{https}");
    let login = |user: &'static str| {
        client
            .post(format!("{base}/login"))
            .form(&[("username", user), ("password", "demo")])
            .send()
    };
    let r = login("supplier").await.unwrap();
    assert_eq!(r.status(), 302);
    assert!(has_session(&r), "supplier gets the VMS session at once");
    let r = login("customer").await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(!has_session(&r), "customer's session withheld");
    let enroll = format!("{base}{DEFAULT_PREFIX}enroll");
    assert_eq!(r.headers()["location"], format!("{DEFAULT_PREFIX}enroll"));
    let html = client
        .get(&enroll)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let secret = pairing_secret(&html);
    let now = u64::try_from(jiff::Timestamp::now().as_second()).unwrap();
    let code = mfa_gateway::auth::totp::code_at(&secret, now);
    let r = client
        .post(&enroll)
        .form(&[
            ("csrf", field(&html, "csrf").as_str()),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    // The recovery codes are shown once; "continue" releases the session.
    assert_eq!(r.status(), 303, "{}", gw.log());
    let codes_page = format!("{base}{DEFAULT_PREFIX}recovery-codes");
    assert_eq!(
        r.headers()["location"],
        format!("{DEFAULT_PREFIX}recovery-codes")
    );
    assert!(!has_session(&r));
    let html = client
        .get(&codes_page)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = client
        .post(&codes_page)
        .form(&[
            ("csrf", field(&html, "csrf").as_str()),
            ("action", "continue"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{}", gw.log());
    assert!(has_session(&r), "released after enrollment");
    drop(demo);
}

fn has_session(r: &reqwest::Response) -> bool {
    r.headers().get_all("set-cookie").iter().any(|c| {
        c.to_str().unwrap().starts_with("VMSSESSION=")
            && !c.to_str().unwrap().starts_with("VMSSESSION=;")
    })
}

/// The value of a hidden form field.
fn field(html: &str, name: &str) -> String {
    let at = html.find(&format!("name=\"{name}\"")).unwrap();
    let rest = &html[at..];
    let v = rest.find("value=\"").unwrap() + 7;
    rest[v..v + rest[v..].find('"').unwrap()].to_string()
}

/// The TOTP secret from the pairing code on the enrollment page.
fn pairing_secret(html: &str) -> Vec<u8> {
    let tag = "<p class=\"pairing\">";
    let start = html.find(tag).unwrap() + tag.len();
    let code: String = html[start..start + html[start..].find('<').unwrap()]
        .chars()
        .filter(|c| *c != ' ')
        .collect();
    totp_rs::Secret::try_from_base32(&code)
        .unwrap()
        .as_ref()
        .to_vec()
}
