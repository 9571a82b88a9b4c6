//! SMTP replies: a three-digit code and one or more lines of text (RFC 5321 §4.2).

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn new(code: u16, text: impl Into<String>) -> Self {
        Self {
            code,
            lines: vec![text.into()],
        }
    }

    pub fn multiline(code: u16, lines: Vec<String>) -> Self {
        Self { code, lines }
    }

    /// The wire form: every line but the last is `code-text`, the last `code text`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let last = self.lines.len().saturating_sub(1);
        for (index, line) in self.lines.iter().enumerate() {
            let separator = if index == last { ' ' } else { '-' };
            out.extend_from_slice(format!("{}{separator}{line}\r\n", self.code).as_bytes());
        }
        if self.lines.is_empty() {
            out.extend_from_slice(format!("{}\r\n", self.code).as_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiline_replies_use_a_dash_on_all_but_the_last_line() {
        let reply = Reply::multiline(250, vec!["mx greets you".into(), "SIZE 10".into()]);
        assert_eq!(reply.to_bytes(), b"250-mx greets you\r\n250 SIZE 10\r\n");
        assert_eq!(Reply::new(221, "bye").to_bytes(), b"221 bye\r\n");
    }
}
