//! Where merging threads run.
//!
//! Some kernels place a new thread on the CPU of the thread that spawned it
//! and move it only at a later load balance, or wake an idle CPU slowly: on
//! the 2-CPU virtual machines this was measured on (whose kernel packs
//! threads onto few virtual CPUs), the spawned merging thread usually shared
//! the spawner's CPU for 1 to 5 ms before running in parallel, a fifth of a
//! scrape (`docs/performance.md`). A merging thread that starts on its
//! spawner's CPU therefore moves itself off it: it narrows its own affinity
//! to the other allowed CPUs (the kernel migrates it at once) and restores
//! the affinity it had. The allowed set is never widened, so `taskset` and
//! cgroup cpusets are respected; where any step fails, the thread stays put.

/// The CPU the calling thread runs on, where the system says.
pub(super) fn current_cpu() -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        nix::sched::sched_getcpu().ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Moves the calling thread off CPU `spawner` if it runs there and
/// another CPU is allowed.
pub(super) fn leave_cpu(spawner: Option<usize>) {
    #[cfg(target_os = "linux")]
    {
        use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
        use nix::unistd::Pid;

        let Some(spawner) = spawner else { return };
        if current_cpu() != Some(spawner) {
            return;
        }
        let me = Pid::from_raw(0);
        let Ok(allowed) = sched_getaffinity(me) else {
            return;
        };
        let mut others = allowed;
        if others.unset(spawner).is_err()
            || !(0..CpuSet::count()).any(|c| others.is_set(c) == Ok(true))
        {
            return;
        }
        if sched_setaffinity(me, &others).is_ok() {
            // Now on another CPU; give the scheduler its choices back.
            let _ = sched_setaffinity(me, &allowed);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = spawner;
}
