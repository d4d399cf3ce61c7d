//! How the pages turn text into markup.
//!
//! Every page is a [`maud`] template (`html! { … }`), checked when the gateway is compiled.
//! A template writes markup only where its source says so; every value it interpolates,
//! in element text or in an attribute, goes through maud's [`Render`] and is escaped
//! (`& < > "`; attribute values are always double-quoted). There is no function here that
//! takes a string and returns markup: a template cannot forget to escape, because it has no
//! way of not escaping.
//!
//! Text from outside the source code that people read (user names, roles, audit details)
//! is also made *visible* with [`super::visible::visible`] before it is escaped, so invisible
//! or reordering characters cannot make a page show another name than the stored one.
//!
//! Translated strings may carry placeholders such as `{account}`; [`fill`] renders the text
//! around each placeholder as text and the value by its own [`Render`] (for instance a
//! `<strong>` built by a template), so a translation can never carry markup in and a value
//! can never carry markup out.
//!
//! Raw markup exists in exactly one place, [`raw`], for constants written in this source
//! code (the doctype, the stylesheet, inline scripts); nothing there is built from a value.

use maud::{Markup, Render, html};

/// A translated string with `placeholder` standing for a value; see [`fill`].
pub(crate) struct Filled<'a, V> {
    template: &'a str,
    placeholder: &'a str,
    value: V,
}

impl<V: Render> Render for Filled<'_, V> {
    fn render_to(&self, out: &mut String) {
        for (i, part) in self.template.split(self.placeholder).enumerate() {
            if i > 0 {
                self.value.render_to(out);
            }
            part.render_to(out);
        }
    }
}

/// Renders `template` as text with every `placeholder` in it replaced by `value`, which is
/// rendered by its own [`Render`] (escaped text, a number, or markup from a template).
pub(crate) fn fill<'a, V: Render>(
    template: &'a str,
    placeholder: &'a str,
    value: V,
) -> Filled<'a, V> {
    Filled {
        template,
        placeholder,
        value,
    }
}

/// `<input type="hidden" name="…" value="…">`.
pub(crate) fn hidden_field(name: &str, value: &str) -> Markup {
    html! { input type="hidden" name=(name) value=(value); }
}

/// The only markup the pages write without escaping. Each item is a constant of this source
/// code, never a value from a request, the VMS, the store or the configuration.
pub(crate) mod raw {
    use maud::PreEscaped;

    use super::super::style::STYLE;

    /// The first line of every page, spelled as the pages always had it (maud's own
    /// `DOCTYPE` is upper case).
    pub(crate) const DOCTYPE: PreEscaped<&str> = PreEscaped("<!doctype html>\n");

    /// The stylesheet, for the inside of `<style>`. The content of a `<style>` element is
    /// not HTML-decoded by browsers, so escaping it would break the CSS (`"Segoe UI"`) and
    /// its CSP hash. It is safe raw because it is a constant that cannot end the element:
    /// it contains no `<` (a unit test checks this).
    pub(crate) const STYLESHEET: PreEscaped<&str> = PreEscaped(STYLE);

    /// An inline script of this source code (a `&'static str` constant), for the inside of
    /// `<script>`, whose content browsers do not HTML-decode either. A text that could end the
    /// element or open a comment (`</`, `<!--`) is not written at all.
    pub(crate) fn script(text: &'static str) -> PreEscaped<&'static str> {
        if text.contains("</") || text.contains("<!--") {
            return PreEscaped("");
        }
        PreEscaped(text)
    }
    /// The passkey script, for the inside of `<script>` (not HTML-decoded by browsers
    /// either, and allowed by its CSP hash). A constant without `<` (a unit test checks).
    pub(crate) const PASSKEY_SCRIPT: PreEscaped<&str> = PreEscaped(super::super::passkey::SCRIPT);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(r: impl Render) -> String {
        r.render().into_string()
    }

    #[test]
    fn fill_escapes_template_and_value() {
        assert_eq!(
            render(fill(
                "Signing in as {account} & co",
                "{account}",
                "<script>"
            )),
            "Signing in as &lt;script&gt; &amp; co"
        );
        assert_eq!(
            render(fill("{n} of {n}", "{n}", 3_usize)),
            "3 of 3",
            "every placeholder is filled"
        );
        assert_eq!(render(fill("no placeholder", "{x}", "y")), "no placeholder");
    }

    #[test]
    fn fill_takes_markup_only_from_a_template() {
        let name = "<b>Ann</b>";
        assert_eq!(
            render(fill("Hi {name}!", "{name}", html! { strong { (name) } })),
            "Hi <strong>&lt;b&gt;Ann&lt;/b&gt;</strong>!"
        );
    }

    #[test]
    fn hidden_field_cannot_break_out_of_its_attribute() {
        assert_eq!(
            hidden_field("csrf", r#""><script>"#).into_string(),
            r#"<input type="hidden" name="csrf" value="&quot;&gt;&lt;script&gt;">"#
        );
    }

    #[test]
    fn a_raw_script_cannot_end_its_element() {
        assert_eq!(raw::script("var a = 1 < 2;").0, "var a = 1 < 2;");
        assert_eq!(raw::script("x = '</script><b>';").0, "");
        assert_eq!(raw::script("<!-- x").0, "");
    }

    #[test]
    fn the_raw_stylesheet_cannot_end_its_element() {
        assert!(!raw::STYLESHEET.0.contains('<'));
        assert!(raw::DOCTYPE.0.starts_with("<!doctype html>"));
    }

    /// Every `.rs` file under `dir`, recursively.
    fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Raw markup is written in one audited place only; a template that wants markup must
    /// build it with `html!`.
    #[test]
    fn no_source_writes_raw_markup_outside_this_module() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&root, &mut files);
        let mut pages = 0;
        for path in &files {
            if path.ends_with("pages/html.rs") {
                continue;
            }
            let Ok(source) = std::fs::read_to_string(path) else {
                continue;
            };
            // The tests below a module may spell out the markup they expect.
            let code = source.split("#[cfg(test)]").next().unwrap_or_default();
            assert!(
                !code.contains("PreEscaped"),
                "{}: unescaped output outside pages::html::raw",
                path.display()
            );
            // Where pages are made, no string literal starts a tag and nothing escapes by hand.
            if path.starts_with(root.join("pages")) || path.starts_with(root.join("demo")) {
                pages += 1;
                for forbidden in ["\"<", "escape("] {
                    assert!(
                        !code.contains(forbidden),
                        "{}: {forbidden} (markup outside a template)",
                        path.display()
                    );
                }
            }
        }
        assert!(pages > 10, "the check must have read the page sources");
    }
}
