//! Start-up: from spawning the gateway process to its first successful proxied request.
//!
//! The client is built before the clock starts; each attempt uses a new connection (the
//! process did not exist a moment ago), and a refused connection is retried after 1 ms.
//! Each run's process is ended (it is our own child) before the next run starts.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Opts, emit, percentile};

/// `startup --bin PATH --config FILE --url BASE --ca FILE [--runs N] [--log F] [--out F]`.
pub async fn run(opts: &Opts) -> Result<(), String> {
    let bin = opts.path("bin")?;
    let config = opts.path("config")?;
    let url = format!("{}/", opts.loopback_url("url")?);
    let runs: usize = opts.num("runs", 5)?;
    let http = crate::client(&opts.path("ca")?, 0)?;
    let log = |what: &str| -> Result<Stdio, String> {
        match opts.opt("log") {
            None => Ok(Stdio::null()),
            Some(p) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map(Stdio::from)
                .map_err(|e| format!("{what}: {p}: {e}")),
        }
    };
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let mut child = Command::new(&bin)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log("--log")?)
            .spawn()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        let mut result = Err("no answer within 10 s".to_string());
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                result = Ok(start.elapsed());
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                result = Err(format!(
                    "the gateway exited: {status} (its messages: --log FILE)"
                ));
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        times.push(result?.as_secs_f64() * 1000.0);
        // Let the port be free again before the next run.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    emit(
        opts,
        &serde_json::json!({
            "runs_ms": times,
            "median_ms": percentile(&sorted, 50.0),
            "max_ms": sorted.last().copied().unwrap_or(0.0),
        }),
    )
}
