use chrono::{DateTime, Utc};
use kaltalk_core::{Clock, EmailAddress, OrgId, OrgName, PersonName, Role, SystemClock, UserId};
use kaltalk_store::{Delivery, NewEmail, NewUser, Organization, Store};

/// A fresh store per backend under test, with the temp dir that holds the SQLite file.
pub struct TestStores {
    pub stores: Vec<(&'static str, Store)>,
    dir: tempfile::TempDir,
}

pub async fn test_stores() -> TestStores {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite_url = format!("sqlite://{}", dir.path().join("test.db").display());
    let mut stores = vec![("sqlite", open(&sqlite_url).await)];
    if let Ok(admin_url) = std::env::var("KALTALK_TEST_DATABASE_URL") {
        stores.push((
            "postgres",
            open(
                &kaltalk_store::testing::fresh_postgres_database(&admin_url)
                    .await
                    .expect("a fresh PostgreSQL database"),
            )
            .await,
        ));
    }
    TestStores { stores, dir }
}

impl TestStores {
    /// The SQLite store's database file.
    pub fn sqlite_file(&self) -> std::path::PathBuf {
        self.dir.path().join("test.db")
    }
}

async fn open(url: &str) -> Store {
    let store = Store::connect(url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

pub fn now() -> DateTime<Utc> {
    SystemClock.now()
}

pub fn new_user(email: &str) -> NewUser {
    NewUser {
        name: PersonName::parse("name", "Ada Lovelace").expect("name"),
        email: EmailAddress::parse("email", email).expect("email"),
        password_hash: "$2b$12$notarealhashbutlongenoughforthetestsxxxxxxxxxxxxxxxxxx".into(),
        email_verified: false,
    }
}

pub async fn sign_up(store: &Store, email: &str) -> (UserId, Organization) {
    store
        .sign_up(
            &new_user(email),
            &OrgName::parse("org", "Acme").expect("org"),
            None,
            now(),
        )
        .await
        .expect("sign up")
}

pub fn kept_email(to: &str) -> NewEmail {
    NewEmail {
        org_id: None,
        to: to.into(),
        subject: "Hello".into(),
        text_body: "text".into(),
        html_body: "<p>html</p>".into(),
        kind: "test",
        delivery: Delivery::KeepInOutbox,
    }
}

/// A website inbox of `org` with the public token `token`.
pub async fn web_inbox(
    store: &Store,
    org: kaltalk_core::OrgId,
    token: &str,
) -> kaltalk_store::inboxes::Inbox {
    let inbox = kaltalk_store::inboxes::NewInbox {
        org_id: org,
        kind: kaltalk_core::chat::InboxKind::Web,
        name: "Website".into(),
        public_token: token.into(),
        identity_secret: "secret".into(),
        settings: kaltalk_core::chat::WidgetSettings::default(),
        email: None,
    };
    store.create_inbox(&inbox, now()).await.expect("inbox")
}

/// An agent called `name` in `org`.
pub async fn member(store: &Store, org: OrgId, name: &str, email: &str) -> UserId {
    let user = NewUser {
        name: PersonName::parse("name", name).expect("name"),
        email: EmailAddress::parse("email", email).expect("email"),
        password_hash: "not-a-hash".into(),
        email_verified: true,
    };
    store
        .create_member_user(&user, org, Role::Agent, now())
        .await
        .expect("member")
}
