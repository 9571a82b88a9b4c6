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
    /// Whether an agent takes conversations now: `online` (auto-assignment picks them),
    /// `busy` (signed in, taking none) or `offline`. Set by the agent, kept on the server.
    Availability { Online => "online", Busy => "busy", Offline => "offline" }
);

impl Availability {
    /// The word a person reads: "Online", "Busy", "Offline".
    pub fn label(self) -> &'static str {
        match self {
            Self::Online => "Online",
            Self::Busy => "Busy",
            Self::Offline => "Offline",
        }
    }
}
text_enum!(
    /// Why a member is told about a conversation: it is new in their team (or, with no
    /// team, their organization), it was assigned to them, the bot handed it over to
    /// them, its customer wrote again while it is theirs, a teammate mentioned them, or
    /// its customer has waited longer for a reply than its inbox allows.
    NotificationReason {
        NewConversation => "new_conversation",
        Assigned => "assigned",
        HandedOver => "handed_over",
        NewMessage => "new_message",
        Mentioned => "mentioned",
        Waiting => "waiting",
    }
);

impl NotificationReason {
    /// What the notification says, after the customer's name ("Ada: …").
    pub fn headline(self) -> &'static str {
        match self {
            Self::NewConversation => "New conversation",
            Self::Assigned => "Assigned to you",
            Self::HandedOver => "The bot handed it over",
            Self::NewMessage => "New message",
            Self::Mentioned => "You were mentioned in a note",
            Self::Waiting => "Waiting for a reply",
        }
    }

    /// Someone waits for a person right now (a handover, a wait past the inbox's limit):
    /// pushes ask for high priority.
    pub fn is_urgent(self) -> bool {
        matches!(self, Self::HandedOver | Self::Waiting)
    }

    /// The choice in the member's settings: "tell me about …".
    pub fn setting(self) -> &'static str {
        match self {
            Self::NewConversation => "New conversations in my team (or, with no team, anywhere)",
            Self::Assigned => "Conversations assigned to me",
            Self::HandedOver => "Conversations the bot hands over",
            Self::NewMessage => "New messages in my conversations",
            Self::Mentioned => "Mentions of me in private notes",
            Self::Waiting => "Conversations waiting too long for a reply (as each inbox sets)",
        }
    }
}
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
    /// The name the widget's header shows visitors, e.g. "Acme Support". Empty: the
    /// organization's name. Not the inbox's own name, which is for the team.
    pub company_name: String,
    pub position: LauncherPosition,
    /// Hosts whose pages may embed the widget (`example.com` also allows its subdomains),
    /// each with an optional port (`localhost:8080` allows that port only). Empty: any site.
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
            company_name: String::new(),
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
    /// Whether a page on `host` may use the widget (any port of it).
    pub fn allows_host(&self, host: &str) -> bool {
        self.allows(host, None)
    }

    /// Whether a page on `host`, served on `port` (the origin's port, its scheme's
    /// default when the URL names none), may use the widget. An entry with a port allows
    /// that port only; one without allows every port, as entries saved before ports were
    /// kept did.
    pub fn allows(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allowed_domains.is_empty()
            || self.allowed_domains.iter().any(|entry| {
                let entry = entry.trim().trim_start_matches("*.").to_ascii_lowercase();
                let (domain, wanted) = match entry.rsplit_once(':') {
                    Some((domain, p)) => match p.parse::<u16>() {
                        Ok(p) => (domain.to_owned(), Some(p)),
                        Err(_) => return false,
                    },
                    None => (entry, None),
                };
                let host_matches = host == domain || host.ends_with(&format!(".{domain}"));
                host_matches && (wanted.is_none() || wanted == port)
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
    fn an_allowed_website_with_a_port_allows_that_port_only() {
        let settings = WidgetSettings {
            allowed_domains: vec!["localhost:8080".into(), "example.com".into()],
            ..Default::default()
        };
        assert!(settings.allows("localhost", Some(8080)));
        assert!(!settings.allows("localhost", Some(3000)));
        assert!(!settings.allows("localhost", None));
        assert!(settings.allows("example.com", Some(443)));
        assert!(settings.allows("shop.example.com", Some(8443)));
    }

    #[test]
    fn colors_are_hex() {
        assert!(WidgetSettings::valid_color("#A1b2C3"));
        assert!(!WidgetSettings::valid_color("red"));
        assert!(!WidgetSettings::valid_color("#12345"));
    }
}
