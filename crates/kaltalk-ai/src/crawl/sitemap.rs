//! Reads sitemaps.org XML: a `<urlset>` of pages or a `<sitemapindex>` of more sitemaps.

use quick_xml::Reader;
use quick_xml::events::Event;

/// The most `<loc>` entries read from one file, as the sitemap protocol allows.
pub const MAX_ENTRIES: usize = 50_000;

#[derive(Debug, PartialEq, Eq)]
pub enum Sitemap {
    /// Page addresses.
    Pages(Vec<String>),
    /// Addresses of further sitemaps.
    Index(Vec<String>),
}

/// Parses a sitemap, keeping at most [`MAX_ENTRIES`] addresses.
pub fn parse(xml: &str) -> Result<Sitemap, String> {
    let mut reader = Reader::from_str(xml);
    let mut root: Option<bool> = None; // Some(true) for an index
    let mut in_loc = false;
    let mut current = String::new();
    let mut locs = Vec::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("not a sitemap: {e}"))?;
        match event {
            Event::Start(start) => {
                let name = start.local_name();
                let name = name.as_ref();
                if root.is_none() {
                    root = Some(match name {
                        "sitemapindex" => true,
                        "urlset" => false,
                        _ => {
                            return Err(format!("not a sitemap: the root element is <{}>", name));
                        }
                    });
                } else if name == "loc" {
                    in_loc = true;
                    current.clear();
                }
            }
            Event::End(end) if in_loc && end.local_name().as_ref() == "loc" => {
                in_loc = false;
                let loc = current.trim();
                if !loc.is_empty() {
                    locs.push(loc.to_owned());
                    if locs.len() >= MAX_ENTRIES {
                        break;
                    }
                }
            }
            Event::Text(text) if in_loc => current.push_str(&text.xml10_content()),
            Event::CData(data) if in_loc => current.push_str(&data.xml10_content()),
            Event::GeneralRef(reference) if in_loc => {
                if let Ok(Some(c)) = reference.resolve_char_ref() {
                    current.push(c);
                } else {
                    let name = reference.into_inner();
                    let entity = format!("&{name};");
                    let resolved = quick_xml::escape::unescape(&entity)
                        .map_err(|e| format!("not a sitemap: {e}"))?;
                    current.push_str(&resolved);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match root {
        Some(true) => Ok(Sitemap::Index(locs)),
        Some(false) => Ok(Sitemap::Pages(locs)),
        None => Err("not a sitemap: no root element".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlset() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>http://example.com/</loc><lastmod>2026-01-01</lastmod></url>
  <url><loc>
     http://example.com/search?a=1&amp;b=2
  </loc></url>
  <url><loc><![CDATA[http://example.com/cdata]]></loc></url>
  <url><loc>http://example.com/caf&#233;</loc></url>
</urlset>"#;
        assert_eq!(
            parse(xml),
            Ok(Sitemap::Pages(vec![
                "http://example.com/".to_owned(),
                "http://example.com/search?a=1&b=2".to_owned(),
                "http://example.com/cdata".to_owned(),
                "http://example.com/café".to_owned(),
            ]))
        );
    }

    #[test]
    fn index_with_prefix() {
        let xml = r#"<sm:sitemapindex xmlns:sm="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sm:sitemap><sm:loc>http://example.com/a.xml</sm:loc></sm:sitemap>
  <sm:sitemap><sm:loc>http://example.com/b.xml</sm:loc></sm:sitemap>
</sm:sitemapindex>"#;
        assert_eq!(
            parse(xml),
            Ok(Sitemap::Index(vec![
                "http://example.com/a.xml".to_owned(),
                "http://example.com/b.xml".to_owned(),
            ]))
        );
    }

    #[test]
    fn not_a_sitemap() {
        assert!(parse("<html><body>hi</body></html>").is_err());
        assert!(parse("").is_err());
        assert!(parse("<urlset><url><loc>x</url>").is_err());
    }
}
