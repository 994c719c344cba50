//! One run, two languages: a Rust "server" task answers Lua "client" goroutines over a channel
//! created in Rust and exposed to the script, on the same scheduler and trace.
//!
//! Run: `cargo run --example mixed_lua`

use gosim::lua::{LuaLimits, LuaValue, LuaWorld};
use gosim::runtime::{Config, Runtime, TraceFormat, render};
use gosim::sim::Sim;
use gosim::sync::Channel;

const CLIENT: &str = r#"
local answers = {}
local wg = goroutine.wait_group()
for i = 1, 3 do
  wg:add(1)
  goroutine.spawn{name = "client-" .. i, fn = function()
    local reply = goroutine.channel(1)
    requests:send({n = i, reply = reply})
    answers[i] = reply:receive()
    wg:done()
  end}
end
wg:wait()
log.info("answers: " .. table.concat(answers, ", "))
assert(answers[3] == 9)
"#;

fn main() {
    let rt = Runtime::simulated(Config {
        seed: 42,
        ..Config::default()
    });
    let world = LuaWorld::new(&rt, LuaLimits::default()).expect("a Lua state");
    let requests: Channel<LuaValue> = Channel::new(&rt, 0, None);
    requests.resource().set_name("requests");
    world
        .expose_channel("requests", &requests)
        .expect("exposed");
    world
        .spawn_main("client.lua", CLIENT)
        .expect("the script compiles");
    Sim::on(&rt).spawn_daemon("rust-server", async move {
        while let Some(LuaValue(req)) = requests.recv().await {
            let mlua::Value::Table(t) = req else { continue };
            let n: i64 = t.get("n").unwrap_or(0);
            if let Some(reply) = LuaWorld::channel_of(&t.get("reply").unwrap_or(mlua::Value::Nil)) {
                let _ = reply.send(LuaValue(mlua::Value::Integer(n * n))).await;
            }
        }
    });
    let outcome = rt.run();
    print!("{}", render(&rt.take_events(), TraceFormat::Text));
    println!("{outcome}");
    rt.shutdown();
    assert!(outcome.is_pass());
}
