//! The supervisor's loop: fork the slots, reap and replace on `SIGCHLD`, stop on `SIGTERM`/`SIGINT`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::{Event, ExitReason, Summary, Supervisor, SupervisorError, Worker};
use crate::write::prefork_sys::{self as sys, SignalPipe};

/// The longest sleep of the loop without a signal (a lost wake-up costs at
/// most this).
const TICK: Duration = Duration::from_millis(500);

/// One worker slot: a stable index and id, and the process filling it.
struct Slot {
    index: usize,
    id: Option<String>,
    pid: Option<Pid>,
    started: Instant,
    /// Consecutive exits before `min_uptime`.
    crashes: u32,
    /// When to fork the next worker of an empty slot.
    restart_at: Option<Instant>,
}

/// The running state that `run` passes around.
struct State {
    cfg: Supervisor,
    dir: PathBuf,
    slots: Vec<Slot>,
    summary: Summary,
    supervisor: Option<u32>,
}

pub(super) fn run<F, E>(cfg: Supervisor, worker: &F) -> Result<Summary, SupervisorError>
where
    F: Fn(&Worker<'_>) -> Result<(), E>,
    E: std::fmt::Display,
{
    if cfg.workers == 0 {
        return Err(SupervisorError::config("at least one worker is needed"));
    }
    let dir = match &cfg.dir {
        Some(d) => {
            crate::format::naming::check_dir(d, None)?;
            d.clone()
        }
        None => crate::env::dir_from_env()?,
    };
    let slots = make_slots(cfg.workers, cfg.worker_id_prefix.as_deref())?;
    check_single_threaded()?;
    let pipe = SignalPipe::install().map_err(|e| SupervisorError::sys("sigaction", e))?;
    let mut st = State {
        cfg,
        dir,
        slots,
        summary: Summary::default(),
        supervisor: Some(std::process::id()),
    };
    let result = supervise(&mut st, &pipe, worker);
    let stopped = stop_all(&mut st, &pipe);
    drop(pipe);
    let cleaned = remove_own_live_gauges(&st.dir);
    result.and(stopped).and(cleaned)?;
    Ok(st.summary)
}

/// The slots with their worker ids (validated before anything is forked).
fn make_slots(n: usize, prefix: Option<&str>) -> Result<Vec<Slot>, SupervisorError> {
    (0..n)
        .map(|index| {
            let id = prefix.map(|p| format!("{p}{index}"));
            if let Some(id) = &id
                && !crate::format::naming::is_valid_worker_id(id)
            {
                return Err(crate::Error::invalid_argument(
                    crate::error::ArgumentKind::WorkerId,
                    format!("invalid worker id {id:?}: use 1 to 64 characters of [A-Za-z0-9.-]"),
                )
                .into());
            }
            Ok(Slot {
                index,
                id,
                pid: None,
                started: Instant::now(),
                crashes: 0,
                restart_at: Some(Instant::now()),
            })
        })
        .collect()
}

/// Refuses to fork from a process with more than one thread (see the
/// module documentation). Where `/proc` cannot tell, the caller's word
/// (the documented rule) is all there is.
fn check_single_threaded() -> Result<(), SupervisorError> {
    match std::fs::read_dir("/proc/self/task").map(Iterator::count) {
        Ok(n) if n > 1 => Err(SupervisorError::multi_threaded(n)),
        _ => Ok(()),
    }
}

/// The main loop: start due slots, sleep, reap; until a stop is requested.
fn supervise<F, E>(st: &mut State, pipe: &SignalPipe, worker: &F) -> Result<(), SupervisorError>
where
    F: Fn(&Worker<'_>) -> Result<(), E>,
    E: std::fmt::Display,
{
    loop {
        if pipe.stop_requested() {
            return Ok(());
        }
        start_due(st, worker)?;
        pipe.wait(next_wake(&st.slots));
        reap(st, false)?;
    }
}

/// How long the loop may sleep: until the next delayed restart, at most [`TICK`].
fn next_wake(slots: &[Slot]) -> Duration {
    let now = Instant::now();
    slots
        .iter()
        .filter_map(|s| s.restart_at)
        .map(|t| t.saturating_duration_since(now))
        .fold(TICK, Duration::min)
}

/// Forks a worker into every empty slot whose restart time has come.
fn start_due<F, E>(st: &mut State, worker: &F) -> Result<(), SupervisorError>
where
    F: Fn(&Worker<'_>) -> Result<(), E>,
    E: std::fmt::Display,
{
    let now = Instant::now();
    for i in 0..st.slots.len() {
        if st.slots[i].pid.is_none() && st.slots[i].restart_at.is_some_and(|t| t <= now) {
            let pid = spawn(st, i, worker)?;
            let slot = &mut st.slots[i];
            slot.pid = Some(pid);
            slot.started = Instant::now();
            slot.restart_at = None;
            st.summary.started += 1;
            let index = slot.index;
            emit(
                st,
                &Event::Started {
                    index,
                    pid: pid_u32(pid),
                },
            );
        }
    }
    Ok(())
}

/// Forks the worker of slot `i`.
fn spawn<F, E>(st: &State, i: usize, worker: &F) -> Result<Pid, SupervisorError>
where
    F: Fn(&Worker<'_>) -> Result<(), E>,
    E: std::fmt::Display,
{
    let slot = &st.slots[i];
    let ctx = Worker {
        index: slot.index,
        id: slot.id.as_deref(),
        listener: &st.cfg.listener,
        dir: &st.dir,
    };
    let parent = st.supervisor;
    sys::fork_child(|| child_main(&ctx, parent, worker))
        .map_err(|e| SupervisorError::sys("fork", e))
}

/// The first code of a forked worker (after `fork_child` put the default
/// signal dispositions back): its worker id, then the user's closure. Returns the exit code.
fn child_main<F, E>(ctx: &Worker<'_>, parent: Option<u32>, worker: &F) -> i32
where
    F: Fn(&Worker<'_>) -> Result<(), E>,
    E: std::fmt::Display,
{
    #[cfg(target_os = "linux")]
    {
        // The worker gets SIGTERM when the supervisor dies; if it died
        // before this line, its pid is no longer our parent.
        let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
        if parent.is_some_and(|p| Some(p) != u32::try_from(nix::unistd::getppid().as_raw()).ok()) {
            return 1;
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = parent;
    if let Some(id) = ctx.id
        && let Err(e) = crate::set_worker_id(id)
    {
        eprintln!("prefork: worker {}: {e}", ctx.index);
        return 1;
    }
    match worker(ctx) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!(
                "prefork: worker {} (pid {}): {e}",
                ctx.index,
                std::process::id()
            );
            1
        }
    }
}

/// Reaps every exited worker: marks it dead and, unless stopping, schedules
/// its replacement with the slot's back-off.
fn reap(st: &mut State, stopping: bool) -> Result<(), SupervisorError> {
    let mut result = Ok(());
    for i in 0..st.slots.len() {
        let Some(pid) = st.slots[i].pid else { continue };
        let Some(reason) = try_wait(pid)? else {
            continue;
        };
        st.slots[i].pid = None;
        // Marked dead before its replacement can start in the same slot.
        result = result.and(mark_dead(&st.dir, &st.slots[i], pid));
        let restart_in = (!stopping).then(|| schedule_restart(&mut st.slots[i], &st.cfg));
        if !stopping {
            st.summary.replaced += 1;
        }
        let index = st.slots[i].index;
        emit(
            st,
            &Event::Exited {
                index,
                pid: pid_u32(pid),
                reason,
                restart_in,
            },
        );
    }
    result
}

/// Sets the slot's restart time from its crash count; returns the delay.
fn schedule_restart(slot: &mut Slot, cfg: &Supervisor) -> Duration {
    if slot.started.elapsed() < cfg.min_uptime {
        slot.crashes = slot.crashes.saturating_add(1);
    } else {
        slot.crashes = 0;
    }
    let delay = backoff_delay(slot.crashes, cfg.backoff.0, cfg.backoff.1);
    slot.restart_at = Some(Instant::now() + delay);
    delay
}

/// `initial * 2^(crashes-1)`, at most `max`; zero without crashes.
pub(super) fn backoff_delay(crashes: u32, initial: Duration, max: Duration) -> Duration {
    match crashes {
        0 => Duration::ZERO,
        n => initial
            .checked_mul(1u32.checked_shl(n - 1).unwrap_or(u32::MAX))
            .map_or(max, |d| d.min(max)),
    }
}

/// `waitpid(pid, WNOHANG)`: how the worker ended, or `None` while it runs.
fn try_wait(pid: Pid) -> Result<Option<ExitReason>, SupervisorError> {
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Ok(Some(ExitReason::Code(code))),
        Ok(WaitStatus::Signaled(_, sig, _)) => Ok(Some(ExitReason::Signal(sig as i32))),
        Ok(_) => Ok(None),
        // Reaped by someone else (a SIGCHLD set to SIG_IGN, a stray
        // `waitpid(-1)`): it is gone all the same.
        Err(Errno::ECHILD) => Ok(Some(ExitReason::Code(-1))),
        Err(e) => Err(SupervisorError::sys("waitpid", e)),
    }
}

/// Removes a dead worker's live gauges, by worker id or by pid.
fn mark_dead(dir: &Path, slot: &Slot, pid: Pid) -> Result<(), SupervisorError> {
    match &slot.id {
        Some(id) => crate::mark_worker_dead_in(dir, id)?,
        None => crate::mark_process_dead_in(dir, pid.as_raw())?,
    }
    Ok(())
}

/// Stops every running worker: `SIGTERM`, up to the shutdown timeout of
/// reaping, then `SIGKILL` for the rest. Every worker is reaped and marked
/// dead, even after an error in the loop.
fn stop_all(st: &mut State, pipe: &SignalPipe) -> Result<(), SupervisorError> {
    let running: Vec<Pid> = st.slots.iter().filter_map(|s| s.pid).collect();
    emit(
        st,
        &Event::Stopping {
            workers: running.len(),
        },
    );
    for pid in &running {
        let _ = kill(*pid, Signal::SIGTERM);
    }
    let deadline = Instant::now() + st.cfg.shutdown_timeout;
    let mut result = Ok(());
    while st.slots.iter().any(|s| s.pid.is_some()) && Instant::now() < deadline {
        pipe.wait(deadline.saturating_duration_since(Instant::now()).min(TICK));
        result = result.and(reap(st, true));
    }
    for pid in st.slots.iter().filter_map(|s| s.pid).collect::<Vec<_>>() {
        let _ = kill(pid, Signal::SIGKILL);
        st.summary.killed += 1;
        emit(st, &Event::Killed { pid: pid_u32(pid) });
    }
    while st.slots.iter().any(|s| s.pid.is_some()) {
        pipe.wait(TICK);
        if let Err(e) = reap(st, true) {
            // Unreapable (should not happen): forget the slot rather than loop.
            st.slots.iter_mut().for_each(|s| s.pid = None);
            result = result.and(Err(e));
        }
    }
    result
}

/// Removes the supervisor's own live-gauge files (from metrics created
/// before forking), named after its file identity (its pid unless a worker
/// id was set in it).
fn remove_own_live_gauges(dir: &Path) -> Result<(), SupervisorError> {
    let id = crate::write::writer::file_identity()?;
    crate::mark_worker_dead_in(dir, &id)?;
    Ok(())
}

fn emit(st: &mut State, event: &Event) {
    (st.cfg.on_event)(event);
}

fn pid_u32(pid: Pid) -> u32 {
    // CAST: pids returned by fork are positive.
    pid.as_raw().unsigned_abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let ms = Duration::from_millis;
        let got: Vec<Duration> = (0..7)
            .map(|n| backoff_delay(n, ms(100), ms(1000)))
            .collect();
        assert_eq!(
            got,
            [
                ms(0),
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1000),
                ms(1000)
            ]
        );
        assert_eq!(backoff_delay(u32::MAX, ms(100), ms(1000)), ms(1000));
        assert_eq!(backoff_delay(40, ms(100), ms(1000)), ms(1000));
    }

    #[test]
    fn bad_worker_id_prefix_is_refused_before_forking() {
        let err = make_slots(2, Some("bad_prefix")).err().unwrap();
        assert_eq!(
            err.metrics_error().unwrap().argument_kind(),
            Some(crate::ArgumentKind::WorkerId)
        );
        assert!(make_slots(2, None).unwrap().iter().all(|s| s.id.is_none()));
    }
}
