//! The AI agent's turn: what happens when a visitor writes while the bot handles the
//! conversation. The server decides when to hand over (the state machine lives in the
//! store); the model, once one is configured, only ever answers.
//!
//! Without a chat model the answer is extractive: the best passage of the knowledge base
//! and its source, when it covers enough of the question; otherwise the bot hands over.
//! Either way the conversation is never left hanging.

use anyhow::Context;
use kaltalk_core::chat::Handling;
use kaltalk_core::{ConversationId, MessageId, OrgId};
use kaltalk_store::Job;
use serde_json::json;

use crate::state::AppState;

/// Words that mean "let me talk to a person", matched without a model.
const ASKS_FOR_A_PERSON: &[&str] = &[
    "human",
    "person",
    "agent",
    "someone",
    "representative",
    "operator",
    "real people",
    "talk to support",
    "speak to",
];

pub fn asks_for_a_person(text: &str) -> bool {
    let text = text.to_lowercase();
    ASKS_FOR_A_PERSON.iter().any(|words| text.contains(words))
}

/// Why the bot hands over, as the private note says it.
pub mod reasons {
    pub const VISITOR_PRESSED: &str = "the visitor pressed “Talk to a person”.";
    pub const VISITOR_ASKED: &str = "the visitor asked for a person.";
    pub const TURN_LIMIT: &str = "the bot reached its limit of answers in this conversation.";
    pub const NO_ANSWER: &str = "the knowledge base has no answer to this question.";
}

/// Hands the conversation over and tells everyone listening.
pub async fn hand_over(
    state: &AppState,
    org: OrgId,
    conversation: ConversationId,
    reason: &str,
) -> anyhow::Result<bool> {
    let written = state
        .store
        .escalate(org, conversation, reason, state.now())
        .await?;
    state.hub.publish_events(written.events);
    Ok(written.value)
}

/// What a citation shows: the document title and, when there is one, its section.
fn citation_title(chunk: &kaltalk_store::knowledge::Chunk) -> String {
    match chunk
        .heading_path
        .rsplit(" › ")
        .next()
        .filter(|h| !h.is_empty())
    {
        Some(section) if section != chunk.title => format!("{} — {section}", chunk.title),
        _ => chunk.title.clone(),
    }
}

/// The passage as an answer: whole sentences, at most about 600 characters.
pub fn excerpt(text: &str) -> String {
    const LIMIT: usize = 600;
    let text = text.trim();
    if text.chars().count() <= LIMIT {
        return text.to_owned();
    }
    let cut: String = text.chars().take(LIMIT).collect();
    match cut.rfind(['.', '!', '?']) {
        Some(end) if end > LIMIT / 3 => cut[..=end].to_owned(),
        _ => format!("{}…", cut.trim_end()),
    }
}

/// The `ai.turn` job.
pub async fn take_turn(state: &AppState, job: &Job) -> anyhow::Result<()> {
    let payload = &job.payload.0;
    let field = |name: &str| {
        payload
            .get(name)
            .and_then(|v| v.as_str())
            .with_context(|| format!("payload has no {name}"))
    };
    let org: OrgId = field("org_id")?.parse().context("org_id")?;
    let conversation: ConversationId = field("conversation_id")?
        .parse()
        .context("conversation_id")?;
    let message: MessageId = field("message_id")?.parse().context("message_id")?;

    let current = state.store.get_conversation(org, conversation).await?;
    if current.handling != Handling::Bot {
        return Ok(()); // a person took over since: the bot stays silent
    }
    let settings = state.store.ai_settings(org).await?;
    let question = state.store.get_message(org, message).await?;
    let reason = if asks_for_a_person(&question.text) {
        reasons::VISITOR_ASKED
    } else if current.bot_turns >= settings.max_bot_turns {
        reasons::TURN_LIMIT
    } else {
        let index = state.knowledge.get(state, org).await?;
        let hits = index.search(&question.text, 5).await?;
        match hits
            .iter()
            .find(|hit| hit.confidence >= settings.confidence_threshold)
        {
            Some(best) => {
                let citation =
                    json!({ "title": citation_title(best.chunk), "url": best.chunk.url });
                let metadata = json!({ "citations": [citation], "confidence": best.confidence, "mode": "extractive" });
                if let Some(written) = state
                    .store
                    .bot_writes(
                        org,
                        conversation,
                        &excerpt(&best.chunk.text),
                        metadata,
                        (0, 0),
                        state.now(),
                    )
                    .await?
                {
                    state.hub.publish_events(written.events);
                }
                return Ok(());
            }
            None => reasons::NO_ANSWER,
        }
    };
    hand_over(state, org, conversation, reason).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_for_a_person_are_recognised() {
        assert!(asks_for_a_person("Can I talk to a human please?"));
        assert!(asks_for_a_person("I want to SPEAK TO someone"));
        assert!(!asks_for_a_person("What are your opening hours?"));
    }
}
