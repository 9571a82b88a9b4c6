//! Login rate limits: attempts per client IP and failures per account, in fixed windows,
//! read from the shared clock. Per instance: behind several instances an attacker gets
//! the limit once per instance, still far below what guessing needs.
//!
//! A locked account is locked for the IPs that failed on it; others only wait a short
//! delay after its last failure. A lock for everyone would let anyone who knows an address
//! keep its owner out with a few wrong passwords.

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
    /// The latest hit.
    last: DateTime<Utc>,
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

    /// `Err(seconds)` while the account is closed to `ip`: for the rest of the window when
    /// `ip` made the failures that locked it, else until a short delay after its last
    /// failure.
    pub async fn account_blocked(&self, account: &str, ip: IpAddr) -> Result<(), u64> {
        let now = self.clock.now();
        let window = self.window_length();
        let live = |w: &&Window| now - w.started < window;
        let windows = self.windows.lock().await;
        let Some(account_window) = windows.get(&account_key(account)).filter(live) else {
            return Ok(());
        };
        if account_window.count < self.limits.per_account {
            return Ok(());
        }
        if let Some(from_ip) = windows.get(&account_ip_key(account, ip)).filter(live)
            && from_ip.count >= self.limits.per_account
        {
            return Err(retry_after(from_ip.started + window - now));
        }
        let open_at = account_window.last + Duration::seconds(self.limits.lockout_delay_seconds);
        if now < open_at {
            return Err(retry_after(open_at - now));
        }
        Ok(())
    }

    /// Counts a wrong password for `account` from `ip`.
    pub async fn record_failure(&self, account: &str, ip: IpAddr) {
        let _ = self.hit(account_key(account), u32::MAX).await;
        let _ = self.hit(account_ip_key(account, ip), u32::MAX).await;
    }

    async fn hit(&self, key: String, limit: u32) -> Result<(), u64> {
        let now = self.clock.now();
        let window = self.window_length();
        let mut windows = self.windows.lock().await;
        if windows.len() > 100_000 {
            windows.retain(|_, w| now - w.started < window);
        }
        let fresh = Window {
            started: now,
            count: 0,
            last: now,
        };
        let entry = windows.entry(key).or_insert(fresh);
        if now - entry.started >= window {
            *entry = fresh;
        }
        if entry.count >= limit {
            return Err(retry_after(entry.started + window - now));
        }
        entry.count += 1;
        entry.last = now;
        Ok(())
    }

    fn window_length(&self) -> Duration {
        Duration::seconds(self.limits.window_seconds)
    }
}

fn account_key(account: &str) -> String {
    format!("account:{account}")
}

fn account_ip_key(account: &str, ip: IpAddr) -> String {
    format!("account-ip:{ip} {account}")
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
                lockout_delay_seconds: 5,
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
        let ip: IpAddr = [10, 0, 0, 1].into();
        assert!(limiter.account_blocked("a@x.test", ip).await.is_ok());
        limiter.record_failure("a@x.test", ip).await;
        assert!(limiter.account_blocked("a@x.test", ip).await.is_ok());
        limiter.record_failure("a@x.test", ip).await;
        assert!(limiter.account_blocked("a@x.test", ip).await.is_err());
        assert!(limiter.account_blocked("b@x.test", ip).await.is_ok());
        clock.advance(Duration::seconds(61));
        assert!(limiter.account_blocked("a@x.test", ip).await.is_ok());
    }

    #[tokio::test]
    async fn a_locked_account_opens_to_other_ips_after_the_delay() {
        let clock = Arc::new(ManualClock::starting_now());
        let limiter = limiter(clock.clone());
        let attacker: IpAddr = [10, 0, 0, 1].into();
        let owner: IpAddr = [10, 0, 0, 2].into();
        limiter.record_failure("a@x.test", attacker).await;
        limiter.record_failure("a@x.test", attacker).await;
        assert_eq!(limiter.account_blocked("a@x.test", owner).await, Err(5));
        clock.advance(Duration::seconds(5));
        assert!(limiter.account_blocked("a@x.test", owner).await.is_ok());
        assert_eq!(
            limiter.account_blocked("a@x.test", attacker).await,
            Err(55),
            "the IP that failed stays out for the window"
        );
        // Each further failure from elsewhere starts the delay again.
        limiter.record_failure("a@x.test", owner).await;
        assert_eq!(limiter.account_blocked("a@x.test", owner).await, Err(5));
    }
}
