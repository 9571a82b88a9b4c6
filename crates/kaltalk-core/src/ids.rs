//! Typed ids. Every id is a UUIDv7 (time-sortable) wrapped in its own type so a user id
//! can never be passed where an organization id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    )*};
}

id_type!(
    UserId,
    /// An organization: the tenant every other row belongs to.
    OrgId,
    SessionId,
    InvitationId,
    ApiKeyId,
    /// A row of the event log.
    EventId,
    JobId,
    /// An outbound email kept in the outbox.
    EmailId,
    InboxId,
    /// A customer or website visitor who wrote to us.
    ContactId,
    ConversationId,
    MessageId,
    /// A widget visitor's browser session.
    VisitorSessionId,
    /// A file attached to a message.
    AttachmentId,
    /// An email received or sent on an email inbox's conversation.
    EmailMessageId,
    /// A registered webhook endpoint.
    WebhookId,
    /// One logical webhook delivery; sent as `KalTalk-Delivery`, the same on every attempt.
    WebhookDeliveryId,
    /// One HTTP attempt at a webhook delivery.
    WebhookAttemptId,
    /// A team of an organization's members that conversations are routed to.
    TeamId,
    /// One notice to one member about a conversation that needs them.
    NotificationId,
    /// A browser's Web Push subscription, for the member signed in on it.
    PushSubscriptionId,
    /// A native app's device (FCM or APNs push token), bound to its app session.
    DeviceId,
);
