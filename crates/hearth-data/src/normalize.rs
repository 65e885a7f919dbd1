//! Text normalisation for exact dedup: Unicode NFKC, lower case, whitespace runs
//! collapsed to one space and trimmed. Two texts are exact duplicates when their
//! normalised forms are equal.

use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};

use crate::hash::hash_bytes;

/// The normalised form of `text` (NFKC, lower case, single spaces, trimmed).
pub fn normalize(text: &str) -> String {
    let nfkc: std::borrow::Cow<str> = match is_nfkc_quick(text.chars()) {
        IsNormalized::Yes => text.into(),
        _ => text.nfkc().collect::<String>().into(),
    };
    let mut out = String::with_capacity(nfkc.len());
    for word in nfkc.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        if word.is_ascii() {
            out.extend(word.chars().map(|c| c.to_ascii_lowercase()));
        } else {
            out.extend(word.chars().flat_map(char::to_lowercase));
        }
    }
    out
}

/// A 128-bit key of the normalised text: equal for exact duplicates, and with two
/// independent 64-bit halves, so unequal texts collide with negligible probability.
pub fn exact_key(normalized: &str) -> u128 {
    let b = normalized.as_bytes();
    (u128::from(hash_bytes(b, 0x5eed_0001)) << 64) | u128::from(hash_bytes(b, 0x5eed_0002))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_width_and_spacing_do_not_matter() {
        let a = normalize("  Hello\tWORLD\n\n ﬁne ");
        assert_eq!(a, "hello world fine");
        assert_eq!(normalize("ＨＥＬＬＯ　World"), "hello world");
        assert_eq!(exact_key(&a), exact_key(&normalize("hello world FINE")));
        assert_ne!(exact_key(&a), exact_key(&normalize("hello world fines")));
        assert_eq!(normalize("Straße ÉCOLE"), "straße école");
    }
}
