//! Exact, order-independent summation of floats: a sum kept as non-overlapping partials and rounded once.
//!
//! The exact sum of finite floats is kept as a short list of floats that do
//! not overlap in their bits (Shewchuk's algorithm, the one behind Python's
//! `math.fsum`); their exact sum is the exact sum of the inputs, whatever
//! their order. [`ExactSum::value`] rounds it once, to nearest, ties to even.
//! Non-finite inputs (and an overflow of a partial) are summed apart and
//! decide the result, as they would in any order.

/// An exact running sum of `f64`s.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ExactSum {
    /// Non-overlapping, non-zero partials, increasing in magnitude.
    partials: Vec<f64>,
    /// The sum of the non-finite inputs and of overflowed partials (0.0 if none).
    special: f64,
}

impl ExactSum {
    /// Adds `x` exactly.
    pub(crate) fn add(&mut self, mut x: f64) {
        if !x.is_finite() {
            self.special += x;
            return;
        }
        let mut kept = 0;
        for j in 0..self.partials.len() {
            let mut y = self.partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            if !hi.is_finite() {
                // Overflow: the exact sum is beyond f64; so is any rounding of it.
                self.special += hi;
                self.partials.clear();
                return;
            }
            let lo = y - (hi - x);
            if lo != 0.0 {
                self.partials[kept] = lo;
                kept += 1;
            }
            x = hi;
        }
        self.partials.truncate(kept);
        if x != 0.0 {
            self.partials.push(x);
        }
    }

    /// The non-overlapping parts whose exact sum is the sum (for storing it
    /// without rounding); a non-finite sum is one part.
    pub(crate) fn parts(&self) -> Vec<f64> {
        if self.special != 0.0 {
            return vec![self.special];
        }
        self.partials.clone()
    }

    /// The exact sum rounded once to the nearest `f64` (ties to even).
    pub(crate) fn value(&self) -> f64 {
        if self.special != 0.0 {
            return self.special;
        }
        let p = &self.partials;
        let Some(mut n) = p.len().checked_sub(1) else {
            return 0.0;
        };
        let mut hi = p[n];
        let mut lo = 0.0;
        while n > 0 {
            let x = hi;
            n -= 1;
            let y = p[n];
            hi = x + y;
            lo = y - (hi - x);
            if lo != 0.0 {
                break;
            }
        }
        // `hi + lo` is exact; the partials below `lo` decide a tie: if they
        // push the same way as `lo`, round away from `hi`.
        if n > 0 && ((lo < 0.0 && p[n - 1] < 0.0) || (lo > 0.0 && p[n - 1] > 0.0)) {
            let y = lo * 2.0;
            let x = hi + y;
            if y == x - hi {
                hi = x;
            }
        }
        hi
    }
}

#[cfg(test)]
mod tests {
    use super::ExactSum;

    fn sum(xs: &[f64]) -> f64 {
        let mut s = ExactSum::default();
        xs.iter().for_each(|&x| s.add(x));
        s.value()
    }

    /// A small deterministic generator (no dependency needed for a test).
    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 11
    }

    #[test]
    fn cancellation_and_tiny_terms_are_exact() {
        assert_eq!(sum(&[1e100, 1.0, -1e100]), 1.0);
        assert_eq!(sum(&[0.1; 10]), 1.0);
        assert_ne!([0.1; 10].iter().sum::<f64>(), 1.0);
        assert_eq!(sum(&[1.0, 1e-16, 1e-16]), 1.0000000000000002);
        assert_eq!(sum(&[]), 0.0);
        assert_eq!(sum(&[f64::INFINITY, 1.0]), f64::INFINITY);
        assert!(sum(&[f64::INFINITY, f64::NEG_INFINITY]).is_nan());
        assert_eq!(sum(&[f64::MAX, f64::MAX]), f64::INFINITY);
    }

    #[test]
    fn ties_round_to_even() {
        // 1 + 2^-53 is halfway between 1 and its successor: ties to even (1),
        // but the smallest extra term breaks the tie upwards.
        let half = f64::EPSILON / 2.0;
        assert_eq!(sum(&[1.0, half]), 1.0);
        assert_eq!(sum(&[1.0, half, 1e-300]), 1.0 + f64::EPSILON);
        assert_eq!(sum(&[-1.0, -half, -1e-300]), -1.0 - f64::EPSILON);
    }

    #[test]
    fn any_order_and_any_split_give_the_same_bits() {
        let mut seed = 7;
        let xs: Vec<f64> = (0..2000)
            .map(|i| {
                let r = lcg(&mut seed) as f64 / (1u64 << 53) as f64;
                match i % 4 {
                    0 => r * 1e-3,
                    1 => 0.1,
                    2 => r * 1e6,
                    _ => -r,
                }
            })
            .collect();
        let want = sum(&xs);
        let mut rev = xs.clone();
        rev.reverse();
        assert_eq!(sum(&rev).to_bits(), want.to_bits());
        // Folding a prefix into stored parts, then adding the rest.
        for cut in [0, 1, 500, 1999, 2000] {
            let mut dead = ExactSum::default();
            xs[..cut].iter().for_each(|&x| dead.add(x));
            let mut total = ExactSum::default();
            dead.parts().into_iter().for_each(|p| total.add(p));
            xs[cut..].iter().for_each(|&x| total.add(x));
            assert_eq!(total.value().to_bits(), want.to_bits(), "cut {cut}");
        }
        // The parts grow in magnitude, and adding them naively, smallest
        // first (as prometheus_client adds an archive's entries), gives the
        // exact value within one ulp.
        let mut all = ExactSum::default();
        xs.iter().for_each(|&x| all.add(x));
        let parts = all.parts();
        assert!(
            parts.windows(2).all(|w| w[0].abs() < w[1].abs()),
            "{parts:?}"
        );
        let naive: f64 = parts.iter().sum();
        assert!((naive.to_bits() as i64 - want.to_bits() as i64).abs() <= 1);
    }
}
