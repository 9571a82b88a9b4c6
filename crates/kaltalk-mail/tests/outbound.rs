//! Agents' replies sent through `Mailer::send_reply` to our own SMTP listener, then read
//! back raw and with mail-parser.

use kaltalk_mail::smtp_in::testing::spawn_sink_server;
use kaltalk_mail::{
    Mailer, MailerError, OutgoingAttachment, ReplyEmail, build_reply, make_message_id,
    reply_subject,
};
use mail_parser::{MessageParser, MimeHeaders};

fn reply() -> ReplyEmail {
    ReplyEmail {
        from_name: "Ada Lovelace at Acme".to_owned(),
        from_address: "support@acme.test".to_owned(),
        reply_to: Some("support+tok3n@acme.test".to_owned()),
        to: vec!["Grace Hopper <grace@example.test>".to_owned()],
        cc: vec!["boss@example.test".to_owned()],
        bcc: vec!["audit@acme.test".to_owned()],
        subject: reply_subject("Re: My order never arrived"),
        message_id: make_message_id("acme.test"),
        in_reply_to: Some("original-2@example.test".to_owned()),
        references: vec![
            "original-1@example.test".to_owned(),
            "original-2@example.test".to_owned(),
        ],
        text: "Hello Grace,\n\nIt ships today.\n".to_owned(),
        html: "<p>Hello Grace,</p><p>It ships <b>today</b>.</p>".to_owned(),
        attachments: vec![OutgoingAttachment {
            filename: "invoice.pdf".to_owned(),
            content_type: "application/pdf".to_owned(),
            bytes: b"%PDF-1.4 \x00\xff binary".to_vec(),
        }],
    }
}

/// The header block of a raw message, with folded lines joined.
fn headers(raw: &str) -> String {
    let head = raw.split("\r\n\r\n").next().expect("a header block");
    head.replace("\r\n ", " ").replace("\r\n\t", " ")
}

#[tokio::test]
async fn a_reply_arrives_threaded_with_both_parts_and_its_attachment() {
    let (addr, server) = spawn_sink_server().await;
    let mailer = Mailer::new(
        Some(&format!("smtp://{addr}")),
        "KalTalk <noreply@acme.test>",
    )
    .expect("a valid relay URL");
    let email = reply();

    mailer.send_reply(&email).await.expect("the reply is sent");

    let messages = server.messages().await;
    assert_eq!(messages.len(), 1);
    let received = &messages[0];
    assert_eq!(received.envelope.mail_from, "support@acme.test");
    let mut recipients = received.envelope.rcpt_to.clone();
    recipients.sort();
    assert_eq!(
        recipients,
        ["audit@acme.test", "boss@example.test", "grace@example.test"]
    );

    let raw = String::from_utf8(received.raw.clone()).expect("the message is ASCII");
    let head = headers(&raw);
    let header_lines: Vec<&str> = head.split("\r\n").collect();
    let has = |line: &str| header_lines.contains(&line);
    assert!(
        has(&format!("Message-ID: <{}>", email.message_id)),
        "{head}"
    );
    assert!(has("In-Reply-To: <original-2@example.test>"), "{head}");
    assert!(
        has("References: <original-1@example.test> <original-2@example.test>"),
        "{head}"
    );
    assert!(has("Subject: Re: My order never arrived"), "{head}");
    assert!(has("Reply-To: support+tok3n@acme.test"), "{head}");
    assert!(
        header_lines.iter().any(|line| line.starts_with("Date: ")),
        "{head}"
    );
    assert!(!head.contains("X-KalTalk"), "only standard headers");
    assert!(
        !raw.contains("audit@acme.test"),
        "BCC recipients are in the envelope only: {head}"
    );

    let parsed = MessageParser::default()
        .parse(&received.raw)
        .expect("mail-parser reads the reply");
    let from = parsed.from().and_then(|from| from.first()).expect("a From");
    assert_eq!(from.name(), Some("Ada Lovelace at Acme"));
    assert_eq!(from.address(), Some("support@acme.test"));
    let reply_to = parsed
        .reply_to()
        .and_then(|to| to.first())
        .expect("a Reply-To");
    assert_eq!(reply_to.address(), Some("support+tok3n@acme.test"));
    let to = parsed.to().and_then(|to| to.first()).expect("a To");
    assert_eq!(
        (to.name(), to.address()),
        (Some("Grace Hopper"), Some("grace@example.test"))
    );
    assert_eq!(
        parsed
            .cc()
            .and_then(|cc| cc.first())
            .and_then(|cc| cc.address()),
        Some("boss@example.test")
    );
    assert_eq!(parsed.message_id(), Some(email.message_id.as_str()));
    assert_eq!(parsed.subject(), Some("Re: My order never arrived"));
    assert_eq!(
        parsed
            .body_text(0)
            .map(|text| text.replace("\r\n", "\n").trim_end().to_owned()),
        Some("Hello Grace,\n\nIt ships today.".to_owned()),
        "lettre sends line breaks as CRLF; the text is otherwise unchanged"
    );
    assert!(
        parsed
            .body_html(0)
            .expect("an HTML part")
            .contains("<b>today</b>")
    );
    assert_eq!(parsed.attachment_count(), 1);
    let attachment = parsed.attachment(0).expect("the attachment");
    assert_eq!(attachment.attachment_name(), Some("invoice.pdf"));
    let content_type = attachment.content_type().expect("a content type");
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("application", Some("pdf"))
    );
    assert_eq!(attachment.contents(), b"%PDF-1.4 \x00\xff binary");
    assert_eq!(
        parsed.content_type().map(|ct| ct.subtype()),
        Some(Some("mixed")),
        "attachments wrap the alternative in multipart/mixed"
    );
}

#[tokio::test]
async fn without_a_relay_a_reply_fails_instead_of_vanishing() {
    let mailer = Mailer::new(None, "KalTalk <noreply@acme.test>").expect("a mailer");

    let error = mailer
        .send_reply(&reply())
        .await
        .expect_err("no relay, no reply");

    assert!(matches!(error, MailerError::NoRelay));
    assert!(error.to_string().contains("no SMTP relay configured"));
}

#[test]
fn a_reply_without_attachments_is_multipart_alternative() {
    let email = ReplyEmail {
        attachments: Vec::new(),
        in_reply_to: None,
        references: Vec::new(),
        reply_to: None,
        cc: Vec::new(),
        bcc: Vec::new(),
        ..reply()
    };

    let raw = build_reply(&email).expect("a valid reply").formatted();

    let head = headers(&String::from_utf8(raw.clone()).expect("ASCII"));
    assert!(
        head.contains("Content-Type: multipart/alternative"),
        "{head}"
    );
    assert!(!head.contains("In-Reply-To"));
    assert!(!head.contains("References"));
    assert!(!head.contains("Reply-To"));
    let parsed = MessageParser::default().parse(&raw).expect("parses");
    assert_eq!(parsed.attachment_count(), 0);
    assert!(parsed.body_html(0).is_some());
}

#[test]
fn many_references_and_a_non_ascii_name_survive_encoding() {
    let references: Vec<String> = (0..30)
        .map(|n| format!("<message-{n}-with-a-long-local-part@mail.example.test>"))
        .collect();
    let email = ReplyEmail {
        from_name: "Zoë Ångström at Acme".to_owned(),
        subject: reply_subject("Où est ma commande ?"),
        references: references.clone(),
        ..reply()
    };

    let raw = build_reply(&email).expect("a valid reply").formatted();

    let parsed = MessageParser::default().parse(&raw).expect("parses");
    let from = parsed.from().and_then(|from| from.first()).expect("a From");
    assert_eq!(from.name(), Some("Zoë Ångström at Acme"));
    assert_eq!(parsed.subject(), Some("Re: Où est ma commande ?"));
    let parsed_references: Vec<String> = parsed
        .references()
        .as_text_list()
        .expect("a list of references")
        .iter()
        .map(|id| format!("<{id}>"))
        .collect();
    assert_eq!(
        parsed_references, references,
        "brackets given are not doubled"
    );
}

#[test]
fn invalid_input_is_refused_with_a_specific_error() {
    let bad_from = ReplyEmail {
        from_address: "not an address".to_owned(),
        ..reply()
    };
    assert!(matches!(
        build_reply(&bad_from),
        Err(MailerError::Address(_))
    ));

    let bad_id = ReplyEmail {
        message_id: "no-at-sign".to_owned(),
        ..reply()
    };
    assert!(matches!(
        build_reply(&bad_id),
        Err(MailerError::MessageId(_))
    ));

    let bad_type = ReplyEmail {
        attachments: vec![OutgoingAttachment {
            filename: "a.bin".to_owned(),
            content_type: "not a type".to_owned(),
            bytes: Vec::new(),
        }],
        ..reply()
    };
    assert!(matches!(
        build_reply(&bad_type),
        Err(MailerError::ContentType(_))
    ));

    // A broken id from someone else's mail is left out, and the reply still goes.
    let odd_reference = ReplyEmail {
        references: vec![
            "ok@example.test".to_owned(),
            "bad id\r\nBcc: x@y".to_owned(),
        ],
        ..reply()
    };
    let raw = build_reply(&odd_reference)
        .expect("still a reply")
        .formatted();
    let head = headers(&String::from_utf8(raw).expect("ASCII"));
    assert!(head.contains("References: <ok@example.test>\r\n"), "{head}");
    assert!(!head.contains("Bcc"));
}
