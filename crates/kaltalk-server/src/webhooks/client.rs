//! The HTTP client webhook deliveries go out through: a POST behind the same SSRF guard
//! as the crawler (with its own `webhooks.allow_loopback/allow_private` switches), no
//! redirects followed, a 10 second limit for the whole exchange.

use std::time::Duration;

use kaltalk_ai::fetch::{FetchPolicy, GuardedResolver, innermost, refusal_for, refusal_in};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
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

pub struct WebhookClient {
    client: reqwest::Client,
    policy: FetchPolicy,
}

impl WebhookClient {
    pub fn new(allow_loopback: bool, allow_private: bool) -> Result<Self, PostError> {
        let policy = FetchPolicy {
            allow_loopback,
            allow_private,
            timeout: TIMEOUT,
            user_agent: concat!("KalTalk-Webhooks/", env!("CARGO_PKG_VERSION")).to_owned(),
            ..FetchPolicy::default()
        };
        let client = reqwest::Client::builder()
            .user_agent(policy.user_agent.clone())
            // A proxy would resolve names itself, out of the guard's sight.
            .no_proxy()
            .dns_resolver(GuardedResolver::new(policy.clone()))
            // A redirect is an answer, not a delivery: following it could lead the signed
            // body anywhere, past the guard's check of the registered URL.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(TIMEOUT)
            .build()
            .map_err(|e| PostError::Network(innermost(&e)))?;
        Ok(Self { client, policy })
    }

    /// POSTs `body` as JSON with `headers`; returns the response status, whatever it is.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: String,
    ) -> Result<u16, PostError> {
        let url = Url::parse(url).map_err(|e| PostError::Refused(format!("{url}: {e}")))?;
        if let Some(why) = refusal_for(&url, &self.policy) {
            return Err(PostError::Refused(why));
        }
        let mut map = HeaderMap::new();
        map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
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
        Ok(response.status().as_u16())
    }
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
        let client = WebhookClient::new(false, false).expect("client");
        let refused = client
            .post("http://127.0.0.1:9/hook", &[], "{}".into())
            .await;
        assert_eq!(
            refused,
            Err(PostError::Refused(
                "127.0.0.1 is a loopback address".to_owned()
            ))
        );
        let private = client.post("http://10.1.2.3/hook", &[], "{}".into()).await;
        assert!(matches!(private, Err(PostError::Refused(_))), "{private:?}");
        let scheme = client.post("ftp://example.com/", &[], "{}".into()).await;
        assert!(matches!(scheme, Err(PostError::Refused(_))), "{scheme:?}");
    }
}
