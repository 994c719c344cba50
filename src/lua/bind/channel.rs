//! `goroutine.channel(cap, dir)`, its methods, and the function forms of the original module
//! (`goroutine.channel_send(ch, v)`...). `send` and `receive` are the hot path: their resumes are
//! special-cased (`Resume::Send`/`Recv`, no boxed future) and the prelude gives them fixed-arity
//! shims. `ch:range(f)` calls user code, so its loop is in the prelude.

use mlua::Value;

use super::{Args, Cx, Func, Kind, Method, Res, borrow, shown, string};
use crate::lua::Resume;
use crate::lua::objects::{Dir, LuaChannel};
use crate::lua::value::LuaValue;
use crate::runtime::Subject;
use crate::sync::{Channel, RecvStart, SendStart, TryRecvError, TrySendError};

fn bad_dir(cx: &Cx<'_>, v: &Value) -> String {
    cx.misuse(format!(
        "direction must be \"bidirectional\", \"send\" or \"receive\" (got {})",
        shown(v)
    ))
}

/// Checks that a handle may be used in direction `need`.
fn check_dir(cx: &Cx<'_>, c: &LuaChannel, need: Dir) -> Result<(), String> {
    match (need, c.dir) {
        (Dir::Send, Dir::Receive) => Err(cx.misuse("cannot send on a receive-only channel")),
        (Dir::Receive, Dir::Send) => Err(cx.misuse("cannot receive on a send-only channel")),
        _ => Ok(()),
    }
}

fn send(cx: &Cx<'_>, c: &LuaChannel, v: Value) -> Res {
    check_dir(cx, c, Dir::Send)?;
    let h = cx.host;
    Ok(match c.ch.send_or_park(LuaValue(v)) {
        SendStart::Done(true) => h.finish3(Value::Boolean(true), Value::Nil, Value::Nil),
        SendStart::Done(false) => {
            h.finish3(Value::Boolean(false), h.closed_msg.clone(), Value::Nil)
        }
        SendStart::Parked(slot) => park(cx, Resume::Send(slot)),
    })
}

fn receive(cx: &Cx<'_>, c: &LuaChannel) -> Res {
    check_dir(cx, c, Dir::Receive)?;
    let h = cx.host;
    Ok(match c.ch.recv_or_park() {
        RecvStart::Ready(Some(v)) => h.finish3(v.0, Value::Boolean(true), Value::Nil),
        RecvStart::Ready(None) => h.finish3(Value::Nil, Value::Boolean(false), Value::Nil),
        RecvStart::Parked(slot) => park(cx, Resume::Recv(slot)),
    })
}

fn park(cx: &Cx<'_>, resume: Resume) -> (Value, Value, Value) {
    let (p, _) = cx.host.park_with(resume);
    (p, Value::Nil, Value::Nil)
}

fn close(cx: &Cx<'_>, c: &LuaChannel) -> Res {
    if !c.closable {
        return Err(
            cx.misuse("this channel belongs to a timer or a context and only gosim closes it")
        );
    }
    if c.ch.close() {
        cx.point(true)
    } else {
        cx.point((
            Value::Boolean(false),
            string(cx.lua, "channel already closed"),
        ))
    }
}

/// A non-blocking operation that did nothing still leaves a trace line (it was a scheduling point).
fn trace_refused(cx: &Cx<'_>, c: &LuaChannel, verb: &'static str, why: &str) {
    let rt = cx.rt();
    if rt.tracing() {
        let subject = Subject::Resource(c.ch.resource().clone());
        rt.emit(verb, subject, Some(why.to_string()));
    }
}

/// The function forms take the channel as their first argument.
fn with_channel(cx: &Cx<'_>, ch: &Value, f: impl FnOnce(&LuaChannel) -> Res) -> Res {
    match borrow::<LuaChannel>(ch) {
        Some(c) => f(&c),
        None => Err(cx.misuse(format!("expects a channel (got {})", shown(ch)))),
    }
}

pub(crate) static FUNCS: &[Func] = &[
    Func {
        module: "goroutine",
        name: "channel",
        results: 1,
        call: |cx, (cap, dir, _)| {
            let cap = match &cap {
                Value::Nil => 0,
                v => match super::integer(v) {
                    Some(c) if c >= 0 => c as usize,
                    _ => {
                        return Err(cx.misuse(format!(
                            "capacity must be a non-negative integer (got {})",
                            shown(v)
                        )));
                    }
                },
            };
            let dir = match &dir {
                Value::Nil => Dir::Both,
                Value::String(s) => match &*s.to_string_lossy() {
                    "bidirectional" => Dir::Both,
                    "send" => Dir::Send,
                    "receive" => Dir::Receive,
                    _ => return Err(bad_dir(cx, &dir)),
                },
                _ => return Err(bad_dir(cx, &dir)),
            };
            let ch = Channel::new(cx.rt(), cap, cx.here());
            cx.handle(LuaChannel {
                ch,
                dir,
                closable: true,
            })
        },
    },
    Func {
        module: "goroutine",
        name: "channel_send",
        results: 2,
        call: |cx, (ch, v, _): Args| with_channel(cx, &ch, |c| send(cx, c, v)),
    },
    Func {
        module: "goroutine",
        name: "channel_receive",
        results: 2,
        call: |cx, (ch, _, _)| with_channel(cx, &ch, |c| receive(cx, c)),
    },
    Func {
        module: "goroutine",
        name: "channel_close",
        results: 2,
        call: |cx, (ch, _, _)| with_channel(cx, &ch, |c| close(cx, c)),
    },
    Func {
        module: "goroutine",
        name: "channel_len",
        results: 1,
        call: |cx, (ch, _, _)| with_channel(cx, &ch, |c| cx.point(c.ch.len())),
    },
    Func {
        module: "goroutine",
        name: "channel_cap",
        results: 1,
        call: |cx, (ch, _, _)| with_channel(cx, &ch, |c| cx.ret(c.ch.cap())),
    },
];

pub(crate) static KIND: Kind<LuaChannel> = Kind {
    table: "channel",
    name: "channel",
    what: "a channel",
    methods: &[
        Method {
            name: "send",
            results: 2,
            call: |cx, c, (v, _, _)| send(cx, c, v),
        },
        Method {
            name: "receive",
            results: 2,
            call: |cx, c, _| receive(cx, c),
        },
        Method {
            name: "try_send",
            results: 2,
            call: |cx, c, (v, _, _)| {
                check_dir(cx, c, Dir::Send)?;
                match c.ch.try_send(LuaValue(v)) {
                    Ok(()) => cx.point(true),
                    Err(TrySendError::Full(_)) => {
                        trace_refused(cx, c, "try_send", "full");
                        cx.point(false)
                    }
                    Err(TrySendError::Closed(_)) => {
                        cx.point((Value::Boolean(false), cx.host.closed_msg.clone()))
                    }
                }
            },
        },
        Method {
            name: "try_receive",
            results: 2,
            call: |cx, c, _| {
                check_dir(cx, c, Dir::Receive)?;
                match c.ch.try_recv() {
                    Ok(v) => cx.point((v.0, Value::Boolean(true))),
                    Err(e) => {
                        let why = if e == TryRecvError::Empty {
                            "empty"
                        } else {
                            "closed"
                        };
                        trace_refused(cx, c, "try_receive", why);
                        cx.point((Value::Nil, Value::Boolean(false)))
                    }
                }
            },
        },
        Method {
            name: "close",
            results: 2,
            call: |cx, c, _| close(cx, c),
        },
        Method {
            name: "len",
            results: 1,
            call: |cx, c, _| cx.point(c.ch.len()),
        },
        Method {
            name: "cap",
            results: 1,
            call: |cx, c, _| cx.ret(c.ch.cap()),
        },
        Method {
            name: "is_closed",
            results: 1,
            call: |cx, c, _| cx.point(c.ch.is_closed()),
        },
    ],
};
