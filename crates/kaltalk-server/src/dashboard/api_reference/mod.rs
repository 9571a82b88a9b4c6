//! The API reference: the served OpenAPI document rendered as a page, server-side, so it
//! is always the spec of this very build and needs no third-party JavaScript. Its
//! descriptions' Markdown is rendered ([`doc_html`]) and every operation has a `curl`
//! example with example bodies ([`examples`]).

mod doc_html;
mod examples;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::Value;

use self::doc_html::DocHtml;
use crate::api;
use crate::auth::AgentSession;
use crate::state::AppState;
use crate::web::{Layout, PageResult};

pub fn router() -> Router<AppState> {
    Router::new().route("/settings/api/reference", get(show))
}

#[derive(Template, WebTemplate)]
#[template(path = "app/api_reference.html")]
struct ReferencePage {
    layout: Layout,
    title: String,
    description: DocHtml,
    version: String,
    operations: Vec<OperationView>,
    schemas: Vec<SchemaView>,
}

/// One method on one path.
pub(crate) struct OperationView {
    pub method: String,
    pub path: String,
    pub anchor: String,
    pub summary: DocHtml,
    pub description: DocHtml,
    pub public: bool,
    pub parameters: Vec<ParameterView>,
    pub request_body: Option<String>,
    pub responses: Vec<ResponseView>,
    /// A `curl` command that calls it, with the example body.
    pub curl: String,
    /// Example JSON of the request body (pretty-printed), when it takes JSON.
    pub request_example: Option<String>,
    /// The first success response's status and example JSON, when it has a body.
    pub response_example: Option<(String, String)>,
}

pub(crate) struct ParameterView {
    pub name: String,
    pub location: String,
    pub required: bool,
    pub kind: String,
    pub description: DocHtml,
}

pub(crate) struct ResponseView {
    pub status: String,
    pub description: DocHtml,
    pub body: Option<String>,
}

pub(crate) struct SchemaView {
    pub name: String,
    pub description: DocHtml,
    pub fields: Vec<FieldView>,
}

pub(crate) struct FieldView {
    pub name: String,
    pub kind: String,
    pub required: bool,
    pub description: DocHtml,
}

async fn show(State(state): State<AppState>, session: AgentSession) -> PageResult {
    let doc = serde_json::to_value(api::openapi()).map_err(anyhow::Error::from)?;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    Ok(ReferencePage {
        layout: Layout::signed_in(&state, &session, "api-reference").await?,
        title: text(&doc["info"]["title"]),
        description: DocHtml::new(&text(&doc["info"]["description"])),
        version: text(&doc["openapi"]),
        operations: operations(&doc, &state.public_base),
        schemas: schemas(&doc),
    }
    .into_response())
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every operation, in path order, methods in a fixed order; `base` is this server's
/// public address, for the examples.
pub(crate) fn operations(doc: &Value, base: &str) -> Vec<OperationView> {
    let Some(paths) = doc["paths"].as_object() else {
        return Vec::new();
    };
    let mut views = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            let op = &item[method];
            if op.is_null() {
                continue;
            }
            let public = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .all(|r| r.as_object().is_some_and(|o| o.is_empty()))
            });
            let request = op["requestBody"]["content"]
                .as_object()
                .and_then(|c| c.iter().next())
                .map(|(media, body)| (media.as_str(), examples::example(doc, &body["schema"])));
            views.push(OperationView {
                method: method.to_uppercase(),
                path: path.clone(),
                anchor: format!("{method}-{path}")
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect(),
                summary: DocHtml::inline(&str_of(&op["summary"])),
                description: DocHtml::new(&str_of(&op["description"])),
                public,
                parameters: op["parameters"]
                    .as_array()
                    .map(|ps| ps.iter().map(parameter).collect())
                    .unwrap_or_default(),
                request_body: op["requestBody"]["content"]
                    .as_object()
                    .and_then(|c| c.values().next())
                    .map(|media| type_name(&media["schema"])),
                responses: op["responses"]
                    .as_object()
                    .map(|rs| {
                        rs.iter()
                            .map(|(status, r)| ResponseView {
                                status: status.clone(),
                                description: DocHtml::inline(&str_of(&r["description"])),
                                body: r["content"]
                                    .as_object()
                                    .and_then(|c| c.values().next())
                                    .map(|media| type_name(&media["schema"])),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                curl: examples::curl(
                    base.trim_end_matches('/'),
                    &method.to_uppercase(),
                    path,
                    public,
                    request.as_ref().map(|(media, body)| (*media, body)),
                ),
                request_example: request
                    .as_ref()
                    .filter(|(media, _)| media.contains("json"))
                    .map(|(_, body)| pretty(body)),
                response_example: success_example(doc, op),
            });
        }
    }
    views
}

/// The first 2xx response with a JSON body, and its example.
fn success_example(doc: &Value, op: &Value) -> Option<(String, String)> {
    op["responses"].as_object()?.iter().find_map(|(status, r)| {
        if !status.starts_with('2') {
            return None;
        }
        let (_, media) = r["content"]
            .as_object()?
            .iter()
            .find(|(media, _)| media.contains("json"))?;
        Some((
            status.clone(),
            pretty(&examples::example(doc, &media["schema"])),
        ))
    })
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

fn parameter(p: &Value) -> ParameterView {
    ParameterView {
        name: str_of(&p["name"]),
        location: str_of(&p["in"]),
        required: p["required"].as_bool().unwrap_or(false),
        kind: type_name(&p["schema"]),
        description: DocHtml::inline(&str_of(&p["description"])),
    }
}

/// The named schemas, each with its fields.
pub(crate) fn schemas(doc: &Value) -> Vec<SchemaView> {
    let Some(schemas) = doc["components"]["schemas"].as_object() else {
        return Vec::new();
    };
    schemas
        .iter()
        .map(|(name, schema)| {
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut fields: Vec<FieldView> = Vec::new();
            collect_fields(schema, &required, &mut fields);
            SchemaView {
                name: name.clone(),
                description: DocHtml::new(&str_of(&schema["description"])),
                fields,
            }
        })
        .collect()
}

/// Properties of an object schema, including those of `allOf`/`oneOf` parts (a tagged
/// enum or a flattened struct).
fn collect_fields(schema: &Value, required: &[&str], fields: &mut Vec<FieldView>) {
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            fields.push(FieldView {
                name: name.clone(),
                kind: type_name(property),
                required: required.contains(&name.as_str()),
                description: DocHtml::inline(&str_of(&property["description"])),
            });
        }
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        for part in schema[key].as_array().into_iter().flatten() {
            let required: Vec<&str> = part["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            collect_fields(part, &required, fields);
        }
    }
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// A short human name for a schema: `Conversation`, `string (uuid)`, `[Message]`,
/// `integer | null`.
pub(crate) fn type_name(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        return reference.rsplit('/').next().unwrap_or(reference).to_owned();
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(parts) = schema[key].as_array() {
            return parts.iter().map(type_name).collect::<Vec<_>>().join(" | ");
        }
    }
    let base = match &schema["type"] {
        Value::String(t) => t.clone(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "any".to_owned(),
    };
    if base.starts_with("array") {
        return base.replacen("array", &format!("[{}]", type_name(&schema["items"])), 1);
    }
    match schema["format"].as_str() {
        Some(format) => format!("{base} ({format})"),
        None => base,
    }
}
