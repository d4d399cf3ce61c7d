//! Streaming through the gateway: one upload and one download of `--bytes` each, at the same
//! time, while the gateway's resident memory is sampled. A proxy that buffered bodies would
//! show it here as a peak near the body size.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;

use crate::{Opts, client, emit, procfs};

const CHUNK: usize = 64 * 1024;
static ZEROS: [u8; CHUNK] = [0; CHUNK];

fn body_of(bytes: u64) -> reqwest::Body {
    let full = bytes / CHUNK as u64;
    let rest = usize::try_from(bytes % CHUNK as u64).unwrap_or(0);
    let chunks = (0..full)
        .map(|_| Bytes::from_static(&ZEROS))
        .chain((rest > 0).then(|| Bytes::from_static(&ZEROS[..rest])));
    reqwest::Body::wrap_stream(futures_util::stream::iter(
        chunks.map(Ok::<Bytes, std::io::Error>),
    ))
}

/// `stream --url BASE --ca FILE --bytes N --pid P [--out F]`.
pub async fn run(opts: &Opts) -> Result<(), String> {
    let base = opts.loopback_url("url")?;
    let bytes: u64 = opts.num("bytes", 1 << 30)?;
    let pid: u32 = opts.num("pid", 0)?;
    let http = client(&opts.path("ca")?, 2)?;
    let hwm_reset = procfs::reset_hwm(pid);
    let rss_before = procfs::rss_kib(pid).unwrap_or(0);

    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(rss_before));
    let sampler = {
        let (done, peak) = (Arc::clone(&done), Arc::clone(&peak));
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Some(r) = procfs::rss_kib(pid) {
                    peak.fetch_max(r, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    let up = {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let t = Instant::now();
            let r = http
                .put(format!("{base}/sink"))
                .body(body_of(bytes))
                .timeout(Duration::from_secs(600))
                .send()
                .await
                .map_err(|e| format!("upload: {e}"))?;
            let status = r.status();
            let text = r.text().await.map_err(|e| format!("upload: {e}"))?;
            if !status.is_success() || text.trim() != bytes.to_string() {
                return Err(format!("upload: {status}, upstream saw {text:?} bytes"));
            }
            Ok::<f64, String>(t.elapsed().as_secs_f64())
        }
    };
    let down = {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let t = Instant::now();
            let r = http
                .get(format!("{base}/stream?bytes={bytes}"))
                .timeout(Duration::from_secs(600))
                .send()
                .await
                .map_err(|e| format!("download: {e}"))?;
            if !r.status().is_success() {
                return Err(format!("download: {}", r.status()));
            }
            let mut s = r.bytes_stream();
            let mut got: u64 = 0;
            while let Some(c) = s.next().await {
                got += c.map_err(|e| format!("download: {e}"))?.len() as u64;
            }
            if got != bytes {
                return Err(format!("download: got {got} of {bytes} bytes"));
            }
            Ok::<f64, String>(t.elapsed().as_secs_f64())
        }
    };
    let (up, down) = tokio::join!(up, down);
    done.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    let (up, down) = (up?, down?);
    let sampled = peak.load(Ordering::Relaxed);
    let hwm = if hwm_reset {
        procfs::hwm_kib(pid).unwrap_or(0)
    } else {
        0
    };
    let mib = bytes as f64 / (1024.0 * 1024.0);
    emit(
        opts,
        &serde_json::json!({
            "bytes_each_way": bytes,
            "upload_seconds": up,
            "download_seconds": down,
            "upload_mib_s": mib / up.max(1e-9),
            "download_mib_s": mib / down.max(1e-9),
            "rss_kib_before": rss_before,
            "peak_rss_kib_sampled": sampled,
            "peak_rss_kib_hwm": if hwm_reset { serde_json::json!(hwm) } else { serde_json::Value::Null },
            "peak_rss_kib": sampled.max(hwm),
        }),
    )
}
