//! The one stylesheet all gateway pages share, and the Content-Security-Policy that allows
//! exactly it.
//!
//! Pages carry no external assets and no script, so the policy can be `default-src 'none'`.
//! The stylesheet is inlined as a single `<style>` element and allowed by its SHA-256 hash
//! (CSP level 2 "hash-source"); no `'unsafe-inline'` is needed, and the policy stays correct
//! by construction because the hash is computed from [`STYLE`] itself the first time a page
//! is served. Style *attributes* are not allowed by a hash, so no page uses them.
//!
//! Design choices: system fonts, one centred card of at most 28rem, 48px touch targets, a
//! large spaced code field, a visible focus ring, and colours chosen for at least 4.5:1
//! contrast in both light and dark mode. Confirmations (`.ok`), warnings (`.warn`) and the
//! destructive admin action (`.danger`, `.danger-zone`) get their own colour pairs, again for
//! both modes. The admin user page marks its content `.wide` and the card widens for its table
//! (`main:has(.wide)`; a browser without `:has` keeps the narrow card); on a phone the table's
//! rows become stacked blocks, each cell labelled by its `data-label`. The QR code keeps a white background in dark mode
//! because scanners expect dark modules on a light field.

use std::sync::LazyLock;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The stylesheet, exactly as it appears between `<style>` and `</style>`.
pub const STYLE: &str = concat!(
    ":root{color-scheme:light dark;--bg:#f2f4f7;--card:#fff;--text:#1b1f24;--muted:#4a5360;",
    "--line:#c9ced6;--accent:#0b57d0;--on-accent:#fff;--err-bg:#fdecea;--err-line:#b3261e;",
    "--err-text:#5c1a14;--box:#f2f4f7;--ok-bg:#e6f4ea;--ok-line:#1e7e34;--ok-text:#0f3d1b;",
    "--warn-bg:#fff4e5;--warn-line:#a35200;--warn-text:#4a2600;--danger:#b3261e;--on-danger:#fff}",
    "@media (prefers-color-scheme:dark){:root{--bg:#111418;--card:#1c2128;--text:#e6e8eb;",
    "--muted:#b0b7c1;--line:#48515d;--accent:#8ab4f8;--on-accent:#0b1b33;--err-bg:#3b1512;",
    "--err-line:#f2b8b5;--err-text:#fbe0de;--box:#262c34;--ok-bg:#12301c;--ok-line:#81c995;",
    "--ok-text:#d7f5df;--warn-bg:#35260f;--warn-line:#f0b45a;--warn-text:#ffe6c4;",
    "--danger:#f2b8b5;--on-danger:#3b1512}}",
    "*{box-sizing:border-box}",
    "html{-webkit-text-size-adjust:100%;text-size-adjust:100%}",
    "body{margin:0;min-height:100vh;padding:1rem;background:var(--bg);color:var(--text);",
    "font:1rem/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,sans-serif}",
    "main{max-width:28rem;margin:1rem auto;padding:1.5rem;background:var(--card);",
    "border:1px solid var(--line);border-radius:.75rem}",
    ".brand{display:flex;align-items:center;gap:.75rem;margin:0 0 1.25rem;font-weight:600;",
    "color:var(--muted)}",
    ".brand img{display:block;max-height:2.5rem;max-width:10rem}",
    "h1{font-size:1.5rem;line-height:1.25;margin:0 0 .75rem}",
    "p{margin:0 0 1rem}",
    ".muted{color:var(--muted);font-size:.9375rem}",
    "ol.steps{margin:0 0 1rem;padding-left:1.5rem}",
    "ol.steps>li{margin:0 0 1.5rem;padding-left:.25rem}",
    "ol.steps>li::marker{font-weight:700}",
    "label{display:block;font-weight:600;margin:0 0 .5rem}",
    ".code{display:block;width:100%;margin:0;padding:.625rem .5rem;",
    "font:600 1.75rem/1.2 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;",
    "letter-spacing:.25em;text-align:center;color:var(--text);background:var(--card);",
    "border:2px solid var(--muted);border-radius:.5rem}",
    ".code[aria-invalid=true]{border-color:var(--err-line)}",
    "button,.button{display:block;width:100%;min-height:3rem;margin:1rem 0;",
    "padding:.75rem 1rem;font:inherit;font-weight:600;text-align:center;text-decoration:none;",
    "border:2px solid var(--accent);border-radius:.5rem;cursor:pointer}",
    ".primary{background:var(--accent);color:var(--on-accent)}",
    ".secondary{background:transparent;color:var(--accent)}",
    "a{color:var(--accent);text-underline-offset:.15em}",
    ":focus-visible{outline:3px solid var(--accent);outline-offset:3px}",
    ".code:focus-visible{outline-offset:1px}",
    ".alert{margin:0 0 1rem;padding:.75rem 1rem;color:var(--err-text);background:var(--err-bg);",
    "border:2px solid var(--err-line);border-radius:.5rem}",
    ".qr{width:min(100%,15rem);margin:.75rem 0 1rem;padding:.5rem;background:#fff;",
    "border-radius:.5rem}",
    ".qr svg{display:block;width:100%;height:auto}",
    ".pairing{margin:.5rem 0;padding:.75rem;",
    "font:600 1.125rem/1.6 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;",
    "word-spacing:.2em;overflow-wrap:anywhere;background:var(--box);",
    "border:1px solid var(--line);border-radius:.5rem;-webkit-user-select:all;user-select:all;",
    "max-width:calc(21ch + 1.5rem + 2px)}",
    ".facts{margin:.75rem 0 0}",
    ".facts dt{color:var(--muted);font-size:.9375rem}",
    ".facts dd{margin:0 0 .5rem;overflow-wrap:anywhere}",
    ".codes{display:grid;grid-template-columns:1fr;gap:.5rem;margin:0 0 1rem;padding:0;",
    "list-style:none}",
    ".codes li{padding:.5rem;text-align:center;white-space:nowrap;",
    "font:600 1.0625rem/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;",
    "background:var(--box);border:1px solid var(--line);border-radius:.375rem;",
    "-webkit-user-select:all;user-select:all}",
    "h2{font-size:1.1875rem;line-height:1.3;margin:0 0 .5rem}",
    "section{margin:1.5rem 0 0;padding:1.5rem 0 0;border-top:1px solid var(--line)}",
    ".ok,.warn{margin:0 0 1rem;padding:.75rem 1rem;border:2px solid;border-radius:.5rem}",
    ".ok{color:var(--ok-text);background:var(--ok-bg);border-color:var(--ok-line)}",
    ".warn{color:var(--warn-text);background:var(--warn-bg);border-color:var(--warn-line)}",
    ".danger{background:var(--danger);color:var(--on-danger);border-color:var(--danger)}",
    "section.danger-zone{padding:1.25rem;border:2px solid var(--err-line);border-radius:.5rem}",
    ".danger-zone ul{margin:0 0 1rem;padding-left:1.25rem}",
    ".field{display:block;width:100%;margin:0 0 1rem;padding:.625rem .75rem;font:inherit;",
    "color:var(--text);background:var(--card);border:2px solid var(--muted);border-radius:.5rem}",
    "textarea.field{min-height:5.5rem;resize:vertical}",
    ".field[aria-invalid=true]{border-color:var(--err-line)}",
    ".check{display:flex;align-items:flex-start;gap:.75rem;margin:0 0 1rem}",
    ".check label{margin:0}",
    ".check input{flex:none;width:1.5rem;height:1.5rem;margin:.125rem 0 0;",
    "accent-color:var(--danger)}",
    ".check input[aria-invalid=true]{outline:2px solid var(--err-line);outline-offset:2px}",
    ".who{display:flex;flex-wrap:wrap;justify-content:space-between;gap:.25rem 1rem}",
    ".who .links{display:flex;flex-wrap:wrap;gap:.25rem 1rem}",
    ".results{margin:0 0 1rem;padding:0;list-style:none}",
    ".results a{display:block;margin:0 0 .5rem;padding:.75rem 1rem;border:1px solid var(--line);",
    "border-radius:.5rem;overflow-wrap:anywhere}",
    ".scroll{overflow-x:auto;margin:0 0 1rem}",
    ".events{width:100%;border-collapse:collapse;font-size:.9375rem}",
    ".events th,.events td{padding:.5rem .75rem .5rem 0;text-align:left;vertical-align:top;",
    "border-bottom:1px solid var(--line)}",
    ".events th{color:var(--muted)}",
    ".events td:first-child{white-space:nowrap}",
    ".events td:last-child{min-width:10rem;overflow-wrap:anywhere}",
    "@media (max-width:40rem){.events thead{position:absolute;width:1px;height:1px;",
    "overflow:hidden;clip-path:inset(50%);white-space:nowrap}",
    ".events tr{display:block;padding:.5rem 0;border-bottom:1px solid var(--line)}",
    ".events td{display:block;min-width:0;padding:0;border:0}",
    ".events td:first-child{color:var(--muted);font-size:.875rem}",
    ".events td:nth-child(2){font-weight:600}",
    ".events td[data-label]::before{content:attr(data-label) \": \";color:var(--muted)}",
    ".events td:empty{display:none}.events tbody tr:last-child{border-bottom:0}}",
    ".facts+p{margin-top:1rem}",
    ".ok>:last-child,.warn>:last-child{margin-bottom:0}",
    "main:has(.wide){max-width:48rem}",
    "@media (min-width:40rem){.wide .facts{display:grid;grid-template-columns:max-content 1fr;",
    "gap:.25rem 1.5rem}.wide .facts dd{margin:0}}",
    "footer{max-width:28rem;margin:0 auto;text-align:center;color:var(--muted);",
    "font-size:.875rem}",
    "main>:last-child,main>form:last-child>:last-child,ol.steps>li:last-child,",
    "section>:last-child,section>form:last-child>:last-child,.wide>:last-child{margin-bottom:0}",
    "@media (hover:hover) and (pointer:fine){.phone-only{display:none}}",
    "#remember{accent-color:var(--accent)}",
    ".browsers{margin:0 0 1rem;padding:0;list-style:none}",
    ".browsers>li{margin:0 0 .75rem;padding:.75rem 1rem;border:1px solid var(--line);",
    "border-radius:.5rem}",
    ".browsers p{margin:0}.browsers button{margin:.75rem 0 0}",
    ".browsers label{margin:.75rem 0 .5rem}.browsers .field{margin:0}",
    "@media (max-width:22rem){body{padding:.5rem}main{padding:1rem}}",
    "[hidden]{display:none!important}",
);

/// `'sha256-…'` for [`STYLE`], computed once.
static STYLE_HASH: LazyLock<String> = LazyLock::new(|| style_hash(STYLE));

/// `'sha256-…'` for the passkey script (`super::passkey::SCRIPT`), computed once.
static SCRIPT_HASH: LazyLock<String> = LazyLock::new(|| style_hash(super::passkey::SCRIPT));

/// The Content-Security-Policy every gateway page is served with: the one stylesheet and the
/// one script, each by its hash, and nothing else.
static CSP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; style-src {}; script-src {}; img-src data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
        *STYLE_HASH, *SCRIPT_HASH
    )
});

/// A CSP hash-source (`'sha256-<base64>'`) for the given inline stylesheet or script text.
pub fn style_hash(style: &str) -> String {
    let digest = digest::digest(&digest::SHA256, style.as_bytes());
    format!("'sha256-{}'", STANDARD.encode(digest.as_ref()))
}

/// The Content-Security-Policy header value for gateway pages.
pub fn content_security_policy() -> &'static str {
    CSP.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_a_known_value() {
        // echo -n 'a{}' | openssl dgst -sha256 -binary | base64
        assert_eq!(
            style_hash("a{}"),
            "'sha256-X1RutGBrXCt9KkSaXMK7tHftWiRscFHOhxsS8tv8hBk='"
        );
    }

    #[test]
    fn policy_names_the_hash_of_the_stylesheet() {
        let csp = content_security_policy();
        assert!(
            csp.contains(&format!("style-src {};", style_hash(STYLE))),
            "{csp}"
        );
        assert!(
            csp.contains(&format!(
                "script-src {};",
                style_hash(super::super::passkey::SCRIPT)
            )),
            "{csp}"
        );
        assert!(csp.starts_with("default-src 'none';"));
        assert!(!csp.contains("unsafe"));
    }

    #[test]
    fn stylesheet_cannot_end_the_style_element_or_load_anything() {
        assert!(!STYLE.contains('<'));
        assert!(!STYLE.contains("url("));
        assert!(!STYLE.contains("@import"));
    }

    #[test]
    fn qr_stays_dark_on_white_in_dark_mode() {
        let dark_block = STYLE
            .split("@media (prefers-color-scheme:dark){")
            .nth(1)
            .and_then(|rest| rest.split("}}").next())
            .unwrap_or_default();
        assert!(dark_block.contains("--bg:"), "dark block not found");
        assert!(!dark_block.contains(".qr"));
        assert!(STYLE.contains(".qr{") && STYLE.contains("background:#fff"));
    }
}
