//! The Contacts section: the searchable list, a contact's page (profile, custom
//! attributes, every conversation, notes, merge and delete), the attribute definitions an
//! admin manages, and CSV import and export.

mod attributes;
mod csv_io;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use kaltalk_core::chat::InboxKind;
use kaltalk_core::{ContactId, EmailAddress, Permission, Text, ValidationError};
use kaltalk_store::contacts::{
    AttributeDefinition, AttributeMatch, Contact, ContactListQuery, ContactNote,
};
use kaltalk_store::conversations::ConversationSummary;
use serde::Deserialize;

pub(crate) use attributes::AttributesPanel;

use super::{NoFields, NoticeQuery, see_other};
use crate::auth::{AgentSession, SessionForm};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{FieldErrors, IdPath, Layout, PageResult};

/// Contacts a list page shows.
const PAGE_SIZE: i64 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contacts", get(list))
        .route("/contacts/{id}", get(show).post(update_profile))
        .route("/contacts/{id}/attributes", post(attributes::save))
        .route("/contacts/{id}/notes", post(add_note))
        .route("/contacts/{id}/notes/{note}/delete", post(delete_note))
        .route("/contacts/{id}/merge", get(merge_page).post(merge))
        .route("/contacts/{id}/delete", get(delete_page).post(delete))
        .merge(attributes::router())
        .merge(csv_io::router())
}

/// How a contact is named when it has neither a name nor an email address.
pub(crate) fn display_name(contact: &Contact) -> String {
    contact
        .name
        .clone()
        .or_else(|| contact.email.clone())
        .or_else(|| contact.phone.clone())
        .unwrap_or_else(|| {
            let id = contact.id.to_string();
            format!("Visitor {}", &id[id.len().saturating_sub(6)..])
        })
}

pub(crate) fn day(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// The list's filters, as the search form sends them.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    q: Option<String>,
    /// An attribute key, with `value`.
    #[serde(default)]
    attr: Option<String>,
    #[serde(default)]
    value: Option<String>,
    /// `email`: only contacts with an email address.
    #[serde(default)]
    has: Option<String>,
    /// The previous page's last contact: `{nanoseconds}.{id}`.
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    notice: Option<String>,
}

impl ListQuery {
    fn search(&self) -> Option<&str> {
        self.q.as_deref().map(str::trim).filter(|q| !q.is_empty())
    }

    fn attribute(&self) -> Option<AttributeMatch> {
        let key = self
            .attr
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())?;
        Some(AttributeMatch {
            key: key.to_owned(),
            value: self.value.as_deref().unwrap_or_default().trim().to_owned(),
        })
    }

    fn has_email(&self) -> bool {
        self.has.as_deref() == Some("email")
    }

    fn after(&self) -> Option<(DateTime<Utc>, ContactId)> {
        let (at, id) = self.after.as_deref()?.split_once('.')?;
        Some((
            DateTime::from_timestamp_nanos(at.parse().ok()?),
            id.parse().ok()?,
        ))
    }

    /// The query string of these filters, without the page.
    fn filters(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(q) = self.search() {
            query.append_pair("q", q);
        }
        if let Some(attribute) = self.attribute() {
            query.append_pair("attr", &attribute.key);
            query.append_pair("value", &attribute.value);
        }
        if self.has_email() {
            query.append_pair("has", "email");
        }
        query.finish()
    }
}

pub(crate) fn cursor(contact: &Contact) -> String {
    format!(
        "{}.{}",
        contact.created_at.timestamp_nanos_opt().unwrap_or_default(),
        contact.id
    )
}

#[derive(Template, WebTemplate)]
#[template(path = "contacts/list.html")]
struct ListPage {
    layout: Layout,
    contacts: Vec<Contact>,
    definitions: Vec<AttributeDefinition>,
    q: String,
    attr: String,
    value: String,
    has_email: bool,
    filtered: bool,
    /// The link to the next page, when there may be one.
    next: Option<String>,
    /// Whether this is a later page (a link back to the first).
    paged: bool,
    first_page: String,
    notice: Option<&'static str>,
}

async fn list(
    State(state): State<AppState>,
    session: AgentSession,
    Query(query): Query<ListQuery>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let org = session.org_id();
    let mut contacts = state
        .store
        .contacts_page(
            org,
            &ContactListQuery {
                search: query.search().map(str::to_owned),
                attribute: query.attribute(),
                has_email: query.has_email(),
                after: query.after(),
                limit: PAGE_SIZE + 1,
            },
        )
        .await?;
    // One more than a page was asked for: whether it came says if there is a next page.
    let more = contacts.len() as i64 > PAGE_SIZE;
    contacts.truncate(PAGE_SIZE as usize);
    let filters = query.filters();
    let next = contacts.last().filter(|_| more).map(|last| {
        let sep = if filters.is_empty() { "" } else { "&" };
        format!("/contacts?{filters}{sep}after={}", cursor(last))
    });
    let attribute = query.attribute();
    Ok(ListPage {
        layout: Layout::signed_in(&state, &session, "contacts").await?,
        definitions: state.store.list_attribute_definitions(org).await?,
        q: query.search().unwrap_or_default().to_owned(),
        attr: attribute
            .as_ref()
            .map(|a| a.key.clone())
            .unwrap_or_default(),
        value: attribute.map(|a| a.value).unwrap_or_default(),
        has_email: query.has_email(),
        filtered: !filters.is_empty(),
        paged: query.after.is_some(),
        first_page: format!("/contacts?{filters}"),
        next,
        contacts,
        notice: notice_text(query.notice.as_deref()),
    }
    .into_response())
}

fn notice_text(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "deleted" => "The contact and everything about them were deleted.",
        "saved" => "Saved.",
        "merged" => "The contacts were merged into this one.",
        _ => return None,
    })
}

/// A conversation row on a contact's page.
struct ConversationRow {
    summary: ConversationSummary,
    channel: String,
    channel_kind: InboxKind,
}

#[derive(Template, WebTemplate)]
#[template(path = "contacts/show.html")]
struct ContactPage {
    layout: Layout,
    csrf: String,
    contact: Contact,
    title: String,
    name: String,
    email: String,
    phone: String,
    errors: FieldErrors,
    panel: AttributesPanel,
    conversations: Vec<ConversationRow>,
    notes: Vec<ContactNote>,
    note: String,
    note_error: Option<String>,
    notice: Option<&'static str>,
}

async fn contact_page(
    state: &AppState,
    session: &AgentSession,
    id: ContactId,
) -> Result<ContactPage, AppError> {
    let org = session.org_id();
    let contact = state.store.get_contact(org, id).await?;
    let inboxes = state.store.list_inboxes(org).await?;
    let conversations = state
        .store
        .contact_conversations(org, id)
        .await?
        .into_iter()
        .map(|summary| {
            let inbox = inboxes
                .iter()
                .find(|i| i.id == summary.conversation.inbox_id);
            ConversationRow {
                channel: inbox.map(|i| i.name.clone()).unwrap_or_default(),
                channel_kind: inbox.map_or(InboxKind::Web, |i| i.kind),
                summary,
            }
        })
        .collect();
    Ok(ContactPage {
        layout: Layout::signed_in(state, session, "contacts").await?,
        csrf: session.csrf_token.clone(),
        title: display_name(&contact),
        name: contact.name.clone().unwrap_or_default(),
        email: contact.email.clone().unwrap_or_default(),
        phone: contact.phone.clone().unwrap_or_default(),
        errors: FieldErrors::default(),
        panel: AttributesPanel::load(state, session, &contact).await?,
        conversations,
        notes: state.store.list_contact_notes(org, id).await?,
        note: String::new(),
        note_error: None,
        notice: None,
        contact,
    })
}

async fn show(
    State(state): State<AppState>,
    session: AgentSession,
    IdPath(id): IdPath<ContactId>,
    Query(notice): Query<NoticeQuery>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let mut page = contact_page(&state, &session, id).await?;
    page.notice = notice_text(notice.notice.as_deref());
    Ok(page.into_response())
}

#[derive(Deserialize)]
struct ProfileForm {
    #[serde(default)]
    name: Text,
    #[serde(default)]
    email: Text,
    #[serde(default)]
    phone: Text,
}

/// A phone number as the team types it: digits with the usual separators, at most 32.
pub(crate) fn parse_phone(input: &str) -> Result<Option<String>, ValidationError> {
    let phone = input.trim();
    if phone.is_empty() {
        return Ok(None);
    }
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let allowed = phone
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.' | '/'));
    if !allowed || !(3..=20).contains(&digits) || phone.chars().count() > 32 {
        return Err(ValidationError::new(
            "phone",
            "Enter a phone number of digits, spaces and + - ( ), e.g. +47 912 34 567.",
        ));
    }
    Ok(Some(phone.to_owned()))
}

/// A contact's name as the team types it: optional, one line, at most 100 characters.
pub(crate) fn parse_contact_name(input: &str) -> Result<Option<String>, ValidationError> {
    let name = input.trim();
    if name.is_empty() {
        return Ok(None);
    }
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "name",
            "Use at most 100 characters on one line.",
        ));
    }
    Ok(Some(name.to_owned()))
}

pub(crate) fn parse_contact_email(input: &str) -> Result<Option<String>, ValidationError> {
    if input.trim().is_empty() {
        return Ok(None);
    }
    EmailAddress::parse("email", input).map(|e| Some(e.as_str().to_owned()))
}

async fn update_profile(
    State(state): State<AppState>,
    IdPath(id): IdPath<ContactId>,
    SessionForm { session, form }: SessionForm<ProfileForm>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let org = session.org_id();
    // Another organization's contact is a 404 before the form is judged.
    state.store.get_contact(org, id).await?;
    let mut errors = FieldErrors::default();
    let name = errors.take(parse_contact_name(&form.name));
    let email = errors.take(parse_contact_email(&form.email));
    let phone = errors.take(parse_phone(&form.phone));
    if let (Some(name), Some(email), Some(phone)) = (name, email, phone) {
        let written = state
            .store
            .update_contact_profile(
                org,
                id,
                name.as_deref(),
                email.as_deref(),
                phone.as_deref(),
                state.now(),
            )
            .await?;
        state.hub.publish_events(written.events);
        return Ok(see_other(&format!("/contacts/{id}?notice=saved")));
    }
    let mut page = contact_page(&state, &session, id).await?;
    page.name = form.name.into_string();
    page.email = form.email.into_string();
    page.phone = form.phone.into_string();
    page.errors = errors;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

#[derive(Deserialize)]
struct NoteForm {
    #[serde(default)]
    text: Text,
}

async fn add_note(
    State(state): State<AppState>,
    IdPath(id): IdPath<ContactId>,
    SessionForm { session, form }: SessionForm<NoteForm>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let org = session.org_id();
    state.store.get_contact(org, id).await?;
    let text = form.text.trim();
    let max = kaltalk_store::contacts::MAX_NOTE_CHARS;
    if text.is_empty() || text.chars().count() > max {
        let mut page = contact_page(&state, &session, id).await?;
        page.note = form.text.into_string();
        page.note_error = Some(format!("Write the note (at most {max} characters)."));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    state
        .store
        .add_contact_note(org, id, session.user.id, text, state.now())
        .await?;
    Ok(see_other(&format!("/contacts/{id}#notes")))
}

async fn delete_note(
    State(state): State<AppState>,
    IdPath((id, note)): IdPath<(ContactId, uuid::Uuid)>,
    SessionForm { session, .. }: SessionForm<NoFields>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    state
        .store
        .delete_contact_note(session.org_id(), id, note)
        .await?;
    Ok(see_other(&format!("/contacts/{id}#notes")))
}

#[derive(Deserialize, Default)]
struct MergeQuery {
    /// Search words for the contact to merge in.
    #[serde(default)]
    q: Option<String>,
    /// The contact picked: the page then asks to confirm.
    #[serde(default)]
    other: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "contacts/merge.html")]
struct MergePage {
    layout: Layout,
    csrf: String,
    contact: Contact,
    title: String,
    q: String,
    candidates: Vec<Contact>,
    /// The contact picked, with how many conversations and notes will move.
    other: Option<(Contact, usize, usize)>,
    error: Option<String>,
}

async fn merge_page(
    State(state): State<AppState>,
    session: AgentSession,
    IdPath(id): IdPath<ContactId>,
    Query(query): Query<MergeQuery>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let org = session.org_id();
    let contact = state.store.get_contact(org, id).await?;
    let q = query
        .q
        .as_deref()
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    let candidates = if q.is_empty() {
        Vec::new()
    } else {
        state
            .store
            .contacts_page(
                org,
                &ContactListQuery {
                    search: Some(q.clone()),
                    limit: 20,
                    ..ContactListQuery::default()
                },
            )
            .await?
            .into_iter()
            .filter(|c| c.id != id)
            .collect()
    };
    let mut error = None;
    let other = match query.other.as_deref().map(str::parse::<ContactId>) {
        None => None,
        Some(Ok(other)) if other != id => match state.store.get_contact(org, other).await {
            Ok(found) => {
                let conversations = state.store.contact_conversations(org, other).await?.len();
                let notes = state.store.list_contact_notes(org, other).await?.len();
                Some((found, conversations, notes))
            }
            Err(kaltalk_store::StoreError::NotFound) => {
                error = Some("That contact no longer exists: pick another.".to_owned());
                None
            }
            Err(err) => return Err(err.into()),
        },
        Some(_) => {
            error = Some("Pick another contact to merge into this one.".to_owned());
            None
        }
    };
    Ok(MergePage {
        layout: Layout::signed_in(&state, &session, "contacts").await?,
        csrf: session.csrf_token.clone(),
        title: display_name(&contact),
        contact,
        q,
        candidates,
        other,
        error,
    }
    .into_response())
}

#[derive(Deserialize)]
struct MergeForm {
    #[serde(default)]
    other: String,
}

/// Merges the picked contact into this one: this one stays, the other is deleted.
async fn merge(
    State(state): State<AppState>,
    IdPath(id): IdPath<ContactId>,
    SessionForm { session, form }: SessionForm<MergeForm>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let org = session.org_id();
    state.store.get_contact(org, id).await?;
    let other: ContactId = form
        .other
        .trim()
        .parse()
        .ok()
        .filter(|other| *other != id)
        .ok_or_else(|| {
            AppError::invalid("other", "Pick another contact to merge into this one.")
        })?;
    let written = state
        .store
        .merge_contacts(org, other, id, state.now())
        .await
        .map_err(|err| match err {
            kaltalk_store::StoreError::NotFound => {
                AppError::invalid("other", "That contact no longer exists: pick another.")
            }
            other => other.into(),
        })?;
    state.hub.publish_events(written.events);
    Ok(see_other(&format!("/contacts/{id}?notice=merged")))
}

#[derive(Template, WebTemplate)]
#[template(path = "contacts/delete.html")]
struct DeletePage {
    layout: Layout,
    csrf: String,
    contact: Contact,
    title: String,
    conversations: usize,
}

async fn delete_page(
    State(state): State<AppState>,
    session: AgentSession,
    IdPath(id): IdPath<ContactId>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let org = session.org_id();
    let contact = state.store.get_contact(org, id).await?;
    Ok(DeletePage {
        layout: Layout::signed_in(&state, &session, "contacts").await?,
        csrf: session.csrf_token.clone(),
        title: display_name(&contact),
        conversations: state.store.contact_conversations(org, id).await?.len(),
        contact,
    }
    .into_response())
}

#[derive(Deserialize)]
struct DeleteForm {
    #[serde(default)]
    confirm: Option<String>,
}

/// Deletes the contact the thorough way (the store's deletion: conversations, messages,
/// files, events and webhook deliveries about them), then the files from blob storage.
async fn delete(
    State(state): State<AppState>,
    IdPath(id): IdPath<ContactId>,
    SessionForm { session, form }: SessionForm<DeleteForm>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let org = session.org_id();
    state.store.get_contact(org, id).await?;
    if !super::ticked(&form.confirm) {
        return Err(AppError::invalid(
            "confirm",
            "Tick the box to confirm: deleting a contact cannot be undone.",
        )
        .into());
    }
    let written = state.store.delete_contact(org, id, state.now()).await?;
    // After the rows are gone, so a failure here leaves an orphan file, never a message
    // whose file is missing.
    for key in &written.value {
        state.blobs.delete(key).await;
    }
    state.hub.publish_events(written.events);
    Ok(see_other("/contacts?notice=deleted"))
}

impl ListPage {
    fn name_of(&self, contact: &Contact) -> String {
        display_name(contact)
    }

    fn day(&self, t: &DateTime<Utc>) -> String {
        day(t)
    }
}

impl MergePage {
    fn name_of(&self, contact: &Contact) -> String {
        display_name(contact)
    }
}
