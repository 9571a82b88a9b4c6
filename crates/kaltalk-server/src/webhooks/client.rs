//! The HTTP client webhook deliveries go out through: a POST behind the same SSRF guard
//! (and the same `knowledge.allow_loopback/allow_private` switches) as the crawler, no
//! redirects followed, a 10 second limit for the whole exchange.

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use kaltalk_ai::fetch::{FetchPolicy, is_forbidden};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use url::{Host, Url};

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
            .dns_resolver(GuardedResolver {
                policy: policy.clone(),
            })
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
        check_url(&url, &self.policy)?;
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

/// The scheme, and IP-literal hosts (which never reach the resolver).
fn check_url(url: &Url, policy: &FetchPolicy) -> Result<(), PostError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(PostError::Refused(format!(
            "{}: only http and https are allowed",
            url.scheme()
        )));
    }
    let ip = match url.host() {
        None => return Err(PostError::Refused(format!("{url} has no host"))),
        Some(Host::Domain(_)) => return Ok(()),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
    };
    match is_forbidden(ip, policy) {
        Some(why) => Err(PostError::Refused(format!("{ip} is {why}"))),
        None => Ok(()),
    }
}

fn classify(error: &reqwest::Error) -> PostError {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(refusal) = e.downcast_ref::<Refusal>() {
            return PostError::Refused(refusal.0.clone());
        }
        cause = e.source();
    }
    if error.is_timeout() {
        return PostError::TimedOut;
    }
    PostError::Network(innermost(error))
}

/// Carries the guard's reason through reqwest's error chain so `classify` finds it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refusal(String);

/// Resolves names with the system resolver and keeps only the addresses the policy
/// allows, so a name pointing at 10.0.0.5 is refused however the URL spelled it.
struct GuardedResolver {
    policy: FetchPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| match is_forbidden(addr.ip(), &policy) {
                    Some(why) => {
                        refused.get_or_insert((addr.ip(), why));
                        false
                    }
                    None => true,
                })
                .collect();
            if allowed.is_empty() {
                let reason = match refused {
                    Some((ip, why)) => format!("{host} resolves to {ip}, which is {why}"),
                    None => format!("{host} has no addresses"),
                };
                return Err(Box::new(Refusal(reason)) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The deepest cause's text: reqwest's top-level message says less than the OS's.
fn innermost(error: &(dyn StdError + 'static)) -> String {
    let mut last = error;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
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
