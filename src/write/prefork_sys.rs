//! The supervisor's only `unsafe` code: `fork`, `_exit` and its signal handlers, kept in one small file so that it can live with the crate's other `unsafe` code.
//!
//! Everything here is a thin wrapper with a safe signature; the rules that
//! make the calls sound are stated once, on each function, and checked by
//! the caller in `prefork/run.rs` (one thread when forking). It lives in
//! `write/` because that is where the crate allows `unsafe`.
//!
//! A signal handler may only do async-signal-safe work, so it writes one
//! byte to a non-blocking pipe (and notes a stop request in an atomic); the
//! supervisor sleeps in `poll` on the pipe's read end and does the real work
//! (`waitpid`, marking workers dead, `fork`) outside the handler.

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{
    SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction, sigprocmask,
};
use nix::unistd::{ForkResult, Pid};

/// The pipe's write end, for the handler (-1: none).
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
/// Set by SIGINT and SIGTERM.
static STOP: AtomicBool = AtomicBool::new(false);

/// The signals the supervisor handles.
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
        // set to -1 before the pipe is closed) and `byte` is a valid 1-byte
        // buffer. A full pipe (EAGAIN) is fine: a wake-up is pending anyway.
        unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
    }
    Errno::set_raw(saved);
}

/// The installed handlers and their self-pipe. Dropping it puts back the
/// dispositions that were in place before [`SignalPipe::install`].
pub(crate) struct SignalPipe {
    read: OwnedFd,
    _write: OwnedFd,
    previous: Vec<(Signal, SigAction)>,
}

impl SignalPipe {
    /// Creates the pipe and installs the handlers for SIGCHLD, SIGINT and
    /// SIGTERM.
    pub(crate) fn install() -> io::Result<SignalPipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        WAKE_FD.store(write.as_raw_fd(), Ordering::SeqCst);
        STOP.store(false, Ordering::SeqCst);
        let mut pipe = SignalPipe {
            read,
            _write: write,
            previous: Vec::new(),
        };
        for sig in SIGNALS {
            // SA_RESTART: the supervisor's blocking calls resume instead of
            // failing with EINTR. SA_NOCLDSTOP: only exits matter.
            let flags = if sig == Signal::SIGCHLD {
                SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP
            } else {
                SaFlags::SA_RESTART
            };
            let action = SigAction::new(SigHandler::Handler(on_signal), flags, SigSet::empty());
            // SAFETY: `on_signal` only does async-signal-safe work (see there).
            let old = unsafe { sigaction(sig, &action) }?;
            pipe.previous.push((sig, old));
        }
        Ok(pipe)
    }

    /// Sleeps until a signal arrives or `timeout` passes, then empties the pipe.
    pub(crate) fn wait(&self, timeout: Duration) {
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.read.as_fd(), PollFlags::POLLIN)];
        // EINTR is a wake-up too; any other error only ends this wait early.
        let _ = poll(&mut fds, PollTimeout::from(ms));
        let mut buf = [0u8; 64];
        while nix::unistd::read(&self.read, &mut buf).is_ok_and(|n| n > 0) {}
    }

    /// True once SIGINT or SIGTERM arrived.
    pub(crate) fn stop_requested(&self) -> bool {
        STOP.load(Ordering::SeqCst)
    }
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        WAKE_FD.store(-1, Ordering::SeqCst);
        for (sig, old) in self.previous.drain(..) {
            // SAFETY: `old` is the disposition that was installed before
            // ours; putting it back restores the caller's own guarantees.
            let _ = unsafe { sigaction(sig, &old) };
        }
    }
}

/// Puts SIGCHLD, SIGINT and SIGTERM back to their default dispositions and
/// detaches the handler from the supervisor's pipe. A forked worker does it
/// first thing: it must die on SIGTERM (unless it installs its own handler)
/// and must not write into the supervisor's pipe.
fn restore_default_signals() {
    WAKE_FD.store(-1, Ordering::SeqCst);
    for sig in SIGNALS {
        let action = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        // SAFETY: installing the default disposition has no preconditions.
        let _ = unsafe { sigaction(sig, &action) };
    }
}

/// Forks a child that runs `body` and leaves through `_exit` with the code
/// it returns (101 if it panics), so the child never returns into the
/// caller's stack and none of the parent's destructors run in it. Returns
/// the child's pid in the parent.
///
/// The supervisor's signals are blocked across the fork: the child puts
/// their default dispositions back before unblocking them, so a `SIGTERM`
/// that reaches it early is neither lost in the supervisor's handler nor
/// ignored, and kills it as it should.
///
/// The caller must have checked that this process has one thread (the
/// child gets only the forking thread; a lock held by another thread would
/// stay locked in the child forever).
pub(crate) fn fork_child(body: impl FnOnce() -> i32) -> io::Result<Pid> {
    let mut blocked = SigSet::empty();
    SIGNALS.iter().for_each(|s| blocked.add(*s));
    let mut old = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), Some(&mut old))?;
    // SAFETY: the caller checked that this process has a single thread, so
    // no lock is held by a thread that the child would not have; the child
    // runs `body` and ends in `_exit` below, never returning.
    let forked = unsafe { nix::unistd::fork() };
    if !matches!(forked, Ok(ForkResult::Child)) {
        sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None)?;
    }
    match forked? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            restore_default_signals();
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(101);
            let _ = io::stdout().flush();
            let _ = io::stderr().flush();
            // SAFETY: `_exit` ends the process at once, without running the
            // parent's destructors or atexit handlers (they belong to the
            // parent); it has no other precondition.
            unsafe { libc::_exit(code) }
        }
    }
}
