//! Passkeys and security keys on the gateway's pages: the one script that talks to the
//! browser's WebAuthn API, the passkey button of the sign-in page, the page that sets up a
//! passkey (at a sign-in or from the account page), and the list of a user's passkeys.
//!
//! The WebAuthn calls need JavaScript: [`SCRIPT`] is the only script of the gateway, inline,
//! allowed by its SHA-256 in the Content-Security-Policy (computed from this text, see
//! `style`), loading nothing. It reads the ceremony's options from the `data-options`
//! attribute of the element `#pk` (JSON, escaped like any attribute), calls
//! `navigator.credentials.create` or `.get` when the user presses the button, and posts the
//! browser's answer (JSON) in the form's `credential` field, with the form's CSRF token. The
//! button is `hidden` until the script runs, so without JavaScript the page shows why a
//! passkey needs it, and the code form (where the policy allows codes) works as before.
//!
//! ```text
//!   div#pk data-ceremony="get|create" data-options="{...}"
//!     form#pk-form (csrf, action, credential, [name])   button#pk-go (hidden until JS)
//!     p#pk-error (hidden)  p#pk-unsupported (hidden)  noscript: why JavaScript is needed
//!   script (the constant below)
//! ```

use maud::{Markup, html};

use super::form::{ACTION_FIELD, FormAction, button, post_form};
use super::html::{fill, hidden_field, raw};
use super::lang::Lang;
use super::layout::{Branding, render};
use super::strings::strings;
use super::visible::visible;

/// The form field that carries the browser's answer (JSON).
pub const CREDENTIAL_FIELD: &str = "credential";
/// The form field with a passkey's name.
pub const NAME_FIELD: &str = "name";
/// The form field with a passkey's id (rename, remove).
pub const PASSKEY_FIELD: &str = "passkey";
/// The action of the sign-in page's passkey form.
pub const SIGN_IN_ACTION: &str = "passkey";
/// The action of the set-up page's passkey form.
pub const REGISTER_ACTION: &str = "register";

/// The gateway's one script (see the module documentation). It contains no `<`, so it
/// cannot end its element (a test checks), and nothing in it comes from a request.
pub const SCRIPT: &str = r#"(function () {
  var d = document.getElementById("pk");
  if (!d) { return; }
  var b = document.getElementById("pk-go"), f = document.getElementById("pk-form");
  var m = document.getElementById("pk-error"), n = document.getElementById("pk-unsupported");
  if (!window.PublicKeyCredential || !navigator.credentials) { n.hidden = false; return; }
  function bin(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var r = atob(s), a = new Uint8Array(r.length);
    for (var i = 0; i !== r.length; i++) { a[i] = r.charCodeAt(i); }
    return a.buffer;
  }
  function txt(x) {
    var a = new Uint8Array(x), s = "";
    for (var i = 0; i !== a.length; i++) { s += String.fromCharCode(a[i]); }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function clean(o) {
    for (var k in o) {
      if (o[k] === null) { delete o[k]; } else if (typeof o[k] === "object") { clean(o[k]); }
    }
    return o;
  }
  b.hidden = false;
  b.addEventListener("click", function () {
    m.hidden = true;
    var create = d.getAttribute("data-ceremony") === "create";
    var k = clean(JSON.parse(d.getAttribute("data-options"))).publicKey;
    k.challenge = bin(k.challenge);
    (k.allowCredentials || k.excludeCredentials || []).forEach(function (c) { c.id = bin(c.id); });
    if (create) { k.user.id = bin(k.user.id); }
    var p = create ? navigator.credentials.create({ publicKey: k })
                   : navigator.credentials.get({ publicKey: k });
    p.then(function (c) {
      var r = c.response;
      var out = { id: c.id, rawId: txt(c.rawId), type: c.type, extensions: {},
                  response: { clientDataJSON: txt(r.clientDataJSON) } };
      if (create) {
        out.response.attestationObject = txt(r.attestationObject);
      } else {
        out.response.authenticatorData = txt(r.authenticatorData);
        out.response.signature = txt(r.signature);
        out.response.userHandle = r.userHandle ? txt(r.userHandle) : null;
      }
      f.elements.namedItem("credential").value = JSON.stringify(out);
      f.submit();
    }, function () { m.hidden = false; });
  });
})();"#;

/// Which ceremony a passkey block runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ceremony {
    /// Sign in with a registered passkey.
    SignIn,
    /// Register a new one.
    Register,
}

/// The passkey block: the ceremony's options, its form and button, the messages for a
/// failed or impossible ceremony, and the script. `extra` goes inside the form (a name field).
pub(crate) fn passkey_block(
    lang: Lang,
    ceremony: Ceremony,
    options: &str,
    form_action: &str,
    csrf: &str,
    label: &str,
    extra: Markup,
) -> Markup {
    let t = &strings(lang).passkey;
    let (kind, action) = match ceremony {
        Ceremony::SignIn => ("get", SIGN_IN_ACTION),
        Ceremony::Register => ("create", REGISTER_ACTION),
    };
    html! {
        div id="pk" data-ceremony=(kind) data-options=(options) {
            form id="pk-form" method="post" action=(form_action) {
                (hidden_field(super::form::CSRF_FIELD, csrf))
                (hidden_field(ACTION_FIELD, action))
                (hidden_field(CREDENTIAL_FIELD, ""))
                (extra)
                button class="primary" type="button" id="pk-go" hidden { (label) }
            }
            p class="alert" role="alert" id="pk-error" hidden { (t.failed) }
            p class="alert" id="pk-unsupported" hidden { (t.unsupported) }
            noscript { p class="alert" { (t.needs_js) } }
        }
        script { (raw::PASSKEY_SCRIPT) }
    }
}

/// What the set-up page shows (at a sign-in, or from the account page).
#[derive(Debug, Clone)]
pub struct PasskeySetupView<'a> {
    pub lang: Lang,
    pub branding: &'a Branding,
    pub account: &'a str,
    /// The creation options (JSON).
    pub options: &'a str,
    pub form_action: &'a str,
    pub csrf: &'a str,
    /// The role must use a passkey now (a sign-in that cannot go on without one).
    pub required: bool,
    /// "Not now" (the phase's grace), posted to `form_action`.
    pub can_postpone: bool,
    /// The server refused the browser's answer.
    pub refused: bool,
    /// A link back (the account page); `None` at a sign-in.
    pub back: Option<&'a str>,
}

/// The page that sets up a passkey.
pub fn passkey_setup_page(v: &PasskeySetupView<'_>) -> String {
    let t = &strings(v.lang).passkey;
    let account = html! { strong { (visible(v.account)) } };
    let name = html! {
        label for="pk-name" { (t.name_label) }
        p class="muted" id="pk-name-hint" { (t.name_hint) }
        input id="pk-name" name=(NAME_FIELD) type="text" maxlength="60"
            value=(t.default_name) aria-describedby="pk-name-hint";
    };
    let content = html! {
        h1 { (t.setup_title) }
        p { (fill(strings(v.lang).verify.signing_in_as, "{account}", account)) }
        p { (if v.required { t.setup_required } else { t.setup_optional }) }
        p class="muted" { (t.setup_how) }
        @if v.refused {
            p class="alert" role="alert" { (t.refused) }
        }
        (passkey_block(v.lang, Ceremony::Register, v.options, v.form_action, v.csrf, t.create_button, name))
        @if v.can_postpone {
            (post_form(v.form_action, v.csrf, html! {
                (button("secondary", strings(v.lang).common.not_now, Some(FormAction::Postpone)))
            }))
        }
        @if let Some(back) = v.back {
            p { a href=(back) { (strings(v.lang).account.back) } }
        }
    };
    render(v.lang, v.branding, t.setup_title, content)
}

/// What the page that confirms an account change with a passkey shows (a user without the
/// app: new recovery codes, or turning MFA off).
#[derive(Debug, Clone)]
pub struct PasskeyConfirmView<'a> {
    pub lang: Lang,
    pub branding: &'a Branding,
    pub account: &'a str,
    /// The request options (JSON).
    pub options: &'a str,
    /// Where the answer goes (the change's own form action).
    pub form_action: &'a str,
    pub csrf: &'a str,
    /// Turning MFA off (else new recovery codes).
    pub disable: bool,
    /// The server refused the browser's answer.
    pub refused: bool,
    /// The account page.
    pub back: &'a str,
}

/// The page that confirms an account change with one of the user's passkeys.
pub fn passkey_confirm_page(v: &PasskeyConfirmView<'_>) -> String {
    let t = &strings(v.lang).passkey;
    let account = html! { strong { (visible(v.account)) } };
    let content = html! {
        h1 { (t.confirm_title) }
        p { (fill(strings(v.lang).common.signed_in_as, "{account}", account)) }
        p { (if v.disable { t.confirm_disable } else { t.confirm_recovery }) }
        @if v.refused {
            p class="alert" role="alert" { (t.refused) }
        }
        (passkey_block(v.lang, Ceremony::SignIn, v.options, v.form_action, v.csrf, t.confirm_button, html! {}))
        p { a href=(v.back) { (strings(v.lang).common.account_link) } }
    };
    render(v.lang, v.branding, t.confirm_title, content)
}

/// One passkey as the account and admin pages list it.
#[derive(Debug, Clone)]
pub struct PasskeyItem {
    pub id: String,
    pub name: String,
    /// Preformatted date-time text.
    pub added: String,
    /// Preformatted, `None` when never used.
    pub last_used: Option<String>,
}

/// The account page's passkeys section: each with rename and remove, then "add".
pub(crate) fn passkeys_section(
    lang: Lang,
    items: &[PasskeyItem],
    csrf: &str,
    add_action: &str,
    rename_action: &str,
    remove_action: &str,
) -> Markup {
    let t = &strings(lang).passkey;
    html! {
        section aria-labelledby="h-passkeys" {
            h2 id="h-passkeys" { (t.list_title) }
            p { (t.list_text) }
            @if items.is_empty() {
                p class="muted" { (t.none_yet) }
            }
            ul class="browsers" {
                @for (i, pk) in items.iter().enumerate() {
                    li {
                        p { strong { (visible(&pk.name)) } }
                        p class="muted" { (fill(t.added_on, "{date}", pk.added.as_str())) }
                        p class="muted" {
                            @match &pk.last_used {
                                Some(d) => (fill(t.last_used_on, "{date}", d.as_str())),
                                None => (t.never_used),
                            }
                        }
                        (post_form(rename_action, csrf, html! {
                            (hidden_field(PASSKEY_FIELD, &pk.id))
                            label for=(format!("pk-rename-{i}")) { (t.rename_label) }
                            input id=(format!("pk-rename-{i}")) class="field" name=(NAME_FIELD)
                                type="text" maxlength="60" required value=(pk.name);
                            (button("secondary", t.rename_button, None))
                        }))
                        (post_form(remove_action, csrf, html! {
                            (hidden_field(PASSKEY_FIELD, &pk.id))
                            (button("danger", t.remove_button, None))
                        }))
                    }
                }
            }
            p { a class="button secondary" href=(add_action) { (t.add_button) } }
        }
    }
}

/// The admin user page's list of a user's passkeys (read only: a reset removes them all).
pub(crate) fn passkeys_list(lang: Lang, items: &[PasskeyItem]) -> Markup {
    let t = &strings(lang).passkey;
    html! {
        section aria-labelledby="h-passkeys" {
            h2 id="h-passkeys" { (t.list_title) }
            @if items.is_empty() {
                p class="muted" { (t.none_yet) }
            } @else {
                ul class="browsers" {
                    @for pk in items {
                        li {
                            p { strong { (visible(&pk.name)) } }
                            p class="muted" { (fill(t.added_on, "{date}", pk.added.as_str())) }
                            p class="muted" {
                                @match &pk.last_used {
                                    Some(d) => (fill(t.last_used_on, "{date}", d.as_str())),
                                    None => (t.never_used),
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_script_cannot_end_its_element_and_loads_nothing() {
        assert!(!SCRIPT.contains('<'));
        assert!(!SCRIPT.contains("fetch(") && !SCRIPT.contains("XMLHttpRequest"));
        assert!(!SCRIPT.contains("http"), "nothing external");
        assert!(!SCRIPT.contains("innerHTML") && !SCRIPT.contains("eval("));
    }

    #[test]
    fn the_block_escapes_the_options_and_hides_the_button_until_the_script_runs() {
        let html = passkey_block(
            Lang::En,
            Ceremony::SignIn,
            r#"{"publicKey":{"challenge":"</div>\"x"}}"#,
            "/.mfa/verify",
            "tok",
            "Go",
            html! {},
        )
        .into_string();
        assert!(html.contains(r#"data-options="{&quot;publicKey&quot;:{&quot;challenge&quot;:&quot;&lt;/div&gt;\&quot;x&quot;}}""#), "{html}");
        assert!(
            html.contains(r#"<button class="primary" type="button" id="pk-go" hidden>Go</button>"#),
            "{html}"
        );
        assert!(html.contains(r#"name="action" value="passkey""#));
        assert!(html.contains(r#"name="csrf" value="tok""#));
        assert!(
            html.contains("<noscript><p class=\"alert\">A passkey needs JavaScript"),
            "{html}"
        );
        assert!(html.contains(&format!("<script>{SCRIPT}</script>")));
    }

    #[test]
    fn the_confirmation_page_says_what_it_confirms_and_why_it_needs_javascript() {
        let b = Branding::default();
        let v = PasskeyConfirmView {
            lang: Lang::En,
            branding: &b,
            account: "jan",
            options: "{}",
            form_action: "/.mfa/account/disable",
            csrf: "t",
            disable: true,
            refused: false,
            back: "/.mfa/account",
        };
        let page = passkey_confirm_page(&v);
        assert!(page.contains("To turn off MFA, confirm with one of your passkeys."));
        assert!(page.contains(r#"data-ceremony="get""#), "{page}");
        assert!(page.contains(r#"action="/.mfa/account/disable""#));
        assert!(page.contains("<noscript><p class=\"alert\">A passkey needs JavaScript"));
        assert!(!page.contains("was not accepted"), "not refused");
        let nl = passkey_confirm_page(&PasskeyConfirmView {
            lang: Lang::Nl,
            disable: false,
            refused: true,
            ..v
        });
        assert!(nl.contains("Bevestig met een van je passkeys om nieuwe herstelcodes te maken."));
        assert!(nl.contains(r#"<a href="/.mfa/account">"#), "{nl}");
        assert!(nl.contains("Die passkey is niet geaccepteerd."));
    }

    #[test]
    fn the_set_up_page_offers_not_now_only_in_grace() {
        let b = Branding::default();
        let v = PasskeySetupView {
            lang: Lang::Nl,
            branding: &b,
            account: "jan",
            options: "{}",
            form_action: "/.mfa/passkey",
            csrf: "t",
            required: true,
            can_postpone: false,
            refused: false,
            back: None,
        };
        let page = passkey_setup_page(&v);
        assert!(page.contains("<h1>Passkey instellen</h1>"), "{page}");
        assert!(!page.contains("value=\"postpone\""));
        let grace = passkey_setup_page(&PasskeySetupView {
            can_postpone: true,
            refused: true,
            ..v
        });
        assert!(grace.contains("value=\"postpone\""));
        assert!(grace.contains("role=\"alert\">"));
    }
}
