//! Every metric named in the alert rules, the Grafana dashboard and docs/operations.md exists,
//! every exported metric is described in the guide and shown on the dashboard.
//!
//! Why: a dashboard or an alert on a metric that does not exist shows an empty graph or never
//! fires, and nobody notices until the day it was needed. The queries are read as PromQL (see
//! [`promql_metrics`]), so a misspelt name anywhere in an expression is caught.

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
pub fn exported() -> (BTreeSet<String>, BTreeSet<String>) {
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

/// PromQL's aggregation operators and keywords: words of an expression that are not metric
/// names even when no `(` follows them.
const PROMQL_WORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "atan2",
];

/// The metric names a PromQL expression selects. Strings, `[ranges]`, `{label matchers}` and
/// the label lists of `by (...)`, `on (...)` and the like are skipped; of the words left, those
/// followed by `(` are functions and the rest, apart from [`PROMQL_WORDS`], are metrics. So a
/// misspelt metric anywhere in an expression is found, not only one that starts with
/// `mfa_gateway_`.
pub fn promql_metrics(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = BTreeSet::new();
    let mut i = 0;
    let mut last_word = String::new();
    let skip_to = |from: usize, close: char| {
        let mut j = from;
        let mut quoted = false;
        while j < chars.len() {
            match chars[j] {
                '\\' if quoted => j += 1,
                '"' => quoted = !quoted,
                c if c == close && !quoted => return j + 1,
                _ => {}
            }
            j += 1;
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != c {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            i = j + 1;
        } else if c == '{' {
            i = skip_to(i + 1, '}');
        } else if c == '[' {
            i = skip_to(i + 1, ']');
        } else if c == '(' {
            // The label list of a grouping clause.
            if [
                "by",
                "without",
                "on",
                "ignoring",
                "group_left",
                "group_right",
            ]
            .contains(&last_word.as_str())
            {
                i = skip_to(i + 1, ')');
            } else {
                i += 1;
            }
            last_word.clear();
        } else if c.is_ascii_digit() || c == '.' {
            // A number (`0.99`, `86400`, `1e6`) or a duration (`5m`).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if next != Some(&'(') && !PROMQL_WORDS.contains(&word.as_str()) {
                out.insert(word.clone());
            }
            last_word = word;
        } else {
            if !c.is_whitespace() {
                last_word.clear();
            }
            i += 1;
        }
    }
    out
}

#[test]
fn promql_metrics_finds_every_metric_and_nothing_else() {
    let names = |e: &str| promql_metrics(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (kind, le) (rate(a_bucket{kind="x}y",le!~"1|2"}[5m])))
               / on (instance) group_left (version) max without (job) (b) > bool 2 * 1e6
               and c offset 5m - time() < 14 * 86400"#
        ),
        ["a_bucket", "b", "c"]
    );
    assert_eq!(
        names("sum(increase(mfa_gatway_x[1h])) > 0"),
        ["mfa_gatway_x"]
    );
    assert_eq!(names("up == 0"), ["up"]);
}

/// `up`, which Prometheus itself writes for every scrape target.
const PROMETHEUS_OWN: &[&str] = &["up"];

/// Whether `name` is a sample name the gateway exports (or Prometheus's own).
fn is_exported(name: &str, families: &BTreeSet<String>, samples: &BTreeSet<String>) -> bool {
    families.contains(name) || samples.contains(name) || PROMETHEUS_OWN.contains(&name)
}

#[test]
fn alert_rules_select_only_exported_metrics() {
    let (families, samples) = exported();
    let rules = &yaml("deploy/prometheus/mfa-gateway-alerts.yaml")[0];
    let mut n = 0;
    for group in rules["groups"].as_vec().unwrap() {
        for rule in group["rules"].as_vec().unwrap() {
            let expr = rule["expr"].as_str().unwrap();
            let names = promql_metrics(expr);
            assert!(!names.is_empty(), "no metric in {expr}");
            for name in &names {
                assert!(
                    is_exported(name, &families, &samples),
                    "alert {:?} uses {name}, which is not exported",
                    rule["alert"]
                );
            }
            n += 1;
        }
    }
    assert!(n >= 10, "{n} rules");
}

pub const DASHBOARD: &str = "deploy/grafana/mfa-gateway.json";

/// Every query of the Grafana dashboard: (panel title, PromQL with Grafana's variables).
pub fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    fn walk(panels: &serde_json::Value, out: &mut Vec<(String, String)>) {
        for p in panels.as_array().into_iter().flatten() {
            walk(&p["panels"], out);
            if p["type"] == "row" {
                continue;
            }
            let title = p["title"].as_str().unwrap_or_default().to_string();
            let targets = p["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            assert!(!targets.is_empty(), "panel {title:?} has no query");
            for t in targets {
                let expr = t["expr"].as_str();
                assert!(expr.is_some(), "panel {title:?}: a target without expr");
                out.push((title.clone(), expr.unwrap_or_default().to_string()));
            }
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// A Grafana query with its variables replaced by what Prometheus would be sent.
pub fn grafana_to_promql(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$__range", "6h")
        .replace("$job", ".*")
        .replace("$instance", ".*")
}

#[test]
fn grafana_dashboard_parses_and_shows_every_exported_metric_and_no_other() {
    let (families, samples) = exported();
    let dashboard: serde_json::Value =
        serde_json::from_str(&read(DASHBOARD)).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"));
    assert_eq!(dashboard["uid"], "mfa-gateway");
    assert!(dashboard["title"].is_string());
    // The data source is chosen at import; every panel uses that choice.
    let vars = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        vars.iter()
            .any(|v| v["name"] == "datasource" && v["type"] == "datasource"),
        "{vars:?}"
    );
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 20, "{} queries", queries.len());
    let mut used = BTreeSet::new();
    for (title, expr) in &queries {
        assert!(
            expr.contains("instance=~\"$instance\""),
            "panel {title:?} ignores the instance choice: {expr}"
        );
        let names = promql_metrics(&grafana_to_promql(expr));
        assert!(!names.is_empty(), "panel {title:?}: no metric in {expr}");
        for name in names {
            assert!(
                is_exported(&name, &families, &samples),
                "panel {title:?} uses {name}, which is not exported"
            );
            used.insert(name);
        }
    }
    // The job and instance choices list what a gateway exports.
    for v in vars.iter().filter(|v| v["type"] == "query") {
        let q = v["query"]["query"].as_str().unwrap();
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|r| r.rsplit_once(','))
            .map(|(metric, _)| metric)
            .unwrap_or_else(|| panic!("variable {}: {q}", v["name"]));
        for name in promql_metrics(inner) {
            assert!(is_exported(&name, &families, &samples), "{q}");
        }
    }
    // Every metric family is on the dashboard (a histogram by its buckets).
    let shown = |f: &String| {
        ["", "_bucket", "_sum", "_count"]
            .iter()
            .any(|s| used.contains(&format!("{f}{s}")))
    };
    let missing: Vec<&String> = families.iter().filter(|f| !shown(f)).collect();
    assert!(
        missing.is_empty(),
        "exported but not on {DASHBOARD}: {missing:?}"
    );
    // Panel ids are unique (Grafana mixes up panels that share one).
    let mut ids = BTreeSet::new();
    fn collect_ids(panels: &serde_json::Value, ids: &mut BTreeSet<u64>) {
        for p in panels.as_array().into_iter().flatten() {
            assert!(
                ids.insert(p["id"].as_u64().unwrap()),
                "id {} twice",
                p["id"]
            );
            collect_ids(&p["panels"], ids);
        }
    }
    collect_ids(&dashboard["panels"], &mut ids);
}
