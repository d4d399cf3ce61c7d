//! Joins the parts of one benchmark run into the printed table, the targets from the issue,
//! and one JSON document. Parts that were not measured (a skipped step) are shown as missing,
//! never filled in.

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

/// CPU microseconds per request of the proxy and of the upstream during one wrk run.
fn cpu_per_request(dir: &Path, name: &str, wrk: Option<&Value>) -> (Option<f64>, Option<f64>) {
    let cpu = read_json(dir, &format!("cpu-{name}.json"));
    let requests = wrk.and_then(|v| f(v, &["requests"])).filter(|r| *r > 0.0);
    let per = |k: &str| {
        let c = cpu.as_ref()?;
        Some(f(c, &[k])? / f(c, &["ticks_per_second"])? * 1e6 / requests?)
    };
    (per("proxy_cpu_ticks"), per("upstream_cpu_ticks"))
}

/// One wrk row: req/s, latency percentiles in ms, CPU per request.
fn wrk_row(label: &str, v: Option<&Value>, cpu: (Option<f64>, Option<f64>)) -> String {
    let ms = |k: &str| v.and_then(|v| f(v, &["latency_us", k])).map(|u| u / 1000.0);
    let errs = v
        .and_then(|v| v.get("errors"))
        .and_then(Value::as_object)
        .map(|o| o.values().filter_map(Value::as_u64).sum::<u64>());
    format!(
        "  {label:<28}{:>10}{:>9}{:>9}{:>10}{:>8}{:>12}{:>12}",
        show(v.and_then(|v| f(v, &["rps"])), 0),
        show(ms("p50"), 2),
        show(ms("p99"), 2),
        show(ms("p999"), 2),
        errs.map_or("-".into(), |e| e.to_string()),
        show(cpu.0, 1),
        show(cpu.1, 1),
    )
}

/// What reached the upstream and Redis during the pass-through run.
fn pass_check(dir: &Path) -> Value {
    let before = read_json(dir, "stats-pass-before.json");
    let after = read_json(dir, "stats-pass-after.json");
    let delta = |k: &str| match (&before, &after) {
        (Some(b), Some(a)) => Some(f(a, &[k])? - f(b, &[k])?),
        _ => None,
    };
    let redis = match (
        read_text(dir, "redis-pass-before.txt").and_then(|s| s.parse::<f64>().ok()),
        read_text(dir, "redis-pass-after.txt").and_then(|s| s.parse::<f64>().ok()),
    ) {
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

fn mib(kib: Option<f64>) -> Option<f64> {
    kib.map(|k| k / 1024.0)
}

/// `report --dir TMP --out FILE [--nginx V --wrk V --redis V --conditions TEXT]`.
pub fn run(opts: &Opts) -> Result<(), String> {
    let dir = opts.path("dir")?;
    let direct = read_json(&dir, "wrk-direct.json");
    let nginx = read_json(&dir, "wrk-nginx.json");
    let pass = read_json(&dir, "wrk-gateway-pass.json");
    let anon = read_json(&dir, "wrk-gateway-anon.json");
    let mfa = read_json(&dir, "mfa.json");
    let mfa_light = read_json(&dir, "mfa-light.json");
    let conns_gw = read_json(&dir, "conns-gateway.json");
    let conns_ngx = read_json(&dir, "conns-nginx.json");
    let stream = read_json(&dir, "stream.json");
    let startup = read_json(&dir, "startup.json");
    let check = pass_check(&dir);

    let rps = |v: &Option<Value>| v.as_ref().and_then(|v| f(v, &["rps"]));
    let p99 = |v: &Option<Value>| v.as_ref().and_then(|v| f(v, &["latency_us", "p99"]));
    let pass_vs_nginx = ratio(rps(&pass), rps(&nginx));
    let pass_vs_direct = ratio(rps(&pass), rps(&direct));
    let anon_vs_pass = ratio(rps(&anon), rps(&pass));
    let nginx_vs_direct = ratio(rps(&nginx), rps(&direct));
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
    let pass_requests = pass.as_ref().and_then(|v| f(v, &["requests"]));

    let targets = [
        target(
            "gateway pass-through req/s >= 1.1 x nginx",
            format!("{} x", show(pass_vs_nginx, 3)),
            pass_vs_nginx.map(|r| r >= 1.1),
        ),
        target(
            "gateway pass-through p99 <= nginx p99",
            format!(
                "{} ms vs {} ms",
                show(p99(&pass).map(|u| u / 1000.0), 2),
                show(p99(&nginx).map(|u| u / 1000.0), 2)
            ),
            p99(&pass).zip(p99(&nginx)).map(|(g, n)| g <= n),
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

    let mut out = String::new();
    out.push_str(&format!(
        "mfa-gateway benchmark: commit {commit}, {cpus} CPUs, load average at start {load_start}, at end {load_end}\n"
    ));
    if !conditions.is_empty() {
        out.push_str(&format!("conditions: {conditions}\n"));
    }
    out.push_str(&format!(
        "\n  {:<28}{:>10}{:>9}{:>9}{:>10}{:>8}{:>12}{:>12}\n",
        "HTTP/1.1 keep-alive",
        "req/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "errors",
        "proxy CPU",
        "upstr. CPU"
    ));
    out.push_str(&format!("  {:<28}{:>65}\n", "", "(us per request)"));
    for (label, name, v) in [
        ("direct (plain HTTP)", "direct", &direct),
        ("nginx (TLS, proxy_pass)", "nginx", &nginx),
        ("gateway pass-through", "gateway-pass", &pass),
        ("gateway anonymous", "gateway-anon", &anon),
    ] {
        let cpu = cpu_per_request(&dir, name, v.as_ref());
        out.push_str(&(wrk_row(label, v.as_ref(), cpu) + "\n"));
    }
    let cpu_pass = cpu_per_request(&dir, "gateway-pass", pass.as_ref()).0;
    let cpu_nginx = cpu_per_request(&dir, "nginx", nginx.as_ref()).0;
    out.push_str(&format!(
        "\n  ratios (req/s): gateway pass-through / nginx {}, gateway pass-through / direct {}, nginx / direct {}, anonymous / pass-through {}\n",
        show(pass_vs_nginx, 3),
        show(pass_vs_direct, 3),
        show(nginx_vs_direct, 3),
        show(anon_vs_pass, 3)
    ));
    out.push_str(&format!(
        "  CPU per request: gateway pass-through / nginx {}\n",
        show(ratio(cpu_pass, cpu_nginx), 3)
    ));
    out.push_str(&format!(
        "  pass-through check: {} upstream requests, {} with the VMS session, {} with the gateway cookie\n",
        show(check.get("upstream_requests").and_then(Value::as_f64), 0),
        show(check.get("with_vms_session").and_then(Value::as_f64), 0),
        show(check.get("with_gateway_cookie").and_then(Value::as_f64), 0),
    ));
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
        },
        "settings": read_json(&dir, "settings.json"),
        "http": { "direct": direct, "nginx": nginx, "gateway_pass": pass, "gateway_anon": anon },
        "ratios": {
            "gateway_pass_over_nginx": pass_vs_nginx,
            "gateway_pass_over_direct": pass_vs_direct,
            "nginx_over_direct": nginx_vs_direct,
            "gateway_anon_over_pass": anon_vs_pass,
            "cpu_per_request_gateway_pass_over_nginx": ratio(cpu_pass, cpu_nginx),
        },
        "cpu_us_per_request": {
            "nginx": cpu_nginx,
            "gateway_pass": cpu_pass,
            "gateway_anon": cpu_per_request(&dir, "gateway-anon", anon.as_ref()).0,
        },
        "pass_through_check": check,
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
