//! Lua values as channel payloads.

use mlua::Value;

use crate::runtime::{Detail, ShortStr};
use std::any::Any;

/// A Lua value carried by a channel. Tables travel by reference (like pointers in Go).
///
/// # Examples
///
/// ```
/// use gosim::lua::LuaValue;
///
/// let v = LuaValue::from(42i64);
/// assert_eq!(v.as_i64(), Some(42));
/// assert_eq!(LuaValue::from(true).as_i64(), None);
/// let s = LuaValue::from(gosim::mlua::Value::Integer(7));
/// assert_eq!(s.as_i64(), Some(7));
/// assert_eq!(LuaValue::from(1.5f64).as_f64(), Some(1.5));
/// ```
#[derive(Clone)]
pub struct LuaValue(pub Value);

impl std::fmt::Debug for LuaValue {
    /// Short and stable, as traces show it: never an address (`tostring(table)` would print one).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe(&self.0))
    }
}

/// The channel layer's detail hook (`sync::set_detail_hook`): a Lua value's `describe` text,
/// recorded without formatting or allocating for numbers, booleans, nil, tables, functions and
/// strings of up to `SHORT_MAX` bytes of UTF-8 (copied inline).
pub(crate) fn trace_detail(any: &dyn Any) -> Option<Detail> {
    let v = &any.downcast_ref::<LuaValue>()?.0;
    Some(match v {
        Value::Nil => Detail::Static(&"nil"),
        Value::Boolean(b) => Detail::Bool(*b),
        Value::Integer(i) => Detail::Int(*i),
        Value::Number(n) => Detail::LuaNumber(*n),
        Value::String(s) => match ShortStr::from_utf8(&s.as_bytes()) {
            Some(short) => Detail::Quoted(short),
            None => Detail::text(describe(v)),
        },
        Value::Table(_) => Detail::Static(&"table"),
        Value::Function(_) => Detail::Static(&"function"),
        other => Detail::text(describe(other)),
    })
}

/// A stable rendering of a Lua value for traces.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Nil => "nil".to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => {
            if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e15 {
                format!("{n:.1}")
            } else {
                format!("{n}")
            }
        }
        Value::String(s) => {
            let text = s.to_string_lossy();
            let mut short: String = text.chars().take(40).collect();
            if short.len() < text.len() {
                short.push('…');
            }
            format!("{short:?}")
        }
        Value::Table(_) => "table".to_string(),
        Value::Function(_) => "function".to_string(),
        Value::Thread(_) => "thread".to_string(),
        // Every userdata a script can hold is a gosim handle, whose `__tostring` is its stable
        // identity (`channel#3`, never an address).
        ud @ Value::UserData(_) => ud.to_string().unwrap_or_else(|_| "userdata".to_string()),
        Value::LightUserData(_) => "lightuserdata".to_string(),
        Value::Error(_) => "error".to_string(),
        _ => "value".to_string(),
    }
}

/// Scalars a Rust task sends to a Lua goroutine: `LuaValue::from(42)`, `true.into()`. Strings
/// and tables need the Lua state (`lua.create_string`), so they come from `mlua::Value`.
macro_rules! from_scalar {
    ($($t:ty => $variant:ident as $as:ty),*) => {$(
        impl From<$t> for LuaValue {
            fn from(v: $t) -> LuaValue {
                LuaValue(Value::$variant(v as $as))
            }
        }
    )*};
}
from_scalar!(i64 => Integer as i64, i32 => Integer as i64, u32 => Integer as i64,
    f64 => Number as f64, f32 => Number as f64);

impl From<bool> for LuaValue {
    fn from(b: bool) -> LuaValue {
        LuaValue(Value::Boolean(b))
    }
}

impl From<()> for LuaValue {
    /// Lua's `nil`.
    fn from((): ()) -> LuaValue {
        LuaValue(Value::Nil)
    }
}

impl From<Value> for LuaValue {
    fn from(v: Value) -> LuaValue {
        LuaValue(v)
    }
}

impl From<LuaValue> for Value {
    fn from(v: LuaValue) -> Value {
        v.0
    }
}

impl LuaValue {
    /// The integer, if it is one (a float with an exact integer value counts, as in Lua).
    ///
    /// ```
    /// use gosim::lua::LuaValue;
    /// assert_eq!(LuaValue::from(7).as_i64(), Some(7));
    /// assert_eq!(LuaValue::from(2.0).as_i64(), Some(2));
    /// assert_eq!(LuaValue::from(true).as_i64(), None);
    /// ```
    pub fn as_i64(&self) -> Option<i64> {
        self.0.as_i64().or_else(|| {
            let f = self.0.as_f64()?;
            (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
        })
    }

    /// The number as a float, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        self.0.as_f64()
    }

    /// The string's text (lossy UTF-8), if it is a string.
    pub fn to_string_lossy(&self) -> Option<String> {
        self.0.as_string().map(|s| s.to_string_lossy())
    }
}
