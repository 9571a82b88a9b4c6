//! The vocabulary of conversations: statuses, who sent a message, what kind it is, and the
//! settings of a web inbox.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)*
                    other => Err(format!(
                        concat!("unknown ", stringify!($name), " {:?}; expected one of: ", $($text, " "),*),
                        other
                    )),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                value.parse()
            }
        }
    };
}

text_enum!(
    /// Where a conversation stands.
    ConversationStatus { Open => "open", Pending => "pending", Resolved => "resolved", Snoozed => "snoozed" }
);
text_enum!(
    /// Who wrote a message.
    SenderKind { Contact => "contact", Agent => "agent", Bot => "bot", System => "system" }
);
text_enum!(
    /// A message the customer sees (`text`), an internal `note`, or an `event` line
    /// ("Olivia resolved the conversation").
    MessageKind { Text => "text", Note => "note", Event => "event" }
);
text_enum!(
    /// Who answers a conversation now: the AI agent, nobody yet (handed over, waiting for
    /// the team), or a person. The server moves it; the model never decides by itself.
    Handling { Bot => "bot", WaitingHuman => "waiting_human", Human => "human" }
);
text_enum!(
    /// The channel an inbox receives from.
    InboxKind { Web => "web", Email => "email", Api => "api" }
);
text_enum!(
    /// Whether a web inbox checks the customer site's signature of its user id.
    IdentityMode { Off => "off", Optional => "optional", Required => "required" }
);
text_enum!(
    /// Which corner the launcher sits in.
    LauncherPosition { Right => "right", Left => "left" }
);

/// A web inbox's widget settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WidgetSettings {
    /// `#rrggbb`.
    pub color: String,
    pub greeting: String,
    pub position: LauncherPosition,
    /// Hosts whose pages may embed the widget (`example.com` also allows its subdomains).
    /// Empty: any site.
    pub allowed_domains: Vec<String>,
    pub prechat_name: bool,
    pub prechat_email: bool,
    pub offline_message: String,
    pub identity: IdentityMode,
}

impl Default for WidgetSettings {
    fn default() -> Self {
        Self {
            color: "#4338ca".into(),
            greeting: "Hi! How can we help?".into(),
            position: LauncherPosition::Right,
            allowed_domains: Vec::new(),
            prechat_name: false,
            prechat_email: false,
            offline_message:
                "We are away right now. Leave a message and we will reply as soon as we can.".into(),
            identity: IdentityMode::Off,
        }
    }
}

impl WidgetSettings {
    /// Whether a page on `host` may use the widget.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allowed_domains.is_empty()
            || self.allowed_domains.iter().any(|domain| {
                let domain = domain.trim().trim_start_matches("*.").to_ascii_lowercase();
                host == domain || host.ends_with(&format!(".{domain}"))
            })
    }

    pub fn valid_color(color: &str) -> bool {
        color.len() == 7
            && color.starts_with('#')
            && color[1..].chars().all(|c| c.is_ascii_hexdigit())
    }
}

text_enum!(
    /// How KalTalk talks to an IMAP server: implicit TLS (port 993), STARTTLS, or plain
    /// (only sensible on loopback).
    ImapSecurity { Tls => "tls", StartTls => "starttls", Plain => "plain" }
);

/// An email inbox's settings (its address has its own column, for lookup).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EmailSettings {
    /// Whether the AI agent answers new email conversations first. Off by default: an
    /// email answer cannot be taken back.
    pub ai_replies: bool,
    /// An existing mailbox to poll, besides mail delivered to the SMTP listener.
    pub imap: Option<ImapSettings>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    pub security: ImapSecurity,
    pub user: String,
    pub password: String,
    #[serde(default = "ImapSettings::default_mailbox")]
    pub mailbox: String,
    /// Seconds between polls.
    #[serde(default = "ImapSettings::default_interval")]
    pub poll_seconds: u32,
}

impl ImapSettings {
    fn default_mailbox() -> String {
        "INBOX".into()
    }

    fn default_interval() -> u32 {
        60
    }
}

impl fmt::Debug for ImapSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.user)
            .field("password", &"[redacted]")
            .field("mailbox", &self.mailbox)
            .field("poll_seconds", &self.poll_seconds)
            .finish()
    }
}

/// An organization's AI agent settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AiSettings {
    /// Whether the bot answers new website conversations first.
    pub enabled: bool,
    pub bot_name: String,
    /// Extra instructions for the model (what to say, what not to).
    pub instructions: String,
    pub tone: String,
    /// The chat model, when an OpenAI-compatible provider is configured.
    pub model: Option<String>,
    pub temperature: f32,
    /// Bot answers in one conversation before it hands over to a person.
    pub max_bot_turns: i32,
    /// Below this retrieval score the bot does not answer; it hands over.
    pub confidence_threshold: f32,
}

impl Default for AiSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            bot_name: "Assistant".into(),
            instructions: String::new(),
            tone: "friendly and concise".into(),
            model: None,
            temperature: 0.2,
            max_bot_turns: 5,
            confidence_threshold: 0.3,
        }
    }
}

/// What we know of a visitor's browser and page, without asking any third party: parsed
/// from the user agent, the connection, and what the widget reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VisitorDetails {
    pub browser: Option<String>,
    pub browser_version: Option<String>,
    pub os: Option<String>,
    pub os_version: Option<String>,
    /// `desktop`, `mobile`, `tablet` or `bot`.
    pub device_type: Option<String>,
    pub ip: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    pub timezone: Option<String>,
    pub language: Option<String>,
    pub page_url: Option<String>,
    pub page_title: Option<String>,
    pub referrer: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for status in ConversationStatus::ALL {
            assert_eq!(
                status.as_str().parse::<ConversationStatus>().ok(),
                Some(*status)
            );
        }
        let err = "closed".parse::<ConversationStatus>().expect_err("unknown");
        assert!(err.contains("open"), "{err}");
    }

    #[test]
    fn allowed_domains_cover_subdomains_only() {
        let settings = WidgetSettings {
            allowed_domains: vec!["example.com".into()],
            ..Default::default()
        };
        assert!(settings.allows_host("example.com"));
        assert!(settings.allows_host("shop.example.com"));
        assert!(!settings.allows_host("badexample.com"));
        assert!(!settings.allows_host("example.com.evil.test"));
        assert!(WidgetSettings::default().allows_host("anything.test"));
    }

    #[test]
    fn colors_are_hex() {
        assert!(WidgetSettings::valid_color("#A1b2C3"));
        assert!(!WidgetSettings::valid_color("red"));
        assert!(!WidgetSettings::valid_color("#12345"));
    }
}
