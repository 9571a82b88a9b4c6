//! Signing up, logging in and out, confirming an email address, changing it (or undoing
//! the change) through the links we mail, resetting a password.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use axum_extra::extract::CookieJar;
use chrono::Duration;
use kaltalk_core::{EmailAddress, OrgId, OrgName, Password, PersonName, UserId, token};
use kaltalk_mail::{EmailChange, EmailChangeNotice, PasswordReset, RenderedEmail, VerifyEmail};
use kaltalk_store::{LinkToken, NewEmail, NewUser, StoreError, TokenPurpose, User};
use serde::Deserialize;

use crate::auth::{AgentSession, ClientIp, SessionForm, password, session};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::forms::{NoFields, see_other, ticked};
use crate::web::{FieldErrors, Layout, PageResult};

pub const VERIFY_LINK_HOURS: i64 = 24;
pub const RESET_LINK_HOURS: i64 = 1;
/// The undo link sent to the old address lasts longer than the new address's link, so it
/// still works after an unwanted change went through.
pub const UNDO_EMAIL_CHANGE_DAYS: i64 = 7;
const AGE_REQUIRED: &str = "KalTalk is not for people under 16: confirm that you are 16 or older.";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/signup", get(signup_page).post(signup))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/verify-email", get(verify_email))
        .route("/verify-email/resend", post(resend_verification))
        .route("/change-email/confirm", get(confirm_email_change))
        .route(
            "/change-email/undo",
            get(undo_email_change_page).post(undo_email_change),
        )
        .route("/forgot-password", get(forgot_page).post(forgot))
        .route("/reset-password", get(reset_page).post(reset))
}

// ---- sign up ---------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "auth/signup.html")]
struct SignupPage {
    layout: Layout,
    name: String,
    email: String,
    org_name: String,
    age_ticked: bool,
    errors: FieldErrors,
}

#[derive(Deserialize, Default)]
struct SignupForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    org_name: String,
    age_confirmed: Option<String>,
}

async fn signup_page(State(state): State<AppState>) -> SignupPage {
    SignupPage {
        layout: Layout::public(&state),
        name: String::new(),
        email: String::new(),
        org_name: String::new(),
        age_ticked: false,
        errors: FieldErrors::default(),
    }
}

async fn signup(State(state): State<AppState>, Form(form): Form<SignupForm>) -> PageResult {
    let mut errors = FieldErrors::default();
    let name = errors.take(PersonName::parse("name", &form.name));
    let email = errors.take(EmailAddress::parse("email", &form.email));
    let password = errors.take(Password::parse("password", &form.password));
    let org_name = errors.take(OrgName::parse("org_name", &form.org_name));
    if !ticked(&form.age_confirmed) {
        errors.add(kaltalk_core::ValidationError::new(
            "age_confirmed",
            AGE_REQUIRED,
        ));
    }
    let rerender = |errors: FieldErrors| {
        let page = SignupPage {
            layout: Layout::public(&state),
            name: form.name.clone(),
            email: form.email.clone(),
            org_name: form.org_name.clone(),
            age_ticked: ticked(&form.age_confirmed),
            errors,
        };
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    };
    let (Some(name), Some(email), Some(password), Some(org_name), true) =
        (name, email, password, org_name, errors.is_empty())
    else {
        return Ok(rerender(errors));
    };
    let user = NewUser {
        name,
        email: email.clone(),
        password_hash: password::hash(&password, state.bcrypt_cost).await?,
        email_verified: false,
    };
    let verify_token = token::generate("");
    let message = verification_email(&state, user.name.as_str(), &verify_token)?;
    let now = state.now();
    let outgoing = personal_email(&state, email.as_str(), &message, "verify_email");
    let result = state
        .store
        .sign_up(
            &user,
            &org_name,
            Some((
                LinkToken {
                    token_hash: &token::hash(&verify_token),
                    expires_at: now + Duration::hours(VERIFY_LINK_HOURS),
                },
                &outgoing,
            )),
            now,
        )
        .await;
    let (user_id, org) = match result {
        Ok(created) => created,
        Err(err) => match AppError::from(err) {
            AppError::Validation(list) => return Ok(rerender(list.into())),
            other => return Err(other.into()),
        },
    };
    let cookie = session::start(&state, user_id, org.id).await?;
    Ok((CookieJar::new().add(cookie), Redirect::to("/")).into_response())
}

fn verification_email(
    state: &AppState,
    name: &str,
    token: &str,
) -> Result<RenderedEmail, AppError> {
    let link = state.link(&format!("/verify-email?token={token}"));
    VerifyEmail { name, link: &link }
        .email()
        .map_err(|e| AppError::Internal(e.into()))
}

/// An organization's email, which its owners may read in the outbox.
pub(crate) fn new_email(
    state: &AppState,
    org: Option<OrgId>,
    to: &str,
    message: &RenderedEmail,
    kind: &'static str,
) -> NewEmail {
    NewEmail {
        org_id: org,
        to: to.to_owned(),
        subject: message.subject.clone(),
        text_body: message.text.clone(),
        html_body: message.html.clone(),
        kind,
        delivery: state.delivery(),
    }
}

/// An email to a person about their own account (a link to confirm an address, to reset a
/// password): kept out of every organization's outbox, since whoever reads it can take the
/// account. Without SMTP only the operator reads it (`kaltalk admin outbox`).
pub(crate) fn personal_email(
    state: &AppState,
    to: &str,
    message: &RenderedEmail,
    kind: &'static str,
) -> NewEmail {
    new_email(state, None, to, message, kind)
}

/// The organization a person lands in after logging in: their oldest membership.
async fn home_org(state: &AppState, user: UserId) -> Result<Option<OrgId>, AppError> {
    Ok(state
        .store
        .memberships_of(user)
        .await?
        .first()
        .map(|m| m.org_id))
}

// ---- log in / out ----------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "auth/login.html")]
struct LoginPage {
    layout: Layout,
    email: String,
    next: String,
    notice: Option<&'static str>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct LoginQuery {
    next: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// Only same-origin paths, so the login page cannot be used to bounce people elsewhere;
/// anything else goes home. Browsers drop tabs and newlines from URLs and read `\` as
/// `/`, so `/\t/evil.test` or `/\evil.test` would lead to another host: only printable
/// ASCII without a backslash passes (which also keeps the `Location` header valid), and a
/// second `/` would start an authority.
fn safe_next(next: &str) -> &str {
    let printable = next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    let path = next.starts_with('/') && !next.starts_with("//");
    if printable && path { next } else { "/" }
}

fn login_notice(code: Option<&str>) -> Option<&'static str> {
    match code {
        Some("password-reset") => Some("Your password was changed. Log in with the new one."),
        Some("password-changed") => {
            Some("Your password was changed and every session was signed out. Log in again.")
        }
        Some("logged-out") => Some("You are logged out."),
        Some("account-deleted") => Some("Your account and your personal data were deleted."),
        _ => None,
    }
}

async fn login_page(State(state): State<AppState>, Query(query): Query<LoginQuery>) -> LoginPage {
    LoginPage {
        layout: Layout::public(&state),
        email: String::new(),
        next: safe_next(query.next.as_deref().unwrap_or("/")).to_owned(),
        notice: login_notice(query.notice.as_deref()),
        error: None,
    }
}

async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Form(form): Form<LoginForm>,
) -> PageResult {
    let page = |status: StatusCode, error: String| {
        let page = LoginPage {
            layout: Layout::public(&state),
            email: form.email.clone(),
            next: safe_next(&form.next).to_owned(),
            notice: None,
            error: Some(error),
        };
        (status, page).into_response()
    };
    let limited = |retry_after_secs: u64| {
        let error = AppError::RateLimited { retry_after_secs };
        let mut response = page(
            StatusCode::TOO_MANY_REQUESTS,
            if retry_after_secs < 60 {
                format!("Too many login attempts. Try again in {retry_after_secs} seconds.")
            } else {
                format!(
                    "Too many login attempts. Try again in {} minute(s).",
                    retry_after_secs.div_ceil(60)
                )
            },
        );
        error.decorate(&mut response);
        response
    };
    if let Err(retry) = state.login_limiter.attempt_from(ip).await {
        return Ok(limited(retry));
    }
    let account = form.email.trim().to_lowercase();
    if let Err(retry) = state.login_limiter.account_blocked(&account, ip).await {
        return Ok(limited(retry));
    }
    let user = match EmailAddress::parse("email", &form.email) {
        Ok(email) => state.store.find_user_by_email(&email).await?,
        Err(_) => None,
    };
    let ok = password::verify(
        &form.password,
        user.as_ref().map(|u| u.password_hash.as_str()),
        state.bcrypt_cost,
    )
    .await?;
    let Some(user) = user.filter(|_| ok) else {
        state.login_limiter.record_failure(&account, ip).await;
        return Ok(page(
            StatusCode::UNAUTHORIZED,
            "That email and password do not match an account.".into(),
        ));
    };
    let Some(org) = home_org(&state, user.id).await? else {
        return Err(AppError::NoOrganization.into());
    };
    let cookie = session::start(&state, user.id, org).await?;
    Ok((
        CookieJar::new().add(cookie),
        Redirect::to(safe_next(&form.next)),
    )
        .into_response())
}

async fn logout(
    State(state): State<AppState>,
    SessionForm { session, .. }: SessionForm<NoFields>,
) -> PageResult {
    state.store.delete_session(session.session_id).await?;
    Ok((
        CookieJar::new().add(session::removal_cookie(&state)),
        Redirect::to("/login?notice=logged-out"),
    )
        .into_response())
}

// ---- email verification ----------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "auth/message.html")]
pub(crate) struct MessagePage {
    pub layout: Layout,
    pub title: &'static str,
    pub message: &'static str,
    pub link_href: &'static str,
    pub link_text: &'static str,
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

async fn verify_email(
    State(state): State<AppState>,
    Query(query): Query<TokenQuery>,
) -> PageResult {
    let verified = state
        .store
        .verify_email(&token::hash(&query.token), state.now())
        .await;
    let (status, title, message) = match verified {
        Ok(_) => (
            StatusCode::OK,
            "Email confirmed",
            "Thank you: your email address is confirmed.",
        ),
        Err(kaltalk_store::StoreError::NotFound) => (
            StatusCode::BAD_REQUEST,
            "Link expired",
            "This confirmation link has expired, was already used, or was for an address you have since changed. Log in and ask for a new one.",
        ),
        Err(err) => return Err(AppError::from(err).into()),
    };
    let page = MessagePage {
        layout: Layout::public(&state),
        title,
        message,
        link_href: "/",
        link_text: "Go to KalTalk",
    };
    Ok((status, page).into_response())
}

async fn resend_verification(
    State(state): State<AppState>,
    SessionForm { session, .. }: SessionForm<NoFields>,
) -> PageResult {
    send_verification(&state, &session).await?;
    Ok(see_other("/?notice=verification-sent"))
}

pub(crate) async fn send_verification(
    state: &AppState,
    session: &AgentSession,
) -> Result<(), AppError> {
    let (token_hash, email) = verification_for(state, &session.user.name, &session.user.email)?;
    let now = state.now();
    let token = LinkToken {
        token_hash: &token_hash,
        expires_at: now + Duration::hours(VERIFY_LINK_HOURS),
    };
    state
        .store
        .issue_user_token(
            session.user.id,
            TokenPurpose::VerifyEmail,
            &session.user.email,
            token,
            &email,
            now,
        )
        .await?;
    Ok(())
}

pub(crate) fn verification_for(
    state: &AppState,
    name: &str,
    address: &str,
) -> Result<(String, NewEmail), AppError> {
    let verify_token = token::generate("");
    let message = verification_email(state, name, &verify_token)?;
    Ok((
        token::hash(&verify_token),
        personal_email(state, address, &message, "verify_email"),
    ))
}

// ---- changing the sign-in address ------------------------------------------------------

/// The two emails of an address change, with their tokens' hashes.
pub(crate) struct EmailChangeMail {
    pub confirm_hash: String,
    pub confirm: NewEmail,
    pub undo_hash: String,
    pub undo: NewEmail,
}

/// The link for the new address and the notice, with an undo link, for the current one.
pub(crate) fn email_change_for(
    state: &AppState,
    user: &User,
    to: &EmailAddress,
) -> Result<EmailChangeMail, AppError> {
    let confirm_token = token::generate("");
    let undo_token = token::generate("");
    let confirm_link = state.link(&format!("/change-email/confirm?token={confirm_token}"));
    let undo_link = state.link(&format!("/change-email/undo?token={undo_token}"));
    let confirm = EmailChange {
        name: &user.name,
        link: &confirm_link,
    }
    .email()
    .map_err(|e| AppError::Internal(e.into()))?;
    let notice = EmailChangeNotice {
        name: &user.name,
        new_address: to.as_str(),
        link: &undo_link,
    }
    .email()
    .map_err(|e| AppError::Internal(e.into()))?;
    Ok(EmailChangeMail {
        confirm_hash: token::hash(&confirm_token),
        confirm: personal_email(state, to.as_str(), &confirm, "email_change"),
        undo_hash: token::hash(&undo_token),
        undo: personal_email(state, &user.email, &notice, "email_change_notice"),
    })
}

fn message_page(
    state: &AppState,
    status: StatusCode,
    (title, message): (&'static str, &'static str),
    (link_href, link_text): (&'static str, &'static str),
) -> axum::response::Response {
    let page = MessagePage {
        layout: Layout::public(state),
        title,
        message,
        link_href,
        link_text,
    };
    (status, page).into_response()
}

async fn confirm_email_change(
    State(state): State<AppState>,
    Query(query): Query<TokenQuery>,
) -> PageResult {
    let confirmed = state
        .store
        .confirm_email_change(&token::hash(&query.token), state.now())
        .await;
    let (status, text) = match confirmed {
        Ok(_) => (
            StatusCode::OK,
            (
                "Email changed",
                "This is your sign-in address now: log in with it from now on.",
            ),
        ),
        Err(StoreError::NotFound) => (
            StatusCode::BAD_REQUEST,
            (
                "Link expired",
                "This link has expired, was already used, or the change was undone. Log in and ask for the change again.",
            ),
        ),
        Err(StoreError::Conflict(kaltalk_store::Conflict::EmailTaken)) => (
            StatusCode::CONFLICT,
            (
                "Address taken",
                "Another account uses this address now, so yours keeps its sign-in address.",
            ),
        ),
        Err(err) => return Err(AppError::from(err).into()),
    };
    Ok(message_page(&state, status, text, ("/", "Go to KalTalk")))
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/undo_email.html")]
struct UndoEmailPage {
    layout: Layout,
    token: String,
    valid: bool,
}

/// Whether an emailed link's token is still good, and the status its page answers with
/// (400 for a used, expired or unknown link).
async fn link_state(
    state: &AppState,
    token: &str,
    purpose: TokenPurpose,
) -> Result<(bool, StatusCode), AppError> {
    let valid = state
        .store
        .user_token_is_valid(&token::hash(token), purpose, state.now())
        .await?;
    let status = if valid {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok((valid, status))
}

/// Shows a button rather than undoing at once: mail scanners open links, and must not
/// cancel a change the person wanted.
async fn undo_email_change_page(
    State(state): State<AppState>,
    Query(query): Query<TokenQuery>,
) -> PageResult {
    let (valid, status) = link_state(&state, &query.token, TokenPurpose::UndoEmailChange).await?;
    let page = UndoEmailPage {
        layout: Layout::public(&state),
        token: query.token,
        valid,
    };
    Ok((status, page).into_response())
}

async fn undo_email_change(
    State(state): State<AppState>,
    Form(form): Form<TokenQuery>,
) -> PageResult {
    match state
        .store
        .undo_email_change(&token::hash(&form.token), state.now())
        .await
    {
        Ok(_) => Ok((
            CookieJar::new().add(session::removal_cookie(&state)),
            message_page(
                &state,
                StatusCode::OK,
                (
                    "Change undone",
                    "Your sign-in address is the one this link was sent to, and every session was signed out. If you did not ask for the change, someone knows your password: choose a new one now.",
                ),
                ("/forgot-password", "Choose a new password"),
            ),
        )
            .into_response()),
        Err(StoreError::NotFound) => {
            let page = UndoEmailPage {
                layout: Layout::public(&state),
                token: String::new(),
                valid: false,
            };
            Ok((StatusCode::BAD_REQUEST, page).into_response())
        }
        Err(err) => Err(AppError::from(err).into()),
    }
}

// ---- password reset --------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "auth/forgot.html")]
struct ForgotPage {
    layout: Layout,
    email: String,
    notice: Option<String>,
    errors: FieldErrors,
}

#[derive(Deserialize)]
struct ForgotForm {
    #[serde(default)]
    email: String,
}

async fn forgot_page(State(state): State<AppState>) -> ForgotPage {
    ForgotPage {
        layout: Layout::public(&state),
        email: String::new(),
        notice: None,
        errors: FieldErrors::default(),
    }
}

/// Answers the same whether or not the address has an account, so the form cannot be used
/// to find out who uses KalTalk.
async fn forgot(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Form(form): Form<ForgotForm>,
) -> PageResult {
    let email = match EmailAddress::parse("email", &form.email) {
        Ok(email) => email,
        Err(error) => {
            let page = ForgotPage {
                layout: Layout::public(&state),
                email: form.email,
                notice: None,
                errors: vec![error].into(),
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    // Shares the login limit per IP: the form sends email, so it must not be a cannon.
    if let Err(retry_after_secs) = state.login_limiter.attempt_from(ip).await {
        return Err(AppError::RateLimited { retry_after_secs }.into());
    }
    if let Some(user) = state.store.find_user_by_email(&email).await? {
        let reset_token = token::generate("");
        let link = state.link(&format!("/reset-password?token={reset_token}"));
        let message = PasswordReset {
            name: &user.name,
            link: &link,
        }
        .email()
        .map_err(|e| AppError::Internal(e.into()))?;
        let outgoing = personal_email(&state, &user.email, &message, "password_reset");
        let now = state.now();
        state
            .store
            .issue_user_token(
                user.id,
                TokenPurpose::ResetPassword,
                &user.email,
                LinkToken {
                    token_hash: &token::hash(&reset_token),
                    expires_at: now + Duration::hours(RESET_LINK_HOURS),
                },
                &outgoing,
                now,
            )
            .await?;
    }
    let notice = format!(
        "If an account exists for {email}, we emailed it a link to choose a new password. The link works once, for one hour."
    );
    Ok(ForgotPage {
        layout: Layout::public(&state),
        email: String::new(),
        notice: Some(notice),
        errors: FieldErrors::default(),
    }
    .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/reset.html")]
struct ResetPage {
    layout: Layout,
    token: String,
    valid: bool,
    errors: FieldErrors,
}

async fn reset_page(State(state): State<AppState>, Query(query): Query<TokenQuery>) -> PageResult {
    let (valid, status) = link_state(&state, &query.token, TokenPurpose::ResetPassword).await?;
    Ok((
        status,
        ResetPage {
            layout: Layout::public(&state),
            token: query.token,
            valid,
            errors: FieldErrors::default(),
        },
    )
        .into_response())
}

#[derive(Deserialize)]
struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

async fn reset(State(state): State<AppState>, Form(form): Form<ResetForm>) -> PageResult {
    let password = match Password::parse("password", &form.password) {
        Ok(password) => password,
        Err(error) => {
            let page = ResetPage {
                layout: Layout::public(&state),
                token: form.token,
                valid: true,
                errors: vec![error].into(),
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let hash = password::hash(&password, state.bcrypt_cost).await?;
    match state
        .store
        .reset_password(&token::hash(&form.token), &hash, state.now())
        .await
    {
        Ok(_) => Ok(see_other("/login?notice=password-reset")),
        Err(kaltalk_store::StoreError::NotFound) => {
            let page = ResetPage {
                layout: Layout::public(&state),
                token: String::new(),
                valid: false,
                errors: FieldErrors::default(),
            };
            Ok((StatusCode::BAD_REQUEST, page).into_response())
        }
        Err(err) => Err(AppError::from(err).into()),
    }
}
