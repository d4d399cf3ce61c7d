//! Every word a user reads on a gateway page, in English and Dutch.
//!
//! Keeping all text here, as two complete [`Strings`] values, means the compiler refuses a
//! page text that exists in one language only, and a translator can review both languages
//! side by side without reading any markup. Page modules pick a [`Strings`] with
//! [`strings`] and never contain user-facing literals of their own.
//!
//! Texts are plain text, not HTML: pages escape them. A few carry a placeholder
//! (`{account}`, `{minutes}`, `{status}`) that the page fills with an escaped value.
//!
//! Wording follows the VMS announcement: "MFA", "authenticator app", "pairing code"
//! ("koppelcode") and "login code" ("inlogcode"); lost phones are handled by the MSP. The
//! Dutch text addresses the reader as "je". "6‑digit" is written with a non-breaking hyphen
//! (U+2011) so a narrow screen never splits it across two lines.

use super::lang::Lang;

/// All user-facing text of the gateway pages in one language.
#[derive(Debug)]
pub struct Strings {
    pub common: CommonText,
    pub enroll: EnrollText,
    pub recovery: RecoveryText,
    pub verify: VerifyText,
    pub offer: OfferText,
    pub form_errors: FormErrorText,
    pub error_pages: ErrorPagesText,
}

/// Text shared by several pages.
#[derive(Debug)]
pub struct CommonText {
    /// Separates the page title from the product name in the browser tab.
    pub title_separator: &'static str,
    pub back_to_sign_in: &'static str,
    pub try_again: &'static str,
    /// Small print on error pages; `{status}` is the HTTP status code.
    pub error_code: &'static str,
    pub not_now: &'static str,
}

/// The enrollment page: connecting an authenticator app.
#[derive(Debug)]
pub struct EnrollText {
    pub title: &'static str,
    pub required: &'static str,
    pub optional: &'static str,
    pub step_install: &'static str,
    pub step_scan: &'static str,
    pub qr_label: &'static str,
    pub open_in_app: &'static str,
    pub manual_intro: &'static str,
    pub pairing_code_label: &'static str,
    pub shown_in_app_label: &'static str,
    pub key_type_label: &'static str,
    pub key_type_value: &'static str,
    /// Label of the code field, also the third step.
    pub step_code: &'static str,
    pub confirm: &'static str,
    pub postpone_hint: &'static str,
}

/// The page that shows recovery codes once.
#[derive(Debug)]
pub struct RecoveryText {
    pub title: &'static str,
    pub intro: &'static str,
    pub codes_label: &'static str,
    pub keep_safe: &'static str,
    pub continue_button: &'static str,
}

/// The login code challenge.
#[derive(Debug)]
pub struct VerifyText {
    pub title: &'static str,
    /// `{account}` is the account being signed in.
    pub signing_in_as: &'static str,
    pub code_label: &'static str,
    pub hint: &'static str,
    pub recovery_hint: &'static str,
    pub lost_phone: &'static str,
    pub verify_button: &'static str,
    pub other_account: &'static str,
}

/// The invitation to opt in where MFA is optional.
#[derive(Debug)]
pub struct OfferText {
    pub title: &'static str,
    pub explain: &'static str,
    pub optional: &'static str,
    pub set_up_now: &'static str,
    pub later_hint: &'static str,
}

/// Messages shown above a code field after a failed submit. They never say whether the
/// account exists or which part of the input was wrong.
#[derive(Debug)]
pub struct FormErrorText {
    pub wrong_code: &'static str,
    pub code_format: &'static str,
    pub locked_one_minute: &'static str,
    /// `{minutes}` is the number of minutes (two or more).
    pub locked_minutes: &'static str,
    pub expired: &'static str,
    pub csrf_invalid: &'static str,
    pub too_many_requests: &'static str,
}

/// Title and one-line explanation of an error page.
#[derive(Debug)]
pub struct ErrorText {
    pub title: &'static str,
    pub message: &'static str,
}

/// The gateway's own error pages.
#[derive(Debug)]
pub struct ErrorPagesText {
    pub bad_request: ErrorText,
    pub forbidden: ErrorText,
    pub not_found: ErrorText,
    pub payload_too_large: ErrorText,
    pub too_many_requests: ErrorText,
    pub challenge_expired: ErrorText,
    pub bad_gateway: ErrorText,
    pub gateway_timeout: ErrorText,
    pub service_unavailable: ErrorText,
    pub internal: ErrorText,
}

/// The text for one language.
pub fn strings(lang: Lang) -> &'static Strings {
    match lang {
        Lang::En => &EN,
        Lang::Nl => &NL,
    }
}

static EN: Strings = Strings {
    common: CommonText {
        title_separator: " – ",
        back_to_sign_in: "Back to sign in",
        try_again: "Try again",
        error_code: "Error code: {status}",
        not_now: "Not now",
    },
    enroll: EnrollText {
        title: "Set up MFA for your account",
        required: "Your organisation requires multi-factor authentication (MFA) for your account. \
                   You set it up once; it takes about two minutes.",
        optional: "Multi-factor authentication (MFA) is optional for your account, but we \
                   recommend it. Setting it up takes about two minutes.",
        step_install: "Install an authenticator app on your phone, for example Microsoft \
                       Authenticator, Google Authenticator, Salesforce Authenticator, Authy or \
                       LastPass Authenticator. You will find them in the App Store and the Play Store.",
        step_scan: "In the app, add an account and scan this QR code.",
        qr_label: "QR code for adding your account to an authenticator app",
        open_in_app: "Using this phone? Open it in your authenticator app",
        manual_intro: "Can't scan the code? Choose to enter a key in the app and type this \
                       pairing code:",
        pairing_code_label: "Pairing code",
        shown_in_app_label: "Shown in the app as",
        key_type_label: "Type of key",
        key_type_value: "Time-based",
        step_code: "Enter the 6‑digit code the app now shows",
        confirm: "Turn on MFA",
        postpone_hint: "You can set up MFA the next time you sign in.",
    },
    recovery: RecoveryText {
        title: "Save your recovery codes",
        intro: "MFA is now on. If you can't use your phone, you can sign in with one of these \
                codes instead. Each code works once.",
        codes_label: "Recovery codes",
        keep_safe: "Keep them somewhere safe, such as a password manager, or print them. \
                    They will not be shown again.",
        continue_button: "I have saved them, continue",
    },
    verify: VerifyText {
        title: "Enter your login code",
        signing_in_as: "Signing in as {account}",
        code_label: "Login code",
        hint: "Open your authenticator app and enter the 6‑digit code it shows for this account.",
        recovery_hint: "No phone at hand? Enter one of your recovery codes in the same field.",
        lost_phone: "Lost your phone? Contact your MSP; they can disconnect MFA from your \
                     account so you can set it up again.",
        verify_button: "Verify",
        other_account: "Sign in with a different account",
    },
    offer: OfferText {
        title: "Protect your account with MFA",
        explain: "Multi-factor authentication (MFA) adds a second step when you sign in: \
                  besides your password, you enter a code from an app on your phone. Even if \
                  someone learns your password, they cannot get into your account.",
        optional: "MFA is optional for your account. Setting it up takes about two minutes.",
        set_up_now: "Set up now",
        later_hint: "If you choose not now, we will ask again next time you sign in.",
    },
    form_errors: FormErrorText {
        wrong_code: "That code didn't work. Enter the code your app shows now and try again.",
        code_format: "Enter the code using digits only, for example 123456.",
        locked_one_minute: "Too many attempts. Please try again in 1 minute.",
        locked_minutes: "Too many attempts. Please try again in {minutes} minutes.",
        expired: "That code has expired. Enter the code your app shows now.",
        csrf_invalid: "This page was open for too long or was sent twice. Please try again.",
        too_many_requests: "Too many requests. Wait a moment, then try again.",
    },
    error_pages: ErrorPagesText {
        bad_request: ErrorText {
            title: "Something went wrong with this request",
            message: "Please go back to the sign-in page and try again.",
        },
        forbidden: ErrorText {
            title: "No access",
            message: "You don't have access to this page.",
        },
        not_found: ErrorText {
            title: "Page not found",
            message: "This page doesn't exist or is no longer available.",
        },
        payload_too_large: ErrorText {
            title: "Too much data",
            message: "What was sent is larger than this page accepts. Please try again.",
        },
        too_many_requests: ErrorText {
            title: "Too many requests",
            message: "Please wait a minute, then try again.",
        },
        challenge_expired: ErrorText {
            title: "Your sign-in took too long",
            message: "For your security, please sign in again.",
        },
        bad_gateway: ErrorText {
            title: "The application is not responding",
            message: "We could not reach the application. Please try again in a moment.",
        },
        gateway_timeout: ErrorText {
            title: "The application is taking too long",
            message: "The application did not answer in time. Please try again in a moment.",
        },
        service_unavailable: ErrorText {
            title: "Signing in is temporarily unavailable",
            message: "Please try again in a minute.",
        },
        internal: ErrorText {
            title: "Something went wrong",
            message: "Please try again. If this keeps happening, contact your MSP.",
        },
    },
};

static NL: Strings = Strings {
    common: CommonText {
        title_separator: " – ",
        back_to_sign_in: "Terug naar inloggen",
        try_again: "Opnieuw proberen",
        error_code: "Foutcode: {status}",
        not_now: "Niet nu",
    },
    enroll: EnrollText {
        title: "MFA instellen voor je account",
        required: "Je organisatie vereist multi-factor authenticatie (MFA) voor je account. \
                   Je stelt het één keer in; dat duurt ongeveer twee minuten.",
        optional: "Multi-factor authenticatie (MFA) is voor jouw account niet verplicht, maar \
                   wel aan te raden. Instellen duurt ongeveer twee minuten.",
        step_install: "Installeer een authenticator-app op je telefoon, bijvoorbeeld Microsoft \
                       Authenticator, Google Authenticator, Salesforce Authenticator, Authy of \
                       LastPass Authenticator. Je vindt ze in de App Store en de Play Store.",
        step_scan: "Voeg in de app een account toe en scan deze QR-code.",
        qr_label: "QR-code om je account aan een authenticator-app toe te voegen",
        open_in_app: "Gebruik je deze telefoon? Open het in je authenticator-app",
        manual_intro: "Lukt scannen niet? Kies in de app voor het invoeren van een sleutel en \
                       typ deze koppelcode over:",
        pairing_code_label: "Koppelcode",
        shown_in_app_label: "In de app te zien als",
        key_type_label: "Type sleutel",
        key_type_value: "Op tijd gebaseerd",
        step_code: "Vul de 6‑cijferige code in die de app nu toont",
        confirm: "MFA inschakelen",
        postpone_hint: "Je kunt MFA ook instellen wanneer je de volgende keer inlogt.",
    },
    recovery: RecoveryText {
        title: "Bewaar je herstelcodes",
        intro: "MFA staat nu aan. Kun je je telefoon niet gebruiken? Dan log je in met een van \
                deze codes. Elke code werkt één keer.",
        codes_label: "Herstelcodes",
        keep_safe: "Bewaar ze op een veilige plek, bijvoorbeeld in een wachtwoordmanager, of \
                    print ze. Ze worden niet opnieuw getoond.",
        continue_button: "Ik heb ze bewaard, doorgaan",
    },
    verify: VerifyText {
        title: "Vul je inlogcode in",
        signing_in_as: "Je logt in als {account}",
        code_label: "Inlogcode",
        hint: "Open je authenticator-app en vul de 6‑cijferige code in die de app voor dit \
               account toont.",
        recovery_hint: "Telefoon niet bij de hand? Vul dan een van je herstelcodes in hetzelfde \
                        veld in.",
        lost_phone: "Telefoon kwijt? Neem contact op met je MSP. Die kan MFA van je account \
                     loskoppelen, zodat je het opnieuw kunt instellen.",
        verify_button: "Controleren",
        other_account: "Met een ander account inloggen",
    },
    offer: OfferText {
        title: "Beveilig je account met MFA",
        explain: "Multi-factor authenticatie (MFA) voegt een tweede stap toe aan het inloggen: \
                  naast je wachtwoord vul je een code in uit een app op je telefoon. Ook als \
                  iemand je wachtwoord kent, komt die niet in je account.",
        optional: "MFA is voor jouw account niet verplicht. Instellen duurt ongeveer twee minuten.",
        set_up_now: "Nu instellen",
        later_hint: "Kies je voor niet nu, dan vragen we het de volgende keer dat je inlogt opnieuw.",
    },
    form_errors: FormErrorText {
        wrong_code: "Die code klopt niet. Vul de code in die je app nu toont en probeer het opnieuw.",
        code_format: "Vul de code in met alleen cijfers, bijvoorbeeld 123456.",
        locked_one_minute: "Te veel pogingen. Probeer het over 1 minuut opnieuw.",
        locked_minutes: "Te veel pogingen. Probeer het over {minutes} minuten opnieuw.",
        expired: "Die code is verlopen. Vul de code in die je app nu toont.",
        csrf_invalid: "Deze pagina stond te lang open of is twee keer verstuurd. Probeer het opnieuw.",
        too_many_requests: "Te veel verzoeken. Wacht even en probeer het dan opnieuw.",
    },
    error_pages: ErrorPagesText {
        bad_request: ErrorText {
            title: "Er ging iets mis met dit verzoek",
            message: "Ga terug naar de inlogpagina en probeer het opnieuw.",
        },
        forbidden: ErrorText {
            title: "Geen toegang",
            message: "Je hebt geen toegang tot deze pagina.",
        },
        not_found: ErrorText {
            title: "Pagina niet gevonden",
            message: "Deze pagina bestaat niet of is niet meer beschikbaar.",
        },
        payload_too_large: ErrorText {
            title: "Te veel gegevens",
            message: "Er is meer verstuurd dan deze pagina aanneemt. Probeer het opnieuw.",
        },
        too_many_requests: ErrorText {
            title: "Te veel verzoeken",
            message: "Wacht een minuut en probeer het dan opnieuw.",
        },
        challenge_expired: ErrorText {
            title: "Het inloggen duurde te lang",
            message: "Log voor je veiligheid opnieuw in.",
        },
        bad_gateway: ErrorText {
            title: "De applicatie reageert niet",
            message: "We konden de applicatie niet bereiken. Probeer het zo opnieuw.",
        },
        gateway_timeout: ErrorText {
            title: "De applicatie reageert te traag",
            message: "De applicatie gaf niet op tijd antwoord. Probeer het zo opnieuw.",
        },
        service_unavailable: ErrorText {
            title: "Inloggen is tijdelijk niet mogelijk",
            message: "Probeer het over een minuut opnieuw.",
        },
        internal: ErrorText {
            title: "Er ging iets mis",
            message: "Probeer het opnieuw. Blijft dit gebeuren, neem dan contact op met je MSP.",
        },
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    /// Every text of one language, so the tests can look at all of them.
    fn all(s: &Strings) -> Vec<&'static str> {
        let e = &s.error_pages;
        let mut v = vec![
            s.common.title_separator,
            s.common.back_to_sign_in,
            s.common.try_again,
            s.common.error_code,
            s.common.not_now,
            s.enroll.title,
            s.enroll.required,
            s.enroll.optional,
            s.enroll.step_install,
            s.enroll.step_scan,
            s.enroll.qr_label,
            s.enroll.open_in_app,
            s.enroll.manual_intro,
            s.enroll.pairing_code_label,
            s.enroll.shown_in_app_label,
            s.enroll.key_type_label,
            s.enroll.key_type_value,
            s.enroll.step_code,
            s.enroll.confirm,
            s.enroll.postpone_hint,
            s.recovery.title,
            s.recovery.intro,
            s.recovery.codes_label,
            s.recovery.keep_safe,
            s.recovery.continue_button,
            s.verify.title,
            s.verify.signing_in_as,
            s.verify.code_label,
            s.verify.hint,
            s.verify.recovery_hint,
            s.verify.lost_phone,
            s.verify.verify_button,
            s.verify.other_account,
            s.offer.title,
            s.offer.explain,
            s.offer.optional,
            s.offer.set_up_now,
            s.offer.later_hint,
            s.form_errors.wrong_code,
            s.form_errors.code_format,
            s.form_errors.locked_one_minute,
            s.form_errors.locked_minutes,
            s.form_errors.expired,
            s.form_errors.csrf_invalid,
            s.form_errors.too_many_requests,
        ];
        for t in [
            &e.bad_request,
            &e.forbidden,
            &e.not_found,
            &e.payload_too_large,
            &e.too_many_requests,
            &e.challenge_expired,
            &e.bad_gateway,
            &e.gateway_timeout,
            &e.service_unavailable,
            &e.internal,
        ] {
            v.push(t.title);
            v.push(t.message);
        }
        v
    }

    #[test]
    fn no_text_is_empty_and_none_has_stray_whitespace() {
        for lang in [Lang::En, Lang::Nl] {
            for text in all(strings(lang)) {
                assert!(!text.trim().is_empty(), "{lang:?}: empty text");
                if text != strings(lang).common.title_separator {
                    assert_eq!(text, text.trim(), "{lang:?}: {text:?}");
                }
                assert!(!text.contains("  "), "{lang:?}: double space in {text:?}");
            }
        }
    }

    #[test]
    fn languages_really_differ() {
        let (en, nl) = (all(strings(Lang::En)), all(strings(Lang::Nl)));
        assert_eq!(en.len(), nl.len());
        let same: Vec<_> = en
            .iter()
            .zip(&nl)
            .filter(|(a, b)| a == b)
            .map(|(a, _)| *a)
            .collect();
        // Only the separator is meant to be identical.
        assert_eq!(same, vec![" – "]);
    }

    #[test]
    fn placeholders_exist_in_both_languages() {
        for lang in [Lang::En, Lang::Nl] {
            let s = strings(lang);
            assert!(s.verify.signing_in_as.contains("{account}"), "{lang:?}");
            assert!(
                s.form_errors.locked_minutes.contains("{minutes}"),
                "{lang:?}"
            );
            assert!(s.common.error_code.contains("{status}"), "{lang:?}");
        }
    }

    #[test]
    fn texts_are_plain_text_not_markup() {
        for lang in [Lang::En, Lang::Nl] {
            for text in all(strings(lang)) {
                assert!(!text.contains('<') && !text.contains('&'), "{text:?}");
            }
        }
    }

    #[test]
    fn enrollment_names_the_apps_from_the_announcement() {
        for lang in [Lang::En, Lang::Nl] {
            let step = strings(lang).enroll.step_install;
            for app in ["Google", "Microsoft", "Salesforce", "Authy", "LastPass"] {
                assert!(step.contains(app), "{lang:?} misses {app}");
            }
        }
    }
}
