//! A cost model whose per-entry and per-series costs depend on the number
//! of distinct series (the working set outgrows the caches), read off the
//! axes point by point instead of fitted as constants.
//!
//! time(files, entries, series) = fixed + per_file·files
//!     + per_series(series)·series + per_entry(series)·(entries − series)
//!
//! `per_file` and `fixed`: a line through the files axis (8 keys, so each
//! file's 8 entries are in its cost). `per_series(S)`: a series-axis point
//! (64 files, S series of one entry each), less its files, divided by S.
//! `per_entry(K)`: an entries-axis point (64 files sharing K keys), less
//! its files and its K first sights, divided by its other entries. Between
//! measured levels both are interpolated on log(series); beyond the
//! largest they stay at its value (costs so far only grew with scale, so
//! that is a lower bound).

use crate::{Axis, Point};

/// Costs by scale, in the unit of the measurements (ms).
#[derive(Clone, Debug)]
pub struct ScaleModel {
    pub fixed: f64,
    pub per_file: f64,
    /// (series, cost per series), by series.
    pub per_series: Vec<(f64, f64)>,
    /// (distinct keys, cost per entry after the first), by keys.
    pub per_entry: Vec<(f64, f64)>,
}

/// Interpolates `levels` (sorted by x) at `x` on log(x); clamps outside.
fn interpolate(levels: &[(f64, f64)], x: f64) -> f64 {
    let (Some(first), Some(last)) = (levels.first(), levels.last()) else {
        return 0.0;
    };
    if x <= first.0 {
        return first.1;
    }
    if x >= last.0 {
        return last.1;
    }
    for w in levels.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if x <= x1 {
            let t = (x.ln() - x0.ln()) / (x1.ln() - x0.ln());
            return y0 + t * (y1 - y0);
        }
    }
    last.1
}

/// A line through (x, y) by least squares: (slope, intercept).
fn line(xy: &[(f64, f64)]) -> Option<(f64, f64)> {
    // CAST: a handful of points.
    let n = xy.len() as f64;
    let (sx, sy) = xy.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let sxx: f64 = xy.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    let sxy: f64 = xy.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    if xy.len() < 2 || sxx == 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    Some((slope, my - slope * mx))
}

/// Counts of a point, as f64: (files, entries, series).
fn counts(p: &Point) -> (f64, f64, f64) {
    // CAST: counts far below 2^53.
    (
        p.shape.files as f64,
        p.shape.entries() as f64,
        p.shape.series() as f64,
    )
}

impl ScaleModel {
    /// Reads the model off the points' `y` (e.g. the cold median).
    pub fn build(points: &[Point], y: impl Fn(&Point) -> Option<f64>) -> Option<ScaleModel> {
        let on = |axis: Axis| points.iter().filter(move |p| p.axis == axis);
        let files: Vec<(f64, f64)> = on(Axis::Files)
            .filter_map(|p| Some((counts(p).0, y(p)?)))
            .collect();
        let (per_file, fixed) = line(&files)?;
        let mut m = ScaleModel {
            fixed: fixed.max(0.0),
            per_file,
            per_series: Vec::new(),
            per_entry: Vec::new(),
        };
        for p in on(Axis::Series) {
            let (f, _, s) = counts(p);
            let rest = y(p)? - m.fixed - per_file * f;
            m.per_series.push((s, (rest / s).max(0.0)));
        }
        for p in on(Axis::Entries) {
            let (f, e, k) = counts(p);
            let rest = y(p)? - m.fixed - per_file * f - interpolate(&m.per_series, k) * k;
            m.per_entry.push((k, (rest / (e - k)).max(0.0)));
        }
        m.per_series.sort_by(|a, b| a.0.total_cmp(&b.0));
        m.per_entry.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(m)
    }

    pub fn predict(&self, files: f64, entries: f64, series: f64) -> f64 {
        self.fixed
            + self.per_file * files
            + interpolate(&self.per_series, series) * series
            + interpolate(&self.per_entry, series) * (entries - series).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::interpolate;

    #[test]
    fn interpolates_on_log_scale_and_clamps() {
        let l = [(100.0, 1.0), (10_000.0, 3.0)];
        assert_eq!(interpolate(&l, 10.0), 1.0);
        assert!((interpolate(&l, 1000.0) - 2.0).abs() < 1e-12);
        assert_eq!(interpolate(&l, 1e6), 3.0);
    }
}
