//! Names and other text from outside, shown so that what a reader sees is what is stored.
//!
//! A user name comes from the VMS (or from what someone typed), and Unicode lets it carry
//! characters that are not drawn but change what is drawn around them: the bidirectional
//! overrides and isolates (U+202A–U+202E, U+2066–U+2069), the direction marks (U+200E,
//! U+200F, U+061C), zero-width and other format characters, and control characters. With
//! them, a name stored as `admin\u{202E}nimda` shows as another name, and two different
//! accounts can look the same on the MSP's user list. An MSP deciding whose MFA to
//! disconnect must see the name that is stored.
//!
//! [`visible`] therefore renders every such character as an escape, `\u{202E}` (upper-case
//! hexadecimal, as Rust writes it), and leaves all other text as it is. So that a name that
//! really contains the six characters `\u{41}` cannot pass for one that contains an escaped
//! character, a backslash is doubled exactly when what follows it would otherwise read as
//! part of an escape: another backslash, an escaped character, or `u{`. An ordinary
//! `DOMAIN\user` is shown unchanged, and different names always look different.
//!
//! Shown as an escape: general category Cc (control) and Cf (format, which includes every
//! bidirectional control), and the line and paragraph separators U+2028 and U+2029.
//!
//! Only what people read goes through here. Form values that send a name back (the hidden
//! user field of the admin forms, a search box) keep the name exactly, so the change is made
//! for the stored name and nothing else.

use std::fmt::Write as _;

use maud::Render;

/// Unicode general category Cf (format), Unicode 16. Sorted, inclusive ranges.
const FORMAT: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

/// Whether `c` is shown as an escape rather than as itself.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}')
        || FORMAT
            .binary_search_by(|&(lo, hi)| {
                if hi < c {
                    std::cmp::Ordering::Less
                } else if lo > c {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .is_ok()
}

/// `text` as it is shown: see the module documentation. Plain text, not yet HTML-escaped.
pub fn visible_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (at, c) in text.char_indices() {
        if is_hidden(c) {
            let _ = write!(out, "\\u{{{:X}}}", u32::from(c));
        } else if c == '\\' {
            let next = &text[at + 1..];
            let doubled = next.starts_with('\\')
                || next.starts_with("u{")
                || next.chars().next().is_some_and(is_hidden);
            out.push_str(if doubled { "\\\\" } else { "\\" });
        } else {
            out.push(c);
        }
    }
    out
}

/// A name or other outside text for a template: shown by [`visible_text`], then escaped.
#[derive(Debug, Clone, Copy)]
pub struct Visible<'a>(&'a str);

/// Wraps outside text so a template shows it visibly; see the module documentation.
pub fn visible(text: &str) -> Visible<'_> {
    Visible(text)
}

impl Render for Visible<'_> {
    fn render_to(&self, out: &mut String) {
        if self.0.chars().any(|c| c == '\\' || is_hidden(c)) {
            visible_text(self.0).render_to(out);
        } else {
            self.0.render_to(out);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    /// Reads a shown name back; `None` if it is not something [`visible_text`] writes.
    fn read_back(shown: &str) -> Option<String> {
        let mut out = String::new();
        let mut rest = shown;
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest.strip_prefix("\\\\") {
                out.push('\\');
                rest = after;
            } else if let Some(after) = rest.strip_prefix("\\u{") {
                let (hex, after) = after.split_once('}')?;
                out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
                rest = after;
            } else {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        Some(out)
    }

    #[test]
    fn bidirectional_controls_are_shown_as_escapes() {
        for (c, shown) in [
            ('\u{202A}', "\\u{202A}"),
            ('\u{202B}', "\\u{202B}"),
            ('\u{202C}', "\\u{202C}"),
            ('\u{202D}', "\\u{202D}"),
            ('\u{202E}', "\\u{202E}"),
            ('\u{2066}', "\\u{2066}"),
            ('\u{2067}', "\\u{2067}"),
            ('\u{2068}', "\\u{2068}"),
            ('\u{2069}', "\\u{2069}"),
            ('\u{200E}', "\\u{200E}"),
            ('\u{200F}', "\\u{200F}"),
            ('\u{061C}', "\\u{61C}"),
        ] {
            assert_eq!(visible_text(&format!("a{c}b")), format!("a{shown}b"));
        }
    }

    #[test]
    fn other_format_and_control_characters_are_shown_as_escapes() {
        for (c, shown) in [
            ('\u{200B}', "\\u{200B}"),   // zero-width space
            ('\u{00AD}', "\\u{AD}"),     // soft hyphen
            ('\u{FEFF}', "\\u{FEFF}"),   // byte order mark
            ('\u{E0041}', "\\u{E0041}"), // tag character
            ('\0', "\\u{0}"),
            ('\t', "\\u{9}"),
            ('\n', "\\u{A}"),
            ('\u{1B}', "\\u{1B}"),
            ('\u{7F}', "\\u{7F}"),
            ('\u{85}', "\\u{85}"),
            ('\u{2028}', "\\u{2028}"),
            ('\u{2029}', "\\u{2029}"),
        ] {
            assert_eq!(visible_text(&c.to_string()), shown, "{:X}", u32::from(c));
        }
    }

    #[test]
    fn ordinary_names_are_left_alone() {
        for name in [
            "jan",
            "Jan de Vries",
            "josé.müller@example.nl",
            "ÅSA-ÖBERG",
            "DOMAIN\\user",
            "O'Brien",
            "مريم",
            "עברית",
            "李小龙",
        ] {
            assert_eq!(visible_text(name), name);
        }
    }

    #[test]
    fn a_typed_escape_cannot_pass_for_a_real_one() {
        let real = visible_text("admin\u{202E}");
        let typed = visible_text("admin\\u{202E}");
        assert_eq!(real, "admin\\u{202E}");
        assert_eq!(typed, "admin\\\\u{202E}");
        assert_ne!(real, typed);
        assert_eq!(visible_text("a\\\\b"), "a\\\\\\b");
        assert_eq!(visible_text("a\\\u{202E}"), "a\\\\\\u{202E}");
        assert_eq!(visible_text("trailing\\"), "trailing\\");
    }

    #[test]
    fn the_format_table_is_sorted_and_disjoint() {
        for pair in FORMAT.windows(2) {
            assert!(pair[0].0 <= pair[0].1 && pair[0].1 < pair[1].0, "{pair:?}");
        }
        assert!(!is_hidden('a') && !is_hidden(' ') && !is_hidden('\u{A0}'));
        assert!(is_hidden('\u{110BD}') && is_hidden('\u{E007F}') && !is_hidden('\u{E0080}'));
    }

    #[test]
    fn rendering_escapes_html_after_making_visible() {
        assert_eq!(
            visible("<b>\u{202E}&").render().into_string(),
            "&lt;b&gt;\\u{202E}&amp;"
        );
        assert_eq!(visible("jan").render().into_string(), "jan");
    }

    proptest! {
        /// Different names never look the same, and nothing hidden is left in what is shown.
        #[test]
        fn shown_names_read_back_to_the_stored_name(
            name in "(\\\\|u|\\{|[0-9A-F]|\\}|a|\u{202E}|\u{200B}|\n|\u{E0041}|é){0,12}"
        ) {
            let shown = visible_text(&name);
            prop_assert!(!shown.chars().any(is_hidden));
            prop_assert_eq!(read_back(&shown), Some(name));
        }

        #[test]
        fn any_string_reads_back(name in any::<String>()) {
            let shown = visible_text(&name);
            prop_assert!(!shown.chars().any(is_hidden));
            prop_assert_eq!(read_back(&shown), Some(name));
        }
    }
}
