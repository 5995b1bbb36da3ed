//! The byte stream every parser reads through. It
//! - guarantees the parsers see valid UTF-8 (strictly checked, or transcoded
//!   from Latin-1 / Windows-1252 when a mapping says the file is in one),
//! - counts bytes and lines so errors can name a position,
//! - bounds the bytes one record may span, so a single giant record cannot
//!   exhaust memory (parsers mark where each record starts).
//!
//! Faults are reported to the parser as an `io::Error` and also kept in the
//! shared [`Tracker`], where `parse_feed` picks them up to build a precise
//! `FeedError` whatever the parser made of the I/O error.

use std::cell::{Cell, RefCell};
use std::io::{self, BufRead, Read};
use std::rc::Rc;

/// How the input bytes are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
pub enum Encoding {
    #[default]
    #[serde(rename = "utf-8", alias = "utf8", alias = "UTF-8")]
    Utf8,
    /// ISO-8859-1: every byte is the code point of the same value.
    #[serde(rename = "latin-1", alias = "latin1", alias = "iso-8859-1", alias = "ISO-8859-1")]
    Latin1,
    /// Latin-1 with printable characters in 0x80–0x9F (curly quotes, dashes, €).
    #[serde(rename = "windows-1252", alias = "cp1252", alias = "windows1252")]
    Windows1252,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadFault {
    NotUtf8 { offset: u64, line: u64 },
    RecordTooLarge { line: u64, limit: u64 },
}

#[derive(Debug, Default)]
struct TrackerState {
    /// Bytes handed to the parser (after transcoding).
    consumed: Cell<u64>,
    /// Newlines in the consumed bytes.
    newlines: Cell<u64>,
    record_start: Cell<u64>,
    record_start_line: Cell<u64>,
    fault: RefCell<Option<ReadFault>>,
}

/// A cheap handle on the reader's position, shared with the parser's callbacks.
#[derive(Debug, Clone, Default)]
pub struct Tracker(Rc<TrackerState>);

impl Tracker {
    /// 1-based line of the next byte the parser will read.
    pub fn line(&self) -> u64 {
        self.0.newlines.get() + 1
    }

    /// Starts the byte budget of a new record at the current position.
    pub fn mark_record_start(&self) {
        self.0.record_start.set(self.0.consumed.get());
        self.0.record_start_line.set(self.line());
    }

    pub fn take_fault(&self) -> Option<ReadFault> {
        self.0.fault.borrow_mut().take()
    }

    fn raise(&self, fault: ReadFault) -> io::Error {
        let message = format!("{fault:?}");
        *self.0.fault.borrow_mut() = Some(fault);
        io::Error::new(io::ErrorKind::InvalidData, message)
    }
}

const CHUNK: usize = 64 * 1024;

pub struct TrackedReader<R> {
    inner: R,
    encoding: Encoding,
    record_limit: u64,
    tracker: Tracker,
    /// Decoded bytes; `buf[pos..]` are not yet consumed.
    buf: Vec<u8>,
    pos: usize,
    /// Raw bytes read from `inner` but not yet decoded (an incomplete UTF-8 sequence).
    raw: Vec<u8>,
    /// Offset in the input of `raw[0]`.
    raw_offset: u64,
    eof: bool,
    /// Input offset of an invalid byte, reported once the valid bytes before it are consumed.
    invalid_at: Option<u64>,
}

impl<R: Read> TrackedReader<R> {
    pub fn new(inner: R, encoding: Encoding, record_limit: u64) -> Self {
        TrackedReader {
            inner,
            encoding,
            record_limit,
            tracker: Tracker::default(),
            buf: Vec::with_capacity(CHUNK),
            pos: 0,
            raw: Vec::with_capacity(CHUNK + 4),
            raw_offset: 0,
            eof: false,
            invalid_at: None,
        }
    }

    pub fn tracker(&self) -> Tracker {
        self.tracker.clone()
    }

    /// Reads and decodes the next chunk into `buf`. Only called when `buf` is drained.
    fn refill(&mut self) -> io::Result<()> {
        self.buf.clear();
        self.pos = 0;
        if let Some(offset) = self.invalid_at {
            let line = self.tracker.line();
            return Err(self.tracker.raise(ReadFault::NotUtf8 { offset, line }));
        }
        while self.buf.is_empty() && !self.eof && self.invalid_at.is_none() {
            let carried = self.raw.len();
            self.raw.resize(carried + CHUNK, 0);
            let read = loop {
                match self.inner.read(&mut self.raw[carried..]) {
                    Ok(read) => break read,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    Err(error) => {
                        self.raw.truncate(carried);
                        return Err(error);
                    }
                }
            };
            self.raw.truncate(carried + read);
            self.eof = read == 0;
            self.decode_raw();
        }
        if self.buf.is_empty() {
            if let Some(offset) = self.invalid_at {
                let line = self.tracker.line();
                return Err(self.tracker.raise(ReadFault::NotUtf8 { offset, line }));
            }
        }
        Ok(())
    }

    fn decode_raw(&mut self) {
        match self.encoding {
            Encoding::Utf8 => self.decode_utf8(),
            Encoding::Latin1 | Encoding::Windows1252 => {
                let encoding = self.encoding;
                let mut text = String::with_capacity(self.raw.len() * 2);
                text.extend(self.raw.iter().map(|&byte| single_byte_char(encoding, byte)));
                self.raw_offset += self.raw.len() as u64;
                self.raw.clear();
                self.buf.extend_from_slice(text.as_bytes());
            }
        }
    }

    fn decode_utf8(&mut self) {
        let valid_len = match std::str::from_utf8(&self.raw) {
            Ok(_) => self.raw.len(),
            // An incomplete sequence at the end of the chunk: wait for the rest.
            Err(error) if error.error_len().is_none() && !self.eof => error.valid_up_to(),
            Err(error) => {
                self.invalid_at = Some(self.raw_offset + error.valid_up_to() as u64);
                error.valid_up_to()
            }
        };
        self.buf.extend_from_slice(&self.raw[..valid_len]);
        self.raw.drain(..valid_len);
        self.raw_offset += valid_len as u64;
    }

    fn check_record_budget(&self) -> io::Result<()> {
        let state = &self.tracker.0;
        if state.consumed.get().saturating_sub(state.record_start.get()) > self.record_limit {
            let line = state.record_start_line.get();
            return Err(self.tracker.raise(ReadFault::RecordTooLarge { line, limit: self.record_limit }));
        }
        Ok(())
    }
}

fn single_byte_char(encoding: Encoding, byte: u8) -> char {
    if encoding == Encoding::Windows1252 && (0x80..0xa0).contains(&byte) {
        return WINDOWS_1252_HIGH[usize::from(byte - 0x80)];
    }
    char::from(byte)
}

/// Windows-1252 code points for bytes 0x80–0x9F (undefined ones map to U+FFFD).
const WINDOWS_1252_HIGH: [char; 32] = [
    '€', '\u{fffd}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{fffd}', 'Ž', '\u{fffd}', '\u{fffd}',
    '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{fffd}', 'ž', 'Ÿ',
];

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&byte| byte == b'\n').count() as u64
}

impl<R: Read> Read for TrackedReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let count = available.len().min(out.len());
        out[..count].copy_from_slice(&available[..count]);
        self.consume(count);
        Ok(count)
    }
}

impl<R: Read> BufRead for TrackedReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.check_record_budget()?;
        if self.pos >= self.buf.len() {
            self.refill()?;
        }
        Ok(&self.buf[self.pos..])
    }

    fn consume(&mut self, amount: usize) {
        let end = (self.pos + amount).min(self.buf.len());
        let state = &self.tracker.0;
        state.newlines.set(state.newlines.get() + count_newlines(&self.buf[self.pos..end]));
        state.consumed.set(state.consumed.get() + (end - self.pos) as u64);
        self.pos = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(reader: &mut impl Read) -> io::Result<String> {
        let mut out = String::new();
        reader.read_to_string(&mut out)?;
        Ok(out)
    }

    #[test]
    fn utf8_passes_through_and_lines_are_counted() {
        let mut reader = TrackedReader::new("a\nbé\nc".as_bytes(), Encoding::Utf8, 1 << 20);
        let tracker = reader.tracker();
        assert_eq!(read_all(&mut reader).unwrap(), "a\nbé\nc");
        assert_eq!(tracker.line(), 3);
        assert_eq!(tracker.0.consumed.get(), 7);
    }

    #[test]
    fn multibyte_sequence_split_across_reads_is_fine() {
        // A reader that returns one byte at a time splits every sequence.
        struct OneByte<'a>(&'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let Some((first, rest)) = self.0.split_first() else { return Ok(0) };
                out[0] = *first;
                self.0 = rest;
                Ok(1)
            }
        }
        let text = "×€😀 ok";
        let mut reader = TrackedReader::new(OneByte(text.as_bytes()), Encoding::Utf8, 1 << 20);
        assert_eq!(read_all(&mut reader).unwrap(), text);
    }

    #[test]
    fn invalid_utf8_is_reported_with_offset_and_line() {
        let mut reader = TrackedReader::new(&b"ok\nline two \xa0 bad"[..], Encoding::Utf8, 1 << 20);
        let tracker = reader.tracker();
        let mut out = Vec::new();
        assert!(reader.read_to_end(&mut out).is_err());
        assert_eq!(out, b"ok\nline two ");
        assert_eq!(tracker.take_fault(), Some(ReadFault::NotUtf8 { offset: 12, line: 2 }));
    }

    #[test]
    fn truncated_sequence_at_eof_is_invalid() {
        let mut reader = TrackedReader::new(&b"ab\xe2\x82"[..], Encoding::Utf8, 1 << 20);
        let tracker = reader.tracker();
        assert!(read_all(&mut reader).is_err());
        assert_eq!(tracker.take_fault(), Some(ReadFault::NotUtf8 { offset: 2, line: 1 }));
    }

    #[test]
    fn single_byte_encodings_transcode() {
        let mut latin1 = TrackedReader::new(&b"and\xa0dupatta \xe9"[..], Encoding::Latin1, 1 << 20);
        assert_eq!(read_all(&mut latin1).unwrap(), "and\u{a0}dupatta é");
        let mut windows = TrackedReader::new(&b"\x93quoted\x94 \x80"[..], Encoding::Windows1252, 1 << 20);
        assert_eq!(read_all(&mut windows).unwrap(), "“quoted” €");
    }

    #[test]
    fn a_record_over_budget_is_stopped() {
        let input = vec![b'x'; 200 * 1024];
        let mut reader = TrackedReader::new(&input[..], Encoding::Utf8, 100 * 1024);
        let tracker = reader.tracker();
        tracker.mark_record_start();
        assert!(read_all(&mut reader).is_err());
        assert_eq!(tracker.take_fault(), Some(ReadFault::RecordTooLarge { line: 1, limit: 100 * 1024 }));
    }
}
