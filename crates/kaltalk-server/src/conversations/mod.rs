//! The shared inbox: conversation views, the conversation with its visitor-context
//! sidebar, replies and private notes, status and assignment, all updating live over the
//! dashboard's WebSocket.

pub(crate) mod mentions;
mod original;
mod socket;
mod team;
pub(crate) mod timeline;

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, Query, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use chrono::{DateTime, Duration, Utc};
use kaltalk_core::chat::{ConversationStatus, Handling, InboxKind, MessageKind, SenderKind};
use kaltalk_core::{
    ConversationId, EmailAddress, InboxId, MessageText, Permission, TeamId, Text, UserId,
    ValidationError,
};
use kaltalk_store::Member;
use kaltalk_store::contacts::Contact;
use kaltalk_store::conversations::{
    AssigneeFilter, Conversation, ConversationFilter, ConversationSummary, ViewCounts,
};
use kaltalk_store::email::base_address;
use kaltalk_store::inboxes::Inbox;
use kaltalk_store::labels::normalize_label;
use kaltalk_store::messages::{AgentWrite, EmailRecipients, Message, NewAttachment};
use serde::Deserialize;

use crate::attachments::{self, Refused, Upload};
use crate::auth::{AgentSession, SessionForm, SessionUpload, UploadCap, UploadedFile};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::embed::ScriptJson;
use crate::web::{IdPath, Layout, PageError, PageResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/inbox", get(page))
        .route("/inbox/list", get(list_partial))
        .route("/inbox/conversations/{id}", get(conversation_page))
        .route(
            "/inbox/conversations/{id}/messages",
            // `ReplyRequest` caps each file and their number itself.
            get(messages_partial)
                .post(reply)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/inbox/conversations/{id}/header", get(header_partial))
        .route("/inbox/bulk", post(bulk))
        .route("/inbox/conversations/{id}/status", post(set_status))
        .route("/inbox/conversations/{id}/assign", post(assign))
        .route("/inbox/conversations/{id}/team", post(team::set_team))
        .route("/inbox/conversations/{id}/labels", post(add_label))
        .route("/inbox/conversations/{id}/hand-back", post(hand_back))
        .route("/inbox/contacts/{id}/ai", post(set_ai_opt_out))
        .route(
            "/inbox/conversations/{id}/labels/remove",
            post(remove_label),
        )
        .route("/inbox/ws", get(socket::upgrade))
        .route("/inbox/messages/{id}/original", get(original::page))
        .route("/inbox/messages/{id}/original.eml", get(original::raw))
        .route(
            "/inbox/attachments/{id}",
            get(crate::attachments::serve_to_agent),
        )
}

/// Which conversations the list shows.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct View {
    /// `mine`, `unassigned` or `all`.
    #[serde(default)]
    view: Option<String>,
    #[serde(default)]
    status: Option<String>,
    /// Only conversations with this label.
    #[serde(default)]
    label: Option<String>,
    /// Only conversations of this team (its id).
    #[serde(default)]
    team: Option<String>,
    /// Only conversations whose contact's custom attribute `attr` is `attr_value`.
    #[serde(default)]
    attr: Option<String>,
    #[serde(default)]
    attr_value: Option<String>,
    /// Search words: matches message text and contact name or email, any status.
    #[serde(default)]
    q: Option<String>,
    /// The open conversation.
    #[serde(default)]
    c: Option<String>,
}

impl View {
    fn name(&self) -> &str {
        match self.view.as_deref() {
            Some("unassigned") => "unassigned",
            Some("all") => "all",
            _ => "mine",
        }
    }

    fn status(&self) -> ConversationStatus {
        self.status
            .as_deref()
            .and_then(|s| s.parse().ok())
            .unwrap_or(ConversationStatus::Open)
    }

    fn filter(&self, me: UserId) -> ConversationFilter {
        ConversationFilter {
            status: Some(self.status()),
            assignee: match self.name() {
                "unassigned" => AssigneeFilter::Unassigned,
                "all" => AssigneeFilter::Anyone,
                _ => AssigneeFilter::User(me),
            },
            label: self.label(),
            team: self.team(),
            attribute: self.attribute(),
            limit: 100,
            ..ConversationFilter::default()
        }
    }

    fn label(&self) -> Option<String> {
        self.label
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
    }

    /// The team view's team; an id that does not parse shows no team's view.
    fn team(&self) -> Option<TeamId> {
        self.team.as_deref().and_then(|t| t.trim().parse().ok())
    }

    fn attribute(&self) -> Option<kaltalk_store::contacts::AttributeMatch> {
        let key = self
            .attr
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())?;
        Some(kaltalk_store::contacts::AttributeMatch {
            key: key.to_owned(),
            value: self
                .attr_value
                .as_deref()
                .unwrap_or_default()
                .trim()
                .to_owned(),
        })
    }

    fn search(&self) -> Option<&str> {
        self.q.as_deref().map(str::trim).filter(|q| !q.is_empty())
    }

    /// The query string that keeps this view (for links and refreshes).
    fn query(&self) -> String {
        let mut query = format!("view={}&status={}", self.name(), self.status());
        for (key, value) in [
            ("label", self.label()),
            ("team", self.team().map(|t| t.to_string())),
            ("q", self.search().map(str::to_owned)),
            ("attr", self.attribute().map(|a| a.key)),
            ("attr_value", self.attribute().map(|a| a.value)),
        ] {
            if let Some(value) = value {
                let encoded: String =
                    url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
                query.push_str(&format!("&{key}={encoded}"));
            }
        }
        query
    }
}

/// One conversation as the middle and right panes show it.
pub struct Open {
    conversation: Conversation,
    contact: Contact,
    inbox: Inbox,
    thread: Thread,
    members: Vec<Member>,
    labels: Vec<String>,
    known_labels: Vec<String>,
    ai_opt_out: bool,
    /// The contact's custom attributes, editable in the sidebar.
    attributes: crate::contacts::AttributesPanel,
    /// Whether the organization's bot answers conversations at all.
    ai_enabled: bool,
    /// The header's team select, and each member's availability beside their name.
    routing: team::HeaderRouting,
}

/// A conversation's messages and events, as the timeline shows them.
pub struct Thread {
    messages: Vec<Message>,
    events: Vec<kaltalk_store::Event>,
    members: Vec<Member>,
    contact_label: String,
    bot_name: String,
    /// The full text of the customer's emails, by message: their quoted history.
    email_texts: HashMap<kaltalk_core::MessageId, String>,
    /// The team's last reply the visitor has seen, marked "Seen".
    seen_by_contact: Option<kaltalk_core::MessageId>,
    /// The agent reading it (their own @mentions stand out).
    viewer: Option<UserId>,
    now: DateTime<Utc>,
}

impl Thread {
    /// How many of a conversation's events its timeline shows, at most.
    const EVENT_LIMIT: i64 = 1_000;

    async fn load(
        state: &AppState,
        org: kaltalk_core::OrgId,
        conversation: &Conversation,
        contact_label: String,
        members: Vec<Member>,
        bot_name: String,
        viewer: UserId,
    ) -> Result<Self, AppError> {
        let messages = state
            .store
            .list_messages(org, conversation.id, true)
            .await?;
        let events = state
            .store
            .conversation_history(org, conversation.id, Self::EVENT_LIMIT)
            .await?;
        let email_texts = if messages.iter().any(Message::is_email) {
            state
                .store
                .conversation_emails(org, conversation.id)
                .await?
                .into_iter()
                .filter(|e| e.direction == "in")
                .filter_map(|e| Some((e.message_id?, e.full_text)))
                .collect()
        } else {
            HashMap::new()
        };
        Ok(Self {
            email_texts,
            seen_by_contact: seen_by_contact(&messages, conversation.contact_last_seen_at),
            messages,
            events,
            members,
            contact_label,
            bot_name,
            viewer: Some(viewer),
            now: state.now(),
        })
    }

    /// No timeline: what the header needs (the contact's name) and nothing loaded.
    fn empty(contact_label: String, bot_name: String, now: DateTime<Utc>) -> Self {
        Self {
            messages: Vec::new(),
            events: Vec::new(),
            members: Vec::new(),
            contact_label,
            bot_name,
            email_texts: HashMap::new(),
            seen_by_contact: None,
            viewer: None,
            now,
        }
    }

    fn items(&self) -> Vec<timeline::Item<'_>> {
        let context = timeline::Context {
            contact: &self.contact_label,
            bot: &self.bot_name,
            email_texts: &self.email_texts,
            viewer: self.viewer,
        };
        timeline::build(
            &self.messages,
            &self.events,
            &self.members,
            &context,
            self.now,
        )
    }

    fn is_seen_mark(&self, message: &Message) -> bool {
        is_seen_mark(&self.seen_by_contact, message)
    }
}

impl Open {
    fn is_assignee(&self, user: &UserId) -> bool {
        self.conversation.assignee_id.as_ref() == Some(user)
    }

    fn details(&self) -> &kaltalk_core::chat::VisitorDetails {
        &self.contact.details.0
    }

    fn contact_label(&self) -> String {
        self.thread.contact_label.clone()
    }

    fn avatar(&self) -> timeline::Avatar {
        timeline::Avatar::of(&self.thread.contact_label)
    }

    fn channel_icon(&self) -> &'static str {
        channel_icon(self.inbox.kind)
    }

    fn assignee_name(&self) -> Option<&str> {
        let assignee = self.conversation.assignee_id?;
        self.members
            .iter()
            .find(|m| m.user_id == assignee)
            .map(|m| m.name.as_str())
    }

    /// "Hand back to the bot" only where a bot is involved: the bot is on, the contact
    /// allows AI, and the bot answered here or handed this conversation over.
    fn can_hand_back(&self) -> bool {
        let c = &self.conversation;
        self.ai_enabled
            && !self.ai_opt_out
            && c.handling != Handling::Bot
            && (c.bot_turns > 0 || c.handling == Handling::WaitingHuman)
    }
}

/// The icon of a channel, from the sprite in `templates/icons/sprite.html`.
pub(crate) fn channel_icon(kind: InboxKind) -> &'static str {
    match kind {
        InboxKind::Web => "globe",
        InboxKind::Email => "mail",
        InboxKind::Api => "code",
    }
}

/// A file's size as people read it.
pub(crate) fn file_size(bytes: &i64) -> String {
    let bytes = (*bytes).max(0) as f64;
    if bytes < 1024.0 {
        format!("{bytes} B")
    } else if bytes < 1024.0 * 1024.0 {
        format!("{:.0} KB", bytes / 1024.0)
    } else {
        format!("{:.1} MB", bytes / (1024.0 * 1024.0))
    }
}

/// What an email conversation's composer shows above the reply: where it goes and under
/// which subject, with the CC the agent may change (`templates/conversations/email_fields.html`).
pub struct EmailReplyFields {
    pub to: String,
    /// As the CC input shows it: comma-separated.
    pub cc: String,
    pub subject: String,
}

impl Open {
    /// The reply's fields as the thread suggests them, for an email conversation: To the
    /// customer, CC the last customer email's CC without our own addresses or the
    /// customer's, Subject `Re: ` the conversation's (as the sent email will have it).
    pub fn email_reply_fields(&self) -> Option<EmailReplyFields> {
        if self.inbox.kind != InboxKind::Email {
            return None;
        }
        let own = self.inbox.email_address.as_deref();
        let to = self.contact.email.clone().unwrap_or_default();
        let last_email = self
            .thread
            .messages
            .iter()
            .rev()
            .find(|m| m.sender_kind == SenderKind::Contact && m.is_email());
        let copied = last_email
            .and_then(|m| m.metadata.as_ref())
            .and_then(|m| m.0.get("email")?.get("cc")?.as_array().cloned())
            .unwrap_or_default();
        let mut cc: Vec<String> = Vec::new();
        for address in copied.iter().filter_map(|a| a.as_str()) {
            let base = base_address(address);
            let ours = own == Some(base.as_str());
            if !ours && !base.eq_ignore_ascii_case(&to) && !cc.contains(&base) {
                cc.push(base);
            }
        }
        Some(EmailReplyFields {
            to,
            cc: cc.join(", "),
            subject: kaltalk_mail::reply_subject(
                self.conversation.subject.as_deref().unwrap_or_default(),
            ),
        })
    }
}

pub(crate) fn contact_label(name: Option<&str>, email: Option<&str>, id: &str) -> String {
    name.or(email)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("Visitor {}", &id[id.len().saturating_sub(6)..]))
}

pub(crate) fn summary_label(summary: &ConversationSummary) -> String {
    contact_label(
        summary.contact_name.as_deref(),
        summary.contact_email.as_deref(),
        &summary.conversation.contact_id.to_string(),
    )
}

pub(crate) fn short_time(t: &DateTime<Utc>, now: &DateTime<Utc>) -> String {
    if now.date_naive() == t.date_naive() {
        t.format("%H:%M").to_string()
    } else {
        t.format("%b %d").to_string()
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "conversations/page.html")]
struct InboxPage {
    layout: Layout,
    view: View,
    list: ListPartial,
    open: Option<Open>,
    csrf: String,
    me: UserId,
    /// The list's query, for the phone's "back to the list".
    back_query: String,
    inbox_js: String,
    composer_js: String,
    /// The bundled emoji, fetched by the composer's picker when first opened.
    emoji_json: String,
    /// Canned responses, for the composer's `/shortcut` suggestions.
    canned: ScriptJson,
    /// The organization's members, for the composer's `@` list in a note.
    teammates: ScriptJson,
    mentions_js: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "conversations/list.html")]
struct ListPartial {
    view: View,
    query: String,
    conversations: Vec<ConversationSummary>,
    selected: Option<ConversationId>,
    now: DateTime<Utc>,
    inboxes: HashMap<InboxId, Inbox>,
    members: Vec<Member>,
    labels: HashMap<ConversationId, Vec<String>>,
    /// Open conversations per view, for the counts beside the view names.
    counts: ViewCounts,
    known_labels: Vec<String>,
    /// Conversations with the list's status per label, for the label views' counts.
    label_counts: HashMap<String, i64>,
    /// The organization's teams, for the team views and the bulk bar.
    teams: Vec<kaltalk_store::teams::Team>,
    /// Conversations with the list's status per team, for the team views' counts.
    team_counts: HashMap<TeamId, i64>,
    csrf: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "conversations/conversation.html")]
struct ConversationPartial {
    open: Open,
    csrf: String,
    me: UserId,
    back_query: String,
}

/// The conversation's header alone: refreshed live when its status, assignee or who
/// handles it changes, and after the header's own forms.
#[derive(Template, WebTemplate)]
#[template(path = "conversations/thread_head_partial.html")]
struct HeaderPartial {
    open: Open,
    csrf: String,
    me: UserId,
    back_query: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "conversations/messages.html")]
struct MessagesPartial {
    thread: Thread,
}

/// The newest team reply sent before the visitor last had the chat open.
fn seen_by_contact(
    messages: &[Message],
    seen_at: Option<DateTime<Utc>>,
) -> Option<kaltalk_core::MessageId> {
    let seen_at = seen_at?;
    messages
        .iter()
        .rev()
        .find(|m| {
            m.kind == MessageKind::Text
                && matches!(
                    m.sender_kind,
                    kaltalk_core::chat::SenderKind::Agent | kaltalk_core::chat::SenderKind::Bot
                )
                && m.created_at <= seen_at
        })
        .map(|m| m.id)
}

/// Whether `message` carries the "Seen" mark.
pub(crate) fn is_seen_mark(seen: &Option<kaltalk_core::MessageId>, message: &Message) -> bool {
    seen.as_ref() == Some(&message.id)
}

/// The messages pane of a conversation of the session's organization.
async fn messages_of(
    state: &AppState,
    session: &AgentSession,
    id: ConversationId,
) -> Result<MessagesPartial, AppError> {
    let org = session.org_id();
    let conversation = state.store.get_conversation(org, id).await?;
    let contact = state
        .store
        .get_contact(org, conversation.contact_id)
        .await?;
    let members = state.store.list_members(org).await?;
    let bot_name = state.store.ai_settings(org).await?.bot_name;
    let label = contact_label(
        contact.name.as_deref(),
        contact.email.as_deref(),
        &contact.id.to_string(),
    );
    Ok(MessagesPartial {
        thread: Thread::load(
            state,
            org,
            &conversation,
            label,
            members,
            bot_name,
            session.user.id,
        )
        .await?,
    })
}

impl ListPartial {
    fn is_selected(&self, id: &ConversationId) -> bool {
        self.selected.as_ref() == Some(id)
    }

    fn avatar(&self, summary: &ConversationSummary) -> timeline::Avatar {
        timeline::Avatar::of(&summary_label(summary))
    }

    fn channel(&self, summary: &ConversationSummary) -> (&'static str, &str) {
        match self.inboxes.get(&summary.conversation.inbox_id) {
            Some(inbox) => (channel_icon(inbox.kind), inbox.name.as_str()),
            None => ("inbox", ""),
        }
    }

    fn assignee(&self, summary: &ConversationSummary) -> Option<&str> {
        let id = summary.conversation.assignee_id?;
        self.members
            .iter()
            .find(|m| m.user_id == id)
            .map(|m| m.name.as_str())
    }

    fn labels_of(&self, summary: &ConversationSummary) -> &[String] {
        self.labels
            .get(&summary.conversation.id)
            .map_or(&[], Vec::as_slice)
    }

    /// The preview's text in pieces, the searched words marked: in a search, the
    /// message that matched, else the last one.
    fn preview(&self, summary: &ConversationSummary) -> Vec<(String, bool)> {
        let text = summary
            .matched_text
            .as_deref()
            .or(summary.last_message.as_deref())
            .unwrap_or("")
            .trim();
        if text.is_empty() {
            return Vec::new();
        }
        let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let text = match self.view.search() {
            // Start the preview near the first match, so the match is what shows.
            Some(words) => passage(&text, words),
            None => text.chars().take(140).collect(),
        };
        highlight(&text, self.view.search().unwrap_or(""))
    }

    /// The views with their counts: name, title, how many.
    fn views(&self) -> [(&'static str, &'static str, i64); 3] {
        [
            ("mine", "Mine", self.counts.mine),
            ("unassigned", "Unassigned", self.counts.unassigned),
            ("all", "All", self.counts.all_conversations),
        ]
    }

    fn label_count(&self, label: &str) -> i64 {
        self.label_counts.get(label).copied().unwrap_or(0)
    }

    fn team_count(&self, team: TeamId) -> i64 {
        self.team_counts.get(&team).copied().unwrap_or(0)
    }

    fn team_of(&self, summary: &ConversationSummary) -> Option<&str> {
        let team = summary.conversation.team_id?;
        self.teams
            .iter()
            .find(|t| t.id == team)
            .map(|t| t.name.as_str())
    }

    fn needs_person(&self, summary: &ConversationSummary) -> bool {
        summary.conversation.handling == Handling::WaitingHuman
    }
}

/// `text`'s characters lower-cased one for one, so an index in it is an index in `text`.
fn lower_chars(text: &str) -> Vec<char> {
    text.chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect()
}

/// The search's words, lower-cased the same way.
fn needles(words: &str) -> Vec<Vec<char>> {
    words.split_whitespace().map(lower_chars).collect()
}

/// The length of the needle that starts at `at` in `hay`, if one does.
fn match_at(hay: &[char], at: usize, needles: &[Vec<char>]) -> Option<usize> {
    needles
        .iter()
        .find(|n| !n.is_empty() && hay[at..].starts_with(n))
        .map(Vec::len)
}

/// About 140 characters of `text` around the first of `words` it contains.
fn passage(text: &str, words: &str) -> String {
    let needles = needles(words);
    let lower = lower_chars(text);
    let first = (0..lower.len()).find(|&i| match_at(&lower, i, &needles).is_some());
    let start = first.map_or(0, |i| i.saturating_sub(40));
    let piece: String = text.chars().skip(start).take(140).collect();
    if start > 0 {
        format!("…{piece}")
    } else {
        piece
    }
}

/// `text` split into pieces, each marked when it is one of `words` (case-insensitive).
fn highlight(text: &str, words: &str) -> Vec<(String, bool)> {
    let needles = needles(words);
    let chars: Vec<char> = text.chars().collect();
    let lower = lower_chars(text);
    let mut pieces: Vec<(String, bool)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (len, marked) = match match_at(&lower, i, &needles) {
            Some(len) => (len, true),
            None => (1, false),
        };
        let piece: String = chars[i..i + len].iter().collect();
        match pieces.last_mut() {
            Some((last, false)) if !marked => last.push_str(&piece),
            _ => pieces.push((piece, marked)),
        }
        i += len;
    }
    pieces
}

async fn list(
    state: &AppState,
    session: &AgentSession,
    view: &View,
    counts: Option<ViewCounts>,
) -> Result<ListPartial, AppError> {
    let conversations = match view.search() {
        Some(words) => {
            state
                .store
                .search_conversations(session.org_id(), words, 100)
                .await?
        }
        None => {
            state
                .store
                .list_conversations(session.org_id(), &view.filter(session.user.id))
                .await?
        }
    };
    let org = session.org_id();
    let ids: Vec<ConversationId> = conversations.iter().map(|c| c.conversation.id).collect();
    Ok(ListPartial {
        query: view.query(),
        view: view.clone(),
        labels: state.store.labels_of_conversations(org, &ids).await?,
        conversations,
        selected: view.c.as_deref().and_then(|c| c.parse().ok()),
        now: state.now(),
        inboxes: state
            .store
            .list_inboxes(org)
            .await?
            .into_iter()
            .map(|i| (i.id, i))
            .collect(),
        members: state.store.list_members(org).await?,
        counts: match counts {
            Some(counts) => counts,
            None => {
                state
                    .store
                    .view_counts(org, session.user.id, view.status())
                    .await?
            }
        },
        known_labels: state.store.organization_labels(org).await?,
        label_counts: state.store.label_counts(org, view.status()).await?,
        teams: state.store.list_teams(org).await?,
        team_counts: state
            .store
            .team_counts(org, view.status())
            .await?
            .into_iter()
            .collect(),
        csrf: session.csrf_token.clone(),
    })
}

/// What of a conversation is rendered: the whole pane, or its header alone (which needs
/// none of the messages, events and emails of the timeline).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pane {
    Whole,
    Header,
}

/// Loads a conversation of the session's organization and marks it seen.
async fn open(
    state: &AppState,
    session: &AgentSession,
    id: ConversationId,
    pane: Pane,
) -> Result<Open, AppError> {
    let org = session.org_id();
    let conversation = state.store.get_conversation(org, id).await?;
    let contact = state
        .store
        .get_contact(org, conversation.contact_id)
        .await?;
    let inbox = state.store.get_inbox(org, conversation.inbox_id).await?;
    let members = state.store.list_members(org).await?;
    let labels = state.store.labels_of(org, id).await?;
    let known_labels = state.store.organization_labels(org).await?;
    let seen = state.store.agent_saw(org, id, state.now()).await?;
    state.hub.publish_events(seen.events);
    let ai_opt_out = state.store.ai_opt_out(org, conversation.contact_id).await?;
    let attributes = crate::contacts::AttributesPanel::load(state, session, &contact).await?;
    let ai = state.store.ai_settings(org).await?;
    let label = contact_label(
        contact.name.as_deref(),
        contact.email.as_deref(),
        &contact.id.to_string(),
    );
    let thread = match pane {
        Pane::Whole => {
            Thread::load(
                state,
                org,
                &conversation,
                label,
                members.clone(),
                ai.bot_name,
                session.user.id,
            )
            .await?
        }
        Pane::Header => Thread::empty(label, ai.bot_name, state.now()),
    };
    Ok(Open {
        conversation,
        contact,
        inbox,
        thread,
        members,
        labels,
        known_labels,
        ai_opt_out,
        attributes,
        ai_enabled: ai.enabled,
        routing: team::HeaderRouting::load(state, org).await?,
    })
}

async fn page(
    State(state): State<AppState>,
    session: AgentSession,
    Query(view): Query<View>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    // The page's socket is about to connect: a member the server had taken offline is
    // online again now, so the page's availability control already says so (the socket
    // connecting then changes nothing more).
    crate::availability::dashboard_seen(&state, session.org_id(), session.user.id, true).await;
    let mut view = view;
    // With nothing assigned to the agent, the inbox opens on what nobody has taken yet.
    // The counts stay the list's: the status is the same whichever view opens.
    let counts = state
        .store
        .view_counts(session.org_id(), session.user.id, view.status())
        .await?;
    if view.view.is_none() && view.search().is_none() && counts.mine == 0 {
        view.view = Some("unassigned".into());
    }
    let open = match view.c.as_deref().map(|c| c.parse::<ConversationId>()) {
        Some(Ok(id)) => Some(open(&state, &session, id, Pane::Whole).await?),
        Some(Err(_)) => return Err(AppError::NotFound.into()),
        None => None,
    };
    let list = list(&state, &session, &view, Some(counts)).await?;
    Ok(InboxPage {
        layout: Layout::signed_in(&state, &session, "inbox").await?,
        back_query: view.query(),
        view,
        list,
        open,
        csrf: session.csrf_token.clone(),
        me: session.user.id,
        inbox_js: state.assets.url("inbox.js"),
        composer_js: state.assets.url("composer.js"),
        emoji_json: state.assets.url("emoji.json"),
        canned: ScriptJson::new(&state.store.list_canned_responses(session.org_id()).await?)?,
        teammates: ScriptJson::new(&mentions::teammates(
            &state.store.list_members(session.org_id()).await?,
        ))?,
        mentions_js: state.assets.url("mentions.js"),
    }
    .into_response())
}

async fn list_partial(
    State(state): State<AppState>,
    session: AgentSession,
    Query(view): Query<View>,
) -> PageResult<ListPartial> {
    session.require(Permission::UseInbox)?;
    Ok(list(&state, &session, &view, None).await?)
}

fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// The conversation: its panes for htmx, the whole inbox page otherwise.
async fn conversation_page(
    State(state): State<AppState>,
    session: AgentSession,
    IdPath(id): IdPath<ConversationId>,
    Query(view): Query<View>,
    headers: HeaderMap,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    if !is_htmx(&headers) {
        // A link to a conversation this organization does not have is a 404 here, not a
        // redirect to an inbox that then cannot open it.
        state.store.get_conversation(session.org_id(), id).await?;
        let view = View {
            c: Some(id.to_string()),
            ..view
        };
        return Ok(Redirect::to(&format!("/inbox?{}&c={id}", view.query())).into_response());
    }
    let open = open(&state, &session, id, Pane::Whole).await?;
    Ok(ConversationPartial {
        open,
        csrf: session.csrf_token.clone(),
        me: session.user.id,
        back_query: view.query(),
    }
    .into_response())
}

/// The conversation's header, for the live refresh after an event.
async fn header_partial(
    State(state): State<AppState>,
    session: AgentSession,
    IdPath(id): IdPath<ConversationId>,
    Query(view): Query<View>,
) -> PageResult<HeaderPartial> {
    session.require(Permission::UseInbox)?;
    Ok(HeaderPartial {
        open: open(&state, &session, id, Pane::Header).await?,
        csrf: session.csrf_token.clone(),
        me: session.user.id,
        back_query: view.query(),
    })
}

async fn messages_partial(
    State(state): State<AppState>,
    session: AgentSession,
    IdPath(id): IdPath<ConversationId>,
) -> PageResult<MessagesPartial> {
    session.require(Permission::UseInbox)?;
    // Opening the messages marks them seen by the team.
    let seen = state
        .store
        .agent_saw(session.org_id(), id, state.now())
        .await?;
    state.hub.publish_events(seen.events);
    Ok(messages_of(&state, &session, id).await?)
}

#[derive(Deserialize)]
struct ReplyForm {
    #[serde(default)]
    text: Text,
    #[serde(default)]
    kind: String,
    client_id: Option<Text>,
    /// Email conversations: who else gets the reply, addresses separated by commas,
    /// semicolons or new lines. Absent: nobody (the composer fills in the thread's CC).
    cc: Option<Text>,
    bcc: Option<Text>,
    /// A note's teammates picked from the `@` list: user ids separated by spaces.
    mentions: Option<Text>,
}

/// The files of a dashboard reply: as many, and as large, as the widget and the API take.
struct ReplyFiles;

impl UploadCap for ReplyFiles {
    fn max_file_bytes(_: &AppState) -> u64 {
        attachments::MAX_BYTES as u64
    }
    const MAX_FILES: usize = attachments::MAX_FILES;
}

/// A reply as posted: a urlencoded form, or multipart when files come with it (the
/// composer sends `files`). Either way the CSRF token is checked, from the `X-CSRF-Token`
/// header htmx sends or the form's field.
struct ReplyRequest {
    session: AgentSession,
    form: ReplyForm,
    files: Vec<UploadedFile>,
}

impl FromRequest<AppState> for ReplyRequest {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let multipart = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/form-data"));
        if multipart {
            let SessionUpload {
                session,
                form,
                files,
                ..
            } = SessionUpload::<ReplyForm, ReplyFiles>::from_request(req, state).await?;
            return Ok(Self {
                session,
                form,
                files,
            });
        }
        let SessionForm { session, form } = SessionForm::from_request(req, state).await?;
        Ok(Self {
            session,
            form,
            files: Vec::new(),
        })
    }
}

/// The most addresses one of CC and BCC takes.
const MAX_COPIES: usize = 20;

/// CC or BCC as typed: addresses separated by commas, semicolons or new lines, each bare
/// or as `Name <address>`. Every bad one gets its own error naming it; the inbox's own
/// address is refused (the reply would come back as a new email).
fn address_list(
    field: &'static str,
    label: &str,
    input: &str,
    own: Option<&str>,
    errors: &mut Vec<ValidationError>,
) -> Vec<String> {
    let mut addresses: Vec<String> = Vec::new();
    for entry in input.split([',', ';', '\n']).map(str::trim) {
        if entry.is_empty() {
            continue;
        }
        let address = match (entry.rfind('<'), entry.ends_with('>')) {
            (Some(open), true) => &entry[open + 1..entry.len() - 1],
            _ => entry,
        };
        let parsed = EmailAddress::parse(field, address)
            .ok()
            .filter(|a| kaltalk_mail::is_sendable_address(a.as_str()));
        match parsed {
            None => errors.push(ValidationError::new(
                field,
                format!("{label}: “{entry}” is not an email address."),
            )),
            Some(address) if own == Some(base_address(address.as_str()).as_str()) => {
                errors.push(ValidationError::new(
                    field,
                    format!("{label}: {address} is this inbox's own address."),
                ));
            }
            Some(address) => {
                if !addresses.iter().any(|a| a == address.as_str()) {
                    addresses.push(address.as_str().to_owned());
                }
            }
        }
    }
    if addresses.len() > MAX_COPIES {
        errors.push(ValidationError::new(
            field,
            format!("{label}: at most {MAX_COPIES} addresses."),
        ));
    }
    addresses
}

/// The CC and BCC of a reply, checked against the conversation: only an email
/// conversation's reply has them.
fn email_recipients(
    form: &ReplyForm,
    inbox: &Inbox,
    kind: MessageKind,
    errors: &mut Vec<ValidationError>,
) -> Option<EmailRecipients> {
    let cc = form.cc.as_deref().unwrap_or_default();
    let bcc = form.bcc.as_deref().unwrap_or_default();
    if inbox.kind != InboxKind::Email || kind != MessageKind::Text {
        if !cc.trim().is_empty() || !bcc.trim().is_empty() {
            errors.push(ValidationError::new(
                "cc",
                "CC and BCC go only with an email reply, not with a chat message or a note.",
            ));
        }
        return None;
    }
    let own = inbox.email_address.as_deref();
    let cc = address_list("cc", "CC", cc, own, errors);
    let bcc = address_list("bcc", "BCC", bcc, own, errors)
        .into_iter()
        .filter(|a| !cc.contains(a))
        .collect();
    Some(EmailRecipients { cc, bcc })
}

/// The reply's files, checked like the widget's and the API's. Each refused file gets its
/// own error naming it, and nothing is stored unless all pass.
fn accept_files(files: Vec<UploadedFile>, errors: &mut Vec<ValidationError>) -> Vec<Upload> {
    let mut accepted = Vec::new();
    for file in files {
        let name = attachments::clean_filename(&file.file_name);
        let refused = match file.bytes {
            None => Some(Refused::TooLarge),
            Some(bytes) => match Upload::accept(&file.file_name, bytes) {
                Ok(upload) => {
                    accepted.push(upload);
                    None
                }
                Err(refused) => Some(refused),
            },
        };
        if let Some(refused) = refused {
            let why = match refused {
                Refused::TooLarge => format!(
                    "{name} is larger than {} MB.",
                    attachments::MAX_BYTES / (1024 * 1024)
                ),
                Refused::UnsupportedType => {
                    format!("{name}: attach an image (PNG, JPEG, GIF, WebP) or a PDF.")
                }
                Refused::Empty => format!("{name} is empty."),
            };
            errors.push(ValidationError::new("files", why));
        }
    }
    accepted
}

async fn reply(
    State(state): State<AppState>,
    IdPath(id): IdPath<ConversationId>,
    headers: HeaderMap,
    ReplyRequest {
        session,
        form,
        files,
    }: ReplyRequest,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let org = session.org_id();
    let conversation = state.store.get_conversation(org, id).await?;
    let inbox = state.store.get_inbox(org, conversation.inbox_id).await?;
    let typed = MessageText::parse("text", form.text.as_str()).map_err(AppError::from)?;
    if typed.is_empty() && files.is_empty() {
        return Err(AppError::invalid("text", "Write a reply first.").into());
    }
    // `/shortcut` alone sends the canned response (the page also expands it as you type).
    let canned = match typed.as_str().strip_prefix('/') {
        Some(shortcut) if !shortcut.contains(char::is_whitespace) => {
            state.store.find_canned_response(org, shortcut).await?
        }
        _ => None,
    };
    let text = match canned {
        Some(canned) => MessageText::parse("text", &canned.text).map_err(AppError::from)?,
        None => typed,
    };
    let kind = if form.kind == "note" {
        MessageKind::Note
    } else {
        MessageKind::Text
    };
    // Everything is checked before anything is stored, and every problem is reported at
    // once; the composer keeps what was typed and attached, so nothing is lost.
    let mut errors = Vec::new();
    let uploads = accept_files(files, &mut errors);
    let recipients = email_recipients(&form, &inbox, kind, &mut errors);
    if !errors.is_empty() {
        return Err(AppError::Validation(errors).into());
    }
    let mut stored = Vec::new();
    for upload in &uploads {
        match attachments::store(&state, org, upload).await {
            Ok(attachment) => stored.push(attachment),
            Err(err) => {
                remove_files(&state, &stored).await;
                return Err(err.into());
            }
        }
    }
    let client_id = form.client_id.filter(|c| !c.is_empty() && c.len() <= 64);
    let picked = mentions::picked(form.mentions.as_deref());
    let written = state
        .store
        .agent_writes(
            org,
            id,
            AgentWrite {
                agent: session.user.id,
                kind,
                text: &text,
                client_id: client_id.as_deref(),
                attachments: &stored,
                email: recipients.as_ref(),
                mentions: &picked,
            },
            state.now(),
        )
        .await;
    let written = match written {
        Ok(written) => written,
        Err(err) => {
            // Nothing refers to the files: do not keep them.
            remove_files(&state, &stored).await;
            return Err(AppError::from(err).into());
        }
    };
    state.hub.publish_events(written.events);
    if is_htmx(&headers) {
        return Ok(messages_of(&state, &session, id).await?.into_response());
    }
    Ok(Redirect::to(&format!("/inbox?view=all&c={id}")).into_response())
}

async fn remove_files(state: &AppState, files: &[NewAttachment]) {
    for file in files {
        state.blobs.delete(&file.storage_key).await;
    }
}

#[derive(Deserialize)]
struct StatusForm {
    status: String,
    /// Hours to snooze for, with `snoozed`.
    #[serde(default)]
    snooze_hours: Option<i64>,
    /// When to wake, as the agent's browser computed it from a preset (RFC 3339).
    #[serde(default)]
    snooze_until: Option<String>,
    /// A preset (`1h`, `tonight`, `tomorrow`, `next-week`, `date`), read in UTC when the
    /// browser sent no `snooze_until` (scripts off).
    #[serde(default)]
    snooze_preset: Option<String>,
    /// With the `date` preset: `YYYY-MM-DDTHH:MM`.
    #[serde(default)]
    snooze_at: Option<String>,
}

/// The furthest a conversation can be snoozed.
const MAX_SNOOZE_DAYS: i64 = 366;

/// When a snoozed conversation wakes up, from the form's fields.
fn snooze_until(form: &StatusForm, now: DateTime<Utc>) -> Result<DateTime<Utc>, AppError> {
    let invalid = || {
        AppError::invalid(
            "snooze_until",
            format!("Pick a time in the future, at most {MAX_SNOOZE_DAYS} days away."),
        )
    };
    let at_hour = |day: chrono::NaiveDate, hour: u32| {
        day.and_hms_opt(hour, 0, 0)
            .map(|t| t.and_utc())
            .ok_or_else(invalid)
    };
    let until = match (
        form.snooze_until.as_deref().filter(|s| !s.is_empty()),
        form.snooze_preset.as_deref().filter(|s| !s.is_empty()),
    ) {
        (Some(until), _) => DateTime::parse_from_rfc3339(until)
            .map_err(|_| invalid())?
            .with_timezone(&Utc),
        (None, Some("1h")) => now + Duration::hours(1),
        (None, Some("tonight")) => {
            let tonight = at_hour(now.date_naive(), 18)?;
            if tonight > now {
                tonight
            } else {
                tonight + Duration::days(1)
            }
        }
        (None, Some("tomorrow")) => at_hour(now.date_naive() + Duration::days(1), 9)?,
        (None, Some("next-week")) => {
            use chrono::Datelike;
            let ahead = 7 - i64::from(now.weekday().num_days_from_monday());
            at_hour(now.date_naive() + Duration::days(ahead), 9)?
        }
        (None, Some("date")) => form
            .snooze_at
            .as_deref()
            .and_then(|at| chrono::NaiveDateTime::parse_from_str(at, "%Y-%m-%dT%H:%M").ok())
            .map(|at| at.and_utc())
            .ok_or_else(invalid)?,
        (None, Some(_)) => return Err(invalid()),
        (None, None) => now + Duration::hours(form.snooze_hours.unwrap_or(24).clamp(1, 24 * 30)),
    };
    if until <= now || until > now + Duration::days(MAX_SNOOZE_DAYS) {
        return Err(invalid());
    }
    Ok(until)
}

async fn set_status(
    State(state): State<AppState>,
    IdPath(id): IdPath<ConversationId>,
    headers: HeaderMap,
    SessionForm { session, form }: SessionForm<StatusForm>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let status: ConversationStatus = form
        .status
        .parse()
        .map_err(|e: String| AppError::invalid("status", e))?;
    let until = match status {
        ConversationStatus::Snoozed => Some(snooze_until(&form, state.now())?),
        _ => None,
    };
    let written = state
        .store
        .set_conversation_status(session.org_id(), id, status, until, state.now())
        .await?;
    state.hub.publish_events(written.events);
    after_change(&state, &session, id, &headers).await
}

/// What the list's bulk bar does to the selected conversations.
enum BulkAction {
    Resolve,
    Assign(Option<UserId>),
    Team(Option<TeamId>),
}

/// Resolve, assign, move to a team or label several conversations at once, from the list's bulk bar.
/// The form repeats `conversation`, so it is read as pairs.
async fn bulk(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<Vec<(String, String)>>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let org = session.org_id();
    let mut ids = Vec::new();
    let (mut action, mut label, mut back) = (None, None, String::new());
    for (key, value) in form {
        match key.as_str() {
            "conversation" => ids.push(
                value
                    .parse::<ConversationId>()
                    .map_err(|_| AppError::NotFound)?,
            ),
            "action" => action = Some(value),
            "label" if !value.trim().is_empty() => {
                label = Some(normalize_label(&value).map_err(AppError::from)?)
            }
            "back" => back = value,
            _ => {}
        }
    }
    if ids.is_empty() {
        return Err(AppError::invalid("conversation", "Select at least one conversation.").into());
    }
    if ids.len() > 200 {
        return Err(AppError::invalid("conversation", "Select at most 200 conversations.").into());
    }
    let action = match action.as_deref() {
        Some("resolve") => BulkAction::Resolve,
        Some("assign-me") => BulkAction::Assign(Some(session.user.id)),
        Some("unassign") => BulkAction::Assign(None),
        Some("no-team") => BulkAction::Team(None),
        Some(other) if other.starts_with("team:") => {
            let team = other["team:".len()..]
                .parse::<TeamId>()
                .map_err(|_| AppError::invalid("action", "Choose one of the teams."))?;
            state
                .store
                .get_team(org, team)
                .await
                .map_err(|_| AppError::invalid("action", "Choose one of the teams."))?;
            BulkAction::Team(Some(team))
        }
        Some(other) => {
            let user = other
                .strip_prefix("assign:")
                .and_then(|id| id.parse::<UserId>().ok())
                .ok_or_else(|| AppError::invalid("action", "Choose what to do."))?;
            state
                .store
                .get_member(org, user)
                .await
                .map_err(|_| AppError::invalid("action", "Choose a member of the team."))?;
            BulkAction::Assign(Some(user))
        }
        None => return Err(AppError::invalid("action", "Choose what to do.").into()),
    };
    let now = state.now();
    // Every conversation must be this organization's before anything changes.
    for id in &ids {
        state.store.get_conversation(org, *id).await?;
    }
    for id in ids {
        if let Some(label) = &label {
            let written = state.store.add_label(org, id, label, now).await?;
            state.hub.publish_events(written.events);
        }
        let written = match action {
            BulkAction::Resolve => {
                state
                    .store
                    .set_conversation_status(org, id, ConversationStatus::Resolved, None, now)
                    .await?
            }
            BulkAction::Assign(user) => {
                state
                    .store
                    .assign_conversation(org, id, user, Some(session.user.id), now)
                    .await?
            }
            BulkAction::Team(team) => {
                state
                    .store
                    .set_conversation_team(org, id, team, now)
                    .await?
            }
        };
        state.hub.publish_events(written.events);
    }
    // Back to the same view; the view is re-read, so `back` cannot point anywhere else.
    let view: View = serde_urlencoded::from_str(&back).unwrap_or_default();
    Ok(Redirect::to(&format!("/inbox?{}", view.query())).into_response())
}

#[derive(Deserialize)]
struct AssignForm {
    #[serde(default)]
    assignee: String,
}

async fn assign(
    State(state): State<AppState>,
    IdPath(id): IdPath<ConversationId>,
    headers: HeaderMap,
    SessionForm { session, form }: SessionForm<AssignForm>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let assignee = match form.assignee.as_str() {
        "" => None,
        other => {
            let user: UserId = other
                .parse()
                .map_err(|_| AppError::invalid("assignee", "Choose a member of the team."))?;
            // Only a member of this organization can be assigned.
            state
                .store
                .get_member(session.org_id(), user)
                .await
                .map_err(|_| AppError::invalid("assignee", "Choose a member of the team."))?;
            Some(user)
        }
    };
    let written = state
        .store
        .assign_conversation(
            session.org_id(),
            id,
            assignee,
            Some(session.user.id),
            state.now(),
        )
        .await?;
    state.hub.publish_events(written.events);
    after_change(&state, &session, id, &headers).await
}

/// The list view of the page an htmx request came from (htmx names it in
/// `HX-Current-URL`), so the header's "back to the list" returns to that view.
fn view_of_page(headers: &HeaderMap) -> View {
    headers
        .get("hx-current-url")
        .and_then(|v| v.to_str().ok())
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| serde_urlencoded::from_str(u.query().unwrap_or("")).ok())
        .unwrap_or_default()
}

/// After a change from the header: the refreshed header for htmx (the timeline hears of
/// the change from the live feed), a redirect otherwise.
async fn after_change(
    state: &AppState,
    session: &AgentSession,
    id: ConversationId,
    headers: &HeaderMap,
) -> PageResult {
    if is_htmx(headers) {
        return Ok(HeaderPartial {
            open: open(state, session, id, Pane::Header).await?,
            csrf: session.csrf_token.clone(),
            me: session.user.id,
            back_query: view_of_page(headers).query(),
        }
        .into_response());
    }
    Ok(Redirect::to(&format!("/inbox?view=all&c={id}")).into_response())
}

#[derive(Deserialize)]
struct LabelForm {
    #[serde(default)]
    label: Text,
}

async fn add_label(
    State(state): State<AppState>,
    IdPath(id): IdPath<ConversationId>,
    headers: HeaderMap,
    SessionForm { session, form }: SessionForm<LabelForm>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let label = normalize_label(&form.label).map_err(AppError::from)?;
    let written = state
        .store
        .add_label(session.org_id(), id, &label, state.now())
        .await?;
    state.hub.publish_events(written.events);
    after_change(&state, &session, id, &headers).await
}

async fn remove_label(
    State(state): State<AppState>,
    IdPath(id): IdPath<ConversationId>,
    headers: HeaderMap,
    SessionForm { session, form }: SessionForm<LabelForm>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let written = state
        .store
        .remove_label(session.org_id(), id, form.label.trim(), state.now())
        .await?;
    state.hub.publish_events(written.events);
    after_change(&state, &session, id, &headers).await
}

/// An agent gives the conversation back to the bot.
async fn hand_back(
    State(state): State<AppState>,
    IdPath(id): IdPath<ConversationId>,
    headers: HeaderMap,
    SessionForm { session, .. }: SessionForm<crate::web::forms::NoFields>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let written = state
        .store
        .hand_back_to_bot(session.org_id(), id, state.now())
        .await?;
    state.hub.publish_events(written.events);
    after_change(&state, &session, id, &headers).await
}

#[derive(Deserialize)]
struct OptOutForm {
    opt_out: Option<String>,
    conversation_id: String,
}

/// "Don't process with AI" for a contact: nothing about them reaches a model provider.
async fn set_ai_opt_out(
    State(state): State<AppState>,
    IdPath(contact): IdPath<kaltalk_core::ContactId>,
    headers: HeaderMap,
    SessionForm { session, form }: SessionForm<OptOutForm>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let opt_out = form.opt_out.as_deref().is_some_and(|v| !v.is_empty());
    state
        .store
        .set_ai_opt_out(session.org_id(), contact, opt_out, state.now())
        .await?;
    let conversation: ConversationId = form
        .conversation_id
        .parse()
        .map_err(|_| AppError::NotFound)?;
    // The switch sits in the contact panel and changes the header too: the whole pane.
    if is_htmx(&headers) {
        return Ok(ConversationPartial {
            open: open(&state, &session, conversation, Pane::Whole).await?,
            csrf: session.csrf_token.clone(),
            me: session.user.id,
            back_query: view_of_page(&headers).query(),
        }
        .into_response());
    }
    Ok(Redirect::to(&format!("/inbox?view=all&c={conversation}")).into_response())
}
