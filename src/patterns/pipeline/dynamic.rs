//! The dynamic pipeline (`goroutine.dynamic_pipeline`, seed 2.5): stages appended and removed
//! while items flow, nothing dropped or duplicated.
//!
//! Why it is shaped so. Stages are not chained by their own channels (a removed stage would
//! strand what is queued in front of it); instead each item is routed, at every hop, to the
//! next live stage after the one it leaves. A stage gets a sequence number when it is added;
//! since `add_stage` appends at the end, the list's order is the sequence order, so "the next
//! live stage after `s`" is the smallest live number above `s`. An item remembers the highest
//! number that existed when it entered (its horizon), so a stage added later does not affect
//! it (changes affect items that enter after them). Each stage has an unbounded queue (a
//! channel its workers receive from); removing a stage closes its queue: its workers still
//! drain it, but pass the queued items on untouched (they had not reached the stage, so they
//! skip it), while an item a worker already holds finishes there. The router (a Rust task,
//! `dynamic-pipeline`) reads the input continuously. Once the input is closed and every item
//! has left, the output (capacity 10) and the live queues close and every worker leaves.
//! A stage function that fails drops its item with a `note` event, as `pipeline` does.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use crate::patterns::Spawn;
use crate::patterns::task::CatchPanic;
use crate::runtime::{Runtime, Subject};
use crate::sync::{Channel, Describe};

/// An item on its way: its value and the last stage number it may visit.
#[derive(Debug)]
struct Item<T> {
    value: T,
    horizon: u64,
}

impl<T: Describe> Describe for Item<T> {
    fn describe(&self) -> String {
        self.value.describe()
    }
}

struct Entry<T> {
    seq: u64,
    name: String,
    live: bool,
    queue: Channel<Item<T>>,
}

struct State<T> {
    stages: Vec<Entry<T>>,
    next_seq: u64,
    /// Items read from the input that have not reached the output (nor been dropped).
    inside: usize,
    input_done: bool,
    finished: bool,
}

struct Shared<T> {
    rt: Runtime,
    created_at: Option<Rc<str>>,
    output: Channel<T>,
    state: RefCell<State<T>>,
}

/// A dynamic pipeline. Clones are the same pipeline.
pub struct DynamicPipeline<T> {
    shared: Rc<Shared<T>>,
}

impl<T> Clone for DynamicPipeline<T> {
    fn clone(&self) -> Self {
        DynamicPipeline {
            shared: self.shared.clone(),
        }
    }
}

impl<T> std::fmt::Debug for DynamicPipeline<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared.state.borrow();
        let live: Vec<&str> = st
            .stages
            .iter()
            .filter(|e| e.live)
            .map(|e| e.name.as_str())
            .collect();
        write!(f, "DynamicPipeline({live:?})")
    }
}

/// One worker's handle on its stage: the steps of its loop (`next`, the function, `emit` or
/// `item_failed`, then `worker_done`). It remembers the item it holds.
pub struct DynamicStage<T> {
    p: DynamicPipeline<T>,
    seq: u64,
    name: Rc<str>,
    queue: Channel<Item<T>>,
    horizon: Rc<Cell<u64>>,
}

impl<T> Clone for DynamicStage<T> {
    /// The same worker's handle.
    fn clone(&self) -> Self {
        DynamicStage {
            p: self.p.clone(),
            seq: self.seq,
            name: self.name.clone(),
            queue: self.queue.clone(),
            horizon: self.horizon.clone(),
        }
    }
}

impl<T> std::fmt::Debug for DynamicStage<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DynamicStage({})", self.name)
    }
}

/// A stage function of a Rust dynamic pipeline, boxed.
type BoxedFn<T> = Rc<dyn Fn(T) -> Pin<Box<dyn Future<Output = T>>>>;

impl<T: Describe + 'static> DynamicPipeline<T> {
    /// A pipeline with no stage reading `input` (values go straight to the output until a
    /// stage is added); spawns its router, `dynamic-pipeline`. Not a scheduling point.
    pub fn new(
        rt: &Runtime,
        spawner: &dyn Spawn,
        input: Channel<T>,
        created_at: Option<Rc<str>>,
    ) -> DynamicPipeline<T> {
        let output: Channel<T> = Channel::new(rt, 10, created_at.clone());
        output.resource().set_name("dynamic pipeline output");
        let p = DynamicPipeline {
            shared: Rc::new(Shared {
                rt: rt.clone(),
                created_at,
                output,
                state: RefCell::new(State {
                    stages: Vec::new(),
                    next_seq: 1,
                    inside: 0,
                    input_done: false,
                    finished: false,
                }),
            }),
        };
        let router = p.clone();
        spawner.spawn_boxed(
            Some("dynamic-pipeline"),
            Box::pin(async move {
                while let Some(v) = input.recv().await {
                    let horizon = {
                        let mut st = router.shared.state.borrow_mut();
                        st.inside += 1;
                        st.next_seq - 1
                    };
                    router.route(Item { value: v, horizon }, 0).await;
                }
                router.shared.state.borrow_mut().input_done = true;
                router.finish_if_done();
            }),
        );
        p
    }

    /// The output: one channel for the pipeline's whole life, closed once the input is closed
    /// and every item has left.
    pub fn output(&self) -> Channel<T> {
        self.shared.output.clone()
    }

    /// The live stages' names, in order.
    pub fn stages(&self) -> Vec<String> {
        let st = self.shared.state.borrow();
        st.stages
            .iter()
            .filter(|e| e.live)
            .map(|e| e.name.clone())
            .collect()
    }

    /// Appends a stage named `name` with `workers` (`> 0`) workers and returns their handles,
    /// to be run by the caller's loops (goroutines `dynamic-<name>-<w>`). Err if a live stage
    /// has that name. It affects items that enter after it. Not a scheduling point.
    pub fn add_stage_workers(
        &self,
        name: &str,
        workers: usize,
    ) -> Result<Vec<DynamicStage<T>>, String> {
        assert!(workers > 0, "a pipeline stage needs at least one worker");
        let mut st = self.shared.state.borrow_mut();
        if st.stages.iter().any(|e| e.live && e.name == name) {
            return Err(format!("a stage named {name:?} is already in the pipeline"));
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        let queue: Channel<Item<T>> =
            Channel::new(&self.shared.rt, usize::MAX, self.shared.created_at.clone());
        queue
            .resource()
            .set_name(&format!("dynamic pipeline stage {name}"));
        if st.finished {
            // Nothing will come: its workers leave at once.
            queue.close();
        }
        st.stages.push(Entry {
            seq,
            name: name.to_string(),
            live: true,
            queue: queue.clone(),
        });
        drop(st);
        self.trace("add_stage", name);
        Ok((0..workers)
            .map(|_| DynamicStage {
                p: self.clone(),
                seq,
                name: name.into(),
                queue: queue.clone(),
                horizon: Rc::new(Cell::new(0)),
            })
            .collect())
    }

    /// Appends a stage of `workers` Rust workers applying `f` (a panic drops the item with a
    /// `note` event). Err if a live stage has that name. Not a scheduling point.
    pub fn add_stage<F, Fut>(
        &self,
        spawner: &dyn Spawn,
        name: &str,
        workers: usize,
        f: F,
    ) -> Result<(), String>
    where
        F: Fn(T) -> Fut + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let handles = self.add_stage_workers(name, workers)?;
        let f: BoxedFn<T> = Rc::new(move |v| Box::pin(f(v)));
        for (w, h) in handles.into_iter().enumerate() {
            let f = f.clone();
            spawner.spawn_boxed(
                Some(&h.worker_name(w + 1)),
                Box::pin(async move {
                    while let Some(v) = h.next().await {
                        let f = f.clone();
                        match CatchPanic::new(async move { f(v).await }).await {
                            Ok(out) => h.emit(out).await,
                            Err(m) => h.item_failed(&m),
                        }
                    }
                    h.worker_done();
                }),
            );
        }
        Ok(())
    }

    /// Removes the live stage named `name`: items it holds finish there, items queued for it
    /// skip it, items that enter later never see it. False if no live stage has that name.
    /// Not a scheduling point.
    pub fn remove_stage(&self, name: &str) -> bool {
        let mut st = self.shared.state.borrow_mut();
        let Some(e) = st.stages.iter_mut().find(|e| e.live && e.name == name) else {
            return false;
        };
        e.live = false;
        let q = e.queue.clone();
        drop(st);
        self.trace("remove_stage", name);
        // Its workers drain what is queued (passing it on) and then leave.
        q.close();
        true
    }

    fn trace(&self, verb: &'static str, name: &str) {
        if self.shared.rt.tracing() {
            self.shared.rt.emit(
                "note",
                Subject::None,
                Some(format!("dynamic pipeline {verb} {name}")),
            );
        }
    }

    /// Sends `item`, which leaves stage `from` (0: the input), on: to the next live stage it may
    /// visit, else to the output (waiting for room there).
    fn route(&self, item: Item<T>, from: u64) -> impl Future<Output = ()> + use<T> {
        let p = self.clone();
        async move {
            let next = {
                let st = p.shared.state.borrow();
                st.stages
                    .iter()
                    .find(|e| e.live && e.seq > from && e.seq <= item.horizon)
                    .map(|e| e.queue.clone())
            };
            match next {
                Some(q) => {
                    // Unbounded and open (it is live): never refused, never blocks.
                    let _ = q.try_send(item);
                    crate::sync::yield_now(&p.shared.rt).await;
                }
                None => {
                    let _ = p.shared.output.send(item.value).await;
                    p.left();
                }
            }
        }
    }

    /// An item has left (reached the output or been dropped).
    fn left(&self) {
        self.shared.state.borrow_mut().inside -= 1;
        self.finish_if_done();
    }

    /// Once the input is closed and no item is inside: closes the output and every queue.
    fn finish_if_done(&self) {
        let queues: Vec<Channel<Item<T>>> = {
            let mut st = self.shared.state.borrow_mut();
            if st.finished || !st.input_done || st.inside > 0 {
                return;
            }
            st.finished = true;
            st.stages
                .iter()
                .filter(|e| e.live)
                .map(|e| e.queue.clone())
                .collect()
        };
        self.shared.output.close();
        for q in queues {
            q.close();
        }
    }

    fn is_live(&self, seq: u64) -> bool {
        let st = self.shared.state.borrow();
        st.stages.iter().any(|e| e.seq == seq && e.live)
    }
}

impl<T: Describe + 'static> DynamicStage<T> {
    /// The goroutine name of worker `w` (from 1): `dynamic-<name>-<w>`.
    pub fn worker_name(&self, w: usize) -> String {
        format!("dynamic-{}-{w}", self.name)
    }

    /// The stage's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next item to process; `None` once the stage's queue is closed and drained. Items
    /// queued when the stage was removed are passed on here, unseen by the caller.
    pub fn next(&self) -> impl Future<Output = Option<T>> + use<T> {
        let me = self.clone();
        async move {
            loop {
                let item = me.queue.recv().await?;
                if me.p.is_live(me.seq) {
                    me.horizon.set(item.horizon);
                    return Some(item.value);
                }
                me.p.route(item, me.seq).await;
            }
        }
    }

    /// Sends the result for the item `next` gave on (to the next stage or the output).
    pub fn emit(&self, value: T) -> impl Future<Output = ()> + use<T> {
        let item = Item {
            value,
            horizon: self.horizon.get(),
        };
        self.p.route(item, self.seq)
    }

    /// The function failed on the item `next` gave: it is dropped (a `note` event). Not a
    /// scheduling point.
    pub fn item_failed(&self, message: &str) {
        let rt = &self.p.shared.rt;
        if rt.tracing() {
            rt.emit(
                "note",
                Subject::None,
                Some(format!("stage {}: {message}", self.name)),
            );
        }
        self.p.left();
    }

    /// The worker leaves (after `next` said `None`). Not a scheduling point.
    pub fn worker_done(&self) {}
}
