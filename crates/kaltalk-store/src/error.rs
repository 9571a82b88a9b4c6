//! The store's error: what callers can act on (not found, a named conflict) apart from
//! everything else, which stays opaque.

/// A unique constraint that a caller can explain to a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// `users.email`
    EmailTaken,
    /// `memberships (org_id, user_id)`
    AlreadyMember,
    /// `canned_responses (org_id, shortcut)`
    ShortcutTaken,
    /// `inboxes.email_address`
    InboxAddressTaken,
    /// `contacts (org_id, external_id)`
    ExternalIdTaken,
    /// `contact_attribute_definitions (org_id, key)`
    AttributeKeyTaken,
    /// Deleting an account whose person owns an organization others are in (its name).
    OwnsSharedOrganization(String),
    /// A conversation already has [`crate::labels::MAX_LABELS`] labels.
    TooManyLabels,
    /// An email whose Message-ID this inbox stored already (a re-delivery): the intake
    /// wrote nothing.
    EmailAlreadyStored,
    /// `teams (org_id, name)`
    TeamNameTaken,
    /// Any other unique constraint, by name.
    Other(String),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("could not create the database folder")]
    Io(#[source] std::io::Error),
    #[error("stored value is invalid: {0}")]
    Corrupt(String),
    /// A statement ran past the store's bound and was stopped (see
    /// `Store::connect_with_bound`): nothing of it is left running.
    #[error("a database statement took longer than its bound and was stopped")]
    Timeout,
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::RowNotFound = err {
            return StoreError::NotFound;
        }
        if stopped_at_bound(&err) {
            return StoreError::Timeout;
        }
        match unique_violation(&err) {
            Some(conflict) => StoreError::Conflict(conflict),
            None => StoreError::Database(err),
        }
    }
}

/// A statement the bound stopped: PostgreSQL's `statement_timeout` (57014,
/// query_canceled) or SQLite's progress handler interrupting it (SQLITE_INTERRUPT, 9).
fn stopped_at_bound(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "57014" || code == "9")
}

/// PostgreSQL names the violated constraint; SQLite names the columns in its message
/// ("UNIQUE constraint failed: users.email"). Both map to the same `Conflict`.
fn unique_violation(err: &sqlx::Error) -> Option<Conflict> {
    let db_err = err.as_database_error()?;
    if !db_err.is_unique_violation() {
        return None;
    }
    let key = match db_err.constraint() {
        Some(name) => name.to_owned(),
        None => db_err
            .message()
            .split_once(':')
            .map(|(_, columns)| columns.trim().to_owned())
            .unwrap_or_default(),
    };
    Some(match key.as_str() {
        "users_email_key" | "users.email" => Conflict::EmailTaken,
        "memberships_pkey" | "memberships.org_id, memberships.user_id" => Conflict::AlreadyMember,
        "canned_responses_shortcut_key" | "canned_responses.org_id, canned_responses.shortcut" => {
            Conflict::ShortcutTaken
        }
        "inboxes_email_address_key" | "inboxes.email_address" => Conflict::InboxAddressTaken,
        "contacts_external_id_key" | "contacts.org_id, contacts.external_id" => {
            Conflict::ExternalIdTaken
        }
        "contact_attribute_definitions_key"
        | "contact_attribute_definitions.org_id, contact_attribute_definitions.key" => {
            Conflict::AttributeKeyTaken
        }
        "teams_name_key" | "teams.org_id, teams.name" => Conflict::TeamNameTaken,
        _ => Conflict::Other(key),
    })
}
