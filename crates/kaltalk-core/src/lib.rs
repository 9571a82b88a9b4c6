//! KalTalk's domain vocabulary: typed ids, values validated at the edge, roles and their
//! permissions, event kinds, secret tokens and the clock every time-dependent rule reads.

pub mod chat;
pub mod clock;
pub mod event;
pub mod format;
pub mod handover;
pub mod hours;
pub mod html;
pub mod ids;
pub mod job;
pub mod mention;
pub mod role;
pub mod token;
pub mod values;

pub use clock::{Clock, ManualClock, SystemClock};
pub use ids::{
    ApiKeyId, AttachmentId, ContactId, ConversationId, DeviceId, EmailId, EmailMessageId, EventId,
    InboxId, InvitationId, JobId, MessageId, NotificationId, OrgId, PushSubscriptionId, SessionId,
    TeamId, UserId, VisitorSessionId, WebhookAttemptId, WebhookDeliveryId, WebhookId,
};
pub use role::{Permission, Role};
pub use values::{EmailAddress, MessageText, OrgName, Password, PersonName, Text, ValidationError};
