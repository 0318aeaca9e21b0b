//! Tool schemas, generated from the Rust types and then slimmed: every token of a
//! schema is paid for in each prompt that lists the tool, so generator noise goes.

use schemars::JsonSchema;
use serde_json::{Map, Value};

/// What a caller may send. Optional fields are simply left out of `required`; a
/// `null` alternative in their type would only add tokens (serde accepts both).
pub fn input_schema_of<T: JsonSchema>() -> Value {
    let mut schema = generate::<T>(false);
    slim(&mut schema, true);
    schema
}

/// What a result holds. Nullable types stay: a strict client validates
/// `structuredContent` against this schema.
pub fn output_schema_of<T: JsonSchema>() -> Value {
    let mut schema = generate::<T>(true);
    slim(&mut schema, false);
    schema
}

/// Subschemas inlined and no `$schema`/`title`/type docs, so every MCP client can read it.
/// An output schema describes what is serialized (a field skipped when empty is not
/// required), an input schema what is accepted.
fn generate<T: JsonSchema>(serialized: bool) -> Value {
    let settings = schemars::generate::SchemaSettings::draft2020_12()
        .with(|settings| settings.inline_subschemas = true);
    let settings = if serialized {
        settings.for_serialize()
    } else {
        settings
    };
    let generator = settings.into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    if let Value::Object(map) = &mut schema {
        map.remove("$schema");
        map.remove("title");
        // The type's doc comment speaks to warden's developers; the tool's
        // description speaks to the model.
        map.remove("description");
        // MCP requires object schemas; unit-like params come out as `{"type":"object"}`.
        map.entry("type")
            .or_insert_with(|| Value::String("object".into()));
    }
    schema
}

/// Drops what tells a model nothing: integer `format`s with their implied `minimum: 0`,
/// defaults that are the type's zero value (`null`, `false`, `{}`, `[]`), and (for inputs) the `null` branch of optional fields' types.
fn slim(schema: &mut Value, collapse_optional: bool) {
    match schema {
        Value::Object(map) => {
            // `format` the keyword (a string), not a property named `format`.
            let format = match map.get("format") {
                Some(Value::String(_)) => map.remove("format"),
                _ => None,
            };
            let unsigned = format
                .as_ref()
                .and_then(Value::as_str)
                .is_some_and(|format| format.starts_with("uint"));
            if unsigned && map.get("minimum") == Some(&Value::from(0)) {
                map.remove("minimum");
            }
            if map.get("default").is_some_and(is_zero_value) {
                map.remove("default");
            }
            if collapse_optional {
                merge_string_choices(map);
                collapse_optional_types(map);
            }
            map.values_mut()
                .for_each(|child| slim(child, collapse_optional));
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|child| slim(child, collapse_optional)),
        _ => {}
    }
}

fn collapse_optional_types(object: &mut Map<String, Value>) {
    let required: Vec<String> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let Some(Value::Object(properties)) = object.get_mut("properties") else {
        return;
    };
    for (name, property) in properties.iter_mut() {
        if required.contains(name) {
            continue;
        }
        if let Some(Value::Object(object)) = optional_branch(property) {
            // `anyOf: [X, null]` for an optional X: the property is X.
            let Value::Object(target) = property else {
                continue;
            };
            target.remove("anyOf");
            for (key, value) in object {
                target.entry(key).or_insert(value);
            }
        }
        if let Some(Value::Array(types)) = property.get_mut("type") {
            types.retain(|kind| kind != "null");
            if let [only] = types.as_slice() {
                let only = only.clone();
                property["type"] = only;
            }
        }
    }
}

/// The non-null branch of `anyOf: [X, {"type": "null"}]`.
fn optional_branch(property: &Value) -> Option<Value> {
    let Some(Value::Array(branches)) = property.get("anyOf") else {
        return None;
    };
    let null = Value::Object(Map::from_iter([(
        String::from("type"),
        Value::String("null".into()),
    )]));
    match branches.as_slice() {
        [only, other] | [other, only] if *other == null && *only != null => Some(only.clone()),
        _ => None,
    }
}

/// `oneOf` branches that are each a string enum or a const become one `enum`: the
/// per-variant descriptions are for Rust readers, the model needs the names.
fn merge_string_choices(object: &mut Map<String, Value>) {
    let Some(Value::Array(branches)) = object.get("oneOf") else {
        return;
    };
    let mut names = Vec::new();
    for branch in branches {
        match (branch.get("enum"), branch.get("const")) {
            (Some(Value::Array(values)), None) => names.extend(values.iter().cloned()),
            (None, Some(value)) => names.push(value.clone()),
            _ => return,
        }
        if !names.iter().all(Value::is_string) {
            return;
        }
    }
    object.remove("oneOf");
    object.insert("type".into(), Value::String("string".into()));
    object.insert("enum".into(), Value::Array(names));
}

fn is_zero_value(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(flag) => !flag,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Sample {
        /// Kept: it speaks to the model.
        name: String,
        limit: Option<u64>,
        #[serde(default)]
        quiet: bool,
    }

    #[test]
    fn inputs_lose_generator_noise_but_keep_meaning() {
        let schema = input_schema_of::<Sample>();
        assert_eq!(schema["properties"]["limit"], json!({"type": "integer"}));
        assert_eq!(schema["properties"]["quiet"], json!({"type": "boolean"}));
        assert_eq!(
            schema["properties"]["name"]["description"],
            "Kept: it speaks to the model."
        );
        assert_eq!(schema["required"], json!(["name"]));
    }

    /// A kind.
    #[derive(JsonSchema)]
    #[allow(dead_code)]
    enum Kind {
        File,
        /// Documented variant.
        Special,
    }

    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct WithChoice {
        /// Entry kind.
        kind: Option<Kind>,
    }

    #[test]
    fn optional_choices_become_one_plain_enum() {
        let schema = input_schema_of::<WithChoice>();
        assert_eq!(
            schema["properties"]["kind"],
            json!({"description": "Entry kind.", "type": "string", "enum": ["File", "Special"]})
        );
    }

    #[test]
    fn outputs_keep_nullable_types() {
        let schema = output_schema_of::<Sample>();
        assert_eq!(
            schema["properties"]["limit"]["type"],
            json!(["integer", "null"])
        );
    }
}
