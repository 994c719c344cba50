//! The observability patterns' handles (seed 6.x): `goroutine.profiler()` and
//! `goroutine.channel_inspector(ch)`. Reading them is never a scheduling point, so adding them to
//! a scenario does not change its interleavings. (The deadlock detector's periodic loop calls the
//! user's handler, so its loop is in the prelude.)

use mlua::Value;

use super::{Func, Kind, Method, borrow, type_name};
use crate::lua::objects::{LuaChannel, LuaInspector, LuaProfiler};
use crate::patterns::{ChannelInspector, ChannelStats, Profiler};

pub(crate) static FUNCS: &[Func] = &[
    Func {
        module: "goroutine",
        name: "profiler",
        results: 1,
        call: |cx, _| cx.handle(LuaProfiler(Profiler::new(cx.rt()))),
    },
    Func {
        module: "goroutine",
        name: "channel_inspector",
        results: 1,
        call: |cx, (ch, _, _)| {
            let Some(c) = borrow::<LuaChannel>(&ch) else {
                return Err(cx.misuse(format!("expects a channel (got {})", type_name(&ch))));
            };
            let res = c.ch.resource().clone();
            cx.handle(LuaInspector(ChannelInspector::new(&c.ch), res))
        },
    },
];

pub(crate) static PROFILER: Kind<LuaProfiler> = Kind {
    table: "profiler",
    name: "profiler",
    what: "a profiler",
    methods: &[
        Method {
            name: "start",
            results: 0,
            call: |cx, p, _| {
                p.0.start();
                cx.ret(())
            },
        },
        Method {
            name: "stop",
            results: 0,
            call: |cx, p, _| {
                p.0.stop();
                cx.ret(())
            },
        },
        Method {
            name: "stats",
            results: 1,
            call: |cx, p, _| {
                let st = p.0.stats();
                let int = |n: u64| Value::Integer(n as i64);
                cx.table(&[
                    ("active", int(st.active)),
                    ("max_active", int(st.max_active)),
                    ("total_created", int(st.total_created)),
                    ("completed", int(st.completed)),
                    ("failed", int(st.failed)),
                    ("avg_lifetime", Value::Number(st.avg_lifetime_ms)),
                ])
            },
        },
    ],
};

/// One inspector method: a field of the channel's stats.
macro_rules! stat {
    ($name:literal, |$st:ident| $v:expr) => {
        Method {
            name: $name,
            results: 1,
            call: |cx, i, _| {
                let $st = i.0.stats();
                cx.ret($v)
            },
        }
    };
}

fn int(n: u64) -> Value {
    Value::Integer(n as i64)
}

fn all(st: &ChannelStats) -> [(&'static str, Value); 8] {
    [
        ("len", int(st.len as u64)),
        ("cap", int(st.cap as u64)),
        ("total_sent", int(st.total_sent)),
        ("total_received", int(st.total_received)),
        ("dropped", int(st.dropped)),
        ("is_closed", Value::Boolean(st.is_closed)),
        ("blocked_senders", int(st.blocked_senders as u64)),
        ("blocked_receivers", int(st.blocked_receivers as u64)),
    ]
}

pub(crate) static INSPECTOR: Kind<LuaInspector> = Kind {
    table: "inspector",
    name: "inspector",
    what: "a channel inspector",
    methods: &[
        stat!("len", |st| int(st.len as u64)),
        stat!("cap", |st| int(st.cap as u64)),
        stat!("total_sent", |st| int(st.total_sent)),
        stat!("total_received", |st| int(st.total_received)),
        stat!("dropped", |st| int(st.dropped)),
        stat!("is_closed", |st| st.is_closed),
        stat!("blocked_senders", |st| int(st.blocked_senders as u64)),
        stat!("blocked_receivers", |st| int(st.blocked_receivers as u64)),
        Method {
            name: "stats",
            results: 1,
            call: |cx, i, _| cx.table(&all(&i.0.stats())),
        },
    ],
};
