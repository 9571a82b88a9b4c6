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
