//! Email notifications for members who are not online: the `notification.email` job sends
//! one email per member and conversation, a few minutes after its first notification,
//! listing what is still unread then (nothing read meanwhile; no email when all was).
//! Like a push, it carries the customer's name only when the member chose names and
//! words in what leaves KalTalk, and never the customer's words.

use askama::Template;
use kaltalk_core::job::NotifyByEmail;
use kaltalk_store::NewEmail;
use kaltalk_store::notifications::NotificationEmail;

use crate::state::AppState;

#[derive(Template)]
#[template(path = "email/notification.txt")]
struct NotificationText<'a> {
    name: &'a str,
    headline: &'a str,
    who: Option<&'a str>,
    inbox: &'a str,
    lines: &'a [String],
    link: &'a str,
    settings: &'a str,
}

#[derive(Template)]
#[template(path = "email/notification.html")]
struct NotificationHtml<'a> {
    name: &'a str,
    headline: &'a str,
    who: Option<&'a str>,
    inbox: &'a str,
    lines: &'a [String],
    link: &'a str,
    settings: &'a str,
}

/// The email for a batch with unread notifications.
fn render(state: &AppState, batch: &NotificationEmail) -> anyhow::Result<Option<NewEmail>> {
    let (Some(first), Some(newest)) = (batch.unread.first(), batch.unread.last()) else {
        return Ok(None);
    };
    let headline = first.reason.headline();
    let who = batch
        .contact_name
        .as_deref()
        .filter(|name| batch.show_names && !name.trim().is_empty());
    let lines: Vec<String> = batch
        .unread
        .iter()
        .map(|n| {
            format!(
                "{} at {} UTC",
                n.reason.headline(),
                n.created_at.format("%H:%M")
            )
        })
        .collect();
    let link = state.link(&format!("/notifications/{}/open", newest.id));
    let settings = state.link("/notifications#preferences");
    let (name, inbox) = (batch.member_name.as_str(), batch.inbox_name.as_str());
    let text = NotificationText {
        name,
        headline,
        who,
        inbox,
        lines: &lines,
        link: &link,
        settings: &settings,
    }
    .render()?;
    let html = NotificationHtml {
        name,
        headline,
        who,
        inbox,
        lines: &lines,
        link: &link,
        settings: &settings,
    }
    .render()?;
    let subject = match batch.unread.len() {
        1 => format!("{headline} · KalTalk"),
        n => format!("{headline} and {} more · KalTalk", n - 1),
    };
    Ok(Some(NewEmail {
        org_id: Some(batch.org_id),
        to: batch.member_email.clone(),
        subject,
        text_body: text,
        html_body: html,
        kind: "notification",
        delivery: state.delivery(),
    }))
}

/// The `notification.email` job.
pub async fn send(state: &AppState, job: NotifyByEmail) -> anyhow::Result<()> {
    let Some(batch) = state.store.notification_email(job.batch_id).await? else {
        return Ok(()); // sent already, or the member or the conversation is gone
    };
    let email = render(state, &batch)?;
    // Counts only, never who or what.
    tracing::debug!(notifications = batch.unread.len(), "notification email");
    state
        .store
        .close_notification_email(job.batch_id, email.as_ref(), state.now())
        .await?;
    Ok(())
}
