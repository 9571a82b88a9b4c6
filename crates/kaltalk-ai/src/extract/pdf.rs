//! PDF text through pdf-extract. It panics on many real files, so it only ever runs
//! inside the caller's guard; this module adds the decompression cap it lacks.

use std::io::Read;

use flate2::read::ZlibDecoder;
use memchr::memmem;

use super::{Document, ExtractError, FileKind, Limits, text};

pub(super) fn extract(bytes: &[u8], limits: &Limits) -> Result<Document, ExtractError> {
    check_inflated_size(bytes, limits.max_decompressed_bytes)?;
    let text =
        pdf_extract::extract_text_from_mem(bytes).map_err(|error| ExtractError::Unreadable {
            kind: FileKind::Pdf,
            reason: describe(&error),
        })?;
    Ok(Document {
        // The Info dictionary's title is mostly the authoring tool's leftovers
        // ("Microsoft Word - Document1"): the file name says more.
        title: None,
        markdown: text::page_text_to_markdown(&text),
    })
}

fn describe(error: &pdf_extract::OutputError) -> String {
    let text = error.to_string();
    if text.contains("ecrypt") || text.contains("password") {
        "it is password-protected".to_owned()
    } else {
        // pdf-extract says "PDF error: …"; the message already says it is the PDF.
        format!(
            "it looks damaged ({})",
            text.trim_start_matches("PDF error: ")
        )
    }
}

/// lopdf inflates every stream it touches in full, so a small PDF whose streams expand
/// to gigabytes would take the worker's memory. Before parsing, inflate each stream into
/// a counter, stopping as soon as the total passes the cap. Streams that do not inflate
/// (other filters, damage) are left for the parser to judge.
fn check_inflated_size(bytes: &[u8], limit: u64) -> Result<(), ExtractError> {
    let mut budget = limit;
    let mut rest = bytes;
    while let Some(start) = memmem::find(rest, b"stream") {
        let is_end_keyword = rest[..start].ends_with(b"end");
        let after_keyword = &rest[start + b"stream".len()..];
        // The keyword is followed by CRLF or LF.
        let data = match after_keyword {
            _ if is_end_keyword => None,
            [b'\r', b'\n', data @ ..] | [b'\n', data @ ..] => Some(data),
            _ => None,
        };
        let Some(data) = data else {
            rest = after_keyword;
            continue;
        };
        let end = memmem::find(data, b"endstream").unwrap_or(data.len());
        let inflated = inflated_len(&data[..end], budget + 1);
        if inflated > budget {
            return Err(ExtractError::ExpandsTooMuch {
                kind: FileKind::Pdf,
                limit,
            });
        }
        budget -= inflated;
        rest = &data[end..];
    }
    Ok(())
}

/// How many bytes `data` inflates to, up to `cap`. A stream that fails part-way still
/// counts what it gave before failing.
fn inflated_len(data: &[u8], cap: u64) -> u64 {
    let mut decoder = ZlibDecoder::new(data).take(cap);
    let mut buffer = [0u8; 16 * 1024];
    let mut total = 0;
    loop {
        match decoder.read(&mut buffer) {
            Ok(0) | Err(_) => return total,
            Ok(read) => total += read as u64,
        }
    }
}
