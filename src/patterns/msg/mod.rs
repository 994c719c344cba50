//! Messaging patterns (seed §4): request/reply with correlation ids and a work queue with
//! retries and a dead-letter queue, each usable from Rust tasks and Lua goroutines on the same
//! object.

mod request_reply;
mod work_queue;

pub use request_reply::{RequestError, RequestReply};
pub use work_queue::{
    DeadLetter, QueueClosed, WorkQueue, WorkQueueOptions, WorkQueueStats, retry_delay,
};
