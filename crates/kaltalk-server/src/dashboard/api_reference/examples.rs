//! Examples for the reference page, derived from the OpenAPI document: a `curl` command
//! for every operation and example JSON for its request and response bodies, built from
//! the schemas' own `example`s where they have them and from their types otherwise.

use serde_json::{Map, Value, json};

/// How deep an example goes: a guard against deeply nested schemas.
const MAX_DEPTH: usize = 12;

/// An example value for `schema`, resolving `$ref`s against `doc`. A schema met again
/// inside itself (a reply's parent message) is `null` there.
pub(crate) fn example(doc: &Value, schema: &Value) -> Value {
    value(doc, schema, None, 0, &mut Vec::new())
}

fn value<'a>(
    doc: &'a Value,
    schema: &'a Value,
    name: Option<&str>,
    depth: usize,
    refs: &mut Vec<&'a str>,
) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    if let Some(given) = schema.get("example") {
        return given.clone();
    }
    if let Some(given) = schema["examples"].as_array().and_then(|e| e.first()) {
        return given.clone();
    }
    if let Some(reference) = schema["$ref"].as_str() {
        if refs.contains(&reference) {
            return Value::Null;
        }
        refs.push(reference);
        let resolved = value(doc, resolve(doc, reference), name, depth + 1, refs);
        refs.pop();
        return resolved;
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    if let Some(constant) = schema.get("const") {
        return constant.clone();
    }
    if let Some(parts) = schema["allOf"].as_array() {
        // A flattened struct: every part's fields together.
        let mut merged = Map::new();
        for part in parts {
            if let Value::Object(fields) = value(doc, part, name, depth + 1, refs) {
                merged.extend(fields);
            }
        }
        return Value::Object(merged);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(parts) = schema[key].as_array() {
            // The first part that is not `null` (an optional field).
            let part = parts.iter().find(|p| p["type"] != "null").or(parts.first());
            return part.map_or(Value::Null, |p| value(doc, p, name, depth + 1, refs));
        }
    }
    let kind = match &schema["type"] {
        Value::String(t) => t.as_str(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema["properties"].is_object() => "object",
        _ => "",
    };
    match kind {
        "object" => {
            let mut fields = Map::new();
            if let Some(properties) = schema["properties"].as_object() {
                for (field, property) in properties {
                    fields.insert(
                        field.clone(),
                        value(doc, property, Some(field), depth + 1, refs),
                    );
                }
            }
            Value::Object(fields)
        }
        "array" => json!([value(doc, &schema["items"], name, depth + 1, refs)]),
        "integer" => json!(schema["minimum"].as_i64().unwrap_or(0).max(1)),
        "number" => json!(1.5),
        "boolean" => json!(true),
        "string" => json!(string(schema["format"].as_str(), name)),
        _ => Value::Null,
    }
}

fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    match reference.strip_prefix("#/") {
        Some(pointer) => doc.pointer(&format!("/{pointer}")).unwrap_or(&Value::Null),
        None => &Value::Null,
    }
}

/// A plausible string for a field, by its format, else by its name.
fn string(format: Option<&str>, name: Option<&str>) -> String {
    match format {
        Some("uuid") => return "0192e3a4-5b6c-7d8e-9f01-23456789abcd".into(),
        Some("date-time") => return "2026-01-15T09:30:00Z".into(),
        Some("date") => return "2026-01-15".into(),
        Some("email") => return "ada@example.com".into(),
        Some("uri" | "url") => return "https://example.com/".into(),
        Some("binary") => return "@./file.pdf".into(),
        _ => {}
    }
    let name = name.unwrap_or_default();
    if name.ends_with("email") {
        "ada@example.com".into()
    } else if name.ends_with("url") {
        "https://example.com/".into()
    } else if name == "id" || name.ends_with("_id") {
        "0192e3a4-5b6c-7d8e-9f01-23456789abcd".into()
    } else if name.ends_with("_at") {
        "2026-01-15T09:30:00Z".into()
    } else if name == "name" {
        "Ada Lovelace".into()
    } else if name == "text" || name == "body" {
        "Thanks, we are looking into it.".into()
    } else if name == "content_type" {
        "application/pdf".into()
    } else if name == "filename" {
        "invoice.pdf".into()
    } else {
        "text".into()
    }
}

/// A `curl` command for one operation: path parameters as shell variables (curl would
/// read `{…}` as a URL pattern), the key from `$KALTALK_API_KEY`, and the example body.
pub(crate) fn curl(
    base: &str,
    method: &str,
    path: &str,
    public: bool,
    body: Option<(&str, &Value)>,
) -> String {
    let url: String = path
        .split('/')
        .map(
            |part| match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => format!("${}", name.to_uppercase()),
                None => part.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/");
    let mut lines = vec![format!("curl -X {method} \"{base}{url}\"")];
    if !public {
        lines.push("-H \"Authorization: Bearer $KALTALK_API_KEY\"".to_owned());
    }
    match body {
        Some((media, Value::Object(fields))) if media.starts_with("multipart/") => {
            for (field, value) in fields {
                let shown = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                lines.push(format!("-F {}", shell_quote(&format!("{field}={shown}"))));
            }
        }
        Some((media, value)) => {
            lines.push(format!("-H \"Content-Type: {media}\""));
            let json = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
            lines.push(format!("-d {}", shell_quote(&json)));
        }
        None => {}
    }
    lines.join(" \\\n  ")
}

/// `text` in single quotes for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_follow_refs_types_and_formats() {
        let doc = json!({ "components": { "schemas": {
            "Contact": { "type": "object", "properties": {
                "id": { "type": "string", "format": "uuid" },
                "email": { "type": ["string", "null"] },
                "tags": { "type": "array", "items": { "type": "string", "enum": ["vip", "new"] } },
                "self": { "$ref": "#/components/schemas/Contact" }
            } }
        } } });
        let example = example(&doc, &json!({ "$ref": "#/components/schemas/Contact" }));
        assert_eq!(example["id"], "0192e3a4-5b6c-7d8e-9f01-23456789abcd");
        assert_eq!(example["email"], "ada@example.com");
        assert_eq!(example["tags"], json!(["vip"]));
        assert!(
            example["self"].is_null(),
            "a schema inside itself is not followed"
        );
    }

    #[test]
    fn curl_uses_shell_variables_for_path_parameters_and_quotes_the_body() {
        let command = curl(
            "https://chat.example.com",
            "POST",
            "/api/v1/conversations/{conversation_id}/messages",
            false,
            Some(("application/json", &json!({ "text": "It's here" }))),
        );
        assert_eq!(
            command,
            "curl -X POST \"https://chat.example.com/api/v1/conversations/$CONVERSATION_ID/messages\" \\\n  \
             -H \"Authorization: Bearer $KALTALK_API_KEY\" \\\n  \
             -H \"Content-Type: application/json\" \\\n  \
             -d '{\n  \"text\": \"It'\\''s here\"\n}'"
        );
    }
}
