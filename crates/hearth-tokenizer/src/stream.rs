//! Incremental decoding for streaming output.

use crate::Tokenizer;

/// Turns a stream of token ids into text, holding back bytes of a UTF-8 sequence that
/// later tokens may complete. Each token contributes [`Tokenizer::token_bytes`]; unlike
/// [`Tokenizer::decode`], no leading space is dropped and no clean-up pass runs (as
/// llama.cpp's per-token streaming).
pub struct StreamDecoder<'a> {
    tok: &'a Tokenizer,
    special: bool,
    pending: Vec<u8>,
}

impl std::fmt::Debug for StreamDecoder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamDecoder")
            .field("pending", &self.pending)
            .finish()
    }
}

/// Length of the longest suffix of `b` that is an incomplete (but so far valid) UTF-8
/// sequence.
fn incomplete_tail(b: &[u8]) -> usize {
    for back in 1..=3.min(b.len()) {
        let c = b[b.len() - back];
        if c & 0xC0 == 0x80 {
            continue; // continuation byte: look further back for the lead
        }
        let need = match c {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return 0,
        };
        if need <= back {
            return 0;
        }
        // Still possibly valid so far?
        return if std::str::from_utf8(&pad(&b[b.len() - back..], need)).is_ok() {
            back
        } else {
            0
        };
    }
    0
}

/// `prefix` completed with the smallest continuation bytes that keep it valid, if any.
fn pad(prefix: &[u8], need: usize) -> Vec<u8> {
    let mut v = prefix.to_vec();
    while v.len() < need {
        // Pick a continuation byte allowed right after the lead (E0/ED/F0/F4 restrict it).
        let c = match (v.len(), v[0]) {
            (1, 0xE0) => 0xA0,
            (1, 0xF0) => 0x90,
            _ => 0x80,
        };
        v.push(c);
    }
    v
}

impl<'a> StreamDecoder<'a> {
    /// A decoder with nothing pending; control tokens produce no text.
    pub fn new(tok: &'a Tokenizer) -> Self {
        Self::with_special(tok, false)
    }

    /// A decoder that renders control tokens as their text when `special` is true.
    pub fn with_special(tok: &'a Tokenizer, special: bool) -> Self {
        Self {
            tok,
            special,
            pending: Vec::new(),
        }
    }

    /// Adds one token; returns the text that is now complete (possibly empty).
    pub fn push(&mut self, id: u32) -> String {
        self.pending.extend(self.tok.token_bytes(id, self.special));
        let keep = incomplete_tail(&self.pending);
        let ready: Vec<u8> = self.pending.drain(..self.pending.len() - keep).collect();
        String::from_utf8_lossy(&ready).into_owned()
    }

    /// Flushes whatever is held back (an incomplete sequence becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.pending);
        String::from_utf8_lossy(&rest).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails() {
        assert_eq!(incomplete_tail(b"ab"), 0);
        assert_eq!(incomplete_tail("é".as_bytes()), 0);
        assert_eq!(incomplete_tail(&"é".as_bytes()[..1]), 1);
        assert_eq!(incomplete_tail(&"🦙".as_bytes()[..3]), 3);
        assert_eq!(incomplete_tail(&"🦙".as_bytes()[..2]), 2);
        assert_eq!(incomplete_tail(b"a\xFF"), 0);
        assert_eq!(incomplete_tail(b"a\xED\xA0"), 0); // surrogate: never valid
    }
}
