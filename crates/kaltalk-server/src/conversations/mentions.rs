//! @mentions in private notes, on the inbox's side: the teammates the composer's `@` list
//! offers, the ids it sends back as a hint, and the highlighted names in the timeline
//! (who is mentioned is decided by the store when the note is written).

use kaltalk_core::{UserId, mention};
use kaltalk_store::Member;
use kaltalk_store::messages::Message;
use serde::Serialize;

/// The most picked ids a note's hint is read for (more would be someone else's form).
const MAX_PICKED: usize = 50;

/// A teammate as the composer's `@` list shows them.
#[derive(Serialize)]
pub struct Teammate<'a> {
    pub id: UserId,
    pub name: &'a str,
    pub email: &'a str,
}

/// Everyone the composer can mention: the organization's members.
pub fn teammates(members: &[Member]) -> Vec<Teammate<'_>> {
    members
        .iter()
        .map(|m| Teammate {
            id: m.user_id,
            name: &m.name,
            email: &m.email,
        })
        .collect()
}

/// The ids the composer says were picked (separated by spaces or commas). Anything that is
/// not an id is dropped, never refused: the note matters more than the hint, and the store
/// checks each one against the members anyway.
pub fn picked(input: Option<&str>) -> Vec<UserId> {
    let mut ids: Vec<UserId> = Vec::new();
    for id in input
        .unwrap_or_default()
        .split([' ', ',', '\n'])
        .filter_map(|token| token.trim().parse().ok())
    {
        if ids.len() >= MAX_PICKED {
            break;
        }
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// A person a note mentions, as its text marks them.
pub struct Mark {
    pub user: UserId,
    pub name: String,
    /// The agent reading the note.
    pub me: bool,
}

/// The people `message` mentions (its `metadata.mentions`) who are still members, by
/// their current names.
pub fn marks(message: &Message, members: &[Member], viewer: Option<UserId>) -> Vec<Mark> {
    let Some(ids) = message
        .metadata
        .as_ref()
        .and_then(|m| m.0.get("mentions"))
        .and_then(|m| m.as_array())
    else {
        return Vec::new();
    };
    ids.iter()
        .filter_map(|id| id.as_str()?.parse::<UserId>().ok())
        .filter_map(|id| members.iter().find(|m| m.user_id == id))
        .map(|m| Mark {
            user: m.user_id,
            name: m.name.clone(),
            me: viewer == Some(m.user_id),
        })
        .collect()
}

/// Writes a run of a note's text, escaped, with each `@Name` of `marks` in a
/// `span.mention` (`.mention-me` for the reader); for `kaltalk_core::format::to_html_with`.
pub fn write_marked(text: &str, marks: &[Mark], out: &mut String) {
    let people: Vec<(UserId, &str)> = marks.iter().map(|m| (m.user, m.name.as_str())).collect();
    let mut written = 0;
    for found in mention::find(text, &people) {
        let me = marks.iter().any(|m| m.me && found.people.contains(&m.user));
        kaltalk_core::format::escape_into(&text[written..found.start], out);
        out.push_str(if me {
            "<span class=\"mention mention-me\">"
        } else {
            "<span class=\"mention\">"
        });
        kaltalk_core::format::escape_into(&text[found.start..found.end], out);
        if me {
            out.push_str("<span class=\"sr-only\"> (you)</span>");
        }
        out.push_str("</span>");
        written = found.end;
    }
    kaltalk_core::format::escape_into(&text[written..], out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marked_names_are_escaped_and_the_readers_own_stands_out() {
        let (grace, evil) = (UserId::new(), UserId::new());
        let marks = [
            Mark {
                user: grace,
                name: "Grace".into(),
                me: true,
            },
            Mark {
                user: evil,
                name: "<script>x</script>".into(),
                me: false,
            },
        ];
        let html = kaltalk_core::format::to_html_with(
            "**@Grace** & @<script>x</script>, not @Lin <b>",
            &mut |text, out| write_marked(text, &marks, out),
        );
        assert_eq!(
            html,
            "<p><strong><span class=\"mention mention-me\">@Grace\
             <span class=\"sr-only\"> (you)</span></span></strong> &amp; \
             <span class=\"mention\">@&lt;script&gt;x&lt;/script&gt;</span>, not @Lin &lt;b&gt;</p>"
        );
    }

    #[test]
    fn a_hint_keeps_ids_only() {
        let (a, b) = (UserId::new(), UserId::new());
        let input = format!("{a} nonsense,{b} {a} <script>");
        assert_eq!(picked(Some(&input)), [a, b]);
        assert_eq!(picked(None), []);
    }
}
