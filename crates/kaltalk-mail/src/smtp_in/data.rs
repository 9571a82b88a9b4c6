//! The DATA phase as a byte-level state machine: dot-unstuffing, the end-of-data marker,
//! and the size cap. The connection feeds it what it reads, line piece by line piece.
//!
//! Only `CRLF . CRLF` ends a message. Bare LF is accepted as a line ending inside the
//! content (old or sloppy clients send it), but a `.` line that follows or ends with a
//! bare LF is content, never the end: accepting `LF . LF` as the end is what makes "SMTP
//! smuggling" possible, where a relay that forwards it as content lets a sender slip a
//! second, forged message in after it.

#[derive(Debug)]
pub(crate) struct DataReader {
    body: Vec<u8>,
    max_bytes: usize,
    /// The total size of the unstuffed message, stored or not.
    received_bytes: usize,
    /// True when the next byte starts a new line.
    at_line_start: bool,
    /// True when the previous line ended with CRLF (or nothing has been read yet), the
    /// only position where the end-of-data line counts.
    after_crlf: bool,
    /// The previous piece ended with `\r`, so a piece of just `\n` completes a CRLF.
    pending_cr: bool,
}

/// What DATA produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DataOutcome {
    Complete(Vec<u8>),
    /// Larger than the cap: read to the end and thrown away.
    TooLarge {
        received_bytes: usize,
    },
}

impl DataReader {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            body: Vec::new(),
            max_bytes,
            received_bytes: 0,
            at_line_start: true,
            after_crlf: true,
            pending_cr: false,
        }
    }

    /// Feeds one piece of a line: everything up to and including a `\n`, or a prefix of
    /// a long line that did not end in this piece. Returns true once the end-of-data line
    /// has been seen; the caller must not feed more after that.
    pub fn feed(&mut self, piece: &[u8]) -> bool {
        if piece.is_empty() {
            return false;
        }
        let starts_line = self.at_line_start;
        let ends_line = piece.ends_with(b"\n");
        self.at_line_start = ends_line;
        if starts_line && piece == b".\r\n" && self.after_crlf {
            return true;
        }
        if ends_line {
            self.after_crlf = piece.ends_with(b"\r\n") || (piece == b"\n" && self.pending_cr);
        }
        self.pending_cr = piece.ends_with(b"\r");
        // A leading dot was doubled by the sender (RFC 5321 §4.5.2) unless the line is a
        // lone dot, which is only content when the rule above did not end the message.
        let content = if starts_line && piece.starts_with(b".") && !is_lone_dot(piece) {
            &piece[1..]
        } else {
            piece
        };
        self.received_bytes = self.received_bytes.saturating_add(content.len());
        if self.received_bytes <= self.max_bytes {
            self.body.extend_from_slice(content);
        } else if !self.body.is_empty() {
            // Past the cap: free what we held, keep only the count.
            self.body = Vec::new();
        }
        false
    }

    pub fn finish(self) -> DataOutcome {
        if self.received_bytes > self.max_bytes {
            DataOutcome::TooLarge {
                received_bytes: self.received_bytes,
            }
        } else {
            DataOutcome::Complete(self.body)
        }
    }
}

fn is_lone_dot(piece: &[u8]) -> bool {
    matches!(piece, b"." | b".\n" | b".\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_lines(max_bytes: usize, input: &[u8]) -> (bool, DataOutcome) {
        let mut reader = DataReader::new(max_bytes);
        let mut ended = false;
        for line in input.split_inclusive(|byte| *byte == b'\n') {
            assert!(!ended, "fed after the end of data");
            ended = reader.feed(line);
        }
        (ended, reader.finish())
    }

    #[test]
    fn unstuffs_leading_dots_and_stops_at_crlf_dot_crlf() {
        let (ended, outcome) =
            read_lines(1000, b"Subject: x\r\n\r\n..hidden\r\n...\r\nok\r\n.\r\n");
        assert!(ended);
        assert_eq!(
            outcome,
            DataOutcome::Complete(b"Subject: x\r\n\r\n.hidden\r\n..\r\nok\r\n".to_vec())
        );
    }

    #[test]
    fn an_empty_message_is_just_the_end_marker() {
        let (ended, outcome) = read_lines(1000, b".\r\n");
        assert!(ended);
        assert_eq!(outcome, DataOutcome::Complete(Vec::new()));
    }

    #[test]
    fn bare_lf_lines_are_content_and_never_end_the_message() {
        // Each of these is an SMTP smuggling attempt: a dot line next to a bare LF.
        for input in [
            &b"a\n.\nMAIL FROM:<x@y>\r\n.\r\n"[..],
            b"a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n",
            b"a\r\n.\nMAIL FROM:<x@y>\r\n.\r\n",
        ] {
            let (ended, outcome) = read_lines(1000, input);
            assert!(ended);
            let DataOutcome::Complete(body) = outcome else {
                panic!("unexpected {outcome:?}");
            };
            assert!(
                body.ends_with(b"MAIL FROM:<x@y>\r\n"),
                "smuggled command ended the message early for {input:?}"
            );
        }
    }

    #[test]
    fn a_line_split_in_pieces_is_unstuffed_once_and_only_at_its_start() {
        let mut reader = DataReader::new(1000);
        assert!(!reader.feed(b"..a"));
        assert!(!reader.feed(b".b\r\n"));
        assert!(reader.feed(b".\r\n"));
        assert_eq!(reader.finish(), DataOutcome::Complete(b".a.b\r\n".to_vec()));
    }

    #[test]
    fn a_crlf_split_between_pieces_still_counts_as_crlf() {
        let mut reader = DataReader::new(1000);
        assert!(!reader.feed(b"long\r"));
        assert!(!reader.feed(b"\n"));
        assert!(reader.feed(b".\r\n"));
        assert_eq!(reader.finish(), DataOutcome::Complete(b"long\r\n".to_vec()));
    }

    #[test]
    fn counts_past_the_cap_without_storing() {
        let (ended, outcome) = read_lines(10, b"0123456789\r\nmore\r\n.\r\n");
        assert!(ended);
        assert_eq!(outcome, DataOutcome::TooLarge { received_bytes: 18 });
        let (_, exact) = read_lines(12, b"0123456789\r\n.\r\n");
        assert_eq!(exact, DataOutcome::Complete(b"0123456789\r\n".to_vec()));
    }
}
