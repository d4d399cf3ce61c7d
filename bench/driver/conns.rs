//! Idle keep-alive TLS connections: what each one costs a server in memory.
//!
//! Opens `--count` TLS connections (full handshakes, no session resumption, as many different
//! browsers would), sends one keep-alive request on each and reads the answer, then leaves
//! them all idle and reads the RSS (and PSS) of the server processes given by `--pids`,
//! before and after. The connections are closed when the command ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::{Opts, emit, procfs};

fn connector(ca: &std::path::Path) -> Result<TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))? {
        roots
            .add(c.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let mut cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.resumption = rustls::client::Resumption::disabled();
    Ok(TlsConnector::from(Arc::new(cfg)))
}

/// Reads one HTTP/1.1 response with a Content-Length body; returns its status.
async fn read_response(s: &mut TlsStream<TcpStream>, buf: &mut Vec<u8>) -> Result<u16, String> {
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before the response".into());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err("response head too large".into());
        }
    };
    let head = String::from_utf8_lossy(buf.get(..head_end).unwrap_or_default()).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .ok_or("no content-length")?;
    let mut have = buf.len() - head_end;
    while have < len {
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed inside the body".into());
        }
        have += n;
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    Ok(status)
}

/// Each step of opening a connection gets 10 s; a step that hangs is named in the error.
async fn bounded<T, E: std::fmt::Display>(
    step: &str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(Duration::from_secs(10), f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{step}: {e}")),
        Err(_) => Err(format!("{step}: no progress within 10 s")),
    }
}

async fn open_one(
    addr: std::net::SocketAddr,
    tls: TlsConnector,
    request: Arc<Vec<u8>>,
) -> Result<TlsStream<TcpStream>, String> {
    let tcp = bounded("connect", TcpStream::connect(addr)).await?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::from(addr.ip());
    let mut s = bounded("TLS handshake", tls.connect(name, tcp)).await?;
    bounded("request", s.write_all(&request)).await?;
    bounded("request", s.flush()).await?;
    let mut buf = Vec::with_capacity(2048);
    let r = bounded("response", read_response(&mut s, &mut buf)).await;
    if let Err(e) = &r {
        return Err(format!(
            "{e} ({} bytes: {:?})",
            buf.len(),
            String::from_utf8_lossy(buf.get(..buf.len().min(300)).unwrap_or_default())
        ));
    }
    match r? {
        200 => Ok(s),
        other => Err(format!("status {other}")),
    }
}

/// `conns --addr 127.0.0.1:P --ca FILE --count N --pids A,B --label L [--hold S] [--out F]`.
pub async fn run(opts: &Opts) -> Result<(), String> {
    let addr: std::net::SocketAddr = opts
        .str("addr")?
        .parse()
        .map_err(|e| format!("--addr: {e}"))?;
    if !addr.ip().is_loopback() {
        return Err("--addr: only loopback targets are allowed".into());
    }
    let count: usize = opts.num("count", 10_000)?;
    let parallel: usize = opts.num("parallel", 64)?;
    let hold: u64 = opts.num("hold", 3)?;
    let pids = procfs::parse_pids(opts.str("pids")?)?;
    let tls = connector(&opts.path("ca")?)?;
    let request = Arc::new(
        format!("GET / HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: bench-driver\r\n\r\n").into_bytes(),
    );
    let (rss_before, pss_before) = procfs::sum(&pids);
    let start = Instant::now();
    let results: Vec<Result<TlsStream<TcpStream>, String>> = futures_util::stream::iter(
        (0..count).map(|_| open_one(addr, tls.clone(), Arc::clone(&request))),
    )
    .buffer_unordered(parallel.max(1))
    .collect()
    .await;
    let open_secs = start.elapsed().as_secs_f64();
    let mut open = Vec::with_capacity(count);
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(s) => open.push(s),
            Err(e) => errors.push(e),
        }
    }
    tokio::time::sleep(Duration::from_secs(hold)).await;
    let (rss_after, pss_after) = procfs::sum(&pids);
    // Still open? A server that dropped idle connections would look cheap for the wrong reason.
    let mut alive = 0usize;
    for s in &mut open {
        let mut b = [0u8; 1];
        // Polled once: still pending means open and idle; a close reads as 0 bytes.
        if s.read(&mut b).now_or_never().is_none() {
            alive += 1;
        }
    }
    if let Some(e) = errors.first() {
        eprintln!("{} connections failed; first: {e}", errors.len());
    }
    let per_conn = |after: u64, before: u64| {
        if alive == 0 {
            0.0
        } else {
            after.saturating_sub(before) as f64 * 1024.0 / alive as f64
        }
    };
    emit(
        opts,
        &serde_json::json!({
            "label": opts.opt("label").unwrap_or(""),
            "requested": count,
            "opened": open.len(),
            "alive_after_hold": alive,
            "errors": errors.len(),
            "open_seconds": open_secs,
            "processes": pids.len(),
            "rss_kib_before": rss_before,
            "rss_kib_with_connections": rss_after,
            "pss_kib_before": pss_before,
            "pss_kib_with_connections": pss_after,
            "rss_bytes_per_connection": per_conn(rss_after, rss_before),
        }),
    )
}
