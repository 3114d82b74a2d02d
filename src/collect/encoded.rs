//! Families encoded in pieces, written out with vectored writes.

use std::io::{self, IoSlice, Write};
use std::ops::Range;

use crate::encoding::text::Encoder;
use crate::merge::Family;

/// Families encoded in pieces: each family's bytes are a range of one of
/// `texts` (one per unit of work), listed in output order in `pieces`, and
/// `trailer` follows them. Written out with vectored writes, so that the
/// pieces are never copied into one buffer before being written.
#[derive(Default)]
pub(super) struct Encoded {
    pub(super) texts: Vec<Vec<u8>>,
    pub(super) pieces: Vec<(usize, Range<usize>)>,
    pub(super) trailer: &'static [u8],
}

impl Encoded {
    /// `families` encoded in `format` on this thread.
    pub(super) fn of(format: Encoder, families: &[Family]) -> Encoded {
        let mut text = Vec::new();
        let mut ends = Vec::new();
        format.encode_each(families, &mut text, &mut ends);
        Encoded {
            pieces: vec![(0, 0..text.len())],
            texts: vec![text],
            trailer: format.trailer(),
        }
    }

    fn slices(&self) -> Vec<IoSlice<'_>> {
        self.pieces
            .iter()
            .map(|(p, r)| IoSlice::new(&self.texts[*p][r.clone()]))
            .chain(std::iter::once(IoSlice::new(self.trailer)))
            .collect()
    }

    /// Writes all of it to `w` (`Write::write_all_vectored` is unstable).
    pub(super) fn write_to<W: Write + ?Sized>(&self, w: &mut W) -> io::Result<()> {
        let mut slices = self.slices();
        let mut rest = &mut slices[..];
        IoSlice::advance_slices(&mut rest, 0);
        while !rest.is_empty() {
            match w.write_vectored(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Appends all of it to `out`; moves the text instead of copying it
    /// when `out` is empty and the pieces are one text in order.
    pub(super) fn append_to(mut self, out: &mut Vec<u8>) {
        let mut end = 0;
        let in_order = self.pieces.iter().all(|(p, r)| {
            let next = *p == 0 && r.start == end;
            end = r.end;
            next
        });
        if out.is_empty() && in_order && self.texts.len() == 1 {
            let mut text = self.texts.swap_remove(0);
            text.truncate(end);
            text.extend_from_slice(self.trailer);
            *out = text;
            return;
        }
        let len: usize = self.pieces.iter().map(|(_, r)| r.len()).sum();
        out.reserve(len + self.trailer.len());
        for (p, r) in &self.pieces {
            out.extend_from_slice(&self.texts[*p][r.clone()]);
        }
        out.extend_from_slice(self.trailer);
    }
}
