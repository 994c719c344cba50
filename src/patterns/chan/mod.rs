//! Channel patterns (seed §1): forwarders that run no user code, so Rust tasks whatever the
//! caller's language.

mod debounce;
mod throttle;

pub use debounce::{DebounceOptions, debounce};
pub use throttle::{ThrottleOptions, throttle};
