//! Joins the parts of one benchmark run into the printed table, the targets from the issue,
//! and one JSON document. Parts that were not measured (a skipped step) are shown as missing,
//! never filled in.
//!
//! The wrk rows run once per round (`wrk-NAME-rN.json`, `cpu-NAME-rN.json`). A row is shown by
//! its round with the median req/s; a ratio between two rows is the median over the rounds of
//! that round's ratio, so a round disturbed by the host counts once and does not decide it.
//! A directory of an older run without rounds (`wrk-NAME.json`) reads as one round.

use std::path::Path;

use serde_json::{Value, json};

use crate::Opts;

fn read_json(dir: &Path, name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join(name)).ok()?;
    serde_json::from_str(&text).ok()
}

fn read_text(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name))
        .ok()
        .map(|s| s.trim().to_string())
}

fn f(v: &Value, path: &[&str]) -> Option<f64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_f64()
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn show(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.decimals$}"))
}

struct Target {
    name: &'static str,
    figure: String,
    met: Option<bool>,
}

fn target(name: &'static str, figure: String, met: Option<bool>) -> Target {
    Target { name, figure, met }
}

/// CPU microseconds per request of the proxy and of the upstream during one wrk run, from the
/// CPU file written next to that run's wrk output.
fn cpu_per_request(cpu: Option<&Value>, wrk: Option<&Value>) -> (Option<f64>, Option<f64>) {
    let requests = wrk.and_then(|v| f(v, &["requests"])).filter(|r| *r > 0.0);
    let per = |k: &str| {
        let c = cpu?;
        Some(f(c, &[k])? / f(c, &["ticks_per_second"])? * 1e6 / requests?)
    };
    (per("proxy_cpu_ticks"), per("upstream_cpu_ticks"))
}

/// One measured wrk run of a row: its round, wrk's figures, and CPU microseconds per request
/// of the proxy processes and of the upstream.
struct Run {
    round: u32,
    wrk: Value,
    cpu: (Option<f64>, Option<f64>),
}

impl Run {
    fn rps(&self) -> Option<f64> {
        f(&self.wrk, &["rps"])
    }

    fn p99_ms(&self) -> Option<f64> {
        f(&self.wrk, &["latency_us", "p99"]).map(|u| u / 1000.0)
    }

    fn proxy_cpu(&self) -> Option<f64> {
        self.cpu.0
    }

    fn requests(&self) -> Option<f64> {
        f(&self.wrk, &["requests"])
    }

    fn json(&self) -> Value {
        json!({
            "round": self.round,
            "wrk": self.wrk,
            "proxy_cpu_us_per_request": self.cpu.0,
            "upstream_cpu_us_per_request": self.cpu.1,
        })
    }
}

/// The measured runs of one row (`wrk-NAME-rN.json` with `cpu-NAME-rN.json`), in round order.
/// Without any, the single run of an older report (`wrk-NAME.json`) counts as round 1.
fn runs(dir: &Path, name: &str) -> Vec<Run> {
    let load = |round: u32, suffix: &str| {
        let wrk = read_json(dir, &format!("wrk-{name}{suffix}.json"))?;
        let cpu = read_json(dir, &format!("cpu-{name}{suffix}.json"));
        let cpu = cpu_per_request(cpu.as_ref(), Some(&wrk));
        Some(Run { round, wrk, cpu })
    };
    let prefix = format!("wrk-{name}-r");
    let mut rounds: Vec<u32> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let file = e.file_name().into_string().ok()?;
            file.strip_prefix(&prefix)?
                .strip_suffix(".json")?
                .parse()
                .ok()
        })
        .collect();
    rounds.sort_unstable();
    let found: Vec<Run> = rounds
        .into_iter()
        .filter_map(|r| load(r, &format!("-r{r}")))
        .collect();
    if found.is_empty() {
        load(1, "").into_iter().collect()
    } else {
        found
    }
}

/// The run shown for a row: the one with the median req/s (of an even number of runs, the
/// slower of the middle two).
fn median_run(runs: &[Run]) -> Option<&Run> {
    let mut sorted: Vec<&Run> = runs.iter().collect();
    sorted.sort_by(|a, b| a.rps().unwrap_or(0.0).total_cmp(&b.rps().unwrap_or(0.0)));
    sorted.get(sorted.len().saturating_sub(1) / 2).copied()
}

/// The median of some figures (of an even number, the mean of the middle two).
fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    let upper = xs.get(n / 2).copied()?;
    if n % 2 == 1 {
        Some(upper)
    } else {
        Some((xs.get(n / 2 - 1).copied()? + upper) / 2.0)
    }
}

/// The ratio a / b of one figure in every round where both rows ran: (round, ratio).
fn per_round(a: &[Run], b: &[Run], figure: fn(&Run) -> Option<f64>) -> Vec<(u32, f64)> {
    a.iter()
        .filter_map(|ra| {
            let rb = b.iter().find(|rb| rb.round == ra.round)?;
            Some((ra.round, ratio(figure(ra), figure(rb))?))
        })
        .collect()
}

fn median_ratio(per_round: &[(u32, f64)]) -> Option<f64> {
    median(per_round.iter().map(|(_, r)| *r).collect())
}

/// `r1 0.861, r2 0.874, r3 0.850`.
fn show_rounds(per_round: &[(u32, f64)]) -> String {
    if per_round.is_empty() {
        return "-".to_string();
    }
    per_round
        .iter()
        .map(|(round, r)| format!("r{round} {r:.3}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn rounds_json(per_round: &[(u32, f64)]) -> Value {
    per_round
        .iter()
        .map(|(round, r)| json!({"round": round, "ratio": r}))
        .collect()
}

/// A wrk row of the report: label, JSON key, the run shown for it, all its runs.
type Row<'a> = (&'static str, &'static str, Option<&'a Run>, &'a [Run]);

/// A JSON object with one entry per row, made from the run shown for it (null without one).
fn row_map(rows: &[Row], value: impl Fn(&Run) -> Value) -> Value {
    rows.iter()
        .map(|(_, key, run, _)| ((*key).to_string(), run.map_or(Value::Null, &value)))
        .collect::<serde_json::Map<String, Value>>()
        .into()
}

/// A JSON object with every run of every row.
fn rows_runs(rows: &[Row]) -> Value {
    rows.iter()
        .map(|(_, key, _, all)| ((*key).to_string(), all.iter().map(Run::json).collect()))
        .collect::<serde_json::Map<String, Value>>()
        .into()
}

/// The header of a wrk table.
fn table_header(title: &str, cpu_note: &str) -> String {
    format!(
        "  {:<32}{:>10}{:>9}{:>9}{:>10}{:>8}{:>12}{:>12}{:>7}\n  {:<32}{:>65}\n",
        title,
        "req/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "errors",
        "proxy CPU",
        "upstr. CPU",
        "round",
        "",
        cpu_note,
    )
}

/// One wrk row: req/s, latency percentiles in ms, errors, CPU per request, and the round shown.
fn wrk_row(label: &str, run: Option<&Run>) -> String {
    let v = run.map(|r| &r.wrk);
    let ms = |k: &str| v.and_then(|v| f(v, &["latency_us", k])).map(|u| u / 1000.0);
    let errs = v
        .and_then(|v| v.get("errors"))
        .and_then(Value::as_object)
        .map(|o| o.values().filter_map(Value::as_u64).sum::<u64>());
    format!(
        "  {label:<32}{:>10}{:>9}{:>9}{:>10}{:>8}{:>12}{:>12}{:>7}\n",
        show(run.and_then(Run::rps), 0),
        show(ms("p50"), 2),
        show(ms("p99"), 2),
        show(ms("p999"), 2),
        errs.map_or("-".into(), |e| e.to_string()),
        show(run.and_then(|r| r.cpu.0), 1),
        show(run.and_then(|r| r.cpu.1), 1),
        run.map_or("-".into(), |r| format!("r{}", r.round)),
    )
}

/// What reached the upstream and Redis during the run the script took a check around
/// (`stats-LABEL-before.json` and after, `redis-LABEL-before.txt` and after).
fn upstream_check(dir: &Path, label: &str) -> Value {
    let before = read_json(dir, &format!("stats-{label}-before.json"));
    let after = read_json(dir, &format!("stats-{label}-after.json"));
    let delta = |k: &str| match (&before, &after) {
        (Some(b), Some(a)) => Some(f(a, &[k])? - f(b, &[k])?),
        _ => None,
    };
    let count = |when: &str| {
        read_text(dir, &format!("redis-{label}-{when}.txt")).and_then(|s| s.parse::<f64>().ok())
    };
    let redis = match (count("before"), count("after")) {
        (Some(b), Some(a)) => Some(a - b),
        _ => None,
    };
    json!({
        "upstream_requests": delta("requests"),
        "with_vms_session": delta("with_session"),
        "with_gateway_cookie": delta("with_gateway_cookie"),
        "redis_commands": redis,
    })
}

fn check_line(check: &Value) -> String {
    let n = |k: &str| show(check.get(k).and_then(Value::as_f64), 0);
    format!(
        "{} upstream requests, {} with the VMS session, {} with the gateway cookie",
        n("upstream_requests"),
        n("with_vms_session"),
        n("with_gateway_cookie"),
    )
}

/// The scale part: the pass-through request through a TCP balancer (haproxy) to one gateway
/// and to two, each gateway with one worker thread. Returns the printed lines (empty when the
/// part did not run) and its JSON (null then).
fn scale_part(dir: &Path, cpus: usize) -> (String, Value) {
    let one = runs(dir, "scale-1");
    let two = runs(dir, "scale-2");
    if one.is_empty() && two.is_empty() {
        return (String::new(), Value::Null);
    }
    let rows: [Row; 2] = [
        (
            "1 instance behind the balancer",
            "one_instance",
            median_run(&one),
            &one,
        ),
        (
            "2 instances behind the balancer",
            "two_instances",
            median_run(&two),
            &two,
        ),
    ];
    let per_round_ratios = per_round(&two, &one, Run::rps);
    let two_over_one = median_ratio(&per_round_ratios);
    let check = upstream_check(dir, "scale");
    let rounds = one.len().max(two.len());
    let shared = format!(
        "wrk, the balancer, both gateways, the upstream and Redis share the same {cpus} CPUs: the ratio shows two instances sharing the load on this machine, not what instances on separate hosts would give"
    );

    let mut out = String::new();
    out.push_str(
        "\n  scale: haproxy in TCP mode (round robin, TLS at the gateways) in front of 1 or 2 gateways with 1 worker thread each; the pass-through row's requests\n",
    );
    out.push_str(&table_header(
        "through the TCP balancer",
        "(us per request; proxy CPU: the gateways)",
    ));
    for (label, _, run, _) in &rows {
        out.push_str(&wrk_row(label, *run));
    }
    out.push_str(&format!(
        "\n  ratio (req/s): 2 instances / 1 instance {} (median of {rounds} round(s); per round: {})\n",
        show(two_over_one, 3),
        show_rounds(&per_round_ratios),
    ));
    out.push_str(&format!(
        "  scale check (2 instances, round 1): {}\n",
        check_line(&check)
    ));
    out.push_str(&format!("  note: {shared}\n"));

    let doc = json!({
        "balancer": "haproxy, mode tcp, balance roundrobin",
        "gateway_worker_threads": 1,
        // Each row: wrk's figures of its round with the median req/s.
        "rows": row_map(&rows, |r| r.wrk.clone()),
        "cpu_us_per_request": row_map(&rows, |r| r.proxy_cpu().into()),
        "ratio_two_over_one": two_over_one,
        "rounds": {
            "count": rounds,
            "shown_round": row_map(&rows, |r| r.round.into()),
            "runs": rows_runs(&rows),
            "ratio_two_over_one": rounds_json(&per_round_ratios),
        },
        "check": check,
        "note": shared,
    });
    (out, doc)
}

fn mib(kib: Option<f64>) -> Option<f64> {
    kib.map(|k| k / 1024.0)
}

/// `report --dir TMP --out FILE [--nginx V --wrk V --redis V --haproxy V --conditions TEXT]`.
pub fn run(opts: &Opts) -> Result<(), String> {
    let dir = opts.path("dir")?;
    let direct = runs(&dir, "direct");
    let nginx = runs(&dir, "nginx");
    let pass = runs(&dir, "gateway-pass");
    let anon = runs(&dir, "gateway-anon");
    let mfa = read_json(&dir, "mfa.json");
    let mfa_light = read_json(&dir, "mfa-light.json");
    let conns_gw = read_json(&dir, "conns-gateway.json");
    let conns_ngx = read_json(&dir, "conns-nginx.json");
    let stream = read_json(&dir, "stream.json");
    let startup = read_json(&dir, "startup.json");
    let check = upstream_check(&dir, "pass");

    // Each ratio: the median over the rounds of that round's ratio.
    let pass_nginx_rounds = per_round(&pass, &nginx, Run::rps);
    let pass_direct_rounds = per_round(&pass, &direct, Run::rps);
    let nginx_direct_rounds = per_round(&nginx, &direct, Run::rps);
    let anon_pass_rounds = per_round(&anon, &pass, Run::rps);
    let cpu_pass_nginx_rounds = per_round(&pass, &nginx, Run::proxy_cpu);
    let pass_vs_nginx = median_ratio(&pass_nginx_rounds);
    let pass_vs_direct = median_ratio(&pass_direct_rounds);
    let anon_vs_pass = median_ratio(&anon_pass_rounds);
    let nginx_vs_direct = median_ratio(&nginx_direct_rounds);
    let cpu_pass_vs_nginx = median_ratio(&cpu_pass_nginx_rounds);
    // The p99 target: median p99 of the gateway-pass rounds against that of the nginx rounds.
    let median_p99 = |runs: &[Run]| median(runs.iter().filter_map(Run::p99_ms).collect());
    let (pass_p99, nginx_p99) = (median_p99(&pass), median_p99(&nginx));
    let shown: [Row; 4] = [
        (
            "direct (plain HTTP)",
            "direct",
            median_run(&direct),
            &direct,
        ),
        (
            "nginx (TLS, proxy_pass)",
            "nginx",
            median_run(&nginx),
            &nginx,
        ),
        (
            "gateway pass-through",
            "gateway_pass",
            median_run(&pass),
            &pass,
        ),
        (
            "gateway anonymous",
            "gateway_anon",
            median_run(&anon),
            &anon,
        ),
    ];
    let rounds = [&direct, &nginx, &pass, &anon]
        .iter()
        .map(|r| r.len())
        .max()
        .unwrap_or(0);
    let verify_p99 = mfa_light.as_ref().and_then(|m| f(m, &["verify_ms", "p99"]));
    let gw_conn_rss = conns_gw
        .as_ref()
        .and_then(|c| f(c, &["rss_kib_with_connections"]));
    let ngx_conn_rss = conns_ngx
        .as_ref()
        .and_then(|c| f(c, &["rss_kib_with_connections"]));
    let stream_peak = stream.as_ref().and_then(|s| f(s, &["peak_rss_kib"]));
    let startup_ms = startup.as_ref().and_then(|s| f(s, &["median_ms"]));
    let redis_cmds = check.get("redis_commands").and_then(Value::as_f64);
    // The check is taken around the first gateway-pass round.
    let pass_requests = pass.iter().find(|r| r.round == 1).and_then(Run::requests);

    let targets = [
        target(
            "gateway pass-through req/s >= 1.1 x nginx",
            format!("{} x", show(pass_vs_nginx, 3)),
            pass_vs_nginx.map(|r| r >= 1.1),
        ),
        target(
            "gateway pass-through p99 <= nginx p99",
            format!(
                "{} ms vs {} ms (medians over rounds)",
                show(pass_p99, 2),
                show(nginx_p99, 2)
            ),
            pass_p99.zip(nginx_p99).map(|(g, n)| g <= n),
        ),
        target(
            "gateway anonymous >= gateway pass-through",
            format!("{} x", show(anon_vs_pass, 3)),
            anon_vs_pass.map(|r| r >= 1.0),
        ),
        target(
            "code verification p99 < 5 ms (one login at a time)",
            format!("{} ms", show(verify_p99, 2)),
            verify_p99.map(|p| p < 5.0),
        ),
        target(
            "no Redis round trip on the proxied hot path",
            format!(
                "{} Redis commands during {} proxied requests",
                show(redis_cmds, 0),
                show(pass_requests, 0)
            ),
            redis_cmds
                .zip(pass_requests)
                .map(|(c, r)| c < (r / 1000.0).max(50.0)),
        ),
        target(
            "10k idle TLS connections: gateway RSS <= nginx workers' RSS",
            format!(
                "{} MiB vs {} MiB",
                show(mib(gw_conn_rss), 1),
                show(mib(ngx_conn_rss), 1)
            ),
            gw_conn_rss.zip(ngx_conn_rss).map(|(g, n)| g <= n),
        ),
        target(
            "streaming 1 GiB each way: peak RSS < 64 MiB",
            format!("{} MiB", show(mib(stream_peak), 1)),
            stream_peak.map(|k| k < 64.0 * 1024.0),
        ),
        target(
            "start-up to first proxied request < 200 ms",
            format!("{} ms (median)", show(startup_ms, 1)),
            startup_ms.map(|m| m < 200.0),
        ),
    ];

    let conditions = opts.opt("conditions").unwrap_or("");
    let load_start = read_text(&dir, "loadavg-start").unwrap_or_default();
    let load_end = read_text(&dir, "loadavg-end").unwrap_or_default();
    let commit = read_text(&dir, "commit").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let (scale_text, scale_doc) = scale_part(&dir, cpus);

    let mut out = String::new();
    out.push_str(&format!(
        "mfa-gateway benchmark: commit {commit}, {cpus} CPUs, load average at start {load_start}, at end {load_end}\n"
    ));
    if !conditions.is_empty() {
        out.push_str(&format!("conditions: {conditions}\n"));
    }
    out.push_str(&format!(
        "\n  wrk rows: {rounds} round(s); each row shows its round with the median req/s, each ratio is the median of the per-round ratios\n"
    ));
    out.push_str(&table_header("HTTP/1.1 keep-alive", "(us per request)"));
    for (label, _, run, _) in &shown {
        out.push_str(&wrk_row(label, *run));
    }
    out.push_str(&format!(
        "\n  ratios (req/s): gateway pass-through / nginx {}, gateway pass-through / direct {}, nginx / direct {}, anonymous / pass-through {}\n",
        show(pass_vs_nginx, 3),
        show(pass_vs_direct, 3),
        show(nginx_vs_direct, 3),
        show(anon_vs_pass, 3)
    ));
    out.push_str(&format!(
        "  gateway pass-through / nginx per round: {}\n",
        show_rounds(&pass_nginx_rounds)
    ));
    out.push_str(&format!(
        "  CPU per request: gateway pass-through / nginx {}\n",
        show(cpu_pass_vs_nginx, 3)
    ));
    out.push_str(&format!(
        "  pass-through check (round 1): {}\n",
        check_line(&check)
    ));
    out.push_str(&scale_text);
    out.push('\n');
    for (label, m) in [
        ("MFA path, loaded", &mfa),
        ("MFA path, one at a time", &mfa_light),
    ] {
        if let Some(m) = m {
            out.push_str(&format!(
                "  {label}: {} round trips/s ({} round trips, {} concurrent, {} errors); code verification p50 {} ms, p99 {} ms; whole round trip p50 {} ms\n",
                show(f(m, &["round_trips_per_s"]), 1),
                show(f(m, &["round_trips"]), 0),
                show(f(m, &["concurrency"]), 0),
                show(f(m, &["errors"]), 0),
                show(f(m, &["verify_ms", "p50"]), 2),
                show(f(m, &["verify_ms", "p99"]), 2),
                show(f(m, &["round_trip_ms", "p50"]), 2),
            ));
        }
    }
    for (label, c) in [("gateway", &conns_gw), ("nginx workers", &conns_ngx)] {
        if let Some(c) = c {
            out.push_str(&format!(
                "  idle TLS connections, {label}: {} alive of {}; RSS {} -> {} MiB, PSS {} -> {} MiB ({} bytes RSS per connection)\n",
                show(f(c, &["alive_after_hold"]), 0),
                show(f(c, &["requested"]), 0),
                show(mib(f(c, &["rss_kib_before"])), 1),
                show(mib(f(c, &["rss_kib_with_connections"])), 1),
                show(mib(f(c, &["pss_kib_before"])), 1),
                show(mib(f(c, &["pss_kib_with_connections"])), 1),
                show(f(c, &["rss_bytes_per_connection"]), 0),
            ));
        }
    }
    if let Some(s) = &stream {
        out.push_str(&format!(
            "  streaming {} MiB up and down at once: peak RSS {} MiB (before {} MiB); up {} MiB/s, down {} MiB/s\n",
            show(f(s, &["bytes_each_way"]).map(|b| b / 1048576.0), 0),
            show(mib(f(s, &["peak_rss_kib"])), 1),
            show(mib(f(s, &["rss_kib_before"])), 1),
            show(f(s, &["upload_mib_s"]), 0),
            show(f(s, &["download_mib_s"]), 0),
        ));
    }
    if let Some(s) = &startup {
        out.push_str(&format!(
            "  start-up to first proxied request: median {} ms, max {} ms\n",
            show(f(s, &["median_ms"]), 1),
            show(f(s, &["max_ms"]), 1),
        ));
    }
    out.push_str("\n  targets (issue 5)\n");
    for t in &targets {
        let mark = match t.met {
            Some(true) => "met   ",
            Some(false) => "MISSED",
            None => "n/a   ",
        };
        out.push_str(&format!("  [{mark}] {:<62} {}\n", t.name, t.figure));
    }
    print!("{out}");

    let doc = json!({
        "commit": commit,
        "cpus": cpus,
        "load_average_start": load_start,
        "load_average_end": load_end,
        "conditions": conditions,
        "versions": {
            "nginx": opts.opt("nginx"),
            "wrk": opts.opt("wrk"),
            "redis": opts.opt("redis"),
            "haproxy": opts.opt("haproxy"),
        },
        "settings": read_json(&dir, "settings.json"),
        // Each row: wrk's figures of its round with the median req/s (as the table shows).
        "http": row_map(&shown, |r| r.wrk.clone()),
        "ratios": {
            "gateway_pass_over_nginx": pass_vs_nginx,
            "gateway_pass_over_direct": pass_vs_direct,
            "nginx_over_direct": nginx_vs_direct,
            "gateway_anon_over_pass": anon_vs_pass,
            "cpu_per_request_gateway_pass_over_nginx": cpu_pass_vs_nginx,
        },
        "p99_ms_median_over_rounds": { "nginx": nginx_p99, "gateway_pass": pass_p99 },
        "cpu_us_per_request": row_map(&shown, |r| r.proxy_cpu().into()),
        "rounds": {
            "count": rounds,
            "shown_round": row_map(&shown, |r| r.round.into()),
            "runs": rows_runs(&shown),
            "ratios": {
                "gateway_pass_over_nginx": rounds_json(&pass_nginx_rounds),
                "gateway_pass_over_direct": rounds_json(&pass_direct_rounds),
                "nginx_over_direct": rounds_json(&nginx_direct_rounds),
                "gateway_anon_over_pass": rounds_json(&anon_pass_rounds),
                "cpu_per_request_gateway_pass_over_nginx": rounds_json(&cpu_pass_nginx_rounds),
            },
        },
        "pass_through_check": check,
        "scale": scale_doc,
        "mfa": { "loaded": mfa, "one_at_a_time": mfa_light },
        "idle_connections": { "gateway": conns_gw, "nginx": conns_ngx },
        "streaming": stream,
        "startup": startup,
        "targets": targets.iter().map(|t| json!({"target": t.name, "figure": t.figure, "met": t.met})).collect::<Vec<_>>(),
    });
    if let Some(out) = opts.opt("out") {
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        std::fs::write(out, text + "\n").map_err(|e| format!("{out}: {e}"))?;
    }
    Ok(())
}
