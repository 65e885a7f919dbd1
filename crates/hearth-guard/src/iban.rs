//! International bank account numbers: country length table and ISO 7064 mod-97-10.

use regex::bytes::Regex;

use crate::finding::{Finding, PiiKind};
use crate::recognizer::{stands_alone, Recognizer};

/// Finds IBANs written solid (`DE89370400440532013000`) or in groups of four separated by
/// single spaces, in upper case, whose length fits their country and whose mod-97
/// remainder is 1. Score 1.0.
#[derive(Debug, Clone)]
pub struct IbanRecognizer {
    pattern: Regex,
}

impl Default for IbanRecognizer {
    fn default() -> Self {
        Self::new()
    }
}

/// IBAN length per country (SWIFT IBAN registry).
const COUNTRY_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NL", 18),
    (b"NO", 15),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"SA", 24),
    (b"SC", 31),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
];

impl IbanRecognizer {
    /// The recognizer with its pattern compiled.
    pub fn new() -> Self {
        // Upper case as printed, or all lower case as typed; never mixed.
        let pattern = r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?|[a-z]{2}[0-9]{2}(?: ?[a-z0-9]{4}){2,7}(?: ?[a-z0-9]{1,3})?";
        IbanRecognizer {
            pattern: Regex::new(pattern).expect("built-in pattern compiles"),
        }
    }
}

/// Two letters of one case, then two ASCII digits: how every IBAN begins.
fn country_and_check(w: &[u8]) -> bool {
    w[2].is_ascii_digit()
        && w[3].is_ascii_digit()
        && ((w[0].is_ascii_uppercase() && w[1].is_ascii_uppercase())
            || (w[0].is_ascii_lowercase() && w[1].is_ascii_lowercase()))
}

/// True when the IBAN `chars` (no spaces) has remainder 1 under mod 97.
pub(crate) fn mod97_valid(chars: &[u8]) -> bool {
    let rearranged = chars[4..].iter().chain(&chars[..4]);
    let mut rem = 0u32;
    for &c in rearranged {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

impl Recognizer for IbanRecognizer {
    fn kinds(&self) -> &'static [PiiKind] {
        &[PiiKind::Iban]
    }

    fn find(&self, text: &str, out: &mut Vec<Finding>) {
        let bytes = text.as_bytes();
        // Every IBAN starts with a country code and two check digits: most text has no
        // such four bytes, and a byte scan says so faster than the pattern.
        if !bytes.windows(4).any(country_and_check) {
            return;
        }
        for m in self.pattern.find_iter(bytes) {
            let candidate = m.as_bytes().to_ascii_uppercase();
            let Some(&(_, len)) = COUNTRY_LENGTHS.iter().find(|(c, _)| &candidate[..2] == *c)
            else {
                continue;
            };
            // A greedy match may run into a following upper-case word: cut it at the
            // country's length.
            let mut chars = Vec::with_capacity(len);
            let mut end = m.start();
            for (i, &b) in candidate.iter().enumerate() {
                if chars.len() == len {
                    break;
                }
                if b != b' ' {
                    chars.push(b);
                }
                end = m.start() + i + 1;
            }
            if chars.len() != len || !stands_alone(bytes, m.start(), end) {
                continue;
            }
            if mod97_valid(&chars) {
                out.push(Finding::new(PiiKind::Iban, m.start()..end, 1.0));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        IbanRecognizer::new().find(text, &mut out);
        out.iter().map(|f| &text[f.span.clone()]).collect()
    }

    #[test]
    fn finds_ibans() {
        assert_eq!(
            found("IBAN DE89370400440532013000."),
            ["DE89370400440532013000"]
        );
        assert_eq!(
            found("GB82 WEST 1234 5698 7654 32 please"),
            ["GB82 WEST 1234 5698 7654 32"]
        );
        assert_eq!(
            found("to GB82 WEST 1234 5698 7654 32 THANKS"),
            ["GB82 WEST 1234 5698 7654 32"]
        );
        assert_eq!(found("NL91ABNA0417164300"), ["NL91ABNA0417164300"]);
        assert_eq!(
            found("iban gb82west12345698765432"),
            ["gb82west12345698765432"]
        );
    }

    #[test]
    fn rejects_bad_ibans() {
        assert!(found("DE89370400440532013001").is_empty(), "mod-97 fails");
        assert!(
            found("DE8937040044053201300").is_empty(),
            "too short for DE"
        );
        assert!(
            found("XX89370400440532013000").is_empty(),
            "no such country"
        );
        assert!(
            found("ADE89370400440532013000").is_empty(),
            "glued to a letter"
        );
        assert!(found("gb82WEST12345698765432").is_empty(), "mixed case");
        assert!(found("de89370400440532013001").is_empty(), "mod-97 fails");
    }
}
