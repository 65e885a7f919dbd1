//! The teacher's top-k next-token distribution at every target position, computed once
//! with hearth-model's quantized inference path and kept on disk, so the teacher does
//! not run while the student trains.
//!
//! File layout (little-endian): the magic `HEARTHKD`, a `u32` version, a `u32` header
//! length and a JSON [`CacheHeader`]; then one record per target position, sequence
//! after sequence in data order, positions in order: `k` token ids (`u32`) and their
//! log-probabilities (`f32`) at temperature 1, highest first. Log-probabilities at T = 1
//! serve every temperature (dividing them by `T` and renormalising over the k tokens
//! gives the teacher's top k at `T`), so the cache does not depend on `--temperature`.
//! The header pins what the records depend on: the teacher file's hash, k, the
//! vocabulary size and a hash of the sequences (token ids and loss masks); a cache
//! that differs in any of them is rebuilt.

use std::path::Path;

use hearth_model::Transformer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::encode::Encoded;
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"HEARTHKD";
const VERSION: u32 = 1;
/// Logit rows computed at once from hidden states (bounds memory on long sequences).
const LOGIT_ROWS: usize = 64;

/// What a cache's records depend on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheHeader {
    /// The teacher's file name (for people; the hash decides).
    pub teacher_file: String,
    /// Hex sha256 of the teacher file.
    pub teacher_sha256: String,
    /// Vocabulary size of the teacher.
    pub vocab_size: usize,
    /// Tokens kept per position.
    pub k: usize,
    /// Temperature of the stored log-probabilities: always 1, so any distillation
    /// temperature can be applied later.
    pub logprob_temperature: f64,
    /// Hex sha256 of the sequences' lengths, token ids and loss masks.
    pub layout_sha256: String,
    /// Sequences.
    pub n_sequences: usize,
    /// Target positions (records).
    pub n_rows: usize,
}

impl CacheHeader {
    /// The header a cache of `data` under this teacher and `k` must have.
    pub fn expected(
        teacher_file: &str,
        teacher_sha256: &str,
        vocab_size: usize,
        k: usize,
        data: &[Encoded],
    ) -> Self {
        Self {
            teacher_file: teacher_file.to_string(),
            teacher_sha256: teacher_sha256.to_string(),
            vocab_size,
            k,
            logprob_temperature: 1.0,
            layout_sha256: layout_sha256(data),
            n_sequences: data.len(),
            n_rows: data.iter().map(Encoded::n_targets).sum(),
        }
    }

    /// Why a cache with this header cannot serve `want` (`None`: it can).
    pub fn mismatch(&self, want: &CacheHeader) -> Option<String> {
        let diff = |what: &str, a: &dyn std::fmt::Display, b: &dyn std::fmt::Display| {
            Some(format!("{what} {a} (cache) vs {b} (now)"))
        };
        if self.teacher_sha256 != want.teacher_sha256 {
            return diff(
                "teacher",
                &format!(
                    "{} sha256 {}",
                    self.teacher_file,
                    short(&self.teacher_sha256)
                ),
                &format!(
                    "{} sha256 {}",
                    want.teacher_file,
                    short(&want.teacher_sha256)
                ),
            );
        }
        if self.k != want.k {
            return diff("top-k", &self.k, &want.k);
        }
        if self.vocab_size != want.vocab_size {
            return diff("vocabulary", &self.vocab_size, &want.vocab_size);
        }
        if self.layout_sha256 != want.layout_sha256 || self.n_rows != want.n_rows {
            return diff(
                "data layout",
                &short(&self.layout_sha256),
                &short(&want.layout_sha256),
            );
        }
        None
    }
}

fn short(h: &str) -> &str {
    &h[..h.len().min(12)]
}

/// Hex sha256 of the sequences' lengths, token ids and masks.
pub fn layout_sha256(data: &[Encoded]) -> String {
    let mut h = Sha256::new();
    for e in data {
        h.update((e.tokens.len() as u64).to_le_bytes());
        for t in &e.tokens {
            h.update(t.to_le_bytes());
        }
        let mask: Vec<u8> = e.mask.iter().map(|&m| m as u8).collect();
        h.update(&mask);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The rows of positions that carry loss in `e`: row `i − 1` predicts token `i`.
pub fn target_rows(e: &Encoded) -> Vec<usize> {
    (1..e.tokens.len())
        .filter(|&i| e.mask.get(i).copied().unwrap_or(false))
        .map(|i| i - 1)
        .collect()
}

/// The teacher's top-k rows of every sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct TopKCache {
    /// What the records depend on.
    pub header: CacheHeader,
    ids: Vec<u32>,
    logp: Vec<f32>,
    /// First record of each sequence, and the total at the end.
    offsets: Vec<usize>,
}

impl TopKCache {
    /// Runs `teacher` over `data` and keeps its `k` most likely next tokens at every
    /// target position; `progress(done, total)` after each sequence.
    pub fn build(
        teacher: &Transformer,
        header: CacheHeader,
        data: &[Encoded],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self> {
        let (k, vocab, d) = (
            header.k,
            teacher.config().vocab_size,
            teacher.config().d_model,
        );
        if k == 0 || k > vocab {
            return Err(Error::Config(format!(
                "top-k {k} must be between 1 and the vocabulary size {vocab}"
            )));
        }
        let mut ids = Vec::with_capacity(header.n_rows * k);
        let mut logp = Vec::with_capacity(header.n_rows * k);
        let mut kv = teacher.new_cache();
        for (s, e) in data.iter().enumerate() {
            let want = target_rows(e);
            kv.clear();
            let hidden = teacher.forward_hidden(&e.tokens, &mut kv, &want)?;
            for rows in hidden.chunks(LOGIT_ROWS * d) {
                let logits = teacher.logits(rows);
                for row in logits.chunks_exact(vocab) {
                    top_k(row, k, &mut ids, &mut logp);
                }
            }
            progress(s + 1, data.len());
        }
        Self::from_parts(header, ids, logp, data)
    }

    fn from_parts(
        header: CacheHeader,
        ids: Vec<u32>,
        logp: Vec<f32>,
        data: &[Encoded],
    ) -> Result<Self> {
        let mut offsets = Vec::with_capacity(data.len() + 1);
        let mut at = 0;
        for e in data {
            offsets.push(at);
            at += e.n_targets();
        }
        offsets.push(at);
        if at * header.k != ids.len() || ids.len() != logp.len() {
            return Err(Error::Config(format!(
                "top-k cache holds {} values, the data needs {at} rows of {}",
                ids.len(),
                header.k
            )));
        }
        Ok(Self {
            header,
            ids,
            logp,
            offsets,
        })
    }

    /// Sequence `seq`'s records: `(ids, log-probs)`, `k` per target position.
    pub fn rows(&self, seq: usize) -> (&[u32], &[f32]) {
        let k = self.header.k;
        let (a, b) = (self.offsets[seq] * k, self.offsets[seq + 1] * k);
        (&self.ids[a..b], &self.logp[a..b])
    }

    /// Writes the file (under a temporary name, then renamed).
    pub fn write(&self, path: &Path) -> Result<()> {
        let head = serde_json::to_vec(&self.header)
            .map_err(|e| Error::Config(format!("top-k cache header: {e}")))?;
        let k = self.header.k;
        let mut buf = Vec::with_capacity(16 + head.len() + self.ids.len() * 8);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&VERSION.to_le_bytes());
        buf.extend_from_slice(&(head.len() as u32).to_le_bytes());
        buf.extend_from_slice(&head);
        for (ids, lp) in self.ids.chunks_exact(k).zip(self.logp.chunks_exact(k)) {
            ids.iter()
                .for_each(|v| buf.extend_from_slice(&v.to_le_bytes()));
            lp.iter()
                .for_each(|v| buf.extend_from_slice(&v.to_le_bytes()));
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &buf).map_err(Error::io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(Error::io(path))
    }

    /// Reads only the header of the cache at `path`.
    pub fn read_header(path: &Path) -> Result<CacheHeader> {
        let buf = std::fs::read(path).map_err(Error::io(path))?;
        Ok(parse_header(path, &buf)?.0)
    }

    /// Reads the cache at `path` for `data` (whose layout the header must match).
    pub fn read(path: &Path, data: &[Encoded]) -> Result<Self> {
        let buf = std::fs::read(path).map_err(Error::io(path))?;
        let (header, body) = parse_header(path, &buf)?;
        let k = header.k;
        if k == 0 || body.len() % (8 * k) != 0 {
            return Err(bad(
                path,
                format!("{} bytes of records for k = {k}", body.len()),
            ));
        }
        let mut ids = Vec::with_capacity(body.len() / 8);
        let mut logp = Vec::with_capacity(body.len() / 8);
        for rec in body.chunks_exact(8 * k) {
            let (a, b) = rec.split_at(4 * k);
            ids.extend(
                a.chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
            logp.extend(
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
        }
        if let Some(&id) = ids.iter().find(|&&i| i as usize >= header.vocab_size) {
            return Err(bad(path, format!("token {id} outside the vocabulary")));
        }
        Self::from_parts(header, ids, logp, data).map_err(|e| bad(path, e.to_string()))
    }
}

fn bad(path: &Path, what: String) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        what: format!("top-k cache: {what}"),
    }
}

fn parse_header<'a>(path: &Path, buf: &'a [u8]) -> Result<(CacheHeader, &'a [u8])> {
    if buf.len() < 16 || &buf[..8] != MAGIC {
        return Err(bad(path, "not a hearth top-k cache (bad magic)".into()));
    }
    let version = u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]);
    if version != VERSION {
        return Err(bad(path, format!("version {version}, expected {VERSION}")));
    }
    let n = u32::from_le_bytes([buf[12], buf[13], buf[14], buf[15]]) as usize;
    let head = buf
        .get(16..16 + n)
        .ok_or_else(|| bad(path, "header cut short".into()))?;
    let header: CacheHeader =
        serde_json::from_slice(head).map_err(|e| bad(path, format!("header: {e}")))?;
    Ok((header, &buf[16 + n..]))
}

/// Appends the `k` largest entries of `row` as ids and log-softmax values, highest first.
fn top_k(row: &[f32], k: usize, ids: &mut Vec<u32>, logp: &mut Vec<f32>) {
    let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = max
        + row
            .iter()
            .map(|&v| (v as f64 - max).exp())
            .sum::<f64>()
            .ln();
    let mut idx: Vec<u32> = (0..row.len() as u32).collect();
    let by_logit = |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]);
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, by_logit);
        idx.truncate(k);
    }
    idx.sort_by(by_logit);
    for i in idx {
        ids.push(i);
        logp.push((row[i as usize] as f64 - lse) as f32);
    }
}

/// Where [`load_or_build`] got its cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheOrigin {
    /// Read from the file, which matched.
    Reused,
    /// Built: no file was there.
    Built,
    /// Built again: the file was for something else (the reason).
    Rebuilt(String),
}

/// The cache at `path` if its header matches `want`, else a fresh one built with
/// `teacher` and written there.
pub fn load_or_build(
    path: &Path,
    teacher: &Transformer,
    want: CacheHeader,
    data: &[Encoded],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(TopKCache, CacheOrigin)> {
    let origin = if path.exists() {
        let why = match TopKCache::read_header(path) {
            Ok(h) => h.mismatch(&want),
            Err(e) => Some(e.to_string()),
        };
        match why {
            None => return Ok((TopKCache::read(path, data)?, CacheOrigin::Reused)),
            Some(why) => CacheOrigin::Rebuilt(why),
        }
    } else {
        CacheOrigin::Built
    };
    let cache = TopKCache::build(teacher, want, data, progress)?;
    cache.write(path)?;
    Ok((cache, origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_the_largest_as_log_probs() {
        let row = [0.0f32, 3.0, 1.0, 2.0];
        let (mut ids, mut lp) = (Vec::new(), Vec::new());
        top_k(&row, 2, &mut ids, &mut lp);
        assert_eq!(ids, vec![1, 3]);
        let z: f64 = row.iter().map(|&v| (v as f64).exp()).sum();
        assert!((lp[0] as f64 - (3.0 - z.ln())).abs() < 1e-6);
        assert!((lp[1] as f64 - (2.0 - z.ln())).abs() < 1e-6);
    }
}
