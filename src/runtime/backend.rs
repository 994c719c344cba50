//! Where time comes from. The runtime asks its backend for the time and to reach a deadline; the
//! simulated backend jumps, the wall-clock backend (`RealClock`, production mode) waits. Nothing
//! else in the crate reads a clock, so primitives work unchanged on both.

/// Nanoseconds since the start of the run.
pub type Nanos = u64;

/// Nanoseconds in one millisecond, the unit of every duration in the Lua API.
pub const NANOS_PER_MS: u64 = 1_000_000;

/// The source of time of one run, chosen when the runtime is built.
///
/// # Examples
///
/// ```
/// use gosim::runtime::{Backend, SimulatedClock};
///
/// let mut clock = SimulatedClock::default();
/// assert!(clock.is_simulated());
/// clock.advance_to(5_000_000); // virtual time moves only when told, and at once
/// assert_eq!(clock.now(), 5_000_000);
/// ```
pub trait Backend: std::fmt::Debug {
    /// The current time of the run.
    fn now(&self) -> Nanos;
    /// Moves the run's time forward to `deadline` (a later instant than `now`), waiting if the
    /// backend is real.
    fn advance_to(&mut self, deadline: Nanos);
    /// Whether time is virtual (`sim.is_simulated()`).
    fn is_simulated(&self) -> bool;
}

/// Virtual time: starts at 0 and moves only when the scheduler says so.
///
/// # Examples
///
/// ```
/// use gosim::runtime::{Config, Runtime, SimulatedClock};
///
/// let rt = Runtime::new(Config::default(), Box::new(SimulatedClock::default()));
/// assert!(rt.is_simulated());
/// assert_eq!(rt.now(), 0);
/// rt.shutdown();
/// ```
#[derive(Debug, Default)]
pub struct SimulatedClock {
    now: Nanos,
}

impl Backend for SimulatedClock {
    fn now(&self) -> Nanos {
        self.now
    }

    fn advance_to(&mut self, deadline: Nanos) {
        assert!(deadline >= self.now, "virtual time never goes back");
        self.now = deadline;
    }

    fn is_simulated(&self) -> bool {
        true
    }
}

/// Converts a duration in (possibly fractional) milliseconds to nanoseconds: rounded to the
/// nearest nanosecond, negative and NaN durations count as 0, and huge ones saturate.
pub fn ms_to_nanos(ms: f64) -> Nanos {
    if ms.is_nan() || ms <= 0.0 {
        return 0;
    }
    let ns = (ms * NANOS_PER_MS as f64).round();
    if ns >= u64::MAX as f64 {
        u64::MAX
    } else {
        ns as u64
    }
}

/// `format_ms` of a `Duration` (the public API's times), saturating past `u64` nanoseconds.
pub fn format_duration(d: std::time::Duration) -> String {
    format_ms(d.as_nanos().min(u64::MAX as u128) as Nanos)
}

/// Nanoseconds as a `Duration`: how an internal time leaves the public API.
pub(crate) fn duration(ns: Nanos) -> std::time::Duration {
    std::time::Duration::from_nanos(ns)
}

/// Renders nanoseconds as milliseconds, exactly: `1500ms`, `0.000001ms`.
pub fn format_ms(ns: Nanos) -> String {
    let whole = ns / NANOS_PER_MS;
    let frac = ns % NANOS_PER_MS;
    if frac == 0 {
        format!("{whole}ms")
    } else {
        let digits = format!("{frac:06}");
        format!("{whole}.{}ms", digits.trim_end_matches('0'))
    }
}

/// Nanoseconds as a Lua-friendly number of milliseconds (an integer when exact).
pub fn nanos_to_ms_f64(ns: Nanos) -> f64 {
    ns as f64 / NANOS_PER_MS as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ms_conversion_rounds_and_clamps() {
        assert_eq!(ms_to_nanos(1.0), 1_000_000);
        assert_eq!(ms_to_nanos(0.000001), 1);
        assert_eq!(ms_to_nanos(0.0000004), 0);
        assert_eq!(ms_to_nanos(-5.0), 0);
        assert_eq!(ms_to_nanos(f64::NAN), 0);
        assert_eq!(ms_to_nanos(f64::INFINITY), u64::MAX);
    }

    #[test]
    fn ms_formatting_is_exact() {
        assert_eq!(format_ms(0), "0ms");
        assert_eq!(format_ms(1_500_000_000), "1500ms");
        assert_eq!(format_ms(1), "0.000001ms");
        assert_eq!(format_ms(2_500_000), "2.5ms");
    }
}
