//! The dynamic pipeline (`goroutine.dynamic_pipeline`, seed 2.5): stages appended and removed
//! while items flow, nothing dropped or duplicated.
//!
//! Why it is shaped so. Stages are not chained by their own channels (a removed stage would
//! strand what is queued in front of it); instead each item is routed, at every hop, to the
//! next live stage after the one it leaves. A stage gets a sequence number when it is added;
//! since `add_stage` appends at the end, the list's order is the sequence order, so "the next
//! live stage after `s`" is the smallest live number above `s`. An item remembers the highest
//! number that existed when it entered (its horizon), so a stage added later does not affect
//! it (changes affect items that enter after them). Each stage is a `Stage` (the one stage
//! state machine of every pipeline) reading an unbounded queue, whose results are routed
//! (`StageOptions::emit_to`) instead of sent on its own output, and whose failures drop the
//! item with a `note` event (its error sink). Removing a stage closes its queue and turns on
//! its `Bypass`: its workers still drain the queue, but pass the queued items on untouched
//! (they had not reached the stage, so they skip it), while an item a worker already holds
//! finishes there. The router (a Rust task, `dynamic-pipeline`) reads the input continuously.
//! Once the input is closed and every item has left, the output (capacity 10) and the live
//! queues close and every worker leaves.

use std::cell::RefCell;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use super::stage::{Bypass, ErrorSink, RouteFuture, Stage, StageError, StageOptions};
use crate::patterns::Spawn;
use crate::patterns::task::CatchPanic;
use crate::runtime::{Runtime, Subject};
use crate::sync::Channel;

/// An item on its way through a dynamic pipeline: its value and the last stage number it may
/// visit (what a dynamic stage's `Stage` carries).
///
/// # Examples
///
/// ```
/// use gosim::patterns::DynamicPipeline;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let input = s.channel::<u32>(0);
///     let p = DynamicPipeline::new(s.runtime(), &s, input.clone(), None);
///     // A stage run by hand: each item travels as a `DynItem`, rewrapped with `with_value`.
///     let stage = p.add_stage_workers("double", 1).expect("a new name");
///     let st = stage.clone();
///     s.spawn(&DynamicPipeline::<u32>::worker_name("double", 1), async move {
///         while let Some(t) = st.take().await {
///             let out = t.value().with_value(t.value().value * 2);
///             st.finish(t, Ok(out), false).await;
///         }
///         st.worker_done().await;
///     });
///     input.send(21).await.expect("open");
///     assert_eq!(p.output().recv().await, Some(42));
///     input.close();
/// });
/// report.assert_pass();
/// ```
#[derive(Clone)]
pub struct DynItem<T> {
    /// The value.
    pub value: T,
    horizon: u64,
}

impl<T> DynItem<T> {
    /// The same item with a stage's result as its value.
    pub fn with_value(&self, value: T) -> DynItem<T> {
        DynItem {
            value,
            horizon: self.horizon,
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for DynItem<T> {
    /// The value alone, as the trace shows an item.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value.fmt(f)
    }
}

/// A dynamic pipeline's stage: the shared `Stage` over its items.
pub type DynamicStage<T> = Stage<DynItem<T>, DynItem<T>>;

struct Entry<T> {
    seq: u64,
    name: String,
    live: bool,
    queue: Channel<DynItem<T>>,
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
///
/// # Examples
///
/// ```
/// use gosim::patterns::DynamicPipeline;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let input = s.channel::<i64>(0);
///     let p = DynamicPipeline::new(s.runtime(), &s, input.clone(), None);
///     p.add_stage(&s, "inc", 1, |v| async move { v + 1 }).expect("a new name");
///     p.add_stage(&s, "neg", 1, |v| async move { -v }).expect("a new name");
///     input.send(1).await.expect("open");
///     assert_eq!(p.output().recv().await, Some(-2));
///     assert!(p.remove_stage("neg")); // later items skip it
///     input.send(1).await.expect("open");
///     assert_eq!(p.output().recv().await, Some(2));
///     assert_eq!(p.stages(), vec!["inc".to_string()]);
///     input.close();
/// });
/// report.assert_pass();
/// ```
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

/// A stage function of a Rust dynamic pipeline, boxed.
type BoxedFn<T> = Rc<dyn Fn(T) -> Pin<Box<dyn Future<Output = T>>>>;

impl<T: Debug + 'static> DynamicPipeline<T> {
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
                    router.route(DynItem { value: v, horizon }, 0).await;
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

    /// Appends a stage named `name` with `workers` (`> 0`) workers and returns it, for the
    /// caller to start `workers` loops (`Stage::take`, the function on the item's value,
    /// `Stage::finish` with `DynItem::with_value`, `Stage::worker_done`), named
    /// `worker_name(name, 1..=workers)`. Err if a live stage has that name. It affects items
    /// that enter after it. Not a scheduling point.
    pub fn add_stage_workers(&self, name: &str, workers: usize) -> Result<DynamicStage<T>, String> {
        assert!(workers > 0, "a pipeline stage needs at least one worker");
        let mut st = self.shared.state.borrow_mut();
        if st.stages.iter().any(|e| e.live && e.name == name) {
            return Err(format!("a stage named {name:?} is already in the pipeline"));
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        let rt = &self.shared.rt;
        let queue: Channel<DynItem<T>> =
            Channel::new(rt, usize::MAX, self.shared.created_at.clone());
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
        let (p1, p2, p3, p4) = (self.clone(), self.clone(), self.clone(), self.clone());
        let dropped: ErrorSink<DynItem<T>> = Rc::new(move |r: StageError<DynItem<T>>| {
            p4.note(&format!("stage {}: {}", r.stage, r.error));
            p4.left();
        });
        let opts = StageOptions {
            name: Some(name.to_string()),
            errors: Some(dropped),
            bypass: Some(Bypass {
                active: Rc::new(move || !p1.is_live(seq)),
                pass: Rc::new(move |item| Box::pin(p2.route(item, seq)) as RouteFuture),
            }),
            emit_to: Some(Rc::new(move |item| {
                Box::pin(p3.route(item, seq)) as RouteFuture
            })),
            ..StageOptions::default()
        };
        Ok(Stage::with_options(
            rt,
            seq as usize,
            queue,
            workers,
            self.shared.created_at.clone(),
            opts,
        ))
    }

    /// The goroutine name of worker `w` (from 1) of stage `name`: `dynamic-<name>-<w>`.
    pub fn worker_name(name: &str, w: usize) -> String {
        format!("dynamic-{name}-{w}")
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
        T: Clone,
        F: Fn(T) -> Fut + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let stage = self.add_stage_workers(name, workers)?;
        let f: BoxedFn<T> = Rc::new(move |v| Box::pin(f(v)));
        for w in 1..=workers {
            let (stage, f) = (stage.clone(), f.clone());
            spawner.spawn_boxed(
                Some(&Self::worker_name(name, w)),
                Box::pin(async move {
                    while let Some(t) = stage.take().await {
                        let (f, item) = (f.clone(), t.value().clone());
                        let r = CatchPanic::new(async move { f(item.value).await }).await;
                        let r = r.map(|v| t.value().with_value(v));
                        stage.finish(t, r, false).await;
                    }
                    stage.worker_done().await;
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
        self.note(&format!("dynamic pipeline {verb} {name}"));
    }

    fn note(&self, text: &str) {
        if self.shared.rt.tracing() {
            self.shared
                .rt
                .emit("note", Subject::None, Some(text.to_string()));
        }
    }

    /// Sends `item`, which leaves stage `from` (0: the input), on: to the next live stage it may
    /// visit, else to the output (waiting for room there).
    fn route(&self, item: DynItem<T>, from: u64) -> impl Future<Output = ()> + use<T> {
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
        let queues: Vec<Channel<DynItem<T>>> = {
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
