//! Helpers for the live-chat tests: inboxes, visitors, WebSockets.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kaltalk_core::OrgId;
use kaltalk_core::chat::VisitorDetails;
use kaltalk_store::inboxes::Inbox;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{Browser, TestApp};

pub const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
pub const SITE: &str = "https://shop.example.com";

/// Creates a web inbox through the dashboard; returns it as stored.
pub async fn create_inbox(app: &TestApp, owner: &Browser, domains: &str) -> Inbox {
    let response = owner
        .submit(
            "/settings/inboxes",
            "/settings/inboxes",
            &[("name", "Website"), ("allowed_domains", domains)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "create inbox");
    let org = owner.org_id().await;
    app.state
        .store
        .list_inboxes(org)
        .await
        .expect("inboxes")
        .into_iter()
        .next()
        .expect("an inbox")
}

/// A widget visitor: the browser tab on the customer's site.
pub struct Visitor<'a> {
    pub app: &'a TestApp,
    pub inbox_token: String,
    pub token: Option<String>,
    pub origin: String,
    /// Sent with every request, e.g. what a proxy in front of KalTalk adds.
    pub headers: Vec<(&'static str, String)>,
}

impl<'a> Visitor<'a> {
    pub fn new(app: &'a TestApp, inbox: &Inbox) -> Self {
        Self {
            app,
            inbox_token: inbox.public_token.clone(),
            token: None,
            origin: SITE.into(),
            headers: Vec::new(),
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        let mut request = self
            .app
            .api()
            .post(self.app.url(path))
            .header("origin", &self.origin)
            .header("user-agent", CHROME)
            .json(&body);
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("POST")
    }

    pub async fn get(&self, path: &str) -> Response {
        let mut request = self
            .app
            .api()
            .get(self.app.url(path))
            .header("origin", &self.origin);
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("GET")
    }

    /// Sends a message; keeps the visitor token; returns the response body.
    pub async fn say(&mut self, text: &str) -> Value {
        let response = self.send(json!({ "text": text, "client_id": format!("c-{text}"), "context": page_context() })).await;
        assert_eq!(response.status(), StatusCode::CREATED, "visitor message");
        let body: Value = response.json().await.expect("json");
        self.token = body["visitor_token"].as_str().map(str::to_owned);
        body
    }

    pub async fn send(&self, body: Value) -> Response {
        self.post(
            &format!("/widget/v1/inboxes/{}/messages", self.inbox_token),
            body,
        )
        .await
    }

    /// Opens the widget's WebSocket.
    pub async fn socket(&self, after: Option<&str>) -> Socket {
        let token = self.token.as_deref().expect("a visitor token");
        let mut url = format!("ws://{}/widget/v1/ws?token={token}", self.app.addr);
        if let Some(after) = after {
            url.push_str(&format!("&after={after}"));
        }
        let mut request = url.into_client_request().expect("request");
        request
            .headers_mut()
            .insert("origin", self.origin.parse().expect("header"));
        Socket::connect(request).await
    }
}

/// What the server recorded about the contact behind a widget message's response.
pub async fn contact_details(app: &TestApp, org: OrgId, said: &Value) -> VisitorDetails {
    let conversation = said["conversation_id"]
        .as_str()
        .expect("conversation_id")
        .parse()
        .expect("an id");
    let conversation = app
        .state
        .store
        .get_conversation(org, conversation)
        .await
        .expect("conversation");
    app.state
        .store
        .get_contact(org, conversation.contact_id)
        .await
        .expect("contact")
        .details
        .0
}

pub fn page_context() -> Value {
    json!({ "timezone": "Europe/Paris", "language": "fr-FR", "page_url": "https://shop.example.com/pricing", "page_title": "Pricing", "referrer": "https://search.example/" })
}

pub struct Socket {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Socket {
    pub async fn connect(
        request: tokio_tungstenite::tungstenite::handshake::client::Request,
    ) -> Self {
        let (stream, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("websocket handshake");
        Self { stream }
    }

    /// The agent's dashboard socket, with the browser's session cookie.
    pub async fn agent(app: &TestApp, cookie: &str, after: Option<&str>) -> Self {
        let mut url = format!("ws://{}/inbox/ws", app.addr);
        if let Some(after) = after {
            url.push_str(&format!("?after={after}"));
        }
        let mut request = url.into_client_request().expect("request");
        request
            .headers_mut()
            .insert("cookie", cookie.parse().expect("header"));
        request
            .headers_mut()
            .insert("origin", app.base.parse().expect("header"));
        Self::connect(request).await
    }

    /// The next JSON frame. The timeout only stops a broken test from hanging.
    pub async fn next(&mut self) -> Value {
        let text = self.next_text().await;
        serde_json::from_str(&text).expect("json frame")
    }

    /// The next text frame exactly as the server wrote it.
    pub async fn next_text(&mut self) -> String {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .expect("a frame within 10 s")
                .expect("socket open")
                .expect("frame");
            if let WsMessage::Text(text) = frame {
                return text.as_str().to_owned();
            }
        }
    }

    /// The next frame of `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    pub async fn send(&mut self, frame: Value) {
        self.stream
            .send(WsMessage::Text(frame.to_string().into()))
            .await
            .expect("send");
    }

    /// Reads until the server's ping arrives (the client library answers it).
    pub async fn next_ping(mut self) -> bool {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.stream.next()).await {
                Ok(Some(Ok(WsMessage::Ping(_)))) => return true,
                Ok(Some(Ok(_))) => continue,
                _ => return false,
            }
        }
    }

    /// The code of the close frame the server sends within 10 s, skipping other frames;
    /// `None` when none comes (the deadline only stops a broken test from hanging).
    pub async fn closed_by_server(mut self) -> Option<u16> {
        let close = async {
            while let Some(Ok(frame)) = self.stream.next().await {
                if let WsMessage::Close(frame) = frame {
                    return frame.map(|f| u16::from(f.code));
                }
            }
            None
        };
        tokio::time::timeout(Duration::from_secs(10), close)
            .await
            .ok()
            .flatten()
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// Logs `browser`'s account in again on a raw client to get a cookie header value.
pub async fn session_cookie(app: &TestApp, email: &str) -> String {
    let login = app
        .api()
        .post(app.url("/login"))
        .form(&[("email", email), ("password", crate::helpers::PASSWORD)])
        .send()
        .await
        .expect("login");
    let set_cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("cookie")
        .to_owned();
    set_cookie.split(';').next().expect("pair").to_owned()
}

/// Ada's email "Broken vase" (`The vase arrived broken.`) arriving in the email inbox
/// `inbox`, handed to the intake as the email channel hands it; `details` is what the
/// message keeps as `metadata.email`.
pub async fn ada_emails(
    app: &TestApp,
    inbox: &Inbox,
    rfc_message_id: &str,
    details: &Value,
) -> kaltalk_store::intake::Stored {
    use kaltalk_store::intake::{ArrivedEmail, Customer, CustomerMessage, Thread};
    let text = kaltalk_core::MessageText::received("The vase arrived broken.");
    let message = CustomerMessage {
        inbox,
        from: Customer::Email {
            address: "ada@customer.test",
            name: Some("Ada Lovelace"),
        },
        thread: Thread::Email {
            thread_ids: &[],
            reply_token: None,
            subject: "Broken vase",
        },
        text: &text,
        attachments: &[],
        client_id: None,
        wants_a_person: false,
        email: Some(ArrivedEmail {
            rfc_message_id,
            from_address: "ada@customer.test",
            subject: "Broken vase",
            full_text: "The vase arrived broken.",
            html: None,
            raw_key: None,
            details,
            source: "smtp",
        }),
    };
    kaltalk_server::intake::take_in(&app.state, message)
        .await
        .expect("email")
}
