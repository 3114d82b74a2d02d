//! The supervisor's signals: SIGCHLD, SIGINT and SIGTERM wake a self-pipe that the main loop polls.
//!
//! A signal handler may only do async-signal-safe work, so it writes one byte
//! to a non-blocking pipe (and notes a stop request in an atomic); the
//! supervisor's loop sleeps in `poll` on the pipe's read end and does the real
//! work (`waitpid`, `mark_process_dead`, `fork`) outside the handler.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

/// The pipe's write end, for the handler (-1: none).
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
/// Set by SIGINT and SIGTERM.
static STOP: AtomicBool = AtomicBool::new(false);

const SIGNALS: [Signal; 3] = [Signal::SIGCHLD, Signal::SIGINT, Signal::SIGTERM];

extern "C" fn on_signal(sig: libc::c_int) {
    // Only async-signal-safe work here: atomics and write(2). errno is
    // saved and restored so that the interrupted code never sees ours.
    let saved = Errno::last_raw();
    if sig == libc::SIGINT || sig == libc::SIGTERM {
        STOP.store(true, Ordering::SeqCst);
    }
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: `fd` is the open write end of our non-blocking pipe (it is
        // unset before the pipe is closed) and `byte` is a valid 1-byte
        // buffer. A full pipe (EAGAIN) is fine: a wake-up is pending anyway.
        unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
    }
    Errno::set_raw(saved);
}

/// The installed handlers and their self-pipe. Dropping it restores the
/// default dispositions.
pub struct SelfPipe {
    read: OwnedFd,
    _write: OwnedFd,
}

impl SelfPipe {
    /// Creates the pipe and installs the handlers.
    pub fn install() -> nix::Result<SelfPipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        WAKE_FD.store(write.as_raw_fd(), Ordering::SeqCst);
        STOP.store(false, Ordering::SeqCst);
        for sig in SIGNALS {
            // SA_RESTART: blocking calls of the supervisor (its final scrape)
            // resume instead of failing with EINTR. SA_NOCLDSTOP: only exits
            // matter, not stops.
            let flags = if sig == Signal::SIGCHLD {
                SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP
            } else {
                SaFlags::SA_RESTART
            };
            let action = SigAction::new(SigHandler::Handler(on_signal), flags, SigSet::empty());
            // SAFETY: `on_signal` only does async-signal-safe work (see there).
            unsafe { sigaction(sig, &action) }?;
        }
        Ok(SelfPipe {
            read,
            _write: write,
        })
    }

    /// Sleeps until a signal arrives or `timeout` passes, then empties the pipe.
    pub fn wait(&self, timeout: Duration) {
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.read.as_fd(), PollFlags::POLLIN)];
        // EINTR is a wake-up too; any other error only ends this wait early.
        let _ = poll(&mut fds, PollTimeout::from(ms));
        let mut buf = [0u8; 64];
        while nix::unistd::read(&self.read, &mut buf).is_ok_and(|n| n > 0) {}
    }

    /// True once SIGINT or SIGTERM arrived.
    pub fn stop_requested(&self) -> bool {
        STOP.load(Ordering::SeqCst)
    }
}

impl Drop for SelfPipe {
    fn drop(&mut self) {
        restore_defaults();
    }
}

/// Puts SIGCHLD, SIGINT and SIGTERM back to their default dispositions and
/// detaches the handler from the pipe. Forked children call it first thing:
/// a worker must die on SIGTERM, and must not write into the supervisor's
/// pipe.
pub fn restore_defaults() {
    WAKE_FD.store(-1, Ordering::SeqCst);
    for sig in SIGNALS {
        let action = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        // SAFETY: installing the default disposition has no preconditions.
        let _ = unsafe { sigaction(sig, &action) };
    }
}
