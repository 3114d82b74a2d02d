//! Writing: per-process files, their mapping and slots, and what happens at `fork`.

pub(crate) mod mmap;
pub(crate) mod slot;
pub(crate) mod writer;
