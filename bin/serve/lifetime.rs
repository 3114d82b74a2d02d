//! `--exit-with-parent`: `serve` stops when the process that started it ends, so a sidecar started with `&` before `exec gunicorn` never outlives the app.

use nix::sys::signal::Signal;
use nix::unistd::getppid;

use crate::{CliResult, fail};

/// Asks the kernel for SIGTERM (a clean stop) when the parent ends, and
/// fails if it has already ended. Call before any thread is started: the
/// signal follows the thread that forked us, and a shell is one thread.
pub fn exit_with_parent() -> CliResult {
    let parent = getppid();
    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)
        .map_err(|e| fail!("--exit-with-parent: prctl(PR_SET_PDEATHSIG): {e}"))?;
    // The parent may have ended between `getppid` and `prctl`: then no
    // signal will come, and we were handed to another process.
    if getppid() != parent {
        return Err(fail!(
            "--exit-with-parent: the parent process (pid {parent}) has already ended"
        ));
    }
    Ok(())
}
