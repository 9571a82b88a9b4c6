//! Rate limits per API key (GCRA, via governor) with the IETF draft `RateLimit-*` headers.
//! Dashboard sessions calling the API are limited by the person, not by this.

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kaltalk_core::{ApiKeyId, Clock};

use crate::auth::ApiPrincipal;
use crate::error::AppError;
use crate::rate_limit::Limiter;
use crate::state::AppState;

/// One limiter for every API key of the server.
#[derive(Clone)]
pub struct ApiRateLimiter {
    limiter: Arc<Limiter<ApiKeyId>>,
}

impl ApiRateLimiter {
    pub fn new(per_minute: NonZeroU32, clock: Arc<dyn Clock>) -> Self {
        Self {
            limiter: Arc::new(Limiter::per_minute(per_minute, clock)),
        }
    }

    fn headers(&self, headers: &mut HeaderMap, remaining: u32, reset_secs: u64) {
        headers.insert(
            "ratelimit-limit",
            HeaderValue::from(self.limiter.limit().get()),
        );
        headers.insert("ratelimit-remaining", HeaderValue::from(remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(reset_secs));
    }
}

/// Middleware on the API router: identifies the caller once (the handler's `ApiPrincipal`
/// reuses it) and counts requests made with an API key.
pub async fn limit_api_keys(
    State((state, limiter)): State<(AppState, ApiRateLimiter)>,
    request: Request,
    next: Next,
) -> Response {
    if !request
        .headers()
        .contains_key(axum::http::header::AUTHORIZATION)
    {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let principal = ApiPrincipal::from_request_parts(&mut parts, &state).await;
    let request = Request::from_parts(parts, body);
    let key_id = match principal {
        Ok(ApiPrincipal::Key { key_id, .. }) => key_id,
        // A refused key is answered by the handler's extractor, in the usual format.
        _ => return next.run(request).await,
    };
    match limiter.limiter.check(&key_id) {
        Ok(allowance) => {
            let mut response = next.run(request).await;
            limiter.headers(
                response.headers_mut(),
                allowance.remaining,
                allowance.reset_secs,
            );
            response
        }
        Err(retry_after_secs) => {
            let mut response = AppError::RateLimited { retry_after_secs }.into_response();
            limiter.headers(response.headers_mut(), 0, retry_after_secs);
            response
        }
    }
}
