//! Server-sent events, as OpenAI-compatible servers stream chat completions: `data:`
//! lines, an empty line ending each event. Network reads split lines anywhere (even
//! inside a UTF-8 character), so bytes are buffered until a whole event has arrived.

/// Turns bytes read from the network into the `data` of whole events.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the line not yet ended.
    line: Vec<u8>,
    /// `data` lines of the event not yet ended.
    data: Vec<String>,
}

/// The most bytes one event may hold. A server that never ends an event would otherwise
/// grow the buffer without bound.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("an event longer than {MAX_EVENT_BYTES} bytes")]
    TooLong,
    #[error("an event that is not UTF-8")]
    NotUtf8,
}

impl SseParser {
    /// Feeds `bytes`; returns the data of each event they completed, in order. Multi-line
    /// data is joined with `\n`, as the SSE specification says.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, SseError> {
        let mut events = Vec::new();
        let mut rest = bytes;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            self.line.extend_from_slice(&rest[..end]);
            rest = &rest[end + 1..];
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if let Some(event) = self.line_ended(&line)? {
                events.push(event);
            }
        }
        self.line.extend_from_slice(rest);
        let held = self.line.len() + self.data.iter().map(String::len).sum::<usize>();
        if held > MAX_EVENT_BYTES {
            return Err(SseError::TooLong);
        }
        Ok(events)
    }

    fn line_ended(&mut self, line: &[u8]) -> Result<Option<String>, SseError> {
        if line.is_empty() {
            if self.data.is_empty() {
                return Ok(None);
            }
            return Ok(Some(std::mem::take(&mut self.data).join("\n")));
        }
        let line = std::str::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
        // Comments (`: keep-alive`) and other fields (`event:`, `id:`, `retry:`) carry
        // nothing a chat completion needs.
        if let Some(value) = line.strip_prefix("data") {
            match value.strip_prefix(':') {
                Some(value) => self
                    .data
                    .push(value.strip_prefix(' ').unwrap_or(value).to_owned()),
                None if value.is_empty() => self.data.push(String::new()),
                None => {} // a field merely starting with "data"
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(parser: &mut SseParser, parts: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        for part in parts {
            out.extend(parser.push(part).expect("valid"));
        }
        out
    }

    #[test]
    fn events_split_anywhere_across_reads_come_out_whole() {
        let stream = "data: {\"a\":1}\n\ndata: {\"b\":\"é\"}\r\n\r\ndata: [DONE]\n\n".as_bytes();
        let whole = all(&mut SseParser::default(), &[stream]);
        assert_eq!(whole, ["{\"a\":1}", "{\"b\":\"é\"}", "[DONE]"]);
        // Every split point, including inside "é" and between \r and \n.
        for cut in 0..stream.len() {
            let parts = [&stream[..cut], &stream[cut..]];
            assert_eq!(
                all(&mut SseParser::default(), &parts),
                whole,
                "cut at {cut}"
            );
        }
        let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(all(&mut SseParser::default(), &bytewise), whole);
    }

    #[test]
    fn multi_line_data_is_joined_and_comments_and_other_fields_are_skipped() {
        let stream =
            b": keep-alive\n\nevent: message\nid: 7\ndata: first\ndata:second\ndata\nretry: 10\n\n";
        assert_eq!(
            all(&mut SseParser::default(), &[stream]),
            ["first\nsecond\n"]
        );
    }

    #[test]
    fn an_unfinished_event_is_held_until_its_blank_line() {
        let mut parser = SseParser::default();
        assert!(parser.push(b"data: {\"x\":").expect("ok").is_empty());
        assert!(parser.push(b"2}\n").expect("ok").is_empty());
        assert_eq!(parser.push(b"\n").expect("ok"), ["{\"x\":2}"]);
    }

    #[test]
    fn an_endless_event_is_refused() {
        let mut parser = SseParser::default();
        let big = vec![b'a'; MAX_EVENT_BYTES + 1];
        assert_eq!(parser.push(&big), Err(SseError::TooLong));
    }
}
