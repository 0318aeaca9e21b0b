//! `warden mcp serve`: MCP over stdio for agents.

use warden_core::Engine;
use warden_mcp::{ListingMode, WardenServer};

use crate::cli::McpCommand;
use crate::output::{EXIT_INTERNAL, EXIT_OK};

pub async fn serve(engine: Engine, command: McpCommand) -> u8 {
    let McpCommand::Serve { full_schemas } = command;
    let listing = if full_schemas {
        ListingMode::Full
    } else {
        ListingMode::Compact
    };
    match WardenServer::new(engine, listing).serve_stdio().await {
        Ok(()) => EXIT_OK,
        Err(error) => {
            tracing::error!("MCP server stopped: {error}");
            EXIT_INTERNAL
        }
    }
}
