//! Writing: per-process files, their mapping and slots, and what happens at `fork`.

pub(crate) mod adopt;
#[allow(unsafe_code)] // The only module with `unsafe`: see its Safety model.
pub(crate) mod mmap;
pub(crate) mod predecessor;
pub(crate) mod slot;
pub(crate) mod writer;
