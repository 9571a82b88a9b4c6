//! Reply trimming: keeps what the customer just wrote and drops the quoted history and
//! the signature that mail clients append. Cuts only at a line that marks where the
//! history or signature starts, never inside a paragraph, and never down to nothing.

/// Returns the visible part of a plain-text reply and whether anything was cut.
///
/// When no marker is found, or cutting would leave nothing, the text comes back as it
/// was with `false`.
pub fn trim_reply(text: &str) -> (String, bool) {
    let lines: Vec<&str> = text.lines().collect();
    let Some(cut) = (0..lines.len()).find(|&index| {
        is_cut_point(&lines, index) && lines[..index].iter().any(|line| !is_blank(line))
    }) else {
        return (text.to_owned(), false);
    };
    let mut kept = &lines[..cut];
    while let [rest @ .., last] = kept {
        if is_blank(last) {
            kept = rest;
        } else {
            break;
        }
    }
    (kept.join("\n"), true)
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

fn starts_paragraph(lines: &[&str], index: usize) -> bool {
    index == 0 || is_blank(lines[index - 1])
}

fn is_cut_point(lines: &[&str], index: usize) -> bool {
    let line = lines[index].trim();
    is_signature_delimiter(lines[index])
        || is_mobile_footer(line)
        || is_original_message_line(line)
        || is_attribution_at(lines, index)
        || is_header_block_at(lines, index)
        || is_trailing_quote_at(lines, index)
}

/// RFC 3676 `-- ` (many clients strip the trailing space, so `--` alone counts too).
fn is_signature_delimiter(line: &str) -> bool {
    line == "-- " || line == "--"
}

fn is_mobile_footer(line: &str) -> bool {
    let lower = line.to_lowercase();
    let short = lower.chars().count() <= 60;
    short
        && (lower.starts_with("sent from my ")
            || lower.starts_with("get outlook for ")
            || lower.starts_with("sent from mail for windows")
            || lower == "sent from outlook"
            || lower.starts_with("von meinem iphone gesendet")
            || lower.starts_with("envoyé de mon "))
}

/// Outlook's `-----Original Message-----` and its German and French spellings.
fn is_original_message_line(line: &str) -> bool {
    let Some(inner) = line.strip_prefix("---") else {
        return false;
    };
    let inner = inner.trim_matches('-').trim().to_lowercase();
    matches!(
        inner.as_str(),
        "original message" | "ursprüngliche nachricht" | "message d'origine"
    )
}

/// `On <date>, <name> wrote:` (Gmail, Apple Mail, Thunderbird), possibly wrapped onto
/// two lines, and the German and French forms; it must start a paragraph and be
/// followed by nothing but quoted lines, so an interleaved reply is not cut at its top.
fn is_attribution_at(lines: &[&str], index: usize) -> bool {
    if !starts_paragraph(lines, index) {
        return false;
    }
    let first = lines[index].trim();
    let attribution_lines = if is_attribution(first) {
        1
    } else if let Some(next) = lines.get(index + 1) {
        let joined = format!("{first} {}", next.trim());
        if !is_blank(next) && is_attribution(&joined) {
            2
        } else {
            return false;
        }
    } else {
        return false;
    };
    only_quotes_follow(&lines[index + attribution_lines..])
}

/// True when `lines` hold nothing but quoted or blank lines, optionally ending with the
/// writer's signature or mobile footer (Thunderbird puts the signature below the quote).
fn only_quotes_follow(lines: &[&str]) -> bool {
    for line in lines {
        if is_signature_delimiter(line) || is_mobile_footer(line.trim()) {
            return true;
        }
        if !is_blank(line) && !is_quoted(line) {
            return false;
        }
    }
    true
}

fn is_attribution(line: &str) -> bool {
    let lower = line.to_lowercase();
    let english = lower.starts_with("on ") && lower.ends_with("wrote:");
    let german = lower.starts_with("am ") && lower.contains(" schrieb ") && lower.ends_with(':');
    let french =
        lower.starts_with("le ") && (lower.ends_with("a écrit :") || lower.ends_with("a écrit:"));
    english || german || french
}

/// Outlook's header block (`From:` followed by `Sent:`/`To:`/`Subject:` within a few
/// lines), or the `____` line Outlook draws right above it.
fn is_header_block_at(lines: &[&str], index: usize) -> bool {
    let line = lines[index].trim();
    if is_underscore_rule(line) {
        return lines[index + 1..]
            .iter()
            .position(|next| !is_blank(next))
            .is_some_and(|offset| header_block_starts(lines, index + 1 + offset));
    }
    let after_rule = index > 0 && is_underscore_rule(lines[index - 1].trim());
    (starts_paragraph(lines, index) || after_rule) && header_block_starts(lines, index)
}

fn is_underscore_rule(line: &str) -> bool {
    line.len() >= 10 && line.chars().all(|c| c == '_')
}

fn header_block_starts(lines: &[&str], index: usize) -> bool {
    if !has_header_key(lines[index], &["from:", "von:", "de :", "de:"]) {
        return false;
    }
    let following_keys = lines[index + 1..]
        .iter()
        .take(5)
        .filter(|line| {
            has_header_key(
                line,
                &[
                    "sent:",
                    "date:",
                    "to:",
                    "subject:",
                    "cc:",
                    "gesendet:",
                    "datum:",
                    "an:",
                    "betreff:",
                    "envoyé :",
                    "envoyé:",
                    "à :",
                    "à:",
                    "objet :",
                    "objet:",
                ],
            )
        })
        .count();
    following_keys >= 2
}

fn has_header_key(line: &str, keys: &[&str]) -> bool {
    // Outlook's HTML-to-text sometimes keeps the bold as `*From:*`.
    let lower = line.trim().trim_start_matches('*').to_lowercase();
    keys.iter().any(|key| lower.starts_with(key))
}

/// A block of `>` lines (and blank lines) that runs to the end of the message.
fn is_trailing_quote_at(lines: &[&str], index: usize) -> bool {
    is_quoted(lines[index])
        && (index == 0 || !is_quoted(lines[index - 1]))
        && only_quotes_follow(&lines[index..])
}

#[cfg(test)]
mod tests {
    use super::trim_reply;

    /// (style, input, expected visible text, expected trimmed flag)
    const CASES: &[(&str, &str, &str, bool)] = &[
        (
            "gmail one-line attribution",
            "Thanks, that fixed it!\n\nOn Tue, 3 Nov 2026 at 10:02, Ada Lovelace <ada@example.test> wrote:\n\n> Try restarting.\n> Ada\n",
            "Thanks, that fixed it!",
            true,
        ),
        (
            "gmail attribution wrapped onto two lines",
            "Still broken.\n\nOn Tue, 3 Nov 2026 at 10:02, Ada Lovelace <\nada@example.test> wrote:\n\n> Try restarting.\n",
            "Still broken.",
            true,
        ),
        (
            "outlook original message",
            "Works now.\n\n-----Original Message-----\nFrom: Ada <ada@example.test>\nSent: Tuesday\nSubject: Re: help\n\nTry restarting.\n",
            "Works now.",
            true,
        ),
        (
            "outlook header block after underscore rule",
            "Here is the invoice.\r\n\r\n________________________________\r\nFrom: Ada Lovelace <ada@example.test>\r\nSent: Tuesday, November 3, 2026 10:02 AM\r\nTo: Bob <bob@example.test>\r\nSubject: Invoice\r\n\r\nCould you send the invoice?\r\n",
            "Here is the invoice.",
            true,
        ),
        (
            "outlook german header block",
            "Danke!\n\nVon: Ada Lovelace <ada@example.test>\nGesendet: Dienstag, 3. November 2026 10:02\nAn: Bob\nBetreff: Frage\n\nAlte Nachricht\n",
            "Danke!",
            true,
        ),
        (
            "outlook french header block",
            "Merci !\n\nDe : Ada Lovelace <ada@example.test>\nEnvoyé : mardi 3 novembre 2026 10:02\nÀ : Bob\nObjet : Question\n\nAncien message\n",
            "Merci !",
            true,
        ),
        (
            "german attribution",
            "Passt, danke.\n\nAm 03.11.2026 um 10:02 schrieb Ada Lovelace <ada@example.test>:\n> Passt Freitag?\n",
            "Passt, danke.",
            true,
        ),
        (
            "french attribution",
            "Parfait.\n\nLe mar. 3 nov. 2026 à 10:02, Ada <ada@example.test> a écrit :\n> Vendredi ?\n",
            "Parfait.",
            true,
        ),
        (
            "apple mail attribution",
            "Perfect, thank you.\n\nOn 3 Nov 2026, at 10:02, Ada <ada@example.test> wrote:\n\n> Try restarting.\n",
            "Perfect, thank you.",
            true,
        ),
        (
            "thunderbird attribution",
            "I tried that already.\n\nOn 11/3/26 10:02 AM, Ada Lovelace wrote:\n> Try restarting.\n",
            "I tried that already.",
            true,
        ),
        (
            "thunderbird quote with the writer's signature below it",
            "Expired again.\n\nOn 11/3/26 10:02 AM, Ada Lovelace wrote:\n> Use the new link.\n\n-- \nLinus\n",
            "Expired again.",
            true,
        ),
        (
            "rfc 3676 signature",
            "Please cancel my order.\n\nBob\n-- \nBob Example\nACME Corp, +1 555 0100\n",
            "Please cancel my order.\n\nBob",
            true,
        ),
        (
            "iphone footer",
            "On my way.\n\nSent from my iPhone\n",
            "On my way.",
            true,
        ),
        (
            "outlook mobile footer then quote",
            "Yes please.\n\nGet Outlook for Android\n\nFrom: Ada\nSent: Tuesday\nTo: Bob\n\nShall I refund?\n",
            "Yes please.",
            true,
        ),
        (
            "windows mail footer",
            "Attached.\n\nSent from Mail for Windows\n",
            "Attached.",
            true,
        ),
        (
            "trailing quote without attribution",
            "Agreed.\n\n> Shall we ship on Monday?\n> Ada\n",
            "Agreed.",
            true,
        ),
        (
            "never trims to empty: only a quote",
            "> Shall we ship on Monday?\n",
            "> Shall we ship on Monday?\n",
            false,
        ),
        (
            "never trims to empty: only a signature",
            "-- \nBob Example\n",
            "-- \nBob Example\n",
            false,
        ),
        (
            "attribution-like words inside a paragraph are kept",
            "Yesterday I looked at the logs.\nOn Monday my colleague wrote:\n> it crashed\nand it crashed again today.\n",
            "Yesterday I looked at the logs.\nOn Monday my colleague wrote:\n> it crashed\nand it crashed again today.\n",
            false,
        ),
        (
            "a From: line inside a paragraph is not a header block",
            "The email came\nFrom: the billing system\nTo: me\nSubject: nothing\n",
            "The email came\nFrom: the billing system\nTo: me\nSubject: nothing\n",
            false,
        ),
        (
            "interleaved answers are kept, only the trailing quote goes",
            "On Tue, Ada wrote:\n> Which plan?\nPro.\n> Monthly?\nYearly.\n\n> Thanks, Ada\n",
            "On Tue, Ada wrote:\n> Which plan?\nPro.\n> Monthly?\nYearly.",
            true,
        ),
        (
            "plain message without markers",
            "Hello,\n\nmy password reset link does not work.\n\n\n",
            "Hello,\n\nmy password reset link does not work.\n\n\n",
            false,
        ),
    ];

    #[test]
    fn trims_each_client_style() {
        for (name, input, expected, expected_trimmed) in CASES {
            let (visible, trimmed) = trim_reply(input);
            assert_eq!(&visible, expected, "case: {name}");
            assert_eq!(trimmed, *expected_trimmed, "case: {name}");
        }
    }
}
