//! Webhooks: the dispatcher turns events into deliveries (once per endpoint and event),
//! attempts are recorded, and a day of failures disables the endpoint.

use chrono::Duration;
use kaltalk_core::chat::{MessageKind, VisitorDetails};
use kaltalk_core::job::JobPayload;
use kaltalk_core::{ContactId, MessageText, OrgId, UserId};
use kaltalk_store::contacts::{ContactFields, SessionChoice};
use kaltalk_store::intake::{Customer, CustomerMessage, Thread};
use kaltalk_store::messages::AgentWrite;
use kaltalk_store::webhooks::{
    AfterFailure, AttemptResult, DisableNotice, EventKinds, NewWebhookEndpoint,
    WebhookDeliveryState, WebhookEndpoint, WebhookEndpointChange,
};
use kaltalk_store::{JobState, Store, StoreError};
use serde_json::Value;

use crate::helpers::{kept_email, now, sign_up, test_stores, web_inbox};

async fn endpoint(store: &Store, org: OrgId, url: &str, events: &[&str]) -> WebhookEndpoint {
    let endpoint = NewWebhookEndpoint {
        org_id: org,
        url: url.into(),
        secret: "whsec_test".into(),
        events: EventKinds(events.iter().map(|k| (*k).to_owned()).collect()),
    };
    store
        .create_webhook_endpoint(&endpoint, now())
        .await
        .expect("endpoint")
}

/// A visitor's first message (contact, conversation, message) and then a private note.
/// Returns the visitor's contact.
async fn visitor_then_note(store: &Store, org: OrgId, agent: UserId, token: &str) -> ContactId {
    let inbox = web_inbox(store, org, token).await;
    let written = store
        .take_in(
            CustomerMessage {
                inbox: &inbox,
                from: Customer::Visitor {
                    session: SessionChoice::New {
                        token_hash: &format!("hash-{token}"),
                    },
                    details: &VisitorDetails::default(),
                    fields: &ContactFields::default(),
                },
                thread: Thread::Latest,
                text: &MessageText::parse("text", "Where is my order?").expect("text"),
                attachments: &[],
                client_id: None,
                wants_a_person: false,
                email: None,
            },
            now(),
        )
        .await
        .expect("visitor writes");
    let note = AgentWrite {
        agent,
        kind: MessageKind::Note,
        text: &MessageText::parse("text", "private: VIP customer").expect("text"),
        client_id: None,
        attachments: &[],
        email: None,
        mentions: &[],
    };
    store
        .agent_writes(org, written.value.conversation.id, note, now())
        .await
        .expect("note");
    store
        .set_ai_opt_out(org, written.value.conversation.contact_id, true, now())
        .await
        .expect("opt out");
    written.value.conversation.contact_id
}

fn kinds_of(deliveries: &[kaltalk_store::webhooks::WebhookDelivery]) -> Vec<String> {
    let mut kinds: Vec<String> = deliveries.iter().map(|d| d.event_kind.clone()).collect();
    kinds.sort();
    kinds
}

#[tokio::test]
async fn dispatch_creates_one_delivery_per_subscribed_endpoint_and_event_exactly_once() {
    for (backend, store) in test_stores().await.stores {
        let (owner, org) = sign_up(&store, "owner@example.com").await;
        let everything = endpoint(&store, org.id, "https://a.example/hook", &[]).await;
        let contacts = endpoint(
            &store,
            org.id,
            "https://b.example/hook",
            &["contact.created"],
        )
        .await;
        let off = endpoint(&store, org.id, "https://c.example/hook", &[]).await;
        let disable = WebhookEndpointChange {
            enabled: Some(false),
            ..Default::default()
        };
        store
            .update_webhook_endpoint(org.id, off.id, &disable, now())
            .await
            .expect(backend);
        visitor_then_note(&store, org.id, owner, "wi_1").await;

        let first = store.dispatch_webhooks(now(), 100).await.expect(backend);
        let again = store.dispatch_webhooks(now(), 100).await.expect(backend);
        assert_eq!(first.deliveries_created, 5, "{backend}: {first:?}");
        assert_eq!(again.deliveries_created, 0, "{backend}: nothing twice");

        let all = store
            .list_webhook_deliveries(org.id, everything.id, 50)
            .await
            .expect(backend);
        // The private note's message.created is not among them.
        assert_eq!(
            kinds_of(&all),
            [
                "contact.created",
                "contact.updated",
                "conversation.created",
                "message.created"
            ],
            "{backend}"
        );
        let only_contacts = store
            .list_webhook_deliveries(org.id, contacts.id, 50)
            .await
            .expect(backend);
        assert_eq!(kinds_of(&only_contacts), ["contact.created"], "{backend}");
        let none = store
            .list_webhook_deliveries(org.id, off.id, 50)
            .await
            .expect(backend);
        assert!(
            none.is_empty(),
            "{backend}: a disabled endpoint gets nothing"
        );

        let message = all
            .iter()
            .find(|d| d.event_kind == "message.created")
            .expect("message delivery");
        assert_eq!(message.state, WebhookDeliveryState::Pending);
        let body: Value = serde_json::from_str(&message.body).expect("JSON body");
        assert_eq!(body["id"], message.id.to_string(), "{backend}");
        assert_eq!(body["type"], "message.created");
        assert_eq!(body["organization_id"], org.id.to_string());
        assert_eq!(body["data"]["text"], "Where is my order?");
        assert!(body["created_at"].is_string());

        let jobs = store.list_jobs(JobState::Queued, 100).await.expect(backend);
        let deliver_jobs = jobs
            .iter()
            .filter(|j| j.kind == kaltalk_core::job::DeliverWebhook::KIND)
            .count();
        assert_eq!(deliver_jobs, 5, "{backend}: one job per delivery");
    }
}

#[tokio::test]
async fn a_deleted_contact_is_told_by_its_id_alone() {
    for (backend, store) in test_stores().await.stores {
        let (owner, org) = sign_up(&store, "owner@example.com").await;
        let hook = endpoint(
            &store,
            org.id,
            "https://a.example/hook",
            &["contact.deleted"],
        )
        .await;
        let contact = visitor_then_note(&store, org.id, owner, "wi_gone").await;
        let change = kaltalk_store::contacts::ContactChange {
            name: Some(Some("Ada Lovelace".into())),
            email: Some(Some("ada@example.com".into())),
            ..Default::default()
        };
        store
            .update_contact(org.id, contact, &change, now())
            .await
            .expect(backend);
        store
            .delete_contact(org.id, contact, now())
            .await
            .expect(backend);

        store.dispatch_webhooks(now(), 100).await.expect(backend);
        let deliveries = store
            .list_webhook_deliveries(org.id, hook.id, 50)
            .await
            .expect(backend);
        assert_eq!(kinds_of(&deliveries), ["contact.deleted"], "{backend}");
        let body: Value = serde_json::from_str(&deliveries[0].body).expect("JSON body");
        assert_eq!(
            body["data"],
            serde_json::json!({ "id": contact, "merged_into": null }),
            "{backend}: nothing of what the contact held"
        );
    }
}

#[tokio::test]
async fn another_organizations_endpoints_and_deliveries_are_not_found() {
    for (backend, store) in test_stores().await.stores {
        let (acme_owner, acme) = sign_up(&store, "owner@acme.test").await;
        let (_, globex) = sign_up(&store, "owner@globex.test").await;
        let acme_hook = endpoint(&store, acme.id, "https://acme.example/hook", &[]).await;
        let globex_hook = endpoint(&store, globex.id, "https://globex.example/hook", &[]).await;
        visitor_then_note(&store, acme.id, acme_owner, "wi_acme").await;
        store.dispatch_webhooks(now(), 100).await.expect(backend);

        // Globex's endpoint hears nothing of Acme's events.
        let globex_deliveries = store
            .list_webhook_deliveries(globex.id, globex_hook.id, 50)
            .await
            .expect(backend);
        assert!(globex_deliveries.is_empty(), "{backend}");
        let acme_delivery = store
            .list_webhook_deliveries(acme.id, acme_hook.id, 50)
            .await
            .expect(backend)
            .remove(0);

        // Globex cannot reach Acme's endpoint or its deliveries by id.
        let not_found = |r: Result<(), StoreError>, what: &str| {
            assert!(
                matches!(r, Err(StoreError::NotFound)),
                "{backend}: {what}: {r:?}"
            );
        };
        not_found(
            store
                .get_webhook_endpoint(globex.id, acme_hook.id)
                .await
                .map(drop),
            "get",
        );
        not_found(
            store
                .update_webhook_endpoint(globex.id, acme_hook.id, &Default::default(), now())
                .await
                .map(drop),
            "update",
        );
        not_found(
            store
                .list_webhook_deliveries(globex.id, acme_hook.id, 50)
                .await
                .map(drop),
            "deliveries",
        );
        not_found(
            store
                .get_webhook_delivery(globex.id, acme_hook.id, acme_delivery.id)
                .await
                .map(drop),
            "delivery",
        );
        not_found(
            store
                .replay_webhook_delivery(globex.id, acme_hook.id, acme_delivery.id, now())
                .await
                .map(drop),
            "replay",
        );
        not_found(
            store
                .replay_webhook_delivery(globex.id, globex_hook.id, acme_delivery.id, now())
                .await
                .map(drop),
            "replay under own endpoint",
        );
        not_found(
            store
                .create_webhook_ping(globex.id, acme_hook.id, now())
                .await
                .map(drop),
            "ping",
        );
        not_found(
            store.delete_webhook_endpoint(globex.id, acme_hook.id).await,
            "delete",
        );
        assert!(
            store
                .list_webhook_attempts(globex.id, acme_delivery.id)
                .await
                .expect(backend)
                .is_empty()
        );
        // Still there for Acme.
        assert!(
            store
                .get_webhook_endpoint(acme.id, acme_hook.id)
                .await
                .is_ok()
        );
    }
}

#[tokio::test]
async fn failures_retry_then_a_day_of_them_disables_the_endpoint_and_tells_the_admins() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "owner@example.com").await;
        let hook = endpoint(&store, org.id, "https://down.example/hook", &[]).await;
        let t0 = now();
        let ping = store
            .create_webhook_ping(org.id, hook.id, t0)
            .await
            .expect(backend);
        let notice = DisableNotice {
            reason: "Every delivery failed for 24 hours.".into(),
            emails: vec![kept_email("owner@example.com")],
        };
        let failed_at = |at| AttemptResult {
            delivery_id: ping.id,
            round: 0,
            attempted_at: at,
            response_status: Some(500),
            latency_ms: 12,
            error: Some("HTTP 500".into()),
        };
        let first = store
            .record_webhook_attempt(
                &failed_at(t0),
                AfterFailure::RetryAt(t0 + Duration::seconds(30)),
                &notice,
                t0,
            )
            .await
            .expect(backend);
        assert_eq!(first.state, WebhookDeliveryState::Pending);
        assert!(!first.disabled_endpoint);
        let t1 = t0 + Duration::hours(24);
        let last = store
            .record_webhook_attempt(&failed_at(t1), AfterFailure::GiveUp, &notice, t1)
            .await
            .expect(backend);
        assert_eq!(last.state, WebhookDeliveryState::Failed, "{backend}");
        assert!(last.disabled_endpoint, "{backend}");

        let hook = store
            .get_webhook_endpoint(org.id, hook.id)
            .await
            .expect(backend);
        assert!(!hook.enabled);
        assert_eq!(
            hook.disabled_reason.as_deref(),
            Some("Every delivery failed for 24 hours.")
        );
        let delivery = store
            .get_webhook_delivery(org.id, hook.id, ping.id)
            .await
            .expect(backend);
        assert_eq!(delivery.attempts, 2);
        assert_eq!(delivery.last_status, Some(500));
        let attempts = store
            .list_webhook_attempts(org.id, ping.id)
            .await
            .expect(backend);
        assert_eq!(attempts.len(), 2);
        let emails = store.list_emails(org.id, 10).await.expect(backend);
        assert_eq!(
            emails
                .iter()
                .filter(|e| e.to_address == "owner@example.com")
                .count(),
            1,
            "{backend}"
        );

        // Enabled again, it starts a fresh streak.
        let enable = WebhookEndpointChange {
            enabled: Some(true),
            ..Default::default()
        };
        let hook = store
            .update_webhook_endpoint(org.id, hook.id, &enable, t1)
            .await
            .expect(backend);
        assert!(hook.enabled && hook.disabled_reason.is_none() && hook.failing_since.is_none());
    }
}

#[tokio::test]
async fn events_from_before_an_endpoint_existed_are_not_sent_to_it() {
    for (backend, store) in test_stores().await.stores {
        let (owner, org) = sign_up(&store, "owner@example.com").await;
        // Without any endpoint a pass reads nothing at all.
        visitor_then_note(&store, org.id, owner, "wi_early").await;
        let idle = store.dispatch_webhooks(now(), 100).await.expect(backend);
        assert_eq!(idle, Default::default(), "{backend}");

        let hook = endpoint(&store, org.id, "https://late.example/hook", &[]).await;
        let pass = store.dispatch_webhooks(now(), 100).await.expect(backend);
        assert_eq!(pass.deliveries_created, 0, "{backend}: {pass:?}");
        assert!(
            store
                .list_webhook_deliveries(org.id, hook.id, 10)
                .await
                .expect(backend)
                .is_empty()
        );
    }
}
