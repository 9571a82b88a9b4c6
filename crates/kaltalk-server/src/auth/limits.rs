//! Login rate limits: attempts per client IP and failures per account, in fixed windows,
//! read from the shared clock. Per instance: behind several instances an attacker gets
//! the limit once per instance, still far below what guessing needs.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use kaltalk_core::Clock;
use tokio::sync::Mutex;

use crate::config::LoginLimits;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: DateTime<Utc>,
    count: u32,
}

pub struct LoginLimiter {
    limits: LoginLimits,
    clock: Arc<dyn Clock>,
    windows: Mutex<HashMap<String, Window>>,
}

impl LoginLimiter {
    pub fn new(limits: LoginLimits, clock: Arc<dyn Clock>) -> Self {
        Self {
            limits,
            clock,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt from `ip`; `Err(seconds)` when over the limit.
    pub async fn attempt_from(&self, ip: IpAddr) -> Result<(), u64> {
        self.hit(format!("ip:{ip}"), self.limits.per_ip).await
    }

    /// `Err(seconds)` while the account is locked by failures.
    pub async fn account_blocked(&self, account: &str) -> Result<(), u64> {
        let now = self.clock.now();
        let window = self.window_length();
        let windows = self.windows.lock().await;
        match windows.get(&format!("account:{account}")) {
            Some(w) if now - w.started < window && w.count >= self.limits.per_account => {
                Err(retry_after(w.started + window - now))
            }
            _ => Ok(()),
        }
    }

    pub async fn record_failure(&self, account: &str) {
        let _ = self.hit(format!("account:{account}"), u32::MAX).await;
    }

    async fn hit(&self, key: String, limit: u32) -> Result<(), u64> {
        let now = self.clock.now();
        let window = self.window_length();
        let mut windows = self.windows.lock().await;
        if windows.len() > 100_000 {
            windows.retain(|_, w| now - w.started < window);
        }
        let entry = windows.entry(key).or_insert(Window {
            started: now,
            count: 0,
        });
        if now - entry.started >= window {
            *entry = Window {
                started: now,
                count: 0,
            };
        }
        if entry.count >= limit {
            return Err(retry_after(entry.started + window - now));
        }
        entry.count += 1;
        Ok(())
    }

    fn window_length(&self) -> Duration {
        Duration::seconds(self.limits.window_seconds)
    }
}

fn retry_after(remaining: Duration) -> u64 {
    u64::try_from(remaining.num_seconds()).unwrap_or(0).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaltalk_core::ManualClock;

    fn limiter(clock: Arc<ManualClock>) -> LoginLimiter {
        LoginLimiter::new(
            LoginLimits {
                per_ip: 3,
                per_account: 2,
                window_seconds: 60,
            },
            clock,
        )
    }

    #[tokio::test]
    async fn ip_limit_resets_after_the_window() {
        let clock = Arc::new(ManualClock::starting_now());
        let limiter = limiter(clock.clone());
        let ip: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..3 {
            assert!(limiter.attempt_from(ip).await.is_ok());
        }
        assert_eq!(limiter.attempt_from(ip).await, Err(60));
        clock.advance(Duration::seconds(45));
        assert_eq!(limiter.attempt_from(ip).await, Err(15));
        clock.advance(Duration::seconds(15));
        assert!(limiter.attempt_from(ip).await.is_ok());
    }

    #[tokio::test]
    async fn account_locks_after_failures_only() {
        let clock = Arc::new(ManualClock::starting_now());
        let limiter = limiter(clock.clone());
        assert!(limiter.account_blocked("a@x.test").await.is_ok());
        limiter.record_failure("a@x.test").await;
        assert!(limiter.account_blocked("a@x.test").await.is_ok());
        limiter.record_failure("a@x.test").await;
        assert!(limiter.account_blocked("a@x.test").await.is_err());
        assert!(limiter.account_blocked("b@x.test").await.is_ok());
        clock.advance(Duration::seconds(61));
        assert!(limiter.account_blocked("a@x.test").await.is_ok());
    }
}
