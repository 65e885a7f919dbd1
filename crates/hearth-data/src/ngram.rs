//! A backoff n-gram language model (the ARPA semantics KenLM uses), stored compactly and
//! scored per document as CCNet does.
//!
//! [`BackoffModel`] is the plain form (words and n-grams as id lists): what training and
//! the ARPA reader produce and the ARPA writer consumes. [`NgramLm`] is the compact form
//! used for scoring and saved as `lm.bin`: the vocabulary, unigram log-probabilities and
//! backoffs indexed by word id, and for each higher order a sorted array of 64-bit n-gram
//! hashes beside flat `f32` arrays of log10 probabilities and backoffs (found by binary
//! search). Hashes stand for n-grams, as in KenLM's probing tables: a collision between
//! two of the model's n-grams is detected when the model is built (an error); an n-gram
//! outside the model colliding with one inside (odds about `n / 2^64`) is not.
//!
//! ## `lm.bin`, version 1 (all integers and floats little-endian)
//!
//! ```text
//! magic "HEARTHLM" | u32 version = 1 | u32 order | u32 vocab size V
//! V × (u32 byte length, UTF-8 word)            ids 0..V in order; <unk>, <s>, </s> present
//! V × f32 log10 p(w) | V × f32 log10 backoff(w)
//! for n in 2..=order:
//!   u64 count C | C × u64 hash (strictly ascending) | C × f32 log10 p
//!   | C × f32 log10 backoff (absent for n = order)
//! magic "HEARTHLM"                             (trailer: a truncated file fails here)
//! ```
//!
//! The hash of `w1..wn` is `extend(...extend(SEED, w1)..., wn)` with [`extend`], so a
//! scorer extends a context's hash by one word without rehashing it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::ccnet::{ccnet_normalize, word_tokens};
use crate::error::{Error, Result};

/// The unknown-word token.
pub const UNK: &str = "<unk>";
/// The sentence-start token.
pub const BOS: &str = "<s>";
/// The sentence-end token.
pub const EOS: &str = "</s>";
/// The magic bytes opening (and closing) an `lm.bin` file.
pub const MAGIC: &[u8; 8] = b"HEARTHLM";
/// The `lm.bin` format version this build reads and writes.
pub const VERSION: u32 = 1;
/// The largest order a model may have.
pub const MAX_ORDER: usize = 10;
/// log10 probability KenLM gives `<unk>` when a model lacks it.
const UNK_LOG10: f32 = -100.0;

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// The hash of an n-gram extended by word `id` (see the module docs).
pub fn extend(h: u64, id: u32) -> u64 {
    let mut z = h ^ (u64::from(id) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The hash of the n-gram `ids`.
pub fn ngram_hash(ids: &[u32]) -> u64 {
    ids.iter().fold(SEED, |h, &id| extend(h, id))
}

/// One n-gram of a backoff model.
#[derive(Debug, Clone, PartialEq)]
pub struct NgramEntry {
    /// Word ids, oldest first.
    pub words: Vec<u32>,
    /// log10 p(last word | the others).
    pub prob: f32,
    /// log10 backoff weight of the n-gram as a context (0 when none).
    pub backoff: f32,
}

/// A backoff model in plain form: `orders[n - 1]` holds the n-grams of order `n`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackoffModel {
    /// Words by id.
    pub vocab: Vec<String>,
    /// The n-grams of each order (unigrams first).
    pub orders: Vec<Vec<NgramEntry>>,
}

struct Level {
    keys: Vec<u64>,
    prob: Vec<f32>,
    backoff: Vec<f32>,
}

impl Level {
    fn find(&self, h: u64) -> Option<usize> {
        self.keys.binary_search(&h).ok()
    }
}

/// A compact n-gram model for scoring (see the module docs).
pub struct NgramLm {
    vocab: Vec<String>,
    ids: HashMap<String, u32>,
    unk: u32,
    bos: u32,
    eos: u32,
    uni_prob: Vec<f32>,
    uni_backoff: Vec<f32>,
    /// Orders 2..=order.
    higher: Vec<Level>,
}

impl std::fmt::Debug for NgramLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NgramLm")
            .field("order", &self.order())
            .field("vocab", &self.vocab.len())
            .finish()
    }
}

fn bad(path: &Path, what: impl Into<String>) -> Error {
    Error::Model {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

impl NgramLm {
    /// The compact form of `m`; `<unk>` is added (log10 p = -100, as KenLM does) when
    /// missing. `origin` names the model in errors.
    pub fn from_model(m: &BackoffModel, origin: &Path) -> Result<NgramLm> {
        let order = m.orders.len();
        if order == 0 || order > MAX_ORDER {
            return Err(bad(
                origin,
                format!("order {order} is not in 1..={MAX_ORDER}"),
            ));
        }
        let mut vocab = m.vocab.clone();
        let mut ids: HashMap<String, u32> = HashMap::with_capacity(vocab.len());
        for (i, w) in vocab.iter().enumerate() {
            if ids.insert(w.clone(), i as u32).is_some() {
                return Err(bad(origin, format!("word `{w}` appears twice")));
            }
        }
        let mut uni_prob = vec![UNK_LOG10; vocab.len()];
        let mut uni_backoff = vec![0.0; vocab.len()];
        for e in &m.orders[0] {
            let id = e.words.first().copied().unwrap_or(u32::MAX) as usize;
            if e.words.len() != 1 || id >= vocab.len() {
                return Err(bad(origin, "a unigram names no vocabulary word"));
            }
            uni_prob[id] = e.prob;
            uni_backoff[id] = e.backoff;
        }
        let mut special = |w: &str, vocab: &mut Vec<String>, p: &mut Vec<f32>, b: &mut Vec<f32>| {
            if let Some(&id) = ids.get(w) {
                return id;
            }
            vocab.push(w.to_string());
            p.push(if w == BOS { -99.0 } else { UNK_LOG10 });
            b.push(0.0);
            let id = (vocab.len() - 1) as u32;
            ids.insert(w.to_string(), id);
            id
        };
        let unk = special(UNK, &mut vocab, &mut uni_prob, &mut uni_backoff);
        let bos = special(BOS, &mut vocab, &mut uni_prob, &mut uni_backoff);
        let eos = special(EOS, &mut vocab, &mut uni_prob, &mut uni_backoff);
        let mut higher = Vec::with_capacity(order - 1);
        for (n0, entries) in m.orders.iter().enumerate().skip(1) {
            let n = n0 + 1;
            let mut rows: Vec<(u64, f32, f32)> = Vec::with_capacity(entries.len());
            for e in entries {
                if e.words.len() != n || e.words.iter().any(|&w| w as usize >= vocab.len()) {
                    return Err(bad(
                        origin,
                        format!("a {n}-gram has the wrong length or ids"),
                    ));
                }
                rows.push((ngram_hash(&e.words), e.prob, e.backoff));
            }
            rows.sort_by_key(|r| r.0);
            if rows.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err(bad(
                    origin,
                    format!("two {n}-grams share a hash (or one appears twice)"),
                ));
            }
            let last = n == order;
            higher.push(Level {
                keys: rows.iter().map(|r| r.0).collect(),
                prob: rows.iter().map(|r| r.1).collect(),
                backoff: if last {
                    Vec::new()
                } else {
                    rows.iter().map(|r| r.2).collect()
                },
            });
        }
        Ok(NgramLm {
            vocab,
            ids,
            unk,
            bos,
            eos,
            uni_prob,
            uni_backoff,
            higher,
        })
    }

    /// The model's order.
    pub fn order(&self) -> usize {
        self.higher.len() + 1
    }

    /// The vocabulary, by id.
    pub fn vocab(&self) -> &[String] {
        &self.vocab
    }

    /// The id of `word` (`<unk>`'s id for unknown words).
    pub fn id(&self, word: &str) -> u32 {
        self.ids.get(word).copied().unwrap_or(self.unk)
    }

    fn backoff_of(&self, ctx: &[u32], h: u64) -> f32 {
        match ctx.len() {
            1 => self.uni_backoff[ctx[0] as usize],
            n => {
                let level = &self.higher[n - 2];
                level.find(h).map_or(0.0, |i| level.backoff[i])
            }
        }
    }

    /// log10 p(`word` | `context`), `context` oldest first (only its last `order - 1`
    /// words count), with backoff as in ARPA models.
    pub fn log10_prob(&self, context: &[u32], word: u32) -> f32 {
        let max_ctx = context.len().min(self.higher.len());
        let mut bo = 0.0f32;
        for c in (1..=max_ctx).rev() {
            let ctx = &context[context.len() - c..];
            let hc = ngram_hash(ctx);
            let level = &self.higher[c - 1];
            if let Some(i) = level.find(extend(hc, word)) {
                return bo + level.prob[i];
            }
            bo += self.backoff_of(ctx, hc);
        }
        bo + self.uni_prob[word as usize]
    }

    /// KenLM's `score(sentence, bos=True, eos=True)` of word tokens: the log10
    /// probability of the words and `</s>` after `<s>`.
    pub fn sentence_log10(&self, words: &[&str]) -> f64 {
        let keep = self.order() - 1;
        let mut hist: Vec<u32> = Vec::with_capacity(keep + 1);
        hist.push(self.bos);
        let mut total = 0.0f64;
        for w in words.iter().map(|w| self.id(w)).chain([self.eos]) {
            total += f64::from(self.log10_prob(&hist, w));
            hist.push(w);
            if hist.len() > keep {
                hist.remove(0);
            }
        }
        total
    }

    /// A document's summed log10 probability and token count (words + one `</s>` per
    /// line), CCNet's way: each `\n`-separated line normalised, tokenised and scored as a
    /// sentence.
    pub fn document_log10(&self, text: &str) -> (f64, u64) {
        let mut log10 = 0.0;
        let mut tokens = 0u64;
        for line in text.split('\n') {
            let norm = ccnet_normalize(line);
            let words = word_tokens(&norm);
            log10 += self.sentence_log10(&words);
            tokens += words.len() as u64 + 1;
        }
        (log10, tokens)
    }

    /// A document's perplexity as CCNet reports it: `10^(-log10 p / tokens)`.
    pub fn perplexity(&self, text: &str) -> f64 {
        let (log10, tokens) = self.document_log10(text);
        10f64.powf(-log10 / tokens.max(1) as f64)
    }
}

impl crate::perplexity::Scorer for NgramLm {
    fn perplexity(&self, texts: &[&str]) -> Result<Vec<f32>> {
        use rayon::prelude::*;
        Ok(texts
            .par_iter()
            .map(|t| NgramLm::perplexity(self, t) as f32)
            .collect())
    }
}

/// Reads a model: `lm.bin` (by its magic bytes) or an ARPA file (anything else).
pub fn load_lm(path: &Path) -> Result<NgramLm> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
    if bytes.starts_with(MAGIC) {
        NgramLm::from_bytes(&bytes, path)
    } else {
        let text = String::from_utf8(bytes)
            .map_err(|e| bad(path, format!("neither lm.bin nor ARPA text: {e}")))?;
        NgramLm::from_model(&crate::arpa::parse_arpa(&text, path)?, path)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: PathBuf,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(bad(
                &self.path,
                format!("truncated: {what} at byte {} needs {n} bytes", self.pos),
            ));
        };
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(a))
    }
    fn count(&mut self, what: &str, width: usize) -> Result<usize> {
        let n = self.u64(what)?;
        let left = (self.bytes.len() - self.pos) as u64;
        if n.saturating_mul(width as u64) > left {
            return Err(bad(&self.path, format!("{what} {n} does not fit the file")));
        }
        Ok(n as usize)
    }
    fn u64s(&mut self, n: usize, what: &str) -> Result<Vec<u64>> {
        let b = self.take(n * 8, what)?;
        Ok(b.chunks_exact(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                u64::from_le_bytes(a)
            })
            .collect())
    }
    fn f32s(&mut self, n: usize, what: &str) -> Result<Vec<f32>> {
        let b = self.take(n * 4, what)?;
        Ok(b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

impl NgramLm {
    /// The model as `lm.bin` bytes (see the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.order() as u32).to_le_bytes());
        out.extend_from_slice(&(self.vocab.len() as u32).to_le_bytes());
        for w in &self.vocab {
            out.extend_from_slice(&(w.len() as u32).to_le_bytes());
            out.extend_from_slice(w.as_bytes());
        }
        let f32s =
            |out: &mut Vec<u8>, v: &[f32]| v.iter().for_each(|x| out.extend(x.to_le_bytes()));
        f32s(&mut out, &self.uni_prob);
        f32s(&mut out, &self.uni_backoff);
        for l in &self.higher {
            out.extend_from_slice(&(l.keys.len() as u64).to_le_bytes());
            l.keys.iter().for_each(|k| out.extend(k.to_le_bytes()));
            f32s(&mut out, &l.prob);
            f32s(&mut out, &l.backoff);
        }
        out.extend_from_slice(MAGIC);
        out
    }

    /// Writes `lm.bin` to `path` (through a temporary name).
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::output::write_atomic(path, &self.to_bytes())
    }

    /// Parses `lm.bin` bytes read from `path` (named in errors).
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<NgramLm> {
        let mut r = Reader {
            bytes,
            pos: 0,
            path: path.to_path_buf(),
        };
        if r.take(8, "magic")? != MAGIC {
            return Err(bad(path, "not an lm.bin file (bad magic bytes)"));
        }
        let version = r.u32("version")?;
        if version != VERSION {
            return Err(bad(
                path,
                format!("lm.bin version {version}; this build reads version {VERSION}"),
            ));
        }
        let order = r.u32("order")? as usize;
        if order == 0 || order > MAX_ORDER {
            return Err(bad(
                path,
                format!("order {order} is not in 1..={MAX_ORDER}"),
            ));
        }
        let v = r.u32("vocabulary size")? as usize;
        let mut vocab = Vec::with_capacity(v.min(1 << 24));
        for i in 0..v {
            let len = r.u32("word length")? as usize;
            let w = std::str::from_utf8(r.take(len, "word")?)
                .map_err(|_| bad(path, format!("word {i} is not UTF-8")))?;
            vocab.push(w.to_string());
        }
        let uni_prob = r.f32s(v, "unigram probabilities")?;
        let uni_backoff = r.f32s(v, "unigram backoffs")?;
        let mut higher = Vec::with_capacity(order - 1);
        for n in 2..=order {
            let c = r.count("n-gram count", 12)?;
            let keys = r.u64s(c, "n-gram hashes")?;
            if keys.windows(2).any(|w| w[0] >= w[1]) {
                return Err(bad(
                    path,
                    format!("{n}-gram hashes are not strictly ascending"),
                ));
            }
            let prob = r.f32s(c, "n-gram probabilities")?;
            let backoff = if n < order {
                r.f32s(c, "n-gram backoffs")?
            } else {
                Vec::new()
            };
            higher.push(Level {
                keys,
                prob,
                backoff,
            });
        }
        if r.take(8, "trailer")? != MAGIC || r.pos != bytes.len() {
            return Err(bad(
                path,
                "bad trailer: the file is damaged or has extra bytes",
            ));
        }
        let ids: HashMap<String, u32> = vocab
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as u32))
            .collect();
        let find = |w: &str| {
            ids.get(w)
                .copied()
                .ok_or_else(|| bad(path, format!("the vocabulary lacks {w}")))
        };
        Ok(NgramLm {
            unk: find(UNK)?,
            bos: find(BOS)?,
            eos: find(EOS)?,
            vocab,
            ids,
            uni_prob,
            uni_backoff,
            higher,
        })
    }
}
