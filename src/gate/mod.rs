//! What of a client's VMS session may reach the VMS: approvals bound to a session
//! ([`approval`]), the gateway's cookies ([`cookies`]), the per-thread cache of verified
//! approvals ([`verified`]) and of whole `Cookie` headers ([`memo`]), revocations across
//! instances ([`revocation`]), the open WebSocket tunnels of approved sessions ([`tunnels`])
//! and the sign-in address check ([`sign_in_addresses`]).
//!
//! The decision itself, for one request, is `proxy::Gateway::gate`; this module holds what
//! it decides with, below the shared state (`gateway`) that keeps it.

pub mod approval;
pub mod cookies;
pub mod memo;
#[cfg(test)]
mod props;
pub mod revocation;
pub mod sign_in_addresses;
pub mod tunnels;
pub mod verified;

use std::sync::Arc;

use approval::Approval;

/// What the gate decided for a request's VMS session.
#[derive(Debug)]
pub enum Gate {
    /// No VMS session cookie in the request.
    Anonymous,
    /// The session is approved.
    Approved(Arc<Approval>),
    /// A session cookie was present without valid approval and has been removed.
    Stripped,
    /// As [`Gate::Stripped`], for a session whose approval was good and has ended (expired,
    /// revoked by a logout or an MSP reset, or no longer enough for the policy): a page that
    /// was open when it ended is told so (`proxy`: a script gets a JSON 401).
    Ended,
    /// A session without approval that carries a valid pre-login marker (`proxy::prelogin`):
    /// kept in the request only until `proxy::prelogin::admit` has asked the store, which every
    /// caller of [`Gateway::gate`] that forwards the request must do.
    PreLogin([u8; 16]),
    /// A pre-login session the store does not let through now (signing in, or the store could
    /// not say): removed, and an answer that sets a new anonymous session does not replace it
    /// in the browser (the id waits for its MFA step).
    Held,
}
