//! `tools/list` from the registry: compact by default (name, a few words, the smallest
//! valid schema, annotations that differ from MCP's defaults), full on request.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};
use warden_core::tool::{Effect, Registry, ToolInfo};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListingMode {
    /// Small enough to keep in every prompt; `tools_schema` gives the rest.
    Compact,
    Full,
}

pub fn tool_list(registry: &Registry, mode: ListingMode) -> Vec<Tool> {
    registry
        .tools()
        .iter()
        .map(|tool| {
            let info = tool.info();
            let (description, input_schema) = match mode {
                ListingMode::Compact => (info.summary, compact_schema()),
                ListingMode::Full => (info.description, tool.input_schema()),
            };
            let mut listed = Tool::new(info.name, description, Arc::new(object(input_schema)));
            listed.annotations = annotations(mode, &info);
            if mode == ListingMode::Full {
                listed =
                    listed.with_raw_output_schema(Arc::new(object(outline(tool.output_schema()))));
            }
            listed
        })
        .collect()
}

/// The smallest valid input schema: arguments are named in the summary, and
/// `tools_schema` or the full listing give the rest.
fn compact_schema() -> Value {
    json!({"type": "object"})
}

/// The result's top level (field names and types) without descriptions, `required`
/// and nested shapes, which would triple the listing's size; `tools_schema` returns the whole output schema.
/// Still a correct schema for every result: it only checks less.
fn outline(full: Value) -> Value {
    let Value::Object(mut full) = full else {
        return json!({"type": "object"});
    };
    full.remove("required");
    if let Some(Value::Object(properties)) = full.get_mut("properties") {
        for property in properties.values_mut() {
            if let Value::Object(fields) = property {
                fields.retain(|key, _| key == "type");
            }
        }
    }
    Value::Object(full)
}

/// Annotations, leaving out hints that equal MCP's defaults (readOnly false,
/// destructive true, idempotent false, openWorld true) to save tokens. The compact
/// listing keeps only the hints clients base approvals on (read-only, not destructive).
fn annotations(mode: ListingMode, info: &ToolInfo) -> Option<ToolAnnotations> {
    let mut annotations = ToolAnnotations::new();
    match info.effect {
        Effect::ReadOnly => annotations.read_only_hint = Some(true),
        Effect::Mutating => annotations.destructive_hint = Some(false),
        // The default, so the compact listing leaves it out; the full listing states it
        // so every tool there carries annotations.
        Effect::Destructive if mode == ListingMode::Full => {
            annotations.destructive_hint = Some(true)
        }
        Effect::Destructive => {}
    }
    if mode == ListingMode::Full {
        if info.idempotent && info.effect != Effect::ReadOnly {
            annotations.idempotent_hint = Some(true);
        }
        if !info.open_world {
            annotations.open_world_hint = Some(false);
        }
    }
    (annotations != ToolAnnotations::new()).then_some(annotations)
}

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}
