//! The DATA phase as a byte-level state machine: dot-unstuffing, the end-of-data marker,
//! and the size cap. The connection feeds it what it reads, line piece by line piece.
//!
//! Only `CRLF . CRLF` ends a message. Bare LF is accepted as a line ending inside the
//! content (old or sloppy clients send it), but a `.` line that follows or ends with a
//! bare LF is content, never the end: accepting `LF . LF` as the end is what makes "SMTP
//! smuggling" possible, where a relay that forwards it as content lets a sender slip a
//! second, forged message in after it.
//!
//! Every byte held counts against a budget shared by all connections: each message is
//! capped, but a few hundred connections each sending a message at the cap at once
//! would otherwise hold gigabytes.

use std::sync::Arc;

use tokio::sync::Semaphore;

/// Bytes of message bodies held in memory, shared by all connections: one permit a byte.
#[derive(Debug, Clone)]
pub(crate) struct MemoryBudget(Arc<Semaphore>);

impl MemoryBudget {
    pub fn new(bytes: usize) -> Self {
        Self(Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))))
    }
}

/// The part of the budget one message holds, given back when it is dropped (after the
/// message was delivered or refused).
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: MemoryBudget,
    bytes: usize,
}

impl Reservation {
    pub(crate) fn new(budget: MemoryBudget) -> Self {
        Self { budget, bytes: 0 }
    }

    /// Takes `bytes` more from the budget; false (nothing taken) when it has not enough.
    fn grow(&mut self, bytes: usize) -> bool {
        let Ok(count) = u32::try_from(bytes) else {
            return false;
        };
        match self.budget.0.try_acquire_many(count) {
            Ok(permit) => {
                permit.forget();
                self.bytes += bytes;
                true
            }
            Err(_) => false,
        }
    }

    fn release(&mut self) {
        self.budget.0.add_permits(std::mem::take(&mut self.bytes));
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.release();
    }
}

#[derive(Debug)]
pub(crate) struct DataReader {
    body: Vec<u8>,
    reservation: Reservation,
    /// The shared budget ran out while this message was read: it is read to the end and
    /// refused with a temporary error, so the sender tries again later.
    out_of_memory_budget: bool,
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
#[derive(Debug)]
pub(crate) enum DataOutcome {
    /// The message, and its share of the memory budget (held until it is dropped).
    Complete(Vec<u8>, Reservation),
    /// Larger than the cap: read to the end and thrown away.
    TooLarge { received_bytes: usize },
    /// The connections together held too much: read to the end and thrown away.
    OutOfMemoryBudget,
}

impl DataReader {
    pub fn new(max_bytes: usize, budget: MemoryBudget) -> Self {
        Self {
            body: Vec::new(),
            reservation: Reservation::new(budget),
            out_of_memory_budget: false,
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
        if self.received_bytes > self.max_bytes || self.out_of_memory_budget {
            // Past a limit: free what we held, keep only the count.
            self.body = Vec::new();
            self.reservation.release();
        } else if self.reservation.grow(content.len()) {
            self.body.extend_from_slice(content);
        } else {
            self.out_of_memory_budget = true;
            self.body = Vec::new();
            self.reservation.release();
        }
        false
    }

    pub fn finish(self) -> DataOutcome {
        if self.received_bytes > self.max_bytes {
            DataOutcome::TooLarge {
                received_bytes: self.received_bytes,
            }
        } else if self.out_of_memory_budget {
            DataOutcome::OutOfMemoryBudget
        } else {
            DataOutcome::Complete(self.body, self.reservation)
        }
    }
}

fn is_lone_dot(piece: &[u8]) -> bool {
    matches!(piece, b"." | b".\n" | b".\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> MemoryBudget {
        MemoryBudget::new(1 << 20)
    }

    /// The message's bytes, when it was complete.
    fn body(outcome: DataOutcome) -> Option<Vec<u8>> {
        match outcome {
            DataOutcome::Complete(body, _) => Some(body),
            _ => None,
        }
    }

    fn read_lines(max_bytes: usize, input: &[u8]) -> (bool, DataOutcome) {
        read_lines_within(max_bytes, budget(), input)
    }

    fn read_lines_within(
        max_bytes: usize,
        budget: MemoryBudget,
        input: &[u8],
    ) -> (bool, DataOutcome) {
        let mut reader = DataReader::new(max_bytes, budget);
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
            body(outcome).as_deref(),
            Some(&b"Subject: x\r\n\r\n.hidden\r\n..\r\nok\r\n"[..])
        );
    }

    #[test]
    fn an_empty_message_is_just_the_end_marker() {
        let (ended, outcome) = read_lines(1000, b".\r\n");
        assert!(ended);
        assert_eq!(body(outcome), Some(Vec::new()));
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
            let body = body(outcome).expect("a complete message");
            assert!(
                body.ends_with(b"MAIL FROM:<x@y>\r\n"),
                "smuggled command ended the message early for {input:?}"
            );
        }
    }

    #[test]
    fn a_line_split_in_pieces_is_unstuffed_once_and_only_at_its_start() {
        let mut reader = DataReader::new(1000, budget());
        assert!(!reader.feed(b"..a"));
        assert!(!reader.feed(b".b\r\n"));
        assert!(reader.feed(b".\r\n"));
        assert_eq!(body(reader.finish()).as_deref(), Some(&b".a.b\r\n"[..]));
    }

    #[test]
    fn a_crlf_split_between_pieces_still_counts_as_crlf() {
        let mut reader = DataReader::new(1000, budget());
        assert!(!reader.feed(b"long\r"));
        assert!(!reader.feed(b"\n"));
        assert!(reader.feed(b".\r\n"));
        assert_eq!(body(reader.finish()).as_deref(), Some(&b"long\r\n"[..]));
    }

    #[test]
    fn counts_past_the_cap_without_storing() {
        let (ended, outcome) = read_lines(10, b"0123456789\r\nmore\r\n.\r\n");
        assert!(ended);
        assert!(
            matches!(outcome, DataOutcome::TooLarge { received_bytes: 18 }),
            "{outcome:?}"
        );
        let (_, exact) = read_lines(12, b"0123456789\r\n.\r\n");
        assert_eq!(body(exact).as_deref(), Some(&b"0123456789\r\n"[..]));
    }

    #[test]
    fn messages_share_the_memory_budget_and_give_it_back() {
        let shared = MemoryBudget::new(20);
        let (_, first) = read_lines_within(100, shared.clone(), b"0123456789\r\n.\r\n");
        assert!(matches!(first, DataOutcome::Complete(..)), "{first:?}");
        // The first message is still held: the second does not fit beside it.
        let (ended, second) = read_lines_within(100, shared.clone(), b"0123456789\r\n.\r\n");
        assert!(ended, "read to the end all the same");
        assert!(
            matches!(second, DataOutcome::OutOfMemoryBudget),
            "{second:?}"
        );
        drop(first);
        let (_, third) = read_lines_within(100, shared.clone(), b"0123456789\r\n.\r\n");
        assert!(matches!(third, DataOutcome::Complete(..)), "{third:?}");
        drop(third);
        assert_eq!(shared.0.available_permits(), 20, "everything given back");
    }
}
