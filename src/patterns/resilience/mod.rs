//! Resilience patterns (seed §3): a rate limiter, a circuit breaker, retry with backoff and a
//! bulkhead. Each is a Rust state machine usable from Rust tasks and Lua goroutines on the same
//! object; the ones that run user functions (breaker, retry, bulkhead) expose their steps so a
//! language layer's combinator only calls the user's function between them.

mod bulkhead;
mod circuit_breaker;
mod rate_limiter;
mod retry;

pub use bulkhead::{Bulkhead, Full, Partition};
pub use circuit_breaker::{
    CallError, CircuitBreaker, Permit, Rejected, Settings as CircuitSettings,
    State as CircuitState, Transition,
};
pub use rate_limiter::{RateLimiter, Reservation, WaitError};
pub use retry::{Failure, Retry, RetrySettings, permanent, retry};
