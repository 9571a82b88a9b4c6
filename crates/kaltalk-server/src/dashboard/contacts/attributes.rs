//! Custom contact attributes: the definitions an admin manages, and the panel (on the
//! contact's page and in the inbox's contact sidebar) where an agent edits the values.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use kaltalk_core::{ContactId, Permission, Text, ValidationError};
use kaltalk_store::contacts::{
    AttributeDefinition, AttributeKind, Contact, NewAttributeDefinition,
};
use kaltalk_store::{Conflict, StoreError};
use serde::Deserialize;

use super::super::{NoFields, NoticeQuery, see_other};
use crate::auth::{AgentSession, SessionForm};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{FieldErrors, IdPath, Layout, PageResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/settings/contact-attributes",
            get(settings).post(create_definition),
        )
        .route("/settings/contact-attributes/{id}", post(update_definition))
        .route(
            "/settings/contact-attributes/{id}/delete",
            post(delete_definition),
        )
}

/// One attribute as the panel shows it: its definition and the value as text.
pub(crate) struct AttributeRow {
    pub key: String,
    pub label: String,
    pub kind: AttributeKind,
    pub options: Vec<String>,
    pub value: String,
    pub error: Option<String>,
}

/// A contact's custom attributes, for the panel partial.
pub(crate) struct AttributesPanel {
    pub contact_id: ContactId,
    pub rows: Vec<AttributeRow>,
    /// Whether the viewer may define attributes (the empty panel links there).
    pub can_define: bool,
    /// A save just happened (the panel says so where the button is).
    pub saved: bool,
}

impl AttributesPanel {
    pub(crate) async fn load(
        state: &AppState,
        session: &AgentSession,
        contact: &Contact,
    ) -> Result<Self, AppError> {
        let definitions = state
            .store
            .list_attribute_definitions(session.org_id())
            .await?;
        Ok(Self::of(session, contact, &definitions))
    }

    fn of(session: &AgentSession, contact: &Contact, definitions: &[AttributeDefinition]) -> Self {
        let rows = definitions
            .iter()
            .map(|d| AttributeRow {
                key: d.key.clone(),
                label: d.label.clone(),
                kind: d.kind,
                options: d.options.0.clone(),
                value: contact
                    .attributes
                    .0
                    .get(&d.key)
                    .map(|v| d.show(v))
                    .unwrap_or_default(),
                error: None,
            })
            .collect();
        Self {
            contact_id: contact.id,
            rows,
            can_define: session.role().can(Permission::ManageOrganization),
            saved: false,
        }
    }

    pub(crate) fn is_choice(&self, row: &AttributeRow, option: &str) -> bool {
        row.value.eq_ignore_ascii_case(option)
    }
}

/// The panel on its own, as htmx swaps it after a save.
#[derive(Template, WebTemplate)]
#[template(path = "contacts/attributes_panel.html")]
pub(crate) struct ContactAttributesPanel {
    pub panel: AttributesPanel,
    pub csrf: String,
}

/// The form field of an attribute's value.
const FIELD_PREFIX: &str = "attr.";

/// Saves the attribute values of the panel's form. Every value is checked by its type
/// first; when one is refused nothing is saved and the panel comes back with what was
/// typed and the reason beside the field.
pub(super) async fn save(
    State(state): State<AppState>,
    IdPath(id): IdPath<ContactId>,
    headers: HeaderMap,
    SessionForm { session, form }: SessionForm<HashMap<String, String>>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let org = session.org_id();
    let contact = state.store.get_contact(org, id).await?;
    let definitions = state.store.list_attribute_definitions(org).await?;
    let mut changes = Vec::new();
    let mut refused: HashMap<String, String> = HashMap::new();
    for definition in &definitions {
        // A field the form did not send is left alone (a definition added meanwhile).
        let Some(input) = form.get(&format!("{FIELD_PREFIX}{}", definition.key)) else {
            continue;
        };
        let checked = Text::parse("attributes", input.as_str())
            .and_then(|text| definition.parse_value(&text));
        match checked {
            Ok(value) => changes.push((definition.key.clone(), value)),
            Err(error) => {
                refused.insert(definition.key.clone(), error.message);
            }
        }
    }
    let htmx = headers.contains_key("hx-request");
    if refused.is_empty() {
        let written = state
            .store
            .set_contact_attributes(org, id, &changes, state.now())
            .await?;
        state.hub.publish_events(written.events);
        if !htmx {
            return Ok(see_other(&format!("/contacts/{id}?notice=saved")));
        }
        let mut panel = AttributesPanel::of(&session, &written.value, &definitions);
        panel.saved = true;
        return Ok(ContactAttributesPanel {
            panel,
            csrf: session.csrf_token.clone(),
        }
        .into_response());
    }
    let mut panel = AttributesPanel::of(&session, &contact, &definitions);
    for row in &mut panel.rows {
        if let Some(input) = form.get(&format!("{FIELD_PREFIX}{}", row.key)) {
            row.value = input.clone();
        }
        row.error = refused.remove(&row.key);
    }
    let partial = ContactAttributesPanel {
        panel,
        csrf: session.csrf_token.clone(),
    };
    // htmx swaps only successful answers, so the refused form comes back as a 200 there;
    // without htmx the browser shows the 422 page as it is.
    let status = if htmx {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, partial).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "contacts/attribute_settings.html")]
struct SettingsPage {
    layout: Layout,
    csrf: String,
    can_manage: bool,
    definitions: Vec<AttributeDefinition>,
    kinds: [AttributeKind; 5],
    key: String,
    label: String,
    kind: String,
    options: String,
    errors: FieldErrors,
    notice: Option<&'static str>,
    /// The definition whose edit was refused, with the reason.
    edit_error: Option<(uuid::Uuid, String)>,
}

async fn settings_page(state: &AppState, session: &AgentSession) -> Result<SettingsPage, AppError> {
    Ok(SettingsPage {
        layout: Layout::signed_in(state, session, "contacts").await?,
        csrf: session.csrf_token.clone(),
        can_manage: session.role().can(Permission::ManageOrganization),
        definitions: state
            .store
            .list_attribute_definitions(session.org_id())
            .await?,
        kinds: AttributeKind::ALL,
        key: String::new(),
        label: String::new(),
        kind: "text".to_owned(),
        options: String::new(),
        errors: FieldErrors::default(),
        notice: None,
        edit_error: None,
    })
}

async fn settings(
    State(state): State<AppState>,
    session: AgentSession,
    axum::extract::Query(notice): axum::extract::Query<NoticeQuery>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let mut page = settings_page(&state, &session).await?;
    page.notice = match notice.notice.as_deref() {
        Some("created") => Some("The attribute was added."),
        Some("saved") => Some("Saved."),
        Some("deleted") => Some("The attribute was deleted. Contacts keep the values they had."),
        _ => None,
    };
    Ok(page.into_response())
}

#[derive(Deserialize)]
struct DefinitionForm {
    #[serde(default)]
    key: Text,
    #[serde(default)]
    label: Text,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    options: Text,
}

async fn create_definition(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<DefinitionForm>,
) -> PageResult {
    session.require(Permission::ManageOrganization)?;
    let mut errors = FieldErrors::default();
    match NewAttributeDefinition::parse(&form.key, &form.label, &form.kind, &form.options) {
        Ok(definition) => {
            match state
                .store
                .create_attribute_definition(session.org_id(), &definition, state.now())
                .await
            {
                Ok(_) => return Ok(see_other("/settings/contact-attributes?notice=created")),
                Err(StoreError::Conflict(Conflict::AttributeKeyTaken)) => {
                    errors.add(ValidationError::new(
                        "key",
                        format!(
                            "An attribute with the key {} already exists.",
                            definition.key
                        ),
                    ));
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(refused) => errors = FieldErrors::from(refused),
    }
    let mut page = settings_page(&state, &session).await?;
    page.key = form.key.into_string();
    page.label = form.label.into_string();
    page.kind = form.kind;
    page.options = form.options.into_string();
    page.errors = errors;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

#[derive(Deserialize)]
struct EditForm {
    #[serde(default)]
    label: Text,
    #[serde(default)]
    options: Text,
}

async fn update_definition(
    State(state): State<AppState>,
    IdPath(id): IdPath<uuid::Uuid>,
    SessionForm { session, form }: SessionForm<EditForm>,
) -> PageResult {
    session.require(Permission::ManageOrganization)?;
    let org = session.org_id();
    let definitions = state.store.list_attribute_definitions(org).await?;
    let definition = definitions
        .iter()
        .find(|d| d.id == id)
        .ok_or(AppError::NotFound)?;
    // The same checks as a new definition, on its own key and kind.
    let checked = NewAttributeDefinition::parse(
        &definition.key,
        &form.label,
        definition.kind.as_str(),
        &form.options,
    )
    .map_err(|errors| {
        errors
            .into_iter()
            .map(|e| e.message)
            .collect::<Vec<_>>()
            .join(" ")
    });
    match checked {
        Ok(checked) => {
            state
                .store
                .update_attribute_definition(org, id, &checked.label, &checked.options, state.now())
                .await?;
            Ok(see_other("/settings/contact-attributes?notice=saved"))
        }
        Err(message) => {
            let mut page = settings_page(&state, &session).await?;
            page.edit_error = Some((id, message));
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

async fn delete_definition(
    State(state): State<AppState>,
    IdPath(id): IdPath<uuid::Uuid>,
    SessionForm { session, .. }: SessionForm<NoFields>,
) -> PageResult {
    session.require(Permission::ManageOrganization)?;
    state
        .store
        .delete_attribute_definition(session.org_id(), id)
        .await?;
    Ok(see_other("/settings/contact-attributes?notice=deleted"))
}

impl SettingsPage {
    fn edit_error_of(&self, id: &uuid::Uuid) -> Option<&str> {
        self.edit_error
            .as_ref()
            .filter(|(i, _)| i == id)
            .map(|(_, m)| m.as_str())
    }
}
