//! Least squares: y ≈ a·files + b·entries + c·series + d. Times are fitted
//! by relative error (points span four orders of magnitude; unweighted, the
//! largest would decide every coefficient).

/// One observation: the three counts and the measured value.
#[derive(Clone, Copy, Debug)]
pub struct Obs {
    pub files: f64,
    pub entries: f64,
    pub series: f64,
    pub y: f64,
}

/// Coefficients: per file, per entry, per series, constant (units of `y`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Model {
    pub per_file: f64,
    pub per_entry: f64,
    pub per_series: f64,
    pub fixed: f64,
}

impl Model {
    pub fn predict(&self, files: f64, entries: f64, series: f64) -> f64 {
        self.per_file * files + self.per_entry * entries + self.per_series * series + self.fixed
    }
}

/// Minimises the sum of ((prediction − y) / y)²: every point counts alike.
/// `None` if fewer than four points or the columns are dependent.
pub fn fit(obs: &[Obs]) -> Option<Model> {
    fit_weighted(obs, |y| 1.0 / (y * y).max(f64::MIN_POSITIVE))
}

/// Minimises the sum of (prediction − y)²: the largest points decide (for
/// memory, whose small points are within the noise of a process's RSS).
pub fn fit_unweighted(obs: &[Obs]) -> Option<Model> {
    fit_weighted(obs, |_| 1.0)
}

/// Weighted least squares by the normal equations, on columns scaled to at
/// most 1 (the raw ones differ by 10^7).
fn fit_weighted(obs: &[Obs], weight: fn(f64) -> f64) -> Option<Model> {
    if obs.len() < 4 {
        return None;
    }
    let max = |f: fn(&Obs) -> f64| obs.iter().map(f).fold(1.0_f64, f64::max);
    let scale = [max(|o| o.files), max(|o| o.entries), max(|o| o.series), 1.0];
    let mut a = [[0.0_f64; 5]; 4];
    for o in obs {
        let w = weight(o.y);
        let x = [
            o.files / scale[0],
            o.entries / scale[1],
            o.series / scale[2],
            1.0,
        ];
        for i in 0..4 {
            for j in 0..4 {
                a[i][j] += w * x[i] * x[j];
            }
            a[i][4] += w * x[i] * o.y;
        }
    }
    let c = solve(a)?;
    Some(Model {
        per_file: c[0] / scale[0],
        per_entry: c[1] / scale[1],
        per_series: c[2] / scale[2],
        fixed: c[3],
    })
}

/// Gaussian elimination with partial pivoting on an augmented 4×5 matrix.
fn solve(mut a: [[f64; 5]; 4]) -> Option<[f64; 4]> {
    let norm = a
        .iter()
        .flat_map(|r| &r[..4])
        .fold(0.0_f64, |m, x| m.max(x.abs()));
    for col in 0..4 {
        let pivot = (col..4).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() <= 1e-12 * norm {
            return None;
        }
        a.swap(col, pivot);
        for row in col + 1..4 {
            let k = a[row][col] / a[col][col];
            let pivot_row = a[col];
            for (dst, src) in a[row][col..].iter_mut().zip(&pivot_row[col..]) {
                *dst -= k * src;
            }
        }
    }
    let mut x = [0.0; 4];
    for row in (0..4).rev() {
        let s: f64 = (row + 1..4).map(|j| a[row][j] * x[j]).sum();
        x[row] = (a[row][4] - s) / a[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_an_exact_model() {
        let m = Model {
            per_file: 3000.0,
            per_entry: 30.0,
            per_series: 500.0,
            fixed: 20_000.0,
        };
        let pts = [
            (16., 128., 8.),
            (4096., 32768., 8.),
            (64., 6400., 100.),
            (64., 64e4, 1e4),
            (64., 1e5, 1e5),
            (64., 1e6, 1e6),
        ];
        let obs: Vec<Obs> = pts
            .iter()
            .map(|&(f, e, s)| Obs {
                files: f,
                entries: e,
                series: s,
                y: m.predict(f, e, s),
            })
            .collect();
        let got = fit(&obs).unwrap();
        for (g, w) in [
            (got.per_file, m.per_file),
            (got.per_entry, m.per_entry),
            (got.per_series, m.per_series),
            (got.fixed, m.fixed),
        ] {
            assert!((g - w).abs() <= 1e-6 * w, "{g} vs {w}");
        }
    }
}
