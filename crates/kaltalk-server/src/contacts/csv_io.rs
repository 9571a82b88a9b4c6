//! CSV export of every contact and CSV import with a preview: the upload is parsed and
//! checked row by row, the preview shows what each row will do (or why it is refused), and
//! confirming imports the valid rows. Rows whose email address a contact already has
//! update that contact.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use kaltalk_core::{Permission, Text};
use kaltalk_store::contacts::{AttributeDefinition, ImportRow};
use serde::Deserialize;
use serde_json::Map;

use super::{parse_contact_email, parse_contact_name, parse_phone};
use crate::auth::{AgentSession, SessionForm, SessionUpload, UploadCap};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::forms::{NoFields, see_other};
use crate::web::{Layout, PageResult};

/// The largest CSV file an import reads.
const MAX_FILE_BYTES: u64 = 5 * 1024 * 1024;
/// The most rows one import takes.
const MAX_ROWS: usize = 10_000;
/// The most rows the preview lists (every refused row is among them while they fit).
const MAX_PREVIEW_ROWS: usize = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contacts/export.csv", get(export))
        .route(
            "/contacts/import",
            get(import_page)
                .post(preview)
                // `SessionUpload` enforces the file cap itself.
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/contacts/import/confirm",
            // The confirmation carries the file's text back, URL-encoded (up to 3 bytes
            // per byte).
            post(confirm).layer(DefaultBodyLimit::max(4 * MAX_FILE_BYTES as usize)),
        )
}

/// What the columns of an import hold, from its header row.
#[derive(Debug, Clone, PartialEq)]
enum Column {
    Name,
    Email,
    Phone,
    /// Columns of our own export that an import does not set (id, created, last seen).
    Ignored,
    Attribute(usize),
    Unknown(String),
}

fn column_of(header: &str, definitions: &[AttributeDefinition]) -> Column {
    let wanted = header.trim().to_lowercase();
    match wanted.as_str() {
        "name" | "full name" => Column::Name,
        "email" | "email address" | "e-mail" => Column::Email,
        "phone" | "phone number" | "mobile" | "telephone" => Column::Phone,
        "id" | "created" | "last seen" => Column::Ignored,
        _ => definitions
            .iter()
            .position(|d| d.key == wanted || d.label.to_lowercase() == wanted)
            .map(Column::Attribute)
            .unwrap_or_else(|| Column::Unknown(header.trim().to_owned())),
    }
}

/// One row of the file as the preview lists it.
pub(crate) struct PreviewRow {
    /// The row's number in the file (the header is row 1).
    pub line: usize,
    pub name: String,
    pub email: String,
    pub phone: String,
    /// Attribute values as typed, with their labels.
    pub attributes: Vec<(String, String)>,
    pub errors: Vec<String>,
    /// A contact with this email address exists and will be updated.
    pub updates: bool,
}

/// A parsed import: the rows to show, the rows to import and what was wrong with the file.
#[derive(Default)]
pub(crate) struct ParsedImport {
    pub rows: Vec<PreviewRow>,
    pub valid: Vec<ImportRow>,
    pub total: usize,
    pub refused: usize,
    pub updates: usize,
    /// Why the file as a whole cannot be imported.
    pub file_error: Option<String>,
}

/// A cell as typed, without the apostrophe our export puts before what a spreadsheet
/// would run as a formula.
fn cell(record: &csv::StringRecord, index: usize) -> &str {
    let value = record.get(index).unwrap_or_default().trim();
    match value.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest,
        _ => value,
    }
}

/// Parses and checks an import. `known` says which email addresses (lower case) already
/// belong to a contact; it is asked once, for all the file's addresses.
pub(crate) async fn parse_import(
    state: &AppState,
    session: &AgentSession,
    text: &str,
) -> Result<ParsedImport, AppError> {
    let definitions = state
        .store
        .list_attribute_definitions(session.org_id())
        .await?;
    let mut parsed = check_rows(text, &definitions);
    let emails: Vec<String> = parsed
        .valid
        .iter()
        .filter_map(|row| row.email.clone())
        .collect();
    let known = state
        .store
        .known_contact_emails(session.org_id(), &emails)
        .await?;
    for row in &mut parsed.rows {
        row.updates = row.errors.is_empty() && known.contains(&row.email.to_lowercase());
    }
    parsed.updates = emails.iter().filter(|e| known.contains(*e)).count();
    Ok(parsed)
}

/// The checks that need no database: columns, each cell by its type, duplicates.
fn check_rows(text: &str, definitions: &[AttributeDefinition]) -> ParsedImport {
    let mut parsed = ParsedImport::default();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first_line = text.lines().next().unwrap_or_default();
    // Spreadsheets set to a European locale save with semicolons.
    let delimiter = if first_line.contains(';') && !first_line.contains(',') {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let columns: Vec<Column> = match reader.headers() {
        Ok(headers) => headers.iter().map(|h| column_of(h, definitions)).collect(),
        Err(_) => {
            parsed.file_error = Some("The file is not a CSV file we can read.".into());
            return parsed;
        }
    };
    if !columns
        .iter()
        .any(|c| matches!(c, Column::Name | Column::Email | Column::Phone))
    {
        parsed.file_error = Some(
            "The first row must name the columns, with at least one of name, email or phone (e.g. name,email,phone,plan)."
                .into(),
        );
        return parsed;
    }
    let mut seen_emails: HashMap<String, usize> = HashMap::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let record = match record {
            Ok(record) => record,
            Err(_) => {
                parsed.file_error = Some(format!(
                    "Row {line} could not be read (an unclosed quote?). Fix the file and upload it again."
                ));
                return parsed;
            }
        };
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        parsed.total += 1;
        if parsed.total > MAX_ROWS {
            parsed.file_error = Some(format!(
                "An import takes at most {MAX_ROWS} contacts: split the file."
            ));
            return parsed;
        }
        let mut row = PreviewRow {
            line,
            name: String::new(),
            email: String::new(),
            phone: String::new(),
            attributes: Vec::new(),
            errors: Vec::new(),
            updates: false,
        };
        let mut import = ImportRow {
            attributes: Map::new(),
            ..ImportRow::default()
        };
        for (i, column) in columns.iter().enumerate() {
            let value = cell(&record, i);
            let value = match Text::parse("csv", value) {
                Ok(text) => text.into_string(),
                Err(error) => {
                    row.errors.push(error.message);
                    continue;
                }
            };
            match column {
                Column::Name => {
                    row.name = value.clone();
                    match parse_contact_name(&value) {
                        Ok(name) => import.name = name,
                        Err(e) => row.errors.push(format!("Name: {}", e.message)),
                    }
                }
                Column::Email => {
                    row.email = value.clone();
                    match parse_contact_email(&value) {
                        Ok(email) => import.email = email,
                        Err(_) => row.errors.push(format!("Invalid email address “{value}”.")),
                    }
                }
                Column::Phone => {
                    row.phone = value.clone();
                    match parse_phone(&value) {
                        Ok(phone) => import.phone = phone,
                        Err(e) => row.errors.push(e.message),
                    }
                }
                Column::Ignored => {}
                Column::Attribute(d) => {
                    let definition = &definitions[*d];
                    if value.is_empty() {
                        continue;
                    }
                    row.attributes
                        .push((definition.label.clone(), value.clone()));
                    match definition.parse_value(&value) {
                        Ok(Some(v)) => {
                            import.attributes.insert(definition.key.clone(), v);
                        }
                        Ok(None) => {}
                        Err(e) => row.errors.push(e.message),
                    }
                }
                Column::Unknown(header) => {
                    if !value.is_empty() {
                        row.attributes.push((header.clone(), value.clone()));
                        row.errors.push(format!(
                            "Unknown attribute “{header}”: define it under Contact attributes first, or remove the column."
                        ));
                    }
                }
            }
        }
        if import.name.is_none()
            && import.email.is_none()
            && import.phone.is_none()
            && row.errors.is_empty()
        {
            row.errors
                .push("Give a name, an email address or a phone number.".into());
        }
        if let Some(email) = &import.email {
            match seen_emails.get(email) {
                Some(first) => row.errors.push(format!(
                    "Duplicate: row {first} has the same email address (only the first is imported)."
                )),
                None => {
                    seen_emails.insert(email.clone(), line);
                }
            }
        }
        if row.errors.is_empty() {
            parsed.valid.push(import);
        } else {
            parsed.refused += 1;
        }
        if parsed.rows.len() < MAX_PREVIEW_ROWS {
            parsed.rows.push(row);
        } else if !row.errors.is_empty() {
            // A full preview still shows the refused rows, in place of accepted ones.
            if let Some(at) = parsed.rows.iter().rposition(|r| r.errors.is_empty()) {
                parsed.rows.remove(at);
                parsed.rows.push(row);
            }
        }
    }
    if parsed.total == 0 {
        parsed.file_error = Some("The file has no rows below its header.".into());
    }
    parsed
}

struct ImportFileCap;

impl UploadCap for ImportFileCap {
    fn max_file_bytes(_: &AppState) -> u64 {
        MAX_FILE_BYTES
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "contacts/import.html")]
struct ImportPage {
    layout: Layout,
    csrf: String,
    /// The preview of an uploaded file, with its text for the confirmation.
    preview: Option<(ParsedImport, String)>,
    error: Option<String>,
    /// After an import: created and updated.
    done: Option<(usize, usize)>,
    definitions: Vec<AttributeDefinition>,
}

async fn page(state: &AppState, session: &AgentSession) -> Result<ImportPage, AppError> {
    Ok(ImportPage {
        layout: Layout::signed_in(state, session, "contacts").await?,
        csrf: session.csrf_token.clone(),
        preview: None,
        error: None,
        done: None,
        definitions: state
            .store
            .list_attribute_definitions(session.org_id())
            .await?,
    })
}

#[derive(Deserialize, Default)]
struct DoneQuery {
    created: Option<usize>,
    updated: Option<usize>,
}

async fn import_page(
    State(state): State<AppState>,
    session: AgentSession,
    Query(done): Query<DoneQuery>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let mut page = page(&state, &session).await?;
    if let (Some(created), Some(updated)) = (done.created, done.updated) {
        page.done = Some((created, updated));
    }
    Ok(page.into_response())
}

async fn preview(
    State(state): State<AppState>,
    mut upload: SessionUpload<NoFields, ImportFileCap>,
) -> PageResult {
    let file = upload.file();
    let session = upload.session;
    session.require(Permission::UseInbox)?;
    let mut page = page(&state, &session).await?;
    let text = match file {
        None => Err("Choose a CSV file to import.".to_owned()),
        Some(file) => match file.bytes {
            None => Err(format!(
                "The file is larger than {} MB: split it.",
                MAX_FILE_BYTES / 1024 / 1024
            )),
            Some(bytes) if bytes.is_empty() => Err("The file is empty.".to_owned()),
            Some(bytes) => String::from_utf8(bytes).map_err(|_| {
                "The file is not UTF-8 text: save it as “CSV UTF-8” and upload it again.".to_owned()
            }),
        },
    };
    match text {
        Ok(text) => {
            let parsed = parse_import(&state, &session, &text).await?;
            if let Some(error) = parsed.file_error.clone() {
                page.error = Some(error);
                return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
            }
            page.preview = Some((parsed, text));
            Ok(page.into_response())
        }
        Err(error) => {
            page.error = Some(error);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

#[derive(Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    csv: Text,
}

/// Imports the valid rows of the previewed file, checked again: contacts may have
/// changed since the preview.
async fn confirm(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<ConfirmForm>,
) -> PageResult {
    session.require(Permission::UseInbox)?;
    let parsed = parse_import(&state, &session, &form.csv).await?;
    if let Some(error) = parsed.file_error {
        let mut page = page(&state, &session).await?;
        page.error = Some(error);
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let written = state
        .store
        .import_contacts(session.org_id(), &parsed.valid, state.now())
        .await?;
    state.hub.publish_events(written.events);
    Ok(see_other(&format!(
        "/contacts/import?created={}&updated={}",
        written.value.created, written.value.updated
    )))
}

/// A cell that a spreadsheet would run as a formula gets an apostrophe in front (the
/// import takes it off again). Phone numbers like `+47 912 34 567` are left as they are:
/// a sign followed only by digits and separators is a number, not a formula.
fn export_cell(value: &str) -> String {
    let risky = match value.chars().next() {
        Some('=' | '@' | '\t' | '\r') => true,
        Some('+' | '-') => !value[1..]
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')' | '.' | '/')),
        _ => false,
    };
    if risky {
        format!("'{value}")
    } else {
        value.to_owned()
    }
}

/// Every contact as CSV: id, name, email, phone, created, last seen, then one column per
/// attribute definition (named by its key, which an import reads back).
async fn export(State(state): State<AppState>, session: AgentSession) -> PageResult {
    session.require(Permission::UseInbox)?;
    let org = session.org_id();
    let definitions = state.store.list_attribute_definitions(org).await?;
    let contacts = state.store.all_contacts(org).await?;
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(contacts.len() * 96 + 64));
    let mut header = vec!["id", "name", "email", "phone", "created", "last seen"];
    header.extend(definitions.iter().map(|d| d.key.as_str()));
    let failed =
        |e: csv::Error| AppError::from(anyhow::Error::new(e).context("writing the contacts CSV"));
    writer.write_record(&header).map_err(failed)?;
    for contact in &contacts {
        let mut record = vec![
            contact.id.to_string(),
            export_cell(contact.name.as_deref().unwrap_or_default()),
            export_cell(contact.email.as_deref().unwrap_or_default()),
            export_cell(contact.phone.as_deref().unwrap_or_default()),
            contact
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            contact
                .last_seen_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ];
        record.extend(definitions.iter().map(|d| {
            export_cell(
                &contact
                    .attributes
                    .0
                    .get(&d.key)
                    .map(|v| d.show(v))
                    .unwrap_or_default(),
            )
        }));
        writer.write_record(&record).map_err(failed)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| AppError::from(anyhow::anyhow!("finishing the contacts CSV: {e}")))?;
    let filename = format!(
        "attachment; filename=\"contacts-{}.csv\"",
        state.now().format("%Y-%m-%d")
    );
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&filename)
                    .map_err(|e| AppError::from(anyhow::Error::new(e)))?,
            ),
        ],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_phone_numbers_kept() {
        assert_eq!(export_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(export_cell("+cmd|' /C calc'!A0"), "'+cmd|' /C calc'!A0");
        assert_eq!(export_cell("@SUM(1)"), "'@SUM(1)");
        assert_eq!(export_cell("+47 912 34 567"), "+47 912 34 567");
        assert_eq!(export_cell("Ada"), "Ada");
        let record = csv::StringRecord::from(vec!["'=1+1", "'plain"]);
        assert_eq!(
            cell(&record, 0),
            "=1+1",
            "the import takes the apostrophe off"
        );
        assert_eq!(cell(&record, 1), "'plain");
    }

    #[test]
    fn rows_are_checked_and_duplicates_refused() {
        let parsed = check_rows(
            "\u{feff}Name;Email;Colour\nAda;ada@x.test;\nBob;not-an-email;\nAda again;ADA@x.test;\nCy;;blue\n;;\n",
            &[],
        );
        assert!(parsed.file_error.is_none());
        assert_eq!(parsed.total, 4, "the blank row is skipped");
        assert_eq!(parsed.valid.len(), 1);
        let errors: Vec<&Vec<String>> = parsed.rows.iter().map(|r| &r.errors).collect();
        assert!(errors[0].is_empty());
        assert!(errors[1][0].contains("Invalid email"), "{errors:?}");
        assert!(errors[2][0].contains("Duplicate: row 2"), "{errors:?}");
        assert!(
            errors[3][0].contains("Unknown attribute “Colour”"),
            "{errors:?}"
        );
        assert!(
            check_rows("plan\npro\n", &[]).file_error.is_some(),
            "no known column"
        );
    }
}
