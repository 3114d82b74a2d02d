//! The command's integration suite (package `prometheus-multiproc-cli`): the
//! tests that run the `prometheus-multiproc` binary.
// Forks workers: the lints allow `unsafe` here, each block with a SAFETY comment.
#![allow(unsafe_code)]

mod cli;
mod cli_compact;
mod cli_process;
mod common;
mod sidecar;
