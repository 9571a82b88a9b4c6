//! `kaltalk admin seed-demo`: one realistic sample conversation in a new website inbox, so
//! a new team can see the inbox at work before a customer writes, and the browser tests can
//! look at every kind of message. Everything is written through the same store calls the
//! channels use (a visitor's messages through the intake, the team's replies and notes, the bot's answer with
//! its citations, an image), never by hand-made rows.

use anyhow::{Context, bail};
use chrono::{DateTime, Duration, Utc};
use kaltalk_core::chat::{MessageKind, VisitorDetails};
use kaltalk_core::{AttachmentId, ConversationId, MessageText, OrgId, token};
use kaltalk_store::Store;
use kaltalk_store::contacts::{ContactFields, SessionChoice};
use kaltalk_store::intake::{Customer, CustomerMessage, Thread};
use kaltalk_store::messages::{AgentWrite, NewAttachment};
use serde_json::json;

use crate::attachments::Blobs;

/// The sample's screenshot: a drawn cart drawer with two chat launchers (240×160 PNG).
const SAMPLE_PNG: &[u8] = include_bytes!("demo-cart-drawer.png");

/// The visitor's side of the sample: questions of one to forty lines.
fn visitor_text(turn: usize) -> String {
    let lines = [1, 3, 1, 12, 2, 40, 1, 6, 1, 20, 2, 1, 8, 1][turn % 14];
    (1..=lines)
        .map(|n| match n {
            1 => format!("Question {}: our checkout page shows the chat twice after the last deploy.", turn + 1),
            n => format!("Line {n}: the second launcher appears when the cart drawer opens, on Safari and Chrome."),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Seeds the sample conversation in a new website inbox of `org`; returns its id.
pub async fn seed(
    store: &Store,
    config: &crate::Config,
    org: OrgId,
    now: DateTime<Utc>,
) -> anyhow::Result<ConversationId> {
    let members = store.list_members(org).await?;
    let Some(agent) = members.first() else {
        bail!("the organization has no members; create a user first");
    };
    let created =
        crate::admin::create_web_inbox(store, config, org, "Sample website", &[], now).await?;
    let inbox = store.get_inbox(org, created.inbox_id).await?;
    let blobs = Blobs::new(config.data_dir.join("blobs"));
    let contact = ContactFields {
        external_id: None,
        name: Some("Maya Lindqvist".into()),
        email: Some("maya@example.com".into()),
        attributes: None,
    };
    let details = VisitorDetails::default();
    let token_hash = token::hash(&token::generate("vs_"));
    // The sample spans two days, a message every few minutes.
    let start = now - Duration::days(1) - Duration::hours(2);
    let at = |i: usize| start + Duration::minutes(7 * i as i64);

    let first = store
        .take_in(
            CustomerMessage {
                inbox: &inbox,
                from: Customer::Visitor {
                    session: SessionChoice::New {
                        token_hash: &token_hash,
                    },
                    details: &details,
                    fields: &contact,
                },
                thread: Thread::Latest,
                text: &MessageText::parse("text", &visitor_text(0))?,
                attachments: &[],
                client_id: None,
                wants_a_person: false,
                email: None,
            },
            at(0),
        )
        .await?
        .value;
    let conversation = first.conversation.id;
    // The sample shows the bot answering first, as an organization with its AI agent on
    // sees it, whatever this organization's setting (the intake decided by it).
    if first.conversation.handling != kaltalk_core::chat::Handling::Bot {
        store.hand_back_to_bot(org, conversation, at(0)).await?;
    }
    let session = store
        .find_visitor_session(&token_hash, at(0))
        .await?
        .context("the sample visitor's session")?;
    let metadata = json!({
        "citations": [
            { "title": "Installing the widget", "url": "https://docs.example.com/widget/install" },
            { "title": "Single-page apps", "url": "https://docs.example.com/widget/spa" },
        ],
        "confidence": 0.82,
    });
    store
        .bot_writes(
            org,
            conversation,
            "The widget loader must be included once per page. In a single-page app, load it in the layout, not in a component that mounts again [1][2].",
            metadata,
            (0, 0),
            at(1),
        )
        .await?;

    let mut turn = 1;
    for i in 2..30 {
        let when = at(i);
        match i % 5 {
            // Every fifth message a team reply, with one note and one image among them.
            0 => {
                let (kind, text) = if i == 10 {
                    (MessageKind::Note, "Checked the deploy: the loader is in both the layout and the cart drawer. Asking the customer to remove one.".to_owned())
                } else {
                    (
                        MessageKind::Text,
                        format!(
                            "Thanks, Maya. Reply {i}: could you send a screenshot of the cart drawer with the two launchers?"
                        ),
                    )
                };
                store
                    .agent_writes(
                        org,
                        conversation,
                        AgentWrite {
                            agent: agent.user_id,
                            kind,
                            text: &MessageText::parse("text", &text)?,
                            client_id: None,
                            attachments: &[],
                            email: None,
                            mentions: &[],
                        },
                        when,
                    )
                    .await?;
            }
            _ => {
                let attachments = if i == 12 {
                    let id = AttachmentId::new();
                    let storage_key = format!("{org}/{id}");
                    let bytes = SAMPLE_PNG;
                    blobs.put(&storage_key, bytes).await?;
                    vec![NewAttachment {
                        id,
                        filename: "cart-drawer.png".into(),
                        content_type: "image/png".into(),
                        size: bytes.len() as i64,
                        storage_key,
                        access_token: token::generate(""),
                    }]
                } else {
                    Vec::new()
                };
                let text = if i == 12 {
                    String::new()
                } else {
                    visitor_text(turn)
                };
                turn += 1;
                store
                    .take_in(
                        CustomerMessage {
                            inbox: &inbox,
                            from: Customer::Visitor {
                                session: SessionChoice::Existing(&session),
                                details: &details,
                                fields: &contact,
                            },
                            thread: Thread::Latest,
                            text: &MessageText::parse("text", &text)?,
                            attachments: &attachments,
                            client_id: None,
                            wants_a_person: false,
                            email: None,
                        },
                        when,
                    )
                    .await?;
            }
        }
    }
    Ok(conversation)
}
