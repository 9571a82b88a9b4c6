//! Operator commands (`kaltalk admin …`): what an operator needs before anyone can sign in.

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use kaltalk_core::{EmailAddress, OrgId, OrgName, Password, PersonName, Role, UserId};
use kaltalk_store::{NewUser, Store, StoreError};

use crate::BCRYPT_COST;
use crate::auth::password;

/// Where `create-user` puts the new user.
pub enum OrgChoice {
    /// A new organization with this name, owned by the user.
    New(String),
    /// An existing organization, with this role.
    Existing(OrgId, Role),
}

/// Creates a user; returns its id and its organization's. Operator-created accounts count
/// as verified: the operator vouches for the address.
pub async fn create_user(
    store: &Store,
    email: &str,
    name: &str,
    plain_password: &str,
    org: OrgChoice,
    now: DateTime<Utc>,
) -> anyhow::Result<(UserId, OrgId)> {
    let email = EmailAddress::parse("email", email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let name = PersonName::parse("name", name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let password = Password::parse("password", plain_password)
        .map_err(|e| anyhow::anyhow!("password: {e}"))?;
    let user = NewUser {
        name,
        email,
        password_hash: password::hash(&password, BCRYPT_COST).await?,
        email_verified: true,
    };
    let created = match org {
        OrgChoice::New(org_name) => {
            let org_name =
                OrgName::parse("org", &org_name).map_err(|e| anyhow::anyhow!("--org: {e}"))?;
            store
                .sign_up(&user, &org_name, None, now)
                .await
                .map(|(user, org)| (user, org.id))
        }
        OrgChoice::Existing(org_id, role) => {
            if role == Role::Owner {
                bail!(
                    "--role owner: an organization has one owner; add the user as admin, then transfer ownership in the dashboard"
                );
            }
            store
                .create_member_user(&user, org_id, role, now)
                .await
                .map(|user| (user, org_id))
        }
    };
    match created {
        Ok(ids) => Ok(ids),
        Err(StoreError::Conflict(kaltalk_store::Conflict::EmailTaken)) => {
            bail!("a user with this email already exists")
        }
        Err(StoreError::NotFound) => bail!("no organization has this id"),
        Err(err) => Err(err).context("creating the user"),
    }
}

/// Creates an API key for an organization; returns the secret (shown once).
pub async fn create_api_key(
    store: &Store,
    org: OrgId,
    name: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let name = name.trim();
    if name.is_empty() {
        bail!("--name must not be empty");
    }
    match store.get_organization(org).await {
        Ok(_) => {}
        Err(StoreError::NotFound) => bail!("no organization has this id"),
        Err(err) => return Err(err).context("looking up the organization"),
    }
    crate::dashboard::api_keys::create_key(store, now, org, name, None)
        .await
        .context("creating the API key")
}

/// The personal outbox as `admin outbox` prints it: each email's headers, then its text.
pub async fn personal_outbox(
    store: &Store,
    to: Option<&str>,
    limit: i64,
) -> anyhow::Result<String> {
    if limit < 1 {
        bail!("--limit must be at least 1");
    }
    let emails = store
        .list_personal_emails(to, limit)
        .await
        .context("reading the outbox")?;
    if emails.is_empty() {
        return Ok("No personal emails.\n".to_owned());
    }
    let mut out = String::new();
    for email in emails {
        let body = if email.text_body.is_empty() {
            "(delivered through SMTP: the body is no longer kept)\n"
        } else {
            email.text_body.as_str()
        };
        out.push_str(&format!(
            "--- {id}\nDate: {date}\nTo: {to}\nSubject: {subject}\nKind: {kind}\nState: {state}\n\n{body}\n",
            id = email.id,
            date = email.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
            to = email.to_address,
            subject = email.subject,
            kind = email.kind,
            state = email.state.as_str(),
        ));
    }
    Ok(out)
}

/// What `create-inbox` prints.
pub struct CreatedInbox {
    pub inbox_id: kaltalk_core::InboxId,
    pub embed_token: String,
    pub snippet: String,
}

/// Creates a web inbox for an organization, allowing the given website domains.
pub async fn create_web_inbox(
    store: &Store,
    config: &crate::Config,
    org: OrgId,
    name: &str,
    domains: &[String],
    now: DateTime<Utc>,
) -> anyhow::Result<CreatedInbox> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        bail!("--name must be 1 to 100 characters");
    }
    let domains = crate::dashboard::inboxes::parse_domains(&domains.join("\n"))
        .map_err(|e| anyhow::anyhow!("--domain: {}", e.message))?;
    match store.get_organization(org).await {
        Ok(_) => {}
        Err(StoreError::NotFound) => bail!("no organization has this id"),
        Err(err) => return Err(err).context("looking up the organization"),
    }
    let inbox = crate::dashboard::inboxes::create_web_inbox(store, org, name, domains, now)
        .await
        .context("creating the inbox")?;
    let listen = config.listen.parse().context("listen address")?;
    let snippet =
        crate::dashboard::inboxes::embed_snippet(&config.public_base(listen), &inbox.public_token);
    Ok(CreatedInbox {
        inbox_id: inbox.id,
        embed_token: inbox.public_token,
        snippet,
    })
}

/// Creates an email inbox receiving mail for `address` (named after it by default).
pub async fn create_email_inbox(
    store: &Store,
    org: OrgId,
    name: Option<&str>,
    address: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<kaltalk_store::inboxes::Inbox> {
    let address = crate::dashboard::inboxes::parse_support_address(address)
        .map_err(|e| anyhow::anyhow!("--address: {}", e.message))?;
    let name = name.map(str::trim).unwrap_or(&address).to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        bail!("--name must be 1 to 100 characters");
    }
    match store.get_organization(org).await {
        Ok(_) => {}
        Err(StoreError::NotFound) => bail!("no organization has this id"),
        Err(err) => return Err(err).context("looking up the organization"),
    }
    match crate::dashboard::inboxes::create_email_inbox(store, org, &name, &address, now).await {
        Ok(inbox) => Ok(inbox),
        Err(StoreError::Conflict(kaltalk_store::Conflict::InboxAddressTaken)) => {
            bail!("another inbox already receives mail for {address}")
        }
        Err(err) => Err(err).context("creating the inbox"),
    }
}
