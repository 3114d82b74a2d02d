//! Incremental scrapes: a long-running collector keeps each file's layout (its entries' keys, resolved once, and where their values lie) and a read-only mapping of it between scrapes, and reads only the values.
//!
//! A metrics file only ever grows at its end: an entry's key and position
//! never change once written, only its value and timestamp do. So a kept
//! layout stays right for as long as the file is the same file (same
//! inode, as the directory listing says) and its `used` field does not go
//! down. Each scrape then:
//!
//! * lists the directory, as a cold scrape does, in the same order;
//! * for a file with a kept layout: loads its `used` field; parses only the
//!   entries past the `used` of the previous scrape (resolving their keys
//!   into the kept merger); loads the value and timestamp of every entry
//!   from the mapping; probes its writer's lock if it is a live gauge or
//!   info file of this crate, as a cold scrape does;
//! * for any other file (new, replaced, shrunk, or unreadable through its
//!   mapping): reads and parses it as a cold scrape does, and keeps its
//!   layout if it may be mapped (see below);
//! * merges the files of each kind (counters, histograms, each gauge
//!   mode, ...) as the parallel cold merge does, one kind per thread at a
//!   time, each kind with a kept [`Merger`](crate::merge::Merger) whose
//!   values are reset and whose resolved keys are kept. Applying the same
//!   entries in the same order gives the same families, bit for bit, as a
//!   new merger, and the kinds' families are put in one order as in a cold
//!   scrape: the output is the cold scrape's;
//! * skips even that for a kind none of whose values changed since the
//!   last scrape (same listing, no entry written, every value and timestamp
//!   bit for bit the same, every writer as alive or dead as then): its
//!   families and their encoding are the last scrape's.
//!
//! **What is mapped.** A file is mapped only if, seen through the
//! descriptor opened with `O_NOFOLLOW`, it is a regular file owned by our
//! effective user, writable by no one else, with one link, and its inode is
//! the one the listing gave: then only our own user can shrink it, and
//! neither this crate nor prometheus_client ever does (a file shrunk under
//! a mapping raises `SIGBUS` when read). Other files are read with `pread`
//! at every scrape, as a cold scrape reads them. `docs/reliability.md`
//! states this trust boundary.
//!
//! **Memory** grows with the files and distinct keys, not with scrapes:
//! per kept file, one mapping and 24 bytes per entry (key, offset, last
//! value and timestamp); per kind, a merger with one template per distinct
//! key and one row per series, and the last families and encoding. Keys of
//! files that went away stay in the mergers until they outnumber the kept
//! ones, when the whole state is dropped and the next scrape starts cold. At
//! most
//! [`MAX_KEPT_FILES`] files and [`MAX_KEPT_ENTRIES`] entries are kept;
//! files past that are read cold.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::budget::CHUNK;
use super::collector::MultiProcessCollector;
use super::dead::{self, Liveness};
use super::encoded::Encoded;
use super::parallel::{PARALLEL_MIN_FILES, Part, combine, lock, on_threads, units};
use super::read::{Opened, Skip, Skipped, corrupt, open_image, read_whole};
use super::scrape::{ScrapeState, stage};
use super::warning::WarningKind;
use crate::encoding::text::Encoder;
use crate::format::naming::{self, FileKind};
use crate::format::{CorruptKind, Entries, HEADER_LEN};
use crate::merge::{Family, KeyId};
use crate::write::mmap::ReadMap;

/// Files whose layouts and mappings are kept, at most (each mapping is one
/// of the process's memory map areas; Linux allows 65,530 by default).
pub const MAX_KEPT_FILES: usize = 16_384;
/// Entries whose layouts are kept, at most, over all files (24 bytes each:
/// 96 MiB).
pub const MAX_KEPT_ENTRIES: usize = 1 << 22;

/// Entries whose values are prefetched ahead of the one being read.
const PREFETCH_AHEAD: usize = 16;

/// What an incremental collector keeps between scrapes.
pub(super) struct Warm {
    /// Per file kind.
    units: HashMap<FileKind, Unit>,
    /// The last scrape's listing.
    listing: Vec<(String, FileKind)>,
    /// Scrapes made (to tell which layouts a scrape saw).
    scrapes: u64,
    /// Files and entries kept, over all kinds (see the limits).
    totals: Totals,
}

/// Files and entries kept, over all kinds.
#[derive(Default)]
struct Totals {
    files: AtomicUsize,
    entries: AtomicUsize,
}

/// What is kept for the files of one kind.
struct Unit {
    /// The kept merger (its resolved keys), and buffers.
    st: ScrapeState,
    /// Kept layouts, by file name.
    files: HashMap<String, Layout>,
    /// Entries of the kept layouts.
    kept_entries: usize,
    /// Entries of layouts dropped since the merger was new: their keys
    /// may be held by the merger for nothing.
    stale_entries: usize,
    /// The last merge, if it may be reused.
    cached: Option<Cached>,
    /// Merges made (not reused), for tests.
    merges: u64,
}

/// A merge of one kind's files, and how each file fared in it.
struct Cached {
    families: Vec<Family>,
    part: Part,
    /// What `part.text` is encoded in.
    encoder: Option<Encoder>,
    fared: Vec<Fared>,
}

/// How a file fared in a merge that may be reused.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fared {
    Merged,
    Dead,
}

/// One file's kept layout.
struct Layout {
    /// The inode the listing gave when the layout was made.
    ino: u64,
    map: ReadMap,
    /// Bytes of entries parsed (the `used` field then).
    used: usize,
    /// The file's entries: key, offset of the value (the timestamp follows
    /// it), and the bits of the value and timestamp last read.
    ids: Vec<KeyId>,
    offsets: Vec<u32>,
    values: Vec<[u64; 2]>,
    /// The header carries this crate's lock marker (liveness is probed).
    marker: bool,
    /// The last scrape that listed it.
    seen: u64,
}

impl Layout {
    /// The entries as last read, for [`Merger::add_file`](crate::merge::Merger::add_file).
    fn entries(&self) -> impl Iterator<Item = (KeyId, f64, f64)> + '_ {
        let values = self.values.iter();
        self.ids
            .iter()
            .zip(values)
            .map(|(&id, &[v, ts])| (id, f64::from_bits(v), f64::from_bits(ts)))
    }
}

impl fmt::Debug for Warm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (files, entries) = self.kept();
        f.debug_struct("Warm")
            .field("units", &self.units.len())
            .field("files", &files)
            .field("entries", &entries)
            .field("scrapes", &self.scrapes)
            .finish()
    }
}

/// A kept layout, brought up to date for this scrape.
enum Refresh {
    /// Every value as in the last scrape.
    Same,
    /// Values changed, or entries were added.
    Changed,
    /// A live file whose writer is dead.
    Dead,
    /// No (longer a) layout: read the file cold.
    Cold,
    /// Skipped, and why.
    Failed(Skip),
}

/// What a kept state holds (for tests).
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footprint {
    pub(crate) files: usize,
    pub(crate) entries: usize,
    pub(crate) keys: usize,
    pub(crate) series: usize,
    /// Merges made over all kinds (not reused from the last scrape).
    pub(crate) merges: u64,
}

impl Warm {
    pub(super) fn new() -> Warm {
        Warm {
            units: HashMap::new(),
            listing: Vec::new(),
            scrapes: 0,
            totals: Totals::default(),
        }
    }

    /// Files and entries kept.
    fn kept(&self) -> (usize, usize) {
        let files = self.units.values().map(|u| u.files.len()).sum();
        let entries = self.units.values().map(|u| u.kept_entries).sum();
        (files, entries)
    }

    /// What is kept now.
    #[cfg(test)]
    pub(crate) fn footprint(&self) -> Footprint {
        let (files, entries) = self.kept();
        let (mut keys, mut series, mut merges) = (0, 0, 0);
        for u in self.units.values() {
            let (k, s) = u.st.merger.footprint();
            keys += k;
            series += s;
            merges += u.merges;
        }
        Footprint {
            files,
            entries,
            keys,
            series,
            merges,
        }
    }

    /// Too much of the mergers is about files that went away: start anew.
    pub(super) fn worn_out(&self) -> bool {
        let stale: usize = self.units.values().map(|u| u.stale_entries).sum();
        stale > self.kept().1.max(4096)
    }

    /// Merges the files `names` (in listing order, with the inode numbers
    /// the listing gave), reusing kept layouts and merges; with `format`,
    /// also encodes the families.
    pub(super) fn merge(
        &mut self,
        c: &MultiProcessCollector,
        dirfd: &File,
        names: &[(String, FileKind)],
        inodes: &[u64],
        skipped: Skipped,
        format: Option<Encoder>,
    ) -> (Vec<Family>, Part, Encoded) {
        self.scrapes += 1;
        let groups = units(names);
        let kinds: Vec<FileKind> = groups.iter().map(|g| names[g[0]].1).collect();
        let totals = &self.totals;
        self.units.retain(|k, u| {
            let keep = kinds.contains(k);
            if !keep {
                totals.files.fetch_sub(u.files.len(), Ordering::Relaxed);
                totals.entries.fetch_sub(u.kept_entries, Ordering::Relaxed);
            }
            keep
        });
        for k in &kinds {
            self.units.entry(*k).or_insert_with(|| Unit::new(c));
        }
        let job = Job {
            c,
            dirfd,
            names,
            inodes,
            same_listing: self.listing == names,
            format,
            scrape: self.scrapes,
            totals: &self.totals,
        };
        let mut by_kind: HashMap<FileKind, &mut Unit> =
            self.units.iter_mut().map(|(k, u)| (*k, u)).collect();
        let work: Vec<_> = groups
            .iter()
            .zip(&kinds)
            .filter_map(|(g, k)| Some(Mutex::new(Some((by_kind.remove(k)?, g.as_slice())))))
            .collect();
        let parts = job.run(&work, threads(names.len(), work.len()));
        if !job.same_listing {
            self.listing = names.to_vec();
        }
        match combine(parts, format) {
            Some((families, mut part, encoded)) => {
                c.settle(&mut part, skipped);
                (families, part, encoded)
            }
            // A metric in files of two kinds: as a cold scrape does.
            None => c.merge_all(dirfd, names, skipped, 1, format),
        }
    }
}

/// Threads for `files` files in `units` kinds: as a cold scrape takes.
fn threads(files: usize, units: usize) -> usize {
    if files < PARALLEL_MIN_FILES {
        1
    } else {
        crate::env::collect_threads().min(units).max(1)
    }
}

/// One scrape's merge of every kind.
struct Job<'a> {
    c: &'a MultiProcessCollector,
    dirfd: &'a File,
    names: &'a [(String, FileKind)],
    inodes: &'a [u64],
    /// The listing is the last scrape's: files have the same indices.
    same_listing: bool,
    format: Option<Encoder>,
    scrape: u64,
    totals: &'a Totals,
}

/// A kind's kept state and its files (indices into the listing).
type Work<'a> = Mutex<Option<(&'a mut Unit, &'a [usize])>>;

impl Job<'_> {
    /// Merges every kind of `work`, on up to `threads` threads, each taking
    /// the next kind until none is left.
    fn run(&self, work: &[Work<'_>], threads: usize) -> Vec<(Vec<Family>, Part)> {
        let next = AtomicUsize::new(0);
        let take = || {
            let mut parts = Vec::new();
            while let Some(item) = work.get(next.fetch_add(1, Ordering::Relaxed)) {
                if let Some((unit, files)) = lock(item).take() {
                    parts.push(unit.merge(self, files));
                }
            }
            parts
        };
        if threads < 2 {
            return take();
        }
        on_threads(threads, take)
    }
}

impl Unit {
    fn new(c: &MultiProcessCollector) -> Unit {
        Unit {
            st: ScrapeState {
                buf: c.image_buf(),
                ..ScrapeState::default()
            },
            files: HashMap::new(),
            kept_entries: 0,
            stale_entries: 0,
            cached: None,
            merges: 0,
        }
    }

    /// Merges this kind's `files`: the last merge again if nothing
    /// changed, else anew from the kept layouts (and cold reads).
    fn merge(&mut self, job: &Job<'_>, files: &[usize]) -> (Vec<Family>, Part) {
        let refreshed: Vec<Refresh> = files.iter().map(|&i| self.refresh(job, i)).collect();
        let fared: Option<Vec<Fared>> = refreshed
            .iter()
            .map(|r| match r {
                Refresh::Same | Refresh::Changed => Some(Fared::Merged),
                Refresh::Dead => Some(Fared::Dead),
                Refresh::Cold | Refresh::Failed(_) => None,
            })
            .collect();
        let changed = refreshed.iter().any(|r| matches!(r, Refresh::Changed));
        self.forget_unlisted(job);
        if job.same_listing
            && !changed
            && let Some(fared) = &fared
            && let Some(cached) = self.cached.as_mut().filter(|c| c.fared == *fared)
        {
            return cached.again(job.format);
        }
        self.merge_anew(job, files, refreshed)
    }

    /// Merges `files` with the kept merger, its values reset.
    fn merge_anew(
        &mut self,
        job: &Job<'_>,
        files: &[usize],
        refreshed: Vec<Refresh>,
    ) -> (Vec<Family>, Part) {
        self.merges += 1;
        self.st.merger.reset_values();
        self.st.warnings.clear();
        self.st.stats = Default::default();
        // How each file fared, while every one may be reused next time.
        let mut fared = Some(Vec::with_capacity(files.len()));
        for (&i, r) in files.iter().zip(refreshed) {
            let (name, kind) = &job.names[i];
            let pid = naming::parse_file_name(name).map_or("", |(_, p)| p);
            self.st.merger.set_file_index(i);
            let (outcome, how) = match r {
                Refresh::Same | Refresh::Changed => {
                    self.st.stats.files_reused += 1;
                    let layout = &self.files[name];
                    let report = self.st.merger.add_file(*kind, pid, layout.entries());
                    (Ok(report.conflicts), Some(Fared::Merged))
                }
                Refresh::Dead => (Err(Skip::Dead), Some(Fared::Dead)),
                Refresh::Failed(skip) => (Err(skip), None),
                Refresh::Cold => {
                    let outcome = self
                        .stage_cold(job, i)
                        .map(|()| self.st.add_staged(*kind, pid));
                    // Read now and kept: its values are those applied.
                    let kept = outcome.is_ok() && self.files.contains_key(name);
                    (outcome, kept.then_some(Fared::Merged))
                }
            };
            match (how, &mut fared) {
                (Some(how), Some(all)) => all.push(how),
                _ => fared = None,
            }
            self.st.record(&job.c.dir, name, outcome);
        }
        // Give the image buffer's lease back between scrapes.
        self.st.buf = job.c.image_buf();
        self.st.stats.entries = self.st.merger.entries();
        let (families, positions): (Vec<Family>, _) =
            self.st.merger.families_positioned().into_iter().unzip();
        let mut part = Part {
            warnings: std::mem::take(&mut self.st.warnings),
            stats: std::mem::take(&mut self.st.stats),
            notes: self.st.merger.notes(),
            positions,
            ..Part::default()
        };
        if let Some(format) = job.format {
            format.encode_each(&families, &mut part.text, &mut part.ends);
        }
        self.cached = fared.map(|fared| Cached {
            families: families.clone(),
            part: part.clone(),
            encoder: job.format,
            fared,
        });
        (families, part)
    }

    /// Brings the kept layout of the `i`th listed file up to date.
    fn refresh(&mut self, job: &Job<'_>, i: usize) -> Refresh {
        let (name, kind) = &job.names[i];
        let Some(layout) = self.files.get_mut(name) else {
            return Refresh::Cold;
        };
        if layout.ino != job.inodes[i] {
            self.drop_layout(job, name);
            return Refresh::Cold;
        }
        layout.seen = job.scrape;
        match reuse(layout, &mut self.st, job.dirfd, name, *kind) {
            Ok(Some((changed, new))) => {
                self.kept_entries += new;
                job.totals.entries.fetch_add(new, Ordering::Relaxed);
                if changed {
                    Refresh::Changed
                } else {
                    Refresh::Same
                }
            }
            Ok(None) => {
                self.drop_layout(job, name);
                Refresh::Cold
            }
            // Dead writer: keep the layout (the file may be removed soon).
            Err(Skip::Dead) => Refresh::Dead,
            Err(skip) => {
                self.drop_layout(job, name);
                Refresh::Failed(skip)
            }
        }
    }

    /// Reads the `i`th listed file as a cold scrape does, staging its
    /// entries, and keeps its layout if it may be mapped.
    fn stage_cold(&mut self, job: &Job<'_>, i: usize) -> Result<(), Skip> {
        let (name, kind) = &job.names[i];
        let file = open_image(job.dirfd, name, *kind)?;
        if !(file.dense && self.st.buf.try_grow(file.used)) {
            return self.st.stage_chunked(&file, *kind);
        }
        read_whole(&file, &mut self.st.buf)?;
        let mut offsets = Vec::new();
        self.st.stage_image_at(file.used, *kind, &mut offsets)?;
        if let Some(layout) = self.layout_for(&file, job, i, offsets) {
            let n = layout.offsets.len();
            self.kept_entries += n;
            job.totals.entries.fetch_add(n, Ordering::Relaxed);
            job.totals.files.fetch_add(1, Ordering::Relaxed);
            self.files.insert(name.clone(), layout);
        }
        Ok(())
    }

    /// A layout of the opened `file`, the `i`th listed (its staged entries
    /// at `offsets`), if it may be kept: within the limits, and mappable
    /// (see the module docs).
    fn layout_for(
        &self,
        file: &Opened,
        job: &Job<'_>,
        i: usize,
        offsets: Vec<u32>,
    ) -> Option<Layout> {
        let totals = job.totals;
        if totals.files.load(Ordering::Relaxed) >= MAX_KEPT_FILES
            || totals.entries.load(Ordering::Relaxed) + offsets.len() > MAX_KEPT_ENTRIES
        {
            return None;
        }
        let ino = job.inodes[i];
        let meta = &file.meta;
        if meta.ino() != ino || crate::write::adopt::check(meta, 0).is_err() {
            return None;
        }
        let len = usize::try_from(meta.len()).ok()?;
        if len < file.used {
            return None;
        }
        let map = ReadMap::map(&file.file, len).ok()?;
        let staged = &self.st.staged;
        Some(Layout {
            ino,
            map,
            used: file.used,
            ids: staged.iter().map(|s| s.0).collect(),
            offsets,
            values: staged
                .iter()
                .map(|s| [s.1.to_bits(), s.2.to_bits()])
                .collect(),
            marker: crate::format::has_lock_marker(&file.header),
            seen: job.scrape,
        })
    }

    fn drop_layout(&mut self, job: &Job<'_>, name: &str) {
        if let Some(l) = self.files.remove(name) {
            self.forgot(job, 1, l.offsets.len());
        }
    }

    /// Drops the layouts of files this scrape did not list.
    fn forget_unlisted(&mut self, job: &Job<'_>) {
        let (mut files, mut entries) = (0, 0);
        self.files.retain(|_, l| {
            let keep = l.seen == job.scrape;
            if !keep {
                files += 1;
                entries += l.offsets.len();
            }
            keep
        });
        self.forgot(job, files, entries);
    }

    /// Counts `files` layouts of `entries` entries dropped.
    fn forgot(&mut self, job: &Job<'_>, files: usize, entries: usize) {
        self.kept_entries -= entries;
        self.stale_entries += entries;
        job.totals.files.fetch_sub(files, Ordering::Relaxed);
        job.totals.entries.fetch_sub(entries, Ordering::Relaxed);
    }
}

impl Cached {
    /// The cached merge, encoded in `format`.
    fn again(&mut self, format: Option<Encoder>) -> (Vec<Family>, Part) {
        if format.is_some() && format != self.encoder {
            self.part.text.clear();
            self.part.ends.clear();
            if let Some(f) = format {
                f.encode_each(&self.families, &mut self.part.text, &mut self.part.ends);
            }
            self.encoder = format;
        }
        let mut part = self.part.clone();
        part.stats.files_reused = self.fared.len();
        (self.families.clone(), part)
    }
}

/// Brings the kept `layout` of the file `name` up to date: parses the
/// entries written since the last scrape, then loads every value.
/// `Some((changed, new entries))`, or `None` if the layout no longer
/// describes the file.
fn reuse(
    layout: &mut Layout,
    st: &mut ScrapeState,
    dirfd: &File,
    name: &str,
    kind: FileKind,
) -> Result<Option<(bool, usize)>, Skip> {
    // CAST: u32 to usize widens.
    let used = layout.map.used() as usize;
    if used < layout.used || used > layout.map.len() {
        // Shrunk (not a file any writer makes), or grown past the mapping.
        return Ok(None);
    }
    if layout.marker && is_live(kind) && writer_dead(dirfd, name, layout)? {
        return Err(Skip::Dead);
    }
    let new = if used > layout.used {
        if used - layout.used > CHUNK {
            // Much written since: read it as a cold scrape does, bounded
            // by the budget.
            return Ok(None);
        }
        parse_tail(layout, st, kind, used)?
    } else {
        0
    };
    let Some(changed) = load_values(layout) else {
        return Ok(None);
    };
    Ok(Some((changed || new > 0, new)))
}

/// Loads every value and timestamp of `layout` from its mapping; whether
/// any changed. `None` if an offset is outside the mapping.
fn load_values(layout: &mut Layout) -> Option<bool> {
    layout
        .map
        .reload(&layout.offsets, &mut layout.values, PREFETCH_AHEAD)
}

/// Live-gauge and info files describe living processes: their writer's
/// lock is probed at every scrape.
fn is_live(kind: FileKind) -> bool {
    matches!(kind, FileKind::Gauge(m) if m.is_live()) || kind == FileKind::Info
}

/// Whether the writer of the kept file `name` is dead: its lock, probed
/// through a new descriptor of the same inode.
fn writer_dead(dirfd: &File, name: &str, layout: &Layout) -> Result<bool, Skip> {
    let Ok(file) = crate::open::open_no_follow_at(dirfd, name) else {
        // Removed since the listing (by mark_process_dead): as cold.
        return Err(Skip::Quiet);
    };
    let same = file.metadata().is_ok_and(|m| m.ino() == layout.ino);
    let mut header = [0u8; HEADER_LEN];
    if !same || !layout.map.copy_out(0, &mut header) {
        return Err(Skip::Other(WarningKind::Vanished));
    }
    Ok(dead::probe_liveness(&file, &header) == Liveness::Dead)
}

/// Parses the entries between the layout's `used` and `used`, copied out
/// of the mapping (at most [`CHUNK`] bytes), and adds them to the layout
/// (all or none: a corrupt entry skips the file, as a cold read does);
/// returns how many there were.
fn parse_tail(
    layout: &mut Layout,
    st: &mut ScrapeState,
    kind: FileKind,
    used: usize,
) -> Result<usize, Skip> {
    let start = layout.used;
    let len = used - start;
    let mut tail = std::mem::take(&mut st.buf);
    tail.force_grow(len)
        .map_err(|_| Skip::Other(WarningKind::OutOfMemory { bytes: len }))?;
    if !layout.map.copy_out(start, &mut tail[..len]) {
        let why = CorruptKind::UsedPastEnd {
            used,
            len: layout.map.len(),
        };
        return Err(corrupt(start, why));
    }
    let mut entries = Entries::window(&tail[..len], start, used);
    let mut offsets = Vec::new();
    st.staged.clear();
    stage(
        &mut st.merger,
        &mut st.staged,
        Some(&mut offsets),
        kind,
        &mut entries,
    )?;
    if entries.offset() != used {
        let why = CorruptKind::EntryPastUsed {
            key_len: entries.pending_len(),
            used,
        };
        return Err(corrupt(entries.offset(), why));
    }
    st.buf = tail;
    layout.ids.extend(st.staged.iter().map(|s| s.0));
    layout.offsets.extend_from_slice(&offsets);
    // Loaded next, with the others.
    layout.values.resize(layout.ids.len(), [0; 2]);
    layout.used = used;
    Ok(offsets.len())
}
