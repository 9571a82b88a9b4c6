use chrono::Duration;
use kaltalk_core::{EmailAddress, Role, token};
use kaltalk_store::{
    Acceptor, Conflict, Delivery, NewInvitation, NewSession, StoreError, TokenPurpose,
};

use crate::helpers::{kept_email, new_user, now, sign_up, test_stores};

#[tokio::test]
async fn sign_up_writes_user_org_membership_and_events_together() {
    for (backend, store) in test_stores().await.stores {
        let (user, org) = sign_up(&store, "ada@example.com").await;
        let member = store.get_member(org.id, user).await.expect(backend);
        assert_eq!(member.role(), Role::Owner, "{backend}");
        let kinds: Vec<String> = store
            .events_since(org.id, None, 10)
            .await
            .expect(backend)
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["organization.created", "member.added"], "{backend}");
    }
}

#[tokio::test]
async fn duplicate_email_is_a_named_conflict_and_leaves_nothing_behind() {
    for (backend, store) in test_stores().await.stores {
        let (user, _) = sign_up(&store, "ada@example.com").await;
        let err = store
            .sign_up(
                &new_user("ada@example.com"),
                &kaltalk_core::OrgName::parse("o", "Second").expect("org"),
                None,
                now(),
            )
            .await
            .expect_err("duplicate");
        assert!(
            matches!(err, StoreError::Conflict(Conflict::EmailTaken)),
            "{backend}: {err:?}"
        );
        // The second organization was rolled back with the user.
        assert_eq!(
            store.organizations_of(user).await.expect(backend).len(),
            1,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn invitation_is_single_use_and_expires() {
    for (backend, store) in test_stores().await.stores {
        let (owner, org) = sign_up(&store, "owner@example.com").await;
        let t0 = now();
        let invite = |hash: &str| NewInvitation {
            org_id: org.id,
            email: EmailAddress::parse("e", "new@example.com").expect("email"),
            role: Role::Agent,
            token_hash: hash.into(),
            invited_by: owner,
            expires_at: t0 + Duration::days(7),
        };
        store
            .create_invitation(&invite("h1"), &kept_email("new@example.com"), t0)
            .await
            .expect(backend);
        store
            .create_invitation(&invite("h2"), &kept_email("new@example.com"), t0)
            .await
            .expect(backend);

        // Past the 7 days the link is refused.
        let late = t0 + Duration::days(7) + Duration::seconds(1);
        let err = store
            .accept_invitation("h2", Acceptor::New(&new_user("late@example.com")), late)
            .await
            .expect_err("expired");
        assert!(matches!(err, StoreError::NotFound), "{backend}");

        let (user, joined) = store
            .accept_invitation("h1", Acceptor::New(&new_user("new@example.com")), t0)
            .await
            .expect(backend);
        assert_eq!(joined, org.id);
        assert_eq!(
            store.get_member(org.id, user).await.expect(backend).role(),
            Role::Agent
        );
        let again = store
            .accept_invitation("h1", Acceptor::Existing(user), t0)
            .await
            .expect_err("used");
        assert!(matches!(again, StoreError::NotFound), "{backend}");
        // The failed expired acceptance did not create its user.
        assert!(
            store
                .find_user_by_email(&EmailAddress::parse("e", "late@example.com").expect("e"))
                .await
                .expect(backend)
                .is_none()
        );
    }
}

#[tokio::test]
async fn reset_token_works_once_within_the_hour_and_ends_sessions() {
    for (backend, store) in test_stores().await.stores {
        let (user, org) = sign_up(&store, "ada@example.com").await;
        let t0 = now();
        store
            .create_session(
                &NewSession {
                    token_hash: "s".into(),
                    user_id: user,
                    org_id: org.id,
                    csrf_token: "c".into(),
                    expires_at: t0 + Duration::days(30),
                },
                t0,
            )
            .await
            .expect(backend);
        for hash in ["r1", "r2"] {
            store
                .issue_user_token(
                    user,
                    TokenPurpose::ResetPassword,
                    "ada@example.com",
                    kaltalk_store::LinkToken {
                        token_hash: hash,
                        expires_at: t0 + Duration::hours(1),
                    },
                    &kept_email("ada@example.com"),
                    t0,
                )
                .await
                .expect(backend);
        }
        let expired = store
            .reset_password("r1", "new-hash", t0 + Duration::minutes(61))
            .await;
        assert!(matches!(expired, Err(StoreError::NotFound)), "{backend}");

        store
            .reset_password("r1", "new-hash", t0 + Duration::minutes(59))
            .await
            .expect(backend);
        assert_eq!(
            store.get_user(user).await.expect(backend).password_hash,
            "new-hash"
        );
        assert!(
            store.find_session("s", t0).await.expect(backend).is_none(),
            "{backend}: sessions end"
        );
        // Using one reset link voids the others.
        assert!(
            !store
                .user_token_is_valid("r2", TokenPurpose::ResetPassword, t0)
                .await
                .expect(backend)
        );
        assert!(matches!(
            store.reset_password("r1", "x", t0).await,
            Err(StoreError::NotFound)
        ));
    }
}

#[tokio::test]
async fn sessions_expire_and_password_change_revokes_them() {
    for (backend, store) in test_stores().await.stores {
        let (user, org) = sign_up(&store, "ada@example.com").await;
        let t0 = now();
        let session = |hash: &str| NewSession {
            token_hash: hash.into(),
            user_id: user,
            org_id: org.id,
            csrf_token: "c".into(),
            expires_at: t0 + Duration::hours(1),
        };
        store
            .create_session(&session("a"), t0)
            .await
            .expect(backend);
        store
            .create_session(&session("b"), t0)
            .await
            .expect(backend);
        assert!(store.find_session("a", t0).await.expect(backend).is_some());
        assert!(
            store
                .find_session("a", t0 + Duration::hours(2))
                .await
                .expect(backend)
                .is_none(),
            "{backend}: expired"
        );
        store
            .change_password(user, "other", t0)
            .await
            .expect(backend);
        assert!(
            store.find_session("b", t0).await.expect(backend).is_none(),
            "{backend}: revoked"
        );
    }
}

#[tokio::test]
async fn owner_cannot_be_removed_or_demoted_and_ownership_transfers() {
    for (backend, store) in test_stores().await.stores {
        let (owner, org) = sign_up(&store, "owner@example.com").await;
        let (other, _) = sign_up(&store, "other@example.com").await;
        assert!(
            matches!(
                store.remove_member(org.id, owner, now()).await,
                Err(StoreError::NotFound)
            ),
            "{backend}"
        );
        assert!(matches!(
            store.change_role(org.id, owner, Role::Agent, now()).await,
            Err(StoreError::NotFound)
        ));
        // Not a member: no transfer, nothing changes.
        assert!(matches!(
            store.transfer_ownership(org.id, owner, other, now()).await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(
            store.get_member(org.id, owner).await.expect(backend).role(),
            Role::Owner
        );

        let admin = store
            .create_member_user(&new_user("admin@example.com"), org.id, Role::Admin, now())
            .await
            .expect(backend);
        store
            .transfer_ownership(org.id, owner, admin, now())
            .await
            .expect(backend);
        assert_eq!(
            store.get_member(org.id, admin).await.expect(backend).role(),
            Role::Owner
        );
        assert_eq!(
            store.get_member(org.id, owner).await.expect(backend).role(),
            Role::Admin
        );
    }
}

#[tokio::test]
async fn api_keys_are_found_by_hash_until_revoked_and_scoped_to_their_org() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "a@example.com").await;
        let (_, other_org) = sign_up(&store, "b@example.com").await;
        let secret = token::generate("kt_");
        let id = store
            .create_api_key(
                &kaltalk_store::NewApiKey {
                    org_id: org.id,
                    name: "CI".into(),
                    prefix: secret[..8].into(),
                    token_hash: token::hash(&secret),
                    created_by: None,
                },
                now(),
            )
            .await
            .expect(backend);
        let found = store
            .authenticate_api_key(&token::hash(&secret), now())
            .await
            .expect(backend)
            .expect("live key");
        assert_eq!(found.org_id, org.id);
        assert!(
            matches!(
                store.revoke_api_key(other_org.id, id, now()).await,
                Err(StoreError::NotFound)
            ),
            "{backend}: other org"
        );
        store
            .revoke_api_key(org.id, id, now())
            .await
            .expect(backend);
        assert!(
            store
                .authenticate_api_key(&token::hash(&secret), now())
                .await
                .expect(backend)
                .is_none()
        );
    }
}

#[tokio::test]
async fn smtp_email_queues_a_delivery_job_in_the_same_transaction() {
    for (backend, store) in test_stores().await.stores {
        let mut email = kept_email("x@example.com");
        email.delivery = Delivery::Smtp;
        let id = store.queue_email(&email, now()).await.expect(backend);
        let job = store
            .claim_job("w", Duration::seconds(30), now())
            .await
            .expect(backend)
            .expect("delivery job");
        assert_eq!(job.kind, "email.deliver");
        assert_eq!(job.payload.0["email_id"], serde_json::json!(id));
    }
}

#[tokio::test]
async fn personal_mail_is_in_no_organization_outbox() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "owner@example.com").await;
        let mut org_mail = kept_email("bob@example.com");
        org_mail.org_id = Some(org.id);
        org_mail.kind = "invitation";
        store.queue_email(&org_mail, now()).await.expect(backend);
        let mut reset = kept_email("Bob@Example.com");
        reset.kind = "password_reset";
        let reset_id = store.queue_email(&reset, now()).await.expect(backend);
        store
            .queue_email(
                &kept_email("carol@example.com"),
                now() + Duration::seconds(1),
            )
            .await
            .expect(backend);

        let outbox = store.list_emails(org.id, 10).await.expect(backend);
        assert_eq!(outbox.len(), 1, "{backend}");
        assert_eq!(outbox[0].kind, "invitation", "{backend}");
        assert!(
            matches!(
                store.get_email(org.id, reset_id).await,
                Err(StoreError::NotFound)
            ),
            "{backend}"
        );

        let personal = store.list_personal_emails(None, 10).await.expect(backend);
        let to: Vec<&str> = personal.iter().map(|e| e.to_address.as_str()).collect();
        assert_eq!(to, ["carol@example.com", "Bob@Example.com"], "{backend}");
        let bobs = store
            .list_personal_emails(Some("bob@example.com"), 10)
            .await
            .expect(backend);
        assert_eq!(bobs.len(), 1, "{backend}: the address matches in any case");
        assert_eq!(bobs[0].id, reset_id, "{backend}");
    }
}

#[tokio::test]
async fn an_email_change_waits_for_its_link_and_can_be_undone() {
    for (backend, store) in test_stores().await.stores {
        let (user, _) = sign_up(&store, "ada@example.com").await;
        let new = EmailAddress::parse("e", "ada.king@example.com").expect("email");
        let change = |confirm: &'static str, undo: &'static str| {
            let new = new.clone();
            let store = &store;
            async move {
                let (to_new, to_old) = (kept_email(new.as_str()), kept_email("ada@example.com"));
                let expires_at = now() + Duration::hours(24);
                store
                    .request_email_change(
                        &kaltalk_store::EmailChange {
                            user,
                            from: "ada@example.com",
                            to: &new,
                            confirm: (
                                kaltalk_store::LinkToken {
                                    token_hash: confirm,
                                    expires_at,
                                },
                                &to_new,
                            ),
                            undo: (
                                kaltalk_store::LinkToken {
                                    token_hash: undo,
                                    expires_at,
                                },
                                &to_old,
                            ),
                        },
                        now(),
                    )
                    .await
            }
        };
        change("confirm-1", "undo-1").await.expect(backend);
        assert_eq!(
            store.get_user(user).await.expect(backend).email,
            "ada@example.com",
            "{backend}"
        );
        store
            .confirm_email_change("confirm-1", now())
            .await
            .expect(backend);
        let moved = store.get_user(user).await.expect(backend);
        assert_eq!(moved.email, "ada.king@example.com", "{backend}");
        assert!(moved.email_verified_at.is_some(), "{backend}");
        assert!(
            matches!(
                store.confirm_email_change("confirm-1", now()).await,
                Err(StoreError::NotFound)
            ),
            "{backend}: single use"
        );
        store
            .undo_email_change("undo-1", now())
            .await
            .expect(backend);
        assert_eq!(
            store.get_user(user).await.expect(backend).email,
            "ada@example.com",
            "{backend}"
        );

        // An undo cancels a pending change; an address another account has is refused.
        change("confirm-2", "undo-2").await.expect(backend);
        store
            .undo_email_change("undo-2", now())
            .await
            .expect(backend);
        assert!(
            matches!(
                store.confirm_email_change("confirm-2", now()).await,
                Err(StoreError::NotFound)
            ),
            "{backend}"
        );
        sign_up(&store, "ada.king@example.com").await;
        assert!(
            matches!(
                change("confirm-3", "undo-3").await,
                Err(StoreError::Conflict(Conflict::EmailTaken))
            ),
            "{backend}"
        );
    }
}
