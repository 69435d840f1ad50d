//! The JSON paths of what a partner receives, as the allow-list names them.

use serde_json::Value;

/// Objects whose keys are data, not field names (a template id, a template's field, a raw
/// push's field): their keys are written `*`.
const MAPS: [&str; 3] = ["subscribe_grants", "data", "fields"];

/// Every leaf of `value` (a scalar, `null`, or an empty array or object) with its path:
/// object fields joined by `.`, array items as `[]`, the keys of [`MAPS`] as `*`.
pub fn leaves(value: &Value) -> Vec<(String, &Value)> {
    let mut found = Vec::new();
    walk(value, String::new(), false, &mut found);
    found
}

fn walk<'v>(value: &'v Value, path: String, map: bool, found: &mut Vec<(String, &'v Value)>) {
    match value {
        Value::Object(fields) if !fields.is_empty() => {
            for (name, field) in fields {
                let segment = if map { "*" } else { name.as_str() };
                let inner = match path.is_empty() {
                    true => segment.to_owned(),
                    false => format!("{path}.{segment}"),
                };
                walk(field, inner, !map && MAPS.contains(&name.as_str()), found);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                walk(item, format!("{path}[]"), false, found);
            }
        }
        _ => found.push((path, value)),
    }
}

#[test]
fn paths_name_fields_items_and_map_keys() {
    let value = serde_json::json!({
        "a": {"b": 1, "c": [[1, "x"]], "d": []},
        "window": {"subscribe_grants": {"tpl-1": 2}},
        "e": {}
    });
    let paths: Vec<String> = leaves(&value).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        [
            "a.b",
            "a.c[][]",
            "a.c[][]",
            "a.d",
            "window.subscribe_grants.*",
            "e"
        ]
    );
}
