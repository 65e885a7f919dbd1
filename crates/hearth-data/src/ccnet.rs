//! CCNet's text normalisation (`cc_net/text_normalizer.py`, `normalize` with its defaults)
//! and the word tokens our n-gram models count.
//!
//! Normalisation, in CCNet's order: trim; lowercase; strip accents (NFD, drop combining
//! marks); every Unicode digit to `0`; CCNet's table of Unicode punctuation to ASCII
//! (`，` → `,`, `“` → `"`, `—` → ` - `, ...); drop control characters (U+0000–U+001F,
//! U+007F–U+009F). Then, beyond CCNet, runs of whitespace become one space (the
//! replacements above can leave double spaces; tokens are the same either way).
//!
//! Tokens: CCNet splits normalised lines with a SentencePiece model before KenLM. We have
//! no SentencePiece model here, so a normalised line is split on whitespace and every
//! ASCII punctuation character becomes a token of its own (`"hello, world."` → `hello`
//! `,` `world` `.`). Perplexities are therefore comparable between our models, not with
//! CCNet's published numbers.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// CCNet's `UNICODE_PUNCT` table.
const UNICODE_PUNCT: [(char, &str); 34] = [
    ('，', ","),
    ('。', "."),
    ('、', ","),
    ('„', "\""),
    ('”', "\""),
    ('“', "\""),
    ('«', "\""),
    ('»', "\""),
    ('１', "\""),
    ('」', "\""),
    ('「', "\""),
    ('《', "\""),
    ('》', "\""),
    ('´', "'"),
    ('∶', ":"),
    ('：', ":"),
    ('？', "?"),
    ('！', "!"),
    ('（', "("),
    ('）', ")"),
    ('；', ";"),
    ('–', "-"),
    ('—', " - "),
    ('．', ". "),
    ('～', "~"),
    ('’', "'"),
    ('…', "..."),
    ('━', "-"),
    ('〈', "<"),
    ('〉', ">"),
    ('【', "["),
    ('】', "]"),
    ('％', "%"),
    ('►', "-"),
];

/// One line normalised as CCNet does (see the module docs).
pub fn ccnet_normalize(line: &str) -> String {
    let line = line.trim();
    if line.is_empty() {
        return String::new();
    }
    let lower = line.to_lowercase();
    let mut out = String::with_capacity(lower.len());
    for c in lower.nfd() {
        if is_combining_mark(c) {
            continue;
        }
        if c.is_numeric() {
            out.push('0');
        } else if let Some((_, rep)) = UNICODE_PUNCT.iter().find(|(u, _)| *u == c) {
            out.push_str(rep);
        } else if !(c <= '\u{1f}' || ('\u{7f}'..='\u{9f}').contains(&c)) {
            out.push(c);
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The word tokens of a normalised line: whitespace-separated, each ASCII punctuation
/// character a token of its own.
pub fn word_tokens(normalized: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for word in normalized.split_whitespace() {
        let mut start = 0;
        for (i, c) in word.char_indices() {
            if c.is_ascii_punctuation() {
                if start < i {
                    out.push(&word[start..i]);
                }
                out.push(&word[i..i + 1]);
                start = i + 1;
            }
        }
        if start < word.len() {
            out.push(&word[start..]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_ccnet() {
        assert_eq!(
            ccnet_normalize("  Héllo WÖRLD, 2024 “quoted”—ok…\u{7} "),
            "hello world, 0000 \"quoted\" - ok..."
        );
        assert_eq!(ccnet_normalize("   "), "");
        assert_eq!(ccnet_normalize("Ｎ°１２"), "ｎ°00");
    }

    #[test]
    fn punctuation_is_split_off() {
        assert_eq!(
            word_tokens("hello, world. it's (fine)"),
            ["hello", ",", "world", ".", "it", "'", "s", "(", "fine", ")"]
        );
        assert!(word_tokens("").is_empty());
    }
}
