//! A small JSON Schema checker for tests: does a tool's JSON answer fit the tool's own
//! (schemars 1.x, draft 2020-12) output schema? Test-only, so it covers what schemars
//! emits rather than the whole spec, and stays dependency-free: no regex engine, so
//! `pattern` is ignored and `patternProperties` knows schemars' integer-key patterns only;
//! `if`/`then`/`else`, `contains`, `multipleOf` and `dependent*` are ignored too.
#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Ordering;
use std::collections::BTreeSet;

use serde_json::{Map, Number, Value};

/// `$ref`s followed in a row without stepping into the value. Only a cyclic schema gets
/// near this; recursive types step into the value between `$ref`s, so deep values are fine.
const MAX_REFS: usize = 64;

/// (keyword, how the value must compare to it): numbers' bounds, then the sizes of
/// strings (chars), arrays and objects.
const NUMBER_LIMITS: &[(&str, &str)] = &[
    ("minimum", ">="),
    ("maximum", "<="),
    ("exclusiveMinimum", ">"),
    ("exclusiveMaximum", "<"),
];
const STRING_LIMITS: &[(&str, &str)] = &[("minLength", ">="), ("maxLength", "<=")];
const ARRAY_LIMITS: &[(&str, &str)] = &[("minItems", ">="), ("maxItems", "<=")];
const OBJECT_LIMITS: &[(&str, &str)] = &[("minProperties", ">="), ("maxProperties", "<=")];

/// Every place where `value` breaks `schema`, as "json/pointer: what is wrong" lines;
/// empty = valid. The root is shown as `(root)`.
pub fn violations(schema: &Value, value: &Value) -> Vec<String> {
    let found = Walk { root: schema }.eval(schema, value, "", 0).found;
    let line = |(ptr, msg): (String, String)| match ptr.as_str() {
        "" => format!("(root): {msg}"),
        _ => format!("{ptr}: {msg}"),
    };
    found.into_iter().map(line).collect()
}

/// One schema applied to one value at one pointer.
struct Outcome {
    ptr: String,
    /// (pointer, message) pairs, formatted only at the end.
    found: Vec<(String, String)>,
    /// Property names some keyword evaluated, which `unevaluatedProperties` must skip.
    seen: BTreeSet<String>,
}

impl Outcome {
    fn at(ptr: &str) -> Self {
        Outcome {
            ptr: ptr.to_owned(),
            found: Vec::new(),
            seen: BTreeSet::new(),
        }
    }

    /// Something wrong with the value itself (not one of its children).
    fn bad(&mut self, msg: impl Into<String>) {
        self.found.push((self.ptr.clone(), msg.into()));
    }

    /// An in-place subschema ($ref, allOf, ...): its failures and evaluations are ours.
    fn absorb(&mut self, other: Outcome) {
        self.found.extend(other.found);
        self.seen.extend(other.seen);
    }
}

/// `$ref`s resolve against the root, so it travels along.
struct Walk<'a> {
    root: &'a Value,
}

impl Walk<'_> {
    fn eval(&self, schema: &Value, value: &Value, ptr: &str, refs: usize) -> Outcome {
        let mut out = Outcome::at(ptr);
        let obj = match schema {
            Value::Object(obj) => obj,
            Value::Bool(true) => return out,
            _ => {
                out.bad(format!("no value is allowed here (schema is {schema})"));
                return out;
            }
        };
        if let Some(target) = obj.get("$ref").and_then(Value::as_str) {
            // Local refs only: schemars puts every definition in the root's $defs/definitions.
            match target.strip_prefix('#').and_then(|p| self.root.pointer(p)) {
                _ if refs >= MAX_REFS => out.bad(format!("$ref {target}: too deep, cyclic?")),
                Some(sub) => out.absorb(self.eval(sub, value, ptr, refs + 1)),
                None => out.bad(format!("$ref {target} does not resolve in the root schema")),
            }
        }
        let types: Vec<&str> = match obj.get("type") {
            Some(Value::String(name)) => vec![name],
            Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !types.is_empty() && !types.iter().any(|name| has_type(value, name)) {
            let (want, got) = (types.join(" or "), describe(value));
            out.bad(format!("expected {want}, got {got}"));
        }
        if let Some(options) = obj.get("enum")
            && !list(obj, "enum").iter().any(|option| same(option, value))
        {
            out.bad(format!("{} is not one of {}", brief(value), brief(options)));
        }
        if let Some(expected) = obj.get("const")
            && !same(expected, value)
        {
            let (want, got) = (brief(expected), brief(value));
            out.bad(format!("expected {want}, got {got}"));
        }
        for sub in list(obj, "allOf") {
            out.absorb(self.eval(sub, value, ptr, refs));
        }
        for (key, exactly_one) in [("anyOf", false), ("oneOf", true)] {
            let Some(Value::Array(branches)) = obj.get(key) else {
                continue;
            };
            let tried: Vec<_> = branches
                .iter()
                .map(|b| self.eval(b, value, ptr, refs))
                .collect();
            let passed = tried.iter().filter(|t| t.found.is_empty()).count();
            if passed == 0 {
                out.bad(format!("no {key} branch matches; the closest one says:"));
                // Closest = fewest complaints about this very value (a branch of the wrong
                // type complains here), then fewest overall: usually the branch that was meant.
                let here = |t: &Outcome| t.found.iter().filter(|(p, _)| p == ptr).count();
                if let Some(best) = tried.into_iter().min_by_key(|t| (here(t), t.found.len())) {
                    out.found.extend(best.found);
                }
                continue;
            }
            if exactly_one && passed > 1 {
                out.bad(format!("matches {passed} oneOf branches, not exactly one"));
            }
            let passing = tried.into_iter().filter(|t| t.found.is_empty());
            out.seen.extend(passing.flat_map(|t| t.seen));
        }
        if let Some(sub) = obj.get("not")
            && self.eval(sub, value, ptr, refs).found.is_empty()
        {
            out.bad("matches the schema under `not`");
        }
        let (n, what, limits): (Number, &str, &[_]) = match value {
            Value::Number(n) => (n.clone(), "", NUMBER_LIMITS),
            Value::String(s) => (s.chars().count().into(), "length ", STRING_LIMITS),
            Value::Array(items) => (items.len().into(), "length ", ARRAY_LIMITS),
            Value::Object(map) => (map.len().into(), "size ", OBJECT_LIMITS),
            _ => (0.into(), "", &[]),
        };
        for (key, op) in limits {
            if let Some(Value::Number(bound)) = obj.get(*key)
                && !num_cmp(&n, bound).is_some_and(|o| match *op {
                    ">=" => o.is_ge(),
                    "<=" => o.is_le(),
                    ">" => o.is_gt(),
                    _ => o.is_lt(),
                })
            {
                out.bad(format!("{what}{n} is not {op} {bound} ({key})"));
            }
        }
        match value {
            Value::Array(items) => self.check_array(obj, items, &mut out),
            Value::Object(map) => self.check_object(obj, map, &mut out),
            _ => {}
        }
        out
    }

    fn check_array(&self, obj: &Map<String, Value>, items: &[Value], out: &mut Outcome) {
        // 2020-12: `prefixItems` for the first items, `items` for the rest.
        let prefix = list(obj, "prefixItems");
        for (i, item) in items.iter().enumerate() {
            let at = child(&out.ptr, &i.to_string());
            if let Some(sub) = prefix.get(i).or(obj.get("items")) {
                out.found.extend(self.eval(sub, item, &at, 0).found);
            }
            if obj.get("uniqueItems") == Some(&Value::Bool(true))
                && items.iter().take(i).any(|earlier| same(earlier, item))
            {
                let msg = "repeats an earlier item (uniqueItems)";
                out.found.push((at, msg.into()));
            }
        }
    }

    fn check_object(&self, obj: &Map<String, Value>, map: &Map<String, Value>, out: &mut Outcome) {
        for name in list(obj, "required").iter().filter_map(Value::as_str) {
            if !map.contains_key(name) {
                let at = child(&out.ptr, name);
                out.found.push((at, "required property is missing".into()));
            }
        }
        let properties = obj.get("properties").and_then(Value::as_object);
        let patterns = obj.get("patternProperties").and_then(Value::as_object);
        for (key, item) in map {
            let at = child(&out.ptr, key);
            let mut matched = false;
            if let Some(sub) = properties.and_then(|p| p.get(key)) {
                matched = true;
                out.found.extend(self.eval(sub, item, &at, 0).found);
            }
            for (pattern, sub) in patterns.into_iter().flatten() {
                match pattern_matches(pattern, key) {
                    Some(true) => out.found.extend(self.eval(sub, item, &at, 0).found),
                    Some(false) => continue,
                    // A regex we cannot run: never call the key "additional" on a guess.
                    None => {}
                }
                matched = true;
            }
            if !matched {
                match obj.get("additionalProperties") {
                    Some(extra) => self.check_extra(extra, "additionalProperties", item, &at, out),
                    // Not evaluated here: left to `unevaluatedProperties`, if any.
                    None => continue,
                }
            }
            out.seen.insert(key.clone());
        }
        // Only now have all in-place keywords (this schema's and its $ref/allOf/...) had their say.
        if let Some(rest) = obj.get("unevaluatedProperties") {
            for (key, item) in map {
                if !out.seen.contains(key) {
                    let at = child(&out.ptr, key);
                    self.check_extra(rest, "unevaluatedProperties", item, &at, out);
                }
            }
            out.seen.extend(map.keys().cloned());
        }
    }

    /// A property no `properties` entry covers: for `false`, say which keyword forbids it.
    fn check_extra(&self, schema: &Value, kw: &str, item: &Value, at: &str, out: &mut Outcome) {
        let found = match schema {
            Value::Bool(false) => vec![(
                at.to_owned(),
                format!("unexpected property ({kw} is false)"),
            )],
            _ => self.eval(schema, item, at, 0).found,
        };
        out.found.extend(found);
    }
}

/// An array-valued keyword, empty when absent.
fn list<'a>(obj: &'a Map<String, Value>, key: &str) -> &'a [Value] {
    obj.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn has_type(value: &Value, name: &str) -> bool {
    match (name, value) {
        ("null", Value::Null)
        | ("boolean", Value::Bool(_))
        | ("number", Value::Number(_))
        | ("string", Value::String(_))
        | ("array", Value::Array(_))
        | ("object", Value::Object(_)) => true,
        // JSON has one number type: 2.0 is an integer, 1.5 is not.
        ("integer", Value::Number(n)) => n.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

/// Exact for integers (u64/i64 beyond f64's 53 bits), by f64 once a float is involved.
fn num_cmp(a: &Number, b: &Number) -> Option<Ordering> {
    match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
        (Some(x), Some(y), ..) => Some(x.cmp(&y)),
        (.., Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// JSON equality for `enum`/`const`/`uniqueItems`: serde_json's `==` calls 1 and 1.0 different.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// schemars writes `^\d+$` / `^-?\d+$` for integer-keyed maps; any other pattern is unknown.
fn pattern_matches(pattern: &str, key: &str) -> Option<bool> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match pattern {
        r"^\d+$" => Some(digits(key)),
        r"^-?\d+$" => Some(digits(key.strip_prefix('-').unwrap_or(key))),
        _ => None,
    }
}

/// RFC 6901: `~` and `/` inside a token are escaped.
fn child(ptr: &str, token: &str) -> String {
    format!("{ptr}/{}", token.replace('~', "~0").replace('/', "~1"))
}

/// Compact JSON for messages; long values are cut so one line stays one line.
fn brief(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 60 {
        return text;
    }
    format!("{}…", text.chars().take(57).collect::<String>())
}

fn describe(value: &Value) -> String {
    match value {
        Value::Object(_) => "an object".into(),
        Value::Array(_) => "an array".into(),
        _ => brief(value),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::violations;
    use schemars::JsonSchema;
    use schemars::generate::SchemaSettings;
    use serde::Serialize;
    use serde_json::{Value, json};
    use std::collections::{BTreeMap, BTreeSet};

    #[derive(Serialize, JsonSchema)]
    struct Answer {
        name: String,
        count: u32,
        ratio: f64,
        inner: Inner,
        maybe_inner: Option<Inner>,
        note: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tags: Vec<String>,
        level: Level,
        events: Vec<Event>,
    }

    /// `deny_unknown_fields` is what makes schemars write `additionalProperties: false`.
    #[derive(Serialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        id: i64,
    }

    #[derive(Serialize, JsonSchema)]
    #[serde(rename_all = "snake_case")]
    enum Level {
        #[allow(dead_code)]
        Low,
        High,
    }

    #[derive(Serialize, JsonSchema)]
    enum Event {
        Started,
        Stopped,
        Failed { code: i32, reason: String },
    }

    /// Recursive: schemars refers back to the root with `"$ref": "#"`.
    #[derive(Serialize, JsonSchema)]
    struct Tree {
        label: String,
        children: Vec<Tree>,
    }

    /// patternProperties (integer map keys), uniqueItems (set), prefixItems (tuple).
    #[derive(Serialize, JsonSchema)]
    struct Odd {
        by_port: BTreeMap<u16, String>,
        set: BTreeSet<String>,
        pair: (u8, String),
    }

    /// A flattened enum in a strict struct: `oneOf` plus `unevaluatedProperties: false`.
    #[derive(Serialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        a: u8,
        #[serde(flatten)]
        event: Event,
    }

    fn schema_of<T: JsonSchema>() -> Value {
        serde_json::to_value(schemars::schema_for!(T)).unwrap()
    }

    /// Like warden's tool output schemas: inlined, but describing what is serialized.
    fn output_schema_of<T: JsonSchema>() -> Value {
        let generator = SchemaSettings::draft2020_12()
            .for_serialize()
            .with(|settings| settings.inline_subschemas = true)
            .into_generator();
        generator.into_root_schema_for::<T>().to_value()
    }

    fn answer() -> Value {
        serde_json::to_value(Answer {
            name: "web1".into(),
            count: 3,
            ratio: 0.5,
            inner: Inner { id: -7 },
            maybe_inner: Some(Inner { id: 1 }),
            note: None,
            tags: vec!["a".into()],
            level: Level::High,
            events: vec![
                Event::Started,
                Event::Failed {
                    code: 2,
                    reason: "boom".into(),
                },
                Event::Stopped,
            ],
        })
        .unwrap()
    }

    /// `value` with the JSON at `pointer` replaced (`None` = removed).
    fn with(mut value: Value, pointer: &str, new: Option<Value>) -> Value {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        match (value.pointer_mut(parent).unwrap(), new) {
            (Value::Object(map), Some(new)) => drop(map.insert(key.into(), new)),
            (Value::Object(map), None) => drop(map.remove(key)),
            (Value::Array(items), Some(new)) => items[key.parse::<usize>().unwrap()] = new,
            _ => panic!("bad pointer {pointer}"),
        }
        value
    }

    fn flagged(schema: &Value, value: &Value, line: &str) {
        let found = violations(schema, value);
        assert!(
            found.iter().any(|l| l == line),
            "wanted {line:?} in {found:#?}"
        );
    }

    #[test]
    fn serialized_answers_pass() {
        for schema in [schema_of::<Answer>(), output_schema_of::<Answer>()] {
            assert_eq!(violations(&schema, &answer()), Vec::<String>::new());
        }
        let schema = output_schema_of::<Odd>();
        let odd = Odd {
            by_port: BTreeMap::from([(22, "ssh".into())]),
            set: BTreeSet::from(["a".into(), "b".into()]),
            pair: (255, "x".into()),
        };
        assert_eq!(
            violations(&schema, &serde_json::to_value(odd).unwrap()),
            Vec::<String>::new()
        );
        let strict = Strict {
            a: 1,
            event: Event::Failed {
                code: 1,
                reason: "r".into(),
            },
        };
        let strict = serde_json::to_value(strict).unwrap();
        assert_eq!(
            violations(&schema_of::<Strict>(), &strict),
            Vec::<String>::new()
        );
    }

    #[test]
    fn default_contract_requires_skipped_fields() {
        // schema_for! describes what Deserialize accepts: a `skip_serializing_if` field
        // stays required, so an answer that skips it fails. Output schemas want for_serialize().
        let answer = with(answer(), "/tags", None);
        assert_eq!(
            violations(&schema_of::<Answer>(), &answer),
            ["/tags: required property is missing"]
        );
        assert!(violations(&output_schema_of::<Answer>(), &answer).is_empty());
    }

    #[test]
    fn wrong_answers_name_the_pointer() {
        for schema in [schema_of::<Answer>(), output_schema_of::<Answer>()] {
            let cases = [
                ("/name", None, "/name: required property is missing"),
                ("/name", Some(json!(5)), "/name: expected string, got 5"),
                (
                    "/count",
                    Some(json!(1.5)),
                    "/count: expected integer, got 1.5",
                ),
                (
                    "/count",
                    Some(json!(-1)),
                    "/count: -1 is not >= 0 (minimum)",
                ),
                (
                    "/level",
                    Some(json!("medium")),
                    r#"/level: "medium" is not one of ["low","high"]"#,
                ),
                (
                    "/inner/extra",
                    Some(json!(true)),
                    "/inner/extra: unexpected property (additionalProperties is false)",
                ),
                (
                    "/maybe_inner/id",
                    Some(json!("x")),
                    r#"/maybe_inner/id: expected integer, got "x""#,
                ),
                (
                    "/events/0",
                    Some(json!("Paused")),
                    r#"/events/0: "Paused" is not one of ["Started","Stopped"]"#,
                ),
                (
                    "/events/1/Failed/reason",
                    None,
                    "/events/1/Failed/reason: required property is missing",
                ),
                (
                    "/events/1/Failed/code",
                    Some(json!(2.5)),
                    "/events/1/Failed/code: expected integer, got 2.5",
                ),
            ];
            for (pointer, new, line) in cases {
                flagged(&schema, &with(answer(), pointer, new), line);
            }
            flagged(&schema, &json!([]), "(root): expected object, got an array");
        }
        // Exactly what a failed oneOf reports: the summary, then the branch that was meant.
        let wrong = with(answer(), "/events/1/Failed/code", Some(json!("2")));
        assert_eq!(
            violations(&schema_of::<Answer>(), &wrong),
            [
                "/events/1: no oneOf branch matches; the closest one says:",
                r#"/events/1/Failed/code: expected integer, got "2""#,
            ]
        );
    }

    #[test]
    fn integral_float_is_an_integer() {
        assert!(
            violations(
                &schema_of::<Answer>(),
                &with(answer(), "/count", Some(json!(2.0)))
            )
            .is_empty()
        );
    }

    #[test]
    fn draft07_definitions_resolve() {
        let schema = SchemaSettings::draft07()
            .into_generator()
            .into_root_schema_for::<Answer>();
        let schema = schema.to_value();
        assert!(schema["definitions"]["Inner"].is_object(), "{schema:#}");
        assert!(violations(&schema, &answer()).is_empty());
        flagged(
            &schema,
            &with(answer(), "/inner/id", None),
            "/inner/id: required property is missing",
        );
    }

    #[test]
    fn recursion_deeper_than_the_ref_cap_is_fine() {
        let mut tree = json!({"label": "leaf", "children": []});
        for _ in 0..100 {
            tree = json!({"label": "node", "children": [tree]});
        }
        let schema = output_schema_of::<Tree>();
        assert_eq!(
            schema["properties"]["children"]["items"],
            json!({"$ref": "#"})
        );
        assert!(violations(&schema, &tree).is_empty());
        let deep = format!("{}/label", "/children/0".repeat(100));
        let bad = with(tree, &deep, Some(json!(null)));
        assert_eq!(
            violations(&schema, &bad),
            [format!("{deep}: expected string, got null")]
        );
    }

    #[test]
    fn cyclic_schemas_stop() {
        let loops = json!({"$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}}, "$ref": "#/$defs/A"});
        for schema in [json!({"$ref": "#"}), loops] {
            let found = violations(&schema, &json!(1));
            assert_eq!(found.len(), 1, "{found:?}");
            assert!(found[0].contains("too deep, cyclic?"), "{found:?}");
        }
        flagged(
            &json!({"$ref": "#/$defs/Nope"}),
            &json!(1),
            "(root): $ref #/$defs/Nope does not resolve in the root schema",
        );
    }

    #[test]
    fn odd_shapes() {
        let schema = output_schema_of::<Odd>();
        let odd = json!({"by_port": {"22": "ssh"}, "set": ["a"], "pair": [1, "x"]});
        let cases = [
            (
                "/by_port/ssh",
                Some(json!("x")),
                "/by_port/ssh: unexpected property (additionalProperties is false)",
            ),
            (
                "/by_port/22",
                Some(json!(1)),
                "/by_port/22: expected string, got 1",
            ),
            (
                "/set",
                Some(json!(["a", "b", "a"])),
                "/set/2: repeats an earlier item (uniqueItems)",
            ),
            (
                "/pair/0",
                Some(json!(256)),
                "/pair/0: 256 is not <= 255 (maximum)",
            ),
            ("/pair/1", Some(json!(2)), "/pair/1: expected string, got 2"),
            (
                "/pair",
                Some(json!([1])),
                "/pair: length 1 is not >= 2 (minItems)",
            ),
            (
                "/pair",
                Some(json!([1, "x", 3])),
                "/pair: length 3 is not <= 2 (maxItems)",
            ),
        ];
        for (pointer, new, line) in cases {
            flagged(&schema, &with(odd.clone(), pointer, new), line);
        }
        let schema = schema_of::<Strict>();
        let strict = json!({"a": 1, "Failed": {"code": 1, "reason": "r"}});
        let extra = with(strict.clone(), "/zzz", Some(json!(1)));
        assert_eq!(
            violations(&schema, &extra),
            ["/zzz: unexpected property (unevaluatedProperties is false)"]
        );
        flagged(
            &schema,
            &with(strict, "/Failed", None),
            "(root): no oneOf branch matches; the closest one says:",
        );
    }

    #[test]
    fn hand_written_keywords() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "t", "description": "d", "default": 1, "examples": [1], "readOnly": true,
            "properties": {
                "c": {"const": 1},
                "n": {"not": {"type": "string"}},
                "all": {"allOf": [{"minimum": 1}, {"exclusiveMaximum": 10}]},
                "one": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
                "s": {"type": "string", "minLength": 2, "maxLength": 3, "format": "email", "pattern": "^z"},
                "yes": true,
                "no": false
            },
            "additionalProperties": {"type": "boolean"}
        });
        let fine =
            json!({"c": 1.0, "n": 1, "all": 9.5, "one": 0.5, "s": "ab", "yes": {}, "flag": true});
        assert_eq!(violations(&schema, &fine), Vec::<String>::new());
        let cases = [
            ("/c", json!(2), "/c: expected 1, got 2"),
            ("/n", json!("x"), "/n: matches the schema under `not`"),
            ("/all", json!(0), "/all: 0 is not >= 1 (minimum)"),
            ("/all", json!(10), "/all: 10 is not < 10 (exclusiveMaximum)"),
            (
                "/one",
                json!(3),
                "/one: matches 2 oneOf branches, not exactly one",
            ),
            ("/s", json!("é"), "/s: length 1 is not >= 2 (minLength)"),
            ("/s", json!("abcd"), "/s: length 4 is not <= 3 (maxLength)"),
            (
                "/no",
                json!(null),
                "/no: no value is allowed here (schema is false)",
            ),
            ("/a~b/c", json!(1), "/a~0b~1c: expected boolean, got 1"),
        ];
        for (pointer, new, line) in cases {
            let value = match pointer {
                "/a~b/c" => json!({"a~b/c": new}),
                _ => with(fine.clone(), pointer, Some(new)),
            };
            flagged(&schema, &value, line);
        }
    }
}
