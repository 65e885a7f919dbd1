//! Token ids back to text (llama.cpp's `token_to_piece` and `detokenize`).

use crate::unicode::cpt_to_byte;
use crate::vocab::{attr, Vocab};
use crate::TokenizerKind;

/// `text` with every U+2581 made a space.
fn unescape_spaces(text: &str) -> Vec<u8> {
    text.replace('\u{2581}', " ").into_bytes()
}

/// Undoes the GPT-2 byte-to-unicode mapping (llama.cpp's `llama_decode_text`).
fn decode_byte_level(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match cpt_to_byte(c as u32) {
            Some(b) => out.push(b),
            None => {
                out.extend_from_slice(b"[UNK_BYTE_0x");
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text.as_bytes());
                out.push(b']');
            }
        }
    }
    out
}

/// The byte of a `<0xNN>` token (C's `strtol` on the two hex digits: stops at a non-digit).
fn byte_of(text: &str) -> u8 {
    let mut v = 0u32;
    for c in text.get(3..5).unwrap_or("").chars() {
        match c.to_digit(16) {
            Some(d) => v = v * 16 + d,
            None => break,
        }
    }
    v as u8
}

/// The bytes token `id` stands for. Control and unknown tokens are empty unless `special`.
pub(crate) fn piece(vocab: &Vocab, id: u32, special: bool) -> Vec<u8> {
    let Some(text) = vocab.texts.get(id as usize) else {
        return Vec::new();
    };
    let a = vocab.attr(id);
    let specialish = attr::UNKNOWN | attr::CONTROL;
    if !special && a & specialish != 0 {
        return Vec::new();
    }
    if a & (specialish | attr::USER_DEFINED) != 0 {
        return text.as_bytes().to_vec();
    }
    if a & attr::NORMAL != 0 {
        return match vocab.kind {
            TokenizerKind::Spm => unescape_spaces(text),
            TokenizerKind::Bpe if vocab.escape_whitespaces => unescape_spaces(text),
            TokenizerKind::Bpe => decode_byte_level(text),
        };
    }
    if a & attr::BYTE != 0 {
        return vec![byte_of(text)];
    }
    Vec::new()
}

/// llama.cpp's `detokenize(tokens, remove_special = false, unparse_special = special)`:
/// the pieces concatenated, the first one's leading space dropped when the vocabulary
/// adds a space prefix, and llama.cpp's `clean_spaces` pass where the vocabulary asks.
pub(crate) fn detokenize(vocab: &Vocab, ids: &[u32], special: bool) -> Vec<u8> {
    let mut text = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        let p = piece(vocab, id, special);
        let skip = usize::from(i == 0 && vocab.add_space_prefix && p.first() == Some(&b' '));
        text.extend_from_slice(&p[skip..]);
    }
    if vocab.clean_spaces {
        text = clean_spaces(&text);
    }
    text
}

/// llama.cpp's three clean-up passes: no space before `?!.,`, `" ' "` -> `"'"`, and no
/// space before `'s 'm 're 've`.
fn clean_spaces(t: &[u8]) -> Vec<u8> {
    if t.is_empty() {
        return Vec::new();
    }
    // Pass 1.
    let mut out = vec![t[0]];
    for i in 1..t.len() {
        let x = t[i];
        if t[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            out.pop();
        }
        out.push(x);
    }
    // Pass 2 (llama.cpp blanks the consumed space to NUL, so it never counts as "previous").
    let t: Vec<u8> = out;
    let mut out = vec![t[0]];
    let mut i = 1;
    let mut prev = t[0];
    while i < t.len() {
        let x = t[i];
        if x == b'\'' && i + 1 < t.len() && prev == b' ' && t[i + 1] == b' ' {
            out.pop();
            out.push(x);
            prev = 0;
            i += 2;
            continue;
        }
        out.push(x);
        prev = x;
        i += 1;
    }
    // Pass 3.
    let t: Vec<u8> = out;
    let mut out = vec![t[0]];
    for i in 1..t.len() {
        let x = t[i];
        if t[i - 1] == b' ' && x == b'\'' && i + 1 < t.len() {
            let x1 = t[i + 1];
            let drop = match x1 {
                b's' | b'm' => true,
                b't' | b'd' => false,
                _ => i + 2 < t.len() && matches!((x1, t[i + 2]), (b'r', b'e') | (b'v', b'e')),
            };
            if drop {
                out.pop();
            }
        }
        out.push(x);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup() {
        let c = |s: &str| String::from_utf8(clean_spaces(s.as_bytes())).unwrap();
        assert_eq!(c("Hello , world !"), "Hello, world!");
        assert_eq!(c("a ' b"), "a'b");
        assert_eq!(c("it 's we 're I 'd"), "it's we're I 'd");
    }

    #[test]
    fn hex_bytes() {
        assert_eq!(byte_of("<0x0A>"), 10);
        assert_eq!(byte_of("<0xFF>"), 255);
    }
}
