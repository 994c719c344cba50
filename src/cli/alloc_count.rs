//! A counting global allocator, so `gosim bench` can report real memory per goroutine (Lua heap
//! and Rust bookkeeping together: mlua allocates the Lua heap through Rust's allocator), and so
//! `--max-memory` bounds a whole run. A per-thread count on every allocation: a run lives on one
//! thread (`run` on the main thread, each `explore` run on one worker), so the growth of its
//! thread's count since the run started is the run's memory, whatever other threads do. The
//! process-wide count and peak (two atomics every thread would write, a shared cache line under
//! `explore --jobs N`) are kept only while `gosim bench` measures memory (`count_globally`). No
//! effect on behaviour.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

thread_local! {
    /// Bytes allocated minus bytes freed by this thread. Const-initialised and without a
    /// destructor, so reading it from the allocator neither allocates nor fails at thread exit.
    static THREAD: Cell<i64> = const { Cell::new(0) };
}

fn thread_add(n: i64) {
    let _ = THREAD.try_with(|c| c.set(c.get().wrapping_add(n)));
}

/// This thread's net allocations, in bytes (a probe for `gosim::lua::set_memory_probe`).
pub(crate) fn thread_current() -> i64 {
    THREAD.try_with(Cell::get).unwrap_or(0)
}

pub(crate) struct Counting;

/// Net bytes since counting started (negative when older allocations are freed: only the
/// difference between two readings means anything).
static CURRENT: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);
/// Whether the process-wide count is kept (while `gosim bench` measures memory).
static GLOBAL: AtomicBool = AtomicBool::new(false);

/// Starts or stops the process-wide count (`current`, `peak`).
pub(crate) fn count_globally(on: bool) {
    GLOBAL.store(on, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` unchanged and only updates counters.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            if GLOBAL.load(Ordering::Relaxed) {
                add(layout.size());
            }
            thread_add(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) };
        if GLOBAL.load(Ordering::Relaxed) {
            CURRENT.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
        thread_add(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's arguments.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if GLOBAL.load(Ordering::Relaxed) {
                CURRENT.fetch_sub(layout.size() as i64, Ordering::Relaxed);
                add(new_size);
            }
            thread_add(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

fn add(n: usize) {
    let n = n as i64;
    let now = CURRENT.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

/// Bytes allocated now.
pub(crate) fn current() -> i64 {
    CURRENT.load(Ordering::Relaxed)
}

/// Resets the peak to the current value and returns it.
pub(crate) fn reset_peak() -> i64 {
    let now = current();
    PEAK.store(now, Ordering::Relaxed);
    now
}

/// The highest value since the last reset.
pub(crate) fn peak() -> i64 {
    PEAK.load(Ordering::Relaxed)
}
