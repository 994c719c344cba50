//! What every primitive shares: the run it belongs to, its identity (a `Resource`), and its
//! mutable state. Primitives are handles (`Rc<Base<State>>`); clones are the same primitive.

use std::cell::RefCell;
use std::rc::Rc;

use crate::runtime::{Detail, ResourceKind, ResourceRef, Runtime, Subject};

pub(crate) struct Base<S> {
    pub(crate) rt: Runtime,
    pub(crate) res: ResourceRef,
    pub(crate) state: RefCell<S>,
}

impl<S> Base<S> {
    /// A new primitive of `kind` (the primitive's declaration): registers its identity and
    /// traces its creation.
    pub(crate) fn new(
        rt: &Runtime,
        kind: ResourceKind,
        created_at: Option<Rc<str>>,
        detail: Option<String>,
        state: S,
    ) -> Rc<Base<S>> {
        let res = rt.new_resource(kind, created_at);
        if rt.tracing() {
            rt.emit("new", Subject::Resource(res.clone()), detail);
        }
        Rc::new(Base {
            rt: rt.clone(),
            res,
            state: RefCell::new(state),
        })
    }

    /// Traces an operation of the current goroutine on this primitive.
    pub(crate) fn trace(&self, verb: &'static str, detail: Option<String>) {
        self.trace_with(verb, || detail);
    }

    /// `trace` with a detail built only when the run is traced (sweeps run untraced, and
    /// formatting a value for nobody costs more than the operation).
    pub(crate) fn trace_with(&self, verb: &'static str, detail: impl FnOnce() -> Option<String>) {
        if self.rt.tracing() {
            self.rt
                .emit(verb, Subject::Resource(self.res.clone()), detail());
        }
    }

    /// `trace_with` with a compact detail (nothing formatted until the trace is rendered): what
    /// the hot operations use.
    pub(crate) fn record_with(&self, verb: &'static str, detail: impl FnOnce() -> Detail) {
        if self.rt.tracing() {
            self.rt
                .record(verb, Subject::Resource(self.res.clone()), detail());
        }
    }
}

/// `Debug` for a handle type with a `shared: Rc<Base<_>>` field (`Mutex(mutex#3)`), and the
/// crate-internal accessor of the run it belongs to.
macro_rules! debug_handle {
    ($ty:ident $(<$g:ident>)?) => {
        impl$(<$g>)? std::fmt::Debug for $ty$(<$g>)? {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($ty), "({})"), self.shared.res)
            }
        }

        impl$(<$g>)? $ty$(<$g>)? {
            /// The run this primitive belongs to (for its futures; not every primitive has one).
            #[allow(dead_code)]
            pub(crate) fn rt_handle(&self) -> crate::runtime::Runtime {
                self.shared.rt.clone()
            }
        }
    };
}
pub(crate) use debug_handle;
