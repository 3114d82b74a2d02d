//! `f64` values kept in `AtomicU64` slots: add, set and read without locks.
//!
//! The slots live in mapped files (see `mmap`); these functions only see an
//! `&AtomicU64` and need no `unsafe`. Orderings are `Relaxed`: a slot
//! publishes no other memory (see "Atomic orderings" in `mmap`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Reads the value.
#[inline]
pub(crate) fn get(slot: &AtomicU64) -> f64 {
    f64::from_bits(slot.load(Ordering::Relaxed))
}

/// Stores `v`.
#[inline]
pub(crate) fn set(slot: &AtomicU64, v: f64) {
    slot.store(v.to_bits(), Ordering::Relaxed);
}

/// Adds `delta`, returning nothing; lock-free. A failed exchange feeds the
/// value it found back into the next attempt.
#[inline]
pub(crate) fn add(slot: &AtomicU64, delta: f64) {
    let mut old = slot.load(Ordering::Relaxed);
    loop {
        let new = (f64::from_bits(old) + delta).to_bits();
        match slot.compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(found) => old = found,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn f64_survives_the_atomic(v in any::<f64>()) {
            let s = AtomicU64::new(0);
            set(&s, v);
            let got = get(&s);
            prop_assert!(got.to_bits() == v.to_bits());
        }

        #[test]
        fn add_is_float_addition(a in -1e12f64..1e12, b in -1e12f64..1e12) {
            let s = AtomicU64::new(0);
            set(&s, a);
            add(&s, b);
            prop_assert_eq!(get(&s), a + b);
        }
    }

    #[test]
    fn concurrent_adds_lose_nothing() {
        let s = AtomicU64::new(0);
        std::thread::scope(|sc| {
            for _ in 0..4 {
                sc.spawn(|| {
                    for _ in 0..10_000 {
                        add(&s, 1.0);
                    }
                });
            }
        });
        assert_eq!(get(&s), 40_000.0);
    }
}
