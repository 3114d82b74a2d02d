//! Timing and tracking helpers: time a closure or a future into a histogram or summary, track a scope or a future as in progress on a gauge, count the errors of a `Result`-returning future.
//!
//! The future wrappers are plain [`Future`]s (no runtime needed). They start
//! timing or tracking when first polled, and finish when the inner future
//! completes **or when they are dropped before completing** (a cancelled
//! request, a `select!` that lost), like a `finally` block: a cancelled
//! future still records its duration and leaves the in-progress gauge.
//!
//! ```
//! use prometheus_multiproc::{Gauge, GaugeMode, Histogram, MetricsDir};
//! # let tmp = tempfile::tempdir().unwrap();
//! let dir = MetricsDir::open(tmp.path()).unwrap();
//! let latency = Histogram::with_opts_in(&dir, prometheus::HistogramOpts::new("job_seconds", "Job time.")).unwrap();
//! let running = Gauge::new_in(&dir, "jobs_running", "Jobs running.", GaugeMode::LiveSum).unwrap();
//!
//! async fn job() -> u32 { 42 }
//! let fut = latency.time_future(running.track_future(job()));
//! # let v = tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(fut);
//! # assert_eq!(v, 42);
//! // `fut.await` in async code.
//! assert_eq!(latency.get_sample_count(), 1);
//! assert_eq!(running.get(), 0.0);
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::metrics::{Counter, CounterVec, Gauge, Histogram, Summary};

/// Where a [`TimedFuture`] records its duration.
#[derive(Debug, Clone)]
enum Sink {
    Histogram(Histogram),
    Summary(Summary),
}

impl Sink {
    fn observe(&self, v: f64) {
        match self {
            Sink::Histogram(h) => h.observe(v),
            Sink::Summary(s) => s.observe(v),
        }
    }
}

pin_project_lite::pin_project! {
    /// A future that observes its running time, in seconds, in a
    /// [`Histogram`] or [`Summary`]: from its first poll until it completes
    /// or is dropped. Made by [`Histogram::time_future`] and
    /// [`Summary::time_future`].
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct TimedFuture<F> {
        #[pin]
        inner: F,
        sink: Sink,
        start: Option<Instant>,
        done: bool,
    }

    impl<F> PinnedDrop for TimedFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let (Some(start), false) = (*this.start, *this.done) {
                this.sink.observe(start.elapsed().as_secs_f64());
            }
        }
    }
}

impl<F: Future> Future for TimedFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let start = *this.start.get_or_insert_with(Instant::now);
        let out = this.inner.poll(cx);
        if out.is_ready() && !*this.done {
            *this.done = true;
            this.sink.observe(start.elapsed().as_secs_f64());
        }
        out
    }
}

impl Histogram {
    /// Wraps `fut` so that its running time (first poll to completion or
    /// drop) is observed in this histogram, in seconds.
    ///
    /// ```
    /// # use prometheus_multiproc::{Histogram, MetricsDir};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let dir = MetricsDir::open(tmp.path()).unwrap();
    /// let h = Histogram::with_opts_in(&dir, prometheus::HistogramOpts::new("fetch_seconds", "Fetch time.")).unwrap();
    /// let body = h.time_future(async { "body" });
    /// # let body = tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(body);
    /// // let body = body.await;
    /// assert_eq!(body, "body");
    /// assert_eq!(h.get_sample_count(), 1);
    /// ```
    pub fn time_future<F: Future>(&self, fut: F) -> TimedFuture<F> {
        TimedFuture {
            inner: fut,
            sink: Sink::Histogram(self.clone()),
            start: None,
            done: false,
        }
    }
}

impl Summary {
    /// Wraps `fut` so that its running time is observed in this summary, in
    /// seconds (see [`Histogram::time_future`]).
    pub fn time_future<F: Future>(&self, fut: F) -> TimedFuture<F> {
        TimedFuture {
            inner: fut,
            sink: Sink::Summary(self.clone()),
            start: None,
            done: false,
        }
    }

    /// Times `f` and observes its duration in seconds.
    ///
    /// ```
    /// # use prometheus_multiproc::{Summary, MetricsDir};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let dir = MetricsDir::open(tmp.path()).unwrap();
    /// let s = Summary::new_in(&dir, "parse_seconds", "Parse time.").unwrap();
    /// let n: i32 = s.observe_closure_duration(|| "42".parse().unwrap());
    /// assert_eq!((n, s.get_sample_count()), (42, 1));
    /// ```
    pub fn observe_closure_duration<F: FnOnce() -> T, T>(&self, f: F) -> T {
        let start = Instant::now();
        let r = f();
        self.observe(start.elapsed().as_secs_f64());
        r
    }
}

/// Keeps a [`Gauge`] incremented while it lives: made by
/// [`Gauge::track_inprogress`], it decrements the gauge when dropped.
#[must_use = "the gauge is decremented when this guard is dropped; bind it to a variable"]
#[derive(Debug)]
pub struct InProgress {
    gauge: Gauge,
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

impl Gauge {
    /// Increments the gauge now and returns a guard that decrements it when
    /// dropped (also on early return or panic). Use a
    /// [`LiveSum`](crate::GaugeMode::LiveSum) gauge, so that a worker that
    /// dies mid-way does not leave its count behind.
    ///
    /// ```
    /// # use prometheus_multiproc::{Gauge, GaugeMode, MetricsDir};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let dir = MetricsDir::open(tmp.path()).unwrap();
    /// let busy = Gauge::new_in(&dir, "busy", "Work in progress.", GaugeMode::LiveSum).unwrap();
    /// {
    ///     let _guard = busy.track_inprogress();
    ///     assert_eq!(busy.get(), 1.0);
    /// }
    /// assert_eq!(busy.get(), 0.0);
    /// ```
    pub fn track_inprogress(&self) -> InProgress {
        self.inc();
        InProgress {
            gauge: self.clone(),
        }
    }

    /// Wraps `fut` so that the gauge counts it as in progress from its first
    /// poll until it completes or is dropped.
    ///
    /// ```
    /// # use prometheus_multiproc::{Gauge, GaugeMode, MetricsDir};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let dir = MetricsDir::open(tmp.path()).unwrap();
    /// let inflight = Gauge::new_in(&dir, "inflight", "In flight.", GaugeMode::LiveSum).unwrap();
    /// let g = inflight.clone();
    /// let fut = inflight.track_future(async move { g.get() });
    /// # let seen = tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(fut);
    /// // let seen = fut.await;
    /// assert_eq!(seen, 1.0);
    /// assert_eq!(inflight.get(), 0.0);
    /// ```
    pub fn track_future<F: Future>(&self, fut: F) -> InProgressFuture<F> {
        InProgressFuture {
            inner: fut,
            gauge: self.clone(),
            guard: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// A future counted as in progress on a [`Gauge`] from its first poll
    /// until it completes or is dropped. Made by [`Gauge::track_future`].
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct InProgressFuture<F> {
        #[pin]
        inner: F,
        gauge: Gauge,
        guard: Option<InProgress>,
    }
}

impl<F: Future> Future for InProgressFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if this.guard.is_none() {
            *this.guard = Some(this.gauge.track_inprogress());
        }
        let out = this.inner.poll(cx);
        if out.is_ready() {
            *this.guard = None;
        }
        out
    }
}

/// Where a [`CountErrors`] future counts.
enum ErrorSink<K> {
    Counter(Counter),
    ByKind(CounterVec, K),
}

pin_project_lite::pin_project! {
    /// A `Result`-returning future that counts its `Err` outcomes. Made by
    /// [`count_errors`] and [`Counter::count_errors`].
    #[must_use = "futures do nothing unless polled"]
    pub struct CountErrors<F, K> {
        #[pin]
        inner: F,
        sink: Option<ErrorSink<K>>,
    }
}

impl<F, K> std::fmt::Debug for CountErrors<F, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountErrors").finish_non_exhaustive()
    }
}

impl<F, T, E, K, S> Future for CountErrors<F, K>
where
    F: Future<Output = Result<T, E>>,
    K: FnOnce(&E) -> S,
    S: AsRef<str>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let out = this.inner.poll(cx);
        if let Poll::Ready(Err(e)) = &out
            && let Some(sink) = this.sink.take()
        {
            match sink {
                ErrorSink::Counter(c) => c.inc(),
                ErrorSink::ByKind(v, kind) => {
                    let label = kind(e);
                    match v.get_metric_with_label_values(&[label.as_ref()]) {
                        Ok(c) => c.inc(),
                        Err(err) => crate::warn::warn(format_args!(
                            "count_errors: {err} (the counter needs exactly one label, the error kind)"
                        )),
                    }
                }
            }
        }
        out
    }
}

/// Wraps a `Result`-returning future: when it completes with `Err(e)`,
/// increments `errors` with the label value `kind(&e)`. `errors` must have
/// exactly one variable label (the error kind); successes count nothing.
///
/// ```
/// use prometheus_multiproc::{CounterVec, MetricsDir};
/// use prometheus_multiproc::timing::count_errors;
/// # let tmp = tempfile::tempdir().unwrap();
/// let dir = MetricsDir::open(tmp.path()).unwrap();
/// let errors = CounterVec::new_in(&dir, prometheus::Opts::new("fetch_errors_total", "Fetch errors."), &["kind"]).unwrap();
///
/// async fn fetch() -> Result<String, std::io::Error> {
///     Err(std::io::Error::from(std::io::ErrorKind::TimedOut))
/// }
/// let fut = count_errors(fetch(), &errors, |e: &std::io::Error| format!("{:?}", e.kind()));
/// # let r = tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(fut);
/// // let r = fut.await;
/// assert!(r.is_err());
/// assert_eq!(errors.with_label_values(&["TimedOut"]).get(), 1.0);
/// ```
pub fn count_errors<F, T, E, K, S>(fut: F, errors: &CounterVec, kind: K) -> CountErrors<F, K>
where
    F: Future<Output = Result<T, E>>,
    K: FnOnce(&E) -> S,
    S: AsRef<str>,
{
    CountErrors {
        inner: fut,
        sink: Some(ErrorSink::ByKind(errors.clone(), kind)),
    }
}

/// The kind function of a [`CountErrors`] made by [`Counter::count_errors`].
pub type NoKind<E> = fn(&E) -> &'static str;

impl Counter {
    /// Wraps a `Result`-returning future: when it completes with `Err`, this
    /// counter is incremented.
    ///
    /// ```
    /// # use prometheus_multiproc::{Counter, MetricsDir};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let dir = MetricsDir::open(tmp.path()).unwrap();
    /// let failures = Counter::new_in(&dir, "job_failures_total", "Failed jobs.").unwrap();
    /// let fut = failures.count_errors(async { Err::<(), _>("boom") });
    /// # let _ = tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(fut);
    /// assert_eq!(failures.get(), 1.0);
    /// ```
    pub fn count_errors<F, T, E>(&self, fut: F) -> CountErrors<F, NoKind<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        CountErrors {
            inner: fut,
            sink: Some(ErrorSink::Counter(self.clone())),
        }
    }
}

/// Polls `fut` to completion on the current thread (a minimal executor for
/// the unit tests).
#[cfg(test)]
pub(crate) fn block_on_for_doc<F: Future>(fut: F) -> F::Output {
    struct ThreadWaker(std::thread::Thread);
    impl std::task::Wake for ThreadWaker {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GaugeMode, MetricsDir};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A future that is pending `n` times (waking itself), then ready.
    struct Yield(usize);
    impl Future for Yield {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 == 0 {
                return Poll::Ready(());
            }
            self.0 -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    fn dir() -> (tempfile::TempDir, MetricsDir) {
        let tmp = tempfile::tempdir().unwrap();
        let d = MetricsDir::open(tmp.path()).unwrap();
        (tmp, d)
    }

    #[test]
    fn timed_future_measures_from_first_poll_to_completion() {
        let (_t, d) = dir();
        let h = Histogram::with_opts_in(
            &d,
            prometheus::HistogramOpts::new("t", "").buckets(vec![0.01, 10.0]),
        )
        .unwrap();
        let fut = h.time_future(async {
            Yield(3).await;
            std::thread::sleep(Duration::from_millis(30));
            7
        });
        // Not started yet: creating a future records nothing.
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(h.get_sample_count(), 0);
        assert_eq!(block_on_for_doc(fut), 7);
        assert_eq!(h.get_sample_count(), 1);
        let s = h.get_sample_sum();
        assert!((0.03..0.055).contains(&s), "{s}");
    }

    #[test]
    fn dropped_futures_still_finish() {
        let (_t, d) = dir();
        let h = Histogram::with_opts_in(&d, prometheus::HistogramOpts::new("t", "")).unwrap();
        let s = Summary::new_in(&d, "s", "").unwrap();
        let g = Gauge::new_in(&d, "g", "", GaugeMode::LiveSum).unwrap();
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        {
            let mut fut = Box::pin(
                s.time_future(h.time_future(g.track_future(std::future::pending::<()>()))),
            );
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            assert_eq!(g.get(), 1.0);
        }
        assert_eq!(g.get(), 0.0);
        assert_eq!(h.get_sample_count(), 1);
        assert_eq!(s.get_sample_count(), 1);
        // Never polled: nothing recorded, nothing tracked.
        drop(h.time_future(g.track_future(async {})));
        assert_eq!((h.get_sample_count(), g.get()), (1, 0.0));
    }

    #[test]
    fn in_progress_guard_survives_panics() {
        let (_t, d) = dir();
        let g = Gauge::new_in(&d, "g", "", GaugeMode::LiveSum).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _a = g.track_inprogress();
            let _b = g.track_inprogress();
            assert_eq!(g.get(), 2.0);
            panic!("boom");
        }));
        assert!(r.is_err());
        assert_eq!(g.get(), 0.0);
    }

    #[test]
    fn errors_counted_by_kind_once() {
        let (_t, d) = dir();
        let v = CounterVec::new_in(&d, prometheus::Opts::new("e", ""), &["kind"]).unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        for r in [Ok(1), Err("timeout"), Err("refused"), Err("timeout")] {
            let c = Arc::clone(&calls);
            let got = block_on_for_doc(count_errors(
                async move {
                    Yield(1).await;
                    r
                },
                &v,
                move |e: &&str| {
                    c.fetch_add(1, Ordering::Relaxed);
                    e.to_string()
                },
            ));
            assert_eq!(got, r);
        }
        assert_eq!(calls.load(Ordering::Relaxed), 3);
        assert_eq!(v.with_label_values(&["timeout"]).get(), 2.0);
        assert_eq!(v.with_label_values(&["refused"]).get(), 1.0);
        // A counter with the wrong number of labels: the result passes
        // through, nothing is counted, nothing panics.
        let two = CounterVec::new_in(&d, prometheus::Opts::new("e2", ""), &["a", "b"]).unwrap();
        assert!(block_on_for_doc(count_errors(async { Err::<(), _>(()) }, &two, |_| "x")).is_err());
        let c = Counter::new_in(&d, "c", "").unwrap();
        let _ = block_on_for_doc(c.count_errors(async { Ok::<_, ()>(()) }));
        let _ = block_on_for_doc(c.count_errors(async { Err::<(), _>(()) }));
        assert_eq!(c.get(), 1.0);
    }
}
