//! Uploaded files of every supported type, and the ones that must fail cleanly.

use kaltalk_ai::extract::{ExtractError, FileKind, Limits, extract_file};

use crate::fixtures::{
    docx, docx_bomb, lie_about_size, list_item, paragraph, pdf, pdf_with_flate_bomb, pdf_with_font,
    styles_naming,
};

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn a_pdf_gives_its_text() {
    let file = pdf(&["Refunds take 5 days.", "Contact support (any time)."]);

    let document = extract_file(file, "refund-policy.pdf", &Limits::default())
        .await
        .expect("a valid PDF reads");

    assert!(
        document.markdown.contains("Refunds take 5 days."),
        "{document:?}"
    );
    assert!(
        document.markdown.contains("Contact support (any time)."),
        "{document:?}"
    );
    assert_eq!(document.title.as_deref(), Some("refund-policy"));
}

#[tokio::test]
async fn a_pdf_with_garbage_after_the_header_fails_with_a_reason() {
    let mut file = b"%PDF-1.7\n".to_vec();
    file.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));

    let error = extract_file(file, "broken.pdf", &Limits::default())
        .await
        .expect_err("garbage is no document");

    assert!(
        matches!(
            error,
            ExtractError::Unreadable {
                kind: FileKind::Pdf,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with("The PDF could not be read: "),
        "{error}"
    );
}

#[tokio::test]
async fn a_truncated_pdf_fails_with_a_reason() {
    let whole = pdf(&["Refunds take 5 days."]);
    let file = whole[..whole.len() / 2].to_vec();

    let error = extract_file(file, "truncated.pdf", &Limits::default())
        .await
        .expect_err("half a PDF is no document");

    assert!(
        matches!(
            error,
            ExtractError::Unreadable {
                kind: FileKind::Pdf,
                ..
            } | ExtractError::NoText {
                kind: FileKind::Pdf
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_pdf_that_makes_the_parser_panic_fails_alone() {
    // pdf-extract 0.12 panics ("Descendant fonts required") on a Type0 font without them.
    let crashing = pdf_with_font(
        &["Hello"],
        "<< /Type /Font /Subtype /Type0 /BaseFont /Helvetica >>",
    );

    let error = extract_file(crashing, "crash.pdf", &Limits::default())
        .await
        .expect_err("the panic must come back as an error");
    let next = extract_file(pdf(&["Still here."]), "next.pdf", &Limits::default()).await;

    assert!(
        matches!(
            error,
            ExtractError::Unreadable {
                kind: FileKind::Pdf,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with("The PDF could not be read: "),
        "{error}"
    );
    assert!(next.is_ok_and(|document| document.markdown == "Still here."));
}

#[tokio::test]
async fn a_pdf_whose_streams_expand_past_the_cap_is_refused_before_parsing() {
    let limits = Limits {
        max_decompressed_bytes: MIB as u64,
        ..Limits::default()
    };
    let file = pdf_with_flate_bomb(4 * MIB);

    let error = extract_file(file, "bomb.pdf", &limits)
        .await
        .expect_err("the stream expands 4x past the cap");

    assert!(
        matches!(
            error,
            ExtractError::ExpandsTooMuch {
                kind: FileKind::Pdf,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "The PDF expands beyond 1 MB: refused as a possible decompression bomb"
    );
}

#[tokio::test]
async fn a_docx_gives_markdown_with_its_headings() {
    let file = docx(
        &[
            paragraph(Some("Title"), "Shipping guide"),
            paragraph(None, "We ship worldwide."),
            paragraph(Some("Heading1"), "Rates"),
            paragraph(None, "Parcels &amp; letters cost &#8364;5."),
            list_item("Standard: 5 days"),
            list_item("Express: 2 days"),
            paragraph(Some("Heading2"), "Returns"),
            paragraph(None, "# is not a heading here."),
            paragraph(Some("Überschrift1"), "Contact"),
            paragraph(None, ""),
            paragraph(None, "Write to us."),
        ],
        Some(&styles_naming("Überschrift1", "heading 1")),
    );

    let document = extract_file(file, "guide.docx", &Limits::default())
        .await
        .expect("a valid DOCX reads");

    assert_eq!(document.title.as_deref(), Some("Shipping guide"));
    assert_eq!(
        document.markdown,
        "# Shipping guide\n\n\
         We ship worldwide.\n\n\
         # Rates\n\n\
         Parcels & letters cost €5.\n\n\
         - Standard: 5 days\n\
         - Express: 2 days\n\n\
         ## Returns\n\n\
         \\# is not a heading here.\n\n\
         # Contact\n\n\
         Write to us."
    );
}

#[tokio::test]
async fn a_docx_zip_bomb_is_refused_on_its_declared_size() {
    // 300 MB of spaces compress to about 300 KB.
    let file = docx_bomb(300 * MIB);
    assert!(file.len() < MIB, "the bomb is {} bytes", file.len());

    let error = extract_file(file, "bomb.docx", &Limits::default())
        .await
        .expect_err("a bomb is refused");

    assert!(
        matches!(
            error,
            ExtractError::ExpandsTooMuch {
                kind: FileKind::Docx,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "The DOCX expands beyond 50 MB: refused as a possible zip bomb"
    );
}

#[tokio::test]
async fn a_docx_zip_bomb_that_lies_about_its_size_is_stopped_while_inflating() {
    let limits = Limits {
        max_decompressed_bytes: 8 * MIB as u64,
        ..Limits::default()
    };
    let mut file = docx_bomb(40 * MIB);
    lie_about_size(&mut file, "word/document.xml", 1000);

    let error = extract_file(file, "liar.docx", &limits)
        .await
        .expect_err("a bomb is refused");

    assert!(
        matches!(
            error,
            ExtractError::Unreadable {
                kind: FileKind::Docx,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .ends_with("refused as a possible zip bomb"),
        "{error}"
    );
}

#[tokio::test]
async fn a_docx_compressed_beyond_any_real_document_is_refused() {
    // Under the size cap, but 2 MB of spaces compress about 1000:1.
    let file = docx_bomb(2 * MIB);

    let error = extract_file(file, "dense.docx", &Limits::default())
        .await
        .expect_err("the ratio gives it away");

    assert!(
        matches!(
            error,
            ExtractError::SuspiciousCompression {
                kind: FileKind::Docx,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .ends_with("refused as a possible zip bomb"),
        "{error}"
    );
}

#[tokio::test]
async fn a_zip_that_is_not_a_word_document_is_unsupported() {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("xl/workbook.xml", zip::write::SimpleFileOptions::default())
        .expect("writing to memory");
    let file = zip.finish().expect("writing to memory").into_inner();

    let error = extract_file(file, "sheet.xlsx", &Limits::default())
        .await
        .expect_err("a spreadsheet is not read");

    assert!(
        matches!(error, ExtractError::UnsupportedType { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_oversized_file_is_refused_before_parsing() {
    let file = vec![b'a'; 20 * MIB + 1];

    let error = extract_file(file, "huge.txt", &Limits::default())
        .await
        .expect_err("the default cap is 20 MB");

    assert!(matches!(error, ExtractError::TooLarge { .. }), "{error:?}");
    assert_eq!(error.to_string(), "The file is larger than 20 MB");
}

#[tokio::test]
async fn an_html_file_is_read_as_a_page() {
    let file = crate::extract_html::help_page().into_bytes();

    let document = extract_file(file, "refunds.html", &Limits::default())
        .await
        .expect("an HTML file reads");

    assert!(document.markdown.contains("within 30 days"), "{document:?}");
    assert!(!document.markdown.contains("Pricing"), "{document:?}");
}

#[tokio::test]
async fn markdown_passes_through_and_names_itself() {
    let file = "\u{feff}# Setting up the widget\r\n\r\nPaste the *snippet* before `</body>`.\r\n"
        .as_bytes()
        .to_vec();

    let document = extract_file(file, "widget.MD", &Limits::default())
        .await
        .expect("Markdown reads");

    assert_eq!(document.title.as_deref(), Some("Setting up the widget"));
    assert_eq!(
        document.markdown,
        "# Setting up the widget\n\nPaste the *snippet* before `</body>`."
    );
}

#[tokio::test]
async fn plain_text_passes_through_with_the_file_name_as_title() {
    let text = "Opening hours\n\nMonday to Friday, 9 to 17.\nClosed on holidays.";

    let document = extract_file(text.as_bytes().to_vec(), "hours.txt", &Limits::default())
        .await
        .expect("text reads");

    assert_eq!(document.title.as_deref(), Some("hours"));
    assert_eq!(document.markdown, text);
}

#[tokio::test]
async fn binary_and_old_office_files_are_unsupported() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\xff\xfe".to_vec();
    let old_word = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0\0\0".to_vec();

    let png_error = extract_file(png, "logo.txt", &Limits::default())
        .await
        .expect_err("binary");
    let word_error = extract_file(old_word, "old.doc", &Limits::default())
        .await
        .expect_err("OLE2");

    assert!(
        matches!(png_error, ExtractError::UnsupportedType { .. }),
        "{png_error:?}"
    );
    assert!(
        word_error.to_string().contains("save it as .docx"),
        "{word_error}"
    );
}

#[tokio::test]
async fn a_file_without_text_says_so() {
    let error = extract_file(b"  \n\n ".to_vec(), "empty.md", &Limits::default())
        .await
        .expect_err("nothing to learn from");

    assert!(
        matches!(
            error,
            ExtractError::NoText {
                kind: FileKind::Markdown
            }
        ),
        "{error:?}"
    );
}
