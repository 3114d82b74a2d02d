//! The collector's reading stays bounded by what is on disk (concurrent scrapes of a sparse file under an address-space limit), never opens what is not a regular file, and names what it skips (issue 12: items 4, 8, 9). `collect`'s memory: `cli_bounded.rs`.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use prometheus_multiproc::{MultiProcessCollector, WarningKind, format};

use crate::common::Dir;
use crate::sparse_fixture::{normal_dir, plant_sparse};

/// Set in the child process of the address-space test.
const CHILD_ENV: &str = "PM_BOUNDED_READ_CHILD";

/// Eight concurrent scrapes of a directory holding the sparse file, in a
/// child process limited to 1 GiB of address space: all succeed alike
/// (before, each allocated 1 GiB and the child aborted).
#[test]
fn eight_scrapes_of_a_sparse_file_in_one_gib_of_address_space() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        return eight_scrapes(Path::new(&dir));
    }
    let d = Dir::new();
    normal_dir(d.path());
    plant_sparse(d.path());
    let name = "bounded_read::eight_scrapes_of_a_sparse_file_in_one_gib_of_address_space";
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, d.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("8 scrapes alike"), "{stdout}\n{stderr}");
    let line = stdout.lines().find(|l| l.contains("8 scrapes alike"));
    eprintln!("{}", line.unwrap_or_default());
}

/// The child: limits its address space to 1 GiB, then scrapes `dir` on 8
/// threads at once.
fn eight_scrapes(dir: &Path) {
    let limit = libc::rlimit {
        rlim_cur: 1 << 30,
        rlim_max: 1 << 30,
    };
    // SAFETY: plain system call with a valid pointer.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
    let c = MultiProcessCollector::new(dir).unwrap();
    let results: Vec<_> = std::thread::scope(|s| {
        let scrapes: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    let scrape = c.encode_text(&mut out).unwrap();
                    (out, scrape)
                })
            })
            .collect();
        scrapes.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (out, scrape) in &results {
        assert_eq!(out, &results[0].0);
        assert_eq!(scrape.stats.files_read, 32);
        assert_eq!(scrape.stats.files_corrupt, 1);
        assert_eq!(scrape.warnings.len(), 1);
        assert!(scrape.warnings[0].path.ends_with("counter_666.db"));
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap_or("");
    println!("8 scrapes alike ({hwm})");
}

/// FIFOs, device nodes and symbolic links named like metrics files are
/// never opened, by the collector nor by `remove_dead_live_files` (seen
/// with inotify), and are skipped with a warning that says what they are.
/// Needs root (`mknod`); fails without.
#[test]
fn special_files_are_never_opened() {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};

    let d = Dir::new();
    let p = d.path();
    let k = format::encode_key("c", "c_total", &[], "C.");
    let img = format::build_file(&[(k.as_bytes(), 1.0, 0.0)], 4096);
    std::fs::write(p.join("counter_1.db"), &img).unwrap();
    nix::unistd::mkfifo(&p.join("counter_2.db"), Mode::S_IRWXU).unwrap();
    // The numbers of /dev/null.
    mknod(
        &p.join("counter_3.db"),
        SFlag::S_IFCHR,
        Mode::S_IRUSR | Mode::S_IWUSR,
        makedev(1, 3),
    )
    .expect("mknod (run as root)");
    std::os::unix::fs::symlink(p.join("counter_1.db"), p.join("counter_4.db")).unwrap();
    nix::unistd::mkfifo(&p.join("gauge_livesum_5.db"), Mode::S_IRWXU).unwrap();

    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).unwrap();
    inotify.add_watch(p, AddWatchFlags::IN_OPEN).unwrap();
    let s = MultiProcessCollector::new(p)
        .unwrap()
        .collect_families()
        .unwrap();
    let removed = prometheus_multiproc::remove_dead_live_files(p).unwrap();
    assert!(removed.is_empty());
    let mut opened = BTreeSet::new();
    while let Ok(events) = inotify.read_events() {
        opened.extend(events.into_iter().filter_map(|e| e.name));
    }
    assert_eq!(opened, BTreeSet::from([OsStr::new("counter_1.db").into()]));

    assert_eq!((s.stats.files_read, s.stats.files_skipped), (1, 4));
    let got: Vec<_> = s
        .warnings
        .iter()
        .map(|w| (w.path.file_name().unwrap().to_str().unwrap(), &w.kind))
        .collect();
    let want = [
        ("counter_2.db", &WarningKind::NotRegularFile),
        ("counter_3.db", &WarningKind::NotRegularFile),
        ("counter_4.db", &WarningKind::SymbolicLink),
        ("gauge_livesum_5.db", &WarningKind::NotRegularFile),
    ];
    assert_eq!(got, want);
    assert_eq!(s.families[0].samples[0].value, 1.0);
}

/// A metrics file whose name is not UTF-8 is skipped with a warning that
/// names it (lossily); before, it vanished from the scrape silently.
#[test]
fn non_utf8_names_are_warned() {
    let d = Dir::new();
    let k = format::encode_key("c", "c_total", &[], "C.");
    let img = format::build_file(&[(k.as_bytes(), 1.0, 0.0)], 4096);
    std::fs::write(d.path().join("counter_1.db"), &img).unwrap();
    let odd = d.path().join(OsStr::from_bytes(b"counter_\xff\xfe.db"));
    std::fs::write(&odd, &img).unwrap();
    let s = MultiProcessCollector::new(d.path())
        .unwrap()
        .collect_families()
        .unwrap();
    assert_eq!((s.stats.files_read, s.stats.files_skipped), (1, 1));
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert_eq!(s.warnings[0].path, odd);
    assert_eq!(s.warnings[0].kind, WarningKind::NonUtf8Name);
    let line = s.warnings[0].to_string();
    assert!(
        line.ends_with("counter_\u{fffd}\u{fffd}.db: file name is not UTF-8; skipped"),
        "{line}"
    );
}
