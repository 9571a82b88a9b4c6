//! The HTTP client that POSTs to addresses other people chose (webhook endpoints, browsers'
//! push services): behind the same SSRF guard as the crawler, each use with its own
//! `allow_loopback/allow_private` switches, no redirects followed, a 10 second limit for
//! the whole exchange.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kaltalk_ai::fetch::{FetchPolicy, GuardedResolver, innermost, refusal_for, refusal_in};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use url::Url;

/// How long one attempt may take, connecting included.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Why an attempt got no HTTP answer, in words the endpoint's owner can act on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PostError {
    #[error("refused: {0}")]
    Refused(String),
    #[error("timed out after {} s", TIMEOUT.as_secs())]
    TimedOut,
    #[error("{0}")]
    Network(String),
}

/// The answer to a POST: its status, and when it asked to be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// `Retry-After`, in seconds or as an HTTP date, as an instant.
    pub retry_after: Option<DateTime<Utc>>,
}

pub struct GuardedClient {
    client: reqwest::Client,
    policy: FetchPolicy,
}

impl GuardedClient {
    /// `purpose` names the client in its User-Agent (`KalTalk-Webhooks/0.1.0`).
    pub fn new(
        purpose: &str,
        allow_loopback: bool,
        allow_private: bool,
    ) -> Result<Self, PostError> {
        let policy = FetchPolicy {
            allow_loopback,
            allow_private,
            timeout: TIMEOUT,
            user_agent: format!("KalTalk-{purpose}/{}", env!("CARGO_PKG_VERSION")),
            ..FetchPolicy::default()
        };
        let client = reqwest::Client::builder()
            .user_agent(policy.user_agent.clone())
            // A proxy would resolve names itself, out of the guard's sight.
            .no_proxy()
            .dns_resolver(GuardedResolver::new(policy.clone()))
            // A redirect is an answer, not a delivery: following it could lead the body
            // anywhere, past the guard's check of the registered URL.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(TIMEOUT)
            .build()
            .map_err(|e| PostError::Network(innermost(&e)))?;
        Ok(Self { client, policy })
    }

    /// POSTs `body` with `headers` (names in lower case); returns the answer, whatever it
    /// is. `now` reads a `Retry-After` given in seconds.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
        now: DateTime<Utc>,
    ) -> Result<Answer, PostError> {
        let url = Url::parse(url).map_err(|e| PostError::Refused(format!("{url}: {e}")))?;
        if let Some(why) = refusal_for(&url, &self.policy) {
            return Err(PostError::Refused(why));
        }
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let value = HeaderValue::from_str(value)
                .map_err(|_| PostError::Network(format!("header {name} is not valid")))?;
            map.insert(HeaderName::from_static(name), value);
        }
        let send = self.client.post(url).headers(map).body(body).send();
        let response = tokio::time::timeout(TIMEOUT, send)
            .await
            .map_err(|_| PostError::TimedOut)?
            .map_err(|e| classify(&e))?;
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, now));
        Ok(Answer {
            status: response.status().as_u16(),
            retry_after,
        })
    }
}

/// `Retry-After: 120` or `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`, as an instant.
pub(crate) fn retry_after(value: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u32>() {
        return Some(now + chrono::Duration::seconds(i64::from(seconds)));
    }
    DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

fn classify(error: &reqwest::Error) -> PostError {
    if let Some(refusal) = refusal_in(error) {
        return PostError::Refused(refusal);
    }
    if error.is_timeout() {
        return PostError::TimedOut;
    }
    PostError::Network(innermost(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_and_private_literals_are_refused_before_connecting() {
        let client = GuardedClient::new("Test", false, false).expect("client");
        let now = Utc::now();
        let refused = client
            .post("http://127.0.0.1:9/hook", &[], b"{}".to_vec(), now)
            .await;
        assert_eq!(
            refused,
            Err(PostError::Refused(
                "127.0.0.1 is a loopback address".to_owned()
            ))
        );
        let private = client
            .post("http://10.1.2.3/hook", &[], b"{}".to_vec(), now)
            .await;
        assert!(matches!(private, Err(PostError::Refused(_))), "{private:?}");
        let scheme = client
            .post("ftp://example.com/", &[], b"{}".to_vec(), now)
            .await;
        assert!(matches!(scheme, Err(PostError::Refused(_))), "{scheme:?}");
    }

    #[test]
    fn retry_after_is_read_in_seconds_or_as_a_date() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(
            retry_after("120", now),
            Some(now + chrono::Duration::seconds(120))
        );
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(now + chrono::Duration::minutes(28))
        );
        assert_eq!(retry_after("soon", now), None);
    }
}
