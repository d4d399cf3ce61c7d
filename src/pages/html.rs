//! HTML escaping and the small functions every page uses to put text into markup.
//!
//! Every value that reaches a page from outside the source code (account names, issuer,
//! branding, CSRF tokens, form targets) passes through [`escape`] before it is written, both
//! in text and in attribute values. Attribute values are always double-quoted, and `'` is
//! escaped as well, so the same function is safe in either position.
//!
//! Translated strings may carry placeholders such as `{account}`; [`fill`] escapes the
//! template and the values separately, so a placeholder can never smuggle markup in.

use std::fmt::Write;

/// Escapes `& < > " '` for use in HTML text and in double- or single-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes a text template and substitutes each `(placeholder, html)` pair.
///
/// The replacement values are inserted as they are, so callers pass either [`escape`]d text
/// or markup they built from escaped parts (see [`fill_text`] for the common case).
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = escape(template);
    for (placeholder, html) in values {
        out = out.replace(placeholder, html);
    }
    out
}

/// Like [`fill`] with one placeholder whose value is plain text.
pub fn fill_text(template: &str, placeholder: &str, text: &str) -> String {
    fill(template, &[(placeholder, &escape(text))])
}

/// `<input type="hidden" name="…" value="…">` with both parts escaped.
pub fn hidden_field(name: &str, value: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<input type="hidden" name="{}" value="{}">"#,
        escape(name),
        escape(value)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_the_five_special_characters() {
        assert_eq!(
            escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        assert_eq!(escape("Jan de Vries – café 123"), "Jan de Vries – café 123");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn fill_escapes_template_and_value() {
        assert_eq!(
            fill_text("Signing in as {account} & co", "{account}", "<script>"),
            "Signing in as &lt;script&gt; &amp; co"
        );
    }

    #[test]
    fn fill_inserts_markup_values_verbatim() {
        assert_eq!(
            fill("Hi {name}!", &[("{name}", "<strong>Ann</strong>")]),
            "Hi <strong>Ann</strong>!"
        );
    }

    #[test]
    fn hidden_field_cannot_break_out_of_its_attribute() {
        assert_eq!(
            hidden_field("csrf", r#""><script>"#),
            r#"<input type="hidden" name="csrf" value="&quot;&gt;&lt;script&gt;">"#
        );
    }
}
