//! Parallel merging: units of work, merging threads, and read-ahead for the threads still merging.

use std::fs::File;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use super::budget::{Budget, ImageBuf};
use super::collector::{MultiProcessCollector, Stats};
use super::encoded::Encoded;
use super::placement;
use super::read::{Read, Skip, Skipped, read_ahead_image};
use super::scrape::ScrapeState;
use super::warning::{Warning, WarningKind};
use crate::encoding::text::Encoder;
use crate::format::naming::{self, FileKind};
use crate::merge::{Family, Position};

impl MultiProcessCollector {
    /// Reads and merges `names` (in directory order), on up to `threads`
    /// threads: see [`units`]. With `format`, also returns the families
    /// encoded. `skipped` are the files skipped unopened, and why.
    pub(super) fn merge_all(
        &self,
        dirfd: &File,
        names: &[(String, FileKind)],
        skipped: Skipped,
        threads: usize,
        format: Option<Encoder>,
    ) -> (Vec<Family>, Part, Encoded) {
        let all: Vec<usize> = (0..names.len()).collect();
        let units = units(names);
        // One thread per unit, and one more to read ahead for them.
        let threads = threads.min(units.len() + 1);
        let parts = if threads < 2 || names.len() < PARALLEL_MIN_FILES {
            vec![self.merge_files(dirfd, names, &all, &mut self.image_buf(), format, None)]
        } else {
            let next = AtomicUsize::new(0);
            let aheads = ReadAheads::new(&units, self.budget);
            on_threads(threads, || {
                self.merge_units(dirfd, names, &units, &aheads, &next, format)
            })
        };
        let (families, mut merged, encoded) = match combine(parts, format) {
            Some(c) => c,
            // A metric in files of two types or gauge modes, merged out of
            // directory order or on two threads: merge everything again in
            // directory order on one thread, so that the conflict is decided
            // exactly as a sequential merge decides it.
            None => {
                let mut buf = self.image_buf();
                let one = vec![self.merge_files(dirfd, names, &all, &mut buf, format, None)];
                let (families, mut part, encoded) = combine(one, format).expect("a single part");
                part.merged_again = true;
                (families, part, encoded)
            }
        };
        self.settle(&mut merged, skipped);
        (families, merged, encoded)
    }

    /// Counts and warns about the files skipped unopened, sorts the
    /// warnings (deterministic, whatever the directory order) and adds the
    /// merge notes after them.
    pub(super) fn settle(&self, merged: &mut Part, skipped: Skipped) {
        merged.stats.files_skipped += skipped.len();
        let skipped = skipped
            .into_iter()
            .map(|(path, kind)| Warning { path, kind });
        merged.warnings.extend(skipped);
        merged.warnings.sort_by(|a, b| a.path.cmp(&b.path));
        for note in std::mem::take(&mut merged.notes) {
            merged.warnings.push(Warning {
                path: self.dir.clone(),
                kind: WarningKind::MixedGaugeModes(note),
            });
        }
    }

    /// One merging thread: takes the next unit until none is left, and
    /// merges each with a merger of its own (so that building a unit's
    /// families, too, is shared out by the queue); then reads ahead for the
    /// units other threads are still merging.
    pub(super) fn merge_units(
        &self,
        dirfd: &File,
        names: &[(String, FileKind)],
        units: &[Vec<usize>],
        aheads: &ReadAheads,
        next: &AtomicUsize,
        format: Option<Encoder>,
    ) -> Vec<(Vec<Family>, Part)> {
        let mut buf = self.image_buf();
        let parts = std::iter::from_fn(|| {
            let u = next.fetch_add(1, Ordering::Relaxed);
            let unit = units.get(u)?;
            let ahead = Some((aheads, u));
            Some(self.merge_files(dirfd, names, unit, &mut buf, format, ahead))
        })
        .collect();
        aheads.help(dirfd, names, units);
        parts
    }

    /// Reads and merges the files `names[i]` for each `i` of `files`, in that
    /// order, with a merger of their own, reading into `buf`; with `format`,
    /// encodes the families into the part.
    pub(super) fn merge_files(
        &self,
        dirfd: &File,
        names: &[(String, FileKind)],
        files: &[usize],
        buf: &mut ImageBuf,
        format: Option<Encoder>,
        aheads: Option<(&ReadAheads, usize)>,
    ) -> (Vec<Family>, Part) {
        // The read-ahead state of all units, and of this one.
        let ahead = aheads.map(|(all, u)| (all, &all.units[u]));
        let mut read_ahead = 0;
        let mut st = ScrapeState {
            buf: std::mem::take(buf),
            ..ScrapeState::default()
        };
        // Helpers read ahead while this is alive, and stop when it is
        // dropped, also if merging panics (they would wait for us forever).
        let active = ahead.map(|(_, unit)| Active::new(unit));
        for (pos, &i) in files.iter().enumerate() {
            let (name, kind) = &names[i];
            let pid = naming::parse_file_name(name).map_or("", |(_, p)| p);
            st.merger.set_file_index(i);
            match ahead.and_then(|(all, unit)| Some((all, unit, unit.take(pos)?))) {
                Some((all, unit, Read::Image(image))) => {
                    read_ahead += 1;
                    all.buffered.fetch_sub(image.len(), Ordering::AcqRel);
                    if let Some(spare) = st.merge_read(&self.dir, name, *kind, pid, Ok(image)) {
                        unit.give_back(spare);
                    }
                }
                Some((_, _, Read::Skipped(skip))) => {
                    read_ahead += 1;
                    st.merge_read(&self.dir, name, *kind, pid, Err(skip));
                }
                // Not read ahead, or left to this thread (read in chunks).
                Some((_, _, Read::Left)) | None => st.read_file(&self.dir, dirfd, name, *kind, pid),
            }
            if let Some((all, unit)) = ahead {
                unit.merged.store(pos + 1, Ordering::Release);
                all.progressed();
            }
        }
        drop(active);
        *buf = std::mem::take(&mut st.buf);
        st.stats.entries = st.merger.entries();
        let notes = st.merger.notes();
        let (families, positions): (Vec<Family>, Vec<Position>) =
            st.merger.finish_positioned().into_iter().unzip();
        let mut part = Part {
            warnings: st.warnings,
            stats: st.stats,
            notes,
            read_ahead,
            positions,
            ..Part::default()
        };
        if let Some(format) = format {
            format.encode_each(&families, &mut part.text, &mut part.ends);
        }
        (families, part)
    }
}

/// Runs `work` on the calling thread and on up to `threads - 1` more
/// (each moved off the caller's CPU, see [`placement`]), and joins what
/// they return. A thread that cannot be had (process or memory limits) is
/// done without: the threads that exist take its share. A panic in one is
/// raised again here.
pub(super) fn on_threads<T: Send>(threads: usize, work: impl Fn() -> Vec<T> + Sync) -> Vec<T> {
    let spawner = placement::current_cpu();
    std::thread::scope(|s| {
        let others: Vec<_> = (1..threads)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("pm-collect".into())
                    .spawn_scoped(s, || {
                        placement::leave_cpu(spawner);
                        work()
                    })
                    .ok()
            })
            .collect();
        let mut all = work();
        for h in others {
            all.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        all
    })
}

/// Marks a unit as being merged ([`ReadAhead::active`]) while alive.
struct Active<'a>(&'a ReadAhead);

impl<'a> Active<'a> {
    pub(super) fn new(ahead: &'a ReadAhead) -> Self {
        ahead.active.store(true, Ordering::Release);
        Active(ahead)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.active.store(false, Ordering::Release);
    }
}

/// Files a helper may read ahead of the thread merging their unit ...
pub(super) const READ_AHEAD: usize = 8;
/// ... and bytes read ahead, in all, past which helpers read no more.
const READ_AHEAD_BYTES: usize = 32 << 20;

/// Read-ahead for one unit of work. A thread with no unit left to take
/// reads the next files of the units other threads are still merging, so
/// that a directory dominated by one kind of file (histograms, say) still
/// keeps every thread busy. Files are claimed in order through `next` (by
/// a helper, or by the merging thread when it gets there first), and the
/// merging thread merges them in order: the merge is exactly the
/// sequential one.
pub(super) struct ReadAhead {
    /// The first position in the unit's file list not claimed yet.
    pub(super) next: AtomicUsize,
    /// Positions merged so far: helpers stay within [`READ_AHEAD`] of it.
    pub(super) merged: AtomicUsize,
    /// A thread is merging the unit.
    pub(super) active: AtomicBool,
    /// Files read by helpers, by position.
    pub(super) slots: Box<[Mutex<Option<Read>>]>,
    /// Buffers handed back by the merging thread, for helpers to read into.
    pub(super) pool: Mutex<Vec<ImageBuf>>,
    /// Where new buffers lease from.
    budget: &'static Budget,
}

impl ReadAhead {
    pub(super) fn new(files: usize, budget: &'static Budget) -> Self {
        ReadAhead {
            next: AtomicUsize::new(0),
            merged: AtomicUsize::new(0),
            active: AtomicBool::new(false),
            slots: (0..files).map(|_| Mutex::new(None)).collect(),
            pool: Mutex::new(Vec::new()),
            budget,
        }
    }

    /// For the merging thread at `pos`: `None` if it claimed the file and
    /// reads it itself, else the helper's read (waited for if still under
    /// way).
    pub(super) fn take(&self, pos: usize) -> Option<Read> {
        if self
            .next
            .compare_exchange(pos, pos + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return None;
        }
        let slot = &self.slots[pos];
        let mut spins = 0u32;
        loop {
            if let Some(read) = lock(slot).take() {
                return Some(read);
            }
            // A read takes microseconds: spin, then yield.
            spins += 1;
            if spins < 100 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    pub(super) fn give_back(&self, buf: ImageBuf) {
        lock(&self.pool).push(buf);
    }

    /// Claims and reads the next file of `files`, if there is one within
    /// reach.
    pub(super) fn read_next(
        &self,
        dirfd: &File,
        names: &[(String, FileKind)],
        files: &[usize],
        buffered: &AtomicUsize,
    ) -> Next {
        let pos = self.next.load(Ordering::Acquire);
        if pos >= files.len() || !self.active.load(Ordering::Acquire) {
            return Next::Done;
        }
        if pos >= self.merged.load(Ordering::Acquire) + READ_AHEAD
            || buffered.load(Ordering::Acquire) >= READ_AHEAD_BYTES
            || self
                .next
                .compare_exchange(pos, pos + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return Next::Later;
        }
        // The slot is filled even if reading panics: the merging thread
        // waits for it.
        struct Fill<'a>(&'a Mutex<Option<Read>>, Option<Read>);
        impl Drop for Fill<'_> {
            fn drop(&mut self) {
                let read = self
                    .1
                    .take()
                    .unwrap_or_else(|| Read::Skipped(Skip::Other(WarningKind::ReadAborted)));
                *lock(self.0) = Some(read);
            }
        }
        let mut fill = Fill(&self.slots[pos], None);
        let buf = lock(&self.pool).pop();
        let buf = buf.unwrap_or_else(|| ImageBuf::new(self.budget));
        let (name, kind) = &names[files[pos]];
        fill.1 = Some(match read_ahead_image(dirfd, name, *kind, buf) {
            Ok(Some(image)) => {
                buffered.fetch_add(image.len(), Ordering::AcqRel);
                Read::Image(image)
            }
            Ok(None) => Read::Left,
            Err(skip) => Read::Skipped(skip),
        });
        Next::Read
    }
}

/// The read-ahead state of every unit, and a way for helpers to wait for
/// the merging threads.
pub(super) struct ReadAheads {
    pub(super) units: Vec<ReadAhead>,
    /// Bytes read ahead and not merged yet.
    pub(super) buffered: AtomicUsize,
    /// Helpers waiting for a merging thread to move on.
    pub(super) waiting: AtomicUsize,
    pub(super) lock: Mutex<()>,
    pub(super) progress: Condvar,
}

impl ReadAheads {
    pub(super) fn new(units: &[Vec<usize>], budget: &'static Budget) -> Self {
        ReadAheads {
            units: units
                .iter()
                .map(|u| ReadAhead::new(u.len(), budget))
                .collect(),
            buffered: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            lock: Mutex::new(()),
            progress: Condvar::new(),
        }
    }

    /// A merging thread merged one more file.
    pub(super) fn progressed(&self) {
        if self.waiting.load(Ordering::Acquire) > 0 {
            let _guard = lock(&self.lock);
            self.progress.notify_all();
        }
    }

    /// A helper's loop: reads ahead for the units being merged until none
    /// has unclaimed files left.
    pub(super) fn help(&self, dirfd: &File, names: &[(String, FileKind)], units: &[Vec<usize>]) {
        let mut idle = 0u32;
        loop {
            let mut pending = false;
            let mut read = false;
            for (ahead, files) in self.units.iter().zip(units) {
                match ahead.read_next(dirfd, names, files, &self.buffered) {
                    Next::Read => read = true,
                    Next::Later => pending = true,
                    Next::Done => {}
                }
            }
            if read {
                idle = 0;
                continue;
            }
            if !pending {
                return;
            }
            // Every unit still being merged is READ_AHEAD files ahead: wait
            // for a merging thread to move on. It merges a file every few
            // tens of microseconds, so yield first: being woken from a
            // sleep can take longer than that (on virtual CPUs, much
            // longer). Then sleep until woken (the timeout covers a wake-up
            // sent between our look and our wait).
            idle += 1;
            if idle < 200 {
                std::thread::yield_now();
                continue;
            }
            self.waiting.fetch_add(1, Ordering::AcqRel);
            let guard = lock(&self.lock);
            let _ = self
                .progress
                .wait_timeout(guard, Duration::from_micros(500));
            self.waiting.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// What [`ReadAhead::read_next`] did.
pub(super) enum Next {
    /// Read a file.
    Read,
    /// Nothing to read now, maybe later.
    Later,
    /// Nothing left to read in this unit.
    Done,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The warnings, statistics and merge notes of merged files.
#[derive(Default, Clone)]
pub(super) struct Part {
    pub(super) warnings: Vec<Warning>,
    pub(super) stats: Stats,
    pub(super) notes: Vec<crate::merge::MixedModes>,
    /// The files were merged again on one thread (see `combine`).
    pub(super) merged_again: bool,
    /// Files merged that another thread had read (see [`ReadAhead`]).
    pub(super) read_ahead: usize,
    /// Where the first entry of each family was (see [`combine`]).
    pub(super) positions: Vec<Position>,
    /// The families encoded, if asked for, one after the other ...
    pub(super) text: Vec<u8>,
    /// ... each ending at this offset of `text`.
    pub(super) ends: Vec<usize>,
}

/// Directories with fewer files are merged on one thread.
pub(super) const PARALLEL_MIN_FILES: usize = 32;

/// Splits the files into units of work, one per file kind (counters,
/// histograms, each gauge mode, ...), each listing its files in directory
/// order. Merging threads take the units one at a time, the likely largest
/// first (histograms, then counters, then `all`/`liveall` gauges, then
/// the kinds with the most files), and merge each with a [`Merger`] of its
/// own.
///
/// A metric lives in files of one kind, so each is merged in one unit, from
/// its files in exactly the order a sequential merge takes them: the result
/// is the same, bit for bit. For metrics found in files of two kinds (type
/// conflicts, gauges written in several modes), see [`combine`].
pub(super) fn units(names: &[(String, FileKind)]) -> Vec<Vec<usize>> {
    let mut units: Vec<(FileKind, Vec<usize>)> = Vec::new();
    for (i, (_, kind)) in names.iter().enumerate() {
        match units.iter_mut().find(|(k, _)| k == kind) {
            Some((_, files)) => files.push(i),
            None => units.push((*kind, vec![i])),
        }
    }
    let rank = |kind: &FileKind| match kind {
        FileKind::Histogram => 0,
        FileKind::Counter => 1,
        FileKind::Gauge(m) if m.keeps_pid() => 2,
        _ => 3,
    };
    units.sort_by(|(a, fa), (b, fb)| rank(a).cmp(&rank(b)).then(fb.len().cmp(&fa.len())));
    units.into_iter().map(|(_, files)| files).collect()
}

/// Joins the units' families into one list, in the order of their first
/// entries in directory listing order (prometheus_client's order; each
/// part's list is in that order already). `None` if the result could
/// differ from a sequential merge's: a metric name occurs in two parts
/// (files of two types or gauge modes, whose outcome depends on the order
/// of all files). The caller then merges again on one thread.
pub(super) fn combine(
    parts: Vec<(Vec<Family>, Part)>,
    format: Option<Encoder>,
) -> Option<(Vec<Family>, Part, Encoded)> {
    let single = parts.len() == 1;
    let mut all = Part::default();
    // Each family, with its part and the range of its bytes in that part's
    // text (empty when not encoded), and its first entry's position.
    let mut pieces: Vec<(Family, (usize, Range<usize>), Position)> = Vec::new();
    let mut texts = Vec::with_capacity(parts.len());
    for (p, (families, part)) in parts.into_iter().enumerate() {
        let mut start = 0;
        for (i, f) in families.into_iter().enumerate() {
            let end = part.ends.get(i).copied().unwrap_or(start);
            let at = part.positions.get(i).copied().unwrap_or_default();
            pieces.push((f, (p, start..end), at));
            start = end;
        }
        texts.push(part.text);
        all.warnings.extend(part.warnings);
        all.notes.extend(part.notes);
        all.stats.files_read += part.stats.files_read;
        all.stats.files_corrupt += part.stats.files_corrupt;
        all.stats.files_dead += part.stats.files_dead;
        all.stats.files_skipped += part.stats.files_skipped;
        all.stats.entries += part.stats.entries;
        all.stats.files_reused += part.stats.files_reused;
        all.read_ahead += part.read_ahead;
    }
    if !single {
        let mut names: Vec<&str> = pieces.iter().map(|p| p.0.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return None;
        }
        pieces.sort_by_key(|p| p.2);
    }
    let (families, pieces) = pieces.into_iter().map(|(f, piece, _)| (f, piece)).unzip();
    let encoded = Encoded {
        texts,
        pieces,
        trailer: format.map_or(&b""[..], Encoder::trailer),
    };
    Some((families, all, encoded))
}
