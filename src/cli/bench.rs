//! `gosim bench` (being written).
use std::process::ExitCode;
#[derive(clap::Args, Debug)]
pub(crate) struct BenchArgs {}
pub(crate) fn run(_a: BenchArgs) -> ExitCode { ExitCode::SUCCESS }
