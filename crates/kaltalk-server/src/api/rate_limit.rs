//! Rate limits per API key (GCRA, via governor) with the IETF draft `RateLimit-*` headers.
//! Dashboard sessions calling the API are limited by the person, not by this.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock as GovernorClock;
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use kaltalk_core::{ApiKeyId, Clock};

use crate::auth::ApiPrincipal;
use crate::error::AppError;
use crate::state::AppState;

/// The application's clock as governor sees it: time since the Unix epoch. Tests move
/// the manual clock instead of sleeping.
#[derive(Clone)]
struct AppClock(Arc<dyn Clock>);

impl GovernorClock for AppClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        let now = self.0.now();
        // Before 1970 only on a broken clock; saturating keeps the limiter sane.
        (now - chrono::DateTime::UNIX_EPOCH)
            .to_std()
            .unwrap_or_default()
    }
}

type KeyedLimiter =
    RateLimiter<ApiKeyId, DashMapStateStore<ApiKeyId>, AppClock, StateInformationMiddleware>;

/// One limiter for every API key of the server.
#[derive(Clone)]
pub struct ApiRateLimiter {
    limiter: Arc<KeyedLimiter>,
    clock: AppClock,
    per_minute: NonZeroU32,
}

/// What a key may still do, as the response headers say it.
struct Allowance {
    remaining: u32,
    /// Seconds until the whole allowance is back.
    reset_secs: u64,
}

impl ApiRateLimiter {
    pub fn new(per_minute: NonZeroU32, clock: Arc<dyn Clock>) -> Self {
        let clock = AppClock(clock);
        let limiter = RateLimiter::dashmap_with_clock(Quota::per_minute(per_minute), clock.clone())
            .with_middleware::<StateInformationMiddleware>();
        Self {
            limiter: Arc::new(limiter),
            clock,
            per_minute,
        }
    }

    /// Counts one request of `key`; `Err` carries the seconds to wait.
    fn check(&self, key: ApiKeyId) -> Result<Allowance, u64> {
        match self.limiter.check_key(&key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = u64::from(self.per_minute.get().saturating_sub(remaining));
                Ok(Allowance {
                    remaining,
                    reset_secs: (used * 60).div_ceil(u64::from(self.per_minute.get())),
                })
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                // Whole seconds, rounded up: a client that waits exactly this long gets in.
                Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
            }
        }
    }

    fn headers(&self, headers: &mut HeaderMap, remaining: u32, reset_secs: u64) {
        headers.insert("ratelimit-limit", HeaderValue::from(self.per_minute.get()));
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
    match limiter.check(key_id) {
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
