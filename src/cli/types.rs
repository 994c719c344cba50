//! `gosim types`: the editor definitions of the Lua modules (types/gosim.lua, embedded in the
//! binary), printed so that a project can keep a copy: `gosim types > gosim.d.lua`.

use std::process::ExitCode;

use super::emit;

/// The LuaLS/EmmyLua `---@meta` file, as shipped in the repository.
const DEFINITIONS: &str = include_str!("../../types/gosim.lua");

/// `gosim types`.
pub(super) fn run() -> ExitCode {
    emit(DEFINITIONS);
    ExitCode::SUCCESS
}
