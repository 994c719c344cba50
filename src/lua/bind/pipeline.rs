//! `goroutine.pipeline(input, stages)` over `crate::patterns::Stage`, the stage state machine a
//! Rust pipeline runs on: Rust checks the stages, makes their channels and spawns their workers;
//! the prelude's worker loop only calls the user's stage function between `raw.stage_next`
//! (`Stage::next`) and `raw.stage_emit` (`Stage::emit`) or `raw.stage_failed`, then
//! `raw.stage_done`. Steps, names and scheduling points are the Lua pipeline's, so traces are
//! unchanged.

use mlua::{MultiValue, UserData, Value};

use super::select::{channel_for, lua_shown};
use super::{Cx, Func, Res, borrow, integer, is_callable, nothing};
use crate::lua::objects::{Dir, LuaChannel};
use crate::lua::value::LuaValue;
use crate::patterns::Stage;

/// The handle a stage's worker gets (no methods: only the prelude's worker loop uses it).
pub(crate) struct LuaStage(pub(super) Stage<LuaValue, LuaValue>);

impl UserData for LuaStage {}

pub(super) fn stage(cx: &Cx<'_>, v: &Value) -> Result<Stage<LuaValue, LuaValue>, String> {
    borrow::<LuaStage>(v)
        .map(|s| s.0.clone())
        .ok_or_else(|| cx.misuse("expects a pipeline stage"))
}

/// One checked stage: its table (the worker reads `fn` from it, as the Lua loop did) and its
/// number of workers.
pub(super) fn check_stages(cx: &Cx<'_>, stages: &Value) -> Result<Vec<(Value, usize)>, String> {
    let Value::Table(list) = stages else {
        return Err(cx.misuse(format!(
            "stages must be an array (got {})",
            lua_shown(stages)
        )));
    };
    let mut out = Vec::new();
    for i in 1.. {
        let st = list.get::<Value>(i).map_err(|e| cx.misuse(e))?;
        let t = match &st {
            Value::Nil => break,
            Value::Table(t) => Some(t),
            _ => None,
        };
        let f = t.map(|t| t.get::<Value>("fn").unwrap_or(Value::Nil));
        let Some(t) = t.filter(|_| f.as_ref().is_some_and(is_callable)) else {
            return Err(cx.misuse(format!(
                "stage {i} needs fn = function (got {})",
                lua_shown(&st)
            )));
        };
        let w = match t.get::<Value>("workers").map_err(|e| cx.misuse(e))? {
            Value::Nil | Value::Boolean(false) => Value::Integer(1),
            w => w,
        };
        let workers = integer(&w).filter(|n| *n > 0).ok_or_else(|| {
            cx.misuse(format!(
                "stage {i} workers must be a positive integer (got {})",
                lua_shown(&w)
            ))
        })?;
        out.push((st, workers as usize));
    }
    Ok(out)
}

pub(crate) static FUNCS: &[Func] = &[
    Func {
        // The prelude calls `goroutine.pipeline(input, stages, stage_worker)`.
        module: "goroutine",
        name: "pipeline",
        results: 1,
        call: |cx, (input, stages, worker)| {
            if borrow::<LuaChannel>(&input).is_none() {
                return Err(cx.misuse(format!("expects a channel (got {})", lua_shown(&input))));
            }
            let checked = check_stages(cx, &stages)?;
            if checked.is_empty() {
                return cx.point(input);
            }
            let mut current = channel_for(&input, cx.fname, Dir::Receive)?.ch.clone();
            for (i, (st, workers)) in checked.into_iter().enumerate() {
                let stage: Stage<LuaValue, LuaValue> =
                    Stage::new(cx.rt(), i + 1, current, workers, cx.here());
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
            let out = LuaChannel {
                ch: current,
                dir: Dir::Both,
                closable: true,
            };
            let out = cx.lua.create_userdata(out).map_err(|e| cx.misuse(e))?;
            cx.point(Value::UserData(out))
        },
    },
    Func {
        // Private: a worker's next input value, `v, true`, or `nil, false` once it is closed.
        module: "raw",
        name: "stage_next",
        results: 2,
        call: |cx, (s, _, _)| {
            let s = stage(cx, &s)?;
            cx.wait(Box::pin(s.next()), |_, v| match v {
                Some(v) => (v.0, Value::Boolean(true), Value::Nil),
                None => (Value::Nil, Value::Boolean(false), Value::Nil),
            })
        },
    },
    Func {
        // Private: sends a result downstream (waits for room).
        module: "raw",
        name: "stage_emit",
        results: 0,
        call: |cx, (s, v, _)| {
            let s = stage(cx, &s)?;
            cx.wait(Box::pin(s.emit(LuaValue(v))), |_, _| nothing())
        },
    },
    Func {
        // Private: the stage function raised on an item (described), which is dropped.
        module: "raw",
        name: "stage_failed",
        results: 0,
        call: |cx, (s, msg, _)| {
            let s = stage(cx, &s)?;
            let msg = match &msg {
                Value::String(m) => m.to_string_lossy(),
                other => lua_shown(other),
            };
            s.item_failed(&msg);
            cx.ret(())
        },
    },
    Func {
        // Private: a worker leaves; the last one closes the stage's output (a scheduling point).
        module: "raw",
        name: "stage_done",
        results: 0,
        call: |cx, (s, _, _)| -> Res {
            let s = stage(cx, &s)?;
            cx.wait(Box::pin(async move { s.worker_done().await }), |_, ()| {
                nothing()
            })
        },
    },
];
