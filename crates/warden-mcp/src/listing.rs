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
            listed.annotations = annotations(&info);
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
    // A tool that takes `dry_run` answers with its own output or the engine's
    // preview: the outline is its own output's (the preview shares `summary`).
    if let Some(Value::Array(branches)) = full.remove("anyOf")
        && let Some(Value::Object(own)) = branches.into_iter().next()
    {
        full.extend(own);
    }
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

/// All four hints on every tool, in both listings (PRODUCT.md §12): clients decide
/// from them whether to ask the user, and a missing hint means MCP's default
/// (destructive, open world). Read tools say read-only, not destructive and closed
/// world, so clients run them without asking; warden's policy and audit govern them
/// all the same.
fn annotations(info: &ToolInfo) -> Option<ToolAnnotations> {
    let read_only = info.effect == Effect::ReadOnly;
    let mut annotations = ToolAnnotations::new();
    annotations.read_only_hint = Some(read_only);
    annotations.destructive_hint = Some(info.effect == Effect::Destructive);
    annotations.idempotent_hint = Some(info.idempotent);
    annotations.open_world_hint = Some(info.open_world && !read_only);
    Some(annotations)
}

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}
