//! The standard library as a scenario sees it: deterministic `math.random`, `os.time`,
//! `os.clock` and `os.date` in a simulation, and the sandbox (what no scenario may reach: the
//! process, files, native code).

use std::rc::Rc;

use mlua::{Function, Lua, Table, Value, Variadic};

use super::Host;
use super::bind::{integer, shown};
use crate::runtime::{NANOS_PER_MS, Runtime};

type R2 = (Value, Value);

/// Installs the deterministic `math.random`, `math.randomseed`, `os.time`, `os.clock`,
/// `os.date`, and removes what a simulation must not reach (`os.execute`, `os.exit`, files,
/// environment, C modules).
pub(crate) fn install_stdlib_overrides(lua: &Lua, host: &Rc<Host>) -> mlua::Result<()> {
    if host.rt.is_simulated() {
        install_virtual_time_and_randomness(lua, host)?;
    } else {
        keep_real_time_and_randomness(lua)?;
    }
    sandbox(lua)
}

/// In a real run `math.random`, `os.time`, `os.clock` and `os.date` are Lua's own; only the
/// functions that act on the process are removed from `os`.
fn keep_real_time_and_randomness(lua: &Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    let os: Table = globals.get("os")?;
    let safe = lua.create_table()?;
    for name in ["time", "clock", "date", "difftime"] {
        safe.set(name, os.get::<Value>(name)?)?;
    }
    globals.set("os", safe)
}

/// In a simulation, randomness comes from the seed and time from the virtual clock.
fn install_virtual_time_and_randomness(lua: &Lua, host: &Rc<Host>) -> mlua::Result<()> {
    let globals = lua.globals();
    let math: Table = globals.get("math")?;
    let h = host.clone();
    math.set(
        "random",
        lua.create_function(move |lua, args: Variadic<Value>| -> mlua::Result<R2> {
            Ok(match random(&h.rt, &args) {
                Ok(v) => (v, Value::Nil),
                Err(msg) => h.misuse(lua, msg),
            })
        })?,
    )?;
    let h = host.clone();
    math.set(
        "randomseed",
        lua.create_function(move |_, seed: Option<Value>| {
            let s = seed.as_ref().and_then(integer).unwrap_or(0);
            h.rt.reseed_data(s as u64);
            Ok(())
        })?,
    )?;

    let os: Table = globals.get("os")?;
    let real_date: Function = os.get("date")?;
    let safe = lua.create_table()?;
    // A fixed epoch for virtual time: 2000-01-01T00:00:00Z.
    const EPOCH_S: i64 = 946_684_800;
    let h = host.clone();
    let time_fn = lua.create_function(move |_, t: Option<Table>| {
        if let Some(t) = t {
            // os.time{year=...}: fall back to arithmetic in UTC.
            let year: i64 = t.get("year")?;
            let month: i64 = t.get("month")?;
            let day: i64 = t.get("day")?;
            let hour: i64 = t.get::<Option<i64>>("hour")?.unwrap_or(12);
            let min: i64 = t.get::<Option<i64>>("min")?.unwrap_or(0);
            let sec: i64 = t.get::<Option<i64>>("sec")?.unwrap_or(0);
            return Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec);
        }
        Ok(EPOCH_S + (h.rt.now() / (1000 * NANOS_PER_MS)) as i64)
    })?;
    safe.set("time", time_fn.clone())?;
    let h = host.clone();
    safe.set(
        "clock",
        lua.create_function(move |_, ()| Ok(h.rt.now() as f64 / 1e9))?,
    )?;
    let tf = time_fn.clone();
    safe.set(
        "date",
        lua.create_function(move |_, (fmt, t): (Option<String>, Option<i64>)| {
            // Local time depends on the machine's time zone: in a simulation, all dates are UTC.
            let fmt = fmt.unwrap_or_else(|| "%c".to_string());
            let fmt = if fmt.starts_with('!') {
                fmt
            } else {
                format!("!{fmt}")
            };
            let t = match t {
                Some(t) => t,
                None => tf.call::<i64>(())?,
            };
            real_date.call::<Value>((fmt, t))
        })?,
    )?;
    safe.set(
        "difftime",
        lua.create_function(|_, (a, b): (f64, Option<f64>)| Ok(a - b.unwrap_or(0.0)))?,
    )?;
    globals.set("os", safe)
}

/// What neither a simulation nor a real run of a scenario may reach: native code and files
/// loaded behind the harness's back.
fn sandbox(lua: &Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    let package: Table = globals.get("package")?;
    package.set("loadlib", Value::Nil)?;
    package.set("cpath", "")?;
    if let Ok(searchers) = package.get::<Table>("searchers") {
        // Keep the preload and Lua-file searchers; drop the C-library ones.
        searchers.raw_set(3, Value::Nil)?;
        searchers.raw_set(4, Value::Nil)?;
    }
    globals.set("dofile", Value::Nil)?;
    globals.set("loadfile", Value::Nil)?;
    Ok(())
}

/// `math.random` (Lua 5.4 semantics) from the run's data stream. Errors are misuse messages.
fn random(rt: &Runtime, args: &[Value]) -> Result<Value, String> {
    let arg = |i: usize| -> Result<i64, String> {
        integer(&args[i]).ok_or_else(|| {
            format!(
                "math.random: argument {} must be an integer (got {})",
                i + 1,
                shown(&args[i])
            )
        })
    };
    let (lo, hi) = match args.len() {
        0 => return Ok(Value::Number(rt.random_unit())),
        1 => {
            let m = arg(0)?;
            if m == 0 {
                return Ok(Value::Integer(rt.random_u64() as i64));
            }
            (1, m)
        }
        2 => (arg(0)?, arg(1)?),
        n => {
            return Err(format!(
                "math.random: wrong number of arguments ({n}, at most 2)"
            ));
        }
    };
    if lo > hi {
        return Err(format!("math.random: interval is empty ({lo} > {hi})"));
    }
    let span = (hi as i128 - lo as i128 + 1) as u128;
    let off = if span > u64::MAX as u128 {
        rt.random_u64() as u128
    } else {
        rt.random_below(span as u64) as u128
    };
    Ok(Value::Integer((lo as i128 + off as i128) as i64))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::days_from_civil;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 1, 1), 10_957);
    }
}
