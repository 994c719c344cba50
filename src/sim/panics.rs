//! Capturing the panics of Rust tasks during a run, so that a sweep of hundreds of seeds reports
//! its one failure instead of printing a panic message for every seed that panicked.
//!
//! A task's panic is already caught (`patterns::spawn`: it fails the run, or becomes a
//! `TaskError` for `Sim::go`), but the process-wide panic hook runs before any catch and prints
//! it. `capture_panics` installs, once per process, a hook wrapper that stays silent while the
//! current thread is inside `capture_panics` and records the message and location there; on
//! every other thread, and outside a capture, it delegates to the hook that was installed before
//! it (the default one prints as usual). The state is thread-local, so tests running in parallel
//! threads do not see each other's captures.

use std::cell::RefCell;
use std::sync::Once;

/// A panic seen while capturing: what a report needs of it.
///
/// # Examples
///
/// ```
/// use gosim::sim::{CapturedPanic, capture_panics};
///
/// let (_, panics) = capture_panics(|| std::panic::catch_unwind(|| panic!("oops")));
/// let first: &CapturedPanic = &panics[0];
/// assert_eq!(first.message, "oops");
/// assert!(first.location.as_deref().is_some_and(|l| l.contains(".rs:")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedPanic {
    /// The panic's message (`(no message)` for a payload that is not text).
    pub message: String,
    /// Where it was raised (`file:line`), when the hook was told.
    pub location: Option<String>,
}

thread_local! {
    /// The panics captured so far on this thread; `None` outside `capture_panics`.
    static CAPTURED: RefCell<Option<Vec<CapturedPanic>>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

/// Installs the capturing hook in front of the current one (once per process).
fn install() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = payload_text(info.payload());
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()));
            // `try_with`/`try_borrow_mut`: a panic while the thread is being torn down, or inside
            // the hook's own bookkeeping, goes to the previous hook instead of aborting.
            let captured = CAPTURED
                .try_with(|c| match c.try_borrow_mut() {
                    Ok(mut c) => match c.as_mut() {
                        Some(list) => {
                            list.push(CapturedPanic {
                                message: message.clone(),
                                location: location.clone(),
                            });
                            true
                        }
                        None => false,
                    },
                    Err(_) => false,
                })
                .unwrap_or(false);
            if !captured {
                previous(info);
            }
        }));
    });
}

/// Runs `f` with the panics raised on this thread recorded instead of printed; returns `f`'s
/// value and those panics, in order. A panic that escapes `f` still unwinds to the caller (it is
/// recorded too). Captures nest: an inner capture's panics are not seen by the outer one.
///
/// ```
/// let (caught, panics) = gosim::sim::capture_panics(|| {
///     std::panic::catch_unwind(|| panic!("boom")).is_err()
/// });
/// assert!(caught);
/// assert_eq!(panics[0].message, "boom");
/// ```
pub fn capture_panics<R>(f: impl FnOnce() -> R) -> (R, Vec<CapturedPanic>) {
    install();
    let outer = CAPTURED.with(|c| c.borrow_mut().replace(Vec::new()));
    /// Restores the outer capture even if `f` unwinds.
    struct Restore(Option<Option<Vec<CapturedPanic>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(outer) = self.0.take() {
                let _ = CAPTURED.try_with(|c| *c.borrow_mut() = outer);
            }
        }
    }
    let mut restore = Restore(Some(outer));
    let value = f();
    let panics = CAPTURED.with(|c| c.borrow_mut().take()).unwrap_or_default();
    if let Some(outer) = restore.0.take() {
        CAPTURED.with(|c| *c.borrow_mut() = outer);
    }
    (value, panics)
}

/// Whether this thread is inside `capture_panics`.
pub fn capturing() -> bool {
    CAPTURED.with(|c| c.borrow().is_some())
}

/// The text of a panic payload (`(no message)` when it is not text).
pub(crate) fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".to_string())
}
