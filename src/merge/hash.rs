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
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// Builds [`FxHasher`]s.
pub(super) type FxBuild = BuildHasherDefault<FxHasher>;
/// A hash map with [`FxHasher`].
pub(super) type FxMap<K, V> = HashMap<K, V, FxBuild>;
