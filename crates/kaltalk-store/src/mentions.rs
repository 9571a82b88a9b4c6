//! @mentions in private notes, resolved where the note is written: against the
//! organization's members as they are in the note's own transaction, so a removed member
//! or someone of another organization is never mentioned, whatever the composer sent.

/// The members a note's text mentions (`kaltalk_core::mention::resolve`), read in the
/// transaction `$tx`: `$picked` are the ids the composer says were picked from its list,
/// used only to tell apart teammates who share a name.
macro_rules! resolve_mentions {
    ($tx:expr, $org:expr, $text:expr, $picked:expr) => {{
        let text: &str = $text;
        let picked: &[kaltalk_core::UserId] = $picked;
        if text.contains('@') {
            let members: Vec<(kaltalk_core::UserId, String)> = sqlx::query_as(
                "SELECT u.id, u.name FROM memberships m JOIN users u ON u.id = m.user_id \
                 WHERE m.org_id = $1 ORDER BY m.created_at, u.id",
            )
            .bind($org)
            .fetch_all(&mut *$tx)
            .await?;
            let people: Vec<(kaltalk_core::UserId, &str)> = members
                .iter()
                .map(|(id, name)| (*id, name.as_str()))
                .collect();
            kaltalk_core::mention::resolve(text, &people, picked)
        } else {
            Vec::new()
        }
    }};
}
pub(crate) use resolve_mentions;
