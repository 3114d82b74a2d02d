//! The command's integration suite (package `prometheus-multiproc-cli`): the
//! tests that run the `prometheus-multiproc` binary.
// Forks workers: the lints allow `unsafe` here, each block with a SAFETY comment.
#![allow(unsafe_code)]

mod accept_headers;
mod cli;
mod cli_bounded;
mod cli_compact;
mod cli_negotiation;
mod cli_process;
mod collect_mixed;
mod common;
mod serve;
mod serve_negotiation;
mod serve_tls;
mod sidecar;
mod sparse_fixture;
