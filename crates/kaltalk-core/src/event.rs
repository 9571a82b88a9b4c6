//! The event log's vocabulary: every event kind, its name (what is stored in the `kind`
//! column and what subscribers match) and its payload (what is stored in `payload`), in
//! one place. Producers build a payload struct; readers get an [`EventPayload`] and match
//! on it instead of picking JSON apart by string keys.
//!
//! The stored form is the payload struct serialised as a JSON object, exactly as the
//! untyped code wrote it (the server's golden files prove it): keys absent when the old
//! code left them out, `null` where it wrote one.
//!
//! Adding a kind:
//! 1. A payload struct below (`Debug, Clone, PartialEq, Serialize, Deserialize`): a braced
//!    `struct X {}` for an empty payload (a unit struct would store `null`); a key that is
//!    sometimes left out `#[serde(default, skip_serializing_if = "Option::is_none")]`; a
//!    key that must be stored as `null` too `Option<Option<T>>` with
//!    `deserialize_with = "present"` as well.
//! 2. One line `Variant = CONST_NAME = "noun.verb",` in `event_kinds!`: that makes the
//!    name constant, the `EventPayload::Variant`, `From<Variant>` and its place in
//!    [`ALL_KINDS`]. The variant and the struct share the name.
//! 3. The producer, in the store transaction:
//!    `append_event!(tx, NewEvent::new(Some(org), subject, Variant { .. }), now)?`
//!    (`.in_conversation(id)` when the conversation's widget must hear it).
//! 4. Readers match `event.payload()`. The dashboard socket sends every kind as it is;
//!    the widget only what `widget_frame` matches; webhooks only `WEBHOOK_EVENT_KINDS`.
//! 5. The server's golden story (`tests/api/event_golden.rs`): produce it, list it in
//!    `ORG_EVENT_KINDS`, run once with `KALTALK_BLESS=1` and check the diff adds lines only.
//!
//! A new fact on an existing kind (a team on `conversation.updated`) is an optional field
//! on its struct and, for a conversation change, a constructor beside the others.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::chat::{
    Availability, ConversationStatus, Handling, InboxKind, MessageKind, NotificationReason,
    SenderKind,
};
use crate::{
    AttachmentId, ContactId, ConversationId, InboxId, MessageId, NotificationId, Role, TeamId,
    UserId,
};

/// Deserialises a key that may hold `null` into `Some(None)`, so that "absent" (the outer
/// `None`, with `#[serde(default)]`) and "present but null" stay apart on a round trip.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Why a stored event could not be read as its kind.
#[derive(Debug, thiserror::Error)]
pub enum EventPayloadError {
    #[error("unknown event kind {0:?}")]
    UnknownKind(String),
    #[error("the payload of a {kind} event does not fit it: {source}")]
    Malformed {
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

macro_rules! event_kinds {
    ($($(#[$doc:meta])* $variant:ident = $name:ident = $text:literal,)*) => {
        $($(#[$doc])* pub const $name: &str = $text;)*

        /// Every name, for lists and tests.
        pub const ALL_KINDS: &[&str] = &[$($text),*];

        /// One event's payload, by kind. The stored `kind` column is [`EventPayload::kind`];
        /// the stored `payload` is [`EventPayload::to_json`].
        #[derive(Debug, Clone, PartialEq)]
        pub enum EventPayload {
            $($(#[$doc])* $variant($variant),)*
        }

        impl EventPayload {
            /// The kind's name.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $name,)*
                }
            }

            /// The payload as stored and as the dashboard socket sends it.
            pub fn to_json(&self) -> Value {
                let value = match self {
                    $(Self::$variant(payload) => serde_json::to_value(payload),)*
                };
                // A struct of plain fields always serialises; an empty object would be
                // what an impossible failure leaves.
                value.unwrap_or_else(|_| Value::Object(Default::default()))
            }

            /// Reads a stored row's `kind` and `payload`.
            pub fn from_parts(kind: &str, payload: Value) -> Result<Self, EventPayloadError> {
                match kind {
                    $($text => serde_json::from_value(payload)
                        .map(Self::$variant)
                        .map_err(|source| EventPayloadError::Malformed { kind: $name, source }),)*
                    other => Err(EventPayloadError::UnknownKind(other.to_owned())),
                }
            }
        }

        $(impl From<$variant> for EventPayload {
            fn from(payload: $variant) -> Self {
                Self::$variant(payload)
            }
        })*
    };
}

event_kinds! {
    UserSignedUp = USER_SIGNED_UP = "user.signed_up",
    UserUpdated = USER_UPDATED = "user.updated",
    OrganizationCreated = ORGANIZATION_CREATED = "organization.created",
    OrganizationUpdated = ORGANIZATION_UPDATED = "organization.updated",
    MemberAdded = MEMBER_ADDED = "member.added",
    MemberRoleChanged = MEMBER_ROLE_CHANGED = "member.role_changed",
    MemberRemoved = MEMBER_REMOVED = "member.removed",
    /// A member set themselves online, busy or offline (or the server took them offline).
    MemberAvailabilityChanged = MEMBER_AVAILABILITY_CHANGED = "member.availability_changed",
    /// How many open conversations auto-assignment gives a member at most.
    MemberCapacityChanged = MEMBER_CAPACITY_CHANGED = "member.capacity_changed",
    TeamCreated = TEAM_CREATED = "team.created",
    /// Renamed, or a member joined or left.
    TeamUpdated = TEAM_UPDATED = "team.updated",
    TeamDeleted = TEAM_DELETED = "team.deleted",
    OwnershipTransferred = OWNERSHIP_TRANSFERRED = "organization.ownership_transferred",
    InvitationCreated = INVITATION_CREATED = "invitation.created",
    InvitationRevoked = INVITATION_REVOKED = "invitation.revoked",
    ApiKeyCreated = API_KEY_CREATED = "api_key.created",
    ApiKeyRevoked = API_KEY_REVOKED = "api_key.revoked",
    /// An outbound email was stored (kept or queued for the relay).
    EmailQueued = EMAIL_QUEUED = "email.queued",
    InboxCreated = INBOX_CREATED = "inbox.created",
    InboxUpdated = INBOX_UPDATED = "inbox.updated",
    InboxDeleted = INBOX_DELETED = "inbox.deleted",
    ContactCreated = CONTACT_CREATED = "contact.created",
    /// A contact's identity (name, email, external id, attributes) or AI opt-out changed.
    ContactUpdated = CONTACT_UPDATED = "contact.updated",
    ContactDeleted = CONTACT_DELETED = "contact.deleted",
    ConversationCreated = CONVERSATION_CREATED = "conversation.created",
    /// Status, assignee, who handles it, labels or contact changed.
    ConversationUpdated = CONVERSATION_UPDATED = "conversation.updated",
    ConversationSeen = CONVERSATION_SEEN = "conversation.seen",
    /// The bot handed the conversation to the team.
    ConversationEscalated = CONVERSATION_ESCALATED = "conversation.escalated",
    /// The customer has waited for a reply longer than the inbox allows (once per wait).
    ConversationWaiting = CONVERSATION_WAITING = "conversation.waiting",
    /// A teammate was @mentioned in a private note (one event per person mentioned).
    ConversationMentioned = CONVERSATION_MENTIONED = "conversation.mentioned",
    MessageCreated = MESSAGE_CREATED = "message.created",
    /// A message changed after it was written (an emailed reply's delivery state).
    MessageUpdated = MESSAGE_UPDATED = "message.updated",
    SourceUpdated = SOURCE_UPDATED = "knowledge.source_updated",
    /// A member was told about a conversation (only that member's dashboards hear it).
    NotificationCreated = NOTIFICATION_CREATED = "notification.created",
    /// A member read one notification, or all of theirs.
    NotificationsRead = NOTIFICATIONS_READ = "notification.read",
}

// ---- accounts ------------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserSignedUp {}

/// Which of a person's account fields changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserField {
    Name,
    Email,
    Password,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserUpdated {
    pub field: UserField,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrganizationCreated {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrganizationUpdated {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberAdded {
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberRoleChanged {
    pub role: Role,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberRemoved {
    /// Set when the person deleted their whole account (not removed by the team).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_deleted: Option<bool>,
}

/// The subject is the member (a user id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberAvailabilityChanged {
    pub availability: Availability,
    /// Set when the server did it (no dashboard connected for too long, or a dashboard
    /// connecting again), not the member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberCapacityChanged {
    pub capacity: i32,
}

/// The subject is the new owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnershipTransferred {
    pub from: UserId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvitationCreated {
    pub role: Role,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InvitationRevoked {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyCreated {
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRevoked {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailQueued {
    /// What the email is (`invitation`, `password_reset`, `reply` …).
    pub kind: String,
}

// ---- teams ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamCreated {
    pub name: String,
}

/// What changed in a team: only the keys set are in the payload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TeamUpdated {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_added: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_removed: Option<UserId>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TeamDeleted {}

// ---- inboxes -------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxCreated {
    pub kind: InboxKind,
}

/// What happened to an inbox's identity-verification secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretChange {
    Rotated,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InboxUpdated {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_secret: Option<SecretChange>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InboxDeleted {}

// ---- contacts ------------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactCreated {}

/// Which facts of the contact the change carries; most changes carry none (read the
/// contact).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactUpdated {
    /// The name an email gave a nameless contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_opt_out: Option<bool>,
    /// The contact merged into this one (and deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_from: Option<ContactId>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactDeleted {
    /// Set when the contact was merged into another rather than deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<ContactId>,
}

// ---- conversations -------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationCreated {
    pub inbox_id: InboxId,
    pub contact_id: ContactId,
    /// Who the intake decided answers first (absent in events older than the field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handling: Option<Handling>,
}

/// What changed in a conversation: only the keys set here are in the payload. Build it
/// with the constructors, one change each, as the store writes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConversationUpdated {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ConversationStatus>,
    /// With a status change: until when it is snoozed (`null` for other statuses).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub snoozed_until: Option<Option<DateTime<Utc>>>,
    /// Reopened because the customer wrote again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reopened: Option<bool>,
    /// Reopened because its snooze ran out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub woke: Option<bool>,
    /// The new assignee (`null`: unassigned).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub assignee_id: Option<Option<UserId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handling: Option<Handling>,
    /// The whole new set of labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// The contact it now belongs to (after a merge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    /// The team it now belongs to (`null`: none).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub team_id: Option<Option<TeamId>>,
    /// With an assignee: auto-assignment chose them (not a person).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_assigned: Option<bool>,
    /// With an assignee: the member who assigned it (absent when the server did), so
    /// someone who takes a conversation is not told they got it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_by: Option<UserId>,
}

impl ConversationUpdated {
    /// A status set by the team (`snoozed_until` only for a snooze).
    pub fn status(status: ConversationStatus, snoozed_until: Option<DateTime<Utc>>) -> Self {
        Self {
            status: Some(status),
            snoozed_until: Some(snoozed_until),
            ..Self::default()
        }
    }

    /// Open again because the customer wrote.
    pub fn reopened() -> Self {
        Self {
            status: Some(ConversationStatus::Open),
            reopened: Some(true),
            ..Self::default()
        }
    }

    /// Open again because its snooze ran out.
    pub fn woke() -> Self {
        Self {
            status: Some(ConversationStatus::Open),
            woke: Some(true),
            ..Self::default()
        }
    }

    /// Assigned (or unassigned, `None`) by the member `by`, when a member did it.
    pub fn assignee(assignee: Option<UserId>, by: Option<UserId>) -> Self {
        Self {
            assignee_id: Some(assignee),
            assigned_by: by,
            ..Self::default()
        }
    }

    pub fn handling(handling: Handling) -> Self {
        Self {
            handling: Some(handling),
            ..Self::default()
        }
    }

    pub fn labels(labels: Vec<String>) -> Self {
        Self {
            labels: Some(labels),
            ..Self::default()
        }
    }

    pub fn team(team: Option<TeamId>) -> Self {
        Self {
            team_id: Some(team),
            ..Self::default()
        }
    }

    /// Assigned by auto-assignment (round robin in the conversation's team).
    pub fn auto_assigned(assignee: UserId) -> Self {
        Self {
            assignee_id: Some(Some(assignee)),
            auto_assigned: Some(true),
            ..Self::default()
        }
    }

    pub fn contact(contact: ContactId) -> Self {
        Self {
            contact_id: Some(contact),
            ..Self::default()
        }
    }
}

/// Who saw the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seer {
    Agent,
    Contact,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationSeen {
    pub by: Seer,
    /// The newest message they saw (none in an empty conversation).
    pub message_id: Option<MessageId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationEscalated {
    pub reason: String,
    pub handling: Handling,
}

/// The customer has waited since `since` (their first unanswered message, or the
/// handover) for a reply, longer than the inbox's `minutes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationWaiting {
    pub since: DateTime<Utc>,
    pub minutes: i32,
}

/// `user_id` is told about `conversation_id` for `reason`. The subject is the
/// notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationCreated {
    pub user_id: UserId,
    pub reason: NotificationReason,
    pub conversation_id: ConversationId,
}

/// `user_id` read the notification `notification_id`, or every one of theirs (`null`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationsRead {
    pub user_id: UserId,
    pub notification_id: Option<NotificationId>,
}

/// `user_id` was @mentioned by `by` in the private note `message_id`. The subject is the
/// conversation; only the team hears it (never the widget, never a webhook).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationMentioned {
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    pub user_id: UserId,
    pub by: UserId,
}

// ---- messages ------------------------------------------------------------------------

/// A file on a message, as the widget and the inbox get it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachmentPayload {
    pub id: AttachmentId,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    /// The widget's tokenised URL for the file.
    pub url: String,
}

/// A message as the widget, the inbox, the API and webhooks show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagePayload {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub sender: SenderKind,
    pub sender_name: Option<String>,
    pub kind: MessageKind,
    pub text: String,
    pub client_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Extra facts (a bot answer's citations, email delivery), or null.
    pub metadata: Option<Value>,
    pub attachments: Vec<AttachmentPayload>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageCreated {
    pub message: MessagePayload,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageUpdated {
    pub message: MessagePayload,
}

// ---- knowledge -----------------------------------------------------------------------

/// What changed in a knowledge source: only the keys set are in the payload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceUpdated {
    /// Its new state (`queued`, `indexing`, `ready`, `failed`, `deleted` …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Queued by its own schedule rather than by a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<bool>,
    /// With a state: what went wrong (`null` when nothing did).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub error: Option<Option<String>>,
    /// With `ready`: how many chunks it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<usize>,
    /// Its new re-sync interval (`daily`, `weekly`; `null`: only when asked).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub sync_every: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub next_sync_at: Option<Option<DateTime<Utc>>>,
}

impl SourceUpdated {
    pub fn state(state: &str) -> Self {
        Self {
            state: Some(state.to_owned()),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Reading a stored payload and writing it again gives the same JSON: absent keys stay
    /// absent, nulls stay null, times keep their digits.
    #[test]
    fn stored_payloads_round_trip_unchanged() {
        let stored = [
            (USER_UPDATED, json!({ "field": "password" })),
            (MEMBER_REMOVED, json!({})),
            (MEMBER_REMOVED, json!({ "account_deleted": true })),
            (INBOX_UPDATED, json!({ "identity_secret": "rotated" })),
            (CONTACT_UPDATED, json!({ "name": "Ada" })),
            (
                CONTACT_DELETED,
                json!({ "merged_into": "0190d5a6-0000-7000-8000-000000000001" }),
            ),
            (
                CONVERSATION_UPDATED,
                json!({ "status": "snoozed", "snoozed_until": "2026-12-02T17:52:14.123456789Z" }),
            ),
            (
                CONVERSATION_UPDATED,
                json!({ "status": "resolved", "snoozed_until": null }),
            ),
            (
                CONVERSATION_UPDATED,
                json!({ "status": "open", "reopened": true }),
            ),
            (CONVERSATION_UPDATED, json!({ "assignee_id": null })),
            (CONVERSATION_UPDATED, json!({ "labels": ["billing"] })),
            (
                CONVERSATION_SEEN,
                json!({ "by": "contact", "message_id": null }),
            ),
            (SOURCE_UPDATED, json!({ "state": "failed", "error": null })),
            (
                SOURCE_UPDATED,
                json!({ "sync_every": null, "next_sync_at": null }),
            ),
            (SOURCE_UPDATED, json!({ "state": "ready", "chunks": 3 })),
        ];
        for (kind, payload) in stored {
            let typed = EventPayload::from_parts(kind, payload.clone()).expect(kind);
            assert_eq!(typed.kind(), kind);
            assert_eq!(typed.to_json(), payload, "{kind}");
        }
    }

    #[test]
    fn an_unknown_kind_or_a_payload_that_does_not_fit_is_an_error_not_a_guess() {
        assert!(matches!(
            EventPayload::from_parts("conversation.deleted", json!({})),
            Err(EventPayloadError::UnknownKind(_))
        ));
        assert!(matches!(
            EventPayload::from_parts(CONVERSATION_CREATED, json!({ "inbox_id": 3 })),
            Err(EventPayloadError::Malformed { .. })
        ));
    }

    #[test]
    fn every_kind_has_one_name() {
        let mut names = ALL_KINDS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL_KINDS.len());
    }
}
