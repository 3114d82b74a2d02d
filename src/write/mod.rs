//! Writing: per-process files, their mapping and slots, and what happens at `fork`.

pub(crate) mod adopt;
#[allow(unsafe_code)] // Mapping, atomic slots, fork handlers: see its Safety model.
pub(crate) mod mmap;
pub(crate) mod predecessor;
/// `fork`, `_exit` and the signal handlers of `prefork::Supervisor`.
#[cfg(feature = "prefork")]
#[allow(unsafe_code)] // fork/_exit/sigaction only: see its module docs.
pub(crate) mod prefork_sys;
pub(crate) mod raw;
pub(crate) mod slot;
pub(crate) mod writer;
