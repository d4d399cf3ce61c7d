//! Session identifiers carried in the URL instead of a cookie, removed before forwarding.
//!
//! # Why
//!
//! The gate (`proxy::Gateway::gate`) lets a VMS session through only in a cookie with a valid
//! approval bound to it. Many servers also accept the session id in the URL: Java servlet
//! containers read a `;jsessionid=...` path parameter (URL rewriting, for clients without
//! cookies), some PHP set-ups a `PHPSESSID=...` query parameter. A session id in the URL
//! would reach the VMS without any approval to check: a stolen session id would work without
//! the approval cookie, and a session whose approval was ended (logout, MSP reset) would live
//! on through links. So every session parameter is removed from the path and the query of
//! each forwarded request; the VMS sees the session only as the gate lets it through, in the
//! cookie.
//!
//! ```text
//!   /app/list;jsessionid=7F3A?x=1&JSESSIONID=7F3A&y=2   ->   /app/list?x=1&y=2
//! ```
//!
//! Names are compared case-insensitively after percent-decoding (`;%6Asessionid=` is the same
//! parameter to a server that decodes before it looks). Everything else in the URL stays
//! byte for byte as it was, and a URL without such a parameter is not touched at all. Links
//! the VMS writes with the session in them (servlet containers do so on a session's first
//! page) keep working: the parameter is dropped on the way in, and the cookie carries the
//! session.

/// The parameter names to remove, lower-cased and deduplicated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionParams {
    names: Box<[String]>,
}

impl SessionParams {
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(names: I) -> Self {
        let mut names: Vec<String> = names
            .into_iter()
            .map(|n| n.as_ref().to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect();
        names.sort();
        names.dedup();
        SessionParams {
            names: names.into_boxed_slice(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn matches(&self, raw_name: &[u8]) -> bool {
        if raw_name.contains(&b'%') || raw_name.contains(&b'+') {
            let decoded = decode(raw_name);
            self.names
                .iter()
                .any(|n| decoded.eq_ignore_ascii_case(n.as_bytes()))
        } else {
            self.names
                .iter()
                .any(|n| raw_name.eq_ignore_ascii_case(n.as_bytes()))
        }
    }

    /// The path and query without session parameters, or `None` when there is none to
    /// remove (the common case, decided without allocating).
    pub fn strip(&self, path: &str, query: Option<&str>) -> Option<String> {
        if self.names.is_empty() {
            return None;
        }
        let path_hit = path.contains(';') && self.path_has_param(path);
        let query_hit = query.is_some_and(|q| self.query_pairs(q).any(|(_, hit)| hit));
        if !path_hit && !query_hit {
            return None;
        }
        let mut out = String::with_capacity(path.len() + query.map_or(0, |q| q.len() + 1));
        if path_hit {
            self.push_path(path, &mut out);
        } else {
            out.push_str(path);
        }
        if let Some(q) = query {
            let mut first = true;
            for (pair, hit) in self.query_pairs(q) {
                if hit {
                    continue;
                }
                out.push(if first { '?' } else { '&' });
                first = false;
                out.push_str(pair);
            }
        }
        Some(out)
    }

    /// Each `;`-parameter of each path segment: its name.
    fn path_params<'a>(&'a self, path: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        path.split('/').flat_map(|seg| {
            seg.split(';')
                .skip(1)
                .map(|p| p.split('=').next().unwrap_or(p).as_bytes())
        })
    }

    fn path_has_param(&self, path: &str) -> bool {
        self.path_params(path).any(|n| self.matches(n))
    }

    fn push_path(&self, path: &str, out: &mut String) {
        for (i, seg) in path.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            let mut parts = seg.split(';');
            out.push_str(parts.next().unwrap_or(""));
            for p in parts {
                let name = p.split('=').next().unwrap_or(p);
                if !self.matches(name.as_bytes()) {
                    out.push(';');
                    out.push_str(p);
                }
            }
        }
    }

    /// Each `&`-separated pair of the query, and whether it is a session parameter.
    fn query_pairs<'a>(&'a self, query: &'a str) -> impl Iterator<Item = (&'a str, bool)> + 'a {
        query.split('&').map(|pair| {
            let name = pair.split('=').next().unwrap_or(pair);
            (pair, !pair.is_empty() && self.matches(name.as_bytes()))
        })
    }
}

/// Percent-decoding (and `+` as space, as in form-encoded queries) of a parameter name;
/// malformed escapes stay as they are.
fn decode(raw: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        match (
            b,
            raw.get(i + 1).copied().and_then(hex),
            raw.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push(h << 4 | l);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod props;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn params() -> SessionParams {
        SessionParams::new(["jsessionid", "JSESSIONID", "PHPSESSID"])
    }

    #[test]
    fn urls_without_session_parameters_are_not_touched() {
        let p = params();
        for (path, query) in [
            ("/", None),
            ("/app/list", Some("x=1&y=2")),
            ("/a;version=2/b", Some("jsession=1&sessionid=2")),
            ("/a;jsessionidx=1", Some("xjsessionid=1&=jsessionid")),
            ("/a", Some("")),
            ("/a", Some("q=jsessionid")),
        ] {
            assert_eq!(p.strip(path, query), None, "{path} {query:?}");
        }
    }

    #[test]
    fn session_parameters_are_removed_and_the_rest_kept_byte_for_byte() {
        let p = params();
        let cases = [
            (("/app/list;jsessionid=7F3A", None), "/app/list"),
            (("/app/list;JSESSIONID=7F3A", Some("x=1")), "/app/list?x=1"),
            (
                (
                    "/app/list;jsessionid=7F3A",
                    Some("x=1&JSESSIONID=7F3A&y=%20"),
                ),
                "/app/list?x=1&y=%20",
            ),
            (("/a;v=1;jsessionid=X;w=2/b", None), "/a;v=1;w=2/b"),
            (("/a;jsessionid=X/b;jsessionid=Y", None), "/a/b"),
            (("/a", Some("PHPSESSID=1")), "/a"),
            (("/a", Some("phpsessid=1&&b")), "/a?&b"),
            (("/a", Some("jsessionid")), "/a"),
            (("/a;jsessionid", None), "/a"),
            (("/a;%6Asessionid=1", None), "/a"),
            (("/a", Some("%4AsessionID=1&k=v")), "/a?k=v"),
            (("/;jsessionid=1", Some("")), "/?"),
        ];
        for ((path, query), want) in cases {
            assert_eq!(
                p.strip(path, query).as_deref(),
                Some(want),
                "{path} {query:?}"
            );
        }
    }

    #[test]
    fn no_names_means_nothing_is_removed() {
        let p = SessionParams::new(Vec::<String>::new());
        assert!(p.is_empty());
        assert_eq!(p.strip("/a;jsessionid=1", Some("jsessionid=1")), None);
    }

    #[test]
    fn decoding_keeps_malformed_escapes() {
        assert_eq!(decode(b"a%4"), b"a%4");
        assert_eq!(decode(b"%zz%41+b"), b"%zzA b");
    }
}
