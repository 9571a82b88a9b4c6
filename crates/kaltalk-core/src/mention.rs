//! `@Name` mentions of teammates in private notes: where a text names which people, read
//! the same way when a note is stored (who is mentioned) and when it is shown (what is
//! highlighted).
//!
//! A mention is `@` at the start of the text or after a character that is not a letter,
//! digit or `_` (so `ada@example.com` mentions nobody), followed by a person's whole name,
//! in any case, and then by the end or a character that is not a letter or digit. Where
//! names overlap ("Grace" and "Grace Hopper") the longest one wins.

use crate::UserId;

/// One `@Name` in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Byte offsets of `@Name` (the `@` included).
    pub start: usize,
    pub end: usize,
    /// Everyone of that name (more than one only when teammates share a name).
    pub people: Vec<UserId>,
}

/// Where `text` mentions one of `people` (their ids and names), in order.
pub fn find(text: &str, people: &[(UserId, &str)]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut previous: Option<char> = None;
    let mut skip_to = 0;
    for (at, c) in text.char_indices() {
        let boundary = !previous.is_some_and(|p| p.is_alphanumeric() || p == '_');
        previous = Some(c);
        if at < skip_to || c != '@' || !boundary {
            continue;
        }
        let rest = &text[at + 1..];
        let mut longest = 0;
        let mut named = Vec::new();
        for (id, name) in people {
            let Some(len) = name_at(rest, name) else {
                continue;
            };
            if len > longest {
                longest = len;
                named.clear();
            }
            if len == longest && !named.contains(id) {
                named.push(*id);
            }
        }
        if longest > 0 {
            let end = at + 1 + longest;
            found.push(Found {
                start: at,
                end,
                people: named,
            });
            skip_to = end;
        }
    }
    found
}

/// The byte length of `name` at the start of `rest` (compared without case), when the
/// name ends there.
fn name_at(rest: &str, name: &str) -> Option<usize> {
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let mut written = rest.char_indices();
    for wanted in name.chars() {
        let (_, got) = written.next()?;
        if !got.to_lowercase().eq(wanted.to_lowercase()) {
            return None;
        }
    }
    let len = written.next().map_or(rest.len(), |(i, _)| i);
    let ends = rest[len..]
        .chars()
        .next()
        .is_none_or(|next| !next.is_alphanumeric());
    ends.then_some(len)
}

/// Who `text` mentions among `people`, each once, in the order first mentioned. Where a
/// name is shared, the ones the writer `picked` in the composer's list are meant (all of
/// them when none was picked); a picked id whose name is not in the text is not a mention.
pub fn resolve(text: &str, people: &[(UserId, &str)], picked: &[UserId]) -> Vec<UserId> {
    let mut mentioned = Vec::new();
    for found in find(text, people) {
        let chosen: Vec<UserId> = found
            .people
            .iter()
            .copied()
            .filter(|id| picked.contains(id))
            .collect();
        let meant = if found.people.len() > 1 && !chosen.is_empty() {
            chosen
        } else {
            found.people
        };
        for id in meant {
            if !mentioned.contains(&id) {
                mentioned.push(id);
            }
        }
    }
    mentioned
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team() -> (UserId, UserId, UserId, Vec<(UserId, &'static str)>) {
        let (grace, grace_hopper, ada) = (UserId::new(), UserId::new(), UserId::new());
        let people = vec![
            (grace, "Grace"),
            (grace_hopper, "Grace Hopper"),
            (ada, "Ada Lovelace"),
        ];
        (grace, grace_hopper, ada, people)
    }

    #[test]
    fn the_longest_name_wins_and_case_does_not_matter() {
        let (grace, grace_hopper, ada, people) = team();
        let text = "@grace hopper and @Grace, ask @ADA LOVELACE.";
        let found = find(text, &people);
        let spans: Vec<&str> = found.iter().map(|f| &text[f.start..f.end]).collect();
        assert_eq!(spans, ["@grace hopper", "@Grace", "@ADA LOVELACE"]);
        assert_eq!(resolve(text, &people, &[]), [grace_hopper, grace, ada]);
    }

    #[test]
    fn emails_longer_words_and_unknown_names_mention_nobody() {
        let (_, _, _, people) = team();
        for text in [
            "write to grace@example.com",
            "@Gracefully done",
            "@Lin, are you there?",
            "@ Grace",
            "_@Grace",
        ] {
            assert_eq!(find(text, &people), [], "{text}");
        }
    }

    #[test]
    fn a_name_ends_at_punctuation_or_the_end() {
        let (grace, _, _, people) = team();
        for text in [
            "(@Grace)",
            "@Grace",
            "**@Grace**",
            "ping @Grace!",
            "@Grace's",
        ] {
            assert_eq!(resolve(text, &people, &[]), [grace], "{text}");
        }
    }

    #[test]
    fn each_person_once_and_non_ascii_names() {
        let emile = UserId::new();
        let people = vec![(emile, "Émile Zola")];
        assert_eq!(
            resolve("@émile zola, @Émile Zola again", &people, &[]),
            [emile]
        );
    }

    #[test]
    fn a_shared_name_means_whom_the_writer_picked() {
        let (one, two) = (UserId::new(), UserId::new());
        let people = vec![(one, "Sam"), (two, "Sam")];
        assert_eq!(resolve("@Sam look", &people, &[two]), [two]);
        assert_eq!(resolve("@Sam look", &people, &[]), [one, two]);
        // Picked, then deleted from the text: not a mention.
        assert_eq!(resolve("never mind", &people, &[one]), []);
    }
}
