//! Payment card numbers: issuer prefix and length, Luhn check digit.

use regex::bytes::Regex;

use crate::finding::{Finding, PiiKind};
use crate::recognizer::{digit_runs, stands_alone, Recognizer};

/// Finds card numbers of 12–19 digits, written solid or in groups split by one kind of
/// separator (`4111 1111 1111 1111`, `3782-822463-10005`), whose issuer prefix is known,
/// whose length fits that issuer and whose Luhn check digit holds. Score 0.95.
#[derive(Debug, Clone)]
pub struct CardRecognizer {
    pattern: Regex,
}

impl Default for CardRecognizer {
    fn default() -> Self {
        Self::new()
    }
}

impl CardRecognizer {
    /// The recognizer with its pattern compiled.
    pub fn new() -> Self {
        // ASCII digits only (`(?-u)`): the pattern then matches only inside the digit
        // runs that `find` hands it.
        let pattern =
            r"(?-u)\d{4}[ -]\d{6}[ -]\d{4,5}|\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?|\d{12,19}";
        CardRecognizer {
            pattern: Regex::new(pattern).expect("built-in pattern compiles"),
        }
    }
}

/// Allowed lengths for the issuer whose prefix `digits` starts with, if any is known.
/// Prefixes from the issuers' published IIN ranges; JCB is accepted over all of `35`.
fn issuer_lengths(digits: &[u8]) -> Option<std::ops::RangeInclusive<usize>> {
    let prefix = |n: usize| digits[..n].iter().fold(0u32, |a, &d| a * 10 + u32::from(d));
    let (p2, p3, p4) = (prefix(2), prefix(3), prefix(4));
    let lengths = match p2 {
        40..=49 => 13..=19, // Visa (13, 16, 19: checked below)
        51..=55 => 16..=16, // Mastercard
        22..=27 if (2221..=2720).contains(&p4) => 16..=16,
        22 if (2200..=2204).contains(&p4) => 16..=16, // Mir
        34 | 37 => 15..=15,                           // American Express
        60 if p4 == 6011 => 16..=19,                  // Discover
        64 if p3 >= 644 => 16..=19,
        65 => 16..=19,
        30 if p3 <= 305 => 14..=19, // Diners Club
        36 | 38 | 39 => 14..=19,
        35 => 16..=19, // JCB
        21 if p4 == 2131 => 15..=15,
        18 if p4 == 1800 => 15..=15,
        62 => 16..=19,           // UnionPay
        50 | 56..=58 => 12..=19, // Maestro
        63 if p4 == 6304 => 12..=19,
        67 if p4 == 6759 || (6761..=6763).contains(&p4) => 12..=19,
        _ => return None,
    };
    if p2 / 10 == 4 && ![13, 16, 19].contains(&digits.len()) {
        return None;
    }
    Some(lengths)
}

/// True when the Luhn checksum of `digits` (values 0..=9) is valid.
pub(crate) fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The digits of a candidate, or `None` if it mixes separators.
fn candidate_digits(candidate: &[u8]) -> Option<Vec<u8>> {
    let mut separator = None;
    let mut digits = Vec::with_capacity(19);
    for &b in candidate {
        if b.is_ascii_digit() {
            digits.push(b - b'0');
        } else if *separator.get_or_insert(b) != b {
            return None;
        }
    }
    Some(digits)
}

impl Recognizer for CardRecognizer {
    fn kinds(&self) -> &'static [PiiKind] {
        &[PiiKind::CreditCard]
    }

    fn find(&self, text: &str, out: &mut Vec<Finding>) {
        let bytes = text.as_bytes();
        // Every match lies in a run of digits, spaces and dashes with 12 or more digits,
        // so the pattern runs only there (the same matches as over the whole text).
        for run in digit_runs(bytes, |b| b == b' ' || b == b'-', 12) {
            for m in self.pattern.find_iter(&bytes[run.clone()]) {
                let (start, end) = (run.start + m.start(), run.start + m.end());
                if !stands_alone(bytes, start, end) {
                    continue;
                }
                let Some(digits) = candidate_digits(m.as_bytes()) else {
                    continue;
                };
                let fits = issuer_lengths(&digits).is_some_and(|l| l.contains(&digits.len()));
                if fits && luhn_valid(&digits) {
                    out.push(Finding::new(PiiKind::CreditCard, start..end, 0.95));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        CardRecognizer::new().find(text, &mut out);
        out.iter().map(|f| &text[f.span.clone()]).collect()
    }

    #[test]
    fn finds_valid_cards() {
        assert_eq!(found("card 4111111111111111 ok"), ["4111111111111111"]);
        assert_eq!(found("4111 1111 1111 1111."), ["4111 1111 1111 1111"]);
        assert_eq!(found("amex 3782-822463-10005"), ["3782-822463-10005"]);
        assert_eq!(
            found("mc 5555555555554444, diners 30569309025904"),
            ["5555555555554444", "30569309025904"]
        );
        assert_eq!(found("银联卡6212233079244024。"), ["6212233079244024"]);
        assert_eq!(found("maestro 502009281598"), ["502009281598"]);
    }

    #[test]
    fn rejects_hard_negatives() {
        assert!(found("4111111111111112").is_empty(), "Luhn fails");
        assert!(
            found("order 94111111111111111").is_empty(),
            "inside a longer run"
        );
        assert!(found("4111 1111-1111 1111").is_empty(), "mixed separators");
        assert!(found("9111111111111111").is_empty(), "unknown issuer");
        assert!(found("41111111111111").is_empty(), "Visa of 14 digits");
        assert!(found("ref 2024-4111111111111111").is_empty());
        assert!(found("0000000000000000").is_empty());
    }

    #[test]
    fn luhn() {
        assert!(luhn_valid(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]));
        assert!(!luhn_valid(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 4]));
    }
}
