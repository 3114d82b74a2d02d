//! Warnings on stderr that a forked child can always print: one `write(2)` per line, no lock.
//!
//! `eprintln!` takes the lock of `std::io::Stderr`. A process forked while
//! another of its parent's threads held that lock (printing anything) inherits
//! it held by a thread that does not exist in the child, and its first
//! `eprintln!` waits forever. The writer's warnings can happen in such a child
//! (a pre-fork server's worker), so they go out through the descriptor
//! directly: the line is formatted first, then written whole.

use std::io::Write;
use std::os::fd::AsFd;

/// Writes `prometheus-multiproc: <message>` and a newline to stderr, taking
/// no lock. Errors (a closed stderr) are ignored: a warning must not fail
/// the caller.
pub(crate) fn warn(message: std::fmt::Arguments<'_>) {
    line(format_args!("prometheus-multiproc: {message}"));
}

/// Writes `message` and a newline to stderr, taking no lock.
pub(crate) fn line(message: std::fmt::Arguments<'_>) {
    let mut line = Vec::with_capacity(128);
    // Writing into a Vec cannot fail.
    let _ = writeln!(line, "{message}");
    let stderr = std::io::stderr();
    let mut rest = line.as_slice();
    while !rest.is_empty() {
        match nix::unistd::write(stderr.as_fd(), rest) {
            Ok(0) => return,
            Ok(n) => rest = &rest[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}
