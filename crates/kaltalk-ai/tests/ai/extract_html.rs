//! Web pages: the main content as Markdown, the chrome left behind.

use kaltalk_ai::extract::{ExtractError, FileKind, extract_html};

/// A help-centre article inside the usual page chrome.
pub fn help_page() -> String {
    let paragraph = "Our refund policy is simple and fair to everyone involved. ";
    r#"<!DOCTYPE html>
<html lang="en">
<head>
  <title>Refund policy | Acme Help Center</title>
  <style>body { font-family: sans-serif; } .secret-style { color: red; }</style>
  <script>window.trackingSecret = "do-not-index";</script>
</head>
<body>
  <header><a href="/">Acme</a></header>
  <nav class="menu"><ul><li><a href="/pricing">Pricing</a></li><li><a href="/blog">Blog</a></li></ul></nav>
  <main>
    <article>
      <h1>Refund policy</h1>
      <p>You can ask for a refund within 30 days of your purchase. PARA</p>
      <h2>How to ask</h2>
      <p>Write to <a href="/contact">our support team</a> with your order number. PARA</p>
      <ul><li>Order number</li><li>Reason for the refund</li></ul>
      <h2>When the money arrives</h2>
      <p>Refunds reach your account in <strong>5 to 10 business days</strong>. PARA</p>
      <script>console.log("inline script in the article");</script>
    </article>
  </main>
  <footer class="site-footer"><p>Copyright Acme Inc. All rights reserved.</p></footer>
</body>
</html>"#
        .replace("PARA", &paragraph.repeat(4))
}

#[test]
fn a_page_gives_its_main_content_as_markdown_with_its_title() {
    let document = extract_html(
        &help_page(),
        Some("https://help.acme.test/articles/refunds"),
    )
    .expect("a help page reads");

    let markdown = &document.markdown;
    assert!(
        document
            .title
            .as_deref()
            .is_some_and(|title| title.contains("Refund policy")),
        "{document:?}"
    );
    assert!(
        markdown.contains("You can ask for a refund within 30 days"),
        "{markdown}"
    );
    assert!(markdown.contains("## How to ask"), "{markdown}");
    assert!(markdown.contains("**5 to 10 business days**"), "{markdown}");
    assert!(markdown.contains("Reason for the refund"), "{markdown}");
    // Relative links are made absolute against the page address.
    assert!(
        markdown.contains("(https://help.acme.test/contact)"),
        "{markdown}"
    );
    for chrome in [
        "Pricing",
        "Blog",
        "Copyright",
        "trackingSecret",
        "console.log",
        "font-family",
    ] {
        assert!(
            !markdown.contains(chrome),
            "{chrome} leaked into:\n{markdown}"
        );
    }
}

#[test]
fn a_short_page_still_gives_its_text() {
    let page = r#"<html><head><title>Contact</title></head><body>
        <nav><a href="/">Home</a></nav>
        <p>Call us on 555 0100.</p>
        <footer>Legal notice</footer>
        <script>var x = 1;</script>
    </body></html>"#;

    let document = extract_html(page, None).expect("a short page reads");

    assert_eq!(document.title.as_deref(), Some("Contact"));
    assert!(
        document.markdown.contains("Call us on 555 0100."),
        "{document:?}"
    );
    for chrome in ["Home", "Legal notice", "var x"] {
        assert!(
            !document.markdown.contains(chrome),
            "{chrome} leaked into {document:?}"
        );
    }
}

#[test]
fn a_relative_page_address_is_refused_with_a_reason() {
    let error =
        extract_html(&help_page(), Some("/articles/refunds")).expect_err("needs an absolute URL");

    assert!(
        matches!(
            error,
            ExtractError::Unreadable {
                kind: FileKind::Html,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("absolute"), "{error}");
}

#[test]
fn a_page_nested_too_deep_is_refused_at_once_with_a_reason() {
    // 100,000 nested elements kept the parser busy for minutes before the guard.
    let bomb = format!(
        "<html><body>{}text{}</body></html>",
        "<div>".repeat(100_000),
        "</div>".repeat(100_000)
    );
    let error = extract_html(&bomb, Some("https://docs.example/deep")).expect_err("too deep");

    assert!(
        matches!(
            error,
            ExtractError::Unreadable {
                kind: FileKind::Html,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("500 levels deep"), "{error}");
}
