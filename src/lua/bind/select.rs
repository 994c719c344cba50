//! Parsing a Lua case array (`{channel = ch, receive = true, handler = f}`...) into
//! `crate::sync::Case`s, shared by `goroutine.select` and `goroutine.select_timeout`, and
//! `select_timeout`'s select itself: `crate::sync::select_deadline` over the user's cases and an
//! `after` channel. Only the chosen case's handler is left to the prelude (it is user code).

use mlua::Value;

use super::{Cx, Func, Out, Res, borrow, shown, type_name};
use crate::lua::Host;
use crate::lua::Resume;
use crate::lua::objects::{Dir, LuaChannel};
use crate::lua::value::LuaValue;
use crate::sync::{
    Case, SelectResult, SelectStart, Timed, after_channel, select_deadline, select_start,
};

/// A parsed case array: the cases to select over, for each its index in the user's array, and
/// the index of the default case if there is one.
pub(crate) struct Cases {
    pub(crate) cases: Vec<Case<LuaValue>>,
    pub(crate) map: Vec<usize>,
    pub(crate) default: Option<usize>,
}

/// Parses the user's case array (`fname` names the function in misuse messages; `nil_marker` is
/// `goroutine.NIL`, which sends `nil`).
pub(crate) fn parse_cases(cases: &Value, fname: &str, nil_marker: &Value) -> Result<Cases, String> {
    let Value::Table(list) = cases else {
        return Err(format!(
            "{fname}: expects an array of cases (got {})",
            type_name(cases)
        ));
    };
    let n = list.raw_len();
    let mut parsed = Cases {
        cases: Vec::with_capacity(n + 1),
        map: Vec::with_capacity(n + 1),
        default: None,
    };
    for i in 1..=n {
        let case: Value = list.raw_get(i).map_err(|e| e.to_string())?;
        let Value::Table(case) = case else {
            return Err(format!(
                "{fname}: case {i} must be a table (got {})",
                type_name(&case)
            ));
        };
        let get = |k: &str| -> Value { case.raw_get(k).unwrap_or(Value::Nil) };
        if get("default").as_boolean() == Some(true) {
            if parsed.default.is_some() {
                return Err(format!("{fname}: more than one default case"));
            }
            parsed.default = Some(i);
            continue;
        }
        let handler = get("handler");
        if !matches!(handler, Value::Nil | Value::Function(_)) {
            return Err(format!(
                "{fname}: case {i} handler must be a function (got {})",
                type_name(&handler)
            ));
        }
        let channel = get("channel");
        let send = get("send");
        let receive = get("receive").as_boolean() == Some(true);
        if receive != send.is_nil() {
            return Err(format!(
                "{fname}: case {i} needs exactly one of receive = true or send = value"
            ));
        }
        let case = match channel {
            Value::Boolean(false) => Case::Never,
            Value::Nil => return Err(format!("{fname}: case {i} has no channel")),
            ch if receive
                && super::borrow::<crate::lua::objects::LuaOverflowChannel>(&ch).is_some() =>
            {
                // An overflow channel is a channel underneath: receiving from it is a plain
                // receive (a send case would bypass its strategy, so it is refused below).
                let o =
                    super::borrow::<crate::lua::objects::LuaOverflowChannel>(&ch).expect("checked");
                Case::Recv(o.0.channel().clone())
            }
            ch => {
                let need = if receive { Dir::Receive } else { Dir::Send };
                let c = channel_for(&ch, &format!("{fname} case {i}"), need)?;
                if receive {
                    Case::Recv(c.ch.clone())
                } else {
                    let v = if send == *nil_marker {
                        Value::Nil
                    } else {
                        send
                    };
                    Case::Send(c.ch.clone(), LuaValue(v))
                }
            }
        };
        parsed.cases.push(case);
        parsed.map.push(i);
    }
    Ok(parsed)
}

/// Borrows a channel handle and checks that it may be used in direction `need`.
pub(crate) fn channel_for(
    v: &Value,
    fname: &str,
    need: Dir,
) -> Result<mlua::UserDataRef<LuaChannel>, String> {
    let Some(c) = borrow::<LuaChannel>(v) else {
        return Err(format!("{fname}: expects a channel (got {})", type_name(v)));
    };
    match (need, c.dir) {
        (Dir::Send, Dir::Receive) => Err(format!("{fname}: cannot send on a receive-only channel")),
        (Dir::Receive, Dir::Send) => Err(format!("{fname}: cannot receive on a send-only channel")),
        _ => Ok(c),
    }
}

/// The Lua values of a finished select: `index, value, ok` (the index in the user's array).
pub(crate) fn select_values(h: &Host, result: SelectResult<LuaValue>, map: &[usize]) -> Out {
    let idx = |i: usize| Value::Integer(map[i] as i64);
    match result {
        SelectResult::Recv(i, Some(v)) => (idx(i), v.0, Value::Boolean(true)),
        SelectResult::Recv(i, None) => (idx(i), Value::Nil, Value::Boolean(false)),
        SelectResult::Sent(i) => (idx(i), Value::Boolean(true), Value::Nil),
        SelectResult::SendClosed(i) => (idx(i), Value::Boolean(false), h.closed_msg.clone()),
        SelectResult::Default => unreachable!("the default case is handled by the caller"),
    }
}

/// How the prelude's argument checks showed a bad argument (`type(v)` for anything but a
/// scalar, so a handle is `userdata`), for the messages of the functions that moved to Rust.
pub(crate) fn lua_shown(v: &Value) -> String {
    match v {
        Value::UserData(_) | Value::LightUserData(_) => "userdata".to_string(),
        other => shown(other),
    }
}

/// Checks a timeout argument as the Lua versions did (`type(ms) == "number"`).
pub(crate) fn timeout_ms(cx: &Cx<'_>, ms: &Value) -> Result<(), String> {
    if matches!(ms, Value::Integer(_) | Value::Number(_)) {
        Ok(())
    } else {
        Err(cx.misuse(format!(
            "timeout must be a number of milliseconds (got {})",
            lua_shown(ms)
        )))
    }
}

/// An `after(ms)` channel, made and checked as `goroutine.after` makes it.
pub(crate) fn after(cx: &Cx<'_>, ms: &Value) -> Result<crate::sync::Channel<LuaValue>, String> {
    let d = Cx {
        fname: "goroutine.after",
        ..*cx
    }
    .duration(ms)?;
    Ok(after_channel(
        cx.rt(),
        d,
        |now| LuaValue(super::ms_value(now)),
        cx.here(),
    ))
}

/// Parses the case array and starts the select: the chosen case's `index, value, ok` now, or
/// `PARK` with the select kept for the resume (`Resume::Select`, not a boxed future: `select`
/// is on the hot path of many scenarios).
fn select(cx: &Cx<'_>, cases: &Value, fname: &str, nil_marker: &Value) -> Res {
    let parsed = parse_cases(cases, fname, nil_marker)?;
    if parsed.cases.is_empty() && parsed.default.is_none() {
        return Err(format!(
            "{fname}: no cases (a select with nothing to wait for blocks forever)"
        ));
    }
    let h = cx.host;
    let Cases {
        cases,
        map,
        default,
    } = parsed;
    Ok(match select_start(&h.rt, cases, default.is_some()) {
        SelectStart::Done(SelectResult::Default) => {
            let idx = Value::Integer(default.expect("default taken only when present") as i64);
            h.finish3(idx, Value::Nil, Value::Nil)
        }
        SelectStart::Done(result) => {
            let (a, b, c) = select_values(h, result, &map);
            h.finish3(a, b, c)
        }
        SelectStart::Parked(wait) => {
            let (p, _) = h.park_with(Resume::Select(Box::new((wait, map))));
            (p, Value::Nil, Value::Nil)
        }
    })
}

pub(crate) static FUNCS: &[Func] = &[
    Func {
        // Private (`raw.select(cases, NIL)`): the select of `goroutine.select`, whose handler the
        // prelude then runs (through its own fixed-arity shim: a hot call).
        module: "raw",
        name: "select",
        results: 3,
        call: |cx, (cases, nil_marker, _)| select(cx, &cases, "goroutine.select", &nil_marker),
    },
    Func {
        // The prelude wraps it (the chosen case's handler is user code) and passes `goroutine.NIL`.
        module: "goroutine",
        name: "select_timeout",
        results: 3,
        call: |cx, (ms, cases, nil_marker)| {
            timeout_ms(cx, &ms)?;
            let Value::Table(list) = &cases else {
                return Err(cx.misuse(format!(
                    "expects an array of cases (got {})",
                    lua_shown(&cases)
                )));
            };
            for (i, c) in list.sequence_values::<Value>().enumerate() {
                let Value::Table(c) = c.map_err(|e| cx.misuse(e))? else {
                    continue;
                };
                if !matches!(
                    c.get::<Value>("default"),
                    Ok(Value::Nil | Value::Boolean(false))
                ) {
                    return Err(cx.misuse(format!(
                        "case {} is a default case, which select_timeout does not take",
                        i + 1
                    )));
                }
            }
            let deadline = after(cx, &ms)?;
            let parsed = parse_cases(&cases, cx.fname, &nil_marker)?;
            let host = cx.host.clone();
            let map = parsed.map;
            let fut = select_deadline(cx.rt(), parsed.cases, deadline);
            cx.wait(fut, move |_lua, r| match r {
                Timed::Case(r) => select_values(&host, r, &map),
                Timed::TimedOut => (Value::Nil, Value::Nil, Value::Nil),
            })
        },
    },
];
