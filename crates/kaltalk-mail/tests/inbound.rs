//! Inbound parsing against realistic raw emails from the common clients, plus the
//! generator the email channel's thread tests use.

use kaltalk_mail::inbound::{InboundEmail, Noise, ParseLimits, parse};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("read fixture {path}: {error}"))
}

fn parse_fixture(name: &str) -> InboundEmail {
    parse(&fixture(name), &ParseLimits::default())
}

const ALL_FIXTURES: &[&str] = &[
    "gmail_reply.eml",
    "outlook_reply.eml",
    "apple_reply.eml",
    "thunderbird_reply.eml",
    "html_only_reply.eml",
    "out_of_office.eml",
    "out_of_office_exchange.eml",
    "newsletter_reply.eml",
    "postfix_bounce.eml",
    "unknown_charset.eml",
    "malformed.eml",
    "attachments.eml",
];

#[test]
fn fixtures_have_crlf_line_endings_like_real_mail() {
    for name in ALL_FIXTURES {
        let raw = fixture(name);
        let bare_lf = raw
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'\n' && (i == 0 || raw[i - 1] != b'\r'));
        assert!(!bare_lf, "{name} has a bare LF");
    }
}

#[test]
fn gmail_reply_keeps_the_new_text_and_threading_headers() {
    let email = parse_fixture("gmail_reply.eml");

    assert_eq!(
        email.message_id.as_deref(),
        Some("CAF=gmail-abc123@mail.gmail.com")
    );
    assert_eq!(email.in_reply_to, vec!["reply-1@kaltalk.test"]);
    assert_eq!(
        email.references,
        vec!["ticket-41@kaltalk.test", "reply-1@kaltalk.test"]
    );
    let from = email.from.as_ref().expect("a From address");
    assert_eq!(from.email, "grace.hopper@example.test");
    assert_eq!(from.name.as_deref(), Some("Grace Hopper"));
    assert_eq!(email.to.len(), 1);
    assert_eq!(email.to[0].email, "support@kaltalk.test");
    assert_eq!(email.cc.len(), 1);
    assert_eq!(email.subject, "Re: My invoice is wrong");
    assert_eq!(
        email.date.map(|d| d.to_rfc3339()).as_deref(),
        Some("2026-11-03T10:15:02+00:00")
    );
    assert!(email.text.contains("> I've corrected the VAT line"));
    assert_eq!(
        email.visible_text,
        "Thanks, the corrected invoice looks right now.\n\nCould you also send it as PDF?"
    );
    assert!(email.trimmed);
    let html = email.html.as_deref().expect("the HTML part");
    assert!(
        html.contains("gmail_quote") || html.contains("blockquote"),
        "{html}"
    );
    assert_eq!(email.noise, None);
    assert!(email.notes.is_empty(), "{:?}", email.notes);
    assert!(email.attachments.is_empty());
}

#[test]
fn outlook_reply_decodes_windows_1252_and_drops_the_header_block() {
    let email = parse_fixture("outlook_reply.eml");

    assert_eq!(email.in_reply_to, vec!["reply-7@kaltalk.test"]);
    assert_eq!(email.references, vec!["reply-7@kaltalk.test"]);
    let from = email.from.as_ref().expect("a From address");
    assert_eq!(from.name.as_deref(), Some("René Dupont"));
    assert_eq!(email.subject, "RE: Delivery date");
    assert_eq!(
        email.visible_text,
        "Bonjour, the delivery on Friday works for us – the café opens at 8:00.\n\nRené"
    );
    assert!(email.trimmed);
    assert!(email.text.contains("Would Friday morning suit you"));
    assert!(email.notes.is_empty(), "{:?}", email.notes);
}

#[test]
fn apple_reply_unflows_the_text_and_trims_the_cite() {
    let email = parse_fixture("apple_reply.eml");

    assert_eq!(email.subject, "Re: Café order ☕");
    assert_eq!(
        email.from.as_ref().and_then(|a| a.name.as_deref()),
        Some("Inès García")
    );
    assert_eq!(
        email.message_id.as_deref(),
        Some("7C1F2A3B-9D8E-4F60-A1B2-C3D4E5F60718@example.test")
    );
    // Sent at 12:40:10 +0100.
    assert_eq!(
        email.date.map(|d| d.to_rfc3339()).as_deref(),
        Some("2026-11-03T11:40:10+00:00")
    );
    assert_eq!(
        email.visible_text,
        "Yes, two kilos of the Ethiopian beans please, and could you grind one of them for espresso?\n\nThanks!\nInès"
    );
    assert!(email.trimmed);
    let html = email.html.as_deref().expect("the HTML part");
    assert!(html.contains("<blockquote"), "{html}");
}

#[test]
fn thunderbird_reply_drops_quote_and_signature() {
    let email = parse_fixture("thunderbird_reply.eml");

    assert_eq!(
        email.visible_text,
        "The link says it has expired, although I clicked it right away."
    );
    assert!(email.trimmed);
    assert_eq!(email.in_reply_to, vec!["reset-3@kaltalk.test"]);
    assert!(email.html.is_none(), "the HTML was not parsed");
}

#[test]
fn html_only_mail_is_made_readable_sanitized_and_trimmed() {
    let email = parse_fixture("html_only_reply.eml");

    assert_eq!(
        email.visible_text,
        "The export still fails with a timeout.\n\nSee this screenshot (https://example.test/screenshot)."
    );
    assert!(email.trimmed);
    assert!(
        email.text.contains("> Could you try the export again?"),
        "{}",
        email.text
    );
    assert!(!email.text.contains("alert"), "{}", email.text);
    let html = email.html.as_deref().expect("sanitized HTML");
    assert!(html.starts_with("<p>The export"), "{html}");
    assert!(
        !html.contains("<script") && !html.contains("alert"),
        "{html}"
    );
    assert!(!html.contains("tracker.example"), "{html}");
    assert!(
        html.contains("href=\"https://example.test/screenshot\""),
        "{html}"
    );
    assert!(html.contains("rel=\"noopener noreferrer\""), "{html}");
}

#[test]
fn out_of_office_replies_are_noise() {
    assert_eq!(
        parse_fixture("out_of_office.eml").noise,
        Some(Noise::AutoReply)
    );
    // Exchange only sets X-Auto-Response-Suppress; the subject makes it an auto-reply.
    assert_eq!(
        parse_fixture("out_of_office_exchange.eml").noise,
        Some(Noise::AutoReply)
    );
}

#[test]
fn a_real_reply_to_a_newsletter_is_not_noise() {
    let email = parse_fixture("newsletter_reply.eml");
    assert_eq!(email.noise, None);
    assert_eq!(
        email.visible_text,
        "Does the new widget work with our single sign-on?"
    );
}

#[test]
fn noise_headers_are_recognized_one_by_one() {
    let with_header = |header: &str, subject: &str| {
        let raw = format!(
            "From: a@example.test\r\nTo: b@example.test\r\nSubject: {subject}\r\n{header}\r\n\r\nbody\r\n"
        );
        parse(raw.as_bytes(), &ParseLimits::default()).noise
    };
    assert_eq!(
        with_header("Auto-Submitted: auto-generated", "Hi"),
        Some(Noise::AutoReply)
    );
    assert_eq!(with_header("Auto-Submitted: no", "Hi"), None);
    assert_eq!(
        with_header("X-Autoreply: yes", "Hi"),
        Some(Noise::AutoReply)
    );
    assert_eq!(
        with_header("X-Autorespond: yes", "Hi"),
        Some(Noise::AutoReply)
    );
    assert_eq!(
        with_header("Precedence: bulk", "Hi"),
        Some(Noise::AutoReply)
    );
    assert_eq!(
        with_header("Precedence: junk", "Hi"),
        Some(Noise::AutoReply)
    );
    assert_eq!(with_header("Precedence: list", "Hi"), None);
    assert_eq!(
        with_header("X-Auto-Response-Suppress: OOF", "Out of Office: Bob"),
        Some(Noise::AutoReply)
    );
    assert_eq!(
        with_header("X-Auto-Response-Suppress: All", "Abwesenheitsnotiz: Urlaub"),
        Some(Noise::AutoReply)
    );
    assert_eq!(
        with_header("X-Auto-Response-Suppress: All", "Question about my bill"),
        None
    );
    assert_eq!(
        with_header("List-Unsubscribe: <mailto:u@example.test>", "Re: news"),
        None
    );
    assert_eq!(
        with_header("X-Mailer: Outlook", "Automatic reply: wording alone"),
        None
    );
}

#[test]
fn postfix_bounce_names_the_message_that_failed() {
    let email = parse_fixture("postfix_bounce.eml");
    assert_eq!(
        email.noise,
        Some(Noise::Bounce {
            original_message_id: Some("reply-41-7@kaltalk.test".to_owned())
        })
    );
}

#[test]
fn mailer_daemon_with_a_bounce_subject_is_a_bounce_even_without_a_report() {
    let raw = "From: Mail Delivery Subsystem <MAILER-DAEMON@mail.example.test>\r\n\
        To: support@kaltalk.test\r\n\
        Subject: Mail delivery failed: returning message to sender\r\n\
        In-Reply-To: <reply-9@kaltalk.test>\r\n\r\n\
        This message was created automatically by mail delivery software.\r\n";
    let email = parse(raw.as_bytes(), &ParseLimits::default());
    assert_eq!(
        email.noise,
        Some(Noise::Bounce {
            original_message_id: Some("reply-9@kaltalk.test".to_owned())
        })
    );

    let postmaster_chat =
        "From: postmaster@example.test\r\nSubject: Question about DNS\r\n\r\nHi\r\n";
    assert_eq!(
        parse(postmaster_chat.as_bytes(), &ParseLimits::default()).noise,
        None
    );
}

#[test]
fn unknown_charset_is_noted_and_the_text_kept() {
    let email = parse_fixture("unknown_charset.eml");
    assert!(
        email.text.contains("my order number is 4242"),
        "{}",
        email.text
    );
    assert_eq!(
        email.notes,
        vec!["Unknown charset \"x-unknown-42\": the text may show wrong characters."]
    );
    // A known charset must not produce the note.
    assert!(parse_fixture("outlook_reply.eml").notes.is_empty());
}

#[test]
fn malformed_mime_keeps_what_it_can_and_says_so() {
    let email = parse_fixture("malformed.eml");
    assert!(
        email.text.contains("The app crashes when I open settings."),
        "{}",
        email.text
    );
    assert_eq!(
        email.from.as_ref().map(|a| a.email.as_str()),
        Some("broken@example.test")
    );
    assert!(
        email
            .notes
            .iter()
            .any(|note| note.contains("not well-formed MIME")),
        "{:?}",
        email.notes
    );
}

#[test]
fn an_empty_text_alternative_falls_back_to_the_html() {
    let raw = "From: a@example.test\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n\
        --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\r\n\
        --b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Only here</p>\r\n--b--\r\n";
    let email = parse(raw.as_bytes(), &ParseLimits::default());
    assert_eq!(email.text, "Only here");
    assert_eq!(email.visible_text, "Only here");
}

#[test]
fn bytes_that_are_no_message_become_text_with_a_note() {
    let raw = b"\xff\xfe\x00garbage without any header\r\nsecond line";
    let email = parse(raw, &ParseLimits::default());
    assert!(email.text.contains("second line"), "{}", email.text);
    assert!(
        email
            .notes
            .iter()
            .any(|note| note.contains("not well-formed MIME"))
    );
    let empty = parse(b"", &ParseLimits::default());
    assert_eq!(empty.text, "");
    assert_eq!(empty.notes.len(), 1);
}

#[test]
fn attachments_inline_images_and_the_size_cap() {
    let email = parse(
        &fixture("attachments.eml"),
        &ParseLimits {
            max_attachment_bytes: 2048,
        },
    );

    assert_eq!(email.subject, "Скриншоты ошибки");
    assert_eq!(
        email.from.as_ref().and_then(|a| a.name.as_deref()),
        Some("Анна Каренина")
    );
    assert_eq!(
        email.visible_text,
        "See the screenshot below and the attached files."
    );
    let names: Vec<&str> = email
        .attachments
        .iter()
        .map(|a| a.filename.as_str())
        .collect();
    assert_eq!(names, vec!["shot.png", "photo.png"]);

    let inline = &email.attachments[0];
    assert!(inline.inline);
    assert_eq!(inline.content_type, "image/png");
    assert_eq!(inline.content_id.as_deref(), Some("shot-1@example.test"));
    assert!(inline.bytes.starts_with(b"\x89PNG\r\n"));

    let attached = &email.attachments[1];
    assert!(!attached.inline);
    assert_eq!(attached.content_id, None);

    assert_eq!(
        email.notes,
        vec!["The attachment big.zip (2.9 KB) is over the 2 KB limit and was not kept."]
    );
    let html = email.html.as_deref().expect("the HTML part");
    assert!(html.contains("src=\"cid:shot-1@example.test\""), "{html}");

    let roomy = parse(&fixture("attachments.eml"), &ParseLimits::default());
    assert_eq!(roomy.attachments.len(), 3);
    assert_eq!(roomy.attachments[2].bytes.len(), 3000);
    assert!(roomy.notes.is_empty(), "{:?}", roomy.notes);
}

#[test]
fn truncated_fixtures_never_panic() {
    for name in ALL_FIXTURES {
        let raw = fixture(name);
        for step in 0..50 {
            let cut = raw.len() * step / 50;
            let email = parse(&raw[..cut], &ParseLimits::default());
            // Whatever is left is still reported in some form.
            if cut > 0 {
                assert!(
                    !email.text.is_empty()
                        || email.from.is_some()
                        || !email.subject.is_empty()
                        || email.message_id.is_some()
                        || !email.notes.is_empty()
                        || !email.attachments.is_empty(),
                    "{name} cut at {cut} gave nothing at all"
                );
            }
        }
    }
}

mod generated {
    use kaltalk_mail::inbound::fixtures::{ClientStyle, reply_fixture};
    use kaltalk_mail::inbound::{Address, ParseLimits, parse};

    fn customer() -> Address {
        Address {
            name: Some("Zoë Customer".to_owned()),
            email: "zoe@example.test".to_owned(),
        }
    }

    fn reply(style: ClientStyle, references: &[String]) -> Vec<u8> {
        reply_fixture(
            style,
            &customer(),
            "KalTalk Support <support@kaltalk.test>",
            "Re: Refund – order 77",
            "reply-3@example.test",
            Some("agent-2@kaltalk.test"),
            references,
            "Thanks — that works for me.\n\nZoë",
            "Shall I refund the order?\n\nAda",
        )
    }

    #[test]
    fn every_style_parses_back_to_the_body_alone() {
        let references = vec![
            "ticket-1@kaltalk.test".to_owned(),
            "agent-2@kaltalk.test".to_owned(),
        ];
        for style in [ClientStyle::Gmail, ClientStyle::Outlook, ClientStyle::Apple] {
            let email = parse(&reply(style, &references), &ParseLimits::default());
            assert_eq!(
                email.visible_text, "Thanks — that works for me.\n\nZoë",
                "{style:?}"
            );
            assert!(email.trimmed, "{style:?}");
            assert!(
                email.text.contains("Shall I refund the order?"),
                "{style:?}"
            );
            assert_eq!(email.message_id.as_deref(), Some("reply-3@example.test"));
            assert_eq!(email.in_reply_to, vec!["agent-2@kaltalk.test"], "{style:?}");
            assert_eq!(email.subject, "Re: Refund – order 77", "{style:?}");
            assert_eq!(email.from, Some(customer()), "{style:?}");
            assert!(email.notes.is_empty(), "{style:?}: {:?}", email.notes);
            assert_eq!(email.noise, None);
        }
    }

    #[test]
    fn non_ascii_headers_are_encoded_like_real_clients_do() {
        let raw = reply(ClientStyle::Apple, &[]);
        let head = String::from_utf8(raw).expect("utf-8");
        let head = head.split("\r\n\r\n").next().expect("headers");
        assert!(head.is_ascii(), "{head}");
        assert!(head.contains("=?UTF-8?Q?"), "{head}");
    }

    #[test]
    fn outlook_keeps_only_the_last_reference_others_the_chain() {
        let references = vec!["ticket-1@kaltalk.test".to_owned()];
        let outlook = parse(
            &reply(ClientStyle::Outlook, &references),
            &ParseLimits::default(),
        );
        assert_eq!(outlook.references, vec!["agent-2@kaltalk.test"]);
        let gmail = parse(
            &reply(ClientStyle::Gmail, &references),
            &ParseLimits::default(),
        );
        assert_eq!(
            gmail.references,
            vec!["ticket-1@kaltalk.test", "agent-2@kaltalk.test"]
        );
    }

    #[test]
    fn a_first_message_has_no_quote_and_no_threading_headers() {
        let raw = reply_fixture(
            ClientStyle::Gmail,
            &customer(),
            "support@kaltalk.test",
            "Help",
            "first@example.test",
            None,
            &[],
            "My parcel is lost.",
            "",
        );
        let email = parse(&raw, &ParseLimits::default());
        assert_eq!(email.visible_text, "My parcel is lost.");
        assert!(!email.trimmed);
        assert!(email.in_reply_to.is_empty() && email.references.is_empty());
    }
}

#[test]
fn a_lone_text_part_in_a_never_closed_multipart_is_the_body_not_an_attachment() {
    let raw = "From: ada@customer.test\r\nTo: support@acme.test\r\nSubject: broken\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"never-closed\"\r\n\r\n\
        --never-closed\r\nContent-Type: text/plain\r\n\r\nThe body survives the broken MIME.\r\n";
    let email = kaltalk_mail::inbound::parse(raw.as_bytes(), &Default::default());
    assert_eq!(email.text, "The body survives the broken MIME.");
    assert_eq!(email.visible_text, email.text);
    assert!(email.attachments.is_empty(), "{:?}", email.attachments);
    assert!(!email.notes.is_empty(), "the malformed note stays");
}

#[test]
fn a_nesting_bomb_in_html_is_not_parsed_and_the_note_says_so() {
    let html = "<div>".repeat(50_000);
    let raw = format!(
        "From: ada@customer.test\r\nTo: support@acme.test\r\nSubject: bomb\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nThe plain part.\r\n\
         --b\r\nContent-Type: text/html\r\n\r\n{html}\r\n--b--\r\n"
    );
    let email = kaltalk_mail::inbound::parse(raw.as_bytes(), &Default::default());
    assert_eq!(email.text, "The plain part.");
    assert!(email.html.is_none(), "the HTML was not parsed");
    assert!(
        email.notes.iter().any(|n| n.contains("nests more than")),
        "{:?}",
        email.notes
    );
}
