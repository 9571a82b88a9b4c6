//! The widget API's rate limits (`[widget]` in the configuration): new sessions per
//! visitor address, messages per session, and bot answers per address.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use kaltalk_core::{Clock, VisitorSessionId};

use crate::config::WidgetConfig;
use crate::rate_limit::Limiter;

pub struct WidgetLimits {
    sessions: Limiter<IpAddr>,
    messages: Limiter<VisitorSessionId>,
    bot_turns: Limiter<IpAddr>,
}

fn at_least_one(value: u32) -> NonZeroU32 {
    NonZeroU32::new(value).unwrap_or(NonZeroU32::MIN) // the config refuses 0 already
}

impl WidgetLimits {
    pub fn new(config: &WidgetConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            sessions: Limiter::per_minute(
                at_least_one(config.sessions_per_ip_per_minute),
                clock.clone(),
            ),
            messages: Limiter::per_minute(
                at_least_one(config.messages_per_session_per_minute),
                clock.clone(),
            ),
            bot_turns: Limiter::per_hour(at_least_one(config.bot_turns_per_ip_per_hour), clock),
        }
    }

    /// Counts a new visitor session from `ip`; `Err(seconds)` over the limit.
    pub fn new_session(&self, ip: IpAddr) -> Result<(), u64> {
        self.sessions.check(&ip).map(drop)
    }

    /// Counts a message on `session`; `Err(seconds)` over the limit.
    pub fn message(&self, session: VisitorSessionId) -> Result<(), u64> {
        self.messages.check(&session).map(drop)
    }

    /// Counts a bot answer to a visitor at `ip`; `false` once the hour's are used up.
    pub fn bot_turn(&self, ip: IpAddr) -> bool {
        self.bot_turns.check(&ip).is_ok()
    }
}
