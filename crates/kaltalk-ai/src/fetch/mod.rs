//! Outbound HTTP for the knowledge base (and webhooks): one client that refuses to reach
//! loopback, private and link-local addresses unless configured to, caps what it reads
//! and reports why a fetch failed in words an operator understands.

mod guard;

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use reqwest::redirect;
use url::{Host, Url};

pub use guard::is_forbidden;

/// Redirect hops followed before a fetch gives up.
pub const MAX_REDIRECTS: usize = 5;

/// What outbound fetches may reach and how much they may read.
#[derive(Clone, Debug)]
pub struct FetchPolicy {
    /// Allow 127.0.0.0/8 and ::1 (tests, a docs site on the same host).
    pub allow_loopback: bool,
    /// Allow RFC 1918, carrier-grade NAT and unique-local addresses (an intranet).
    /// Link-local addresses (cloud metadata) stay refused either way.
    pub allow_private: bool,
    /// Largest body read; a longer one fails the fetch.
    pub max_bytes: u64,
    /// For the whole fetch: connecting, redirects and reading the body.
    pub timeout: Duration,
    pub user_agent: String,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        Self {
            allow_loopback: false,
            allow_private: false,
            max_bytes: 5 * 1024 * 1024,
            timeout: Duration::from_secs(20),
            user_agent: concat!("KalTalk/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// A response, whatever its status: the caller decides what a 404 means to it.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// Where the last redirect led.
    pub final_url: Url,
    pub status: u16,
    /// The `Content-Type` header as sent.
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Fetched {
    /// The media type without parameters, lowercased (`text/html`).
    pub fn mime(&self) -> Option<String> {
        let value = self.content_type.as_deref()?;
        let essence = value.split(';').next().unwrap_or_default().trim();
        (!essence.is_empty()).then(|| essence.to_ascii_lowercase())
    }

    pub fn is_html(&self) -> bool {
        matches!(
            self.mime().as_deref(),
            Some("text/html" | "application/xhtml+xml")
        )
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The guard said no: the address, the scheme or a redirect target.
    #[error("refused: {0}")]
    Refused(String),
    #[error("larger than {}", human_size(*.limit))]
    TooLarge { limit: u64 },
    #[error("timed out after {}", human_duration(*.0))]
    TimedOut(Duration),
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("not a web address: {0}")]
    BadUrl(String),
    /// Connection, TLS or protocol failures, with the innermost cause.
    #[error("{0}")]
    Network(String),
}

/// A cloneable HTTP client with the SSRF guard built in; clones share connections.
#[derive(Clone, Debug)]
pub struct Fetcher {
    client: reqwest::Client,
    policy: FetchPolicy,
}

impl Fetcher {
    pub fn new(policy: FetchPolicy) -> Result<Self, FetchError> {
        let redirect_policy = policy.clone();
        let client = reqwest::Client::builder()
            .user_agent(policy.user_agent.clone())
            // A proxy would resolve names itself, out of the guard's sight.
            .no_proxy()
            .dns_resolver(GuardedResolver::new(policy.clone()))
            .redirect(redirect::Policy::custom(move |attempt| {
                // `previous` holds the first URL and every hop already taken.
                if attempt.previous().len() > MAX_REDIRECTS {
                    return attempt.error(TooManyHops);
                }
                match check_url(attempt.url(), &redirect_policy) {
                    Ok(()) => attempt.follow(),
                    Err(why) => {
                        let target = attempt.url().to_string();
                        attempt.error(Refusal(format!("redirect to {target} ({why})")))
                    }
                }
            }))
            .connect_timeout(policy.timeout)
            .build()
            .map_err(|e| FetchError::Network(innermost(&e)))?;
        Ok(Self { client, policy })
    }

    pub fn policy(&self) -> &FetchPolicy {
        &self.policy
    }

    /// GET `url`, following up to [`MAX_REDIRECTS`] guarded redirects, reading at most
    /// `max_bytes` of body within `timeout`.
    pub async fn fetch(&self, url: &Url) -> Result<Fetched, FetchError> {
        check_url(url, &self.policy).map_err(|why| match why {
            UrlProblem::Refused(refusal) => FetchError::Refused(refusal),
            UrlProblem::Bad(reason) => FetchError::BadUrl(reason),
        })?;
        let timeout = self.policy.timeout;
        tokio::time::timeout(timeout, self.fetch_unbounded(url))
            .await
            .map_err(|_| FetchError::TimedOut(timeout))?
    }

    async fn fetch_unbounded(&self, url: &Url) -> Result<Fetched, FetchError> {
        let mut response = self
            .client
            .get(url.clone())
            .header(
                ACCEPT,
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            )
            .send()
            .await
            .map_err(|e| self.classify(&e))?;
        let limit = self.policy.max_bytes;
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(FetchError::TooLarge { limit });
        }
        let final_url = response.url().clone();
        let status = response.status().as_u16();
        // reqwest hands back, unfollowed, a redirect to a scheme it can't fetch: say why.
        if response.status().is_redirection()
            && let Some(target) = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| final_url.join(l).ok())
            && let Err(why) = check_url(&target, &self.policy)
        {
            return Err(FetchError::Refused(format!("redirect to {target} ({why})")));
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Content-Length can lie or be absent: count what actually arrives.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(&e))? {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(FetchError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            final_url,
            status,
            content_type,
            body,
        })
    }

    fn classify(&self, error: &reqwest::Error) -> FetchError {
        if let Some(refusal) = refusal_in(error) {
            return FetchError::Refused(refusal);
        }
        let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
        while let Some(e) = cause {
            if e.is::<TooManyHops>() {
                return FetchError::TooManyRedirects;
            }
            cause = e.source();
        }
        if error.is_timeout() {
            return FetchError::TimedOut(self.policy.timeout);
        }
        FetchError::Network(innermost(error))
    }
}

/// Checks what can be checked before connecting: the scheme, and IP-literal hosts, which
/// never reach the resolver.
fn check_url(url: &Url, policy: &FetchPolicy) -> Result<(), UrlProblem> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlProblem::Refused(format!(
            "{}: only http and https are fetched",
            url.scheme()
        )));
    }
    let ip = match url.host() {
        None => return Err(UrlProblem::Bad(format!("{url} has no host"))),
        Some(Host::Domain(_)) => return Ok(()),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
    };
    match is_forbidden(ip, policy) {
        Some(why) => Err(UrlProblem::Refused(format!("{ip} is {why}"))),
        None => Ok(()),
    }
}

enum UrlProblem {
    Refused(String),
    Bad(String),
}

impl std::fmt::Display for UrlProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(why) | Self::Bad(why) => f.write_str(why),
        }
    }
}

/// Carries the guard's reason through reqwest's error chain so `classify` finds it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refusal(String);

#[derive(Debug, thiserror::Error)]
#[error("too many redirects")]
struct TooManyHops;

/// Resolves names with the system resolver and keeps only the addresses the policy
/// allows, so a name pointing at 10.0.0.5 is refused however the URL spelled it. Other
/// outbound clients (webhooks) install it too; [`refusal_in`] reads its reason back.
pub struct GuardedResolver {
    policy: FetchPolicy,
}

impl GuardedResolver {
    pub fn new(policy: FetchPolicy) -> Self {
        Self { policy }
    }
}

/// The guard's reason, when it is what failed `error` (a refused address or redirect).
pub fn refusal_in(error: &reqwest::Error) -> Option<String> {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(refusal) = e.downcast_ref::<Refusal>() {
            return Some(refusal.0.clone());
        }
        cause = e.source();
    }
    None
}

/// Why the guard refuses `url` before connecting (its scheme, or an IP-literal host the
/// policy forbids), if it does.
pub fn refusal_for(url: &Url, policy: &FetchPolicy) -> Option<String> {
    check_url(url, policy).err().map(|why| why.to_string())
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // One answer for a name that does not resolve, resolves to nothing, or only to
            // forbidden addresses: the person who typed the URL (an organization's admin)
            // must not learn from our errors which internal names exist or what they
            // resolve to. The operator's log keeps the detail.
            let refuse = || {
                Box::new(Refusal(format!(
                    "{host} does not resolve to a public internet address"
                ))) as Box<dyn StdError + Send + Sync>
            };
            let found: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), 0)).await {
                Ok(found) => found.collect(),
                Err(err) => {
                    tracing::info!(%host, error = %err, "outbound fetch: the name did not resolve");
                    return Err(refuse());
                }
            };
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
                match refused {
                    Some((ip, why)) => {
                        tracing::info!(%host, %ip, why, "outbound fetch refused after DNS");
                    }
                    None => tracing::info!(%host, "outbound fetch: the name has no addresses"),
                }
                return Err(refuse());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The deepest cause's text: reqwest's own top-level message ("error sending request")
/// says less than hyper's or the OS's.
pub fn innermost(error: &(dyn StdError + 'static)) -> String {
    let mut last = error;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

fn human_size(bytes: u64) -> String {
    const MB: u64 = 1024 * 1024;
    const KB: u64 = 1024;
    if bytes >= MB && bytes.is_multiple_of(MB) {
        format!("{} MB", bytes / MB)
    } else if bytes >= KB && bytes.is_multiple_of(KB) {
        format!("{} KB", bytes / KB)
    } else {
        format!("{bytes} bytes")
    }
}

fn human_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_well() {
        assert_eq!(
            FetchError::TooLarge {
                limit: 5 * 1024 * 1024
            }
            .to_string(),
            "larger than 5 MB"
        );
        assert_eq!(
            FetchError::TooLarge { limit: 1000 }.to_string(),
            "larger than 1000 bytes"
        );
        assert_eq!(
            FetchError::TimedOut(Duration::from_secs(20)).to_string(),
            "timed out after 20 s"
        );
        assert_eq!(
            FetchError::TimedOut(Duration::from_millis(300)).to_string(),
            "timed out after 300 ms"
        );
    }

    #[test]
    fn literal_hosts_and_schemes_are_checked_before_connecting() {
        let policy = FetchPolicy::default();
        let check = |u: &str| {
            let url = Url::parse(u).unwrap_or_else(|_| panic!("bad test url {u}"));
            check_url(&url, &policy).map_err(|p| p.to_string())
        };
        assert_eq!(
            check("http://10.0.0.5/admin"),
            Err("10.0.0.5 is a private address".to_owned())
        );
        // The URL parser normalises the odd spellings of 127.0.0.1 before we see them.
        for sneaky in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://[::ffff:7f00:1]/",
        ] {
            assert!(
                check(sneaky).is_err_and(|e| e.ends_with("is a loopback address")),
                "{sneaky}"
            );
        }
        assert_eq!(
            check("file:///etc/passwd"),
            Err("file: only http and https are fetched".to_owned())
        );
        assert_eq!(check("https://example.com/"), Ok(()));
        assert_eq!(check("http://8.8.8.8/"), Ok(()));
    }
}
