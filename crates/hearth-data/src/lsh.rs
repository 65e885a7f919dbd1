//! Locality-sensitive hashing over MinHash signatures: bands × rows, band hashes kept as
//! one flat `Vec<u64>` (`n_docs × bands`), buckets found by sorting each band's
//! `(hash, doc)` pairs, no per-document objects.
//!
//! Two documents of Jaccard `s` share at least one band with probability
//! `1 − (1 − s^rows)^bands`. Since every candidate pair is verified afterwards by exact
//! Jaccard, a false positive costs only a comparison while a false negative is a missed
//! duplicate; [`LshParams::for_threshold`] therefore weighs misses 99:1.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::hash::{fmix64, fold};

/// Bucket size up to which every pair in a bucket becomes a candidate; a bigger bucket
/// pairs each member with the bucket's first member and with its predecessor.
const ALL_PAIRS_UP_TO: usize = 64;

/// How a signature is cut into bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LshParams {
    /// Number of bands.
    pub bands: usize,
    /// Signature positions per band.
    pub rows: usize,
}

impl LshParams {
    /// Checks `bands × rows ≤ num_perm` and both at least 1.
    pub fn new(bands: usize, rows: usize, num_perm: usize) -> Result<LshParams> {
        if bands == 0 || rows == 0 || bands * rows > num_perm {
            return Err(Error::Param {
                name: "bands",
                what: format!(
                    "{bands} bands × {rows} rows must be ≥ 1 each and fit in {num_perm} permutations"
                ),
            });
        }
        Ok(LshParams { bands, rows })
    }

    /// The bands and rows minimising `0.01·FP + 0.99·FN`, where FP and FN are the areas
    /// under the candidate-probability curve below and above `threshold` (datasketch's
    /// method, with its weights moved towards recall because candidates are verified).
    pub fn for_threshold(threshold: f64, num_perm: usize) -> Result<LshParams> {
        if !(threshold > 0.0 && threshold < 1.0) {
            return Err(Error::Param {
                name: "threshold",
                what: format!("{threshold} is not strictly between 0 and 1"),
            });
        }
        let (mut best, mut best_err) = (None, f64::INFINITY);
        for bands in 1..=num_perm {
            for rows in 1..=num_perm / bands {
                let fp = integrate(|s| p_candidate(s, bands, rows), 0.0, threshold);
                let fnr = integrate(|s| 1.0 - p_candidate(s, bands, rows), threshold, 1.0);
                let err = 0.01 * fp + 0.99 * fnr;
                if err < best_err {
                    (best, best_err) = (Some(LshParams { bands, rows }), err);
                }
            }
        }
        best.ok_or(Error::Param {
            name: "num-perm",
            what: "must be at least 1".into(),
        })
    }

    /// Probability that two documents of Jaccard `s` become candidates.
    pub fn p_candidate(&self, s: f64) -> f64 {
        p_candidate(s, self.bands, self.rows)
    }

    /// The band hashes of one signature into `out` (length `bands`).
    pub fn band_hashes(&self, sig: &[u32], out: &mut [u64]) {
        for (band, o) in out.iter_mut().enumerate().take(self.bands) {
            let rows = &sig[band * self.rows..(band + 1) * self.rows];
            let h = rows.iter().fold(band as u64, |h, &v| fold(h, u64::from(v)));
            *o = fmix64(h);
        }
    }
}

fn p_candidate(s: f64, bands: usize, rows: usize) -> f64 {
    1.0 - (1.0 - s.powi(rows as i32)).powi(bands as i32)
}

fn integrate(f: impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    const STEPS: usize = 200;
    let h = (b - a) / STEPS as f64;
    (0..STEPS).map(|i| f(a + (i as f64 + 0.5) * h)).sum::<f64>() * h
}

/// Candidate pairs `(i, j)`, `i < j`, sorted and unique, of documents sharing a bucket in
/// any band. `hashes` is `n_docs × bands`, row-major; documents with `active[d] == false`
/// (empty texts) take no part. The result is the same for any thread count.
pub fn candidate_pairs(hashes: &[u64], bands: usize, active: &[bool]) -> Vec<(u32, u32)> {
    let n_docs = active.len();
    let per_band: Vec<Vec<(u32, u32)>> = (0..bands)
        .into_par_iter()
        .map(|band| {
            let mut keyed: Vec<(u64, u32)> = (0..n_docs)
                .filter(|&d| active[d])
                .map(|d| (hashes[d * bands + band], d as u32))
                .collect();
            keyed.sort_unstable();
            let mut pairs = Vec::new();
            for run in keyed.chunk_by(|x, y| x.0 == y.0) {
                bucket_pairs(run, &mut pairs);
            }
            pairs
        })
        .collect();
    let mut all: Vec<(u32, u32)> = per_band.into_iter().flatten().collect();
    all.par_sort_unstable();
    all.dedup();
    all
}

fn bucket_pairs(run: &[(u64, u32)], pairs: &mut Vec<(u32, u32)>) {
    if run.len() <= ALL_PAIRS_UP_TO {
        for (i, x) in run.iter().enumerate() {
            for y in &run[i + 1..] {
                pairs.push((x.1, y.1));
            }
        }
    } else {
        let first = run[0].1;
        for w in run.windows(2) {
            pairs.push((first, w[1].1));
            if w[0].1 != first {
                pairs.push((w[0].1, w[1].1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_choice_favours_recall() {
        let p = LshParams::for_threshold(0.8, 128).unwrap();
        assert!(p.bands * p.rows <= 128);
        assert!(p.p_candidate(0.8) > 0.98, "{p:?}");
        assert!(p.p_candidate(0.3) < 0.01, "{p:?}");
        assert!(LshParams::for_threshold(1.0, 128).is_err());
        assert!(LshParams::new(20, 7, 128).is_err());
    }

    #[test]
    fn shared_buckets_make_sorted_unique_pairs() {
        // 4 docs, 2 bands: doc 0 and 2 share band 0; docs 1, 2 and 3 share band 1.
        let hashes = [10, 20, 11, 21, 10, 21, 12, 21];
        let pairs = candidate_pairs(&hashes, 2, &[true; 4]);
        assert_eq!(pairs, vec![(0, 2), (1, 2), (1, 3), (2, 3)]);
        let pairs = candidate_pairs(&hashes, 2, &[true, true, false, true]);
        assert_eq!(pairs, vec![(1, 3)]);
    }

    #[test]
    fn big_buckets_stay_linear() {
        let n = 1000;
        let hashes = vec![5u64; n];
        let pairs = candidate_pairs(&hashes, 1, &vec![true; n]);
        assert!(pairs.len() < 2 * n);
        assert!(pairs.contains(&(0, 999)) && pairs.contains(&(998, 999)));
    }
}
