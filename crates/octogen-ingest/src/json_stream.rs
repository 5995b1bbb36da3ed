//! Streaming over a JSON document's product array without building it: the
//! outer structure (`{"products": [...]}`, `[...]`, `{"product": {...}}`) is
//! walked by a small scanner, and each element's bytes are cut out (tracking
//! strings, escapes and nesting only) and parsed on their own with
//! `serde_json::from_slice`. That is several times faster than a byte-at-a-time
//! `from_reader`, keeps memory at one element, knows each element's line, and
//! lets a malformed element be skipped as a record instead of ending the feed.

use std::io::BufRead;

use crate::reader::Tracker;
use crate::{FeedError, FeedFormat};

pub struct JsonScanner<'r, R> {
    reader: &'r mut R,
    tracker: Tracker,
    format: FeedFormat,
    /// Bytes since the last newline, for error columns.
    column: u64,
}

/// One element of the product array: its bytes and where it starts.
pub struct Element<'b> {
    pub bytes: &'b [u8],
    pub line: u64,
    pub column: u64,
}

/// Which keys of a top-level object hold products.
pub enum Found {
    /// An array of products (`"products": [...]` or a top-level array).
    Array,
    /// A single product (`"product": {...}`).
    Single,
}

fn io_error(tracker: &Tracker, error: std::io::Error) -> FeedError {
    FeedError::Io { line: tracker.line(), message: error.to_string() }
}

impl<'r, R: BufRead> JsonScanner<'r, R> {
    pub fn new(reader: &'r mut R, tracker: Tracker, format: FeedFormat) -> Self {
        JsonScanner { reader, tracker, format, column: 1 }
    }

    fn syntax(&self, message: impl Into<String>) -> FeedError {
        FeedError::Syntax {
            format: self.format,
            line: self.tracker.line(),
            column: self.column,
            message: message.into(),
        }
    }

    fn truncated(&self, message: impl Into<String>) -> FeedError {
        FeedError::Truncated { format: self.format, line: self.tracker.line(), message: message.into() }
    }

    fn consume(&mut self, amount: usize) -> Result<(), FeedError> {
        let buffer = self.reader.fill_buf().map_err(|error| io_error(&self.tracker, error))?;
        let consumed = &buffer[..amount.min(buffer.len())];
        match consumed.iter().rposition(|&byte| byte == b'\n') {
            Some(newline) => self.column = (consumed.len() - newline) as u64,
            None => self.column += consumed.len() as u64,
        }
        self.reader.consume(amount);
        Ok(())
    }

    /// The next byte that is not whitespace, without consuming it; `None` at the end.
    pub fn peek(&mut self) -> Result<Option<u8>, FeedError> {
        loop {
            let buffer = self.reader.fill_buf().map_err(|error| io_error(&self.tracker, error))?;
            if buffer.is_empty() {
                return Ok(None);
            }
            match buffer.iter().position(|byte| !byte.is_ascii_whitespace()) {
                Some(index) => {
                    let byte = buffer[index];
                    self.consume(index)?;
                    return Ok(Some(byte));
                }
                None => {
                    let length = buffer.len();
                    self.consume(length)?;
                }
            }
        }
    }

    fn expect(&mut self, wanted: u8, context: &str) -> Result<(), FeedError> {
        match self.peek()? {
            Some(byte) if byte == wanted => self.consume(1),
            Some(byte) => {
                Err(self.syntax(format!("expected '{}' {context}, found '{}'", wanted as char, byte as char)))
            }
            None => Err(self.truncated(format!("the input ended where '{}' was expected {context}", wanted as char))),
        }
    }

    /// Cuts out the next JSON value, appending its bytes to `out` (when given).
    fn scan_value(&mut self, mut out: Option<&mut Vec<u8>>) -> Result<(), FeedError> {
        let Some(first) = self.peek()? else {
            return Err(self.truncated("the input ended where a value was expected"));
        };
        let primitive = !matches!(first, b'{' | b'[' | b'"');
        let mut depth = 0u32;
        let mut in_string = false;
        let mut escaped = false;
        let mut started = false;
        loop {
            let buffer = self.reader.fill_buf().map_err(|error| io_error(&self.tracker, error))?;
            if buffer.is_empty() {
                if primitive && started {
                    return Ok(());
                }
                let inside = if in_string { "a string" } else { "a value" };
                return Err(self.truncated(format!("the input ended inside {inside}")));
            }
            let mut end = None;
            let mut index = 0;
            while index < buffer.len() {
                let byte = buffer[index];
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if byte == b'\\' {
                        escaped = true;
                    } else if byte == b'"' {
                        in_string = false;
                        if depth == 0 {
                            end = Some(index + 1);
                            break;
                        }
                    } else {
                        // Most bytes of a feed are string contents: jump to the next quote or backslash.
                        index += memchr::memchr2(b'"', b'\\', &buffer[index..]).unwrap_or(buffer.len() - index);
                        continue;
                    }
                    index += 1;
                    continue;
                }
                if primitive {
                    if byte.is_ascii_whitespace() || matches!(byte, b',' | b']' | b'}') {
                        end = Some(index);
                        break;
                    }
                    started = true;
                    index += 1;
                    continue;
                }
                match byte {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            end = Some(index + 1);
                            break;
                        }
                    }
                    _ => {}
                }
                index += 1;
            }
            let take = end.unwrap_or(buffer.len());
            if let Some(out) = out.as_deref_mut() {
                out.extend_from_slice(&buffer[..take]);
            }
            self.consume(take)?;
            if end.is_some() {
                return Ok(());
            }
        }
    }

    /// Reads a top-level object's keys until one holding products; other values are skipped.
    /// Returns `None` when the object has no such key.
    pub fn find_products(&mut self) -> Result<Option<Found>, FeedError> {
        match self.peek()? {
            Some(b'[') => return Ok(Some(Found::Array)),
            Some(b'{') => self.consume(1)?,
            Some(other) => return Err(self.syntax(format!("expected '{{' or '[', found '{}'", other as char))),
            None => return Err(self.truncated("the input ended before any value")),
        }
        let mut key_bytes = Vec::new();
        loop {
            match self.peek()? {
                Some(b'}') => {
                    self.consume(1)?;
                    return Ok(None);
                }
                Some(b'"') => {}
                Some(other) => return Err(self.syntax(format!("expected a key, found '{}'", other as char))),
                None => return Err(self.truncated("the input ended inside the top-level object")),
            }
            key_bytes.clear();
            self.scan_value(Some(&mut key_bytes))?;
            let key: String = serde_json::from_slice(&key_bytes).map_err(|error| self.syntax(error.to_string()))?;
            self.expect(b':', &format!("after key {key:?}"))?;
            match key.as_str() {
                "products" => {
                    return match self.peek()? {
                        Some(b'[') => Ok(Some(Found::Array)),
                        Some(_) => Err(self.syntax("\"products\" is not an array")),
                        None => Err(self.truncated("the input ended after \"products\"")),
                    };
                }
                "product" => return Ok(Some(Found::Single)),
                _ => self.scan_value(None)?,
            }
            match self.peek()? {
                Some(b',') => self.consume(1)?,
                Some(b'}') => {
                    self.consume(1)?;
                    return Ok(None);
                }
                Some(other) => return Err(self.syntax(format!("expected ',' or '}}', found '{}'", other as char))),
                None => return Err(self.truncated("the input ended inside the top-level object")),
            }
        }
    }

    /// Calls `each` with every element of the array that starts here; `each`
    /// returns false to stop early.
    pub fn for_each_element(&mut self, mut each: impl FnMut(Element<'_>) -> bool) -> Result<bool, FeedError> {
        self.expect(b'[', "to open the product array")?;
        let mut bytes = Vec::new();
        if self.peek()? == Some(b']') {
            self.consume(1)?;
            return Ok(true);
        }
        loop {
            if self.peek()?.is_none() {
                return Err(self.truncated("the input ended inside the product array"));
            }
            self.tracker.mark_record_start();
            let (line, column) = (self.tracker.line(), self.column);
            bytes.clear();
            self.scan_value(Some(&mut bytes))?;
            if !each(Element { bytes: &bytes, line, column }) {
                return Ok(false);
            }
            match self.peek()? {
                Some(b',') => self.consume(1)?,
                Some(b']') => {
                    self.consume(1)?;
                    return Ok(true);
                }
                Some(other) => {
                    return Err(self.syntax(format!("expected ',' or ']' after a product, found '{}'", other as char)))
                }
                None => return Err(self.truncated("the input ended inside the product array")),
            }
        }
    }

    /// One value as a single product.
    pub fn single_element(&mut self, each: impl FnOnce(Element<'_>) -> bool) -> Result<bool, FeedError> {
        self.peek()?;
        self.tracker.mark_record_start();
        let (line, column) = (self.tracker.line(), self.column);
        let mut bytes = Vec::new();
        self.scan_value(Some(&mut bytes))?;
        Ok(each(Element { bytes: &bytes, line, column }))
    }

    /// After the products: the rest of the document must be well formed (keys skipped).
    pub fn finish(&mut self, inside_object: bool) -> Result<(), FeedError> {
        if inside_object {
            loop {
                match self.peek()? {
                    Some(b',') => {
                        self.consume(1)?;
                        self.scan_value(None)?;
                        self.expect(b':', "after a key")?;
                        self.scan_value(None)?;
                    }
                    Some(b'}') => {
                        self.consume(1)?;
                        break;
                    }
                    Some(other) => return Err(self.syntax(format!("expected ',' or '}}', found '{}'", other as char))),
                    None => return Err(self.truncated("the input ended inside the top-level object")),
                }
            }
        }
        match self.peek()? {
            None => Ok(()),
            Some(other) => Err(self.syntax(format!("unexpected '{}' after the end of the document", other as char))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::{Encoding, TrackedReader};

    fn elements(input: &str) -> Result<Vec<(String, u64, u64)>, FeedError> {
        let mut reader = TrackedReader::new(input.as_bytes(), Encoding::Utf8, 1 << 20);
        let tracker = reader.tracker();
        let mut scanner = JsonScanner::new(&mut reader, tracker, FeedFormat::Shopify);
        let mut found = Vec::new();
        let inside_object = match scanner.find_products()? {
            Some(Found::Array) => {
                let inside = input.trim_start().starts_with('{');
                scanner.for_each_element(|element| {
                    found.push((String::from_utf8_lossy(element.bytes).into_owned(), element.line, element.column));
                    true
                })?;
                inside
            }
            Some(Found::Single) => {
                scanner.single_element(|element| {
                    found.push((String::from_utf8_lossy(element.bytes).into_owned(), element.line, element.column));
                    true
                })?;
                true
            }
            None => return Ok(found),
        };
        scanner.finish(inside_object)?;
        Ok(found)
    }

    #[test]
    fn cuts_elements_with_strings_escapes_and_nesting() {
        let input = "{\"meta\": {\"a\": [1, \"]\"]}, \"products\": [\n  {\"t\": \"a \\\" } ] \"},\n  [1, {\"x\": []}], 5, \"s\"\n], \"z\": null}";
        let found = elements(input).unwrap();
        let texts: Vec<&str> = found.iter().map(|(text, _, _)| text.as_str()).collect();
        assert_eq!(texts, ["{\"t\": \"a \\\" } ] \"}", "[1, {\"x\": []}]", "5", "\"s\""]);
        assert_eq!((found[0].1, found[0].2), (2, 3));
        assert_eq!(found[1].1, 3);
    }

    #[test]
    fn shapes_and_errors() {
        assert_eq!(elements("[]").unwrap().len(), 0);
        assert_eq!(elements("{\"product\": {\"a\": 1}}").unwrap().len(), 1);
        assert_eq!(elements("{\"other\": 1}").unwrap().len(), 0);
        assert!(matches!(elements("[{\"a\": 1}, {\"b\": "), Err(FeedError::Truncated { line: 1, .. })));
        assert!(matches!(elements("[{\"a\": \"unterminated"), Err(FeedError::Truncated { .. })));
        assert!(matches!(elements("[1 2]"), Err(FeedError::Syntax { .. })));
        assert!(matches!(elements("{\"products\": 5}"), Err(FeedError::Syntax { .. })));
        assert!(matches!(elements("[1] x"), Err(FeedError::Syntax { .. })));
        assert!(matches!(elements("{\"products\": [1]"), Err(FeedError::Truncated { .. })));
    }
}
