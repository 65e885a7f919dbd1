//! Splitting text on special-token texts before tokenizing (llama.cpp's
//! `tokenizer_st_partition`): each special token in turn, longest text first, cuts every
//! remaining text fragment at each of its occurrences, left to right.

use aho_corasick::AhoCorasick;

use crate::vocab::{attr, Vocab};

/// A piece of the input: text still to tokenize, or a special token already found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fragment {
    /// Byte range of the input.
    Text(usize, usize),
    /// A special token.
    Token(u32),
}

/// Finds which special tokens occur in a text at all, so the exact (but per-token) split
/// only runs for those. Vocabularies like Gemma's have thousands of special tokens.
pub(crate) struct SpecialFinder {
    ac: Option<AhoCorasick>,
}

impl SpecialFinder {
    /// Builds the finder over `vocab.special`.
    pub fn new(vocab: &Vocab) -> Self {
        let pats = vocab
            .special
            .iter()
            .map(|&id| vocab.texts[id as usize].as_bytes());
        Self {
            ac: AhoCorasick::new(pats).ok(),
        }
    }

    /// Marks, by position in `vocab.special`, the special tokens that occur in `text`.
    fn present(&self, vocab: &Vocab, text: &str) -> Vec<bool> {
        let n = vocab.special.len();
        match &self.ac {
            Some(ac) => {
                let mut seen = vec![false; n];
                for m in ac.find_overlapping_iter(text) {
                    seen[m.pattern().as_usize()] = true;
                }
                seen
            }
            None => vec![true; n],
        }
    }
}

/// C's `isspace` in the "C" locale.
fn c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// Splits `text` on special tokens. Without `parse_special`, control and unknown tokens
/// stay text; user-defined tokens are always split out.
pub(crate) fn partition(
    vocab: &Vocab,
    finder: &SpecialFinder,
    text: &str,
    parse_special: bool,
) -> Vec<Fragment> {
    if text.is_empty() {
        return Vec::new();
    }
    let bytes = text.as_bytes();
    let mut frags = vec![Fragment::Text(0, text.len())];
    let present = finder.present(vocab, text);
    for (k, &id) in vocab.special.iter().enumerate() {
        if !present[k] {
            continue;
        }
        let a = vocab.attr(id);
        if !parse_special && a & (attr::CONTROL | attr::UNKNOWN) != 0 {
            continue;
        }
        let tok = vocab.texts[id as usize].as_str();
        let mut next = Vec::with_capacity(frags.len() + 2);
        for frag in frags {
            let Fragment::Text(mut off, end) = frag else {
                next.push(frag);
                continue;
            };
            loop {
                let Some(rel) = text[off..end].find(tok) else {
                    if off < end {
                        next.push(Fragment::Text(off, end));
                    }
                    break;
                };
                let m = off + rel;
                if m > off {
                    let mut left_end = m;
                    if a & attr::LSTRIP != 0 {
                        while left_end > off && c_space(bytes[left_end - 1]) {
                            left_end -= 1;
                        }
                    }
                    if left_end > off {
                        next.push(Fragment::Text(off, left_end));
                    }
                }
                next.push(Fragment::Token(id));
                off = m + tok.len();
                if a & attr::RSTRIP != 0 {
                    while off < end && c_space(bytes[off]) {
                        off += 1;
                    }
                }
                if off >= end {
                    break;
                }
            }
        }
        frags = next;
    }
    frags
}
