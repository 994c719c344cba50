//! The `gosim` command: run, explore and check Lua scenarios. See `gosim --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
