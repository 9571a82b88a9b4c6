//! Files built by the tests themselves, so nothing binary is committed.

use std::io::{Cursor, Write};

use zip::ZipWriter;
use zip::write::SimpleFileOptions;

/// A one-page PDF in Helvetica with one line of text per entry.
pub fn pdf(lines: &[&str]) -> Vec<u8> {
    pdf_with_font(
        lines,
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    )
}

/// A one-page PDF whose text is set in the given font dictionary.
pub fn pdf_with_font(lines: &[&str], font: &str) -> Vec<u8> {
    let mut content = String::from("BT /F1 14 Tf 72 720 Td");
    for (index, line) in lines.iter().enumerate() {
        if index > 0 {
            content.push_str(" 0 -24 Td");
        }
        let escaped = line
            .replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)");
        content.push_str(&format!(" ({escaped}) Tj"));
    }
    content.push_str(" ET");
    pdf_from_objects(vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
          /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_vec(),
        stream_object("", content.as_bytes()),
        font.as_bytes().to_vec(),
    ])
}

/// A valid one-page PDF carrying one more stream that inflates to `inflated_bytes` zeros.
pub fn pdf_with_flate_bomb(inflated_bytes: usize) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let zeros = vec![0u8; 64 * 1024];
    let mut left = inflated_bytes;
    while left > 0 {
        let n = left.min(zeros.len());
        encoder.write_all(&zeros[..n]).expect("writing to memory");
        left -= n;
    }
    let packed = encoder.finish().expect("writing to memory");
    let mut objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
          /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_vec(),
        stream_object("", b"BT /F1 14 Tf 72 720 Td (Hello) Tj ET"),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
    ];
    objects.push(stream_object("/Filter /FlateDecode", &packed));
    pdf_from_objects(objects)
}

fn stream_object(extra_keys: &str, data: &[u8]) -> Vec<u8> {
    let mut object = format!("<< /Length {} {extra_keys} >>\nstream\n", data.len()).into_bytes();
    object.extend_from_slice(data);
    object.extend_from_slice(b"\nendstream");
    object
}

/// Numbers the objects from 1 (the first is the catalog) and writes the cross-reference
/// table with the byte offsets a reader seeks to.
fn pdf_from_objects(objects: Vec<Vec<u8>>) -> Vec<u8> {
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n", index + 1).as_bytes());
        pdf.extend_from_slice(object);
        pdf.extend_from_slice(b"\nendobj\n");
    }
    let xref_offset = pdf.len();
    let mut xref = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for offset in offsets {
        // Each entry is exactly 20 bytes, the end-of-line included.
        xref.push_str(&format!("{offset:010} 00000 n \n"));
    }
    xref.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref_offset}\n%%EOF\n",
        objects.len() + 1
    ));
    pdf.extend_from_slice(xref.as_bytes());
    pdf
}

const WORD_NS: &str = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";

/// A paragraph, optionally with a style id.
pub fn paragraph(style: Option<&str>, text: &str) -> String {
    let properties = style
        .map(|style| format!(r#"<w:pPr><w:pStyle w:val="{style}"/></w:pPr>"#))
        .unwrap_or_default();
    format!(r#"<w:p>{properties}<w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>"#)
}

/// A bulleted paragraph.
pub fn list_item(text: &str) -> String {
    format!(
        r#"<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>{text}</w:t></w:r></w:p>"#
    )
}

/// A DOCX with the given paragraphs and, if given, a styles part.
pub fn docx(paragraphs: &[String], styles: Option<&str>) -> Vec<u8> {
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{WORD_NS}"><w:body>{}<w:sectPr/></w:body></w:document>"#,
        paragraphs.concat()
    );
    let mut zip = docx_writer();
    zip.start_file("word/document.xml", deflated())
        .expect("writing to memory");
    zip.write_all(document.as_bytes())
        .expect("writing to memory");
    if let Some(styles) = styles {
        zip.start_file("word/styles.xml", deflated())
            .expect("writing to memory");
        zip.write_all(styles.as_bytes()).expect("writing to memory");
    }
    zip.finish().expect("writing to memory").into_inner()
}

/// A styles part naming one style id as a heading, as a localized Word writes it.
pub fn styles_naming(style_id: &str, name: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><w:styles xmlns:w="{WORD_NS}"><w:style w:type="paragraph" w:styleId="{style_id}"><w:name w:val="{name}"/><w:pPr><w:outlineLvl w:val="0"/></w:pPr></w:style></w:styles>"#
    )
}

/// A DOCX whose `word/document.xml` is `expanded_bytes` of spaces inside one paragraph,
/// compressed as it is written so the test never holds the expanded text.
pub fn docx_bomb(expanded_bytes: usize) -> Vec<u8> {
    let mut zip = docx_writer();
    zip.start_file("word/document.xml", deflated())
        .expect("writing to memory");
    write!(
        zip,
        r#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{WORD_NS}"><w:body><w:p><w:r><w:t>"#
    )
    .expect("writing to memory");
    let spaces = vec![b' '; 1024 * 1024];
    let mut left = expanded_bytes;
    while left > 0 {
        let n = left.min(spaces.len());
        zip.write_all(&spaces[..n]).expect("writing to memory");
        left -= n;
    }
    zip.write_all(b"</w:t></w:r></w:p></w:body></w:document>")
        .expect("writing to memory");
    zip.finish().expect("writing to memory").into_inner()
}

/// Rewrites the uncompressed size that the ZIP headers declare for `name`, in the local
/// header and in the central directory, as a hand-made bomb would.
pub fn lie_about_size(zip: &mut [u8], name: &str, declared: u32) {
    let mut patched = 0;
    // Local header: signature, then the size at 22; central directory entry: at 24.
    for (signature, size_offset, name_offset) in [(b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)]
    {
        let mut at = 0;
        while let Some(found) = zip[at..].windows(4).position(|window| window == signature) {
            let start = at + found;
            let name_at = start + name_offset;
            if zip.get(name_at..name_at + name.len()) == Some(name.as_bytes()) {
                zip[start + size_offset..start + size_offset + 4]
                    .copy_from_slice(&declared.to_le_bytes());
                patched += 1;
            }
            at = start + 4;
        }
    }
    assert_eq!(patched, 2, "both headers of {name} should have been found");
}

fn docx_writer() -> ZipWriter<Cursor<Vec<u8>>> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    zip.start_file("[Content_Types].xml", deflated())
        .expect("writing to memory");
    zip.write_all(
        br#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#,
    )
    .expect("writing to memory");
    zip
}

fn deflated() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated)
}
