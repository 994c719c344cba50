//! The editor definitions (`types/gosim.lua`, LuaLS/EmmyLua `---@meta`) against the Lua API at
//! run time: every function of the modules and every method of every object kind is declared,
//! nothing is declared that does not exist, each declaration has its one-line description, every
//! type it names is defined, and `gosim types` prints the file.

use std::collections::BTreeSet;

mod common;
use common::gosim;

const DEFINITIONS: &str = include_str!("../types/gosim.lua");

/// `(owner, name)` of every `function owner.name(` / `function owner:name(` line. An object
/// kind's methods hang off a local named as its methods table (`local channel = {}` under
/// `---@class gosim.channel`), so the owner is the run-time owner.
fn declared_in_file() -> BTreeSet<(String, String)> {
    DEFINITIONS
        .lines()
        .filter_map(|l| l.strip_prefix("function "))
        .map(|rest| {
            let head = rest.split('(').next().expect("a parameter list");
            let (owner, name) = head
                .split_once([':', '.'])
                .unwrap_or_else(|| panic!("`function {rest}` names no owner"));
            (owner.to_string(), name.to_string())
        })
        .collect()
}

#[test]
fn every_function_and_method_at_run_time_is_declared_and_nothing_else() {
    let runtime: BTreeSet<(String, String)> = gosim::lua::declared_api().into_iter().collect();
    assert!(
        runtime.len() > 200,
        "the API listing looks truncated: {runtime:?}"
    );
    assert!(
        !runtime.iter().any(|(o, _)| o == "error"),
        "listing failed: {runtime:?}"
    );
    let file = declared_in_file();
    let missing: Vec<String> = runtime
        .difference(&file)
        .map(|(o, n)| format!("{o}.{n}"))
        .collect();
    let extra: Vec<String> = file
        .difference(&runtime)
        .map(|(o, n)| format!("{o}.{n}"))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "types/gosim.lua drifted from the Lua API.\n  not declared: {missing:?}\n  \
         declared but not in the API: {extra:?}"
    );
}

#[test]
fn every_declaration_has_a_one_line_description() {
    let lines: Vec<&str> = DEFINITIONS.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if !l.starts_with("function ") {
            continue;
        }
        // Up over the `---@param` / `---@return` lines to the description.
        let mut j = i;
        while j > 0 && lines[j - 1].starts_with("---@") {
            j -= 1;
        }
        let desc = if j > 0 { lines[j - 1] } else { "" };
        assert!(
            desc.starts_with("---") && desc.trim_start_matches('-').trim().len() > 3,
            "`{l}` (line {}) has no description line above its annotations",
            i + 1
        );
    }
}

#[test]
fn every_type_named_is_defined() {
    let mut defined: BTreeSet<String> = BTreeSet::new();
    for l in DEFINITIONS.lines() {
        for tag in ["---@class ", "---@alias "] {
            if let Some(rest) = l.strip_prefix(tag) {
                defined.insert(rest.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    }
    for (i, l) in DEFINITIONS.lines().enumerate() {
        if !l.starts_with("---@") || l.starts_with("---@class") || l.starts_with("---@alias") {
            continue;
        }
        let mut rest = l;
        while let Some(at) = rest.find("gosim.") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
                .collect();
            assert!(
                defined.contains(&name),
                "line {}: `{name}` is not a declared class or alias: {l}",
                i + 1
            );
            rest = &rest[at + name.len()..];
        }
    }
}

#[test]
fn the_file_is_a_luals_meta_file_with_the_three_modules() {
    assert!(DEFINITIONS.starts_with("---@meta"));
    for module in ["goroutine = {}", "log = {}", "sim = {}"] {
        assert!(
            DEFINITIONS.lines().any(|l| l == module),
            "{module} is missing"
        );
    }
}

#[test]
fn gosim_types_prints_the_definitions() {
    let out = gosim(&["types"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), DEFINITIONS);
}

#[test]
fn the_luarc_points_the_editor_at_the_definitions() {
    let text = include_str!("../.luarc.json");
    let v: serde_json::Value = serde_json::from_str(text).expect(".luarc.json is JSON");
    let library = v["workspace.library"]
        .as_array()
        .expect("workspace.library is an array");
    assert!(
        library.iter().any(|p| p == "types"),
        "workspace.library names types/: {text}"
    );
    assert_eq!(v["runtime.version"], "Lua 5.4");
}

#[test]
fn the_selene_library_in_the_repository_is_generated_from_the_definitions() {
    // CI lints scenarios/ with selene against types/selene/gosim.yml: it must say what
    // `gosim types --format selene` says today (regenerate it with that command).
    let out = gosim(&["types", "--format", "selene"]);
    assert_eq!(out.status.code(), Some(0));
    let generated = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        include_str!("../types/selene/gosim.yml"),
        generated,
        "types/selene/gosim.yml is stale: gosim types --format selene > types/selene/gosim.yml"
    );
    for module in ["goroutine", "log", "sim"] {
        assert!(generated.contains(&format!("\n  {module}.")), "{generated}");
    }
}
