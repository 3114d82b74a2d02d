//! Writing: per-process files, their mapping and slots, and what happens at `fork`.

#[allow(unsafe_code)] // The only module with `unsafe`: see its Safety model.
pub(crate) mod mmap;
pub(crate) mod raw;
pub(crate) mod slot;
pub(crate) mod writer;
