//! The knowledge base: sources become chunks (a job), and the bot answers from them with
//! a citation, or hands over when they do not cover the question.

use kaltalk_core::OrgId;
use kaltalk_core::chat::Handling;
use kaltalk_server::jobs::Ran;
use kaltalk_server::knowledge::queue_due_syncs;
use kaltalk_store::knowledge::Source;
use reqwest::StatusCode;
use serde_json::Value;

use crate::chat_helpers::{Visitor, create_inbox};
use crate::helpers::{Browser, TestApp, spawn_app, spawn_app_with};

pub const RETURNS: &str = "# Returns\n\nYou can return any product within 30 days of delivery.\n\n## Refunds\n\nRefunds reach your card within 5 to 7 working days after we receive the parcel.\n\n# Shipping\n\nWe ship to every country in Europe in three working days.";

pub async fn add_text(owner: &Browser, title: &str, body: &str) -> reqwest::Response {
    owner
        .submit(
            "/settings/knowledge",
            "/settings/knowledge",
            &[("title", title), ("body", body)],
        )
        .await
}

#[tokio::test]
async fn a_text_source_is_indexed_and_the_bot_answers_from_it_with_its_source() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    assert_eq!(
        add_text(&owner, "Returns policy", RETURNS).await.status(),
        StatusCode::SEE_OTHER
    );
    let sources = app.state.store.list_sources(org).await.expect("sources");
    assert_eq!(sources[0].state, "queued");
    assert_eq!(
        app.run_jobs().await,
        vec![Ran::Done("knowledge.index".into())]
    );
    let source = &app.state.store.list_sources(org).await.expect("sources")[0];
    assert_eq!(source.state, "ready");
    assert_eq!(source.chunks, 3, "one chunk per section");
    assert!(
        owner
            .get_html("/settings/knowledge")
            .await
            .contains("Returns policy")
    );

    crate::ai::enable_ai(&app, &owner, "0.5").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let id = visitor.say("How many days until my refund arrives?").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(app.run_jobs().await, vec![Ran::Done("ai.turn".into())]);
    let history: Value = visitor
        .get("/widget/v1/conversation")
        .await
        .json()
        .await
        .expect("json");
    let answer = history["messages"]
        .as_array()
        .expect("list")
        .last()
        .expect("answer")
        .clone();
    assert_eq!(answer["sender"], "bot");
    assert!(
        answer["text"]
            .as_str()
            .expect("text")
            .contains("5 to 7 working days"),
        "{answer}"
    );
    assert_eq!(
        answer["metadata"]["citations"][0]["title"],
        "Returns policy — Refunds"
    );
    let conversation = app
        .state
        .store
        .get_conversation(org, id.parse().expect("uuid"))
        .await
        .expect("conversation");
    assert_eq!(
        conversation.handling,
        Handling::Bot,
        "answered, still the bot's"
    );
    assert_eq!(conversation.bot_turns, 1);
    assert_eq!(
        app.state
            .store
            .ai_usage(org, app.clock_now())
            .await
            .expect("usage")
            .answers,
        1
    );

    // A question the knowledge base does not cover is handed over, not guessed.
    visitor.say("Do you sell gift cards?").await;
    app.run_jobs().await;
    let conversation = app
        .state
        .store
        .get_conversation(org, id.parse().expect("uuid"))
        .await
        .expect("conversation");
    assert_eq!(conversation.handling, Handling::WaitingHuman);
}

#[tokio::test]
async fn deleting_a_source_takes_its_knowledge_away_at_once() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    add_text(&owner, "Returns policy", RETURNS).await;
    app.run_jobs().await;
    let source = app
        .state
        .store
        .list_sources(org)
        .await
        .expect("sources")
        .remove(0);
    let before = app
        .state
        .knowledge
        .get(&app.state, org)
        .await
        .expect("index");
    assert!(!before.search("refund", 3).await.expect("search").is_empty());

    let deleted = owner
        .submit(
            "/settings/knowledge",
            &format!("/settings/knowledge/{}/delete", source.id),
            &[],
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    let after = app
        .state
        .knowledge
        .get(&app.state, org)
        .await
        .expect("index");
    assert!(
        after.search("refund", 3).await.expect("search").is_empty(),
        "the index follows the knowledge version"
    );
}

#[tokio::test]
async fn bad_input_is_explained_and_other_organizations_cannot_touch_sources() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let other = app.sign_up("Hank", "hank@globex.test", "Globex").await;
    let bad = add_text(&owner, "", "").await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await.expect("body");
    assert!(html.contains("Give it a title") && html.contains("Write the text"));

    add_text(&owner, "Returns policy", RETURNS).await;
    let source = app
        .state
        .store
        .list_sources(owner.org_id().await)
        .await
        .expect("sources")
        .remove(0);
    for action in ["resync", "delete", "schedule"] {
        let response = other
            .submit(
                "/settings/knowledge",
                &format!("/settings/knowledge/{}/{action}", source.id),
                &[("sync_every", "none")],
            )
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{action}");
    }
    assert_eq!(
        other
            .get(&format!("/settings/knowledge/{}", source.id))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    // Without the CSRF token the forms do nothing, even for the owner.
    for action in ["resync", "delete", "schedule"] {
        let forged = owner
            .post_form(
                &format!("/settings/knowledge/{}/{action}", source.id),
                &[("sync_every", "none")],
            )
            .await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN, "{action}");
    }
    assert_eq!(
        app.state
            .store
            .get_source(owner.org_id().await, source.id)
            .await
            .expect("still there")
            .state,
        "queued"
    );
    assert!(
        !other
            .get_html("/settings/knowledge")
            .await
            .contains("Returns policy")
    );
    let agent = crate::teams::join(&app, &owner, "alex@acme.test", "agent").await;
    assert_eq!(
        agent.get("/settings/knowledge").await.status(),
        StatusCode::FORBIDDEN
    );

    let resync = owner
        .submit(
            "/settings/knowledge",
            &format!("/settings/knowledge/{}/resync", source.id),
            &[],
        )
        .await;
    assert_eq!(resync.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.run_jobs().await.len(),
        2,
        "the first index and the re-sync"
    );
}

/// A small help site on loopback, as a customer's docs would be.
async fn help_site() -> String {
    use axum::response::Html;
    use axum::routing::get;
    let page = |title: &'static str, body: &'static str| async move {
        Html(format!(
            "<html><head><title>{title}</title></head><body><nav><a href=\"/\">Home</a> <a href=\"/returns.html\">Returns</a> <a href=\"/shipping.html\">Shipping</a></nav><main><article><h1>{title}</h1>{body}</article></main><footer>© Acme</footer></body></html>"
        ))
    };
    let app = axum::Router::new()
        .route("/", get(move || page("Acme Help", "<p>Welcome to the Acme help center. Find answers about returns and shipping below.</p>")))
        .route("/returns.html", get(move || page("Returns", "<h2>Refunds</h2><p>Refunds reach your card within 5 to 7 working days after the parcel arrives at our warehouse.</p>")))
        .route("/shipping.html", get(move || page("Shipping", "<h2>Europe</h2><p>Parcels to every country in Europe travel for three working days.</p>")))
        .route("/robots.txt", get(|| async { "User-agent: *\nDisallow: /private/\n" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_whole_site_is_crawled_and_answers_cite_the_page() {
    let app = spawn_app_with(|config| config.knowledge.allow_loopback = true).await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let site = help_site().await;
    let added = owner
        .submit(
            "/settings/knowledge",
            "/settings/knowledge/web",
            &[("url", &format!("{site}/")), ("whole_site", "yes")],
        )
        .await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.run_jobs().await,
        vec![Ran::Done("knowledge.index".into())]
    );
    let source = app
        .state
        .store
        .list_sources(org)
        .await
        .expect("sources")
        .remove(0);
    assert_eq!(source.state, "ready", "{:?}", source.error);
    assert_eq!(source.pages, 3, "the three pages reached by links");

    crate::ai::enable_ai(&app, &owner, "0.5").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    visitor.say("How many working days for a refund?").await;
    app.run_jobs().await;
    let history: Value = visitor
        .get("/widget/v1/conversation")
        .await
        .json()
        .await
        .expect("json");
    let answer = history["messages"]
        .as_array()
        .expect("list")
        .last()
        .expect("answer")
        .clone();
    assert_eq!(answer["sender"], "bot", "{history}");
    assert!(
        answer["text"]
            .as_str()
            .expect("text")
            .contains("5 to 7 working days")
    );
    assert_eq!(
        answer["metadata"]["citations"][0]["url"],
        format!("{site}/returns.html"),
        "the answer links its page"
    );
}

#[tokio::test]
async fn web_sources_refuse_private_addresses_and_bad_urls() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    // Loopback is refused by default (no SSRF): the source fails alone, saying why.
    let site = help_site().await;
    owner
        .submit(
            "/settings/knowledge",
            "/settings/knowledge/web",
            &[("url", &format!("{site}/returns.html"))],
        )
        .await;
    owner
        .submit(
            "/settings/knowledge",
            "/settings/knowledge/web",
            &[("url", "http://10.0.0.7/wiki")],
        )
        .await;
    app.run_jobs().await;
    let sources = app.state.store.list_sources(org).await.expect("sources");
    assert_eq!(sources.len(), 2);
    for source in &sources {
        assert_eq!(source.state, "failed", "{}", source.title);
        assert!(
            source
                .error
                .as_deref()
                .unwrap_or_default()
                .contains("refused"),
            "{:?}",
            source.error
        );
    }
    let bad = owner
        .submit(
            "/settings/knowledge",
            "/settings/knowledge/web",
            &[("url", "ftp://example.com/file")],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.text()
            .await
            .expect("body")
            .contains("starting with https://")
    );
}

/// Uploads a file through the dashboard form, as a browser sends it: the CSRF token and
/// the text fields first, the file last.
async fn upload(
    owner: &Browser,
    title: &str,
    file_name: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    let token = crate::helpers::csrf_token(&owner.get_html("/settings/knowledge").await);
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", token)
        .text("title", title.to_owned())
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_owned()),
        );
    owner
        .client
        .post(format!("{}/settings/knowledge/file", owner.base))
        .header("origin", &owner.base)
        .multipart(form)
        .send()
        .await
        .expect("upload")
}

/// The source titled `title` in the org.
async fn source_titled(app: &TestApp, org: OrgId, title: &str) -> Source {
    app.state
        .store
        .list_sources(org)
        .await
        .expect("sources")
        .into_iter()
        .find(|s| s.title == title)
        .unwrap_or_else(|| panic!("no source titled {title}"))
}

/// The files kept in blob storage for uploaded sources.
fn stored_knowledge_files(app: &TestApp) -> Vec<std::path::PathBuf> {
    let root = app.state.config.data_dir.join("blobs").join("knowledge");
    let mut files = Vec::new();
    for org in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(org.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            files.push(file.path());
        }
    }
    files
}

#[tokio::test]
async fn files_of_every_supported_type_are_uploaded_and_indexed() {
    use crate::fixtures::{docx, paragraph, pdf};
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let files: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "",
            "warranty.pdf",
            pdf(&["Warranty", "Every kettle carries a two year warranty."]),
            "two year warranty",
        ),
        (
            "Care guide",
            "care.docx",
            docx(
                &[
                    paragraph(Some("Heading1"), "Descaling"),
                    paragraph(None, "Descale the kettle monthly with white vinegar."),
                ],
                None,
            ),
            "white vinegar",
        ),
        (
            "",
            "faq.md",
            b"# Delivery\n\nOrders placed before noon leave the warehouse the same day.\n".to_vec(),
            "before noon",
        ),
        (
            "",
            "stores.html",
            b"<html><head><title>Our stores</title></head><body><main><h1>Stores</h1><p>Our Lisbon store opens at nine every morning.</p></main></body></html>".to_vec(),
            "Lisbon store opens at nine",
        ),
        (
            "",
            "hours.txt",
            b"Phone support answers from 8:00 to 18:00 on weekdays.".to_vec(),
            "8:00 to 18:00",
        ),
    ];
    for (title, file_name, bytes, _) in &files {
        let response = upload(&owner, title, file_name, bytes.clone()).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{file_name}");
    }
    assert_eq!(stored_knowledge_files(&app).len(), files.len());
    assert_eq!(
        app.run_jobs().await,
        vec![Ran::Done("knowledge.index".into()); files.len()]
    );
    for (title, file_name, _, phrase) in &files {
        // The title is the file name unless one was given.
        let title = if title.is_empty() { file_name } else { title };
        let source = source_titled(&app, org, title).await;
        assert_eq!(source.kind, "file");
        assert_eq!(source.file_name.as_deref(), Some(*file_name));
        assert_eq!(source.state, "ready", "{file_name}: {:?}", source.error);
        assert_eq!(source.pages, 1);
        assert!(source.chunks >= 1, "{file_name}");
        let chunks = app
            .state
            .store
            .source_chunks(org, source.id)
            .await
            .expect("chunks");
        assert!(
            chunks.iter().any(|c| c.text.contains(phrase)),
            "{file_name}: {chunks:?}"
        );
        // Its page shows what the bot learned from it.
        let html = owner
            .get_html(&format!("/settings/knowledge/{}", source.id))
            .await;
        assert!(html.contains(phrase), "{file_name}");
    }
    let docx_source = source_titled(&app, org, "Care guide").await;
    let chunks = app
        .state
        .store
        .source_chunks(org, docx_source.id)
        .await
        .expect("chunks");
    assert_eq!(
        chunks[0].heading_path, "Descaling",
        "Word headings become heading paths"
    );
    let index = app
        .state
        .knowledge
        .get(&app.state, org)
        .await
        .expect("index");
    let hits = index.search("kettle warranty", 1).await.expect("search");
    assert_eq!(hits[0].chunk.title, "warranty.pdf");
}

#[tokio::test]
async fn a_file_that_cannot_be_read_fails_alone_with_its_reason() {
    use crate::fixtures::docx_bomb;
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    // A PDF header over garbage: accepted at the door (it sniffs as a PDF), unreadable.
    let malformed =
        b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >>\nthis is not a pdf body\n%%EOF"
            .to_vec();
    // 60 MB of spaces compressed into a few dozen KB: over the 50 MB expansion cap.
    let bomb = docx_bomb(60 * 1024 * 1024);
    assert!(bomb.len() < 1024 * 1024);
    for (name, bytes) in [
        ("broken.pdf", malformed),
        ("bomb.docx", bomb),
        ("fine.txt", b"Gift cards never expire.".to_vec()),
    ] {
        assert_eq!(
            upload(&owner, "", name, bytes).await.status(),
            StatusCode::SEE_OTHER,
            "{name}"
        );
    }
    // Every job completes: a file that fails is the source's failure, not the worker's.
    assert_eq!(
        app.run_jobs().await,
        vec![Ran::Done("knowledge.index".into()); 3]
    );
    let broken = source_titled(&app, org, "broken.pdf").await;
    assert_eq!(broken.state, "failed");
    let reason = broken.error.clone().unwrap_or_default();
    assert!(reason.starts_with("The PDF could not be read"), "{reason}");
    let bomb = source_titled(&app, org, "bomb.docx").await;
    assert_eq!(bomb.state, "failed");
    assert_eq!(
        bomb.error.as_deref(),
        Some("The DOCX expands beyond 50 MB: refused as a possible zip bomb")
    );
    assert_eq!(source_titled(&app, org, "fine.txt").await.state, "ready");
    // The reasons are on the page, for the person who uploaded the files.
    let html = owner.get_html("/settings/knowledge").await;
    assert!(html.contains("refused as a possible zip bomb"));
    assert!(html.contains("The PDF could not be read"));
}

#[tokio::test]
async fn uploads_that_are_too_large_or_of_another_type_are_refused_and_nothing_is_kept() {
    // The default cap, 20 MB: one byte over is refused before anything is kept.
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;

    let big = upload(
        &owner,
        "Manual",
        "manual.txt",
        vec![b'a'; 20 * 1024 * 1024 + 1],
    )
    .await;
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let html = big.text().await.expect("body");
    assert!(html.contains("The file is larger than 20 MB"), "{html}");
    assert!(html.contains("value=\"Manual\""), "the title typed is kept");

    let refusals = [
        (
            "logo.png",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01".to_vec(),
            "not a PDF, a DOCX, HTML, Markdown or UTF-8 text",
        ),
        (
            "prices.csv",
            b"item,price\nkettle,30\n".to_vec(),
            "not .csv",
        ),
        (
            "report.pdf",
            b"Just some text, not a PDF.".to_vec(),
            "named .pdf but its content is a text file",
        ),
        (
            "old.doc",
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest".to_vec(),
            "save it as .docx or PDF",
        ),
        ("empty.txt", Vec::new(), "The file is empty."),
    ];
    for (name, bytes, message) in refusals {
        let response = upload(&owner, "", name, bytes).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}"
        );
        let html = response.text().await.expect("body");
        assert!(html.contains(message), "{name}: {html}");
    }

    // A form sent with no file chosen.
    let token = crate::helpers::csrf_token(&owner.get_html("/settings/knowledge").await);
    let no_file = owner
        .client
        .post(format!("{}/settings/knowledge/file", owner.base))
        .header("origin", &owner.base)
        .multipart(reqwest::multipart::Form::new().text("csrf_token", token))
        .send()
        .await
        .expect("post");
    assert_eq!(no_file.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        no_file
            .text()
            .await
            .expect("body")
            .contains("Choose a file to upload.")
    );

    // Without the session's CSRF token, nothing is accepted either.
    let forged = owner
        .client
        .post(format!("{}/settings/knowledge/file", owner.base))
        .header("origin", &owner.base)
        .multipart(reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(b"Refunds in 3 days.".to_vec()).file_name("x.txt"),
        ))
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    assert!(
        app.state
            .store
            .list_sources(org)
            .await
            .expect("sources")
            .is_empty()
    );
    assert!(
        stored_knowledge_files(&app).is_empty(),
        "no refused bytes are kept"
    );
    assert!(app.run_jobs().await.is_empty());
}

#[tokio::test]
async fn a_file_is_resynced_from_its_stored_copy_and_deleted_with_it() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    upload(&owner, "Returns", "returns.md", RETURNS.as_bytes().to_vec()).await;
    app.run_jobs().await;
    let source = source_titled(&app, org, "Returns").await;
    assert_eq!(source.chunks, 3);
    let first_sync = source.last_synced_at.expect("synced");

    app.clock.advance(chrono::Duration::hours(1));
    let resync = owner
        .submit(
            "/settings/knowledge",
            &format!("/settings/knowledge/{}/resync", source.id),
            &[],
        )
        .await;
    assert_eq!(resync.status(), StatusCode::SEE_OTHER);
    // Until the re-sync is done, the bot keeps answering from the previous chunks.
    let queued = source_titled(&app, org, "Returns").await;
    assert_eq!(queued.state, "queued");
    assert_eq!(
        app.state
            .store
            .source_chunks(org, source.id)
            .await
            .expect("chunks")
            .len(),
        3
    );
    assert_eq!(
        app.run_jobs().await,
        vec![Ran::Done("knowledge.index".into())]
    );
    let resynced = source_titled(&app, org, "Returns").await;
    assert_eq!(resynced.state, "ready");
    assert_eq!(resynced.chunks, 3, "read again from the stored copy");
    assert!(resynced.last_synced_at.expect("synced") > first_sync);

    // If the stored copy is lost, a re-sync fails, says why, and keeps what it had.
    let stored = stored_knowledge_files(&app);
    assert_eq!(stored.len(), 1);
    let aside = stored[0].with_extension("aside");
    std::fs::rename(&stored[0], &aside).expect("move aside");
    owner
        .submit(
            "/settings/knowledge",
            &format!("/settings/knowledge/{}/resync", source.id),
            &[],
        )
        .await;
    app.run_jobs().await;
    let lost = source_titled(&app, org, "Returns").await;
    assert_eq!(lost.state, "failed");
    assert_eq!(
        lost.error.as_deref(),
        Some("The stored copy of the file is missing; upload it again.")
    );
    assert_eq!(
        app.state
            .store
            .source_chunks(org, source.id)
            .await
            .expect("chunks")
            .len(),
        3,
        "the previous chunks still answer"
    );
    std::fs::rename(&aside, &stored[0]).expect("put back");

    let version = app
        .state
        .store
        .knowledge_version(org)
        .await
        .expect("version");
    let deleted = owner
        .submit(
            "/settings/knowledge",
            &format!("/settings/knowledge/{}/delete", source.id),
            &[],
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    assert!(
        stored_knowledge_files(&app).is_empty(),
        "the stored file is gone"
    );
    assert!(
        app.state
            .store
            .org_chunks(org)
            .await
            .expect("chunks")
            .is_empty()
    );
    assert!(
        app.state
            .store
            .knowledge_version(org)
            .await
            .expect("version")
            > version
    );
    assert_eq!(
        owner
            .get(&format!("/settings/knowledge/{}", source.id))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn web_sources_are_resynced_on_their_schedule_once_per_interval() {
    let app = spawn_app_with(|config| config.knowledge.allow_loopback = true).await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let site = help_site().await;
    let added = owner
        .submit(
            "/settings/knowledge",
            "/settings/knowledge/web",
            &[
                ("url", &format!("{site}/returns.html")),
                ("title", "Returns page"),
                ("sync_every", "daily"),
            ],
        )
        .await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    app.run_jobs().await;
    let source = source_titled(&app, org, "Returns page").await;
    assert_eq!(source.state, "ready", "{:?}", source.error);
    let added_at = app.clock_now();
    assert_eq!(
        source.next_sync_at,
        Some(added_at + chrono::Duration::days(1))
    );
    let page = owner.get_html("/settings/knowledge").await;
    assert!(page.contains("daily"), "the schedule is shown");

    // Not yet due: nothing is queued, however often the timer ticks.
    app.clock.advance(chrono::Duration::hours(23));
    assert_eq!(queue_due_syncs(&app.state).await.expect("tick"), 0);
    // Due: queued once, even when two ticks (or two instances) run at the same moment.
    app.clock.advance(chrono::Duration::hours(2));
    let (a, b) = tokio::join!(queue_due_syncs(&app.state), queue_due_syncs(&app.state));
    assert_eq!(a.expect("tick") + b.expect("tick"), 1);
    assert_eq!(queue_due_syncs(&app.state).await.expect("tick"), 0);
    let queued = source_titled(&app, org, "Returns page").await;
    assert_eq!(queued.state, "queued");
    assert_eq!(
        queued.next_sync_at,
        Some(app.clock_now() + chrono::Duration::days(1))
    );
    // The old chunks answer until the new ones are in.
    assert_eq!(
        app.state
            .store
            .source_chunks(org, source.id)
            .await
            .expect("chunks")
            .len(),
        source.chunks as usize
    );
    assert_eq!(
        app.run_jobs().await,
        vec![Ran::Done("knowledge.index".into())]
    );
    let synced = source_titled(&app, org, "Returns page").await;
    assert_eq!(synced.state, "ready");
    assert_eq!(synced.last_synced_at, Some(app.clock_now()));

    // Weekly from now on: a day later it is not due, a week later it is.
    let weekly = owner
        .submit(
            &format!("/settings/knowledge/{}", source.id),
            &format!("/settings/knowledge/{}/schedule", source.id),
            &[("sync_every", "weekly")],
        )
        .await;
    assert_eq!(weekly.status(), StatusCode::SEE_OTHER);
    app.clock.advance(chrono::Duration::days(2));
    assert_eq!(queue_due_syncs(&app.state).await.expect("tick"), 0);
    app.clock.advance(chrono::Duration::days(5));
    assert_eq!(queue_due_syncs(&app.state).await.expect("tick"), 1);
    app.run_jobs().await;

    // Never again once the schedule is off.
    let off = owner
        .submit(
            &format!("/settings/knowledge/{}", source.id),
            &format!("/settings/knowledge/{}/schedule", source.id),
            &[("sync_every", "none")],
        )
        .await;
    assert_eq!(off.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        source_titled(&app, org, "Returns page").await.next_sync_at,
        None
    );
    app.clock.advance(chrono::Duration::days(60));
    assert_eq!(queue_due_syncs(&app.state).await.expect("tick"), 0);
}

#[tokio::test]
async fn schedules_refuse_bad_choices_and_sources_that_do_not_change_on_their_own() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let bad = owner
        .submit(
            "/settings/knowledge",
            "/settings/knowledge/web",
            &[("url", "https://acme.test/help"), ("sync_every", "hourly")],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await.expect("body");
    assert!(html.contains("Choose how often"), "{html}");
    assert!(
        html.contains("value=\"https://acme.test/help\""),
        "the input is kept"
    );
    assert!(
        app.state
            .store
            .list_sources(org)
            .await
            .expect("sources")
            .is_empty()
    );

    add_text(&owner, "Returns policy", RETURNS).await;
    let text = source_titled(&app, org, "Returns policy").await;
    let refused = owner
        .submit(
            &format!("/settings/knowledge/{}", text.id),
            &format!("/settings/knowledge/{}/schedule", text.id),
            &[("sync_every", "daily")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .text()
            .await
            .expect("body")
            .contains("Only web pages and sites change on their own")
    );
    assert_eq!(
        source_titled(&app, org, "Returns policy")
            .await
            .sync_interval_hours,
        None
    );
}

#[tokio::test]
async fn the_file_size_cap_comes_from_configuration() {
    let app = spawn_app_with(|config| config.knowledge.max_file_bytes = 64 * 1024).await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let page = owner.get_html("/settings/knowledge").await;
    assert!(page.contains("up to 64 KB"), "the form states the cap");
    let over = upload(&owner, "", "notes.txt", vec![b'a'; 64 * 1024 + 1]).await;
    assert_eq!(over.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        over.text()
            .await
            .expect("body")
            .contains("The file is larger than 64 KB")
    );
    let at_cap = upload(&owner, "", "notes.txt", vec![b'a'; 64 * 1024]).await;
    assert_eq!(at_cap.status(), StatusCode::SEE_OTHER);
}
