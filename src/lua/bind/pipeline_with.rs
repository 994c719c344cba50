//! The wish-list's pipelines (seed 2.x) over `crate::patterns::Stage` and
//! `crate::patterns::DynamicPipeline`: `goroutine.pipeline_with_errors`, `_with_retry`,
//! `_with_rate_limit` (each `-> output, errors`) and `_with_metrics` (`-> output, metrics`),
//! one binding with one set of stage fields (`name`, `workers`, `fn`, `max_retries`,
//! `retry_delay`, `backoff`, `rate_limit`); the variant only sets defaults (`_with_retry`
//! retries 3 times 100 ms apart unless told otherwise). Rust checks the stages, makes the
//! stages and their channels and spawns the workers; the prelude's worker loop only calls the
//! stage's function between `raw.stage_take` (`Stage::take`) and `raw.stage_finish`
//! (`Stage::finish`, which decides retry, emit or error record), then `raw.stage_done`.
//! `goroutine.dynamic_pipeline(input) -> p` (`p:add_stage{name, workers, fn}`,
//! `p:remove_stage(name) -> bool`, `p:output()`, `p:stages()`); its stages are `Stage`s too,
//! and their workers run the same prelude loop over `raw.dynamic_take`, `raw.dynamic_finish`
//! and `raw.dynamic_done`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use mlua::{Lua, MultiValue, Table, UserData, Value};

use super::pipeline::{LuaStage, check_stages, stage};
use super::select::{channel_for, lua_shown};
use super::{Cx, Func, Kind, Method, Res, borrow, integer, ms_value, nothing, shown};
use crate::lua::objects::{Dir, LuaChannel, LuaDynamicPipeline, LuaPipelineMetrics};
use crate::lua::value::LuaValue;
use crate::patterns::{
    DynItem, DynamicPipeline, DynamicStage, ErrorSink, PipelineMetrics, Retry, RetrySettings,
    Stage, StageError, StageLabel, StageMetrics, StageOptions, Taken, fixed_retries, stage_limiter,
};
use crate::runtime::Nanos;

/// Which variant: it decides the second result and the retry default.
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Errors,
    Retry,
    RateLimit,
    Metrics,
}

/// An item a `pipeline_with_*` worker holds between `stage_take` and `stage_finish`.
pub(crate) struct LuaStageItem(RefCell<Option<Held>>);

/// The stage and the item a worker holds.
type Held = (Stage<LuaValue, LuaValue>, Taken<LuaValue>);

impl UserData for LuaStageItem {}

/// A dynamic pipeline stage, for its workers (no methods: only the prelude's worker loop uses
/// it).
pub(crate) struct LuaDynamicStage(DynamicStage<LuaValue>);

impl UserData for LuaDynamicStage {}

/// An item a dynamic stage's worker holds between `dynamic_take` and `dynamic_finish`.
pub(crate) struct LuaDynamicItem(RefCell<Option<DynHeld>>);

impl UserData for LuaDynamicItem {}

/// The stage and the item a dynamic worker holds.
type DynHeld = (DynamicStage<LuaValue>, Taken<DynItem<LuaValue>>);

/// A stage's options as its table gives them.
struct Fields {
    name: Option<String>,
    retry: Option<RetrySettings>,
    rate_limit: Option<f64>,
}

fn fields(cx: &Cx<'_>, i: usize, t: &Table, variant: Variant) -> Result<Fields, String> {
    let get = |k: &str| t.get::<Value>(k).map_err(|e| cx.misuse(e));
    let name = match get("name")? {
        Value::Nil => None,
        Value::String(s) => Some(s.to_string_lossy()),
        other => {
            return Err(cx.misuse(format!(
                "stage {i} name must be a string (got {})",
                shown(&other)
            )));
        }
    };
    let max_retries = match get("max_retries")? {
        Value::Nil => None,
        v => match integer(&v) {
            Some(n) if (0..u32::MAX as i64).contains(&n) => Some(n as u32),
            _ => {
                return Err(cx.misuse(format!(
                    "stage {i} max_retries must be a non-negative integer (got {})",
                    shown(&v)
                )));
            }
        },
    };
    let retry_delay = match get("retry_delay")? {
        Value::Nil => None,
        v @ Value::Integer(0..) => Some(Duration::from_nanos(cx.duration(&v)?)),
        v @ Value::Number(n) if n >= 0.0 => Some(Duration::from_nanos(cx.duration(&v)?)),
        other => {
            return Err(cx.misuse(format!(
                "stage {i} retry_delay must be a non-negative number of milliseconds (got {})",
                shown(&other)
            )));
        }
    };
    let backoff = match get("backoff")? {
        Value::Nil => None,
        Value::Table(b) => {
            if retry_delay.is_some() {
                return Err(cx.misuse(format!("stage {i} takes retry_delay or backoff, not both")));
            }
            let mut s = super::retry::settings(cx, &b)?;
            if let Some(r) = max_retries {
                if b.get::<Value>("max_attempts").map_err(|e| cx.misuse(e))? != Value::Nil {
                    return Err(cx.misuse(format!(
                        "stage {i} takes max_retries or backoff.max_attempts, not both"
                    )));
                }
                s.max_attempts = r.saturating_add(1);
            }
            Some(s)
        }
        other => {
            return Err(cx.misuse(format!(
                "stage {i} backoff must be a table (got {})",
                shown(&other)
            )));
        }
    };
    let retry = match (backoff, max_retries, retry_delay) {
        (Some(s), _, _) => Some(s),
        (None, None, None) if variant != Variant::Retry => None,
        (None, r, d) => Some(fixed_retries(
            r.unwrap_or(3),
            d.unwrap_or(Duration::from_millis(100)),
        )),
    };
    let rate_limit = match get("rate_limit")? {
        Value::Nil => None,
        Value::Integer(n) if n > 0 => Some(n as f64),
        Value::Number(n) if n.is_finite() && n > 0.0 => Some(n),
        other => {
            return Err(cx.misuse(format!(
                "stage {i} rate_limit must be a positive number of items per second (got {})",
                shown(&other)
            )));
        }
    };
    Ok(Fields {
        name,
        retry,
        rate_limit,
    })
}

/// The metatable of error records: `tostring(err)` and `"..." .. err` give `stage S: msg`.
fn record_metatable(lua: &Lua) -> mlua::Result<Table> {
    const KEY: &str = "gosim.pipeline_error";
    if let Ok(Value::Table(t)) = lua.named_registry_value::<Value>(KEY) {
        return Ok(t);
    }
    let mt = lua.create_table()?;
    fn text(lua: &Lua, v: &Value) -> mlua::Result<String> {
        if let Value::Table(t) = v
            && t.metatable()
                .is_some_and(|m| m.raw_get::<bool>("__gosim_pipeline_error").unwrap_or(false))
        {
            let stage: Value = t.raw_get("stage")?;
            let err: Value = t.raw_get("error")?;
            let s = lua.coerce_string(stage)?.map(|s| s.to_string_lossy());
            let e = lua.coerce_string(err)?.map(|s| s.to_string_lossy());
            return Ok(format!(
                "stage {}: {}",
                s.unwrap_or_default(),
                e.unwrap_or_default()
            ));
        }
        match lua.coerce_string(v.clone())? {
            Some(s) => Ok(s.to_string_lossy()),
            None => Err(mlua::Error::runtime(format!(
                "attempt to concatenate a {} value",
                v.type_name()
            ))),
        }
    }
    mt.raw_set("__gosim_pipeline_error", true)?;
    mt.raw_set("__name", "pipeline_error")?;
    // Shared by every run of a reused world: a script must not reach it (`getmetatable` gives
    // `false`), or one run could change it for the next.
    mt.raw_set("__metatable", false)?;
    mt.raw_set(
        "__tostring",
        lua.create_function(|lua, v: Value| text(lua, &v))?,
    )?;
    mt.raw_set(
        "__concat",
        lua.create_function(|lua, (a, b): (Value, Value)| {
            Ok(format!("{}{}", text(lua, &a)?, text(lua, &b)?))
        })?,
    )?;
    lua.set_named_registry_value(KEY, mt.clone())?;
    Ok(mt)
}

fn record(lua: &Lua, mt: &Table, r: StageError<LuaValue>) -> Option<Table> {
    let t = lua.create_table().ok()?;
    t.raw_set("value", r.value.0).ok()?;
    t.raw_set("error", r.error).ok()?;
    match r.stage {
        StageLabel::Index(i) => t.raw_set("stage", i as i64).ok()?,
        StageLabel::Name(n) => t.raw_set("stage", n).ok()?,
    }
    t.raw_set("attempts", r.attempts).ok()?;
    t.set_metatable(Some(mt.clone())).ok()?;
    Some(t)
}

/// `goroutine.pipeline_with_*(input, stages, stage_worker)`: output and errors or metrics.
fn connect(cx: &Cx<'_>, input: Value, stages: Value, worker: Value, variant: Variant) -> Res {
    if borrow::<LuaChannel>(&input).is_none() {
        return Err(cx.misuse(format!("expects a channel (got {})", lua_shown(&input))));
    }
    let checked = check_stages(cx, &stages)?;
    let mut parsed = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (i, (st, workers)) in checked.into_iter().enumerate() {
        let Value::Table(t) = &st else {
            unreachable!("check_stages accepts tables only")
        };
        let f = fields(cx, i + 1, t, variant)?;
        if let Some(n) = &f.name {
            if n == "total" {
                return Err(cx.misuse(format!(
                    "stage {} may not be named \"total\" (metrics:get().total sums the stages)",
                    i + 1
                )));
            }
            if names.contains(n) {
                return Err(cx.misuse(format!("two stages are named {n:?}")));
            }
            names.push(n.clone());
        }
        parsed.push((st, workers, f));
    }
    let mut current = channel_for(&input, cx.fname, Dir::Receive)?.ch.clone();
    let errors: Option<crate::sync::Channel<LuaValue>> = (variant != Variant::Metrics).then(|| {
        let e = crate::sync::Channel::new(cx.rt(), usize::MAX, cx.here());
        e.resource().set_name("pipeline errors");
        e
    });
    let mt = record_metatable(cx.lua).map_err(|e| cx.misuse(e))?;
    let metrics = PipelineMetrics::new();
    let n = parsed.len();
    if n == 0
        && let Some(e) = &errors
    {
        e.close();
    }
    for (i, (st, workers, f)) in parsed.into_iter().enumerate() {
        let sink: Option<ErrorSink<LuaValue>> = errors.clone().map(|e| {
            let weak = cx.lua.weak();
            let mt = mt.clone();
            Rc::new(move |r: StageError<LuaValue>| {
                let t = weak.try_upgrade().and_then(|lua| record(&lua, &mt, r));
                let _ = e.try_send(LuaValue(t.map(Value::Table).unwrap_or(Value::Nil)));
            }) as ErrorSink<LuaValue>
        });
        let on_close: Option<Rc<dyn Fn()>> = match (&errors, i + 1 == n) {
            (Some(e), true) => {
                let e = e.clone();
                Some(Rc::new(move || {
                    e.close();
                }))
            }
            _ => None,
        };
        let opts = StageOptions {
            name: f.name,
            retry: f.retry.map(|s| Retry::new(cx.rt(), s, cx.here())),
            limiter: f.rate_limit.map(|r| stage_limiter(cx.rt(), r, cx.here())),
            errors: sink,
            metrics: Some(metrics.clone()),
            on_close,
            ..StageOptions::default()
        };
        let stage: Stage<LuaValue, LuaValue> =
            Stage::with_options(cx.rt(), i + 1, current, workers, cx.here(), opts);
        let ud = cx
            .lua
            .create_userdata(LuaStage(stage.clone()))
            .map_err(|e| cx.misuse(e))?;
        for w in 1..=workers {
            let args = MultiValue::from_vec(vec![Value::UserData(ud.clone()), st.clone()]);
            let name = stage.worker_name(w);
            match cx
                .host
                .spawn(cx.lua, worker.clone(), Some(&name), false, args)
            {
                Ok(Some(_)) => {}
                // The run has ended with a limit: the scheduling point parks for good.
                Ok(None) => return cx.point(()),
                Err(e) => return Err(cx.misuse(e)),
            }
        }
        current = stage.output();
    }
    let chan = |ch: crate::sync::Channel<LuaValue>| {
        cx.lua
            .create_userdata(LuaChannel {
                ch,
                dir: Dir::Both,
                closable: true,
            })
            .map(Value::UserData)
            .map_err(|e| cx.misuse(e))
    };
    let out = chan(current)?;
    let second = match errors {
        // Only the pipeline sends on it and closes it: the script may only receive.
        Some(e) => Value::UserData(
            cx.lua
                .create_userdata(LuaChannel::owned_by_gosim(e))
                .map_err(|e| cx.misuse(e))?,
        ),
        None => Value::UserData(
            cx.lua
                .create_userdata(LuaPipelineMetrics(metrics))
                .map_err(|e| cx.misuse(e))?,
        ),
    };
    cx.point((out, second))
}

fn item(cx: &Cx<'_>, v: &Value) -> Result<Held, String> {
    borrow::<LuaStageItem>(v)
        .and_then(|i| i.0.borrow_mut().take())
        .ok_or_else(|| cx.misuse("expects a pipeline item"))
}

fn dyn_stage(cx: &Cx<'_>, v: &Value) -> Result<DynamicStage<LuaValue>, String> {
    borrow::<LuaDynamicStage>(v)
        .map(|w| w.0.clone())
        .ok_or_else(|| cx.misuse("expects a dynamic pipeline stage"))
}

fn dyn_item(cx: &Cx<'_>, v: &Value) -> Result<DynHeld, String> {
    borrow::<LuaDynamicItem>(v)
        .and_then(|i| i.0.borrow_mut().take())
        .ok_or_else(|| cx.misuse("expects a dynamic pipeline item"))
}

/// How the worker said a call went: the result, or the error and whether it is permanent.
fn call_result(status: &Value, v: Value) -> (Result<LuaValue, String>, bool) {
    match status {
        Value::Boolean(true) => (Ok(LuaValue(v)), false),
        Value::Boolean(false) => (Err(message(&v)), false),
        _ => (Err(message(&v)), true),
    }
}

fn message(v: &Value) -> String {
    match v {
        Value::String(m) => m.to_string_lossy(),
        other => lua_shown(other),
    }
}

pub(crate) static FUNCS: &[Func] = &[
    Func {
        module: "goroutine",
        name: "pipeline_with_errors",
        results: 2,
        call: |cx, (i, s, w)| connect(cx, i, s, w, Variant::Errors),
    },
    Func {
        module: "goroutine",
        name: "pipeline_with_retry",
        results: 2,
        call: |cx, (i, s, w)| connect(cx, i, s, w, Variant::Retry),
    },
    Func {
        module: "goroutine",
        name: "pipeline_with_rate_limit",
        results: 2,
        call: |cx, (i, s, w)| connect(cx, i, s, w, Variant::RateLimit),
    },
    Func {
        module: "goroutine",
        name: "pipeline_with_metrics",
        results: 2,
        call: |cx, (i, s, w)| connect(cx, i, s, w, Variant::Metrics),
    },
    Func {
        // Private: a worker's next item (after its rate-limit token): `item, value`, or `nil`
        // once the input is closed and drained.
        module: "raw",
        name: "stage_take",
        results: 2,
        call: |cx, (s, _, _)| {
            let s = stage(cx, &s)?;
            let s2 = s.clone();
            cx.wait(Box::pin(s.take()), move |lua, t| match t {
                Some(t) => {
                    let v = t.value().0.clone();
                    match lua.create_userdata(LuaStageItem(RefCell::new(Some((s2, t))))) {
                        Ok(ud) => (Value::UserData(ud), v, Value::Nil),
                        Err(_) => nothing(),
                    }
                }
                None => nothing(),
            })
        },
    },
    Func {
        // Private: how a call went (`true, result` | `false, err` | `"permanent", err`): the
        // item again when it is to be retried (after the delay), else nil.
        module: "raw",
        name: "stage_finish",
        results: 1,
        call: |cx, (it, status, v)| {
            let (s, t) = item(cx, &it)?;
            let (r, permanent) = call_result(&status, v);
            let s2 = s.clone();
            cx.wait(
                Box::pin(s.finish(t, r, permanent)),
                move |lua, again| match again
                    .map(|t| lua.create_userdata(LuaStageItem(RefCell::new(Some((s2, t))))))
                {
                    Some(Ok(ud)) => (Value::UserData(ud), Value::Nil, Value::Nil),
                    _ => nothing(),
                },
            )
        },
    },
    Func {
        module: "goroutine",
        name: "dynamic_pipeline",
        results: 1,
        call: |cx, (input, _, _)| {
            if borrow::<LuaChannel>(&input).is_none() {
                return Err(cx.misuse(format!("expects a channel (got {})", lua_shown(&input))));
            }
            let ch = channel_for(&input, cx.fname, Dir::Receive)?.ch.clone();
            let p = DynamicPipeline::new(cx.rt(), &**cx.host, ch, cx.here());
            let (ud, _, _) = cx.handle(LuaDynamicPipeline(p))?;
            cx.point(ud)
        },
    },
    Func {
        // Private: a dynamic stage worker's next item, `item, value`, or nil when it leaves
        // (items that skip a removed stage are passed on inside).
        module: "raw",
        name: "dynamic_take",
        results: 2,
        call: |cx, (s, _, _)| {
            let s = dyn_stage(cx, &s)?;
            let s2 = s.clone();
            cx.wait(Box::pin(s.take()), move |lua, t| match t {
                Some(t) => {
                    let v = t.value().value.0.clone();
                    match lua.create_userdata(LuaDynamicItem(RefCell::new(Some((s2, t))))) {
                        Ok(ud) => (Value::UserData(ud), v, Value::Nil),
                        Err(_) => nothing(),
                    }
                }
                None => nothing(),
            })
        },
    },
    Func {
        // Private: how the call went; the result goes on (to the next live stage or the
        // output), a failure drops the item (a note). Never asks for another call.
        module: "raw",
        name: "dynamic_finish",
        results: 1,
        call: |cx, (it, status, v)| {
            let (s, t) = dyn_item(cx, &it)?;
            let (r, permanent) = call_result(&status, v);
            let r = r.map(|v| t.value().with_value(v));
            cx.wait(Box::pin(s.finish(t, r, permanent)), |_, _| nothing())
        },
    },
    Func {
        // Private: a dynamic stage's worker leaves.
        module: "raw",
        name: "dynamic_done",
        results: 0,
        call: |cx, (s, _, _)| -> Res {
            let s = dyn_stage(cx, &s)?;
            cx.wait(Box::pin(async move { s.worker_done().await }), |_, ()| {
                nothing()
            })
        },
    },
];

/// A metrics row as a Lua table (times in ms).
fn metrics_table(lua: &Lua, m: &StageMetrics) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let ns = |d: Duration| -> Nanos { u64::try_from(d.as_nanos()).unwrap_or(u64::MAX) };
    t.set("processed", m.processed)?;
    t.set("errors", m.errors)?;
    t.set("retries", m.retries)?;
    t.set("in_flight", m.in_flight)?;
    t.set("avg_time", ms_value(ns(m.avg_time())))?;
    t.set("max_time", ms_value(ns(m.max_time)))?;
    t.set("total_time", ms_value(ns(m.total_time)))?;
    Ok(t)
}

pub(crate) static METRICS: Kind<LuaPipelineMetrics> = Kind {
    table: "pipeline_metrics",
    name: "pipeline_metrics",
    what: "pipeline metrics",
    methods: &[Method {
        name: "get",
        results: 1,
        call: |cx, m, _| {
            let build = || -> mlua::Result<Table> {
                let t = cx.lua.create_table()?;
                for row in m.0.get() {
                    let r = metrics_table(cx.lua, &row)?;
                    match &row.label {
                        StageLabel::Index(i) => t.set(*i as i64, r)?,
                        StageLabel::Name(n) => t.set(n.as_str(), r)?,
                    }
                }
                t.set("total", metrics_table(cx.lua, &m.0.total())?)?;
                Ok(t)
            };
            let t = build().map_err(|e| cx.misuse(e))?;
            cx.ret(Value::Table(t))
        },
    }],
};

pub(crate) static DYNAMIC: Kind<LuaDynamicPipeline> = Kind {
    table: "dynamic_pipeline",
    name: "dynamic_pipeline",
    what: "a dynamic pipeline",
    methods: &[
        Method {
            // Rust checks the stage and makes its workers' handles; the prelude's
            // `add_stage` spawns its workers (`dynamic-<name>-<w>`).
            name: "add_stage",
            results: 1,
            call: |cx, p, (spec, worker, _)| {
                let Value::Table(t) = &spec else {
                    return Err(cx.misuse(format!(
                        "expects a stage table {{name, workers, fn}} (got {})",
                        shown(&spec)
                    )));
                };
                let name = match t.get::<Value>("name").map_err(|e| cx.misuse(e))? {
                    Value::String(s) => s.to_string_lossy(),
                    other => {
                        return Err(cx.misuse(format!(
                            "the stage needs name = string (got {})",
                            shown(&other)
                        )));
                    }
                };
                let f: Value = t.get("fn").map_err(|e| cx.misuse(e))?;
                if !super::is_callable(&f) {
                    return Err(
                        cx.misuse(format!("the stage needs fn = function (got {})", shown(&f)))
                    );
                }
                let w = match t.get::<Value>("workers").map_err(|e| cx.misuse(e))? {
                    Value::Nil => Value::Integer(1),
                    w => w,
                };
                let workers = integer(&w).filter(|n| *n > 0).ok_or_else(|| {
                    cx.misuse(format!(
                        "workers must be a positive integer (got {})",
                        shown(&w)
                    ))
                })? as usize;
                let stage =
                    p.0.add_stage_workers(&name, workers)
                        .map_err(|e| cx.misuse(e))?;
                let ud = cx
                    .lua
                    .create_userdata(LuaDynamicStage(stage))
                    .map_err(|e| cx.misuse(e))?;
                for w in 1..=workers {
                    let wname = DynamicPipeline::<LuaValue>::worker_name(&name, w);
                    let args =
                        MultiValue::from_vec(vec![Value::UserData(ud.clone()), spec.clone()]);
                    match cx
                        .host
                        .spawn(cx.lua, worker.clone(), Some(&wname), false, args)
                    {
                        Ok(Some(_)) => {}
                        Ok(None) => return cx.point(()),
                        Err(e) => return Err(cx.misuse(e)),
                    }
                }
                cx.point(())
            },
        },
        Method {
            name: "remove_stage",
            results: 1,
            call: |cx, p, (name, _, _)| {
                let Value::String(n) = &name else {
                    return Err(cx.misuse(format!("expects a stage name (got {})", shown(&name))));
                };
                cx.point(p.0.remove_stage(&n.to_string_lossy()))
            },
        },
        Method {
            name: "output",
            results: 1,
            call: |cx, p, _| {
                let ch = LuaChannel {
                    ch: p.0.output(),
                    dir: Dir::Receive,
                    closable: false,
                };
                cx.handle(ch)
            },
        },
        Method {
            name: "stages",
            results: 1,
            call: |cx, p, _| {
                let t = cx
                    .lua
                    .create_sequence_from(p.0.stages())
                    .map_err(|e| cx.misuse(e))?;
                cx.ret(Value::Table(t))
            },
        },
    ],
};
