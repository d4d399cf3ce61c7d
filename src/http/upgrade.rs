//! Protocol upgrades (WebSocket) pass through as an opaque byte tunnel.
//!
//! The gateway forwards the upgrade request like any other (with `Connection: upgrade` and
//! `Upgrade` restored); when the VMS answers `101 Switching Protocols`, both sides are
//! upgraded and bytes are copied in both directions until either side closes. The session
//! gate has already run on the upgrade request, so an unapproved session cannot open a tunnel;
//! a tunnel of an approved session is closed when its approval ends (`gate::tunnels`).

use std::sync::Arc;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::metrics::Metrics;

/// Joins the client's and the upstream's upgraded connections once both are ready, until
/// either side closes or `close` fires (the session's approval ended: `gate::tunnels`);
/// `held` is dropped when the tunnel ends.
pub fn spawn_tunnel<H: Send + 'static>(
    client: OnUpgrade,
    upstream: OnUpgrade,
    metrics: Arc<Metrics>,
    close: Option<tokio::sync::oneshot::Receiver<()>>,
    held: H,
) {
    tokio::spawn(async move {
        let _held = held;
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade did not complete");
                return;
            }
        };
        metrics.tunnel_opened();
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        let closed = async {
            match close {
                // Fired, or its sender dropped (the register could not keep it, or is gone):
                // either way nobody can close it later, so it closes now (fails closed).
                Some(rx) => {
                    let _ = rx.await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            r = tokio::io::copy_bidirectional(&mut client, &mut upstream) => match r {
                Ok((up, down)) => tracing::debug!(bytes_up = up, bytes_down = down, "tunnel closed"),
                Err(e) => tracing::debug!(error = %e, "tunnel ended with an error"),
            },
            () = closed => tracing::info!("tunnel closed: its session's approval ended"),
        }
        metrics.tunnel_closed();
    });
}
