//! The frame around every gateway page: document head, branding, card and footer.
//!
//! Each page module renders only its own content; [`render`] wraps it in the same shell so
//! that every page gets the `lang` attribute, the viewport meta tag, the shared stylesheet
//! (whose hash the CSP names) and the operator's branding. Nothing here loads from the
//! network: the logo is a data URI and the favicon is an empty data URI, so a gateway page
//! causes no further requests to the VMS behind it.
//!
//! ```text
//! <html lang>  <head> title, viewport, <style> </head>
//!   <main>     brand (logo + product name)
//!              page content (h1, text, forms)
//!   </main>
//!   <footer>   operator's support text (optional)
//! ```

use maud::{Markup, Render, html};

use super::html::raw::{DOCTYPE, STYLESHEET};
use super::lang::Lang;
use super::strings::strings;

/// How the operator's organisation presents itself on the gateway pages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Branding {
    /// Shown above every page and in the browser tab, e.g. "Acme VMS".
    pub product_name: String,
    /// A `data:image/…` URI; any other value is ignored because the CSP allows only data
    /// images and the pages must not reach out to other hosts.
    pub logo_data_uri: Option<String>,
    /// A short line under every page, e.g. who to call for help.
    pub support_text: Option<String>,
    /// Who helps users with a lost phone or a lock (`mfa.helpdesk_name`); `None`: "your
    /// administrator" in the page's language.
    pub helpdesk_name: Option<String>,
}

impl Branding {
    /// Who helps users, as their pages name it (`{helpdesk}`).
    pub fn helpdesk(&self, lang: Lang) -> &str {
        self.helpdesk_name
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .unwrap_or(strings(lang).common.helpdesk_default)
    }

    /// The logo URI if it is one the pages can show.
    fn usable_logo(&self) -> Option<&str> {
        self.logo_data_uri
            .as_deref()
            .map(str::trim)
            .filter(|uri| uri.starts_with("data:image/"))
    }
}

/// Wraps page content in the shared document shell. `title` is rendered as text.
pub(crate) fn render(
    lang: Lang,
    branding: &Branding,
    title: impl Render,
    content: Markup,
) -> String {
    let product = branding.product_name.trim();
    let logo = branding.usable_logo();
    let support = branding
        .support_text
        .as_deref()
        .map(str::trim)
        .filter(|support| !support.is_empty());
    // The line breaks are those the pages always had; markup between them is maud's.
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                meta name="robots" content="noindex, nofollow";
                link rel="icon" href="data:,";
                title {
                    (title)
                    @if !product.is_empty() {
                        (strings(lang).common.title_separator) (product)
                    }
                }
                style { (STYLESHEET) }
            }
            "\n"
            body {
                "\n"
                main {
                    "\n"
                    @if logo.is_some() || !product.is_empty() {
                        div class="brand" {
                            @if let Some(uri) = logo {
                                // The product name next to it says what the logo says, so it
                                // is decorative.
                                img src=(uri) alt="";
                            }
                            @if !product.is_empty() {
                                span { (product) }
                            }
                        }
                        "\n"
                    }
                    (content)
                    "\n"
                }
                "\n"
                @if let Some(support) = support {
                    footer { p { (support) } }
                    "\n"
                }
            }
            "\n"
        }
        "\n"
    }
    .into_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::style::STYLE;

    fn branding() -> Branding {
        Branding {
            product_name: "Acme <VMS>".into(),
            logo_data_uri: Some("data:image/png;base64,iVBORw0KGgo=".into()),
            support_text: Some("Help: \"desk\" & co".into()),
            helpdesk_name: None,
        }
    }

    #[test]
    fn the_helpdesk_is_named_by_the_operator_or_by_the_language() {
        let b = branding();
        assert_eq!(b.helpdesk(Lang::En), "your administrator");
        assert_eq!(b.helpdesk(Lang::Nl), "je beheerder");
        let named = Branding {
            helpdesk_name: Some(" Acme Servicedesk ".into()),
            ..branding()
        };
        assert_eq!(named.helpdesk(Lang::Nl), "Acme Servicedesk");
    }

    #[test]
    fn shell_has_language_viewport_and_style() {
        let page = render(Lang::Nl, &branding(), "Titel", html! { h1 { "x" } });
        assert!(page.starts_with("<!doctype html>\n<html lang=\"nl\">"));
        assert!(page.contains(r#"content="width=device-width, initial-scale=1""#));
        assert!(page.contains(&format!("<style>{STYLE}</style>")));
        assert!(page.contains("<h1>x</h1>"));
        assert!(page.ends_with("</html>\n"));
    }

    #[test]
    fn branding_is_escaped_everywhere() {
        let page = render(Lang::En, &branding(), "A & B", html! {});
        assert!(page.contains("<title>A &amp; B – Acme &lt;VMS&gt;</title>"));
        assert!(page.contains("<span>Acme &lt;VMS&gt;</span>"));
        assert!(page.contains("<footer><p>Help: &quot;desk&quot; &amp; co</p></footer>"));
        assert!(page.contains(r#"<img src="data:image/png;base64,iVBORw0KGgo=" alt="">"#));
        assert!(!page.contains("<VMS>"));
    }

    #[test]
    fn logo_that_is_not_a_data_image_is_dropped() {
        for uri in [
            "https://cdn.example/logo.png",
            "javascript:alert(1)",
            "data:text/html,<b>",
        ] {
            let b = Branding {
                logo_data_uri: Some(uri.into()),
                ..branding()
            };
            let page = render(Lang::En, &b, "t", html! {});
            assert!(!page.contains("<img"), "{uri}");
        }
    }

    #[test]
    fn empty_branding_leaves_out_brand_and_footer() {
        let page = render(Lang::En, &Branding::default(), "Only title", html! {});
        assert!(page.contains("<title>Only title</title>"));
        assert!(!page.contains("class=\"brand\""));
        assert!(!page.contains("<footer>"));
    }
}
