//! Small deterministic 64-bit hashes: the same value on every machine, build and run,
//! which `std`'s randomly keyed hasher does not give.

const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// MurmurHash3's 64-bit finalizer: every input bit affects every output bit.
#[inline]
pub fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// One step of folding a 64-bit value into a running hash.
#[inline]
pub fn fold(h: u64, v: u64) -> u64 {
    (h ^ v).wrapping_mul(K).rotate_left(29)
}

/// Hashes `bytes` under `seed`.
#[inline]
pub fn hash_bytes(bytes: &[u8], seed: u64) -> u64 {
    let mut h = fold(seed, (bytes.len() as u64).wrapping_mul(K));
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = fold(h, u64::from_le_bytes(w));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = fold(h, u64::from_le_bytes(w));
    }
    fmix64(h)
}

/// [`hash_bytes`] of `buf[start..end]`, faster for words of at most 8 bytes: when 8 bytes
/// from `start` lie inside `buf`, they are read at once and masked to the word.
#[inline]
pub fn hash_word_in(buf: &[u8], start: usize, end: usize, seed: u64) -> u64 {
    let len = end - start;
    if (1..=8).contains(&len) {
        if let Some(chunk) = buf.get(start..start + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            let v = u64::from_le_bytes(w) & (u64::MAX >> (64 - 8 * len as u32));
            let h = fold(seed, (len as u64).wrapping_mul(K));
            return fmix64(fold(h, v));
        }
    }
    hash_bytes(&buf[start..end], seed)
}

/// SplitMix64: a stream of well-mixed values from one seed (for hash parameters).
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next value of the stream.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(K);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_and_discriminate() {
        assert_eq!(hash_bytes(b"hello world", 1), hash_bytes(b"hello world", 1));
        assert_ne!(hash_bytes(b"hello world", 1), hash_bytes(b"hello world", 2));
        assert_ne!(hash_bytes(b"a", 0), hash_bytes(b"a\0", 0));
        assert_ne!(hash_bytes(b"", 0), hash_bytes(b"\0", 0));
        let buf = b"one three eightchr ninechars. tail";
        for (s, e) in [(0, 3), (4, 9), (10, 18), (19, 29), (30, 34), (31, 34)] {
            assert_eq!(
                hash_word_in(buf, s, e, 7),
                hash_bytes(&buf[s..e], 7),
                "{s}..{e}"
            );
        }
    }
}
