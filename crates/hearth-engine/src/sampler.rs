//! Token sampling: penalties, truncation (top-k, top-p, min-p), temperature, and a
//! seeded draw, in the order of llama.cpp's default sampler chain; plus log-prob
//! helpers.
//!
//! The chain, applied to one position's logits:
//!
//! 1. penalties over the last `penalty_last_n` ids of the history: repetition
//!    (positive logits divided by the penalty, negative ones multiplied), then
//!    OpenAI's frequency/presence (`logit -= count * frequency + (count > 0) * presence`);
//! 2. top-k, 3. top-p (nucleus), 4. min-p, all on the temperature-1 distribution;
//! 5. temperature; 6. a draw from the softmax of what is left.
//!
//! Temperature 0 is greedy: the penalised argmax (ties go to the lowest id), with no
//! truncation and no draw. NaN logits are treated as impossible tokens, never a panic.

use crate::rng::Rng;

use crate::{Error, Result};

/// How the next token is chosen. The default is greedy decoding with no penalties.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature; 0 means greedy (argmax). Must be finite and >= 0.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 turns it off.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p`;
    /// in (0, 1], 1.0 turns it off.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one; in [0, 1],
    /// 0 turns it off.
    pub min_p: f32,
    /// llama.cpp-style repetition penalty (> 0); 1.0 turns it off.
    pub repetition_penalty: f32,
    /// OpenAI-style frequency penalty in [-2, 2]: subtracted once per occurrence.
    pub frequency_penalty: f32,
    /// OpenAI-style presence penalty in [-2, 2]: subtracted once if the token occurred.
    pub presence_penalty: f32,
    /// How many of the most recent history ids the penalties look at: 64 by default
    /// (as llama.cpp), 0 turns penalties off, `usize::MAX` means the whole history.
    pub penalty_last_n: usize,
    /// Seed for the random draw; `None` seeds from OS entropy and the clock.
    pub seed: Option<u64>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            penalty_last_n: 64,
            seed: None,
        }
    }
}

fn invalid(field: &'static str, value: f32, expected: &'static str) -> Error {
    Error::InvalidParam {
        field,
        value: value.to_string(),
        expected,
    }
}

impl SamplingParams {
    /// Checks every field's range; the error names the first offending field.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(invalid(
                "temperature",
                self.temperature,
                "expected a finite number >= 0",
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(invalid("top_p", self.top_p, "expected a number in (0, 1]"));
        }
        if !(self.min_p >= 0.0 && self.min_p <= 1.0) {
            return Err(invalid("min_p", self.min_p, "expected a number in [0, 1]"));
        }
        if !(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0) {
            return Err(invalid(
                "repetition_penalty",
                self.repetition_penalty,
                "expected a finite number > 0",
            ));
        }
        if !(-2.0..=2.0).contains(&self.frequency_penalty) {
            return Err(invalid(
                "frequency_penalty",
                self.frequency_penalty,
                "expected a number in [-2, 2]",
            ));
        }
        if !(-2.0..=2.0).contains(&self.presence_penalty) {
            return Err(invalid(
                "presence_penalty",
                self.presence_penalty,
                "expected a number in [-2, 2]",
            ));
        }
        Ok(())
    }

    /// Whether these parameters pick the argmax (temperature 0).
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    fn has_penalties(&self) -> bool {
        self.penalty_last_n > 0
            && (self.repetition_penalty != 1.0
                || self.frequency_penalty != 0.0
                || self.presence_penalty != 0.0)
    }
}

/// Picks next tokens from logits according to [`SamplingParams`].
///
/// Holds the random generator and scratch buffers, so one `Sampler` per sequence;
/// after the first call, sampling does not allocate unless the vocabulary or history
/// window grows.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: Rng,
    /// Scratch: the penalty window's ids, sorted to count occurrences.
    window: Vec<u32>,
    /// Scratch: surviving (id, logit) candidates.
    candidates: Vec<(u32, f32)>,
}

impl Sampler {
    /// A sampler for `params` (validated). With a seed, the same seed, logits and
    /// history always give the same tokens.
    pub fn new(params: SamplingParams) -> Result<Self> {
        params.validate()?;
        let rng = match params.seed {
            Some(seed) => Rng::seeded(seed),
            None => Rng::from_entropy(),
        };
        Ok(Sampler {
            params,
            rng,
            window: Vec::new(),
            candidates: Vec::new(),
        })
    }

    /// The parameters this sampler was built with.
    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Picks the next token. `logits` is the model's raw output for one position
    /// (vocab-sized; penalties are applied to it in place); `history` = prompt +
    /// generated ids so far. Ids in `history` outside the vocabulary are ignored.
    ///
    /// Returns 0 when there is nothing to choose from (empty logits, or every logit
    /// NaN).
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        if self.params.has_penalties() {
            self.apply_penalties(logits, history);
        }
        if self.params.is_greedy() {
            return argmax(logits);
        }
        self.sample_stochastic(logits)
    }

    fn apply_penalties(&mut self, logits: &mut [f32], history: &[u32]) {
        let p = &self.params;
        let start = history.len().saturating_sub(p.penalty_last_n);
        self.window.clear();
        self.window.extend_from_slice(&history[start..]);
        self.window.sort_unstable();
        let mut i = 0;
        while i < self.window.len() {
            let id = self.window[i];
            let mut j = i + 1;
            while j < self.window.len() && self.window[j] == id {
                j += 1;
            }
            let count = (j - i) as f32;
            i = j;
            let Some(logit) = logits.get_mut(id as usize) else {
                continue;
            };
            if p.repetition_penalty != 1.0 {
                if *logit > 0.0 {
                    *logit /= p.repetition_penalty;
                } else {
                    *logit *= p.repetition_penalty;
                }
            }
            *logit -= count * p.frequency_penalty + p.presence_penalty;
        }
    }

    fn sample_stochastic(&mut self, logits: &[f32]) -> u32 {
        self.fill_candidates(logits);
        let cands = &self.candidates;
        if cands.is_empty() {
            return argmax(logits);
        }
        let max = max_logit(cands);
        let t = f64::from(self.params.temperature);
        let total: f64 = cands.iter().map(|&(_, l)| weight(l, max, t)).sum();
        if !(total.is_finite() && total > 0.0) {
            return cands
                .iter()
                .copied()
                .min_by(by_logit_desc)
                .map_or(0, |(id, _)| id);
        }
        let u = self.rng.next_f64() * total;
        let mut cum = 0.0;
        for &(id, l) in cands.iter() {
            cum += weight(l, max, t);
            if u < cum {
                return id;
            }
        }
        // Rounding left `u` at the very top: the last token with any weight.
        cands
            .iter()
            .rev()
            .find(|&&(_, l)| weight(l, max, t) > 0.0)
            .map_or(cands[0].0, |&(id, _)| id)
    }

    /// Fills `self.candidates` with the tokens that survive top-k, top-p and min-p
    /// (NaN and -inf logits never do; +inf counts as the largest finite value). The
    /// order of the survivors is unspecified.
    fn fill_candidates(&mut self, logits: &[f32]) {
        let p = &self.params;
        let cands = &mut self.candidates;
        cands.clear();
        cands.extend(
            logits
                .iter()
                .enumerate()
                .filter(|(_, l)| !l.is_nan() && **l != f32::NEG_INFINITY)
                // +inf would make the softmax NaN; the largest finite value keeps it
                // the (co-)favourite.
                .map(|(i, &l)| (i as u32, l.min(f32::MAX))),
        );
        if cands.is_empty() {
            return;
        }

        // top-k
        if p.top_k > 0 && p.top_k < cands.len() {
            cands.select_nth_unstable_by(p.top_k - 1, by_logit_desc);
            cands.truncate(p.top_k);
        }

        // top-p: the smallest prefix (by descending logit) whose mass reaches top_p.
        // The nucleus is usually small, so candidates are sorted in growing chunks
        // (select the next best, sort just those) rather than all at once.
        if p.top_p < 1.0 {
            let max = max_logit(cands);
            let total: f64 = cands.iter().map(|&(_, l)| weight(l, max, 1.0)).sum();
            let target = f64::from(p.top_p) * total;
            let len = cands.len();
            let (mut sorted, mut chunk, mut cum) = (0, 64, 0.0);
            let keep = 'nucleus: loop {
                let end = (sorted + chunk).min(len);
                if end < len {
                    cands[sorted..].select_nth_unstable_by(end - sorted - 1, by_logit_desc);
                }
                cands[sorted..end].sort_unstable_by(by_logit_desc);
                for (i, &(_, l)) in cands[sorted..end].iter().enumerate() {
                    cum += weight(l, max, 1.0);
                    if cum >= target {
                        break 'nucleus sorted + i + 1;
                    }
                }
                if end == len {
                    break len;
                }
                sorted = end;
                chunk *= 4;
            };
            cands.truncate(keep.max(1));
        }

        // min-p: keep l >= max + ln(min_p), i.e. prob >= min_p * max prob.
        if p.min_p > 0.0 {
            let max = max_logit(cands);
            let threshold = f64::from(max) + f64::from(p.min_p).ln();
            cands.retain(|&(_, l)| f64::from(l) >= threshold);
        }
    }
}

/// The largest logit among candidates (which hold no NaN).
fn max_logit(cands: &[(u32, f32)]) -> f32 {
    cands
        .iter()
        .map(|&(_, l)| l)
        .fold(f32::NEG_INFINITY, f32::max)
}

/// Unnormalised softmax weight of `logit` at temperature `t`, relative to `max`.
fn weight(logit: f32, max: f32, t: f64) -> f64 {
    ((f64::from(logit) - f64::from(max)) / t).exp()
}

/// Orders candidates by descending logit, ties by ascending id.
fn by_logit_desc(a: &(u32, f32), b: &(u32, f32)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// The index of the largest logit, ties to the lowest id, NaNs skipped; 0 if none.
fn argmax(logits: &[f32]) -> u32 {
    // The largest number (NaN skipped, as `f32::max` does), then its first position:
    // two passes the compiler vectorises, where one branchy pass over a 262k
    // vocabulary cost ~4% of a 16-stream decode step.
    const LANES: usize = 16;
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = logits.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (m, &l) in lanes.iter_mut().zip(c) {
            *m = m.max(l);
        }
    }
    let max = lanes
        .iter()
        .chain(rest)
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    logits
        .iter()
        .position(|&l| l == max)
        .map_or(0, |i| i as u32)
}

/// Max (ignoring NaN) and log-sum-exp of `logits`, NaNs counting as impossible.
/// `None` when no logit is a number or all are -inf.
fn log_sum_exp(logits: &[f32]) -> Option<(f64, f64)> {
    let max = logits
        .iter()
        .filter(|l| !l.is_nan())
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    if max == f32::NEG_INFINITY {
        return None;
    }
    let max = f64::from(max.min(f32::MAX));
    let sum: f64 = logits
        .iter()
        .filter(|l| !l.is_nan())
        .map(|&l| (f64::from(l.min(f32::MAX)) - max).exp())
        .sum();
    Some((max, max + sum.ln()))
}

/// The log-probability of token `id` under the softmax of `logits`.
///
/// NaN logits count as impossible; returns `-inf` for an impossible token and for an
/// `id` outside the vocabulary.
pub fn logprob_of(logits: &[f32], id: u32) -> f32 {
    let Some(&l) = logits.get(id as usize) else {
        return f32::NEG_INFINITY;
    };
    if l.is_nan() {
        return f32::NEG_INFINITY;
    }
    match log_sum_exp(logits) {
        Some((_, lse)) => (f64::from(l.min(f32::MAX)) - lse) as f32,
        None => f32::NEG_INFINITY,
    }
}

/// The `k` most likely tokens as `(id, logprob)` pairs, sorted by descending
/// log-probability (ties by lower id). NaN logits are skipped, so fewer than `k`
/// pairs come back if fewer tokens have a numeric logit.
///
/// Runs in O(n log k) time and O(k) memory: no vocabulary-sized copy is made.
pub fn top_logprobs(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    if k == 0 {
        return Vec::new();
    }
    let mut top: Vec<(u32, f32)> = Vec::with_capacity(k.min(logits.len()));
    for (i, &l) in logits.iter().enumerate() {
        if l.is_nan() {
            continue;
        }
        let item = (i as u32, l);
        if top.len() == k {
            // Ids arrive in ascending order, so an equal logit never displaces.
            match top.last() {
                Some(&(_, worst)) if l > worst => {
                    top.pop();
                }
                _ => continue,
            }
        }
        let pos = top.partition_point(|e| by_logit_desc(e, &item).is_lt());
        top.insert(pos, item);
    }
    let lse = log_sum_exp(logits).map_or(f64::INFINITY, |(_, lse)| lse);
    for e in &mut top {
        e.1 = (f64::from(e.1.min(f32::MAX)) - lse) as f32;
    }
    top
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_ties_and_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.5, f32::NAN]), 1);
        assert_eq!(argmax(&[f32::NAN, f32::NAN]), 0);
        assert_eq!(argmax(&[]), 0);
        assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), 0);
    }

    /// The survivors of top-k, top-p and min-p the slow way: one full sort.
    fn reference_survivors(logits: &[f32], p: &SamplingParams) -> Vec<u32> {
        let mut all: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as u32, l))
            .collect();
        all.sort_by(by_logit_desc);
        if p.top_k > 0 {
            all.truncate(p.top_k);
        }
        if p.top_p < 1.0 {
            let max = all[0].1;
            let total: f64 = all.iter().map(|&(_, l)| weight(l, max, 1.0)).sum();
            let mut cum = 0.0;
            let keep = all
                .iter()
                .position(|&(_, l)| {
                    cum += weight(l, max, 1.0);
                    cum >= f64::from(p.top_p) * total
                })
                .map_or(all.len(), |i| i + 1);
            all.truncate(keep);
        }
        if p.min_p > 0.0 {
            let threshold = f64::from(all[0].1) + f64::from(p.min_p).ln();
            all.retain(|&(_, l)| f64::from(l) >= threshold);
        }
        let mut ids: Vec<u32> = all.into_iter().map(|(i, _)| i).collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn truncation_matches_full_sort() {
        let mut rng = Rng::seeded(5);
        for case in 0..300 {
            let n = [1, 7, 100, 3000, 20_000][case % 5];
            // Spread from peaked to nearly flat, so nuclei from 1 to thousands.
            let scale = [0.01, 0.3, 1.0, 5.0, 20.0][(case / 5) % 5];
            let logits: Vec<f32> = (0..n)
                .map(|_| ((rng.next_f64() - 0.5) * scale) as f32)
                .collect();
            let params = SamplingParams {
                temperature: 1.0,
                top_k: [0, 1, 40, 5000][case % 4],
                top_p: [1.0, 0.999, 0.9, 0.5, 0.01][case % 5],
                min_p: [0.0, 0.0, 0.05, 0.5][(case / 3) % 4],
                seed: Some(1),
                ..Default::default()
            };
            let mut s = Sampler::new(params.clone()).unwrap();
            s.fill_candidates(&logits);
            let mut got: Vec<u32> = s.candidates.iter().map(|c| c.0).collect();
            got.sort_unstable();
            assert_eq!(got, reference_survivors(&logits, &params), "case {case}");
        }
    }

    #[test]
    fn penalties_window_counts() {
        let mut s = Sampler::new(SamplingParams {
            frequency_penalty: 1.0,
            presence_penalty: 0.5,
            penalty_last_n: 3,
            ..Default::default()
        })
        .unwrap();
        let mut logits = vec![0.0; 4];
        // window = [1, 1, 2]; id 3 (out of window) and id 9 (out of vocab) ignored.
        s.apply_penalties(&mut logits, &[3, 9, 1, 1, 2]);
        assert_eq!(logits, vec![0.0, -2.5, -1.5, 0.0]);
    }
}
