//! The application's one error type. Client errors carry a specific, safe message;
//! everything else becomes an opaque 500 whose full chain is logged once, by the
//! `log_errors` middleware.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kaltalk_core::ValidationError;
use kaltalk_store::{Conflict, StoreError};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("the input is invalid")]
    Validation(Vec<ValidationError>),
    #[error("{0}")]
    BadRequest(String),
    /// A body in a format the endpoint does not read (the message says which it reads).
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    #[error("sign in first")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("the request did not come from a KalTalk page; reload the page and try again")]
    CsrfRejected,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("too many attempts; try again in {} minute(s)", retry_after_secs.div_ceil(60))]
    RateLimited { retry_after_secs: u64 },
    /// A database statement ran past its bound and was stopped.
    #[error("this took the database too long and was stopped; try again in a few seconds")]
    Busy,
    /// The signed-in person belongs to no organization any more.
    #[error("you are not a member of any organization")]
    NoOrganization,
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// When a client may try again after a statement was stopped at its bound.
pub const BUSY_RETRY_AFTER_SECS: u64 = 5;

/// The error chain of a 500, carried to the logging middleware in the response.
#[derive(Clone, Debug)]
pub struct InternalErrorReport(pub String);

impl AppError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        AppError::Validation(vec![ValidationError::new(field, message)])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::CsrfRejected | AppError::NoOrganization => {
                StatusCode::FORBIDDEN
            }
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code API clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Validation(_) => "validation_failed",
            AppError::BadRequest(_) => "bad_request",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::Unauthorized => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::CsrfRejected => "csrf_rejected",
            AppError::NotFound => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Busy => "database_busy",
            AppError::NoOrganization => "no_organization",
            AppError::Internal(_) => "internal",
        }
    }

    /// Headers and the report that every rendering of this error shares.
    pub(crate) fn decorate(&self, response: &mut Response) {
        if let AppError::RateLimited { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        if let AppError::Busy = self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(BUSY_RETRY_AFTER_SECS),
            );
        }
        if let AppError::Internal(err) = self {
            response
                .extensions_mut()
                .insert(InternalErrorReport(format!("{err:#}")));
        }
    }
}

impl From<ValidationError> for AppError {
    fn from(err: ValidationError) -> Self {
        AppError::Validation(vec![err])
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => AppError::NotFound,
            StoreError::Timeout => AppError::Busy,
            StoreError::Conflict(Conflict::EmailTaken) => AppError::invalid(
                "email",
                "An account with this email address already exists. Log in instead.",
            ),
            StoreError::Conflict(Conflict::TooManyLabels) => AppError::invalid(
                "labels",
                format!(
                    "A conversation can have at most {} labels: remove one first.",
                    kaltalk_store::labels::MAX_LABELS
                ),
            ),
            StoreError::Conflict(Conflict::TeamNameTaken) => {
                AppError::invalid("name", "A team with this name already exists.")
            }
            StoreError::Conflict(Conflict::AlreadyMember) => {
                AppError::Conflict("This person is already a member of the organization.".into())
            }
            StoreError::Conflict(Conflict::OwnsSharedOrganization(name)) => {
                AppError::Conflict(format!(
                    "You own {name}, where others are members: make one of them the owner first \
                     (Settings → Team), then delete your account."
                ))
            }
            other => AppError::Internal(other.into()),
        }
    }
}

/// The media type of every error body (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// API rendering: RFC 9457 problem details with a stable `code`.
impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            AppError::Validation(errors) => errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        };
        let mut body = json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "code": self.code(),
            "detail": detail,
        });
        if let AppError::Validation(errors) = &self {
            body["errors"] = errors
                .iter()
                .map(|e| json!({ "field": e.field, "message": e.message }))
                .collect();
        }
        let mut response = (status, Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        self.decorate(&mut response);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_stopped_at_its_bound_answers_503_with_retry_after() {
        let error = AppError::from(StoreError::Timeout);
        assert_eq!(error.code(), "database_busy");
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from(BUSY_RETRY_AFTER_SECS))
        );
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE),
            Some(&HeaderValue::from_static(PROBLEM_JSON))
        );
    }
}
