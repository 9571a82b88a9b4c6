//! A small robots.txt reader (RFC 9309): the group for our product token, else `*`;
//! `Allow`/`Disallow` path patterns with `*` and `$`, longest match wins; `Sitemap:` lines.

/// The rules that apply to us, and the sitemaps the file names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Robots {
    rules: Vec<Rule>,
    /// Disallow everything: robots.txt could not be read (RFC 9309 §2.3.1.4).
    deny_all: bool,
    pub sitemaps: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    allow: bool,
    pattern: String,
}

/// Bytes of robots.txt parsed; RFC 9309 asks for at least 500 KiB.
pub const MAX_ROBOTS_BYTES: usize = 512 * 1024;

impl Robots {
    /// No robots.txt (a 4xx): everything is allowed.
    pub fn allow_all() -> Self {
        Self::default()
    }

    /// robots.txt could not be fetched (a 5xx, a network error): nothing is allowed.
    pub fn deny_all() -> Self {
        Self {
            deny_all: true,
            ..Self::default()
        }
    }

    /// Parses `text` for the crawler whose product token is `agent` (`KalTalk`).
    pub fn parse(text: &str, agent: &str) -> Self {
        let text = truncate_at_char(text, MAX_ROBOTS_BYTES);
        let agent = agent.to_ascii_lowercase();
        let mut ours = Vec::new();
        let mut star = Vec::new();
        let mut named_us = false;
        let mut sitemaps = Vec::new();

        // A group is one or more user-agent lines followed by rules; a user-agent line
        // after a rule starts the next group.
        let mut agents: Vec<String> = Vec::new();
        let mut in_rules = false;
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default().trim();
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let value = value.trim();
            match key.as_str() {
                "user-agent" => {
                    if in_rules {
                        agents.clear();
                        in_rules = false;
                    }
                    agents.push(value.to_ascii_lowercase());
                }
                "allow" | "disallow" => {
                    in_rules = true;
                    // An empty Disallow allows everything: it adds no rule.
                    if value.is_empty() {
                        continue;
                    }
                    let rule = Rule {
                        allow: key == "allow",
                        pattern: value.to_owned(),
                    };
                    if agents.contains(&agent) {
                        ours.push(rule.clone());
                    }
                    if agents.iter().any(|a| a == "*") {
                        star.push(rule);
                    }
                }
                "sitemap" => sitemaps.push(value.to_owned()),
                _ => {}
            }
            if key == "user-agent" && value.eq_ignore_ascii_case(&agent) {
                named_us = true;
            }
        }
        Self {
            rules: if named_us { ours } else { star },
            deny_all: false,
            sitemaps,
        }
    }

    /// Whether `path` (path plus `?query`) may be fetched.
    pub fn allows(&self, path: &str) -> bool {
        if self.deny_all {
            return false;
        }
        // Longest matching pattern wins; on a tie, Allow does (RFC 9309 §2.2.2).
        let mut best: Option<(usize, bool)> = None;
        for rule in &self.rules {
            if pattern_matches(&rule.pattern, path) {
                let len = rule.pattern.len();
                best = match best {
                    Some((l, allow)) if l > len || (l == len && allow) => Some((l, allow)),
                    _ => Some((len, rule.allow)),
                };
            }
        }
        best.is_none_or(|(_, allow)| allow)
    }
}

/// `*` matches any run of characters; a trailing `$` anchors the end; otherwise a prefix.
fn pattern_matches(pattern: &str, path: &str) -> bool {
    let (pattern, anchored) = match pattern.strip_suffix('$') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = path.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    if pieces.is_empty() {
        return !anchored || rest.is_empty();
    }
    for (i, piece) in pieces.iter().enumerate() {
        let last = i + 1 == pieces.len();
        if last && anchored {
            return rest.ends_with(piece);
        }
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

fn truncate_at_char(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_group_prefixes() {
        let robots = Robots::parse(
            "User-agent: *\nDisallow: /private/\nDisallow: /tmp\nAllow: /private/ok\n",
            "kaltalk",
        );
        assert!(robots.allows("/"));
        assert!(robots.allows("/public/page.html"));
        assert!(!robots.allows("/private/"));
        assert!(!robots.allows("/private/secret.html"));
        assert!(!robots.allows("/tmpfile"));
        assert!(robots.allows("/private/ok.html"));
    }

    #[test]
    fn our_own_group_replaces_star() {
        let text = "User-agent: *\nDisallow: /\n\nUser-agent: Googlebot\nUser-agent: KalTalk\nDisallow: /drafts/\n";
        let robots = Robots::parse(text, "KalTalk");
        assert!(robots.allows("/docs/"));
        assert!(!robots.allows("/drafts/x"));
        let other = Robots::parse(text, "SomethingElse");
        assert!(!other.allows("/docs/"));
    }

    #[test]
    fn groups_end_at_the_next_user_agent_after_rules() {
        let text = "User-agent: *\nDisallow: /a\nUser-agent: other\nDisallow: /b\n";
        let robots = Robots::parse(text, "kaltalk");
        assert!(!robots.allows("/a"));
        assert!(robots.allows("/b"));
    }

    #[test]
    fn wildcards_and_anchors() {
        let robots = Robots::parse(
            "user-agent: *\ndisallow: /*.pdf$\ndisallow: /search*q=\n",
            "kaltalk",
        );
        assert!(!robots.allows("/files/manual.pdf"));
        assert!(robots.allows("/files/manual.pdf?download=1"));
        assert!(!robots.allows("/search?q=x"));
        assert!(!robots.allows("/search/all?lang=en&q=x"));
        assert!(robots.allows("/search"));
        assert!(pattern_matches("/a*b*c$", "/a--b--c"));
        assert!(!pattern_matches("/a*b*c$", "/a--b--c-"));
        assert!(pattern_matches("/$", "/"));
        assert!(!pattern_matches("/$", "/x"));
    }

    #[test]
    fn longest_match_wins_and_allow_breaks_ties() {
        let robots = Robots::parse(
            "User-agent: *\nDisallow: /docs\nAllow: /docs/public\nAllow: /same\nDisallow: /same\n",
            "kaltalk",
        );
        assert!(!robots.allows("/docs/internal"));
        assert!(robots.allows("/docs/public/page"));
        assert!(robots.allows("/same/thing"));
    }

    #[test]
    fn comments_blank_disallow_and_sitemaps() {
        let robots = Robots::parse(
            "# hello\nSitemap: http://example.com/sitemap.xml\nUser-agent: * # everyone\nDisallow:\n",
            "kaltalk",
        );
        assert!(robots.allows("/anything"));
        assert_eq!(robots.sitemaps, vec!["http://example.com/sitemap.xml"]);
    }

    #[test]
    fn unreachable_robots_denies_everything() {
        assert!(!Robots::deny_all().allows("/"));
        assert!(Robots::allow_all().allows("/"));
    }
}
