//! The crate's layers, from the bottom up, and the test that keeps them one-way.
//!
//! A module may use the modules listed before it, never one listed after it, so a reader can
//! learn the code from the bottom up and the request path reads in one direction:
//!
//! ```text
//!  server ─► route ─┬─► web   (the gateway's own pages: MFA steps, account, MSP pages, API)
//!                   └─► proxy (gate, forward once, login intercept, pre-login sessions)
//!                         │
//!        admin, mfa ─► gateway (shared state) ─► gate (approvals, cookies, revocations)
//!                                                  │
//!           http (body, VMS connections, headers) ─► tls ─► mail ─► store, audit, metrics
//!                                                  │
//!                              config ─► vms_reading, policy, auth ─► clock, pages
//! ```
//!
//! [`ORDER`] is the authority; the test below reads every source file and fails on a
//! reference (`crate::x`, `use crate::{x, ...}`) to a module later in the order. Test code
//! (`#[cfg(test)]` modules and the files they declare) may reach further up, to build a
//! gateway for a unit test.

/// The crate's top-level modules, lowest first.
pub const ORDER: &[&str] = &[
    "pages",
    "clock",
    "periodic",
    "auth",
    "policy",
    "vms_reading",
    "config",
    "store",
    "error",
    "metrics",
    "audit",
    "mail",
    "live_policy",
    "tls",
    "http",
    "gate",
    "gateway",
    "mfa",
    "admin",
    "proxy",
    "web",
    "route",
    "server",
    "run",
    "demo",
    "layers",
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::ORDER;
    use std::path::{Path, PathBuf};

    fn rank(m: &str) -> Option<usize> {
        ORDER.iter().position(|x| *x == m)
    }

    /// Every `.rs` file under `dir`.
    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    /// Files declared as test-only modules (`#[cfg(test)] mod x;`), relative to `src`.
    fn test_only_files(src: &Path, files: &[PathBuf]) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(f).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for w in lines.windows(2) {
                if w[0].trim() != "#[cfg(test)]" {
                    continue;
                }
                let Some(name) = w[1]
                    .trim()
                    .strip_prefix("mod ")
                    .and_then(|r| r.strip_suffix(';'))
                else {
                    continue;
                };
                // `a/mod.rs` and `lib.rs` declare children beside them; `a.rs` in `a/`.
                let dir = match f.file_name().and_then(|n| n.to_str()) {
                    Some("mod.rs" | "lib.rs") => f.parent().unwrap().to_path_buf(),
                    _ => f.with_extension(""),
                };
                out.push(dir.join(format!("{name}.rs")));
                out.push(dir.join(name));
            }
        }
        let _ = src;
        out
    }

    /// The code of a file without its `#[cfg(test)] mod tests { ... }` block (written last).
    fn without_tests(text: &str) -> &str {
        match text.find("#[cfg(test)]\nmod tests {") {
            Some(i) => &text[..i],
            None => text,
        }
    }

    /// The top-level modules a piece of code names through `crate::`.
    fn named(code: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (i, _) in code.match_indices("crate::") {
            // Not `mfa_gateway::` or a word ending in "crate".
            if code[..i]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
            {
                continue;
            }
            let rest = &code[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // The first name of each item at the group's top level.
                let mut depth = 0usize;
                let mut item = String::new();
                let mut items = Vec::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => items.push(std::mem::take(&mut item)),
                        c => item.push(c),
                    }
                }
                items.push(item);
                for i in items {
                    let word: String = i
                        .trim_start()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !word.is_empty() {
                        out.push(word);
                    }
                }
            } else {
                let word: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push(word);
            }
        }
        out
    }

    #[test]
    fn no_module_uses_one_above_it() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        let test_only = test_only_files(&src, &files);
        let mut wrong = Vec::new();
        let mut unknown = Vec::new();
        for f in &files {
            let rel = f.strip_prefix(&src).unwrap();
            if rel == Path::new("lib.rs") || rel == Path::new("main.rs") {
                continue;
            }
            if test_only.iter().any(|t| f.starts_with(t)) {
                continue;
            }
            let top = rel
                .components()
                .next()
                .and_then(|c| c.as_os_str().to_str())
                .unwrap()
                .trim_end_matches(".rs")
                .to_string();
            let Some(own) = rank(&top) else {
                unknown.push(top);
                continue;
            };
            let text = std::fs::read_to_string(f).unwrap();
            // Doc comments and comments may mention any module.
            let code: String = without_tests(&text)
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            for m in named(&code) {
                match rank(&m) {
                    Some(r) if r > own => wrong.push(format!("{} uses {m}", rel.display())),
                    Some(_) => {}
                    None => unknown.push(m),
                }
            }
        }
        unknown.sort();
        unknown.dedup();
        assert!(
            unknown.is_empty(),
            "modules missing from layers::ORDER: {unknown:?}"
        );
        assert!(
            wrong.is_empty(),
            "modules using a layer above their own (see src/layers.rs):\n{}",
            wrong.join("\n")
        );
    }

    #[test]
    fn every_top_level_module_is_placed() {
        let lib = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("src")
                .join("lib.rs"),
        )
        .unwrap();
        for l in lib.lines() {
            if let Some(m) = l
                .trim()
                .strip_prefix("pub mod ")
                .or_else(|| l.trim().strip_prefix("mod "))
            {
                let m = m.trim_end_matches(';');
                assert!(rank(m).is_some(), "{m} is not in layers::ORDER");
            }
        }
    }

    #[test]
    fn the_reader_sees_groups_and_single_names() {
        assert_eq!(named("use crate::{a::B, c, d::{e, f}};"), ["a", "c", "d"]);
        assert_eq!(
            named("crate::x::y(); mfa_gateway::z; let t = crate::w;"),
            ["x", "w"]
        );
    }
}
