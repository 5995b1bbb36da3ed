//! A look at the first bytes of a feed, so a wrong `--format`, an HTML error
//! page or an empty download is named before any parser gets confused by it.

use std::io::{self, BufRead};

use crate::{FeedError, FeedFormat};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniffed {
    Empty,
    /// Starts with `{` or `[`.
    Json,
    Html,
    /// Lowercase local name of the root element.
    Xml {
        root: String,
    },
    /// Anything else; the first line, shortened, for messages.
    Text {
        first_line: String,
    },
}

impl Sniffed {
    /// What was found, for a `WrongFormat` message.
    pub fn describe(&self) -> String {
        match self {
            Sniffed::Empty => "it is empty".into(),
            Sniffed::Json => "found JSON".into(),
            Sniffed::Html => "found an HTML page".into(),
            Sniffed::Xml { root } => format!("found XML with root element <{root}>"),
            Sniffed::Text { first_line } => format!("found text starting with {first_line:?}"),
        }
    }

    /// The error for finding this where `format` was expected.
    pub fn mismatch(&self, format: FeedFormat) -> FeedError {
        match self {
            Sniffed::Empty => FeedError::Empty,
            Sniffed::Html => FeedError::Html { format },
            other => FeedError::WrongFormat { format, found: other.describe() },
        }
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";
const LOOK_AHEAD: usize = 4096;

/// Consumes a UTF-8 byte-order mark, then peeks (without consuming) at the start.
pub fn sniff(reader: &mut impl BufRead) -> io::Result<Sniffed> {
    if reader.fill_buf()?.starts_with(BOM) {
        reader.consume(BOM.len());
    }
    let head = reader.fill_buf()?;
    let head = &head[..head.len().min(LOOK_AHEAD)];
    // The reader hands out whole UTF-8 sequences, but the cut at LOOK_AHEAD may split one.
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(error) => std::str::from_utf8(&head[..error.valid_up_to()]).unwrap_or_default(),
    };
    Ok(classify(text))
}

fn classify(text: &str) -> Sniffed {
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Sniffed::Empty;
    }
    if trimmed.starts_with(['{', '[']) {
        return Sniffed::Json;
    }
    if trimmed.starts_with('<') {
        return classify_markup(trimmed);
    }
    let first_line = trimmed.lines().next().unwrap_or_default();
    let shortened: String = first_line.chars().take(60).collect();
    Sniffed::Text { first_line: shortened }
}

fn classify_markup(mut text: &str) -> Sniffed {
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix("<?") {
            text = rest.split_once("?>").map_or("", |(_, after)| after);
        } else if let Some(rest) = text.strip_prefix("<!--") {
            text = rest.split_once("-->").map_or("", |(_, after)| after);
        } else if text.len() >= 9 && text[..9].eq_ignore_ascii_case("<!doctype") {
            let (doctype, after) = text.split_once('>').unwrap_or((text, ""));
            if doctype.to_ascii_lowercase().contains("html") {
                return Sniffed::Html;
            }
            text = after;
        } else if let Some(rest) = text.strip_prefix('<') {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || matches!(c, ':' | '-' | '_' | '.'))
                .collect::<String>()
                .to_ascii_lowercase();
            let local = name.rsplit(':').next().unwrap_or_default().to_string();
            if local == "html" || local == "head" || local == "body" {
                return Sniffed::Html;
            }
            if local.is_empty() {
                return Sniffed::Text { first_line: text.chars().take(60).collect() };
            }
            return Sniffed::Xml { root: local };
        } else {
            return classify(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniffed(input: &str) -> Sniffed {
        sniff(&mut input.as_bytes()).unwrap()
    }

    #[test]
    fn recognizes_feed_shapes() {
        assert_eq!(sniffed("  \n"), Sniffed::Empty);
        assert_eq!(sniffed("\u{feff}{\"products\":[]}"), Sniffed::Json);
        assert_eq!(sniffed("[1]"), Sniffed::Json);
        assert_eq!(
            sniffed("<?xml version=\"1.0\"?>\n<!-- c --><rss version=\"2.0\">"),
            Sniffed::Xml { root: "rss".into() }
        );
        assert_eq!(sniffed("<feed xmlns=\"http://www.w3.org/2005/Atom\">"), Sniffed::Xml { root: "feed".into() });
        assert_eq!(sniffed("<!DOCTYPE html><html><body>Login</body></html>"), Sniffed::Html);
        assert_eq!(sniffed("\n<HTML lang=en>"), Sniffed::Html);
        assert_eq!(sniffed("ProductID,ProductName\n1,x"), Sniffed::Text { first_line: "ProductID,ProductName".into() });
    }

    #[test]
    fn mismatch_messages_name_what_was_found() {
        let error = sniffed("ProductID,ProductName\n").mismatch(FeedFormat::Shopify);
        assert_eq!(
            error.to_string(),
            "the input is not a shopify feed: found text starting with \"ProductID,ProductName\""
        );
        assert!(sniffed("<html>")
            .mismatch(FeedFormat::MerchantXml)
            .to_string()
            .starts_with("the input is an HTML page"));
    }
}
