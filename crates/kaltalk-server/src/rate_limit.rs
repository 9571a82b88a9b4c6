//! Keyed rate limits (GCRA, via governor) read from the application's clock: API keys,
//! widget visitors by address and by session, bot answers by address. Per instance.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use kaltalk_core::Clock;

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

/// Keys kept before idle ones are dropped: addresses are unbounded, memory is not.
const MAX_KEYS: usize = 100_000;

/// At most `limit` requests per `period` for each key, in bursts of up to `limit`.
pub struct Limiter<K: Hash + Eq + Clone> {
    limiter: RateLimiter<K, DashMapStateStore<K>, AppClock, StateInformationMiddleware>,
    clock: AppClock,
    limit: NonZeroU32,
    period: Duration,
}

/// What a key may still do.
pub struct Allowance {
    pub remaining: u32,
    /// Seconds until the whole allowance is back.
    pub reset_secs: u64,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn per_minute(limit: NonZeroU32, clock: Arc<dyn Clock>) -> Self {
        Self::new(
            Quota::per_minute(limit),
            limit,
            Duration::from_secs(60),
            clock,
        )
    }

    pub fn per_hour(limit: NonZeroU32, clock: Arc<dyn Clock>) -> Self {
        Self::new(
            Quota::per_hour(limit),
            limit,
            Duration::from_secs(3600),
            clock,
        )
    }

    fn new(quota: Quota, limit: NonZeroU32, period: Duration, clock: Arc<dyn Clock>) -> Self {
        let clock = AppClock(clock);
        let limiter = RateLimiter::dashmap_with_clock(quota, clock.clone())
            .with_middleware::<StateInformationMiddleware>();
        Self {
            limiter,
            clock,
            limit,
            period,
        }
    }

    pub fn limit(&self) -> NonZeroU32 {
        self.limit
    }

    /// Counts one request of `key`; `Err` carries the seconds to wait.
    pub fn check(&self, key: &K) -> Result<Allowance, u64> {
        if self.limiter.len() > MAX_KEYS {
            self.limiter.retain_recent();
        }
        match self.limiter.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = u64::from(self.limit.get().saturating_sub(remaining));
                Ok(Allowance {
                    remaining,
                    reset_secs: (used * self.period.as_secs())
                        .div_ceil(u64::from(self.limit.get())),
                })
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                // Whole seconds, rounded up: a client that waits exactly this long gets in.
                Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaltalk_core::ManualClock;

    #[test]
    fn an_hourly_limit_refills_over_the_hour() {
        let clock = Arc::new(ManualClock::starting_now());
        let limiter = Limiter::per_hour(NonZeroU32::new(2).expect("2"), clock.clone());
        assert!(limiter.check(&"a").is_ok());
        assert!(limiter.check(&"a").is_ok());
        assert_eq!(limiter.check(&"a").err(), Some(1800));
        assert!(
            limiter.check(&"b").is_ok(),
            "each key has its own allowance"
        );
        clock.advance(chrono::Duration::minutes(30));
        assert!(limiter.check(&"a").is_ok());
    }
}
