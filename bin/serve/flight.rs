//! One merge for all the scrapes that arrive while it runs, and one encoded body per requested form, shared by every response that sends it.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, Weak};

use hyper::body::Bytes;
use prometheus_multiproc::integrations::NameFilter;
use prometheus_multiproc::merge::Family;
use tokio::sync::watch;

use super::budget::{Budget, OverBudget, release_free_memory};
use super::render::{self, AppFamilies, Wanted};

/// Why a merge gave no families.
#[derive(Debug)]
pub enum Failure {
    /// The directory could not be read.
    Error(prometheus_multiproc::Error),
    /// The merge panicked (a bug).
    Panicked,
}

/// What a merge gives its scrapes.
pub type Outcome = Result<Arc<Merged>, Arc<Failure>>;

/// The families of one merge, and the bodies encoded from them so far.
pub struct Merged {
    /// The application's families (shared with other merges that gave the
    /// same), and the exporter's own.
    app: Arc<AppFamilies>,
    own: Vec<Family>,
    /// Encoded bodies by form; the lock is held while one is encoded, so
    /// that each form is encoded once.
    bodies: tokio::sync::Mutex<Vec<(Wanted, Bytes)>>,
    _trim: TrimOnDrop,
}

/// Declared last in [`Merged`], so dropped after the families: then gives
/// their memory back.
struct TrimOnDrop;

impl Drop for TrimOnDrop {
    fn drop(&mut self) {
        release_free_memory();
    }
}

impl Merged {
    pub fn new(app: Arc<AppFamilies>, own: Vec<Family>) -> Merged {
        Merged {
            app,
            own,
            bodies: tokio::sync::Mutex::new(Vec::new()),
            _trim: TrimOnDrop,
        }
    }

    /// The body in the form `wanted`, encoded (on the blocking pool) by the
    /// first scrape that asks for it, while the others wait without holding
    /// a thread, and charged to `budget` while any response holds it. A body
    /// cut to `names` (`?name[]=`) is encoded for its scrape alone.
    pub async fn body(
        self: Arc<Self>,
        wanted: Wanted,
        names: Option<NameFilter>,
        budget: &Arc<Budget>,
    ) -> Result<Result<Bytes, OverBudget>, Arc<Failure>> {
        let me = Arc::clone(&self);
        if let Some(names) = names {
            let encoded = tokio::task::spawn_blocking(move || {
                let mut all = me.app.families.clone();
                all.extend_from_slice(&me.own);
                render::encode(&render::restrict(&all, &names), &wanted)
            })
            .await
            .map_err(|_| Arc::new(Failure::Panicked))?;
            return Ok(budget.adopt(encoded));
        }
        let mut bodies = self.bodies.lock().await;
        if let Some((_, b)) = bodies.iter().find(|(w, _)| *w == wanted) {
            return Ok(Ok(b.clone()));
        }
        let key = wanted.clone();
        let encoded =
            tokio::task::spawn_blocking(move || render::encode_with_own(&me.app, &me.own, &wanted))
                .await
                .map_err(|_| Arc::new(Failure::Panicked))?;
        Ok(budget
            .adopt(encoded)
            .inspect(|body| bodies.push((key, body.clone()))))
    }
}

/// A merge in progress or done; `None` until it is done.
struct Flight {
    tx: watch::Sender<Option<Outcome>>,
}

/// The current merge, shared by the scrapes that arrive while it runs.
#[derive(Default)]
pub struct Flights {
    /// Weak: a finished merge lives only as long as the scrapes using it.
    current: Mutex<Weak<Flight>>,
}

impl Flights {
    /// The outcome of the merge in progress, or of a new one running `merge`
    /// on the blocking pool if none is in progress.
    pub async fn merged<F>(&self, merge: F) -> Outcome
    where
        F: FnOnce() -> Result<Merged, prometheus_multiproc::Error> + Send + 'static,
    {
        let flight = self.join_or_start(merge);
        let mut rx = flight.tx.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(v) => v
                .clone()
                .unwrap_or_else(|| Err(Arc::new(Failure::Panicked))),
            // Cannot happen: the sender lives in `flight`, held here.
            Err(_) => Err(Arc::new(Failure::Panicked)),
        }
    }

    fn join_or_start<F>(&self, merge: F) -> Arc<Flight>
    where
        F: FnOnce() -> Result<Merged, prometheus_multiproc::Error> + Send + 'static,
    {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = current.upgrade()
            && f.tx.borrow().is_none()
        {
            return f;
        }
        let flight = Arc::new(Flight {
            tx: watch::channel(None).0,
        });
        *current = Arc::downgrade(&flight);
        // The task holds the flight while it merges, so that scrapes arriving
        // meanwhile join it even if every earlier one has given up.
        let running = Arc::clone(&flight);
        tokio::task::spawn_blocking(move || {
            let outcome = match std::panic::catch_unwind(AssertUnwindSafe(merge)) {
                Ok(Ok(m)) => Ok(Arc::new(m)),
                Ok(Err(e)) => Err(Arc::new(Failure::Error(e))),
                Err(_) => Err(Arc::new(Failure::Panicked)),
            };
            running.tx.send_replace(Some(outcome));
        });
        flight
    }
}
