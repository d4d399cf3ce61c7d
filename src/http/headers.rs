//! Header rewriting at the proxy boundary.
//!
//! hyper forwards whatever it is given, so a proxy must itself remove hop-by-hop headers
//! (RFC 9110 7.6.1): `Connection` and every header it names, plus the fixed list below, in
//! both directions. Upgrades (WebSocket) are the one exception: `Connection: upgrade` and
//! `Upgrade` are put back for the upgrade request and its `101` response.
//!
//! Forwarding headers (`X-Forwarded-For`, `-Proto`, `-Host`) are set by the gateway. What a
//! client sends in them is believed only when the TCP peer is a configured trusted proxy
//! (a load balancer in front of the gateway); otherwise they are overwritten, so nobody can
//! pretend to come from another address.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;

const HOP_BY_HOP_COUNT: usize = 8;

/// Hop-by-hop headers that never cross the proxy (besides those named by `Connection`).
static HOP_BY_HOP: [HeaderName; HOP_BY_HOP_COUNT] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// A quick test of whether a header name can be one of a few: a bit per (first letter, length)
/// of the names looked for. Header names are lower case in `http`; a name that passes is then
/// compared in full, one that does not (almost every name of a real message) is skipped
/// after two table reads instead of a dozen comparisons.
#[derive(Clone, Copy)]
struct Candidates([u32; 26]);

impl Candidates {
    const fn of(names: &[&str]) -> Self {
        let mut bits = [0u32; 26];
        let mut i = 0;
        while i < names.len() {
            bits = Self::with(bits, names[i].as_bytes());
            i += 1;
        }
        Candidates(bits)
    }

    const fn with(mut bits: [u32; 26], name: &[u8]) -> [u32; 26] {
        if let Some(&first) = name.first()
            && first.is_ascii_lowercase()
            && name.len() < 32
        {
            bits[(first - b'a') as usize] |= 1 << name.len();
        }
        bits
    }

    fn add(self, name: &HeaderName) -> Self {
        Candidates(Self::with(self.0, name.as_str().as_bytes()))
    }

    /// `false` only when `name` is none of the names added (a name of 32 bytes or more, or
    /// not starting with a letter, always passes).
    fn may_be(&self, name: &HeaderName) -> bool {
        let n = name.as_str().as_bytes();
        match n.first() {
            Some(&f) if f.is_ascii_lowercase() && n.len() < 32 => {
                self.0[(f - b'a') as usize] >> n.len() & 1 == 1
            }
            _ => true,
        }
    }
}

/// [`HOP_BY_HOP`] and `upgrade`.
const HOP_CANDIDATES: Candidates = Candidates::of(&[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
]);

/// The header in which ASP.NET reads cookieless session and forms ids (set by IIS's old
/// ISAPI filter after it took them out of the URL). From a client it would carry a session
/// past the gate, so it never reaches the VMS.
pub const ASP_FILTER_SESSION_ID: HeaderName = HeaderName::from_static("aspfiltersessionid");

/// Removed from every request forwarded to the VMS, besides the hop-by-hop headers.
pub static REQUEST_ALSO: [HeaderName; 1] = [ASP_FILTER_SESSION_ID];

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Removes hop-by-hop headers. Returns the `Upgrade` header value when the message asked for
/// a protocol upgrade (`Connection: upgrade` + `Upgrade`), so the caller can restore it.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) -> Option<HeaderValue> {
    strip_hop_by_hop_and(headers, &[])
}

/// [`strip_hop_by_hop`], and also every header named in `also` (at most 64 names: the VMS's
/// banners of `upstream.strip_response_headers` on answers, [`REQUEST_ALSO`] on requests),
/// found in the same single pass over the message's header names.
pub fn strip_hop_by_hop_and(headers: &mut HeaderMap, also: &[HeaderName]) -> Option<HeaderValue> {
    // One pass over the names present first: most messages carry `Connection` at most, and
    // removing each absent name would hash it for nothing.
    let mut present = [false; HOP_BY_HOP_COUNT];
    let mut also_present: u64 = 0;
    let mut upgrade_present = false;
    let candidates = also.iter().fold(HOP_CANDIDATES, |c, n| c.add(n));
    for name in headers.keys() {
        if !candidates.may_be(name) {
            continue;
        }
        if name == header::UPGRADE {
            upgrade_present = true;
        } else if let Some(i) = HOP_BY_HOP.iter().position(|h| h == name) {
            if let Some(p) = present.get_mut(i) {
                *p = true;
            }
        } else if let Some(i) = also.iter().position(|h| h == name) {
            also_present |= 1u64
                .checked_shl(u32::try_from(i).unwrap_or(u32::MAX))
                .unwrap_or(0);
        }
    }
    if also_present != 0 {
        for (i, h) in also.iter().enumerate().take(64) {
            if also_present >> i & 1 == 1 {
                headers.remove(h);
            }
        }
    }
    let mut upgrade_requested = false;
    let upgrade = if upgrade_present {
        headers.remove(header::UPGRADE)
    } else {
        None
    };
    let connection_present = HOP_BY_HOP
        .iter()
        .zip(present)
        .any(|(h, p)| p && h == header::CONNECTION);
    if connection_present {
        // Names listed in Connection are hop-by-hop too. Collect first, then remove.
        let mut listed: Vec<HeaderName> = Vec::new();
        for v in headers.get_all(header::CONNECTION) {
            let Ok(v) = v.to_str() else { continue };
            for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if name.eq_ignore_ascii_case("upgrade") {
                    upgrade_requested = true;
                } else if name.eq_ignore_ascii_case("keep-alive")
                    || name.eq_ignore_ascii_case("close")
                {
                    // Connection options, not header names (RFC 9112 9.6); `keep-alive` is in
                    // the fixed list anyway.
                    continue;
                }
                if let Ok(n) = HeaderName::from_bytes(name.as_bytes()) {
                    listed.push(n);
                }
            }
        }
        for n in listed {
            headers.remove(n);
        }
    }
    for (h, _) in HOP_BY_HOP.iter().zip(present).filter(|(_, p)| *p) {
        headers.remove(h);
    }
    if upgrade_requested { upgrade } else { None }
}

/// Refuses a request whose host cannot be read one way only (RFC 9112 3.2, RFC 9113 8.3.1):
/// more than one `Host` field, a `Host` that is not a host (with an optional port), an
/// HTTP/1.1 request without `Host`, or a `Host` that names another host or port than the
/// request target's authority (an absolute-form target over HTTP/1.1, `:authority` over
/// HTTP/2). Otherwise the gateway, the VMS and anything in between could each take another
/// host for the same request. Host names compare without regard to case; a missing port is
/// 443. HTTP/1.0 without `Host`, and HTTP/2 with `:authority` alone, pass.
pub fn check_host(
    version: http::Version,
    uri: &http::Uri,
    headers: &HeaderMap,
) -> Result<(), crate::error::ClientError> {
    use crate::error::ClientError::BadRequest;
    let mut fields = headers.get_all(header::HOST).iter();
    let (host, second) = (fields.next(), fields.next());
    if second.is_some() {
        return Err(BadRequest("more than one Host"));
    }
    let target = uri.authority();
    if target.is_some_and(|a| a.as_str().contains('@')) {
        return Err(BadRequest("user information in the request target"));
    }
    let Some(host) = host else {
        return if version == http::Version::HTTP_11 {
            Err(BadRequest("no Host"))
        } else {
            Ok(())
        };
    };
    let Some((host, port)) = split_host(host.as_bytes()) else {
        return Err(BadRequest("Host is not a host"));
    };
    match target {
        Some(t)
            if !(t.host().as_bytes().eq_ignore_ascii_case(host)
                && t.port_u16().unwrap_or(443) == port.unwrap_or(443)) =>
        {
            Err(BadRequest("Host differs from the target"))
        }
        _ => Ok(()),
    }
}

/// The bytes of a registered name or IPv4 address in a `Host` (RFC 3986 `reg-name`:
/// unreserved, `%` of percent-encoding, sub-delimiters), as a table: one look-up a byte.
static REG_NAME: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        i += 1;
    }
    t
};

/// A `Host` value as host and port (RFC 3986 `host [ ":" port ]`: a registered name or IPv4
/// address of unreserved, percent-encoded and sub-delimiter characters, or an IP literal in
/// brackets), or `None` when it is not one. By hand: this runs on every request, and the
/// `http` crate's `Authority` parser both costs more and lets `host:x` pass.
fn split_host(v: &[u8]) -> Option<(&[u8], Option<u16>)> {
    let (host, rest) = if v.first() == Some(&b'[') {
        let end = v.iter().position(|&b| b == b']')?;
        let (literal, rest) = v.split_at(end + 1);
        let inner = literal.get(1..end)?;
        let ok = !inner.is_empty()
            && inner
                .iter()
                .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'));
        (ok.then_some(literal)?, rest)
    } else {
        let end = v.iter().position(|&b| b == b':').unwrap_or(v.len());
        let (name, rest) = v.split_at(end);
        let ok = !name.is_empty() && name.iter().all(|&b| REG_NAME[usize::from(b)]);
        (ok.then_some(name)?, rest)
    };
    let port = match rest {
        [] => None,
        [b':', digits @ ..] if !digits.is_empty() && digits.len() <= 5 => {
            let mut p: u32 = 0;
            for &d in digits {
                if !d.is_ascii_digit() {
                    return None;
                }
                p = p * 10 + u32::from(d - b'0');
            }
            Some(u16::try_from(p).ok()?)
        }
        _ => return None,
    };
    Some((host, port))
}

/// Puts back the two headers that make an upgrade.
pub fn restore_upgrade(headers: &mut HeaderMap, upgrade: HeaderValue) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, upgrade);
}

pub fn is_trusted(peer: IpAddr, trusted: &[IpNet]) -> bool {
    !trusted.is_empty() && trusted.iter().any(|n| n.contains(&canonical(peer)))
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The address of the client as far as the gateway can tell: the TCP peer, or, behind
/// trusted proxies, the right-most address in `X-Forwarded-For` that is not itself trusted.
pub fn client_ip(headers: &HeaderMap, peer: IpAddr, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let mut chain: Vec<IpAddr> = Vec::new();
    for v in headers.get_all(&X_FORWARDED_FOR) {
        let Ok(v) = v.to_str() else { return peer };
        for part in v.split(',') {
            match part.trim().parse::<IpAddr>() {
                Ok(ip) => chain.push(canonical(ip)),
                // An unparsable entry ends what can be believed.
                Err(_) => return peer,
            }
        }
    }
    chain
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(*ip, trusted))
        .unwrap_or(peer)
}

/// An address as text, IPv4 without the formatting machinery (this runs on every request).
fn ip_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut s = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        if octet >= 100 {
            s.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            s.push(char::from(b'0' + octet / 10 % 10));
        }
        s.push(char::from(b'0' + octet % 10));
    }
    s
}

/// Sets `X-Forwarded-For`, `-Proto` and `-Host` for the upstream request.
///
/// `original_host` is the host the client asked for (`Host` or `:authority`).
pub fn set_forwarded(
    headers: &mut HeaderMap,
    peer: IpAddr,
    trusted: &[IpNet],
    original_host: Option<&HeaderValue>,
) {
    let peer = canonical(peer);
    let peer_trusted = is_trusted(peer, trusted);
    let peer_text = ip_text(peer);
    let xff = if peer_trusted {
        let prior: Vec<&str> = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if prior.is_empty() {
            peer_text
        } else {
            format!("{}, {peer_text}", prior.join(", "))
        }
    } else {
        peer_text
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert(X_FORWARDED_FOR, v);
    }
    if !(peer_trusted && headers.contains_key(&X_FORWARDED_PROTO)) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
    }
    if !(peer_trusted && headers.contains_key(&X_FORWARDED_HOST)) {
        match original_host {
            Some(h) => {
                headers.insert(X_FORWARDED_HOST, h.clone());
            }
            None => {
                headers.remove(&X_FORWARDED_HOST);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn the_quick_test_lets_every_name_looked_for_through() {
        let also = [
            HeaderName::from_static("server"),
            HeaderName::from_static("x-powered-by"),
            HeaderName::from_static("a-name-longer-than-thirty-two-bytes-x"),
        ];
        let c = also.iter().fold(HOP_CANDIDATES, |c, n| c.add(n));
        for n in HOP_BY_HOP.iter().chain(&also).chain([&header::UPGRADE]) {
            assert!(c.may_be(n), "{n}");
        }
        // Names of a usual request are skipped.
        let skipped = [
            "cookie",
            "host",
            "accept",
            "user-agent",
            "content-length",
            "date",
        ]
        .iter()
        .filter(|n| !c.may_be(&HeaderName::from_static(n)))
        .count();
        assert_eq!(skipped, 6);
    }

    #[test]
    fn strips_fixed_and_listed_hop_by_hop_headers() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("proxy-authorization", "Basic xxx"),
            ("upgrade", "h2c"),
            ("x-kept", "yes"),
        ]);
        assert_eq!(
            strip_hop_by_hop(&mut h),
            None,
            "no upgrade without Connection: upgrade"
        );
        assert_eq!(h.len(), 1);
        assert_eq!(h["x-kept"], "yes");
    }

    #[test]
    fn reports_requested_upgrade() {
        let mut h = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "k"),
        ]);
        let up = strip_hop_by_hop(&mut h).unwrap();
        assert_eq!(up, "websocket");
        assert!(!h.contains_key("upgrade"));
        restore_upgrade(&mut h, up);
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["sec-websocket-key"], "k");
    }

    #[test]
    fn untrusted_peer_cannot_spoof_forwarding_headers() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = map(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "evil"),
        ]);
        let peer: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(client_ip(&h, peer, &trusted), peer);
        set_forwarded(
            &mut h,
            peer,
            &trusted,
            Some(&HeaderValue::from_static("vms.example")),
        );
        assert_eq!(h["x-forwarded-for"], "192.0.2.7");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "vms.example");
    }

    #[test]
    fn trusted_peer_extends_the_chain() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = map(&[
            ("x-forwarded-for", "203.0.113.9, 10.1.1.1"),
            ("x-forwarded-proto", "https"),
        ]);
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            client_ip(&h, peer, &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        set_forwarded(&mut h, peer, &trusted, None);
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 10.1.1.1, 10.0.0.2");
    }

    #[test]
    fn garbage_in_chain_falls_back_to_peer() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = map(&[("x-forwarded-for", "203.0.113.9, not-an-ip")]);
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(client_ip(&h, peer, &trusted), peer);
    }

    #[test]
    fn addresses_are_written_as_the_standard_library_writes_them() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "192.168.100.9",
            "255.255.255.255",
            "1.0.99.100",
            "::1",
            "2001:db8::8a2e:370:7334",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_text(ip), ip.to_string());
        }
        for a in [0u8, 1, 9, 10, 42, 99, 100, 101, 199, 200, 250, 255] {
            let ip = IpAddr::from([a, 255 - a, a / 2, 7]);
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }

    #[test]
    fn messages_without_hop_by_hop_headers_are_left_as_they_are() {
        let mut h = map(&[("host", "vms"), ("cookie", "a=b"), ("accept", "*/*")]);
        let before = h.clone();
        assert_eq!(strip_hop_by_hop(&mut h), None);
        assert_eq!(h, before);
        let mut h = map(&[("connection", "close"), ("x-kept", "1")]);
        assert_eq!(strip_hop_by_hop(&mut h), None);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn listed_response_headers_go_in_the_same_pass() {
        let banners = [
            HeaderName::from_static("server"),
            HeaderName::from_static("x-powered-by"),
            HeaderName::from_static("x-aspnet-version"),
        ];
        let mut h = map(&[
            ("Server", "Microsoft-IIS/8.5"),
            ("X-Powered-By", "ASP.NET"),
            ("x-powered-by", "PHP/5.4"),
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("content-type", "text/html"),
            ("set-cookie", "a=b"),
        ]);
        assert_eq!(strip_hop_by_hop_and(&mut h, &banners), None);
        let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-type", "set-cookie"]);
        let mut h = map(&[("server", "nginx"), ("x-kept", "1")]);
        strip_hop_by_hop_and(&mut h, &[]);
        assert_eq!(h.len(), 2, "an empty list keeps them");
    }

    #[test]
    fn the_host_is_read_one_way_only() {
        use http::Version;
        let check = |v: Version, uri: &str, hosts: &[&str]| {
            let uri: http::Uri = uri.parse().unwrap();
            let h = map(&hosts.iter().map(|h| ("host", *h)).collect::<Vec<_>>());
            check_host(v, &uri, &h).is_ok()
        };
        let h11 = Version::HTTP_11;
        let h2 = Version::HTTP_2;
        assert!(check(h11, "/x", &["vms.example"]));
        assert!(check(h11, "/x", &["VMS.example:8443"]));
        assert!(check(h11, "/x", &["[::1]:8443"]));
        assert!(check(Version::HTTP_10, "/x", &[]));
        assert!(check(h2, "https://vms.example/x", &[]));
        assert!(check(h2, "https://vms.example/x", &["Vms.Example"]));
        assert!(check(h2, "https://vms.example/x", &["vms.example:443"]));
        assert!(check(
            h11,
            "https://vms.example:8443/x",
            &["vms.example:8443"]
        ));
        assert!(check(h2, "/x", &["vms.example"]));
        // Refused.
        assert!(!check(h11, "/x", &[]), "HTTP/1.1 without Host");
        assert!(!check(h11, "/x", &["a.example", "a.example"]), "two Host");
        assert!(!check(Version::HTTP_10, "/x", &["a", "b"]), "two Host");
        assert!(!check(h2, "https://vms.example/x", &["evil.example"]));
        assert!(!check(h2, "https://vms.example/x", &["vms.example:8443"]));
        assert!(!check(h11, "https://evil.example/x", &["vms.example"]));
        assert!(!check(h11, "https://u@vms.example/x", &["vms.example"]));
        for bad in [
            "",
            "a b",
            "a/b",
            "u@vms.example",
            "vms.example:x",
            ":443",
            "a:99999",
        ] {
            assert!(!check(h11, "/x", &[bad]), "Host {bad:?}");
        }
    }

    #[test]
    fn ipv4_mapped_peer_is_matched() {
        let trusted: Vec<IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        assert!(is_trusted("::ffff:127.0.0.1".parse().unwrap(), &trusted));
        assert!(!is_trusted("::1".parse().unwrap(), &trusted));
    }
}
