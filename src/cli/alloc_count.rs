//! A counting global allocator, so `gosim bench` can report real memory per goroutine (Lua heap
//! and Rust bookkeeping together: mlua allocates the Lua heap through Rust's allocator), and so
//! `--max-memory` bounds a whole run. Two relaxed atomic adds per allocation, and a per-thread
//! count: a run lives on one thread (`run` on the main thread, each `explore` run on one worker),
//! so the growth of its thread's count since the run started is the run's memory, whatever other
//! threads do. No effect on behaviour.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

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

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` unchanged and only updates counters.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(layout.size());
            thread_add(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        thread_add(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's arguments.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
            add(new_size);
            thread_add(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

fn add(n: usize) {
    let now = CURRENT.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

/// Bytes allocated now.
pub(crate) fn current() -> usize {
    CURRENT.load(Ordering::Relaxed)
}

/// Resets the peak to the current value and returns it.
pub(crate) fn reset_peak() -> usize {
    let now = current();
    PEAK.store(now, Ordering::Relaxed);
    now
}

/// The highest value since the last reset.
pub(crate) fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}
