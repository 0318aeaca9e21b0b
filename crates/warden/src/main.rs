//! The `warden` binary: the composition root. It parses the command line, loads the
//! config, builds the engine with the SSH transport, and hands it to MCP or a CLI
//! command. stdout carries MCP (for `mcp serve`) or command output; logs go to stderr.

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("warden: cannot start the async runtime: {error}");
            return ExitCode::from(output::EXIT_INTERNAL);
        }
    };
    let code = runtime.block_on(commands::dispatch(cli));
    // Background reads of stdin (the MCP transport) must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    ExitCode::from(code)
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        // rmcp warns on every JSON-RPC error it answers (a bad call from the client):
        // that is an answer, not a fault, and some clients mark a server failed on any
        // stderr line.
        0 => "warn,rmcp::service=error",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // rmcp's debug and trace logs print whole messages (env values, stdin, file
    // contents) and russh's print channel data: capped at info whatever was asked.
    let verbose_beyond_info = filter
        .max_level_hint()
        .is_some_and(|level| level > tracing_subscriber::filter::LevelFilter::INFO);
    let filter = if verbose_beyond_info {
        ["rmcp=info", "russh=info", "russh_sftp=info"]
            .into_iter()
            .filter_map(|directive| directive.parse().ok())
            .fold(filter, tracing_subscriber::EnvFilter::add_directive)
    } else {
        filter
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}
