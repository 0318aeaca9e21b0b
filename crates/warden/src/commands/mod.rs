//! One file per subcommand; [`dispatch`] wires the engine for those that need one.

mod approvals;
mod audit;
mod call;
mod config;
mod exec;
mod hosts;
mod init;
mod jobs;
mod mcp;

use std::sync::Arc;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use warden_core::config::ConfigSources;
use warden_core::{Caller, Engine, Error, ProgressSink};

use crate::cli::{Cli, Command, Global};
use crate::output::{self, EXIT_USAGE};

pub async fn dispatch(cli: Cli) -> u8 {
    let global = cli.global;
    match cli.command {
        Command::Init { path, force } => init::run(&path, force),
        Command::Config(_) => config::check(&global),
        Command::Audit(command) => {
            with_engine(&global, |engine| audit::run(engine, *command, global.json)).await
        }
        Command::Approvals(command) => {
            with_engine(&global, |engine| {
                approvals::run(engine, command, global.json)
            })
            .await
        }
        Command::Jobs(command) => {
            with_engine(&global, |engine| jobs::run(engine, command, global.json)).await
        }
        Command::Mcp(command) => with_engine(&global, |engine| mcp::serve(engine, command)).await,
        Command::Call { tool, arguments } => {
            with_engine(&global, |engine| {
                call::run(engine, tool, arguments, global.json)
            })
            .await
        }
        Command::Hosts(command) => {
            with_engine(&global, |engine| hosts::run(engine, command, global.json)).await
        }
        Command::Exec {
            target,
            timeout_ms,
            dry_run,
            rollout,
            command,
        } => {
            let mut args = json!({
                "target": target,
                "command": command.join(" "),
                "timeout_ms": timeout_ms,
                "dry_run": dry_run,
            });
            exec::add_rollout(&mut args, &rollout);
            with_engine(&global, |engine| {
                exec::run(engine, "exec", args, global.json)
            })
            .await
        }
        Command::Facts { target } => {
            let args = json!({ "target": target });
            with_engine(&global, |engine| {
                exec::run(engine, "facts", args, global.json)
            })
            .await
        }
        Command::Doctor { target } => {
            let args = json!({ "target": target });
            with_engine(&global, |engine| {
                exec::run(engine, "doctor", args, global.json)
            })
            .await
        }
    }
}

pub fn sources(global: &Global) -> ConfigSources {
    ConfigSources {
        config: global.config.clone(),
        state_dir: global.state_dir.clone(),
    }
}

/// Loads the config, builds the engine over SSH, runs `work`, and shuts down cleanly.
async fn with_engine<F, Fut>(global: &Global, work: F) -> u8
where
    F: FnOnce(Engine) -> Fut,
    Fut: std::future::Future<Output = u8>,
{
    let engine = match build_engine(global) {
        Ok(engine) => engine,
        Err(error) => return output::report_error(&error, global.json),
    };
    let code = work(engine.clone()).await;
    engine.shutdown().await;
    code
}

pub fn build_engine(global: &Global) -> Result<Engine, Error> {
    let loaded = sources(global).load()?;
    let ssh = Arc::new(warden_ssh::SshTransport::new(loaded.config.ssh.clone()));
    let store = Arc::new(warden_store::SqliteStore::open(&loaded.store_path())?);
    Engine::new(loaded, ssh, Arc::clone(warden_tools::registry()), store)
}

/// Runs one tool as the CLI caller; Ctrl-C cancels it (and stops remote commands).
pub async fn invoke(
    engine: &Engine,
    tool: &str,
    args: Value,
    progress: Option<ProgressSink>,
) -> Result<Value, Error> {
    let cancel = CancellationToken::new();
    let on_interrupt = cancel.clone();
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.cancel();
        }
    });
    let result = engine
        .invoke(&Caller::new("cli"), tool, args, cancel, progress)
        .await;
    watcher.abort();
    result
}

pub fn parse_json_object(text: &str) -> Result<Value, u8> {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => {
            eprintln!("error: arguments must be a JSON object, like '{{\"target\":\"all\"}}'");
            Err(EXIT_USAGE)
        }
        Err(error) => {
            eprintln!("error: arguments are not valid JSON: {error}");
            Err(EXIT_USAGE)
        }
    }
}
