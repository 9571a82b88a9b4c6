//! Small pieces every form handler shares: the notice after a redirect, the form with no
//! fields but its CSRF token, the redirect itself and how a checkbox arrives.

/// The `?notice=` code a page shows a confirmation for after a redirect.
#[derive(serde::Deserialize)]
pub(crate) struct NoticeQuery {
    pub(crate) notice: Option<String>,
}

/// A form whose only field is its CSRF token.
#[derive(serde::Deserialize)]
pub(crate) struct NoFields {}

/// A redirect after a successful POST, with a short notice code the next page explains.
pub(crate) fn see_other(path: &str) -> axum::response::Response {
    axum::response::IntoResponse::into_response(axum::response::Redirect::to(path))
}

/// A checkbox is present in the form only when ticked.
pub(crate) fn ticked(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|v| !v.is_empty())
}

/// A whole number as typed in `field`, within `range`; otherwise the field's `message`.
pub(crate) fn whole_number(
    input: &str,
    range: std::ops::RangeInclusive<i32>,
    field: &'static str,
    message: impl Into<String>,
) -> Result<i32, crate::error::AppError> {
    input
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| crate::error::AppError::invalid(field, message))
}
