//! The scrape used when compaction is on: summed kinds are added exactly (rounded once), so archives change no bit of a total.
//!
//! Counter, histogram, summary and `sum`-gauge entries are accumulated per
//! key with an exact, order-independent sum ([`ExactSum`]) across all files
//! (archives included, whose keys may hold several non-overlapping parts),
//! and the rounded totals are then merged as one file per kind. Other kinds
//! are merged as usual, in directory order. One thread: compacted
//! directories hold few files.

use std::collections::HashMap;
use std::fs::File;

use super::collector::MultiProcessCollector;
use super::encoded::Encoded;
use super::parallel::Part;
use super::read::{Skip, corrupt, read_image};
use super::scrape::ScrapeState;
use super::warning::{Warning, WarningKind};
use crate::compact::SUMMED_KINDS;
use crate::compact::fsum::ExactSum;
use crate::encoding::text::Format;
use crate::format::naming::{self, FileKind};
use crate::format::{self, CorruptKind, Entries};
use crate::merge::{Family, KeyId};

/// Exact sums per file kind and key.
type Sums = HashMap<(FileKind, KeyId), ExactSum>;

impl MultiProcessCollector {
    /// Reads and merges `names` summing exactly (see the module docs).
    pub(super) fn merge_exact(
        &self,
        dirfd: &File,
        names: &[(String, FileKind)],
        format: Option<Format>,
    ) -> (Vec<Family>, Part, Encoded) {
        let mut st = ScrapeState::default();
        let mut sums = Sums::default();
        let mut order: Vec<(FileKind, KeyId)> = Vec::new();
        for (name, kind) in names {
            let pid = naming::parse_file_name(name).map_or("", |(_, p)| p);
            if !SUMMED_KINDS.contains(kind) {
                st.read_file(&self.dir, dirfd, name, *kind, pid);
                continue;
            }
            let outcome = read_image(dirfd, name, *kind, &mut st.buf)
                .and_then(|used| stage(&mut st, used, *kind))
                .map(|staged| {
                    for (id, v) in staged {
                        let s = sums.entry((*kind, id)).or_insert_with(|| {
                            order.push((*kind, id));
                            ExactSum::default()
                        });
                        s.add(v);
                    }
                    Vec::new()
                });
            st.record(&self.dir, name, outcome);
        }
        for kind in SUMMED_KINDS {
            let totals = order
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|key| (key.1, sums[key].value(), 0.0));
            let report = st.merger.add_file(kind, "", totals.collect::<Vec<_>>());
            for c in report.conflicts {
                st.warnings.push(Warning {
                    path: self.dir.clone(),
                    kind: WarningKind::TypeConflict(c),
                });
            }
        }
        st.stats.entries = st.merger.entries();
        let notes = st.merger.notes();
        let families = st.merger.finish();
        st.warnings.sort_by(|a, b| a.path.cmp(&b.path));
        for note in notes {
            st.warnings.push(Warning {
                path: self.dir.clone(),
                kind: WarningKind::MixedGaugeModes(note),
            });
        }
        let encoded = format.map_or_else(Encoded::default, |f| Encoded::of(f, &families));
        let part = Part {
            warnings: st.warnings,
            stats: st.stats,
            ..Part::default()
        };
        (families, part, encoded)
    }
}

/// Resolves every key of the image `st.buf[..used]`: the file's entries, or
/// why the whole file is skipped.
fn stage(st: &mut ScrapeState, used: usize, kind: FileKind) -> Result<Vec<(KeyId, f64)>, Skip> {
    let data = &st.buf[..used];
    st.merger.start_file();
    let mut staged = Vec::new();
    for e in Entries::new(data).map_err(Skip::Corrupt)? {
        let e = e.map_err(Skip::Corrupt)?;
        match st.merger.resolve(kind, e.key) {
            Ok(id) => staged.push((id, e.value)),
            Err(why) => {
                let at = e.value_offset - format::value_offset(e.key.len());
                return Err(corrupt(at, CorruptKind::BadKey(why.reason().to_owned())));
            }
        }
    }
    Ok(staged)
}
