//! Pipelines (Lua's `goroutine.pipeline`): stages connected by channels, each stage `N` workers
//! applying a function to every value of its input and sending the result to its output.
//!
//! Why it is shaped so. A stage is the part every pipeline shares, whatever runs in it: an input
//! channel, an output channel (capacity 10, named `pipeline stage <i>`), `N` workers, and a
//! counter that closes the output when the last worker has seen the input close, so closing the
//! pipeline's input drains and closes every stage in turn. That is `Stage`, a state machine with
//! no user code; a worker loop is `next` (receive), the user's function, `emit` (send) or
//! `item_failed`, and finally `worker_done`. The Rust loop here runs async closures; the wish-list
//! pipelines (batching, metrics) and a Lua binding reuse `Stage` with their own loops. With one
//! worker per stage the input's order is kept; with more, values may overtake each other.
//!
//! A stage function fails by panicking: the panic is caught, the item is dropped with a `note`
//! event (`stage <i>: <message>`), and the worker goes on, as Lua drops an item whose function
//! raised.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use super::Spawn;
use super::task::CatchPanic;
use crate::runtime::{Runtime, Subject};
use crate::sync::{Channel, Describe, Op};

struct Shared<I, O> {
    rt: Runtime,
    index: usize,
    input: Channel<I>,
    output: Channel<O>,
    remaining: Cell<usize>,
}

/// One stage of a pipeline. Clones are the same stage.
pub struct Stage<I, O> {
    shared: Rc<Shared<I, O>>,
}

impl<I, O> Clone for Stage<I, O> {
    fn clone(&self) -> Self {
        Stage {
            shared: self.shared.clone(),
        }
    }
}

impl<I, O> std::fmt::Debug for Stage<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stage({})", self.shared.index)
    }
}

impl<I: Describe + 'static, O: Describe + 'static> Stage<I, O> {
    /// Stage number `index` (from 1) reading `input` with `workers` workers (`> 0`): creates its
    /// output channel. Starts no worker: the caller spawns `workers` loops named
    /// `worker_name(1..=workers)`. Not a scheduling point.
    pub fn new(
        rt: &Runtime,
        index: usize,
        input: Channel<I>,
        workers: usize,
        created_at: Option<Rc<str>>,
    ) -> Stage<I, O> {
        assert!(workers > 0, "a pipeline stage needs at least one worker");
        let output: Channel<O> = Channel::new(rt, 10, created_at);
        output
            .resource()
            .set_name(&format!("pipeline stage {index}"));
        Stage {
            shared: Rc::new(Shared {
                rt: rt.clone(),
                index,
                input,
                output,
                remaining: Cell::new(workers),
            }),
        }
    }

    /// The goroutine name of worker `w` (from 1): `pipeline-<index>-<w>`.
    pub fn worker_name(&self, w: usize) -> String {
        format!("pipeline-{}-{w}", self.shared.index)
    }

    /// Its output channel (the next stage's input).
    pub fn output(&self) -> Channel<O> {
        self.shared.output.clone()
    }

    /// For a worker: the next input value; `None` once the input is closed and drained.
    pub fn next(&self) -> impl Future<Output = Option<I>> + use<I, O> {
        self.shared.input.recv()
    }

    /// For a worker: sends a result downstream (waiting for room); false if the output was
    /// closed (only a caller closing it by hand does that).
    pub fn emit(&self, value: O) -> impl Future<Output = bool> + use<I, O> {
        let send = self.shared.output.send(value);
        async move { send.await.is_ok() }
    }

    /// For a worker: the function failed on an item, which is dropped (a `note` event). Not a
    /// scheduling point.
    pub fn item_failed(&self, message: &str) {
        if self.shared.rt.tracing() {
            self.shared.rt.emit(
                "note",
                Subject::None,
                Some(format!("stage {}: {message}", self.shared.index)),
            );
        }
    }

    /// For a worker, after `next` said `None`: the last worker to leave closes the output (a
    /// scheduling point); the others leave without an operation.
    pub async fn worker_done(&self) {
        let left = self.shared.remaining.get() - 1;
        self.shared.remaining.set(left);
        if left == 0 {
            let out = self.shared.output.clone();
            Op::now(&self.shared.rt, move || {
                out.close();
            })
            .await;
        }
    }
}

/// A stage function, boxed.
type BoxedStageFn<T> = Rc<dyn Fn(T) -> Pin<Box<dyn Future<Output = T>>>>;

/// The function of a stage of a Rust pipeline: `workers` workers applying `f`.
pub struct StageFn<T> {
    workers: usize,
    f: BoxedStageFn<T>,
}

impl<T> std::fmt::Debug for StageFn<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StageFn(workers={})", self.workers)
    }
}

impl<T: 'static> StageFn<T> {
    /// A stage of `workers` workers (`> 0`) applying the async function `f`.
    pub fn new<F, Fut>(workers: usize, f: F) -> StageFn<T>
    where
        F: Fn(T) -> Fut + 'static,
        Fut: Future<Output = T> + 'static,
    {
        StageFn {
            workers,
            f: Rc::new(move |v| Box::pin(f(v))),
        }
    }
}

/// Connects `stages` in order after `input` and starts their workers (`pipeline-<i>-<w>`);
/// returns the last stage's output (`input` itself with no stage). Closing `input` closes the
/// output once every value has gone through. Not a scheduling point.
pub fn pipeline<T: Describe + 'static>(
    rt: &Runtime,
    spawner: &dyn Spawn,
    input: Channel<T>,
    stages: Vec<StageFn<T>>,
    created_at: Option<Rc<str>>,
) -> Channel<T> {
    let mut current = input;
    for (i, st) in stages.into_iter().enumerate() {
        let stage: Stage<T, T> = Stage::new(rt, i + 1, current, st.workers, created_at.clone());
        for w in 1..=st.workers {
            let (s, f) = (stage.clone(), st.f.clone());
            spawner.spawn_boxed(Some(&stage.worker_name(w)), Box::pin(rust_worker(s, f)));
        }
        current = stage.output();
    }
    current
}

/// The Rust worker loop of a stage.
async fn rust_worker<T: Describe + 'static>(stage: Stage<T, T>, f: BoxedStageFn<T>) {
    while let Some(v) = stage.next().await {
        let f = f.clone();
        match CatchPanic::new(async move { f(v).await }).await {
            Ok(out) => {
                let _ = stage.emit(out).await;
            }
            Err(message) => stage.item_failed(&message),
        }
    }
    stage.worker_done().await;
}
