//! The shared state of one running gateway: configuration, upstream pool, key ring, store,
//! policy, revocations, metrics and clock. One `Arc<Gateway>` is shared by every connection.

use std::sync::Arc;

use http::Response;
use http::header::{self, HeaderValue};

use crate::auth::crypto::KeyRing;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::GatewayError;
use crate::gate::revocation::Revocations;
use crate::http::body::Body;
use crate::http::upstream::Upstream;
use crate::http::{ConnInfo, headers, html_page};
use crate::live_policy::LivePolicy;
use crate::metrics::Metrics;
use crate::pages;
use crate::pages::{Branding, Lang};
use crate::store::Store;

/// Paths the gateway answers itself, all under the reserved prefix.
#[derive(Debug, Clone)]
pub struct OwnedPaths {
    pub prefix: String,
    pub health: String,
    pub ready: String,
    pub metrics: String,
    pub verify: String,
    pub enroll: String,
    /// The one-time enrollment code step before a pairing after a reset.
    pub enrollment_code: String,
    pub offer: String,
    pub recovery: String,
    pub notice: String,
    pub account: String,
    pub account_repair: String,
    pub account_enroll: String,
    pub account_recovery: String,
    pub account_disable: String,
    pub account_setup: String,
    pub account_forget: String,
    pub account_passkey: String,
    pub account_passkey_rename: String,
    pub account_passkey_remove: String,
    pub passkey: String,
    pub admin: String,
    pub admin_user: String,
    pub admin_reset: String,
    pub admin_unlock: String,
    pub admin_forget: String,
    pub admin_enrollment_code: String,
    pub admin_api: String,
}

impl OwnedPaths {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
            health: format!("{prefix}health"),
            ready: format!("{prefix}ready"),
            metrics: format!("{prefix}metrics"),
            verify: format!("{prefix}verify"),
            enroll: format!("{prefix}enroll"),
            enrollment_code: format!("{prefix}enrollment-code"),
            offer: format!("{prefix}offer"),
            recovery: format!("{prefix}recovery-codes"),
            notice: format!("{prefix}notice"),
            account: format!("{prefix}account"),
            account_repair: format!("{prefix}account/replace-phone"),
            account_enroll: format!("{prefix}account/enroll"),
            account_recovery: format!("{prefix}account/recovery-codes"),
            account_disable: format!("{prefix}account/disable"),
            account_setup: format!("{prefix}account/set-up"),
            account_forget: format!("{prefix}account/forget-browsers"),
            account_passkey: format!("{prefix}account/passkey"),
            account_passkey_rename: format!("{prefix}account/passkey/rename"),
            account_passkey_remove: format!("{prefix}account/passkey/remove"),
            passkey: format!("{prefix}passkey"),
            admin: format!("{prefix}admin/"),
            admin_user: format!("{prefix}admin/user"),
            admin_reset: format!("{prefix}admin/reset"),
            admin_unlock: format!("{prefix}admin/unlock"),
            admin_forget: format!("{prefix}admin/forget-browsers"),
            admin_enrollment_code: format!("{prefix}admin/enrollment-code"),
            admin_api: format!("{prefix}admin/api/"),
        }
    }
}

pub struct Gateway {
    pub cfg: Arc<Config>,
    pub paths: OwnedPaths,
    pub upstream: Upstream,
    pub metrics: Arc<Metrics>,
    pub keys: Arc<KeyRing>,
    pub store: Store,
    pub policy: Arc<LivePolicy>,
    pub revocations: Arc<Revocations>,
    pub branding: Branding,
    pub default_lang: Lang,
    pub clock: Clock,
    pub audit: crate::audit::Audit,
    /// Recent successful MFA checks, for the one-address warning.
    pub sign_ins: crate::gate::sign_in_addresses::SignIns,
    /// Open WebSocket tunnels of approved sessions (closed when their approval ends).
    pub tunnels: Arc<crate::gate::tunnels::Tunnels>,
    /// The gateway as a WebAuthn relying party (`[webauthn]`); `None`: passkeys not offered.
    pub passkeys: Option<Arc<crate::auth::passkey::RelyingParty>>,
    /// The mail outbox, with `[mail]` (`None`: notifications are off).
    pub mail: Option<crate::mail::Outbox>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("paths", &self.paths)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Assembles the state. `keys` and `store` are made by the caller (start-up or tests).
    pub fn new(
        cfg: Arc<Config>,
        keys: KeyRing,
        store: Store,
        policy: Arc<LivePolicy>,
        clock: Clock,
    ) -> Result<Arc<Self>, String> {
        let upstream = Upstream::new(&cfg.upstream, cfg.server.max_header_bytes)?;
        let branding = Branding {
            product_name: cfg.mfa.product_name.clone(),
            logo_data_uri: cfg.mfa.logo_data_uri.clone(),
            support_text: cfg.mfa.support_text.clone(),
            helpdesk_name: cfg.mfa.helpdesk_name.clone(),
        };
        let default_lang = if cfg.mfa.default_language == "nl" {
            Lang::Nl
        } else {
            Lang::En
        };
        let keys = Arc::new(keys);
        let passkeys = match &cfg.webauthn {
            Some(w) => Some(Arc::new(
                crate::auth::passkey::RelyingParty::new(&w.rp_id, &w.origin, &w.rp_name)
                    .map_err(|e| e.to_string())?,
            )),
            None => None,
        };
        let metrics = Arc::new(Metrics::new());
        let mut audit = crate::audit::Audit::new(
            store.clone(),
            cfg.admin.audit_max_records,
            Some(Arc::clone(&keys)),
        );
        let mail = cfg.mail.as_ref().map(|m| {
            let outbox = crate::mail::Outbox::new(store.clone(), Arc::clone(&metrics));
            audit = audit
                .clone()
                .with_observer(crate::mail::notify::Notifier::new(
                    outbox.clone(),
                    m.include_reset_reason,
                ));
            outbox
        });
        Ok(Arc::new(Self {
            passkeys,
            paths: OwnedPaths::new(&cfg.server.prefix),
            upstream,
            metrics,
            keys: Arc::clone(&keys),
            store: store.clone(),
            policy,
            revocations: Revocations::new(),
            branding,
            default_lang,
            clock,
            audit,
            sign_ins: crate::gate::sign_in_addresses::SignIns::default(),
            tunnels: Arc::default(),
            mail,
            cfg,
        }))
    }
}

impl Gateway {
    /// The language of the gateway's pages for a request's `Accept-Language`.
    pub fn lang(&self, accept_language: Option<&HeaderValue>) -> Lang {
        Lang::negotiate(
            accept_language.and_then(|v| v.to_str().ok()),
            self.default_lang,
        )
    }

    /// The client's address: the peer, or what trusted proxies say in `X-Forwarded-For`.
    pub fn client_ip(&self, headers: &http::HeaderMap, conn: ConnInfo) -> std::net::IpAddr {
        headers::client_ip(headers, conn.peer.ip(), &self.cfg.server.trusted_proxies)
    }

    /// Builds the page for an error.
    pub fn error_response(&self, e: &GatewayError, lang: Lang) -> Response<Body> {
        self.error_response_for(e, lang, false)
    }

    /// [`Gateway::error_response`]; for a signed-in user (`signed_in`) the page also links
    /// to the MFA settings.
    pub fn error_response_for(
        &self,
        e: &GatewayError,
        lang: Lang,
        signed_in: bool,
    ) -> Response<Body> {
        let page = e.page();
        let account = signed_in.then_some(self.paths.account.as_str());
        let mut r = html_page(
            page.status(),
            pages::error_page_with(lang, &self.branding, page, account),
        );
        if let Some(secs) = e.retry_after() {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(secs));
        }
        r
    }

    pub fn page_response(&self, page: pages::ErrorPage, lang: Lang) -> Response<Body> {
        html_page(page.status(), pages::error_page(lang, &self.branding, page))
    }
}

impl Gateway {
    /// The periodic check (see the module documentation): sets the metric and warns.
    /// Returns what it found, when it warned.
    pub fn check_sign_in_addresses(
        &self,
        now: u64,
    ) -> Option<crate::gate::sign_in_addresses::OneAddress> {
        let found = if self.cfg.server.trusted_proxies.is_empty() {
            self.sign_ins.one_address(now)
        } else {
            None
        };
        self.metrics.sign_ins_from_one_address(found.is_some());
        if let Some(f) = &found {
            tracing::warn!(
                address = %f.addr,
                sign_ins = f.sign_ins,
                users = f.users,
                "every sign-in of the last 24 hours came from one address while server.trusted_proxies is empty: if the gateway is behind a load balancer or reverse proxy, list it in server.trusted_proxies, or the per-address failure limit and the audit trail see only that address (docs/security.md)"
            );
        }
        found
    }
}
