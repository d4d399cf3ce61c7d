//! The ceiling of any TLS-terminating proxy on this machine: TLS in, bytes out, nothing else.
//!
//! Not a product and not a row of the benchmark's targets: it answers one question that the
//! pass-through target raises. The gateway and nginx cost about the same per request, most of
//! it the kernel's loopback TCP work; how much faster than nginx could *any* proxy be that
//! terminates TLS with the kernel's TCP stack? This program is the least such a proxy can do:
//! each client connection gets one TCP connection to the upstream of its own, opened at
//! accept, and bytes are copied both ways (`tokio::io::copy_bidirectional`) with no HTTP
//! parsing, no headers added or removed, no pool and no MFA check. Same TLS stack (rustls with
//! aws-lc-rs, the gateway's own server configuration and certificate, ALPN offering only
//! HTTP/1.1), one single-threaded
//! runtime per thread, each thread accepting on its own `SO_REUSEPORT` socket.
//!
//! Usage: `bench-ceiling --listen 127.0.0.1:PORT --upstream 127.0.0.1:PORT --cert PEM --key PEM
//! [--threads N]`. Used by hand (see bench/README.md, "Where the gap is now").

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use mfa_gateway::tls::{CertPaths, ReloadingCert, server_config};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsAcceptor;

struct Args {
    listen: SocketAddr,
    upstream: SocketAddr,
    cert: PathBuf,
    key: PathBuf,
    threads: usize,
}

fn args() -> Result<Args, String> {
    let usage =
        "usage: bench-ceiling --listen ADDR --upstream ADDR --cert PEM --key PEM [--threads N]";
    let mut listen = None;
    let mut upstream = None;
    let mut cert = None;
    let mut key = None;
    let mut threads = 2;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(usage)?;
        match flag.as_str() {
            "--listen" => listen = Some(value.parse().map_err(|_| usage)?),
            "--upstream" => upstream = Some(value.parse().map_err(|_| usage)?),
            "--cert" => cert = Some(PathBuf::from(value)),
            "--key" => key = Some(PathBuf::from(value)),
            "--threads" => threads = value.parse().map_err(|_| usage)?,
            _ => return Err(usage.into()),
        }
    }
    Ok(Args {
        listen: listen.ok_or(usage)?,
        upstream: upstream.ok_or(usage)?,
        cert: cert.ok_or(usage)?,
        key: key.ok_or(usage)?,
        threads,
    })
}

async fn relay(acceptor: TlsAcceptor, tcp: TcpStream, upstream: SocketAddr) {
    let _ = tcp.set_nodelay(true);
    let Ok(mut tls) = acceptor.accept(tcp).await else {
        return;
    };
    let Ok(mut up) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = up.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
}

async fn serve(
    listen: SocketAddr,
    upstream: SocketAddr,
    acceptor: TlsAcceptor,
) -> std::io::Result<()> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(listen)?;
    let listener = socket.listen(1024)?;
    loop {
        let (tcp, _) = listener.accept().await?;
        tokio::spawn(relay(acceptor.clone(), tcp, upstream));
    }
}

fn run() -> Result<(), String> {
    let a = args()?;
    mfa_gateway::tls::install_crypto_provider();
    let cert = ReloadingCert::load(CertPaths {
        cert: a.cert,
        key: a.key,
    })
    .map_err(|e| e.to_string())?;
    // The gateway's configuration, but HTTP/1.1 only: the bytes go to an HTTP/1.1 upstream
    // as they are.
    let mut config = (*server_config(cert).map_err(|e| e.to_string())?).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let threads: Vec<_> = (0..a.threads.max(1))
        .map(|_| {
            let acceptor = acceptor.clone();
            let (listen, upstream) = (a.listen, a.upstream);
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                rt.block_on(serve(listen, upstream, acceptor))
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "a thread panicked")??;
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-ceiling: {e}");
            ExitCode::FAILURE
        }
    }
}
