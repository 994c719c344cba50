//! The `log` module's levels and the `sim` module's queries: `log.info(msg)`..., `sim.seed()`,
//! `sim.is_simulated()`, `sim.buggify(p)`, `sim.assert_sometimes(cond, msg)`. (`log.table`
//! formats a Lua table and `sim.assert_always` raises, so they stay in the prelude.)

use mlua::Value;

use super::{Cx, Func, Res, shown, type_name};
use crate::lua::Host;
use crate::lua::value::describe;
use crate::runtime::{Subject, TaskId, format_ms};

/// Writes a log line: a trace event (`log.info`...), and in production also a printed line.
pub(crate) fn log_line(h: &Host, level: &str, msg: String) {
    let rt = &h.rt;
    if !rt.is_simulated() {
        let me = rt.try_current().unwrap_or(TaskId(0));
        let label = match rt.task_name(me) {
            Some(n) => format!("{me}({n})"),
            None => me.to_string(),
        };
        if level == "print" {
            println!("{msg}");
        } else {
            println!("{} {label} {level}: {msg}", format_ms(rt.now()));
        }
    }
    if rt.tracing() {
        let verb = match level {
            "info" => "log.info",
            "warn" => "log.warn",
            "error" => "log.error",
            "debug" => "log.debug",
            "table" => "log.table",
            _ => "log.print",
        };
        rt.emit(verb, Subject::None, Some(msg));
    }
}

/// Log text as it is printed and traced: valid UTF-8 as it is; otherwise every byte of 128 and
/// above as `\xNN` (as the prelude's `printable` does for `print` and `log.table`), so binary
/// data never breaks a trace line or an error message.
fn printable(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes
            .iter()
            .map(|&b| {
                if b < 128 {
                    (b as char).to_string()
                } else {
                    format!("\\x{b:02X}")
                }
            })
            .collect(),
    }
}

/// A log level: strings and numbers only (tables would print addresses).
fn log(cx: &Cx<'_>, level: &str, msg: &Value) -> Res {
    let text = match msg {
        Value::String(s) => printable(&s.as_bytes()),
        Value::Integer(_) | Value::Number(_) => cx
            .lua
            .coerce_string(msg.clone())
            .ok()
            .flatten()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default(),
        other => return Err(cx.misuse(format!("expects a string (got {})", type_name(other)))),
    };
    log_line(cx.host, level, text);
    cx.ret(())
}

macro_rules! level {
    ($name:literal) => {
        Func {
            module: "log",
            name: $name,
            results: 0,
            call: |cx, (msg, _, _)| log(cx, $name, &msg),
        }
    };
}

pub(crate) static FUNCS: &[Func] = &[
    level!("info"),
    level!("warn"),
    level!("error"),
    level!("debug"),
    level!("print"),
    Func {
        module: "sim",
        name: "seed",
        results: 1,
        call: |cx, _| cx.ret(cx.rt().seed() as i64),
    },
    Func {
        module: "sim",
        name: "is_simulated",
        results: 1,
        call: |cx, _| cx.ret(cx.rt().is_simulated()),
    },
    Func {
        module: "sim",
        name: "buggify",
        results: 1,
        call: |cx, (p, _, _)| {
            let bad = || {
                cx.misuse(format!(
                    "probability must be a number in [0, 1] (got {})",
                    shown(&p)
                ))
            };
            let p = match &p {
                Value::Nil => 0.25,
                Value::Integer(i) => *i as f64,
                Value::Number(n) => *n,
                _ => return Err(bad()),
            };
            if !(0.0..=1.0).contains(&p) {
                return Err(bad());
            }
            let rt = cx.rt();
            let fire = rt.is_simulated() && rt.random_unit() < p;
            if fire && rt.tracing() {
                rt.emit("buggify", Subject::None, None);
            }
            cx.ret(fire)
        },
    },
    Func {
        module: "sim",
        name: "assert_sometimes",
        results: 0,
        call: |cx, (cond, msg, _)| {
            let name = match &msg {
                Value::Nil => {
                    return Err(cx.misuse("needs a message naming the assertion (got nil)"));
                }
                Value::String(s) => printable(&s.as_bytes()),
                other => describe(other),
            };
            let ok = !matches!(cond, Value::Nil | Value::Boolean(false));
            *cx.host.sometimes.borrow_mut().entry(name).or_insert(false) |= ok;
            cx.ret(())
        },
    },
];
