//! Who a widget visitor is, without asking any third party: browser and OS from the user
//! agent (uap-core rules, compiled once on first use), the client address (forwarded
//! headers honoured only from configured proxies) and the country a trusted proxy reports
//! or a local MaxMind DB file gives.

use std::net::IpAddr;
use std::path::Path;
use std::sync::OnceLock;

use axum::http::HeaderMap;
use axum::http::header::USER_AGENT;
use kaltalk_core::chat::VisitorDetails;
use serde::Deserialize;
use ua_parser::{Regexes, os, user_agent};

/// uap-core's browser and OS rules (Apache-2.0, see `data/uap-core-LICENSE.txt`), as JSON.
const UAP_RULES: &str = include_str!("../data/uap-regexes.json");

struct UserAgentParser {
    browsers: user_agent::Extractor<'static>,
    systems: os::Extractor<'static>,
}

fn parser() -> Option<&'static UserAgentParser> {
    static PARSER: OnceLock<Option<UserAgentParser>> = OnceLock::new();
    PARSER
        .get_or_init(|| {
            let build = || -> Result<UserAgentParser, Box<dyn std::error::Error>> {
                let rules: Regexes<'static> = serde_json::from_str(UAP_RULES)?;
                Ok(UserAgentParser {
                    browsers: user_agent::Builder::new()
                        .push_all(rules.user_agent_parsers)?
                        .build()?,
                    systems: os::Builder::new().push_all(rules.os_parsers)?.build()?,
                })
            };
            build()
                .map_err(|err| tracing::error!(error = %err, "user agent rules did not load"))
                .ok()
        })
        .as_ref()
}

/// Browser, OS and device type of a user agent string.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Software {
    pub browser: Option<String>,
    pub browser_version: Option<String>,
    pub os: Option<String>,
    pub os_version: Option<String>,
    pub device_type: Option<String>,
}

fn version(parts: &[Option<&str>]) -> Option<String> {
    let parts: Vec<&str> = parts.iter().map_while(|p| *p).collect();
    (!parts.is_empty()).then(|| parts.join("."))
}

pub fn parse_user_agent(ua: &str) -> Software {
    let Some(parser) = parser() else {
        return Software::default();
    };
    let browser = parser.browsers.extract(ua).filter(|b| b.family != "Other");
    let system = parser.systems.extract(ua).filter(|o| o.os != "Other");
    let lower = ua.to_ascii_lowercase();
    let device_type =
        if lower.contains("bot") || lower.contains("spider") || lower.contains("crawl") {
            "bot"
        } else if lower.contains("ipad")
            || lower.contains("tablet")
            || (lower.contains("android") && !lower.contains("mobile"))
        {
            "tablet"
        } else if lower.contains("mobi") || lower.contains("iphone") {
            "mobile"
        } else {
            "desktop"
        };
    Software {
        browser_version: browser.as_ref().and_then(|b| version(&[b.major, b.minor])),
        browser: browser.map(|b| b.family.into_owned()),
        os_version: system
            .as_ref()
            .and_then(|o| version(&[o.major.as_deref(), o.minor.as_deref(), o.patch.as_deref()])),
        os: system.map(|o| o.os.into_owned()),
        device_type: Some(device_type.to_owned()),
    }
}

/// An address range in CIDR notation (`10.0.0.0/8`, `::1/128`, or a bare address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s.split_once('/').unwrap_or((s, ""));
        let network: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR range"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            max
        } else {
            prefix
                .parse()
                .map_err(|_| format!("{s:?}: bad prefix length"))?
        };
        if prefix > max {
            return Err(format!("{s:?}: prefix longer than {max}"));
        }
        Ok(Cidr { network, prefix })
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(_), IpAddr::V4(ip)) => self.contains(IpAddr::V6(ip.to_ipv6_mapped())),
            (IpAddr::V4(_), IpAddr::V6(ip)) => ip
                .to_ipv4_mapped()
                .is_some_and(|v4| self.contains(IpAddr::V4(v4))),
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let whole = usize::from(bits / 8);
    let rest = bits % 8;
    a[..whole] == b[..whole] && (rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0)
}

/// The visitor's address: the peer's, unless the peer is a trusted proxy, in which case
/// the last address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    forwarded
        .split(',')
        .rev()
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .find(|ip| !is_trusted(*ip))
        .unwrap_or(peer)
}

/// A two-letter country code, upper-cased; `XX` (a proxy's "unknown") is none.
fn country_code(code: &str) -> Option<String> {
    let code = code.trim().to_ascii_uppercase();
    (code.len() == 2 && code.chars().all(|ch| ch.is_ascii_alphabetic()) && code != "XX")
        .then_some(code)
}

/// A country database in MaxMind DB format (GeoLite2-Country, GeoIP2-Country, DB-IP's
/// country file), held in memory: lookups never leave the process.
pub struct GeoIp {
    reader: maxminddb::Reader<Vec<u8>>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("database_type", &self.database_type())
            .finish_non_exhaustive()
    }
}

impl GeoIp {
    /// Reads the whole file; fails if it is missing or not a MaxMind DB.
    pub fn open(path: &Path) -> Result<Self, maxminddb::MaxMindDbError> {
        Ok(Self {
            reader: maxminddb::Reader::open_readfile(path)?,
        })
    }

    /// A database already in memory (tests build one with `testing::country_mmdb`).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, maxminddb::MaxMindDbError> {
        Ok(Self {
            reader: maxminddb::Reader::from_source(bytes)?,
        })
    }

    /// What the file says it is, e.g. `GeoLite2-Country`.
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// The ISO 3166-1 alpha-2 code of the country `ip` is in, when the database knows.
    pub fn country(&self, ip: IpAddr) -> Option<String> {
        // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; the database files
        // them under the IPv4 address.
        let ip = ip.to_canonical();
        if !is_public(ip) {
            return None;
        }
        let code = self
            .reader
            .lookup(ip)
            .and_then(|found| found.decode_path::<&str>(&maxminddb::path!["country", "iso_code"]));
        match code {
            Ok(code) => code.and_then(country_code),
            Err(err) => {
                tracing::warn!(error = %err, "country database lookup failed");
                None
            }
        }
    }
}

/// Whether `ip` can be on the internet: loopback, private and link-local addresses have
/// no country.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_private() || v4.is_loopback() || v4.is_link_local() || v4.is_unspecified())
        }
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_unique_local()
                || v6.is_unicast_link_local())
        }
    }
}

/// Everything the server can tell about a visitor from the request alone.
pub fn from_request(
    peer: IpAddr,
    headers: &HeaderMap,
    settings: &crate::config::VisitorsConfig,
    geoip: Option<&GeoIp>,
) -> VisitorDetails {
    let ip = client_ip(peer, headers, &settings.trusted_proxies);
    let from_trusted_proxy = settings.trusted_proxies.iter().any(|c| c.contains(peer));
    let country = settings
        .country_header
        .as_deref()
        .filter(|_| from_trusted_proxy)
        .and_then(|name| headers.get(name))
        .and_then(|v| v.to_str().ok())
        .and_then(country_code)
        .or_else(|| geoip.and_then(|db| db.country(ip)));
    let software = headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(parse_user_agent)
        .unwrap_or_default();
    VisitorDetails {
        browser: software.browser,
        browser_version: software.browser_version,
        os: software.os,
        os_version: software.os_version,
        device_type: software.device_type,
        ip: Some(ip.to_string()),
        country,
        ..VisitorDetails::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn common_browsers_and_systems_are_recognised() {
        let chrome = parse_user_agent(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        );
        assert_eq!(chrome.browser.as_deref(), Some("Chrome"));
        assert_eq!(chrome.browser_version.as_deref(), Some("131.0"));
        assert_eq!(chrome.os.as_deref(), Some("Windows"));
        assert_eq!(chrome.device_type.as_deref(), Some("desktop"));
        let iphone = parse_user_agent(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        );
        assert_eq!(iphone.browser.as_deref(), Some("Mobile Safari"));
        assert_eq!(iphone.os.as_deref(), Some("iOS"));
        assert_eq!(iphone.os_version.as_deref(), Some("17.5"));
        assert_eq!(iphone.device_type.as_deref(), Some("mobile"));
        let firefox = parse_user_agent(
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        );
        assert_eq!(firefox.browser.as_deref(), Some("Firefox"));
        assert_eq!(firefox.os.as_deref(), Some("Linux"));
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().expect("cidr")];
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.7, 10.1.2.3"),
        );
        let proxy: IpAddr = "10.9.9.9".parse().expect("ip");
        let stranger: IpAddr = "198.51.100.1".parse().expect("ip");
        assert_eq!(
            client_ip(proxy, &headers, &trusted),
            "203.0.113.7".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(
            client_ip(stranger, &headers, &trusted),
            stranger,
            "a spoofed header is ignored"
        );
    }

    fn fixture() -> GeoIp {
        let file = crate::testing::country_mmdb(&[
            ("192.0.2.0/24", "FR"),
            ("198.51.100.0/24", "DE"),
            ("10.0.0.0/8", "JP"),
        ])
        .expect("fixture");
        GeoIp::from_bytes(file).expect("a valid database")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn the_country_database_gives_public_addresses_a_country() {
        let geoip = fixture();
        assert_eq!(geoip.country(ip("192.0.2.8")).as_deref(), Some("FR"));
        assert_eq!(geoip.country(ip("198.51.100.8")).as_deref(), Some("DE"));
        assert_eq!(
            geoip.country(ip("::ffff:192.0.2.8")).as_deref(),
            Some("FR"),
            "an IPv4 peer seen through a dual-stack socket"
        );
        assert_eq!(geoip.country(ip("203.0.113.8")), None, "in no network");
        assert_eq!(geoip.country(ip("2001:db8::8")), None);
        assert_eq!(
            geoip.country(ip("10.1.2.3")),
            None,
            "private addresses are not looked up, whatever the file says"
        );
        assert_eq!(geoip.country(ip("127.0.0.1")), None);
    }

    #[test]
    fn a_trusted_country_header_wins_over_the_database() {
        let geoip = fixture();
        let settings = crate::config::VisitorsConfig {
            trusted_proxies: vec!["10.0.0.0/8".parse().expect("cidr")],
            country_header: Some("cf-ipcountry".into()),
            geoip_database: None,
        };
        let proxy = ip("10.9.9.9");
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("192.0.2.8"));
        let looked_up = from_request(proxy, &headers, &settings, Some(&geoip));
        assert_eq!(looked_up.ip.as_deref(), Some("192.0.2.8"));
        assert_eq!(looked_up.country.as_deref(), Some("FR"));

        headers.insert("cf-ipcountry", HeaderValue::from_static("be"));
        let from_header = from_request(proxy, &headers, &settings, Some(&geoip));
        assert_eq!(from_header.country.as_deref(), Some("BE"));

        headers.insert("cf-ipcountry", HeaderValue::from_static("XX"));
        let unknown_to_proxy = from_request(proxy, &headers, &settings, Some(&geoip));
        assert_eq!(unknown_to_proxy.country.as_deref(), Some("FR"));

        let stranger = from_request(ip("198.51.100.1"), &headers, &settings, Some(&geoip));
        assert_eq!(
            stranger.country.as_deref(),
            Some("DE"),
            "an untrusted peer's headers are ignored; its own address is looked up"
        );
        let without_database = from_request(ip("198.51.100.1"), &headers, &settings, None);
        assert_eq!(without_database.country, None);
    }

    #[test]
    fn cidr_parsing_and_matching() {
        let net: Cidr = "192.168.0.0/16".parse().expect("cidr");
        assert!(net.contains("192.168.4.5".parse().expect("ip")));
        assert!(!net.contains("192.169.0.1".parse().expect("ip")));
        let one: Cidr = "::1".parse().expect("cidr");
        assert!(one.contains("::1".parse().expect("ip")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nope".parse::<Cidr>().is_err());
    }
}
