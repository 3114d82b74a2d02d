//! The command's integration suite (package `prometheus-multiproc-cli`): the
//! tests that run the `prometheus-multiproc` binary.

mod cli;
mod cli_process;
mod common;
mod sidecar;
