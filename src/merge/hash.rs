//! A small fast hasher (FxHash, four lanes for long keys) for the merge's maps.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FxHash. The keys come from the metrics directory, which is as trusted as
/// the processes writing it, so a hash that an attacker could flood is
/// acceptable.
#[derive(Default, Clone, Copy)]
pub(super) struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    /// Long inputs (raw keys are 100 to 300 bytes) go through four
    /// independent lanes of 8 bytes, folded at the end: a quarter of the
    /// latency of one sequential chain. The tail is one (overlapping) word.
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let word = |b: &[u8]| u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
        let mut rest = bytes;
        if rest.len() >= 32 {
            let mut lanes = [0u64; 4];
            while rest.len() >= 32 {
                for (i, l) in lanes.iter_mut().enumerate() {
                    *l = (l.rotate_left(5) ^ word(&rest[i * 8..])).wrapping_mul(FX_SEED);
                }
                rest = &rest[32..];
            }
            for l in lanes {
                self.add(l);
            }
        }
        while rest.len() >= 8 {
            self.add(word(rest));
            rest = &rest[8..];
        }
        if !rest.is_empty() {
            let tail = if bytes.len() >= 8 {
                // The last 8 bytes of the input, overlapping words already
                // hashed (the length is hashed too, so this is unambiguous).
                word(&bytes[bytes.len() - 8..])
            } else {
                let mut b = [0u8; 8];
                b[..rest.len()].copy_from_slice(rest);
                u64::from_le_bytes(b)
            };
            self.add(tail);
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i.into());
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i.into());
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        // CAST: usize is at most 64 bits on every supported target.
        self.add(i as u64);
    }
    /// The state, mixed down (murmur3's `fmix64` halves): a multiply only
    /// moves information towards the high bits, and the maps index their
    /// buckets with the low ones. Without this, strings that differ only
    /// in their last few bytes (`user_1`, `user_2`, ... or
    /// `/api/v1/resource_12345`) shared a few hundred buckets out of
    /// 131,072, and interning 100,000 of them took seconds.
    #[inline]
    fn finish(&self) -> u64 {
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^ (h >> 33)
    }
}

/// Builds [`FxHasher`]s.
pub(super) type FxBuild = BuildHasherDefault<FxHasher>;
/// A hash map with [`FxHasher`].
pub(super) type FxMap<K, V> = HashMap<K, V, FxBuild>;

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    use super::FxBuild;

    /// Distinct values of the low 17 bits (what a map of 100,000 entries
    /// indexes its buckets with) over the hashes of `values`.
    fn low_buckets(values: &[String]) -> usize {
        let b = FxBuild::default();
        let set: HashSet<u64> = values
            .iter()
            .map(|v| b.hash_one(v.as_str()) & 0x1_ffff)
            .collect();
        set.len()
    }

    /// Label values that differ only in their last bytes must spread over
    /// the buckets like random hashes do (about 69,900 distinct of 131,072
    /// for 100,000 values); before `finish` mixed, they took 136 and 2,079.
    #[test]
    fn short_strings_differing_at_the_end_spread_over_low_bits() {
        for make in [
            (|i: usize| format!("/api/v1/resource_{i}")) as fn(usize) -> String,
            |i| format!("user_{i}"),
            |i| format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
        ] {
            let values: Vec<String> = (0..100_000).map(make).collect();
            let n = low_buckets(&values);
            assert!(
                n > 65_000,
                "{}: only {n} distinct low-bit buckets",
                values[0]
            );
        }
    }
}
