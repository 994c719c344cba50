//! `goroutine.pubsub{capacity=16, overflow="block"}` (`patterns::PubSub`, seed 4.1):
//! `ps:subscribe(topic) -> sub` (a `subscriber`, as a broadcaster's), `ps:publish(topic, v,
//! timeout_ms?) -> n | 0, "timeout" | 0, "closed"`, `ps:unsubscribe(sub)`, `ps:close()`,
//! `ps:subscribers(topic)`.

use mlua::Value;

use super::broadcaster::{closed, options, sent_count};
use super::{Cx, Func, Kind, Method, Res, borrow, shown};
use crate::lua::objects::{LuaPubSub, LuaSubscriber};
use crate::lua::value::LuaValue;
use crate::patterns::PubSub;

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "pubsub",
    results: 1,
    call: |cx, (opts, _, _)| {
        let (cap, lagging) = options(cx, &opts)?;
        cx.handle(LuaPubSub(PubSub::new(cx.rt(), cap, lagging, cx.here())))
    },
}];

/// A topic: a string (numbers are accepted as Lua would concatenate them).
fn topic(cx: &Cx<'_>, v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.to_string_lossy().to_string()),
        Value::Integer(i) => Ok(i.to_string()),
        v => Err(cx.misuse(format!("topic must be a string (got {})", shown(v)))),
    }
}

fn unsubscribe(cx: &Cx<'_>, ps: &LuaPubSub, sub: &Value) -> Res {
    let Some(s) = borrow::<LuaSubscriber>(sub) else {
        return Err(cx.misuse(format!("expects a subscriber (got {})", shown(sub))));
    };
    if !ps.0.owns(&s.0) {
        return Err(cx.misuse("the subscriber belongs to another pubsub or broadcaster"));
    }
    cx.point(s.0.unsubscribe())
}

pub(crate) static KIND: Kind<LuaPubSub> = Kind {
    table: "pubsub",
    name: "pubsub",
    what: "a pubsub",
    methods: &[
        Method {
            name: "subscribe",
            results: 1,
            call: |cx, ps, (t, _, _)| {
                let t = topic(cx, &t)?;
                let ud = cx
                    .lua
                    .create_userdata(LuaSubscriber(ps.0.subscribe(&t)))
                    .map_err(|e| cx.misuse(e))?;
                cx.point(Value::UserData(ud))
            },
        },
        Method {
            name: "publish",
            results: 2,
            call: |cx, ps, (t, v, ms)| {
                let t = topic(cx, &t)?;
                let ms = cx.timeout(&ms)?;
                cx.wait(ps.0.publish(&t, LuaValue(v), ms), sent_count)
            },
        },
        Method {
            name: "unsubscribe",
            results: 1,
            call: |cx, ps, (sub, _, _)| unsubscribe(cx, ps, &sub),
        },
        Method {
            name: "subscribers",
            results: 1,
            call: |cx, ps, (t, _, _)| {
                let t = topic(cx, &t)?;
                cx.point(ps.0.subscriber_count(&t))
            },
        },
        Method {
            name: "close",
            results: 2,
            call: |cx, ps, _| closed(cx, ps.0.close(), "pubsub"),
        },
        Method {
            name: "is_closed",
            results: 1,
            call: |cx, ps, _| cx.point(ps.0.is_closed()),
        },
    ],
};
