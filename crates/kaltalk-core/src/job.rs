//! The job queue's vocabulary: one payload struct per job kind, its name in `KIND`. The
//! store writes `NewJob::new(&payload)`; a worker reads `job.payload::<T>()` and gets the
//! struct or a clear error (which fails the job), never a field picked out by name.
//!
//! Adding a job kind: a struct here with `impl JobPayload` (its `KIND`; `knowledge.*`
//! names run in the knowledge lane), its name in [`ALL_KINDS`], `NewJob::new(&payload)`
//! where it is queued, one arm in the server's `jobs::handle`, and the golden story's
//! `JOB_KINDS`.

use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::{
    ConversationId, DeviceId, EmailId, EmailMessageId, MessageId, NotificationId, OrgId,
    PushSubscriptionId, WebhookDeliveryId,
};

/// A job payload: what a job of kind `KIND` carries.
pub trait JobPayload: Serialize + DeserializeOwned {
    const KIND: &'static str;
}

/// Why a job's payload could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JobPayloadError {
    #[error("a {found} job was read as a {expected} job")]
    WrongKind {
        expected: &'static str,
        found: String,
    },
    #[error("the payload of the {kind} job does not fit it: {source}")]
    Malformed {
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// Reads a job's stored kind and payload as `T`.
pub fn read<T: JobPayload>(kind: &str, payload: &serde_json::Value) -> Result<T, JobPayloadError> {
    if kind != T::KIND {
        return Err(JobPayloadError::WrongKind {
            expected: T::KIND,
            found: kind.to_owned(),
        });
    }
    T::deserialize(payload).map_err(|source| JobPayloadError::Malformed {
        kind: T::KIND,
        source,
    })
}

/// Deserialises a key that may hold `null` into `Some(None)` (see `event.rs`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Delivers one outbound email through the relay.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct DeliverEmail {
    pub email_id: EmailId,
}

impl JobPayload for DeliverEmail {
    const KIND: &'static str = "email.deliver";
}

/// Sends an agent's reply on an email conversation.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct SendEmailReply {
    pub email_message_id: EmailMessageId,
}

impl JobPayload for SendEmailReply {
    const KIND: &'static str = "email.reply";
}

/// Lets the bot answer a customer's message.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AiTurn {
    pub org_id: OrgId,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    /// The widget visitor's address, which the turn is counted against (`null` when it
    /// was not known); absent for channels without one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub ip: Option<Option<String>>,
}

impl AiTurn {
    /// The visitor's address, when the message came with one.
    pub fn address(&self) -> Option<&str> {
        self.ip.as_ref()?.as_deref()
    }
}

impl JobPayload for AiTurn {
    const KIND: &'static str = "ai.turn";
}

/// Turns a knowledge source into chunks.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct IndexSource {
    pub org_id: OrgId,
    pub source_id: Uuid,
}

impl JobPayload for IndexSource {
    const KIND: &'static str = "knowledge.index";
}

/// Gives an organization's chunks vectors of the configured embedding model.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Reembed {
    pub org_id: OrgId,
}

impl JobPayload for Reembed {
    const KIND: &'static str = "knowledge.reembed";
}

/// Makes the next attempt of one webhook delivery, in its replay `round`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct DeliverWebhook {
    pub delivery_id: WebhookDeliveryId,
    pub round: i32,
}

impl JobPayload for DeliverWebhook {
    const KIND: &'static str = "webhook.deliver";
}

/// Pushes one notification to one browser; `attempt` counts from 1 (a retry after 429 or
/// 5xx is a new job, due when the push service said it could take it again).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct DeliverPush {
    pub notification_id: NotificationId,
    pub subscription_id: PushSubscriptionId,
    pub attempt: i32,
}

impl JobPayload for DeliverPush {
    const KIND: &'static str = "push.deliver";
}

/// Emails a member who is not online about one conversation: every notification of
/// theirs about it that is still unread when it is due.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct NotifyByEmail {
    pub batch_id: Uuid,
}

impl JobPayload for NotifyByEmail {
    const KIND: &'static str = "notification.email";
}

/// Pushes one notification to one native app's device through FCM or APNs; `attempt`
/// counts from 1, as for [`DeliverPush`].
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct DeliverNativePush {
    pub notification_id: NotificationId,
    pub device_id: DeviceId,
    pub attempt: i32,
}

impl JobPayload for DeliverNativePush {
    const KIND: &'static str = "push.native";
}

/// Every job kind's name.
pub const ALL_KINDS: [&str; 9] = [
    DeliverEmail::KIND,
    SendEmailReply::KIND,
    AiTurn::KIND,
    IndexSource::KIND,
    Reembed::KIND,
    DeliverWebhook::KIND,
    DeliverPush::KIND,
    NotifyByEmail::KIND,
    DeliverNativePush::KIND,
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_payload_of_another_kind_or_shape_is_an_error() {
        let payload = json!({ "org_id": OrgId::new() });
        assert!(read::<Reembed>("knowledge.reembed", &payload).is_ok());
        assert!(matches!(
            read::<Reembed>("ai.turn", &payload),
            Err(JobPayloadError::WrongKind { .. })
        ));
        assert!(matches!(
            read::<IndexSource>("knowledge.index", &payload),
            Err(JobPayloadError::Malformed { .. })
        ));
    }

    #[test]
    fn the_bot_turn_keeps_an_absent_address_apart_from_an_unknown_one() {
        let ids = json!({ "org_id": OrgId::new(), "conversation_id": ConversationId::new(), "message_id": MessageId::new() });
        let mut unknown = ids.clone();
        unknown["ip"] = serde_json::Value::Null;
        for stored in [ids, unknown] {
            let turn: AiTurn = read("ai.turn", &stored).expect("a turn");
            assert_eq!(turn.address(), None);
            assert_eq!(serde_json::to_value(&turn).expect("json"), stored);
        }
    }
}
