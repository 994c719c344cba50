//! Reading what a user hands to gosim: scenario and schedule files, with a size cap (a path
//! like `/dev/zero` would otherwise be read until memory runs out), the first-line conventions
//! stock Lua accepts (a UTF-8 byte-order mark, a `#!` line), and the scenario hash a schedule
//! carries so that it is never replayed against another scenario.

use std::io::Read;
use std::path::Path;

use crate::lua::LoadError;
use crate::runtime::{Decision, RunStats, Schedule};

/// The default of `--max-input`, in megabytes: far above any hand-written scenario or shrunk
/// schedule, far below what hurts a machine.
pub const DEFAULT_MAX_INPUT_MB: usize = 64;

/// The default cap in bytes.
pub const DEFAULT_MAX_INPUT: u64 = DEFAULT_MAX_INPUT_MB as u64 * 1024 * 1024;

/// Reads at most `cap` bytes of `path` as UTF-8 text; `what` names the file in errors.
fn read_capped(path: &Path, what: &str, cap: u64) -> Result<String, LoadError> {
    let fail = |e: std::io::Error| LoadError(format!("cannot read {what} {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(fail)?;
    let mut bytes = Vec::new();
    // One byte more than the cap tells "exactly the cap" from "larger" without reading on: a
    // device such as /dev/zero never ends.
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(fail)?;
    if bytes.len() as u64 > cap {
        return Err(LoadError(format!(
            "{what} {} is larger than {} (raise the cap with --max-input MB)",
            path.display(),
            size_text(cap)
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        LoadError(format!(
            "{what} {} is not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

fn size_text(bytes: u64) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{} MB", bytes / (1024 * 1024))
    } else {
        format!("{bytes} bytes")
    }
}

/// Reads a scenario file of at most `cap` bytes.
pub fn read_scenario_capped(path: &Path, cap: u64) -> Result<String, LoadError> {
    read_capped(path, "scenario", cap)
}

/// Reads a schedule file of at most `cap` bytes.
pub fn read_schedule(path: &Path, cap: u64) -> Result<String, LoadError> {
    read_capped(path, "schedule", cap)
}

/// The source as Lua should compile it: without a UTF-8 byte-order mark, and with a first line
/// starting with `#` (a `#!` interpreter line) blanked, as `lua` does for files. The line is kept
/// empty, not removed, so line numbers stay those of the file.
pub fn lua_text(source: &str) -> std::borrow::Cow<'_, str> {
    let s = source.strip_prefix('\u{feff}').unwrap_or(source);
    if s.starts_with('#') {
        let rest = s.find('\n').map(|i| &s[i..]).unwrap_or("");
        std::borrow::Cow::Owned(rest.to_string())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// The fingerprint of a scenario's source (FNV-1a, 64 bits, hex): stable across processes and
/// builds, so a schedule file can say which scenario it was recorded for.
pub fn source_hash(source: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in source.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The comment line that carries the scenario hash in a schedule file (the schedule parser
/// skips comments, so older gosim versions still read the file).
const HASH_PREFIX: &str = "# scenario-hash ";

/// A schedule's text with the hash of the scenario it was recorded for.
pub fn schedule_text(schedule: &Schedule, name: &str, source: &str) -> String {
    let text = schedule.to_text(name);
    let hash_line = format!("{HASH_PREFIX}{}\n", source_hash(source));
    // After the first (version) line.
    match text.find('\n') {
        Some(i) => format!("{}{hash_line}{}", &text[..=i], &text[i + 1..]),
        None => format!("{hash_line}{text}"),
    }
}

/// Parses a schedule file's text for the scenario `source`: refused if it was recorded for
/// another scenario (or another version of this one).
pub fn parse_schedule_for(text: &str, source: &str) -> Result<Schedule, String> {
    let schedule = Schedule::parse(text)?;
    let recorded = text
        .lines()
        .find_map(|l| l.trim().strip_prefix(HASH_PREFIX.trim_start()))
        .map(str::trim);
    let hash = source_hash(source);
    match recorded {
        Some(h) if h != hash => Err(format!(
            "this schedule was recorded for another scenario, or another version of this one \
             (scenario hash {h}, this file has {hash}); record it again with gosim shrink"
        )),
        _ => Ok(schedule),
    }
}

/// Checks that a replay could follow its schedule: every goroutine the schedule names existed
/// in the run. A schedule naming `g999` in a run of three goroutines was made for another
/// scenario or edited by hand, and the replay silently took other choices.
pub fn check_replay_followed(schedule: &Schedule, stats: &RunStats) -> Result<(), String> {
    let named = schedule
        .decisions
        .iter()
        .flat_map(|d: &Decision| {
            let picked = matches!(
                d.kind,
                crate::runtime::DecisionKind::Pick | crate::runtime::DecisionKind::Point
            ) && d.value != Decision::CONTINUE;
            let value = picked.then_some(d.value);
            value.into_iter().chain(d.at.map(|(task, _)| task))
        })
        .max();
    match named {
        Some(g) if g > stats.spawned => Err(format!(
            "the schedule names g{g}, but the replay ran only {} goroutines: it was recorded for \
             another scenario or edited, and the replay could not follow it",
            stats.spawned
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bom_and_shebang_lines_are_skipped_keeping_line_numbers() {
        assert_eq!(lua_text("\u{feff}x = 1\n"), "x = 1\n");
        assert_eq!(lua_text("#!/usr/bin/env gosim\nx = 1\n"), "\nx = 1\n");
        assert_eq!(lua_text("\u{feff}#!/x\nx = 1"), "\nx = 1");
        assert_eq!(lua_text("#!only"), "");
        assert_eq!(lua_text("x = '#'\n"), "x = '#'\n");
    }

    #[test]
    fn the_hash_is_stable() {
        assert_eq!(source_hash(""), "cbf29ce484222325");
        assert_ne!(source_hash("a"), source_hash("b"));
    }
}
