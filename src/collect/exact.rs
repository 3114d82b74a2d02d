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
use super::read::Skipped;
use super::scrape::ScrapeState;
use super::warning::{Warning, WarningKind};
use crate::compact::SUMMED_KINDS;
use crate::compact::fsum::ExactSum;
use crate::encoding::text::Encoder;
use crate::format::naming::{self, FileKind};
use crate::merge::{Family, KeyId};

/// Exact sums per file kind and key.
type Sums = HashMap<(FileKind, KeyId), ExactSum>;

impl MultiProcessCollector {
    /// Reads and merges `names` summing exactly (see the module docs).
    pub(super) fn merge_exact(
        &self,
        dirfd: &File,
        names: &[(String, FileKind)],
        skipped: Skipped,
        format: Option<Encoder>,
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
            let outcome = st.stage_file(dirfd, name, *kind).map(|()| {
                for &(id, v, _) in &st.staged {
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
        st.stats.files_skipped += skipped.len();
        st.warnings.extend(
            skipped
                .into_iter()
                .map(|(path, kind)| Warning { path, kind }),
        );
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
