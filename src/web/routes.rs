//! The route table of the reserved prefix: every path the gateway answers itself, the methods
//! it takes there, and the handler it goes to.
//!
//! One table ([`table`]), built from the configured paths ([`crate::gateway::OwnedPaths`]),
//! is the only place a path under the prefix is compared with a request's: the router
//! ([`resolve`]) finds the request's [`Route`] in it once, answers `404` for a path it does
//! not list and `405` with an `Allow` header for a listed path asked with another method,
//! and the handlers receive a typed route, never a path to compare again. A route that takes
//! `GET` takes `HEAD` too (hyper sends the head of the `GET` answer without its body).
//!
//! The JSON API has one path pattern with a user in it (`admin/api/users/{user}...`); its
//! routes are parsed from the segments after `admin/api/` into an [`ApiRoute`], each segment
//! percent-decoded, and its `404` and `405` answers are JSON like the rest of the API.

use http::Method;

use crate::gateway::{Gateway, OwnedPaths};
use crate::mfa::challenge::Step;

/// A page or endpoint under the reserved prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Liveness.
    Health,
    /// Readiness: the upstream, the store and the policy file.
    Ready,
    /// Prometheus metrics, when served on the main listener.
    Metrics,
    /// A page of the MFA step of a sign-in.
    Step(Step),
    /// The user's own account page (`POST`: "continue" after new recovery codes).
    Account,
    /// Pairing a phone from the account page.
    AccountEnroll,
    AccountSetUp,
    AccountReplacePhone,
    AccountRecoveryCodes,
    AccountDisable,
    /// Forgetting one or all of the user's remembered browsers.
    AccountForgetBrowsers,
    /// Adding a passkey from the account page (the page, and the browser's answer).
    AccountPasskey,
    AccountPasskeyRename,
    AccountPasskeyRemove,
    /// The MSP's user search.
    AdminSearch,
    AdminUser,
    AdminReset,
    AdminUnlock,
    AdminForgetBrowsers,
    /// An endpoint of the JSON API.
    Api(ApiRoute),
}

/// An endpoint of the JSON API under `admin/api/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiRoute {
    /// `users?prefix=`
    Users,
    /// `users/{user}`
    User(String),
    /// `users/{user}/events`
    Events(String),
    /// `users/{user}/reset`
    Reset(String),
    /// `users/{user}/unlock`
    Unlock(String),
}

/// The methods a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Methods {
    /// `GET` and `HEAD`: pages to read.
    Get,
    /// `POST` only: a change.
    Post,
    /// A page and the form it sends back to itself.
    GetPost,
}

impl Methods {
    pub fn allows(self, m: &Method) -> bool {
        let get = *m == Method::GET || *m == Method::HEAD;
        match self {
            Methods::Get => get,
            Methods::Post => *m == Method::POST,
            Methods::GetPost => get || *m == Method::POST,
        }
    }

    /// The `Allow` header of a `405`.
    pub fn allow_header(self) -> &'static str {
        match self {
            Methods::Get => "GET, HEAD",
            Methods::Post => "POST",
            Methods::GetPost => "GET, HEAD, POST",
        }
    }
}

impl Route {
    /// The methods this route takes (the table's middle column).
    pub fn methods(&self) -> Methods {
        use Methods::{Get, GetPost, Post};
        match self {
            Route::Health
            | Route::Ready
            | Route::Metrics
            | Route::AdminSearch
            | Route::AdminUser => Get,
            Route::Step(_) | Route::Account | Route::AccountEnroll | Route::AccountPasskey => {
                GetPost
            }
            Route::AccountPasskeyRename
            | Route::AccountPasskeyRemove
            | Route::AccountSetUp
            | Route::AccountReplacePhone
            | Route::AccountRecoveryCodes
            | Route::AccountDisable
            | Route::AccountForgetBrowsers
            | Route::AdminReset
            | Route::AdminUnlock
            | Route::AdminForgetBrowsers => Post,
            Route::Api(ApiRoute::Users | ApiRoute::User(_) | ApiRoute::Events(_)) => Get,
            Route::Api(ApiRoute::Reset(_) | ApiRoute::Unlock(_)) => Post,
        }
    }

    pub fn is_api(&self) -> bool {
        matches!(self, Route::Api(_))
    }
}

/// Every fixed path under the prefix and its route. The API's endpoints, below
/// `paths.admin_api`, are parsed by [`api_route`].
pub fn table(p: &OwnedPaths) -> [(&str, Route); 24] {
    [
        (&p.health, Route::Health),
        (&p.ready, Route::Ready),
        (&p.metrics, Route::Metrics),
        (&p.verify, Route::Step(Step::Verify)),
        (&p.enroll, Route::Step(Step::Enroll)),
        (&p.offer, Route::Step(Step::Offer)),
        (&p.recovery, Route::Step(Step::Recovery)),
        (&p.notice, Route::Step(Step::Notice)),
        (&p.passkey, Route::Step(Step::Passkey)),
        (&p.account, Route::Account),
        (&p.account_enroll, Route::AccountEnroll),
        (&p.account_setup, Route::AccountSetUp),
        (&p.account_repair, Route::AccountReplacePhone),
        (&p.account_recovery, Route::AccountRecoveryCodes),
        (&p.account_disable, Route::AccountDisable),
        (&p.account_forget, Route::AccountForgetBrowsers),
        (&p.account_passkey, Route::AccountPasskey),
        (&p.account_passkey_rename, Route::AccountPasskeyRename),
        (&p.account_passkey_remove, Route::AccountPasskeyRemove),
        (&p.admin, Route::AdminSearch),
        (&p.admin_user, Route::AdminUser),
        (&p.admin_reset, Route::AdminReset),
        (&p.admin_unlock, Route::AdminUnlock),
        (&p.admin_forget, Route::AdminForgetBrowsers),
    ]
    .map(|(path, route)| (path.as_str(), route))
}

/// The API endpoint for the part of a path after `admin/api/`.
pub fn api_route(rest: &str) -> Option<ApiRoute> {
    let segments: Vec<String> = rest
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    Some(match s.as_slice() {
        ["users"] => ApiRoute::Users,
        ["users", u] => ApiRoute::User((*u).to_string()),
        ["users", u, "events"] => ApiRoute::Events((*u).to_string()),
        ["users", u, "reset"] => ApiRoute::Reset((*u).to_string()),
        ["users", u, "unlock"] => ApiRoute::Unlock((*u).to_string()),
        _ => return None,
    })
}

/// What the router found for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// A route that takes the request's method.
    Found(Route),
    /// A listed path asked with a method it does not take: `405` with `Allow`.
    MethodNotAllowed { allow: Methods, api: bool },
    /// No such path: `404`.
    NotFound { api: bool },
}

/// Finds the route of a request under the prefix.
pub fn resolve(gw: &Gateway, method: &Method, path: &str) -> Resolved {
    let metrics_here = gw.cfg.metrics.enabled && gw.cfg.metrics.listen.is_none();
    resolve_in(&gw.paths, metrics_here, method, path)
}

/// [`resolve`] for given paths; `metrics_here`: the metrics are served on this listener.
pub fn resolve_in(p: &OwnedPaths, metrics_here: bool, method: &Method, path: &str) -> Resolved {
    let route = if let Some(rest) = path.strip_prefix(p.admin_api.as_str()) {
        match api_route(rest) {
            Some(r) => r.into(),
            None => return Resolved::NotFound { api: true },
        }
    } else {
        match table(p).into_iter().find(|(listed, _)| *listed == path) {
            Some((_, Route::Metrics)) if !metrics_here => return Resolved::NotFound { api: false },
            Some((_, r)) => r,
            None => return Resolved::NotFound { api: false },
        }
    };
    let allow = route.methods();
    if allow.allows(method) {
        Resolved::Found(route)
    } else {
        Resolved::MethodNotAllowed {
            allow,
            api: route.is_api(),
        }
    }
}

impl From<ApiRoute> for Route {
    fn from(r: ApiRoute) -> Self {
        Route::Api(r)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    const ALL: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FROB",
    ];

    fn m(s: &str) -> Method {
        Method::from_bytes(s.as_bytes()).unwrap()
    }

    fn paths() -> OwnedPaths {
        OwnedPaths::new("/.mfa/")
    }

    /// The methods a route must take, written out apart from [`Route::methods`].
    fn expected(r: &Route) -> &'static [&'static str] {
        match r {
            Route::Health
            | Route::Ready
            | Route::Metrics
            | Route::AdminSearch
            | Route::AdminUser
            | Route::Api(ApiRoute::Users | ApiRoute::User(_) | ApiRoute::Events(_)) => {
                &["GET", "HEAD"]
            }
            Route::Step(_) | Route::Account | Route::AccountEnroll | Route::AccountPasskey => {
                &["GET", "HEAD", "POST"]
            }
            Route::AccountPasskeyRename
            | Route::AccountPasskeyRemove
            | Route::AccountSetUp
            | Route::AccountReplacePhone
            | Route::AccountRecoveryCodes
            | Route::AccountDisable
            | Route::AccountForgetBrowsers
            | Route::AdminReset
            | Route::AdminUnlock
            | Route::AdminForgetBrowsers
            | Route::Api(ApiRoute::Reset(_) | ApiRoute::Unlock(_)) => &["POST"],
        }
    }

    fn every_route() -> Vec<(String, Route)> {
        let p = paths();
        let mut all: Vec<(String, Route)> = table(&p)
            .into_iter()
            .map(|(path, r)| (path.to_string(), r))
            .collect();
        for (rest, r) in [
            ("users", ApiRoute::Users),
            ("users/al%20ice", ApiRoute::User("al ice".into())),
            ("users/alice/events", ApiRoute::Events("alice".into())),
            ("users/alice/reset", ApiRoute::Reset("alice".into())),
            ("users/alice/unlock", ApiRoute::Unlock("alice".into())),
        ] {
            all.push((format!("{}{rest}", p.admin_api), Route::Api(r)));
        }
        all
    }

    #[test]
    fn every_route_resolves_with_exactly_its_methods() {
        let p = paths();
        let all = every_route();
        assert_eq!(all.len(), 29);
        for (path, route) in &all {
            let want = expected(route);
            for name in ALL {
                let got = resolve_in(&p, true, &m(name), path);
                if want.contains(&name) {
                    assert_eq!(got, Resolved::Found(route.clone()), "{name} {path}");
                } else {
                    let Resolved::MethodNotAllowed { allow, api } = got else {
                        panic!("{name} {path}: {got:?}");
                    };
                    assert_eq!(allow.allow_header(), want.join(", "), "{path}");
                    assert_eq!(api, route.is_api(), "{path}");
                }
            }
        }
    }

    #[test]
    fn every_path_of_the_table_is_a_different_configured_path() {
        let p = paths();
        let t = table(&p);
        for (i, (a, _)) in t.iter().enumerate() {
            assert!(a.starts_with("/.mfa/") && a.len() > "/.mfa/".len(), "{a}");
            assert!(!a.starts_with(p.admin_api.as_str()), "{a}");
            for (b, _) in &t[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // Every page of an MFA step is listed under the path the challenge redirects to.
        for s in [
            Step::Verify,
            Step::Enroll,
            Step::Offer,
            Step::Recovery,
            Step::Notice,
        ] {
            assert!(t.iter().any(|(_, r)| *r == Route::Step(s)), "{s:?}");
        }
    }

    #[test]
    fn unknown_paths_are_not_found() {
        let p = paths();
        for path in [
            "/.mfa/",
            "/.mfa/nope",
            "/.mfa/verify/",
            "/.mfa/VERIFY",
            "/.mfa/healthz",
            "/.mfa/account/",
            "/.mfa/account/nope",
            "/.mfa/admin",
            "/.mfa/admin/nope",
            "/.mfa/admin/api",
            "/.mfa/account/enroll/x",
        ] {
            for name in ALL {
                assert_eq!(
                    resolve_in(&p, true, &m(name), path),
                    Resolved::NotFound { api: false },
                    "{name} {path}"
                );
            }
        }
        for path in [
            "/.mfa/admin/api/",
            "/.mfa/admin/api/nope",
            "/.mfa/admin/api/users/alice/delete",
            "/.mfa/admin/api/users/alice/events/x",
            "/.mfa/admin/api/Users",
        ] {
            assert_eq!(
                resolve_in(&p, true, &Method::GET, path),
                Resolved::NotFound { api: true },
                "{path}"
            );
        }
    }

    #[test]
    fn metrics_are_not_found_where_they_are_not_served() {
        let p = paths();
        assert_eq!(
            resolve_in(&p, false, &Method::GET, "/.mfa/metrics"),
            Resolved::NotFound { api: false }
        );
        assert_eq!(
            resolve_in(&p, true, &Method::GET, "/.mfa/metrics"),
            Resolved::Found(Route::Metrics)
        );
    }

    #[test]
    fn the_api_user_is_percent_decoded_from_its_segment() {
        assert_eq!(
            api_route("users/a%2Fb/reset"),
            Some(ApiRoute::Reset("a/b".into()))
        );
        assert_eq!(api_route("users/a/b/reset"), None);
        assert_eq!(api_route("users/"), Some(ApiRoute::User(String::new())));
    }
}
