//! A timer for a `HistogramVec` whose label values are given when it stops (the route or status known only after the work).

use std::time::Instant;

use crate::error::Result;
use crate::metrics::HistogramVec;

/// Times a span and observes it, in seconds, in the child of a
/// [`HistogramVec`] chosen when the timer stops: for labels known only at
/// the end (the route after routing, the status after handling). Dropping
/// it without [`observe_with`](HistogramVecTimer::observe_with) observes
/// nothing, since there are no labels to observe it under.
///
/// ```
/// use prometheus_multiproc::{HistogramVec, MetricsDir};
/// # let tmp = tempfile::tempdir().unwrap();
/// let dir = MetricsDir::open(tmp.path()).unwrap();
/// let h = HistogramVec::new_in(&dir, prometheus::HistogramOpts::new("req_seconds", "Latency."), &["method", "status"]).unwrap();
/// let timer = h.start_timer_unlabelled();
/// // ... route and handle the request ...
/// timer.observe_with(&["GET", "200"]).unwrap();
/// assert_eq!(h.with_label_values(&["GET", "200"]).get_sample_count(), 1);
/// ```
#[must_use = "an unlabelled timer observes nothing until `observe_with` is called"]
#[derive(Debug)]
pub struct HistogramVecTimer {
    vec: HistogramVec,
    start: Instant,
}

impl HistogramVec {
    /// Starts a timer whose label values are given when it stops; see
    /// [`HistogramVecTimer`].
    pub fn start_timer_unlabelled(&self) -> HistogramVecTimer {
        HistogramVecTimer {
            vec: self.clone(),
            start: Instant::now(),
        }
    }
}

impl HistogramVecTimer {
    /// Observes the elapsed seconds in the child for `values` and returns
    /// them. Fails (observing nothing) on a wrong number of values, or when
    /// this process's file cannot be created.
    ///
    /// ```
    /// # use prometheus_multiproc::{HistogramVec, MetricsDir};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let dir = MetricsDir::open(tmp.path()).unwrap();
    /// let h = HistogramVec::new_in(&dir, prometheus::HistogramOpts::new("job_seconds", "Jobs."), &["kind"]).unwrap();
    /// let err = h.start_timer_unlabelled().observe_with(&["a", "b"]).unwrap_err();
    /// assert!(err.is_label_count());
    /// ```
    pub fn observe_with(self, values: &[&str]) -> Result<f64> {
        let seconds = self.start.elapsed().as_secs_f64();
        let child = self.vec.get_metric_with_label_values(values)?;
        child.try_observe(seconds)?;
        Ok(seconds)
    }

    /// Stops without observing; returns the elapsed seconds.
    ///
    /// ```
    /// # use prometheus_multiproc::{HistogramVec, MetricsDir};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let dir = MetricsDir::open(tmp.path()).unwrap();
    /// let h = HistogramVec::new_in(&dir, prometheus::HistogramOpts::new("job_seconds", "Jobs."), &["kind"]).unwrap();
    /// assert!(h.start_timer_unlabelled().stop_and_discard() >= 0.0);
    /// ```
    pub fn stop_and_discard(self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetricsDir;

    #[test]
    fn observes_under_the_labels_given_at_the_end_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = MetricsDir::open(tmp.path()).unwrap();
        let opts = prometheus::HistogramOpts::new("t_seconds", "T.").buckets(vec![1e9]);
        let h = HistogramVec::new_in(&dir, opts, &["route"]).unwrap();
        let t1 = h.start_timer_unlabelled();
        let t2 = h.start_timer_unlabelled();
        let s = t1.observe_with(&["/a"]).unwrap();
        assert_eq!(h.with_label_values(&["/a"]).get_sample_count(), 1);
        assert_eq!(h.with_label_values(&["/a"]).get_sample_sum(), s);
        drop(t2);
        assert_eq!(h.with_label_values(&["/a"]).get_sample_count(), 1);
        assert_eq!(h.with_label_values(&["/b"]).get_sample_count(), 0);
    }
}
