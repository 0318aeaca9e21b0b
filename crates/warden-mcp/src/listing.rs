//! `tools/list` from the registry: compact by default (name, a few words, the smallest
//! valid schema, annotations that differ from MCP's defaults), full on request.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};
use warden_core::tools::{Effect, TOOLS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListingMode {
    /// Small enough to keep in every prompt; `tools_schema` gives the rest.
    Compact,
    Full,
}

pub fn tool_list(mode: ListingMode) -> Vec<Tool> {
    TOOLS
        .iter()
        .map(|tool| {
            let info = tool.info();
            let (description, input_schema) = match mode {
                ListingMode::Compact => (info.summary, compact_schema(&tool.input_schema())),
                ListingMode::Full => (info.description, tool.input_schema()),
            };
            let mut listed = Tool::new(info.name, description, Arc::new(object(input_schema)))
                .with_annotations(annotations(info.effect, info.idempotent, info.open_world));
            if mode == ListingMode::Full {
                listed = listed.with_raw_output_schema(Arc::new(object(tool.output_schema())));
            }
            listed
        })
        .collect()
}

/// Only what is needed to call the tool right: required fields and their types.
fn compact_schema(full: &Value) -> Value {
    let Some(required) = full.get("required").and_then(Value::as_array) else {
        return json!({"type": "object"});
    };
    let properties: serde_json::Map<String, Value> = required
        .iter()
        .filter_map(Value::as_str)
        .map(|name| {
            let kind = full
                .pointer(&format!("/properties/{name}/type"))
                .cloned()
                .unwrap_or(json!("string"));
            (name.to_owned(), json!({"type": kind}))
        })
        .collect();
    json!({"type": "object", "properties": properties, "required": required})
}

/// Annotations, leaving out hints that equal MCP's defaults (readOnly false,
/// destructive true, idempotent false, openWorld true) to save tokens.
fn annotations(effect: Effect, idempotent: bool, open_world: bool) -> ToolAnnotations {
    let mut annotations = ToolAnnotations::new();
    match effect {
        Effect::ReadOnly => annotations = annotations.read_only(true),
        Effect::Mutating => annotations = annotations.destructive(false),
        Effect::Destructive => annotations = annotations.destructive(true),
    }
    if idempotent && effect != Effect::ReadOnly {
        annotations = annotations.idempotent(true);
    }
    if !open_world {
        annotations = annotations.open_world(false);
    }
    annotations
}

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}
