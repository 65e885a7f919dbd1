//! Byte-level BPE (llama.cpp's `llm_tokenizer_bpe_session`): pre-tokenized words are
//! byte-encoded, then the adjacent pair with the lowest merge rank is merged until no
//! ranked pair is left.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::pretokenize::PreTokenizer;
use crate::unicode::BYTE_TO_CPT;
use crate::vocab::Vocab;
use crate::Result;

#[derive(Clone, Copy)]
struct Symbol {
    prev: Option<usize>,
    next: Option<usize>,
    start: usize,
    len: usize,
}

#[derive(PartialEq, Eq)]
struct Bigram {
    left: usize,
    right: usize,
    rank: u32,
    size: usize,
}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    /// Lowest rank first; among equal ranks, leftmost first (reversed for the max-heap).
    fn cmp(&self, other: &Self) -> Ordering {
        other.rank.cmp(&self.rank).then(other.left.cmp(&self.left))
    }
}

/// GPT-2 byte-to-unicode encoding of `word`.
fn byte_encode(word: &str) -> String {
    word.bytes()
        .filter_map(|b| char::from_u32(BYTE_TO_CPT[b as usize]))
        .collect()
}

/// Tokenizes `text` (one fragment between special tokens), appending to `out`.
pub(crate) fn tokenize(
    vocab: &Vocab,
    pre: &PreTokenizer,
    text: &str,
    out: &mut Vec<u32>,
) -> Result<()> {
    let Some(cfg) = vocab.pre.as_ref() else {
        return Ok(());
    };
    let mut symbols: Vec<Symbol> = Vec::new();
    let mut queue = BinaryHeap::new();
    for raw in pre.split(text)? {
        let word = if cfg.byte_encode {
            byte_encode(raw)
        } else {
            raw.to_string()
        };
        symbols.clear();
        queue.clear();
        let whole = (cfg.ignore_merges
            || (cfg.gemma4_newlines && word.bytes().all(|b| b == b'\n')))
            && vocab.id(&word).is_some();
        if whole {
            symbols.push(Symbol {
                prev: None,
                next: None,
                start: 0,
                len: word.len(),
            });
        } else {
            for (start, c) in word.char_indices() {
                let i = symbols.len();
                let len = c.len_utf8();
                symbols.push(Symbol {
                    prev: i.checked_sub(1),
                    next: if start + len == word.len() {
                        None
                    } else {
                        Some(i + 1)
                    },
                    start,
                    len,
                });
            }
        }
        let add = |symbols: &[Symbol],
                   queue: &mut BinaryHeap<Bigram>,
                   l: Option<usize>,
                   r: Option<usize>| {
            let (Some(l), Some(r)) = (l, r) else { return };
            let (sl, sr) = (symbols[l], symbols[r]);
            let a = &word[sl.start..sl.start + sl.len];
            let b = &word[sr.start..sr.start + sr.len];
            if let Some(rank) = vocab.rank(a, b) {
                queue.push(Bigram {
                    left: l,
                    right: r,
                    rank,
                    size: sl.len + sr.len,
                });
            }
        };
        for i in 1..symbols.len() {
            add(&symbols, &mut queue, Some(i - 1), Some(i));
        }
        while let Some(bg) = queue.pop() {
            let (l, r) = (symbols[bg.left], symbols[bg.right]);
            // Symbols only grow rightwards from a fixed start, so an unchanged total size
            // means an unchanged text.
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
            add(&symbols, &mut queue, left.prev, Some(bg.left));
            add(&symbols, &mut queue, Some(bg.left), left.next);
        }
        for s in symbols.iter().filter(|s| s.len > 0) {
            let piece = &word[s.start..s.start + s.len];
            if let Some(id) = vocab.id(piece) {
                out.push(id);
                continue;
            }
            for b in piece.bytes() {
                let id = if cfg.byte_encode {
                    let one = [b];
                    std::str::from_utf8(&one).ok().and_then(|s| vocab.id(s))
                } else {
                    vocab.id(&format!("<0x{b:02X}>"))
                };
                out.extend(id);
            }
        }
    }
    Ok(())
}
