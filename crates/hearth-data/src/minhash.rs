//! MinHash: shingle sets of a text and their signatures.
//!
//! Shingles are 64-bit hashes of word n-grams (or character n-grams) of the normalised
//! text, kept as a sorted, deduplicated `Vec<u64>`; the exact Jaccard similarity of two
//! documents is computed on these sets. A signature holds, for each of `num_perm` hash
//! functions, the minimum over the document's shingles: two signatures agree at a
//! position with probability ≈ Jaccard. Each hash function is a permutation of `u32`
//! applied to a 32-bit fold of the (already well mixed) shingle hash:
//! `y = (x ⊕ b_p)·a_p mod 2^32` (`a_p` odd), then `y ⊕ (y >> 15)`. Being 32-bit lane
//! arithmetic, it runs 8 lanes wide where the CPU has AVX2 (checked at run time).

use crate::error::{Error, Result};
use crate::hash::{fmix64, hash_word_in, SplitMix64};

/// What a shingle is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "unit", content = "n")]
pub enum Shingle {
    /// `n` consecutive words (split on whitespace). A text of fewer words is one shingle.
    Words(usize),
    /// `n` consecutive characters. A shorter text is one shingle.
    Chars(usize),
}

const WORD_SEED: u64 = 0x0057_0bd5;
const SHINGLE_SEED: u64 = 0x5419_1e5e;

/// Shingles and signatures under one set of hash functions.
#[derive(Debug, Clone)]
pub struct MinHasher {
    shingle: Shingle,
    a: Vec<u32>,
    b: Vec<u32>,
}

impl MinHasher {
    /// `num_perm` hash functions drawn from `seed`.
    pub fn new(shingle: Shingle, num_perm: usize, seed: u64) -> Result<MinHasher> {
        let n = match shingle {
            Shingle::Words(n) | Shingle::Chars(n) => n,
        };
        if n == 0 {
            return Err(Error::Param {
                name: "ngram",
                what: "must be at least 1".into(),
            });
        }
        if num_perm == 0 {
            return Err(Error::Param {
                name: "num-perm",
                what: "must be at least 1".into(),
            });
        }
        let mut rng = SplitMix64(seed);
        let (mut a, mut b) = (Vec::with_capacity(num_perm), Vec::with_capacity(num_perm));
        for _ in 0..num_perm {
            let r = rng.next_u64();
            a.push((r as u32) | 1);
            b.push((r >> 32) as u32);
        }
        Ok(MinHasher { shingle, a, b })
    }

    /// Number of hash functions (signature length).
    pub fn num_perm(&self) -> usize {
        self.a.len()
    }

    /// The shingle set of an already normalised text (see [`crate::normalize`]), sorted
    /// and deduplicated, into `out` (cleared first). Empty for an empty text.
    pub fn shingles(&self, normalized: &str, out: &mut Vec<u64>) {
        self.shingle_hashes(normalized, out);
        out.sort_unstable();
        out.dedup();
    }

    /// The shingle hashes of a normalised text in text order, repeats included: enough for
    /// a signature (a minimum ignores repeats), cheaper than [`Self::shingles`].
    pub fn shingle_hashes(&self, normalized: &str, out: &mut Vec<u64>) {
        out.clear();
        match self.shingle {
            Shingle::Words(n) => {
                // Normalised text has single spaces and no other whitespace.
                let bytes = normalized.as_bytes();
                let mut words = Vec::with_capacity(bytes.len() / 4);
                let mut start = 0;
                for end in memchr::memchr_iter(b' ', bytes).chain([bytes.len()]) {
                    if end > start {
                        words.push(hash_word_in(bytes, start, end, WORD_SEED));
                    }
                    start = end + 1;
                }
                windows_hashed(&words, n, out);
            }
            Shingle::Chars(n) => {
                let chars: Vec<u64> = normalized
                    .chars()
                    .map(|c| fmix64(u64::from(c as u32) ^ WORD_SEED))
                    .collect();
                windows_hashed(&chars, n, out);
            }
        }
    }

    /// The MinHash signature of a shingle set into `sig` (length [`Self::num_perm`]).
    /// An empty set gives all `u32::MAX`.
    pub fn signature(&self, shingles: &[u64], sig: &mut [u32]) {
        sig.fill(u32::MAX);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { signature_avx2(shingles, &self.a, &self.b, sig) };
            return;
        }
        signature_kernel(shingles, &self.a, &self.b, sig);
    }
}

#[inline(always)]
fn signature_kernel(shingles: &[u64], a: &[u32], b: &[u32], sig: &mut [u32]) {
    for &h in shingles {
        let x = (h ^ (h >> 32)) as u32;
        for ((s, &a), &b) in sig.iter_mut().zip(a).zip(b) {
            let y = (x ^ b).wrapping_mul(a);
            *s = (*s).min(y ^ (y >> 15));
        }
    }
}

/// [`signature_kernel`] compiled for AVX2 (8 lanes of 32-bit multiply and min).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn signature_avx2(shingles: &[u64], a: &[u32], b: &[u32], sig: &mut [u32]) {
    signature_kernel(shingles, a, b, sig)
}

fn windows_hashed(units: &[u64], n: usize, out: &mut Vec<u64>) {
    if units.is_empty() {
        return;
    }
    let n = n.min(units.len());
    // Units are already well-mixed hashes (words) or distinct code points (characters,
    // mixed first): a position-dependent rotation tells orders apart, and the finalizer
    // mixes the combination.
    for w in units.windows(n) {
        let h = w.iter().enumerate().fold(SHINGLE_SEED, |h, (i, &u)| {
            h ^ u.rotate_left(17 * i as u32 % 64)
        });
        out.push(fmix64(h));
    }
}

/// Exact Jaccard similarity of two sorted, deduplicated sets (1.0 for two empty sets).
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    inter as f64 / (a.len() + b.len() - inter) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_shingles_count_distinct_windows() {
        let m = MinHasher::new(Shingle::Words(2), 4, 1).unwrap();
        let mut s = Vec::new();
        m.shingles("a b c a b", &mut s);
        assert_eq!(s.len(), 3); // "a b", "b c", "c a"
        m.shingles("a", &mut s);
        assert_eq!(s.len(), 1);
        m.shingles("", &mut s);
        assert!(s.is_empty());
        let c = MinHasher::new(Shingle::Chars(3), 4, 1).unwrap();
        c.shingles("abcabc", &mut s);
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn jaccard_is_exact() {
        assert_eq!(jaccard(&[1, 2, 3, 4], &[3, 4, 5]), 2.0 / 5.0);
        assert_eq!(jaccard(&[], &[1]), 0.0);
        assert_eq!(jaccard(&[7], &[7]), 1.0);
    }

    #[test]
    fn signature_agreement_estimates_jaccard() {
        let m = MinHasher::new(Shingle::Words(1), 512, 42).unwrap();
        let mut rng = SplitMix64(9);
        for (shared, own) in [(800usize, 200usize), (500, 500), (200, 800)] {
            let common: Vec<u64> = (0..shared).map(|_| rng.next_u64()).collect();
            let mut a = common.clone();
            let mut b = common;
            a.extend((0..own).map(|_| rng.next_u64()));
            b.extend((0..own).map(|_| rng.next_u64()));
            a.sort_unstable();
            b.sort_unstable();
            let (mut sa, mut sb) = (vec![0; 512], vec![0; 512]);
            m.signature(&a, &mut sa);
            m.signature(&b, &mut sb);
            let agree = sa.iter().zip(&sb).filter(|(x, y)| x == y).count() as f64 / 512.0;
            let truth = jaccard(&a, &b);
            // Standard error at 512 permutations is at most 0.022; allow 4 of them.
            assert!((agree - truth).abs() < 0.09, "J={truth} estimate={agree}");
        }
    }

    #[test]
    fn dispatched_signature_equals_the_portable_kernel() {
        let m = MinHasher::new(Shingle::Words(5), 128, 3).unwrap();
        let mut rng = SplitMix64(5);
        let set: Vec<u64> = (0..300).map(|_| rng.next_u64()).collect();
        let (mut fast, mut plain) = (vec![0; 128], vec![u32::MAX; 128]);
        m.signature(&set, &mut fast);
        signature_kernel(&set, &m.a, &m.b, &mut plain);
        assert_eq!(fast, plain);
    }

    #[test]
    fn zero_parameters_are_rejected() {
        assert!(MinHasher::new(Shingle::Words(0), 8, 1).is_err());
        assert!(MinHasher::new(Shingle::Words(5), 0, 1).is_err());
    }
}
