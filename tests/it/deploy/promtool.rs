//! The alert rules and the dashboard's queries checked by Prometheus's own tool: `promtool
//! check rules` (the rules and every dashboard query parse as PromQL) and `promtool test
//! rules` with `deploy/prometheus/mfa-gateway-alerts.test.yaml` (each alert fires on made-up
//! series of a sick instance and stays quiet on a healthy one).
//!
//! promtool is not a Rust crate; without it these tests say so and pass, except under
//! `scripts/test`, which installs it and sets `MFAGW_REQUIRE_PROMTOOL=1` so that a missing
//! promtool fails the suite instead of silently skipping the checks. That every alert has a
//! test that fires and one that does not is checked here without promtool.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use super::common::{read, root, yaml};
use super::metrics::{DASHBOARD, dashboard_queries, grafana_to_promql};

const RULES: &str = "deploy/prometheus/mfa-gateway-alerts.yaml";
const RULE_TESTS: &str = "deploy/prometheus/mfa-gateway-alerts.test.yaml";

/// Runs `promtool ARGS` in `dir`; None (with a message) when promtool is not installed and
/// not required.
fn promtool(dir: &Path, args: &[&str]) -> Option<(bool, String)> {
    match Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(out) => Some((
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )),
        Err(e) => {
            assert!(
                std::env::var_os("MFAGW_REQUIRE_PROMTOOL").is_none_or(|v| v != "1"),
                "promtool is required (MFAGW_REQUIRE_PROMTOOL=1) but cannot be run: {e}"
            );
            eprintln!("promtool not installed ({e}): skipped (apt-get install prometheus)");
            None
        }
    }
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let dir = root().join("deploy/prometheus");
    let Some((ok, out)) = promtool(&dir, &["check", "rules", "mfa-gateway-alerts.yaml"]) else {
        return;
    };
    assert!(ok, "promtool check rules:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");
    let (ok, out) = promtool(&dir, &["test", "rules", "mfa-gateway-alerts.test.yaml"]).unwrap();
    assert!(ok, "promtool test rules:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");

    // The unit tests can fail: a rule with a changed threshold does not pass them.
    let tmp = tempfile::tempdir().unwrap();
    let changed = read(RULES).replace(
        "mfa_gateway_store_poll_seconds > 0.1",
        "mfa_gateway_store_poll_seconds > 0.3",
    );
    assert_ne!(
        changed,
        read(RULES),
        "the threshold to change is in the rules"
    );
    std::fs::write(tmp.path().join("mfa-gateway-alerts.yaml"), changed).unwrap();
    std::fs::write(
        tmp.path().join("mfa-gateway-alerts.test.yaml"),
        read(RULE_TESTS),
    )
    .unwrap();
    let (ok, out) = promtool(
        tmp.path(),
        &["test", "rules", "mfa-gateway-alerts.test.yaml"],
    )
    .unwrap();
    assert!(!ok && out.contains("MfaGatewayRedisSlow"), "{out}");
}

#[test]
fn every_dashboard_query_is_valid_promql() {
    // promtool parses the PromQL of recording rules: one rule per query.
    let dashboard: serde_json::Value = serde_json::from_str(&read(DASHBOARD)).unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let queries = dashboard_queries(&dashboard);
    for (i, (_, expr)) in queries.iter().enumerate() {
        let promql = serde_json::to_string(&grafana_to_promql(expr)).unwrap();
        rules.push_str(&format!(
            "      - record: dashboard:query{i}\n        expr: {promql}\n"
        ));
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("dashboard.yaml"), &rules).unwrap();
    let Some((ok, out)) = promtool(tmp.path(), &["check", "rules", "dashboard.yaml"]) else {
        return;
    };
    assert!(ok, "promtool check rules:\n{out}\n{rules}");
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", queries.len())),
        "{out}"
    );
    // And promtool does refuse a broken query.
    std::fs::write(
        tmp.path().join("broken.yaml"),
        "groups:\n  - name: x\n    rules:\n      - record: x:y\n        expr: \"sum(rate(x[5m])\"\n",
    )
    .unwrap();
    let (ok, _) = promtool(tmp.path(), &["check", "rules", "broken.yaml"]).unwrap();
    assert!(!ok, "an unbalanced parenthesis passes promtool");
}

/// Each alert of the rules file has a unit test where it fires and one where it does not.
#[test]
fn every_alert_has_a_firing_and_a_quiet_unit_test() {
    let rules = &yaml(RULES)[0];
    let alerts: BTreeSet<String> = rules["groups"]
        .as_vec()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_vec().unwrap())
        .filter_map(|r| r["alert"].as_str().map(String::from))
        .collect();
    assert!(alerts.len() >= 10, "{alerts:?}");
    let tests = &yaml(RULE_TESTS)[0];
    assert_eq!(
        tests["rule_files"][0].as_str(),
        Some("mfa-gateway-alerts.yaml")
    );
    let (mut fires, mut quiet) = (BTreeSet::new(), BTreeSet::new());
    for t in tests["tests"].as_vec().unwrap() {
        for case in t["alert_rule_test"].as_vec().unwrap() {
            let name = case["alertname"].as_str().unwrap().to_string();
            assert!(alerts.contains(&name), "test of an unknown alert {name}");
            if case["exp_alerts"].as_vec().unwrap().is_empty() {
                quiet.insert(name);
            } else {
                fires.insert(name);
            }
        }
    }
    let no_fire: Vec<_> = alerts.difference(&fires).collect();
    let no_quiet: Vec<_> = alerts.difference(&quiet).collect();
    assert!(
        no_fire.is_empty() && no_quiet.is_empty(),
        "{RULE_TESTS}: no firing test for {no_fire:?}, no quiet test for {no_quiet:?}"
    );
}
