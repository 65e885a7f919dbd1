//! Text normalisation for exact dedup: Unicode NFKC, lower case, whitespace runs
//! collapsed to one space and trimmed. Two texts are exact duplicates when their
//! normalised forms are equal.

use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};

use crate::hash::hash_bytes;

/// The normalised form of `text` (NFKC, lower case, single spaces, trimmed).
pub fn normalize(text: &str) -> String {
    if text.is_ascii() {
        return normalize_ascii(text.as_bytes());
    }
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

/// ASCII is already NFKC: copy word by word, lower-casing each in place.
fn normalize_ascii(bytes: &[u8]) -> String {
    if is_normal_ascii(bytes) {
        // Only ASCII bytes: this cannot fail.
        return String::from_utf8(bytes.to_vec()).unwrap_or_default();
    }
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    for word in bytes
        .split(|b| b.is_ascii_whitespace() || *b == 0x0b)
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(b' ');
        }
        let start = out.len();
        out.extend_from_slice(word);
        out[start..].make_ascii_lowercase();
    }
    // Only ASCII bytes were pushed, so this cannot fail; fall back to lossy for the type.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Whether ASCII `bytes` are already normal: no control bytes (so no whitespace but
/// spaces), no upper case, no leading, trailing or double space. One vectorisable pass
/// plus a SIMD search for double spaces.
fn is_normal_ascii(bytes: &[u8]) -> bool {
    let odd = bytes.iter().fold(false, |acc, &b| {
        acc | (b < 0x20) | (b.wrapping_sub(b'A') < 26) | (b == 0x7f)
    });
    !odd && bytes.first() != Some(&b' ')
        && bytes.last() != Some(&b' ')
        && memchr::memmem::find(bytes, b"  ").is_none()
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
        assert_eq!(normalize(" \x0b\x0cA\r\nb  "), "a b");
        assert_eq!(normalize(""), "");
        assert_eq!(normalize("already normal text."), "already normal text.");
        assert_eq!(normalize("two  spaces"), "two spaces");
        assert_eq!(normalize(" lead"), "lead");
        assert_eq!(normalize("trail "), "trail");
    }
}
