//! The composer's machinery: replies with files (multipart, as the composer sends them
//! with htmx), the email fields of an email conversation (To, CC, Subject; CC and BCC
//! validated and sent), and formatted text in the email that leaves.

use kaltalk_core::chat::MessageKind;
use kaltalk_core::{ConversationId, OrgId};
use kaltalk_mail::smtp_in::testing::{SinkServer, spawn_sink_server};
use kaltalk_store::inboxes::Inbox;
use kaltalk_store::messages::Message;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::json;

use crate::chat_helpers::{Socket, Visitor, create_inbox};
use crate::helpers::{Browser, TestApp, csrf_token, spawn_app, spawn_app_with};

/// A 1×1 PNG.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xff\xff?\0\x05\xfe\x02\xfe\xa7\x35\x81\x84\0\0\0\0IEND\xaeB`\x82";
const PDF: &[u8] = b"%PDF-1.4 a tiny invoice";

fn file(name: &str, bytes: &[u8]) -> Part {
    Part::bytes(bytes.to_vec()).file_name(name.to_owned())
}

/// Posts the composer's multipart form as htmx does: the token in `X-CSRF-Token`.
async fn post_reply(
    owner: &Browser,
    conversation: &str,
    form: Form,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = owner
        .client
        .post(format!(
            "{}/inbox/conversations/{conversation}/messages",
            owner.base
        ))
        .header("origin", &owner.base)
        .header("hx-request", "true")
        .multipart(form);
    if let Some(token) = token {
        request = request.header("x-csrf-token", token);
    }
    request.send().await.expect("POST")
}

async fn messages(app: &TestApp, org: OrgId, conversation: &str) -> Vec<Message> {
    let id: ConversationId = conversation.parse().expect("id");
    app.state
        .store
        .list_messages(org, id, true)
        .await
        .expect("messages")
}

/// Every file in blob storage (attachments are `blobs/<org>/<id>`).
fn blob_count(app: &TestApp) -> usize {
    fn walk(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() { walk(&path) } else { 1 }
                })
                .sum()
        })
    }
    walk(&app.state.config.data_dir.join("blobs"))
}

#[tokio::test]
async fn a_reply_with_files_is_stored_shown_to_the_team_and_reaches_the_visitor_live() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let first = visitor.say("Can you send the invoice?").await;
    let conversation = first["conversation_id"].as_str().expect("id").to_owned();
    let mut widget = visitor.socket(first["message"]["id"].as_str()).await;
    let token = csrf_token(&owner.get_html("/inbox?view=all").await);

    let form = Form::new()
        .text("kind", "text")
        .text("text", "Here it is, with a **photo**.")
        .text("client_id", "reply-1")
        .part("files", file("invoice.pdf", PDF))
        .part("files", file("../photo.png", PNG));
    let sent = post_reply(&owner, &conversation, form, Some(&token)).await;
    assert_eq!(sent.status(), StatusCode::OK);
    let partial = sent.text().await.expect("partial");

    let reply = messages(&app, org, &conversation)
        .await
        .into_iter()
        .find(|m| m.client_id.as_deref() == Some("reply-1"))
        .expect("the reply is stored");
    assert_eq!(reply.text, "Here it is, with a **photo**.");
    let names: Vec<&str> = reply
        .attachments
        .iter()
        .map(|a| a.filename.as_str())
        .collect();
    assert_eq!(names, ["invoice.pdf", "photo.png"]);
    let image = &reply.attachments[1];
    assert!(
        partial.contains(&format!("src=\"/inbox/attachments/{}\"", image.id)),
        "the messages pane shows the image: {partial}"
    );
    assert!(partial.contains("invoice.pdf"), "and the file");

    // The team downloads both from the inbox.
    let served = owner.get(&format!("/inbox/attachments/{}", image.id)).await;
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.bytes().await.expect("bytes").as_ref(), PNG);

    // The visitor hears of it at once, and opens the files by their URLs.
    let frame = loop {
        let frame = widget.next_of("message.created").await;
        if frame["message"]["sender"] == "agent" {
            break frame;
        }
    };
    assert_eq!(frame["message"]["client_id"], "reply-1", "{frame}");
    let files = frame["message"]["attachments"].as_array().expect("files");
    assert_eq!(files.len(), 2);
    for (sent, bytes) in files.iter().zip([PDF, PNG]) {
        let url = sent["url"].as_str().expect("url");
        let got = app.api().get(app.url(url)).send().await.expect("GET");
        assert_eq!(got.status(), StatusCode::OK, "{url}");
        assert_eq!(got.bytes().await.expect("bytes").as_ref(), bytes);
    }
    widget.close().await;

    // Files alone are a reply too; a form without a file sends the empty part a file input
    // sends, which is no file.
    let token_field = Form::new()
        .text("csrf_token", token.clone())
        .text("text", "")
        .part("files", file("photo.png", PNG));
    let only_file = post_reply(&owner, &conversation, token_field, None).await;
    assert_eq!(only_file.status(), StatusCode::OK, "the token as a field");
    let no_file = Form::new()
        .text("text", "Plain words")
        .part("files", Part::bytes(Vec::new()).file_name(""));
    let plain = post_reply(&owner, &conversation, no_file, Some(&token)).await;
    assert_eq!(plain.status(), StatusCode::OK);
    let said = messages(&app, org, &conversation).await;
    let last = said.last().expect("a message");
    assert_eq!(
        (last.text.as_str(), last.attachments.len()),
        ("Plain words", 0)
    );
    assert_eq!(said[said.len() - 2].attachments.len(), 1);
}

#[tokio::test]
async fn refused_files_are_each_named_and_nothing_of_the_reply_is_stored() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let first = visitor.say("Hello").await;
    let conversation = first["conversation_id"].as_str().expect("id").to_owned();
    let token = csrf_token(&owner.get_html("/inbox?view=all").await);
    let before = messages(&app, org, &conversation).await.len();
    let blobs_before = blob_count(&app);

    let mut big = b"%PDF-".to_vec();
    big.resize(10 * 1024 * 1024 + 1, b'x');
    let form = Form::new()
        .text("text", "Three files")
        .part("files", file("photo.png", PNG))
        .part(
            "files",
            file("drawing.svg", b"<svg><script>alert(1)</script></svg>"),
        )
        .part("files", file("empty.png", b""))
        .part("files", file("scan.pdf", &big));
    let refused = post_reply(&owner, &conversation, form, Some(&token)).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = refused.text().await.expect("body");
    for expected in [
        "drawing.svg: attach an image (PNG, JPEG, GIF, WebP) or a PDF.",
        "empty.png is empty.",
        "scan.pdf is larger than 10 MB.",
    ] {
        assert!(page.contains(expected), "{expected} in {page}");
    }
    assert!(!page.contains("photo.png"), "the good file is not blamed");
    assert_eq!(messages(&app, org, &conversation).await.len(), before);
    assert_eq!(blob_count(&app), blobs_before, "no file kept");

    let six = (0..6).fold(Form::new().text("text", "Six"), |form, n| {
        form.part("files", file(&format!("p{n}.png"), PNG))
    });
    let too_many = post_reply(&owner, &conversation, six, Some(&token)).await;
    assert_eq!(too_many.status(), StatusCode::BAD_REQUEST);
    assert!(
        too_many
            .text()
            .await
            .expect("body")
            .contains("Attach at most 5 files.")
    );

    let forged = Form::new()
        .text("text", "No token")
        .part("files", file("photo.png", PNG));
    let forged = post_reply(&owner, &conversation, forged, None).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let wrong = Form::new()
        .text("csrf_token", "guess")
        .text("text", "Wrong token");
    let wrong = post_reply(&owner, &conversation, wrong, None).await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert_eq!(messages(&app, org, &conversation).await.len(), before);
    assert_eq!(blob_count(&app), blobs_before);

    // CC and BCC belong to email conversations only.
    let cc = owner
        .submit(
            "/inbox?view=all",
            &format!("/inbox/conversations/{conversation}/messages"),
            &[("text", "Hi"), ("cc", "bob@example.test")],
        )
        .await;
    assert_eq!(cc.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        cc.text()
            .await
            .expect("body")
            .contains("CC and BCC go only with an email reply")
    );
    assert_eq!(messages(&app, org, &conversation).await.len(), before);
}

const SUPPORT: &str = "support@acme.test";

/// Olivia's organization with an email inbox whose replies go to `relay`, and one email
/// from Ada (copying Bob and the inbox itself) in it.
async fn email_conversation(relay: &SinkServer) -> (TestApp, Browser, OrgId, String) {
    let relay_url = relay.smtp_url();
    let app = spawn_app_with(|config| {
        config.smtp.url = Some(kaltalk_server::config::Secret::new(relay_url));
    })
    .await;
    let owner = app
        .sign_up("Olivia Owner", "olivia@acme.test", "Acme")
        .await;
    let org = owner.org_id().await;
    let created = owner
        .submit(
            "/settings/inboxes",
            "/settings/inboxes/email",
            &[("address", SUPPORT), ("email_name", "")],
        )
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let inbox: Inbox = app
        .state
        .store
        .list_inboxes(org)
        .await
        .expect("inboxes")
        .into_iter()
        .find(|i| i.email_address.as_deref() == Some(SUPPORT))
        .expect("the email inbox");
    let details = json!({
        "subject": "Broken vase",
        "from": "ada@customer.test",
        "to": [SUPPORT],
        "cc": ["Bob@Customer.test", "support+abc@acme.test", "ada@customer.test"],
    });
    crate::chat_helpers::ada_emails(&app, &inbox, "first@mail.customer.test", &details).await;
    let conversation = app
        .state
        .store
        .list_conversations(
            org,
            &kaltalk_store::conversations::ConversationFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .expect("conversations")[0]
        .conversation
        .id
        .to_string();
    (app, owner, org, conversation)
}

#[tokio::test]
async fn an_email_reply_shows_its_fields_and_goes_with_the_chosen_cc_and_bcc_and_formatting() {
    let (_, relay) = spawn_sink_server().await;
    let (app, owner, org, conversation) = email_conversation(&relay).await;

    // The composer shows where the reply goes, the thread's CC without our own address
    // or the customer's, and the subject the email will have.
    let page = owner
        .get_html(&format!("/inbox?view=all&c={conversation}"))
        .await;
    assert!(page.contains("ada@customer.test"), "To");
    assert!(page.contains("Re: Broken vase"), "Subject");
    assert!(
        page.contains("name=\"cc\" type=\"text\" value=\"bob@customer.test\""),
        "CC defaults to the thread's: {page}"
    );
    assert!(page.contains("name=\"bcc\""));

    // Bad addresses are each named; nothing is written.
    let before = messages(&app, org, &conversation).await.len();
    let bad = owner
        .submit(
            "/inbox?view=all",
            &format!("/inbox/conversations/{conversation}/messages"),
            &[
                ("text", "Hello"),
                ("cc", "bob@, x y@customer.test; bob@customer.test"),
                ("bcc", "Support <support@acme.test>"),
            ],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = bad.text().await.expect("body");
    for expected in [
        "CC: “bob@” is not an email address.",
        "CC: “x y@customer.test” is not an email address.",
        "BCC: support@acme.test is this inbox&#39;s own address.",
    ] {
        assert!(body.contains(expected), "{expected} in {body}");
    }
    assert_eq!(messages(&app, org, &conversation).await.len(), before);

    let sent = owner
        .submit(
            "/inbox?view=all",
            &format!("/inbox/conversations/{conversation}/messages"),
            &[
                (
                    "text",
                    "**Sorry!** A new vase ships today.\n\n- tracking: [here](https://acme.test/t/1)\n- <no> surprises",
                ),
                ("kind", "text"),
                ("cc", "bob@customer.test,\nCarol Hill <Carol@Customer.test>"),
                ("bcc", "audit@acme-records.test"),
            ],
        )
        .await;
    assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    app.run_jobs().await;

    // (The team's own notifications go through the relay too.)
    let relayed: Vec<_> = relay
        .messages()
        .await
        .into_iter()
        .filter(|m| m.envelope.rcpt_to.iter().any(|r| r == "ada@customer.test"))
        .collect();
    assert_eq!(relayed.len(), 1, "one reply reached the relay");
    let mail = &relayed[0];
    let mut recipients = mail.envelope.rcpt_to.clone();
    recipients.sort();
    assert_eq!(
        recipients,
        [
            "ada@customer.test",
            "audit@acme-records.test",
            "bob@customer.test",
            "carol@customer.test"
        ]
    );
    let raw = String::from_utf8_lossy(&mail.raw).into_owned();
    let parsed = mail_parser::MessageParser::default()
        .parse(&mail.raw)
        .expect("a message");
    let cc: Vec<&str> = parsed
        .cc()
        .expect("a Cc header")
        .iter()
        .filter_map(|a| a.address())
        .collect();
    assert_eq!(cc, ["bob@customer.test", "carol@customer.test"]);
    assert!(
        !raw.contains("audit@acme-records.test"),
        "BCC stays out of the message: {raw}"
    );
    assert_eq!(parsed.subject(), Some("Re: Broken vase"));
    let html = parsed.body_html(0).expect("an HTML part");
    assert!(
        html.contains(
            "<p><strong>Sorry!</strong> A new vase ships today.</p><ul><li>tracking: \
             <a href=\"https://acme.test/t/1\" rel=\"noopener noreferrer nofollow\" \
             target=\"_blank\">here</a></li><li>&lt;no&gt; surprises</li></ul>"
        ),
        "{html}"
    );
    let text = parsed
        .body_text(0)
        .expect("a text part")
        .replace("\r\n", "\n");
    assert_eq!(
        text.trim_end(),
        "Sorry! A new vase ships today.\n\n- tracking: here (https://acme.test/t/1)\n- <no> surprises"
    );

    // The message keeps who it went to, for the team.
    let reply = messages(&app, org, &conversation)
        .await
        .into_iter()
        .rfind(|m| m.kind == MessageKind::Text)
        .expect("the reply");
    assert_eq!(reply.email_fact("delivery"), Some("sent"));
    let recipients = reply.email_recipients();
    assert_eq!(recipients.cc, ["bob@customer.test", "carol@customer.test"]);
    assert_eq!(recipients.bcc, ["audit@acme-records.test"]);
}

#[tokio::test]
async fn the_agent_socket_and_list_hear_of_a_reply_with_files() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let first = visitor.say("Photo please").await;
    let conversation = first["conversation_id"].as_str().expect("id").to_owned();
    let cookie = crate::chat_helpers::session_cookie(&app, "olivia@acme.test").await;
    let mut team = Socket::agent(&app, &cookie, None).await;
    let token = csrf_token(&owner.get_html("/inbox?view=all").await);
    let form = Form::new()
        .text("text", "")
        .part("files", file("photo.png", PNG));
    let sent = post_reply(&owner, &conversation, form, Some(&token)).await;
    assert_eq!(sent.status(), StatusCode::OK);
    loop {
        let frame = team.next_of("message.created").await;
        if frame["payload"]["message"]["sender"] == "agent" {
            assert_eq!(
                frame["payload"]["message"]["attachments"][0]["filename"],
                "photo.png"
            );
            break;
        }
    }
    team.close().await;
}
