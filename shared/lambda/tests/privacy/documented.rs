//! What partners receive is what `api/openapi.json` documents: every webhook of the fixed
//! run against its event's schema under `webhooks`, every JSON answer against its route's
//! answer (a refusal against `Refusal`). Core builds the webhook bodies and the edge
//! documents them, so this is what keeps the two together: a field core adds, renames or
//! stops sending fails here until the schema says so.

use serde_json::Value;

/// Where `value` departs from `schema` in `document`: an undocumented field, a missing
/// required one, a wrong type or enum value. Enough of JSON Schema for what utoipa writes
/// (`$ref`, `allOf`, `oneOf`, `type`, `enum`, `const`, `required`, `properties`,
/// `additionalProperties`, `items`); patterns and bounds are the API tests' business.
pub fn faults(document: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let mut found = Vec::new();
    check(document, schema, value, at, &mut found);
    found
}

fn resolve<'d>(document: &'d Value, schema: &'d Value) -> &'d Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            let target = &document["components"]["schemas"][name];
            assert!(!target.is_null(), "no schema {reference}");
            resolve(document, target)
        }
        None => schema,
    }
}

/// The fields a schema documents (through `allOf`), or `None` when it takes any.
fn documented_fields(document: &Value, schema: &Value) -> Option<Vec<String>> {
    let schema = resolve(document, schema);
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        let mut fields = Vec::new();
        for part in parts {
            fields.extend(documented_fields(document, part)?);
        }
        return Some(fields);
    }
    if schema.get("additionalProperties").is_some() {
        return None;
    }
    let properties = schema.get("properties")?.as_object()?;
    Some(properties.keys().cloned().collect())
}

fn check(document: &Value, schema: &Value, value: &Value, at: &str, found: &mut Vec<String>) {
    let schema = resolve(document, schema);
    if let Some(choices) = schema.get("oneOf").and_then(Value::as_array) {
        let fits = choices
            .iter()
            .filter(|choice| faults(document, choice, value, at).is_empty())
            .count();
        if fits != 1 {
            found.push(format!("{at}: fits {fits} of oneOf, not one: {value}"));
        }
        return;
    }
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        for part in parts {
            check_here(document, resolve(document, part), value, at, found);
        }
        undocumented(document, schema, value, at, found);
        return;
    }
    check_here(document, schema, value, at, found);
    undocumented(document, schema, value, at, found);
}

/// A field the schema (with all its parts) does not name.
fn undocumented(
    document: &Value,
    schema: &Value,
    value: &Value,
    at: &str,
    found: &mut Vec<String>,
) {
    let (Some(fields), Some(object)) = (documented_fields(document, schema), value.as_object())
    else {
        return;
    };
    for name in object.keys().filter(|name| !fields.contains(name)) {
        found.push(format!("{at}.{name}: not documented"));
    }
}

/// The schema's own keywords (not `allOf`'s, not the undocumented fields).
fn check_here(document: &Value, schema: &Value, value: &Value, at: &str, found: &mut Vec<String>) {
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::Array(types) => types.iter().filter_map(Value::as_str).collect(),
            other => other.as_str().into_iter().collect(),
        };
        if !types.iter().any(|t| is_type(t, value)) {
            found.push(format!("{at}: not {types:?}: {value}"));
            return;
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        if !values.contains(value) {
            found.push(format!("{at}: {value} is not one of {values:?}"));
        }
    }
    if let Some(expected) = schema.get("const") {
        if expected != value {
            found.push(format!("{at}: {value} is not {expected}"));
        }
    }
    if let Some(object) = value.as_object() {
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                found.push(format!("{at}.{name}: required, missing"));
            }
        }
        for (name, field) in object {
            let inner = format!("{at}.{name}");
            match schema["properties"].get(name) {
                Some(property) => check(document, property, field, &inner, found),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(_)) | None => {}
                    Some(extra) => check(document, extra, field, &inner, found),
                },
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            check(document, items, item, &format!("{at}[{i}]"), found);
        }
    }
}

fn is_type(name: &str, value: &Value) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    }
}

/// The schema a received body should meet: its webhook's, its route's answer, or
/// `Refusal`; `None` for what is not JSON.
pub fn schema_for<'d>(document: &'d Value, kind: &str) -> &'d Value {
    if kind == "error" {
        return &document["components"]["schemas"]["Refusal"];
    }
    if let Some(webhook) = document["webhooks"].get(kind) {
        return &webhook["post"]["requestBody"]["content"]["application/json"]["schema"];
    }
    let mut parts = kind.split(' ');
    let (Some(method), Some(route), Some(status)) = (parts.next(), parts.next(), parts.next())
    else {
        panic!("not a webhook nor an answer: {kind}");
    };
    let answer = &document["paths"][route][method.to_lowercase()]["responses"][status];
    assert!(!answer.is_null(), "{kind} is not documented");
    &answer["content"]["application/json"]["schema"]
}

#[test]
fn a_field_not_documented_a_missing_one_and_a_wrong_type_are_faults() {
    let document = serde_json::json!({"components": {"schemas": {
        "Base": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
        "Both": {"allOf": [{"$ref": "#/components/schemas/Base"},
                           {"type": "object", "properties": {"n": {"type": ["integer", "null"]}}}]},
    }}});
    let schema = serde_json::json!({"$ref": "#/components/schemas/Both"});
    let check = |value: Value| faults(&document, &schema, &value, "body");
    assert!(check(serde_json::json!({"id": "a", "n": null})).is_empty());
    assert_eq!(
        check(serde_json::json!({"id": "a", "x": 1})),
        ["body.x: not documented"]
    );
    assert_eq!(
        check(serde_json::json!({"n": 1})),
        ["body.id: required, missing"]
    );
    assert_eq!(check(serde_json::json!({"id": 1})).len(), 1);
}
