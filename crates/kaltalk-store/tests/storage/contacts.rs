//! The Contacts section's storage: the searchable, filterable list, notes, attribute
//! definitions and the values they check, imports, and merges that carry notes along.

use chrono::Duration;
use kaltalk_core::MessageText;
use kaltalk_core::chat::VisitorDetails;
use kaltalk_store::contacts::{
    AttributeKind, AttributeMatch, ContactFields, ContactListQuery, ImportRow,
    NewAttributeDefinition, SessionChoice,
};
use kaltalk_store::conversations::ConversationFilter;
use kaltalk_store::intake::{Customer, CustomerMessage, Thread};
use kaltalk_store::{Conflict, Store, StoreError};
use serde_json::{Map, Value, json};

use crate::helpers::{now, sign_up, test_stores, web_inbox};

async fn contact(
    store: &Store,
    org: kaltalk_core::OrgId,
    name: &str,
    email: Option<&str>,
    attributes: Value,
    at: chrono::DateTime<chrono::Utc>,
) -> kaltalk_store::contacts::Contact {
    store
        .create_contact(
            org,
            &ContactFields {
                name: Some(name.into()),
                email: email.map(str::to_owned),
                attributes: Some(attributes),
                ..ContactFields::default()
            },
            at,
        )
        .await
        .expect("contact")
        .value
}

fn names(contacts: &[kaltalk_store::contacts::Contact]) -> Vec<String> {
    contacts
        .iter()
        .map(|c| c.name.clone().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn the_contact_list_searches_filters_and_pages() {
    for (backend, store) in test_stores().await.stores {
        let (_, acme) = sign_up(&store, "ada@acme.test").await;
        let (_, globex) = sign_up(&store, "hank@globex.test").await;
        let t0 = now();
        let ada = contact(
            &store,
            acme.id,
            "Ada Lovelace",
            Some("ada@engines.test"),
            json!({"plan": "pro", "seats": 5}),
            t0,
        )
        .await;
        let _bob = contact(
            &store,
            acme.id,
            "Bob Byron",
            None,
            json!({"plan": "free", "vip": true}),
            t0 + Duration::seconds(1),
        )
        .await;
        let _cy = contact(
            &store,
            acme.id,
            "Cy Babbage",
            Some("cy@engines.test"),
            json!({"plan": "pro"}),
            t0 + Duration::seconds(2),
        )
        .await;
        contact(
            &store,
            globex.id,
            "Ada Other",
            Some("ada@globex.test"),
            json!({"plan": "pro"}),
            t0,
        )
        .await;
        store
            .update_contact_profile(
                acme.id,
                ada.id,
                Some("Ada Lovelace"),
                Some("ada@engines.test"),
                Some("+47 555 12345"),
                t0,
            )
            .await
            .expect("phone");

        let page = |query: ContactListQuery| {
            let store = store.clone();
            async move {
                names(
                    &store
                        .contacts_page(acme.id, &ContactListQuery { limit: 50, ..query })
                        .await
                        .expect("page"),
                )
            }
        };
        assert_eq!(
            page(ContactListQuery::default()).await,
            ["Cy Babbage", "Bob Byron", "Ada Lovelace"],
            "{backend}: newest first, this org only"
        );
        let search = |q: &str| ContactListQuery {
            search: Some(q.into()),
            ..ContactListQuery::default()
        };
        assert_eq!(
            page(search("ada")).await,
            ["Ada Lovelace"],
            "{backend}: by name"
        );
        assert_eq!(
            page(search("lovel")).await,
            ["Ada Lovelace"],
            "{backend}: word prefixes"
        );
        assert_eq!(
            page(search("cy@engines.test")).await,
            ["Cy Babbage"],
            "{backend}: by email"
        );
        assert_eq!(
            page(search("555")).await,
            ["Ada Lovelace"],
            "{backend}: by phone"
        );
        assert!(page(search("nobody")).await.is_empty(), "{backend}");
        assert_eq!(
            page(search("\"*) OR 1=1 --")).await,
            Vec::<String>::new(),
            "{backend}: no query syntax"
        );

        let attribute = |key: &str, value: &str| ContactListQuery {
            attribute: Some(AttributeMatch {
                key: key.into(),
                value: value.into(),
            }),
            ..ContactListQuery::default()
        };
        assert_eq!(
            page(attribute("plan", "pro")).await,
            ["Cy Babbage", "Ada Lovelace"],
            "{backend}: text value"
        );
        assert_eq!(
            page(attribute("seats", "5")).await,
            ["Ada Lovelace"],
            "{backend}: a number"
        );
        assert_eq!(
            page(attribute("vip", "yes")).await,
            ["Bob Byron"],
            "{backend}: a boolean"
        );
        assert!(
            page(attribute("plan", "enterprise")).await.is_empty(),
            "{backend}"
        );
        assert_eq!(
            page(ContactListQuery {
                has_email: true,
                ..ContactListQuery::default()
            })
            .await,
            ["Cy Babbage", "Ada Lovelace"],
            "{backend}: has email"
        );

        // Keyset paging: the second page starts strictly after the first page's last.
        let first = store
            .contacts_page(
                acme.id,
                &ContactListQuery {
                    limit: 2,
                    ..ContactListQuery::default()
                },
            )
            .await
            .expect("page");
        assert_eq!(names(&first), ["Cy Babbage", "Bob Byron"], "{backend}");
        let last = first.last().expect("a last");
        let second = page(ContactListQuery {
            after: Some((last.created_at, last.id)),
            ..ContactListQuery::default()
        })
        .await;
        assert_eq!(second, ["Ada Lovelace"], "{backend}");
    }
}

#[tokio::test]
async fn the_inbox_filters_conversations_by_their_contacts_attribute() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "ada@acme.test").await;
        let inbox = web_inbox(&store, org.id, "wi_attr").await;
        let t0 = now();
        let mut contacts = Vec::new();
        for (token, plan) in [("vt-1", "pro"), ("vt-2", "free")] {
            let written = store
                .take_in(
                    CustomerMessage {
                        inbox: &inbox,
                        from: Customer::Visitor {
                            session: SessionChoice::New { token_hash: token },
                            details: &VisitorDetails::default(),
                            fields: &ContactFields::default(),
                        },
                        thread: Thread::Latest,
                        text: &MessageText::parse("text", "Hello").expect("text"),
                        attachments: &[],
                        client_id: None,
                        wants_a_person: false,
                        email: None,
                    },
                    t0,
                )
                .await
                .expect(backend);
            let contact = written.value.conversation.contact_id;
            store
                .set_contact_attributes(org.id, contact, &[("plan".into(), Some(json!(plan)))], t0)
                .await
                .expect("attributes");
            contacts.push(contact);
        }
        let listed = store
            .list_conversations(
                org.id,
                &ConversationFilter {
                    attribute: Some(AttributeMatch {
                        key: "plan".into(),
                        value: "pro".into(),
                    }),
                    limit: 50,
                    ..ConversationFilter::default()
                },
            )
            .await
            .expect("list");
        assert_eq!(listed.len(), 1, "{backend}");
        assert_eq!(listed[0].conversation.contact_id, contacts[0], "{backend}");
        let all = store
            .list_conversations(
                org.id,
                &ConversationFilter {
                    limit: 50,
                    ..ConversationFilter::default()
                },
            )
            .await
            .expect("list");
        assert_eq!(all.len(), 2, "{backend}: no filter, every conversation");
    }
}

#[tokio::test]
async fn attribute_definitions_check_values_by_type() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "ada@acme.test").await;
        let t0 = now();
        let define = |key: &str, kind: &str, options: &str| {
            NewAttributeDefinition::parse(key, &key.to_uppercase(), kind, options)
                .expect("valid definition")
        };
        let plan = store
            .create_attribute_definition(org.id, &define("plan", "list", "Free\nPro"), t0)
            .await
            .expect(backend);
        let seats = store
            .create_attribute_definition(org.id, &define("seats", "number", ""), t0)
            .await
            .expect(backend);
        let since = store
            .create_attribute_definition(org.id, &define("since", "date", ""), t0)
            .await
            .expect(backend);
        let vip = store
            .create_attribute_definition(org.id, &define("vip", "boolean", ""), t0)
            .await
            .expect(backend);
        let note = store
            .create_attribute_definition(org.id, &define("note", "text", "ignored"), t0)
            .await
            .expect(backend);
        assert_eq!(plan.kind, AttributeKind::List);
        assert_eq!(plan.options.0, ["Free", "Pro"]);
        assert!(note.options.0.is_empty(), "only lists keep choices");

        assert!(
            matches!(
                store
                    .create_attribute_definition(org.id, &define("plan", "text", ""), t0)
                    .await,
                Err(StoreError::Conflict(Conflict::AttributeKeyTaken))
            ),
            "{backend}: one definition per key"
        );

        assert_eq!(
            plan.parse_value("pro").expect("a choice"),
            Some(json!("Pro"))
        );
        assert!(plan.parse_value("enterprise").is_err());
        assert_eq!(seats.parse_value("42").expect("n"), Some(json!(42)));
        assert_eq!(seats.parse_value("42.0").expect("n"), Some(json!(42)));
        assert_eq!(seats.parse_value("9.5").expect("n"), Some(json!(9.5)));
        assert!(seats.parse_value("many").is_err());
        assert!(seats.parse_value("NaN").is_err());
        assert_eq!(
            since.parse_value("2026-02-28").expect("d"),
            Some(json!("2026-02-28"))
        );
        assert!(since.parse_value("2026-02-30").is_err());
        assert!(since.parse_value("28/02/2026").is_err());
        assert_eq!(vip.parse_value("Yes").expect("b"), Some(json!(true)));
        assert_eq!(vip.parse_value("0").expect("b"), Some(json!(false)));
        assert!(vip.parse_value("maybe").is_err());
        assert_eq!(
            note.parse_value("  ").expect("empty"),
            None,
            "empty removes"
        );
        assert!(note.parse_value(&"x".repeat(501)).is_err());

        for (key, label, kind, options, field) in [
            ("Plan Name", "Plan", "text", "", "key"),
            ("1plan", "Plan", "text", "", "key"),
            ("plan", "", "text", "", "label"),
            ("plan", "Plan", "colour", "", "kind"),
            ("plan", "Plan", "list", "", "options"),
            ("plan", "Plan", "list", "a\nA", "options"),
        ] {
            let errors =
                NewAttributeDefinition::parse(key, label, kind, options).expect_err("invalid");
            assert!(
                errors.iter().any(|e| e.field == field),
                "{key} {label} {kind} {options:?}: {errors:?}"
            );
        }

        let renamed = store
            .update_attribute_definition(
                org.id,
                plan.id,
                "Subscription",
                &["Free".into(), "Pro".into(), "Team".into()],
                t0,
            )
            .await
            .expect("update");
        assert_eq!(renamed.label, "Subscription");
        assert_eq!(renamed.kind, AttributeKind::List, "the kind stays");
        let (_, globex) = sign_up(&store, "hank@globex.test").await;
        assert!(
            matches!(
                store.delete_attribute_definition(globex.id, plan.id).await,
                Err(StoreError::NotFound)
            ),
            "{backend}"
        );
        store
            .delete_attribute_definition(org.id, plan.id)
            .await
            .expect("delete");
        assert_eq!(
            store
                .list_attribute_definitions(org.id)
                .await
                .expect("list")
                .len(),
            4,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn attribute_changes_keep_the_other_attributes() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "ada@acme.test").await;
        let t0 = now();
        let ada = contact(
            &store,
            org.id,
            "Ada",
            None,
            json!({"plan": "pro", "from_api": [1, 2]}),
            t0,
        )
        .await;
        let written = store
            .set_contact_attributes(
                org.id,
                ada.id,
                &[("seats".into(), Some(json!(3))), ("plan".into(), None)],
                t0,
            )
            .await
            .expect(backend);
        assert_eq!(
            written.value.attributes.0,
            json!({"from_api": [1, 2], "seats": 3}),
            "{backend}"
        );
        assert_eq!(written.events.len(), 1, "{backend}: contact.updated");
        let again = store
            .set_contact_attributes(org.id, ada.id, &[("seats".into(), Some(json!(3)))], t0)
            .await
            .expect(backend);
        assert!(again.events.is_empty(), "{backend}: no change, no event");
    }
}

#[tokio::test]
async fn notes_belong_to_their_contact_and_follow_a_merge() {
    for (backend, store) in test_stores().await.stores {
        let (ada_user, org) = sign_up(&store, "ada@acme.test").await;
        let (_, globex) = sign_up(&store, "hank@globex.test").await;
        let t0 = now();
        let keep = contact(
            &store,
            org.id,
            "Ada",
            Some("ada@engines.test"),
            json!({"plan": "pro"}),
            t0,
        )
        .await;
        let other = contact(
            &store,
            org.id,
            "Ada L.",
            None,
            json!({"plan": "free", "city": "London"}),
            t0,
        )
        .await;
        store
            .update_contact_profile(
                org.id,
                other.id,
                Some("Ada L."),
                None,
                Some("+44 20 7946 0000"),
                t0,
            )
            .await
            .expect("phone");
        let first = store
            .add_contact_note(org.id, keep.id, ada_user, "Prefers email.", t0)
            .await
            .expect(backend);
        assert_eq!(
            first.author_name.as_deref(),
            Some("Ada Lovelace"),
            "{backend}"
        );
        store
            .add_contact_note(
                org.id,
                other.id,
                ada_user,
                "Called about invoices.",
                t0 + Duration::seconds(1),
            )
            .await
            .expect(backend);
        assert!(
            matches!(
                store
                    .add_contact_note(globex.id, keep.id, ada_user, "x", t0)
                    .await,
                Err(StoreError::NotFound)
            ),
            "{backend}: not another organization's contact"
        );
        assert!(
            matches!(
                store
                    .delete_contact_note(globex.id, keep.id, first.id)
                    .await,
                Err(StoreError::NotFound)
            ),
            "{backend}"
        );

        let merged = store
            .merge_contacts(org.id, other.id, keep.id, t0)
            .await
            .expect(backend)
            .value;
        assert_eq!(
            merged.attributes.0,
            json!({"plan": "pro", "city": "London"}),
            "{backend}"
        );
        assert_eq!(
            merged.phone.as_deref(),
            Some("+44 20 7946 0000"),
            "{backend}: the phone moves"
        );
        let notes = store
            .list_contact_notes(org.id, keep.id)
            .await
            .expect("notes");
        let texts: Vec<&str> = notes.iter().map(|n| n.text.as_str()).collect();
        assert_eq!(
            texts,
            ["Called about invoices.", "Prefers email."],
            "{backend}: newest first, both kept"
        );

        store
            .delete_contact_note(org.id, keep.id, first.id)
            .await
            .expect("delete");
        assert_eq!(
            store
                .list_contact_notes(org.id, keep.id)
                .await
                .expect("notes")
                .len(),
            1,
            "{backend}"
        );
        // Deleting the contact (the thorough deletion) takes its notes along.
        store
            .delete_contact(org.id, keep.id, t0)
            .await
            .expect("delete contact");
        assert!(
            store
                .list_contact_notes(org.id, keep.id)
                .await
                .expect("notes")
                .is_empty(),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn an_import_updates_contacts_found_by_email_and_creates_the_rest() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "ada@acme.test").await;
        let t0 = now();
        let ada = contact(
            &store,
            org.id,
            "Ada",
            Some("ada@engines.test"),
            json!({"plan": "free", "kept": 1}),
            t0,
        )
        .await;
        let mut attributes = Map::new();
        attributes.insert("plan".into(), json!("pro"));
        let rows = [
            ImportRow {
                name: Some("Ada Lovelace".into()),
                email: Some("ADA@engines.test".into()),
                phone: Some("+47 1".into()),
                attributes: attributes.clone(),
            },
            ImportRow {
                name: Some("Bob".into()),
                email: Some("bob@engines.test".into()),
                phone: None,
                attributes,
            },
            ImportRow {
                name: Some("No Email".into()),
                ..ImportRow::default()
            },
        ];
        let known = store
            .known_contact_emails(
                org.id,
                &["ada@engines.test".into(), "bob@engines.test".into()],
            )
            .await
            .expect("known");
        assert_eq!(known.len(), 1, "{backend}");
        assert!(known.contains("ada@engines.test"), "{backend}");
        let imported = store
            .import_contacts(org.id, &rows, t0)
            .await
            .expect(backend);
        assert_eq!(
            (imported.value.created, imported.value.updated),
            (2, 1),
            "{backend}"
        );
        assert_eq!(imported.events.len(), 3, "{backend}");
        let updated = store.get_contact(org.id, ada.id).await.expect("ada");
        assert_eq!(updated.name.as_deref(), Some("Ada Lovelace"), "{backend}");
        assert_eq!(updated.phone.as_deref(), Some("+47 1"), "{backend}");
        assert_eq!(
            updated.attributes.0,
            json!({"plan": "pro", "kept": 1}),
            "{backend}"
        );
        assert_eq!(
            store.all_contacts(org.id).await.expect("all").len(),
            3,
            "{backend}"
        );
    }
}
