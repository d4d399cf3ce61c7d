//! Every metric named in the alert rules and in docs/operations.md exists, and every exported
//! metric is described in the guide.

use std::collections::BTreeSet;

use super::common::{read, yaml};

/// Metric names (`mfa_gateway_...`) in a text.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("mfa_gateway_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].trim_end_matches('_').to_string());
        rest = &tail[end..];
    }
    out
}

/// What the gateway exports: the metric families (`# TYPE` lines) and the names of their
/// samples (a histogram's `_bucket`, `_sum` and `_count`).
fn exported() -> (BTreeSet<String>, BTreeSet<String>) {
    let text = mfa_gateway::metrics::Metrics::new().render();
    // The facts a running gateway adds (`run::write_facts`; `proxy::health_readiness_and_metrics`
    // checks them in a real gateway's output).
    let families = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .chain(mfa_gateway::run::FACT_METRICS.map(String::from))
        .collect();
    let samples = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect();
    (families, samples)
}

#[test]
fn alert_rules_and_operations_guide_name_only_exported_metrics() {
    let (families, samples) = exported();
    assert!(families.len() >= 10, "{families:?}");
    let rules = &yaml("deploy/prometheus/mfa-gateway-alerts.yaml")[0];
    let mut in_rules = BTreeSet::new();
    for group in rules["groups"].as_vec().unwrap() {
        for rule in group["rules"].as_vec().unwrap() {
            assert!(rule["alert"].as_str().is_some(), "{rule:?}");
            assert!(rule["annotations"]["summary"].as_str().is_some());
            in_rules.extend(metric_names(rule["expr"].as_str().unwrap()));
        }
    }
    let in_docs = metric_names(&read("docs/operations.md"));
    assert!(
        in_rules.len() >= 6 && in_docs.len() >= 10,
        "{in_rules:?} {in_docs:?}"
    );
    for name in in_rules.iter().chain(&in_docs) {
        assert!(
            families.contains(name) || samples.contains(name),
            "{name} is not exported: {families:?}"
        );
    }
    // Every exported family is described in the guide (the standard `process_` ones by
    // their exact name).
    let guide = read("docs/operations.md");
    for name in &families {
        assert!(
            in_docs.contains(name) || guide.contains(&format!("`{name}`")),
            "{name} is not in docs/operations.md"
        );
    }
}
