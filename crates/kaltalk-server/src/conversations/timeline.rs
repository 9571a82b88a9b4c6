//! What the conversation view shows, in order: day separators, messages (with who wrote
//! them, their avatar, their text folded where an email is long or quotes its history) and
//! compact lines for what happened to the conversation (assigned, resolved, handed over).
//! Built once here so the page and its live refreshes render the same thing.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use kaltalk_core::chat::{ConversationStatus, Handling, MessageKind, SenderKind};
use kaltalk_core::event::{ConversationUpdated, EventPayload};
use kaltalk_core::{MessageId, UserId};
use kaltalk_store::messages::Message;
use kaltalk_store::{Event, Member};

/// An email longer than this (in lines) shows its start and folds the rest behind
/// "Show more".
const FOLD_LINES: usize = 30;
/// The same in characters, for a long email written as few long lines.
const FOLD_CHARS: usize = 3_000;

pub enum Item<'a> {
    Day(String),
    Message(Box<MessageView<'a>>),
    Line(Line),
}

/// A compact line in the timeline ("Assigned to Olivia").
pub struct Line {
    pub icon: &'static str,
    pub text: String,
    pub at: DateTime<Utc>,
}

pub struct MessageView<'a> {
    pub message: &'a Message,
    pub sender: String,
    pub avatar: Avatar,
    /// The text shown at once.
    pub text: String,
    /// The rest of a long email, behind "Show more".
    pub more: Option<String>,
    /// An email's quoted history ("On … wrote:" and `>` lines), behind "Show quoted text".
    pub quoted: Option<String>,
    pub citations: Vec<Citation>,
    /// Who a note @mentions, highlighted in its text.
    pub mentions: Vec<super::mentions::Mark>,
}

pub struct Citation {
    pub title: String,
    pub url: Option<String>,
}

/// Initials on a colour picked from the name (the same person always gets the same one).
pub struct Avatar {
    pub initials: String,
    pub colour: String,
    pub bot: bool,
}

impl Avatar {
    pub fn of(name: &str) -> Self {
        let initials: String = name
            .split_whitespace()
            .filter_map(|w| w.chars().find(|c| c.is_alphanumeric()))
            .take(2)
            .collect();
        let hash = name
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        Self {
            initials: if initials.is_empty() {
                "?".into()
            } else {
                initials.to_uppercase()
            },
            colour: format!("c{}", hash % 8),
            bot: false,
        }
    }

    fn bot() -> Self {
        Self {
            initials: String::new(),
            colour: "bot".into(),
            bot: true,
        }
    }
}

/// Who wrote a message, as the timeline names them, and the full text of the emails
/// behind email messages (the message keeps the new words; the history is in the email).
pub struct Context<'a> {
    pub contact: &'a str,
    pub bot: &'a str,
    pub email_texts: &'a HashMap<MessageId, String>,
    /// The agent reading the timeline.
    pub viewer: Option<UserId>,
}

impl Context<'_> {
    fn of(&self, message: &Message) -> String {
        match (message.sender_kind, message.sender_name.as_deref()) {
            (SenderKind::Contact, Some(name)) => name.to_owned(),
            (SenderKind::Contact, None) => self.contact.to_owned(),
            (SenderKind::Agent, Some(name)) => name.to_owned(),
            (SenderKind::Agent, None) => "A former member".into(),
            // The out-of-office reply is the server's, whether or not the bot is on.
            (SenderKind::Bot, _) if message.is_automatic() => "Automatic reply".into(),
            (SenderKind::Bot, _) => self.bot.to_owned(),
            (SenderKind::System, _) => "KalTalk".into(),
        }
    }
}

/// The conversation's timeline: messages and the conversation's own events, oldest first,
/// with a separator at each new day.
pub fn build<'a>(
    messages: &'a [Message],
    events: &[Event],
    members: &[Member],
    names: &Context,
    now: DateTime<Utc>,
) -> Vec<Item<'a>> {
    let mut entries: Vec<(DateTime<Utc>, Item<'a>)> = Vec::new();
    for message in messages {
        // The server's own notes ("Handed over to the team: …") are events, not messages.
        if message.sender_kind == SenderKind::System && message.kind != MessageKind::Text {
            entries.push((
                message.created_at,
                Item::Line(Line {
                    icon: "hand",
                    text: message.text.clone(),
                    at: message.created_at,
                }),
            ));
            continue;
        }
        entries.push((
            message.created_at,
            Item::Message(Box::new(view(message, members, names))),
        ));
    }
    for event in events {
        if let Some(line) = line(event, members) {
            entries.push((event.created_at, Item::Line(line)));
        }
    }
    // Stable: a message and the event its write caused keep their order.
    entries.sort_by_key(|(at, _)| *at);
    let mut items = Vec::with_capacity(entries.len() + 4);
    let mut day = None;
    for (at, item) in entries {
        if day != Some(at.date_naive()) {
            day = Some(at.date_naive());
            items.push(Item::Day(day_label(at, now)));
        }
        items.push(item);
    }
    items
}

fn day_label(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let days = (now.date_naive() - at.date_naive()).num_days();
    match days {
        0 => "Today".into(),
        1 => "Yesterday".into(),
        2..=6 => at.format("%A").to_string(),
        _ if at.format("%Y").to_string() == now.format("%Y").to_string() => {
            at.format("%A %-d %B").to_string()
        }
        _ => at.format("%-d %B %Y").to_string(),
    }
}

fn view<'a>(message: &'a Message, members: &[Member], names: &Context) -> MessageView<'a> {
    let sender = names.of(message);
    let avatar = if message.sender_kind == SenderKind::Bot {
        Avatar::bot()
    } else {
        Avatar::of(&sender)
    };
    let (body, quoted) = if message.is_email() {
        let (own, quoted) = split_quoted(&message.text);
        // Intake keeps only the new words in the message; the history is in the email.
        let history = || {
            names
                .email_texts
                .get(&message.id)
                .and_then(|full| split_quoted(full).1)
        };
        (own, quoted.or_else(history))
    } else {
        (message.text.as_str(), None)
    };
    let (text, more) = fold(body);
    MessageView {
        message,
        sender,
        avatar,
        text,
        more,
        quoted: quoted.map(str::to_owned),
        citations: citations(message),
        mentions: super::mentions::marks(message, members, names.viewer),
    }
}

/// An email's own words and the history it quotes: from the first "On … wrote:" line or
/// the first run of `>` lines that goes on to the end.
fn split_quoted(text: &str) -> (&str, Option<&str>) {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        let starts_quote = (trimmed.starts_with("On ") && trimmed.ends_with("wrote:"))
            || (trimmed.starts_with('>')
                && text[offset..].lines().all(|l| {
                    let l = l.trim();
                    l.is_empty() || l.starts_with('>')
                }));
        if starts_quote && offset > 0 {
            let own = text[..offset].trim_end();
            let quoted = text[offset..].trim();
            return (own, (!quoted.is_empty()).then_some(quoted));
        }
        offset += line.len();
    }
    (text, None)
}

/// A long text's start and the rest, cut at a line end.
fn fold(text: &str) -> (String, Option<String>) {
    let lines = text.lines().count();
    if lines <= FOLD_LINES && text.chars().count() <= FOLD_CHARS {
        return (text.to_owned(), None);
    }
    let mut cut = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i >= FOLD_LINES / 2 || cut + line.len() > FOLD_CHARS / 2 {
            break;
        }
        cut += line.len();
    }
    if cut == 0 {
        // One very long line: cut at a character boundary.
        cut = text
            .char_indices()
            .nth(FOLD_CHARS / 2)
            .map_or(text.len(), |(i, _)| i);
    }
    let (head, rest) = text.split_at(cut);
    (
        head.trim_end().to_owned(),
        Some(rest.trim_start().to_owned()),
    )
}

fn citations(message: &Message) -> Vec<Citation> {
    let Some(list) = message
        .metadata
        .as_ref()
        .and_then(|m| m.0.get("citations"))
        .and_then(|c| c.as_array())
    else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|c| {
            let title = c.get("title")?.as_str()?.to_owned();
            let url = c
                .get("url")
                .and_then(|u| u.as_str())
                .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                .map(str::to_owned);
            Some(Citation { title, url })
        })
        .collect()
}

/// The line a conversation event shows as, if it shows at all.
fn line(event: &Event, members: &[Member]) -> Option<Line> {
    let Ok(EventPayload::ConversationUpdated(change)) = event.payload() else {
        return None;
    };
    let ConversationUpdated {
        status,
        snoozed_until,
        woke,
        assignee_id,
        handling,
        ..
    } = change;
    let (icon, text) = if let Some(status) = status {
        let text = match status {
            ConversationStatus::Open if woke.is_some() => "Back from snooze".to_owned(),
            ConversationStatus::Open => "Reopened".to_owned(),
            ConversationStatus::Resolved => "Resolved".to_owned(),
            ConversationStatus::Pending => "Marked pending".to_owned(),
            ConversationStatus::Snoozed => match snoozed_until.flatten() {
                Some(until) => format!("Snoozed until {}", until.format("%a %-d %b %H:%M UTC")),
                None => "Snoozed".to_owned(),
            },
        };
        ("check", text)
    } else if let Some(assignee) = assignee_id {
        let text = match assignee {
            Some(id) => format!(
                "Assigned to {}",
                members
                    .iter()
                    .find(|m| m.user_id == id)
                    .map_or("a former member", |m| m.name.as_str())
            ),
            None => "Unassigned".to_owned(),
        };
        ("user", text)
    } else if let Some(handling) = handling {
        match handling {
            Handling::Bot => ("bot", "Handed back to the bot".to_owned()),
            Handling::Human => ("user", "A person took over from the bot".to_owned()),
            Handling::WaitingHuman => return None,
        }
    } else {
        return None;
    };
    Some(Line {
        icon,
        text,
        at: event.created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_history_starts_at_the_attribution_line() {
        let text = "Thanks, that worked.\n\nOn Mon, 1 Dec 2026, Ada wrote:\n> Try again\n> please";
        let (own, quoted) = split_quoted(text);
        assert_eq!(own, "Thanks, that worked.");
        assert_eq!(
            quoted,
            Some("On Mon, 1 Dec 2026, Ada wrote:\n> Try again\n> please")
        );
    }

    #[test]
    fn a_quote_in_the_middle_is_part_of_the_message() {
        let text = "You said:\n> it fails\nand it does not any more.";
        assert_eq!(split_quoted(text), (text, None));
    }

    #[test]
    fn trailing_quoted_lines_fold() {
        let text = "Yes.\n> old\n> older";
        assert_eq!(split_quoted(text), ("Yes.", Some("> old\n> older")));
    }

    #[test]
    fn long_texts_fold_at_a_line_end_and_lose_nothing() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let (head, more) = fold(&text);
        let more = more.expect("folded");
        assert!(head.lines().count() <= FOLD_LINES / 2);
        assert_eq!(format!("{head}\n{more}").trim_end(), text.trim_end());
        let short = "two\nlines";
        assert_eq!(fold(short), (short.to_owned(), None));
    }

    #[test]
    fn one_long_line_folds_at_a_character_boundary() {
        let text = "é".repeat(FOLD_CHARS + 10);
        let (head, more) = fold(&text);
        assert_eq!(
            head.chars().count() + more.expect("folded").chars().count(),
            FOLD_CHARS + 10
        );
    }

    #[test]
    fn avatars_take_two_initials_and_a_stable_colour() {
        let a = Avatar::of("Ada Lovelace");
        assert_eq!(a.initials, "AL");
        assert_eq!(a.colour, Avatar::of("Ada Lovelace").colour);
        assert_eq!(Avatar::of("  ").initials, "?");
        assert_eq!(Avatar::of("émile zola king").initials, "ÉZ");
    }
}
