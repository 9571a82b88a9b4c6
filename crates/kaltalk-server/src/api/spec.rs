//! The API's OpenAPI 3.1 document: the parts no handler declares (title, the bearer
//! security scheme, the problem document every error uses) and the endpoint serving it.
//! Each operation comes from its handler's `#[utoipa::path]`, gathered by `api::routes`.

use std::sync::Arc;

use axum::Extension;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, OpenApi as Document, Ref, RefOr, Required};
use utoipa::{Modify, OpenApi, ToSchema};

/// The security scheme's name, as `security(("bearer" = []))` refers to it.
pub const BEARER: &str = "bearer";

/// An error, as RFC 9457 describes (`application/problem+json`). Match on `code`: the
/// other texts are for people and may change.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // Documents the body `AppError` writes; never built from this type.
pub struct Problem {
    /// Always `about:blank`.
    #[serde(rename = "type")]
    kind: String,
    /// The HTTP status's reason phrase.
    title: String,
    status: u16,
    /// Stable: `validation_failed`, `bad_request`, `unauthorized`, `forbidden`,
    /// `csrf_rejected`, `not_found`, `conflict`, `rate_limited`, `no_organization`,
    /// `internal`; on a POST with an `Idempotency-Key`: `idempotency_key_reused` (422, the
    /// key was used with another body) and `idempotency_key_in_use` (409, the first request
    /// with it is still running).
    code: String,
    /// What went wrong, for a person.
    detail: String,
    /// With `validation_failed`: each field that was refused and why.
    #[schema(nullable = false)]
    errors: Option<Vec<FieldProblem>>,
}

/// One refused field of a `validation_failed` problem.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // Documentation only, as `Problem`.
pub struct FieldProblem {
    field: String,
    message: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "KalTalk API",
        description = "Conversations, contacts, knowledge and webhooks of one organization.\n\n\
            Authenticate with an API key from Settings → API keys: \
            `Authorization: Bearer kt_…`. Errors are `application/problem+json` documents \
            with a stable `code`.\n\n\
            Each key may make a limited number of requests per minute. Every response to a \
            key carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` \
            (seconds until the full allowance is back); over the limit the answer is `429` \
            with `Retry-After` and the code `rate_limited`.",
    ),
    components(schemas(Problem, FieldProblem)),
    security(("bearer" = [])),
    modifiers(&CommonParts),
)]
struct Base;

/// The bearer scheme and the error answers every authenticated operation can give, added
/// here once rather than repeated on each handler.
struct CommonParts;

impl Modify for CommonParts {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key of the organization, `kt_…`, or a native app's session token, `kt_app_…` (from `POST /sessions`).",
                    ))
                    .build(),
            ),
        );
        for item in doc.paths.paths.values_mut() {
            for (method, operation) in operations_mut(item) {
                // An operation with `security(())` is public: nothing to refuse.
                let public = operation
                    .security
                    .as_ref()
                    .is_some_and(|s| s.iter().all(is_empty_requirement));
                if public {
                    continue;
                }
                let responses = &mut operation.responses.responses;
                responses
                    .entry("401".into())
                    .or_insert_with(|| problem("The key is missing, wrong or revoked."));
                responses.entry("429".into()).or_insert_with(|| {
                    let mut response =
                        problem("Over this key's rate limit: wait `Retry-After` seconds.");
                    if let RefOr::T(response) = &mut response {
                        response.headers.insert(
                            "Retry-After".into(),
                            HeaderBuilder::new()
                                .schema(u64::schema_ref())
                                .description(Some("Seconds until a request is allowed again."))
                                .build()
                                .into(),
                        );
                    }
                    response
                });
                responses
                    .entry("default".into())
                    .or_insert_with(|| problem("Any other error."));
                if method == "post" {
                    document_idempotency_key(operation);
                }
            }
        }
    }
}

/// Every POST honours `Idempotency-Key` (one layer in front of all handlers, see
/// `api::idempotency`), so each POST documents it here rather than on its handler.
fn document_idempotency_key(operation: &mut Operation) {
    let parameters = operation.parameters.get_or_insert_with(Vec::new);
    let documented =
        |p: &RefOr<Parameter>| matches!(p, RefOr::T(p) if p.name == IDEMPOTENCY_KEY_HEADER);
    if parameters.iter().any(documented) {
        return;
    }
    parameters.push(
        ParameterBuilder::new()
            .name(IDEMPOTENCY_KEY_HEADER)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Makes a retry safe: the first answer (status and body) is kept for 24 hours \
                 and a retry with the same key and body gets it again, with \
                 `Idempotent-Replayed: true`. The same key with another body is a 422 \
                 `idempotency_key_reused`; while the first request runs, a 409 \
                 `idempotency_key_in_use`. 1 to 255 characters, e.g. a UUID.",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(255)),
            ))
            .build()
            .into(),
    );
    let responses = &mut operation.responses.responses;
    responses.entry("409".into()).or_insert_with(|| {
        problem("`idempotency_key_in_use`: a request with this Idempotency-Key is still running.")
    });
}

/// The header, as `api::idempotency` reads it.
const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

/// Whether a security requirement is the empty one (`{}`), meaning "no credential".
fn is_empty_requirement(requirement: &utoipa::openapi::security::SecurityRequirement) -> bool {
    serde_json::to_value(requirement).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
}

/// A problem+json response with `description`.
pub fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build(),
    )
}

pub use crate::error::PROBLEM_JSON;

trait SchemaRef {
    fn schema_ref() -> Option<RefOr<utoipa::openapi::schema::Schema>>;
}

impl<T: utoipa::PartialSchema> SchemaRef for T {
    fn schema_ref() -> Option<RefOr<utoipa::openapi::schema::Schema>> {
        Some(T::schema())
    }
}

/// The operations of a path, with their lower-case HTTP method.
pub fn operations_mut(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("post", &mut item.post),
        ("put", &mut item.put),
        ("patch", &mut item.patch),
        ("delete", &mut item.delete),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.as_mut().map(|op| (method, op)))
    .collect()
}

/// `routed` (every operation, from the handlers) completed with the common parts.
pub fn document(routed: Document) -> Document {
    let mut doc = Base::openapi();
    doc.merge(routed);
    // The modifier ran on `Base` alone; run it again now that the operations are here.
    CommonParts.modify(&mut doc);
    doc
}

/// The document as served, rendered once when the router is built.
#[derive(Clone)]
pub struct SpecJson(pub Arc<String>);

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    security(()),
    responses((status = 200, description = "This OpenAPI 3.1 document.", content_type = "application/json", body = Object)),
)]
pub async fn openapi_json(Extension(spec): Extension<SpecJson>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        spec.0.as_str().to_owned(),
    )
}
