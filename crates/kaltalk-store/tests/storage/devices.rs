use chrono::Duration;
use kaltalk_store::NewSession;
use kaltalk_store::devices::{NewDevice, Platform};

use crate::helpers::{member, now, sign_up, test_stores};

fn session(hash: &str, user: kaltalk_core::UserId, org: kaltalk_core::OrgId) -> NewSession {
    NewSession {
        token_hash: hash.into(),
        user_id: user,
        org_id: org,
        csrf_token: "c".into(),
        expires_at: now() + Duration::hours(1),
    }
}

fn phone(token: &str) -> NewDevice<'_> {
    NewDevice {
        platform: Platform::Apns,
        push_token: token,
        os_version: "17.4.1",
        app_version: "2.3.0",
    }
}

#[tokio::test]
async fn app_sessions_are_not_cookies_and_each_has_one_device_that_goes_with_it() {
    for (backend, store) in test_stores().await.stores {
        let (olivia, org) = sign_up(&store, "olivia@example.com").await;
        let grace = member(&store, org.id, "Grace", "grace@example.com").await;
        let t0 = now();
        let app = store
            .create_app_session(&session("app", olivia, org.id), t0)
            .await
            .expect(backend);
        store
            .create_session(&session("cookie", olivia, org.id), t0)
            .await
            .expect(backend);
        // Each kind is found only as itself.
        assert!(
            store
                .find_app_session("app", t0)
                .await
                .expect(backend)
                .is_some()
        );
        assert!(
            store
                .find_session("app", t0)
                .await
                .expect(backend)
                .is_none(),
            "{backend}"
        );
        assert!(
            store
                .find_app_session("cookie", t0)
                .await
                .expect(backend)
                .is_none(),
            "{backend}"
        );
        assert!(
            store
                .find_app_session("app", t0 + Duration::hours(2))
                .await
                .expect(backend)
                .is_none(),
            "{backend}: expired"
        );

        // Registering again replaces the session's device; a token registered elsewhere
        // moves to the session that registers it now.
        let first = store
            .register_device(app, org.id, olivia, &phone("aa11"), t0)
            .await
            .expect(backend);
        let second = store
            .register_device(app, org.id, olivia, &phone("bb22"), t0)
            .await
            .expect(backend);
        assert_ne!(first.id, second.id);
        let listed = store.list_app_sessions(olivia, t0).await.expect(backend);
        assert_eq!(listed.len(), 1, "{backend}");
        assert_eq!(
            listed[0].device.as_ref().map(|d| d.push_token.as_str()),
            Some("bb22")
        );
        let graces = store
            .create_app_session(&session("grace-app", grace, org.id), t0)
            .await
            .expect(backend);
        store
            .register_device(graces, org.id, grace, &phone("bb22"), t0)
            .await
            .expect(backend);
        assert!(
            store.device_of_session(app).await.expect(backend).is_none(),
            "{backend}: moved"
        );
        assert!(
            store
                .device_of_session(graces)
                .await
                .expect(backend)
                .is_some()
        );

        // Revoking is for the session's owner; it takes the device along.
        assert!(
            store.revoke_app_session(olivia, graces).await.is_err(),
            "{backend}: not hers"
        );
        store
            .revoke_app_session(grace, graces)
            .await
            .expect(backend);
        assert!(
            store
                .device_of_session(graces)
                .await
                .expect(backend)
                .is_none(),
            "{backend}"
        );
        assert!(
            store
                .find_app_session("grace-app", t0)
                .await
                .expect(backend)
                .is_none()
        );

        // Leaving the organization deletes the member's devices.
        let again = store
            .create_app_session(&session("grace-again", grace, org.id), t0)
            .await
            .expect(backend);
        store
            .register_device(again, org.id, grace, &phone("cc33"), t0)
            .await
            .expect(backend);
        store.remove_member(org.id, grace, t0).await.expect(backend);
        assert!(
            store
                .device_of_session(again)
                .await
                .expect(backend)
                .is_none(),
            "{backend}: left"
        );

        // A password change signs every app out.
        store
            .register_device(app, org.id, olivia, &phone("dd44"), t0)
            .await
            .expect(backend);
        store
            .change_password(olivia, "other", t0)
            .await
            .expect(backend);
        assert!(
            store.device_of_session(app).await.expect(backend).is_none(),
            "{backend}"
        );
        assert!(
            store
                .list_app_sessions(olivia, t0)
                .await
                .expect(backend)
                .is_empty()
        );
    }
}
