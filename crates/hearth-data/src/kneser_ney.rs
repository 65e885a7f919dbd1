//! Training an interpolated modified Kneser-Ney n-gram model (Chen & Goodman 1998, as
//! KenLM's `lmplz` does) on CCNet-normalised word tokens, with optional count pruning.
//!
//! Each line is a sentence `<s> w1 .. wk </s>`. The highest order uses raw counts; lower
//! orders use continuation counts (distinct left neighbours), except n-grams starting
//! with `<s>`, which keep raw counts. Per order, three discounts come from the counts of
//! counts `t1..t4`: `Y = t1/(t1+2 t2)`, `D1 = 1-2Y t2/t1`, `D2 = 2-3Y t3/t2`,
//! `D3+ = 3-4Y t4/t3` (clamped into `(0, k]`, with fixed 0.5/1.0/1.5 when a count of counts
//! is zero, which only tiny corpora see). Then
//! `p(w|h) = (a(hw) - D(a)) / a(h·) + γ(h) p(w|h')`, `γ(h) = (D1 N1(h·) + D2 N2(h·) +
//! D3 N3+(h·)) / a(h·)`, bottoming out at the uniform distribution over the vocabulary
//! (every word but `<s>`, `<unk>` included). Stored as a backoff model, seen n-grams keep
//! their interpolated probability and every context gets `γ(h)` as backoff weight, so
//! each context's distribution sums to one.
//!
//! Pruning drops n-grams of order ≥ 2 whose (adjusted) count is at most the threshold,
//! keeping every prefix and suffix of a kept n-gram; the backoff weight of a context
//! that lost some continuations is recomputed as
//! `(1 - Σ_kept p(w|h)) / (1 - Σ_kept p(w|h'))` so the distribution still sums to one.
//!
//! Counting packs an n-gram into a `u128` (24 bits per word), so the order is at most 5
//! and the vocabulary below 2^24 words; memory grows with the number of distinct n-grams.

use std::collections::{HashMap, HashSet};

use crate::ccnet::{ccnet_normalize, word_tokens};
use crate::error::{Error, Result};
use crate::ngram::{BackoffModel, NgramEntry, BOS, EOS, UNK};

/// The highest order the trainer supports.
pub const MAX_TRAIN_ORDER: usize = 5;
const BITS: u32 = 24;
const MASK: u128 = (1 << BITS) - 1;
const UNK_ID: u32 = 0;
const BOS_ID: u32 = 1;
const EOS_ID: u32 = 2;

/// Counts n-grams line by line, then builds the model.
pub struct KneserNeyTrainer {
    order: usize,
    ids: HashMap<String, u32>,
    vocab: Vec<String>,
    /// Raw counts per order (index n-1), keyed by packed n-gram.
    raw: Vec<HashMap<u128, u32>>,
    sentences: u64,
    tokens: u64,
}

fn pack(ids: &[u32]) -> u128 {
    ids.iter().enumerate().fold(0u128, |k, (i, &w)| {
        k | (u128::from(w + 1) << (BITS * i as u32))
    })
}

fn unpack(key: u128, n: usize) -> Vec<u32> {
    (0..n)
        .map(|i| ((key >> (BITS * i as u32)) & MASK) as u32 - 1)
        .collect()
}

/// The n-gram without its first word.
fn suffix(key: u128) -> u128 {
    key >> BITS
}

/// The n-gram (of order `n`) without its last word.
fn prefix(key: u128, n: usize) -> u128 {
    key & ((1u128 << (BITS * (n as u32 - 1))) - 1)
}

fn first_word(key: u128) -> u32 {
    (key & MASK) as u32 - 1
}

impl KneserNeyTrainer {
    /// A trainer for models of `order`.
    pub fn new(order: usize) -> Result<Self> {
        if !(1..=MAX_TRAIN_ORDER).contains(&order) {
            return Err(Error::Param {
                name: "order",
                what: format!("{order} is not in 1..={MAX_TRAIN_ORDER}"),
            });
        }
        let vocab: Vec<String> = [UNK, BOS, EOS].iter().map(|s| s.to_string()).collect();
        Ok(KneserNeyTrainer {
            order,
            ids: vocab.iter().cloned().zip(0..).collect(),
            vocab,
            raw: vec![HashMap::new(); order],
            sentences: 0,
            tokens: 0,
        })
    }

    /// Counts one line of text (normalised and tokenised as CCNet; blank lines skipped).
    pub fn add_line(&mut self, line: &str) -> Result<()> {
        let norm = ccnet_normalize(line);
        let words = word_tokens(&norm);
        if words.is_empty() {
            return Ok(());
        }
        let mut seq = Vec::with_capacity(words.len() + 2);
        seq.push(BOS_ID);
        for w in words {
            let next = self.vocab.len() as u32;
            let id = *self.ids.entry(w.to_string()).or_insert(next);
            if id == next {
                if u128::from(next) + 1 >= MASK {
                    return Err(Error::Param {
                        name: "input",
                        what: "more than 16.7M distinct words: too many to train on".into(),
                    });
                }
                self.vocab.push(w.to_string());
            }
            seq.push(id);
        }
        seq.push(EOS_ID);
        self.sentences += 1;
        self.tokens += seq.len() as u64 - 1;
        for n in 1..=self.order.min(seq.len()) {
            for win in seq.windows(n) {
                *self.raw[n - 1].entry(pack(win)).or_default() += 1;
            }
        }
        Ok(())
    }

    /// Sentences and tokens (words plus `</s>`) counted so far.
    pub fn counted(&self) -> (u64, u64) {
        (self.sentences, self.tokens)
    }

    /// The model; `prune` drops n-grams of order ≥ 2 whose adjusted count is at most it
    /// (0 keeps all).
    pub fn build(&self, prune_at: u32) -> Result<BackoffModel> {
        let order = self.order;
        if self.sentences == 0 {
            return Err(Error::Param {
                name: "input",
                what: "no text to train on".into(),
            });
        }
        // Adjusted counts, per order.
        let mut adj: Vec<HashMap<u128, u32>> = Vec::with_capacity(order);
        for n in 1..=order {
            if n == order {
                adj.push(self.raw[n - 1].clone());
                continue;
            }
            let mut a: HashMap<u128, u32> = HashMap::with_capacity(self.raw[n - 1].len());
            for (&k, &c) in &self.raw[n - 1] {
                if first_word(k) == BOS_ID {
                    a.insert(k, c);
                }
            }
            for &k in self.raw[n].keys() {
                *a.entry(suffix(k)).or_default() += 1;
            }
            adj.push(a);
        }
        adj[0].remove(&pack(&[BOS_ID]));
        // Interpolated probabilities and gammas, bottom up.
        let v_pred = (self.vocab.len() - 1) as f64;
        let mut prob: Vec<HashMap<u128, f64>> = Vec::with_capacity(order);
        let mut gamma: Vec<HashMap<u128, f64>> = Vec::with_capacity(order);
        for n in 1..=order {
            let d = discounts(&adj[n - 1]);
            let mut total: HashMap<u128, (f64, [u32; 3])> = HashMap::new();
            for (&k, &a) in &adj[n - 1] {
                let h = if n == 1 { 0 } else { prefix(k, n) };
                let t = total.entry(h).or_default();
                t.0 += f64::from(a);
                t.1[a.min(3) as usize - 1] += 1;
            }
            let g: HashMap<u128, f64> = total
                .iter()
                .map(|(&h, &(sum, nk))| {
                    let mass: f64 = (0..3).map(|i| d[i] * f64::from(nk[i])).sum();
                    (h, mass / sum)
                })
                .collect();
            let mut p: HashMap<u128, f64> = HashMap::with_capacity(adj[n - 1].len());
            for (&k, &a) in &adj[n - 1] {
                let h = if n == 1 { 0 } else { prefix(k, n) };
                let lower = if n == 1 {
                    1.0 / v_pred
                } else {
                    prob[n - 2].get(&suffix(k)).copied().unwrap_or(0.0)
                };
                let u = (f64::from(a) - d[a.min(3) as usize - 1]) / total[&h].0;
                p.insert(k, u + g[&h] * lower);
            }
            if n == 1 {
                // <unk> (and any word never predicted) gets only the uniform share.
                let unk = pack(&[UNK_ID]);
                p.entry(unk).or_insert(g[&0] / v_pred);
            }
            prob.push(p);
            gamma.push(g);
        }
        let kept = prune(&adj, prune_at);
        self.emit(&prob, &gamma, &kept)
    }

    fn emit(
        &self,
        prob: &[HashMap<u128, f64>],
        gamma: &[HashMap<u128, f64>],
        kept: &[Option<HashSet<u128>>],
    ) -> Result<BackoffModel> {
        let order = self.order;
        let keeps = |n: usize, k: &u128| kept[n - 1].as_ref().is_none_or(|s| s.contains(k));
        // Backoff weight of each context of order n (< order).
        let mut backoff: Vec<HashMap<u128, f64>> = vec![HashMap::new(); order];
        for n in 1..order {
            let g = &gamma[n];
            let mut sums: HashMap<u128, (f64, f64, bool)> = HashMap::new();
            for (k, p) in &prob[n] {
                let h = prefix(*k, n + 1);
                let s = sums.entry(h).or_default();
                if keeps(n + 1, k) {
                    s.0 += p;
                    s.1 += prob[n - 1].get(&suffix(*k)).copied().unwrap_or(0.0);
                } else {
                    s.2 = true;
                }
            }
            for (h, (kept_p, kept_lower, pruned)) in sums {
                let b = if pruned && kept_lower < 1.0 {
                    ((1.0 - kept_p) / (1.0 - kept_lower)).max(f64::MIN_POSITIVE)
                } else {
                    g[&h]
                };
                backoff[n - 1].insert(h, b);
            }
        }
        let mut model = BackoffModel {
            vocab: self.vocab.clone(),
            orders: Vec::with_capacity(order),
        };
        for n in 1..=order {
            let mut entries: Vec<NgramEntry> = Vec::new();
            if n == 1 {
                let b = backoff[0].get(&pack(&[BOS_ID])).copied().unwrap_or(1.0);
                for id in 0..self.vocab.len() as u32 {
                    let k = pack(&[id]);
                    let p = if id == BOS_ID {
                        -99.0
                    } else {
                        log10(prob[0].get(&k).copied().unwrap_or(0.0))
                    };
                    let bo = if id == BOS_ID {
                        b
                    } else {
                        backoff[0].get(&k).copied().unwrap_or(1.0)
                    };
                    entries.push(NgramEntry {
                        words: vec![id],
                        prob: p,
                        backoff: log10(bo),
                    });
                }
            } else {
                let mut keys: Vec<&u128> = prob[n - 1].keys().filter(|k| keeps(n, k)).collect();
                keys.sort_by_key(|k| unpack(**k, n));
                for k in keys {
                    entries.push(NgramEntry {
                        words: unpack(*k, n),
                        prob: log10(prob[n - 1][k]),
                        backoff: log10(backoff[n - 1].get(k).copied().unwrap_or(1.0)),
                    });
                }
            }
            model.orders.push(entries);
        }
        Ok(model)
    }
}

fn log10(p: f64) -> f32 {
    if p > 0.0 {
        p.log10() as f32
    } else {
        -99.0
    }
}

/// Modified Kneser-Ney discounts `D1, D2, D3+` from the counts of counts of `adj`.
fn discounts(adj: &HashMap<u128, u32>) -> [f64; 3] {
    let mut t = [0f64; 4];
    for &a in adj.values() {
        if (1..=4).contains(&a) {
            t[a as usize - 1] += 1.0;
        }
    }
    if t.contains(&0.0) {
        return [0.5, 1.0, 1.5];
    }
    let y = t[0] / (t[0] + 2.0 * t[1]);
    let d = [
        1.0 - 2.0 * y * t[1] / t[0],
        2.0 - 3.0 * y * t[2] / t[1],
        3.0 - 4.0 * y * t[3] / t[2],
    ];
    [
        d[0].clamp(1e-3, 1.0),
        d[1].clamp(1e-3, 2.0),
        d[2].clamp(1e-3, 3.0),
    ]
}

/// Which n-grams survive pruning, per order (`None`: all).
fn prune(adj: &[HashMap<u128, u32>], threshold: u32) -> Vec<Option<HashSet<u128>>> {
    let order = adj.len();
    let mut kept: Vec<Option<HashSet<u128>>> = vec![None; order];
    if threshold == 0 {
        return kept;
    }
    for n in (2..=order).rev() {
        let mut set: HashSet<u128> = adj[n - 1]
            .iter()
            .filter(|(_, &a)| a > threshold)
            .map(|(&k, _)| k)
            .collect();
        if let Some(Some(upper)) = kept.get(n) {
            for &k in upper {
                set.insert(prefix(k, n + 1));
                set.insert(suffix(k));
            }
        }
        kept[n - 1] = Some(set);
    }
    kept
}
