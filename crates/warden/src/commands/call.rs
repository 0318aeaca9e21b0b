//! `warden call TOOL JSON`: any tool, the same JSON an agent gets.

use warden_core::Engine;

use crate::output::{self, EXIT_OK};

pub async fn run(engine: Engine, tool: String, arguments: String, _json: bool) -> u8 {
    let args = match super::parse_json_object(&arguments) {
        Ok(args) => args,
        Err(code) => return code,
    };
    match super::invoke(&engine, &tool, args, None).await {
        Ok(value) => {
            output::print_json(&value);
            if value.pointer("/summary/ok") == Some(&serde_json::Value::Bool(false)) {
                output::EXIT_FAILED
            } else {
                EXIT_OK
            }
        }
        // Same shape as an MCP isError result, always as JSON: scripts parse it.
        Err(error) => output::report_error(&error, true),
    }
}
