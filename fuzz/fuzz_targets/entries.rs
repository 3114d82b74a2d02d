//! Arbitrary bytes as a metrics file: `format::Entries` must never panic,
//! allocate, read outside the buffer or loop; `key::decode_key` on every key
//! must never panic, must allocate at most linearly in the key's length, and
//! whatever it accepts must survive `encode_key` → `decode_key` unchanged.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;
use prometheus_multiproc::format::{Entries, HEADER_LEN};
use prometheus_multiproc::format::{decode_key, encode_key};

/// Counts the bytes requested while `COUNTING` is set.
struct Counting;
static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only adds
// a counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counted<T>(f: impl FnOnce() -> T) -> (T, usize) {
    ALLOCATED.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    let r = f();
    COUNTING.store(false, Ordering::Relaxed);
    (r, ALLOCATED.load(Ordering::Relaxed))
}

fuzz_target!(|data: &[u8]| {
    // Walk the entries, collecting them without counting our own Vec.
    let mut keys: Vec<&[u8]> = Vec::new();
    let (used, bytes) = counted(|| {
        let Ok(entries) = Entries::new(data) else {
            return None;
        };
        let used = entries.used();
        let mut n = 0usize;
        for e in entries {
            let Ok(e) = e else { break };
            n += 1;
            // Each entry is at least 24 bytes: the walk is bounded.
            assert!(n <= (used - HEADER_LEN) / 24, "more entries than fit");
            assert_eq!(e.value_offset % 8, 0, "unaligned value");
            assert!(e.value_offset + 16 <= used, "value past used");
            COUNTING.store(false, Ordering::Relaxed);
            keys.push(e.key);
            COUNTING.store(true, Ordering::Relaxed);
        }
        Some(used)
    });
    assert_eq!(bytes, 0, "Entries allocated {bytes} bytes");
    if let Some(used) = used {
        assert!(HEADER_LEN <= used && used <= data.len());
    }
    // Raw bytes as a key too, so that the key parser is fuzzed directly.
    keys.push(data);
    for k in keys {
        let (parsed, bytes) = counted(|| decode_key(k));
        assert!(
            bytes <= 64 * k.len() + 4096,
            "decode_key allocated {bytes} bytes for a {}-byte key",
            k.len()
        );
        let Ok(p) = parsed else { continue };
        let labels: Vec<(&str, &str)> = p
            .labels
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let again = encode_key(&p.metric, &p.sample, &labels, &p.help);
        let p2 = decode_key(again.as_bytes()).expect("our own encoding decodes");
        assert_eq!(p, p2, "round trip changed the key");
        // Our encoding is canonical: encoding again gives the same bytes.
        let labels2: Vec<(&str, &str)> = p2
            .labels
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(
            again,
            encode_key(&p2.metric, &p2.sample, &labels2, &p2.help)
        );
    }
});
