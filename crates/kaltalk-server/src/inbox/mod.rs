//! The shared inbox: conversation views, the conversation with its visitor-context
//! sidebar, replies and private notes, status and assignment, all updating live over the
//! dashboard's WebSocket.

mod original;
mod socket;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use chrono::{DateTime, Duration, Utc};
use kaltalk_core::Text;
use kaltalk_core::chat::{ConversationStatus, MessageKind};
use kaltalk_core::{ConversationId, Permission, UserId};
use kaltalk_store::Member;
use kaltalk_store::chat::{
    AgentWrite, AssigneeFilter, Contact, Conversation, ConversationFilter, ConversationSummary,
    Inbox, Message,
};
use kaltalk_store::labels::MAX_LABEL_CHARS;
use serde::Deserialize;

use crate::auth::{AgentSession, SessionForm};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::embed::ScriptJson;
use crate::web::{IdPath, Layout, PageResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/inbox", get(page))
        .route("/inbox/list", get(list_partial))
        .route("/inbox/conversations/{id}", get(conversation_page))
        .route(
            "/inbox/conversations/{id}/messages",
            get(messages_partial).post(reply),
        )
        .route("/inbox/conversations/{id}/status", post(set_status))
        .route("/inbox/conversations/{id}/assign", post(assign))
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
    messages: Vec<Message>,
    members: Vec<Member>,
    labels: Vec<String>,
    known_labels: Vec<String>,
    seen_by_contact: Option<kaltalk_core::MessageId>,
    ai_opt_out: bool,
    /// The contact's custom attributes, editable in the sidebar.
    attributes: crate::dashboard::contacts::AttributesPanel,
}

impl Open {
    fn is_assignee(&self, user: &UserId) -> bool {
        self.conversation.assignee_id.as_ref() == Some(user)
    }

    fn details(&self) -> &kaltalk_core::chat::VisitorDetails {
        &self.contact.details.0
    }

    fn contact_label(&self) -> String {
        contact_label(
            self.contact.name.as_deref(),
            self.contact.email.as_deref(),
            &self.conversation.contact_id.to_string(),
        )
    }
}

fn contact_label(name: Option<&str>, email: Option<&str>, id: &str) -> String {
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
#[template(path = "inbox/page.html")]
struct InboxPage {
    layout: Layout,
    view: View,
    list: ListPartial,
    open: Option<Open>,
    csrf: String,
    me: UserId,
    inbox_js: String,
    /// Canned responses, for the composer's `/shortcut` suggestions.
    canned: ScriptJson,
    labels: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "inbox/list.html")]
struct ListPartial {
    view: View,
    query: String,
    conversations: Vec<ConversationSummary>,
    selected: Option<ConversationId>,
    now: DateTime<Utc>,
}

#[derive(Template, WebTemplate)]
#[template(path = "inbox/conversation.html")]
struct ConversationPartial {
    open: Open,
    csrf: String,
    me: UserId,
}

#[derive(Template, WebTemplate)]
#[template(path = "inbox/messages.html")]
struct MessagesPartial {
    messages: Vec<Message>,
    /// The team's last reply the visitor has seen, marked "Seen".
    seen_by_contact: Option<kaltalk_core::MessageId>,
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
    let conversation = state.store.get_conversation(session.org_id(), id).await?;
    let messages = state
        .store
        .list_messages(session.org_id(), id, true)
        .await?;
    Ok(MessagesPartial {
        seen_by_contact: seen_by_contact(&messages, conversation.contact_last_seen_at),
        messages,
    })
}

impl ListPartial {
    fn is_selected(&self, id: &ConversationId) -> bool {
        self.selected.as_ref() == Some(id)
    }
}

async fn list(
    state: &AppState,
    session: &AgentSession,
    view: &View,
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
    Ok(ListPartial {
        query: view.query(),
        view: view.clone(),
        conversations,
        selected: view.c.as_deref().and_then(|c| c.parse().ok()),
        now: state.now(),
    })
}

/// Loads a conversation of the session's organization and marks it seen.
async fn open(
    state: &AppState,
    session: &AgentSession,
    id: ConversationId,
) -> Result<Open, AppError> {
    let org = session.org_id();
    let conversation = state.store.get_conversation(org, id).await?;
    let contact = state
        .store
        .get_contact(org, conversation.contact_id)
        .await?;
    let inbox = state.store.get_inbox(org, conversation.inbox_id).await?;
    let messages = state.store.list_messages(org, id, true).await?;
    let members = state.store.list_members(org).await?;
    let labels = state.store.labels_of(org, id).await?;
    let known_labels = state.store.organization_labels(org).await?;
    let seen = state.store.agent_saw(org, id, state.now()).await?;
    state.hub.publish_events(seen.events);
    let seen_by_contact = seen_by_contact(&messages, conversation.contact_last_seen_at);
    let ai_opt_out = state.store.ai_opt_out(org, conversation.contact_id).await?;
    let attributes =
        crate::dashboard::contacts::AttributesPanel::load(state, session, &contact).await?;
    Ok(Open {
        conversation,
        contact,
        inbox,
        messages,
        members,
        labels,
        known_labels,
        seen_by_contact,
        ai_opt_out,
        attributes,
    })
}

async fn page(
    State(state): State<AppState>,
    session: AgentSession,
    Query(view): Query<View>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let open = match view.c.as_deref().map(|c| c.parse::<ConversationId>()) {
        Some(Ok(id)) => Some(open(&state, &session, id).await?),
        Some(Err(_)) => return Err(AppError::NotFound.into()),
        None => None,
    };
    let list = list(&state, &session, &view).await?;
    Ok(InboxPage {
        layout: Layout::signed_in(&state, &session, "inbox").await?,
        view,
        list,
        open,
        csrf: session.csrf_token.clone(),
        me: session.user.id,
        inbox_js: state.assets.url("inbox.js"),
        canned: ScriptJson::new(&state.store.list_canned_responses(session.org_id()).await?)?,
        labels: state.store.organization_labels(session.org_id()).await?,
    }
    .into_response())
}

async fn list_partial(
    State(state): State<AppState>,
    session: AgentSession,
    Query(view): Query<View>,
) -> PageResult<ListPartial> {
    session.require(Permission::UseInbox)?;
    Ok(list(&state, &session, &view).await?)
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
    let open = open(&state, &session, id).await?;
    Ok(ConversationPartial {
        open,
        csrf: session.csrf_token.clone(),
        me: session.user.id,
    }
    .into_response())
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
}

async fn reply(
    State(state): State<AppState>,
    IdPath(id): IdPath<ConversationId>,
    headers: HeaderMap,
    SessionForm { session, form }: SessionForm<ReplyForm>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let text = form.text.trim();
    if text.is_empty() {
        return Err(AppError::invalid("text", "Write a reply first.").into());
    }
    if text.chars().count() > 10_000 {
        return Err(
            AppError::invalid("text", "A message can have at most 10000 characters.").into(),
        );
    }
    // `/shortcut` alone sends the canned response (the page also expands it as you type).
    let canned = match text.strip_prefix('/') {
        Some(shortcut) if !shortcut.contains(char::is_whitespace) => {
            state
                .store
                .find_canned_response(session.org_id(), shortcut)
                .await?
        }
        _ => None,
    };
    let text = canned.as_ref().map_or(text, |c| c.text.as_str());
    let kind = if form.kind == "note" {
        MessageKind::Note
    } else {
        MessageKind::Text
    };
    let client_id = form.client_id.filter(|c| !c.is_empty() && c.len() <= 64);
    let written = state
        .store
        .agent_writes(
            session.org_id(),
            id,
            AgentWrite {
                agent: session.user.id,
                kind,
                text,
                client_id: client_id.as_deref(),
                attachments: &[],
            },
            state.now(),
        )
        .await?;
    state.hub.publish_events(written.events);
    if is_htmx(&headers) {
        return Ok(messages_of(&state, &session, id).await?.into_response());
    }
    Ok(Redirect::to(&format!("/inbox?view=all&c={id}")).into_response())
}

#[derive(Deserialize)]
struct StatusForm {
    status: String,
    /// Hours to snooze for, with `snoozed`.
    #[serde(default)]
    snooze_hours: Option<i64>,
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
    let until = (status == ConversationStatus::Snoozed)
        .then(|| state.now() + Duration::hours(form.snooze_hours.unwrap_or(24).clamp(1, 24 * 30)));
    let written = state
        .store
        .set_conversation_status(session.org_id(), id, status, until, state.now())
        .await?;
    state.hub.publish_events(written.events);
    after_change(&state, &session, id, &headers).await
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
        .assign_conversation(session.org_id(), id, assignee, state.now())
        .await?;
    state.hub.publish_events(written.events);
    after_change(&state, &session, id, &headers).await
}

/// After a change: the refreshed conversation pane for htmx, a redirect otherwise.
async fn after_change(
    state: &AppState,
    session: &AgentSession,
    id: ConversationId,
    headers: &HeaderMap,
) -> PageResult {
    if is_htmx(headers) {
        let open = open(state, session, id).await?;
        return Ok(ConversationPartial {
            open,
            csrf: session.csrf_token.clone(),
            me: session.user.id,
        }
        .into_response());
    }
    Ok(Redirect::to(&format!("/inbox?view=all&c={id}")).into_response())
}

/// A label as stored: lower case, words joined by dashes, at most [`MAX_LABEL_CHARS`].
pub fn normalize_label(input: &str) -> Result<String, AppError> {
    let label = input
        .trim()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-");
    let valid = !label.is_empty()
        && label.chars().count() <= MAX_LABEL_CHARS
        && label
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(label)
    } else {
        Err(AppError::invalid(
            "label",
            format!("Use 1 to {MAX_LABEL_CHARS} letters, digits, dashes or underscores."),
        ))
    }
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
    let label = normalize_label(&form.label)?;
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
    SessionForm { session, .. }: SessionForm<crate::dashboard::NoFields>,
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
    after_change(&state, &session, conversation, &headers).await
}
