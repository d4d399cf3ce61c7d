//! Which language a gateway page is shown in.
//!
//! The VMS is Dutch, but many of its users (MSP staff, contractors) read English. The gateway
//! has no user profile of its own to store a preference in, so it follows the browser's
//! `Accept-Language` header (RFC 9110 12.5.4) and falls back to the operator's configured
//! default when the header is missing, unparseable or names only languages we do not offer.
//!
//! Negotiation picks the supported language with the highest quality value; on a tie the one
//! listed first wins. `q=0` means "not acceptable" and is skipped. A wildcard `*` stands for
//! the operator's default. Only the primary subtag is compared (`nl-BE` counts as `nl`).

/// A language the gateway's pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// English.
    En,
    /// Dutch.
    Nl,
}

/// At most this many entries of an `Accept-Language` header are looked at; real browsers send
/// fewer than ten, and the cap bounds the work a hostile header can cause.
const MAX_ENTRIES: usize = 32;

/// Quality values are compared in thousandths (RFC 9110 allows at most three decimals).
const Q_MAX: u16 = 1000;

impl Lang {
    /// Picks the page language from an `Accept-Language` header value.
    pub fn negotiate(accept_language: Option<&str>, default: Lang) -> Lang {
        let Some(header) = accept_language else {
            return default;
        };
        let mut best: Option<(u16, Lang)> = None;
        for entry in header.split(',').take(MAX_ENTRIES) {
            let Some((tag, q)) = parse_entry(entry) else {
                continue;
            };
            if q == 0 {
                continue;
            }
            let candidate = if tag == "*" {
                Some(default)
            } else {
                Lang::from_code(primary_subtag(tag))
            };
            if let Some(lang) = candidate
                && best.is_none_or(|(best_q, _)| q > best_q)
            {
                best = Some((q, lang));
            }
        }
        best.map_or(default, |(_, lang)| lang)
    }

    /// The BCP 47 code used in the page's `lang` attribute.
    pub fn code(&self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Nl => "nl",
        }
    }

    /// Parses a language code as written in configuration (`"en"`, `"NL"`, `"nl-BE"`).
    pub fn from_code(code: &str) -> Option<Lang> {
        let primary = primary_subtag(code.trim());
        if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else if primary.eq_ignore_ascii_case("nl") {
            Some(Lang::Nl)
        } else {
            None
        }
    }
}

fn primary_subtag(tag: &str) -> &str {
    tag.split(['-', '_']).next().unwrap_or(tag)
}

/// Splits one `tag;q=0.8` entry. Returns `None` for an entry that is empty or carries an
/// invalid quality value, so that a malformed entry never wins.
fn parse_entry(entry: &str) -> Option<(&str, u16)> {
    let mut parts = entry.split(';');
    let tag = parts.next()?.trim();
    if tag.is_empty() {
        return None;
    }
    let mut q = Q_MAX;
    for param in parts {
        let (name, value) = param.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("q") {
            q = parse_q(value.trim())?;
        }
    }
    Some((tag, q))
}

/// Parses a quality value (`qvalue` in RFC 9110 12.4.2): `0`, `0.xyz`, `1` or `1.000`.
fn parse_q(value: &str) -> Option<u16> {
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match int {
        "1" if frac.bytes().all(|b| b == b'0') => Some(Q_MAX),
        "0" => {
            let mut thousandths: u16 = 0;
            for (i, digit) in frac.bytes().enumerate() {
                let scale = match i {
                    0 => 100,
                    1 => 10,
                    _ => 1,
                };
                thousandths += u16::from(digit - b'0') * scale;
            }
            Some(thousandths)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dutch_browser_gets_dutch() {
        assert_eq!(
            Lang::negotiate(Some("nl-NL,nl;q=0.9,en;q=0.8"), Lang::En),
            Lang::Nl
        );
    }

    #[test]
    fn english_browser_gets_english() {
        assert_eq!(Lang::negotiate(Some("en-US"), Lang::Nl), Lang::En);
        assert_eq!(Lang::negotiate(Some("EN-gb"), Lang::Nl), Lang::En);
    }

    #[test]
    fn unsupported_language_falls_back_to_default() {
        assert_eq!(Lang::negotiate(Some("de"), Lang::Nl), Lang::Nl);
        assert_eq!(Lang::negotiate(Some("de"), Lang::En), Lang::En);
        assert_eq!(Lang::negotiate(Some("de-DE,fr;q=0.5"), Lang::Nl), Lang::Nl);
    }

    #[test]
    fn missing_header_gives_default() {
        assert_eq!(Lang::negotiate(None, Lang::Nl), Lang::Nl);
        assert_eq!(Lang::negotiate(None, Lang::En), Lang::En);
    }

    #[test]
    fn garbage_gives_default() {
        for garbage in [
            "",
            ",,,",
            ";;q=",
            "\u{0}\u{7f}",
            "en;q=banana",
            "nl;q=2",
            "en;q",
        ] {
            assert_eq!(
                Lang::negotiate(Some(garbage), Lang::Nl),
                Lang::Nl,
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn quality_decides_not_order() {
        assert_eq!(
            Lang::negotiate(Some("en;q=0.3, nl;q=0.7"), Lang::En),
            Lang::Nl
        );
        assert_eq!(Lang::negotiate(Some("nl;q=0.5, en"), Lang::Nl), Lang::En);
    }

    #[test]
    fn first_listed_wins_a_tie() {
        assert_eq!(Lang::negotiate(Some("nl, en"), Lang::En), Lang::Nl);
        assert_eq!(Lang::negotiate(Some("en, nl"), Lang::Nl), Lang::En);
    }

    #[test]
    fn zero_quality_means_not_acceptable() {
        assert_eq!(Lang::negotiate(Some("nl;q=0, fr"), Lang::En), Lang::En);
        assert_eq!(Lang::negotiate(Some("en;q=0.000"), Lang::Nl), Lang::Nl);
    }

    #[test]
    fn wildcard_means_default() {
        assert_eq!(Lang::negotiate(Some("de, *;q=0.5"), Lang::Nl), Lang::Nl);
        assert_eq!(Lang::negotiate(Some("*;q=0.9, en"), Lang::Nl), Lang::En);
    }

    #[test]
    fn quality_values_parse_exactly() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("0.8"), Some(800));
        assert_eq!(parse_q("0.05"), Some(50));
        assert_eq!(parse_q("0.123"), Some(123));
        assert_eq!(parse_q("0.1234"), None);
        assert_eq!(parse_q("1.5"), None);
        assert_eq!(parse_q("-1"), None);
    }

    #[test]
    fn codes_round_trip() {
        for lang in [Lang::En, Lang::Nl] {
            assert_eq!(Lang::from_code(lang.code()), Some(lang));
        }
        assert_eq!(Lang::from_code(" NL-be "), Some(Lang::Nl));
        assert_eq!(Lang::from_code("fr"), None);
    }
}
