//! The [`Recognizer`] trait and the boundary checks the recognizers share.

use crate::finding::{Finding, PiiKind};

/// Finds one family of personal data in a text.
///
/// Implementations append findings (byte spans into `text`) to `out`, in any order and
/// possibly overlapping each other; the [`Scanner`](crate::Scanner) resolves overlaps.
pub trait Recognizer: Send + Sync {
    /// The kinds this recognizer can report.
    fn kinds(&self) -> &'static [PiiKind];
    /// Appends the findings in `text` to `out`.
    fn find(&self, text: &str, out: &mut Vec<Finding>);
}

/// Letters, digits and `_`: bytes that glue a match to its neighbour.
pub(crate) fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Separators that continue a number when a digit stands on their other side
/// (`2023-13812345678`, `13812345678.5`, `12/345`).
fn is_number_joiner(b: u8) -> bool {
    matches!(b, b'-' | b'.' | b'/')
}

/// True when `bytes[start..end]` stands alone: no letter, digit or `_` touches it, and
/// it does not continue a longer number through a `-`, `.` or `/` followed by a digit.
/// Non-ASCII neighbours (CJK text, punctuation) count as boundaries.
pub(crate) fn stands_alone(bytes: &[u8], start: usize, end: usize) -> bool {
    if start > 0 {
        let before = bytes[start - 1];
        if is_word_byte(before) {
            return false;
        }
        if is_number_joiner(before) && start >= 2 && bytes[start - 2].is_ascii_digit() {
            return false;
        }
    }
    if end < bytes.len() {
        let after = bytes[end];
        if is_word_byte(after) {
            return false;
        }
        if is_number_joiner(after) && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
            return false;
        }
    }
    true
}

/// The maximal runs of bytes for which `in_run` holds that contain at least
/// `min_digits` ASCII digits, as byte ranges: where number-shaped matches can lie, found
/// with one cheap pass so that the patterns run only there.
pub(crate) fn digit_runs(
    bytes: &[u8],
    in_run: impl Fn(u8) -> bool,
    min_digits: usize,
) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() && !in_run(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let mut digits = 0;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || in_run(bytes[i])) {
            digits += usize::from(bytes[i].is_ascii_digit());
            i += 1;
        }
        if digits >= min_digits {
            runs.push(start..i);
        }
    }
    runs
}

/// Shannon entropy of `s` in bits per byte.
pub(crate) fn entropy_bits_per_byte(s: &[u8]) -> f32 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in s {
        counts[b as usize] += 1;
    }
    let n = s.len() as f32;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f32 / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stands_alone_rejects_glued_digits() {
        let t = b"x 123 y";
        assert!(stands_alone(t, 2, 5));
        let t = b"9123";
        assert!(!stands_alone(t, 1, 4));
        let t = b"2023-123 and 123.5";
        assert!(!stands_alone(t, 5, 8));
        assert!(!stands_alone(t, 13, 16));
        let t = "电话123，".as_bytes();
        assert!(stands_alone(t, 6, 9));
        let t = b"end 123.";
        assert!(stands_alone(t, 4, 7));
    }

    #[test]
    fn entropy_of_uniform_and_constant() {
        assert_eq!(entropy_bits_per_byte(b"aaaa"), 0.0);
        assert!((entropy_bits_per_byte(b"abcd") - 2.0).abs() < 1e-6);
    }
}
