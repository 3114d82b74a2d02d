//! The integration suite: one test binary, one module per area.

mod common;
mod writer;
