//! Protocol upgrades (WebSocket) pass through as an opaque byte tunnel.
//!
//! The gateway forwards the upgrade request like any other (with `Connection: upgrade` and
//! `Upgrade` restored); when the VMS answers `101 Switching Protocols`, both sides are
//! upgraded and bytes are copied in both directions until either side closes. The session
//! gate has already run on the upgrade request, so an unapproved session cannot open a tunnel.

use std::sync::Arc;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::metrics::Metrics;

/// Joins the client's and the upstream's upgraded connections once both are ready.
pub fn spawn_tunnel(client: OnUpgrade, upstream: OnUpgrade, metrics: Arc<Metrics>) {
    tokio::spawn(async move {
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
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((up, down)) => tracing::debug!(bytes_up = up, bytes_down = down, "tunnel closed"),
            Err(e) => tracing::debug!(error = %e, "tunnel ended with an error"),
        }
        metrics.tunnel_closed();
    });
}
