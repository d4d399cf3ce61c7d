//! Property tests for reading a typed code.
//!
//! Users type codes with spaces or dashes ("123 456", "123-456"); anything else must be
//! refused before it reaches verification. For any input, an accepted code is exactly six
//! ASCII digits, and any six digits with harmless separators are accepted as those digits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;

use super::{DIGITS, normalize_code};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn accepted_codes_are_six_ascii_digits(s in ".{0,40}") {
        if let Some(c) = normalize_code(&s) {
            prop_assert_eq!(c.len(), DIGITS);
            prop_assert!(c.bytes().all(|b| b.is_ascii_digit()));
            prop_assert_eq!(normalize_code(&c), Some(c.clone()));
        }
    }

    #[test]
    fn separators_are_ignored(digits in "[0-9]{6}", seps in prop::collection::vec("[ \t-]{0,2}", 7)) {
        let mut typed = seps[0].clone();
        for (d, sep) in digits.chars().zip(&seps[1..]) {
            typed.push(d);
            typed.push_str(sep);
        }
        prop_assert_eq!(normalize_code(&typed), Some(digits));
    }
}
