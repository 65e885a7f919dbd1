//! SentencePiece-style tokenization (llama.cpp's `llm_tokenizer_spm`): symbols start as
//! single characters and the adjacent pair whose concatenation is the highest-scoring
//! vocabulary entry is merged until none is left; leftovers fall back to byte tokens.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use crate::vocab::Vocab;
use crate::{Error, Result};

#[derive(Clone, Copy)]
struct Symbol {
    prev: Option<usize>,
    next: Option<usize>,
    start: usize,
    len: usize,
}

struct Bigram {
    left: usize,
    right: usize,
    score: f32,
    size: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    /// Highest score first; among equal scores, leftmost first.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then(other.left.cmp(&self.left))
    }
}

/// The byte-fallback token of byte `b`: `<0xNN>`, else the byte itself as a token.
pub(crate) fn byte_token(vocab: &Vocab, b: u8) -> Result<u32> {
    let hex = format!("<0x{b:02X}>");
    if let Some(id) = vocab.id(&hex) {
        return Ok(id);
    }
    let raw = [b];
    std::str::from_utf8(&raw)
        .ok()
        .and_then(|s| vocab.id(s))
        .ok_or(Error::MissingByteToken(b))
}

/// Tokenizes `text` (spaces already escaped to U+2581), appending to `out`.
pub(crate) fn tokenize<'t>(vocab: &Vocab, text: &'t str, out: &mut Vec<u32>) -> Result<()> {
    let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
    for (start, c) in text.char_indices() {
        let i = symbols.len();
        let len = c.len_utf8();
        symbols.push(Symbol {
            prev: i.checked_sub(1),
            next: if start + len == text.len() {
                None
            } else {
                Some(i + 1)
            },
            start,
            len,
        });
    }
    if symbols.is_empty() {
        return Ok(());
    }
    let mut queue = BinaryHeap::new();
    let mut rev_merge: HashMap<&'t str, (usize, usize)> = HashMap::new();
    let try_add = |symbols: &[Symbol],
                   queue: &mut BinaryHeap<Bigram>,
                   rev: &mut HashMap<&'t str, (usize, usize)>,
                   l: Option<usize>,
                   r: Option<usize>| {
        let (Some(l), Some(r)) = (l, r) else { return };
        let (sl, sr) = (symbols[l], symbols[r]);
        let piece = &text[sl.start..sl.start + sl.len + sr.len];
        if let Some(id) = vocab.id(piece) {
            queue.push(Bigram {
                left: l,
                right: r,
                score: vocab.scores[id as usize],
                size: piece.len(),
            });
            rev.insert(piece, (l, r));
        }
    };
    for i in 1..symbols.len() {
        try_add(&symbols, &mut queue, &mut rev_merge, Some(i - 1), Some(i));
    }
    while let Some(bg) = queue.pop() {
        let (l, r) = (symbols[bg.left], symbols[bg.right]);
        if l.len == 0 || r.len == 0 || l.len + r.len != bg.size {
            continue;
        }
        symbols[bg.left].len += r.len;
        symbols[bg.right].len = 0;
        symbols[bg.left].next = r.next;
        if let Some(n) = r.next {
            symbols[n].prev = Some(bg.left);
        }
        let left = symbols[bg.left];
        try_add(
            &symbols,
            &mut queue,
            &mut rev_merge,
            left.prev,
            Some(bg.left),
        );
        try_add(
            &symbols,
            &mut queue,
            &mut rev_merge,
            Some(bg.left),
            left.next,
        );
    }
    let mut i = Some(0);
    while let Some(k) = i {
        resegment(vocab, text, &symbols, &rev_merge, k, out)?;
        i = symbols[k].next;
    }
    Ok(())
}

fn resegment(
    vocab: &Vocab,
    text: &str,
    symbols: &[Symbol],
    rev_merge: &HashMap<&str, (usize, usize)>,
    k: usize,
    out: &mut Vec<u32>,
) -> Result<()> {
    let s = symbols[k];
    let piece = &text[s.start..s.start + s.len];
    if let Some(id) = vocab.id(piece) {
        out.push(id);
        return Ok(());
    }
    match rev_merge.get(piece) {
        Some(&(l, r)) => {
            resegment(vocab, text, symbols, rev_merge, l, out)?;
            resegment(vocab, text, symbols, rev_merge, r, out)
        }
        None => {
            for &b in piece.as_bytes() {
                out.push(byte_token(vocab, b)?);
            }
            Ok(())
        }
    }
}
