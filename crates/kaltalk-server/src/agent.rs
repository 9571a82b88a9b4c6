//! The AI agent's turn: what happens when a visitor writes while the bot handles the
//! conversation. The server decides when to hand over (the state machine lives in the
//! store); the model only ever answers, or asks to hand over through its one tool.
//!
//! With a chat model configured (`[ai] base_url`), the answer is generated from the
//! retrieved passages and streamed to the widget as it is written; without one it is
//! extractive: the best passage and its source. Either way, when the knowledge base does
//! not cover the question the bot hands over, and the conversation is never left hanging.

use kaltalk_core::job::AiTurn;
use std::time::{Duration, Instant};

use anyhow::Context;
use kaltalk_ai::chat::prompt::{self, Persona, Source, Speaker};
use kaltalk_ai::chat::{ChatClient, ChatRequest};
use kaltalk_core::chat::{AiSettings, Handling, SenderKind};
use kaltalk_core::{ConversationId, OrgId};
use serde_json::{Value, json};
use uuid::Uuid;

use kaltalk_core::handover::asks_for_a_person;
pub use kaltalk_core::handover::reasons;

use crate::knowledge::Hit;
use crate::realtime::Live;
use crate::state::AppState;
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

/// Counts the turn against the widget visitor's address (`widget.bot_turns_per_ip_per_hour`),
/// so that a flood of chats cannot buy unbounded model calls; turns from other channels
/// carry no address.
fn within_address_budget(state: &AppState, turn: &AiTurn) -> bool {
    match turn.address().map(str::parse) {
        Some(Ok(ip)) => state.widget_limits.bot_turn(ip),
        _ => true,
    }
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

/// A chunk as a citation under an answer: its title (and section) and link.
fn citation(chunk: &kaltalk_store::knowledge::Chunk) -> Value {
    json!({ "title": citation_title(chunk), "url": chunk.url })
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

/// Passages retrieved per question.
const PASSAGES: usize = 5;
/// How often the widget gets what the model wrote since: often enough to read as
/// streaming, rarely enough that a fast model does not flood the realtime hub.
const DRAFT_EVERY: Duration = Duration::from_millis(50);
/// How often a streaming turn checks that no person took the conversation over.
const TAKEOVER_CHECK_EVERY: Duration = Duration::from_millis(500);

/// The `ai.turn` job.
pub async fn take_turn(state: &AppState, turn: AiTurn) -> anyhow::Result<()> {
    let (org, conversation, message) = (turn.org_id, turn.conversation_id, turn.message_id);

    let current = state.store.get_conversation(org, conversation).await?;
    if current.handling != Handling::Bot {
        return Ok(()); // a person took over since: the bot stays silent
    }
    let settings = state.store.ai_settings(org).await?;
    // Privacy first: with AI off, or for a contact who said no, nothing below runs and
    // nothing reaches a provider. The conversation still goes to a person.
    let reason = if !settings.enabled {
        reasons::AI_OFF.to_owned()
    } else if state.store.ai_opt_out(org, current.contact_id).await? {
        reasons::OPTED_OUT.to_owned()
    } else {
        // Asking for a person in words was handed over by the intake already.
        let question = state.store.get_message(org, message).await?;
        if current.bot_turns >= settings.max_bot_turns {
            reasons::TURN_LIMIT.to_owned()
        } else if !within_address_budget(state, &turn) {
            reasons::ADDRESS_LIMIT.to_owned()
        } else {
            let started = Instant::now();
            let index = state.knowledge.get(state, org).await?;
            let hits = index.search(&question.text, PASSAGES).await?;
            let retrieval = started.elapsed();
            let Some(best) = hits
                .iter()
                .find(|hit| hit.confidence >= settings.confidence_threshold)
            else {
                return hand_over(state, org, conversation, reasons::NO_ANSWER)
                    .await
                    .map(drop);
            };
            let turn = Turn {
                state,
                org,
                conversation,
                question: &question,
                settings: &settings,
                retrieval,
            };
            match &state.chat {
                Some(client) => match turn.generate(client, &hits, best.confidence).await? {
                    Some(reason) => reason,
                    None => return Ok(()),
                },
                None => return turn.extract(best).await,
            }
        }
    };
    hand_over(state, org, conversation, &reason).await?;
    Ok(())
}

/// The chat model the organization's bot writes with: its own choice, else the server's.
fn model_name(state: &AppState, settings: &AiSettings) -> anyhow::Result<String> {
    Ok(settings
        .model
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .or(state.config.ai.model.as_deref())
        .context("a chat model is configured without a model name")?
        .to_owned())
}

/// The model's request for one question, and the citation (title and link) each of its
/// numbered sources stands for.
fn chat_request(
    settings: &AiSettings,
    model: &str,
    hits: &[Hit<'_>],
    history: &[prompt::Turn<'_>],
    question: &str,
) -> (ChatRequest, Vec<Value>) {
    let titles: Vec<String> = hits.iter().map(|hit| citation_title(hit.chunk)).collect();
    let sources: Vec<Source> = hits
        .iter()
        .zip(&titles)
        .map(|(hit, title)| Source {
            title,
            url: hit.chunk.url.as_deref(),
            text: &hit.chunk.text,
        })
        .collect();
    let persona = Persona {
        bot_name: &settings.bot_name,
        tone: &settings.tone,
        instructions: &settings.instructions,
    };
    let request = ChatRequest {
        model: model.to_owned(),
        temperature: settings.temperature,
        messages: prompt::messages(&persona, &sources, history, question),
    };
    let citations = sources
        .iter()
        .map(|s| json!({ "title": s.title, "url": s.url }))
        .collect();
    (request, citations)
}

/// What a finished completion comes to.
enum Verdict {
    Answer {
        text: String,
        /// The sources the answer names by number, or all it was given when it names none.
        citations: Vec<Value>,
    },
    HandOver {
        /// For the log: why, in a word or two.
        outcome: &'static str,
        /// For the private note.
        reason: String,
    },
}

fn verdict(completion: &kaltalk_ai::chat::Completion, sources: &[Value]) -> Verdict {
    if let Some(reason) = completion.hand_over() {
        return Verdict::HandOver {
            outcome: "handed over",
            reason: reasons::model_handed_over(&reason),
        };
    }
    if prompt::declines(&completion.text) {
        return Verdict::HandOver {
            outcome: "declined",
            reason: reasons::MODEL_DECLINED.to_owned(),
        };
    }
    let cited = prompt::cited(&completion.text, sources.len());
    let citations = if cited.is_empty() {
        sources.to_vec()
    } else {
        cited.iter().map(|&i| sources[i].clone()).collect()
    };
    Verdict::Answer {
        text: completion.text.trim().to_owned(),
        citations,
    }
}

/// One answer being made.
struct Turn<'a> {
    state: &'a AppState,
    org: OrgId,
    conversation: ConversationId,
    question: &'a kaltalk_store::messages::Message,
    settings: &'a AiSettings,
    retrieval: Duration,
}

impl Turn<'_> {
    /// Without a model: the best passage, with its source.
    async fn extract(&self, best: &Hit<'_>) -> anyhow::Result<()> {
        let metadata = json!({ "citations": [citation(best.chunk)], "confidence": best.confidence, "mode": "extractive" });
        self.commit(&excerpt(&best.chunk.text), metadata, (0, 0))
            .await
            .map(drop)
    }

    /// Writes the answer unless a person took over meanwhile; whether it was written.
    async fn commit(
        &self,
        text: &str,
        metadata: Value,
        tokens: (u64, u64),
    ) -> anyhow::Result<bool> {
        let state = self.state;
        let written = state
            .store
            .bot_writes(
                self.org,
                self.conversation,
                text,
                metadata,
                tokens,
                state.now(),
            )
            .await?;
        Ok(match written {
            Some(written) => {
                state.hub.publish_events(written.events);
                true
            }
            None => false,
        })
    }

    /// With a model: generates the answer from `hits`, streaming it to the widget.
    /// Returns why to hand over instead, if so.
    async fn generate(
        &self,
        client: &ChatClient,
        hits: &[Hit<'_>],
        confidence: f32,
    ) -> anyhow::Result<Option<String>> {
        let state = self.state;
        let model = model_name(state, self.settings)?;
        let earlier = self.history().await?;
        let history: Vec<prompt::Turn> = earlier
            .iter()
            .map(|(speaker, text)| prompt::Turn {
                speaker: *speaker,
                text,
            })
            .collect();
        let (request, sources) =
            chat_request(self.settings, &model, hits, &history, &self.question.text);
        let prompt_chars = request.chars();
        let started = Instant::now();
        let mut draft = Draft::new(self);
        let outcome = self.stream(client, &request, &mut draft).await;
        let model_time = started.elapsed();
        // Counts only: what the visitor asked and what the model said stay out of logs.
        let log = |outcome: &str, tokens: Option<kaltalk_ai::chat::Usage>, answer_chars: usize| {
            tracing::info!(
                org = %self.org,
                conversation = %self.conversation,
                outcome,
                chunks = sources.len(),
                history = history.len(),
                prompt_chars,
                answer_chars,
                prompt_tokens = tokens.map(|t| t.prompt_tokens),
                completion_tokens = tokens.map(|t| t.completion_tokens),
                retrieval_ms = self.retrieval.as_millis() as u64,
                model_ms = model_time.as_millis() as u64,
                "ai turn"
            );
        };
        let completion = match outcome {
            Ok(Streamed::Done(completion)) => completion,
            Ok(Streamed::TakenOver) => {
                draft.end();
                log("taken over", None, 0);
                return Ok(None);
            }
            Err(err) => {
                draft.end();
                log("unavailable", None, 0);
                tracing::warn!(org = %self.org, conversation = %self.conversation, error = %err, "chat model failed; handing over");
                return Ok(Some(reasons::unavailable(&err.to_string())));
            }
        };
        let answer_chars = completion.text.chars().count();
        let (text, citations) = match verdict(&completion, &sources) {
            Verdict::HandOver { outcome, reason } => {
                draft.end();
                log(outcome, completion.usage, answer_chars);
                return Ok(Some(reason));
            }
            Verdict::Answer { text, citations } => (text, citations),
        };
        let metadata = json!({
            "citations": citations,
            "confidence": confidence,
            "mode": "generative",
            "model": model,
            "draft_id": draft.id,
        });
        let usage = completion.usage.unwrap_or_default();
        let written = self
            .commit(
                &text,
                metadata,
                (usage.prompt_tokens, usage.completion_tokens),
            )
            .await?;
        draft.end();
        log(
            if written { "answered" } else { "taken over" },
            completion.usage,
            answer_chars,
        );
        Ok(None)
    }

    /// Reads the model's stream into the draft, checking now and then that the bot still
    /// handles the conversation: once a person has it, the model is cut off.
    async fn stream(
        &self,
        client: &ChatClient,
        request: &ChatRequest,
        draft: &mut Draft<'_>,
    ) -> Result<Streamed, kaltalk_ai::chat::ChatError> {
        let mut stream = client.stream(request).await?;
        let mut checked = Instant::now();
        while stream.next_text().await?.is_some() {
            let text = stream.text();
            // Text that may yet be the "cannot answer" marker is not shown.
            if !prompt::may_decline(text) && !prompt::declines(text) {
                draft.show(text);
            }
            if checked.elapsed() >= TAKEOVER_CHECK_EVERY {
                checked = Instant::now();
                if !self.still_the_bots().await {
                    return Ok(Streamed::TakenOver);
                }
            }
        }
        Ok(Streamed::Done(stream.finish()))
    }

    async fn still_the_bots(&self) -> bool {
        match self
            .state
            .store
            .get_conversation(self.org, self.conversation)
            .await
        {
            Ok(current) => current.handling == Handling::Bot,
            // Keep going: the final write checks again, inside its transaction.
            Err(err) => {
                tracing::warn!(error = %err, "could not check who handles the conversation");
                true
            }
        }
    }

    /// The conversation before the question: what the visitor and the team said (no
    /// notes, no system lines, no names).
    async fn history(&self) -> anyhow::Result<Vec<(Speaker, String)>> {
        let messages = self
            .state
            .store
            .list_messages(self.org, self.conversation, false)
            .await?;
        Ok(messages
            .into_iter()
            .take_while(|m| m.id != self.question.id)
            .filter_map(|m| {
                let speaker = match m.sender_kind {
                    SenderKind::Contact => Speaker::Visitor,
                    SenderKind::Bot | SenderKind::Agent => Speaker::Team,
                    _ => return None,
                };
                Some((speaker, m.text))
            })
            .collect())
    }
}

enum Streamed {
    Done(kaltalk_ai::chat::Completion),
    TakenOver,
}

/// The answer as the widget sees it while the model writes it.
struct Draft<'a> {
    turn: &'a Turn<'a>,
    id: Uuid,
    /// Bytes of the text already sent.
    sent: usize,
    last: Option<Instant>,
}

impl<'a> Draft<'a> {
    fn new(turn: &'a Turn<'a>) -> Self {
        Self {
            turn,
            id: Uuid::now_v7(),
            sent: 0,
            last: None,
        }
    }

    /// Sends what `text` has beyond what was sent, at most every [`DRAFT_EVERY`].
    fn show(&mut self, text: &str) {
        if text.len() <= self.sent || self.last.is_some_and(|last| last.elapsed() < DRAFT_EVERY) {
            return;
        }
        self.publish(text[self.sent..].to_owned(), false);
        self.sent = text.len();
        self.last = Some(Instant::now());
    }

    /// The draft is over: replaced by the committed message, or withdrawn.
    fn end(&mut self) {
        if self.last.is_some() {
            self.publish(String::new(), true);
            self.last = None;
        }
    }

    fn publish(&self, delta: String, end: bool) {
        self.turn.state.hub.publish(Live::BotDraft {
            org: self.turn.org,
            conversation: self.turn.conversation,
            draft: self.id,
            delta,
            end,
            replace: false,
        });
    }
}

/// A question answered the way the bot would answer it, outside any conversation: what
/// the playground shows. Nothing is written and no usage is counted.
pub struct Preview {
    pub hits: Vec<PreviewHit>,
    pub outcome: PreviewOutcome,
    /// `generative` with a chat model, `extractive` without.
    pub mode: &'static str,
    pub retrieval: Duration,
    /// Time spent waiting for the model, when it was asked.
    pub model: Option<Duration>,
    pub tokens: Option<kaltalk_ai::chat::Usage>,
}

/// A retrieved passage, as the playground lists it.
pub struct PreviewHit {
    pub title: String,
    pub url: Option<String>,
    pub text: String,
    pub score: f32,
    pub confidence: f32,
    /// Whether it reached the answer step (at or above the confidence threshold, or
    /// given to the model).
    pub used: bool,
}

pub enum PreviewOutcome {
    Answer { text: String, citations: Vec<Value> },
    HandOver(String),
}

pub async fn preview(state: &AppState, org: OrgId, question: &str) -> anyhow::Result<Preview> {
    let settings = state.store.ai_settings(org).await?;
    let started = Instant::now();
    let index = state.knowledge.get(state, org).await?;
    let hits = index.search(question, PASSAGES).await?;
    let retrieval = started.elapsed();
    let best = hits
        .iter()
        .position(|hit| hit.confidence >= settings.confidence_threshold);
    let mode = if state.chat.is_some() {
        "generative"
    } else {
        "extractive"
    };
    // `used` says which passages reached the answer step.
    let preview = |used: &dyn Fn(usize) -> bool,
                   outcome: PreviewOutcome,
                   model: Option<Duration>,
                   tokens: Option<kaltalk_ai::chat::Usage>| Preview {
        hits: hits
            .iter()
            .enumerate()
            .map(|(i, hit)| PreviewHit {
                title: citation_title(hit.chunk),
                url: hit.chunk.url.clone(),
                text: excerpt(&hit.chunk.text),
                score: hit.score,
                confidence: hit.confidence,
                used: used(i),
            })
            .collect(),
        outcome,
        mode,
        retrieval,
        model,
        tokens,
    };
    let hand_over = if asks_for_a_person(question) {
        Some(reasons::VISITOR_ASKED)
    } else if best.is_none() {
        Some(reasons::NO_ANSWER)
    } else {
        None
    };
    if let Some(reason) = hand_over {
        let outcome = PreviewOutcome::HandOver(reason.to_owned());
        return Ok(preview(&|_| false, outcome, None, None));
    }
    let best_at = best.unwrap_or_default();
    let best = &hits[best_at];
    let Some(client) = &state.chat else {
        // Without a model the answer is the best passage alone.
        let outcome = PreviewOutcome::Answer {
            text: excerpt(&best.chunk.text),
            citations: vec![citation(best.chunk)],
        };
        return Ok(preview(&|i| i == best_at, outcome, None, None));
    };
    let model = model_name(state, &settings)?;
    let (request, sources) = chat_request(&settings, &model, &hits, &[], question);
    let asked = Instant::now();
    let streamed = async {
        let mut stream = client.stream(&request).await?;
        while stream.next_text().await?.is_some() {}
        Ok::<_, kaltalk_ai::chat::ChatError>(stream.finish())
    }
    .await;
    let model_time = Some(asked.elapsed());
    let (outcome, tokens) = match streamed {
        Err(err) => (
            PreviewOutcome::HandOver(reasons::unavailable(&err.to_string())),
            None,
        ),
        Ok(completion) => {
            let outcome = match verdict(&completion, &sources) {
                Verdict::Answer { text, citations } => PreviewOutcome::Answer { text, citations },
                Verdict::HandOver { reason, .. } => PreviewOutcome::HandOver(reason),
            };
            (outcome, completion.usage)
        }
    };
    Ok(preview(&|_| true, outcome, model_time, tokens))
}
