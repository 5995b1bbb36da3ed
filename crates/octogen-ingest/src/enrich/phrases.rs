//! Longest-match phrase lookup over word tokens.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FxHash (rustc's hasher): the tables are fixed vocabularies, so hash
/// flooding is no concern, and lookups run for every word of every product.
#[derive(Default)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A word of a text as enrichment compares it: borrowed from the text when
/// it is already lowercase ASCII (most words of a description), so
/// tokenizing allocates only for the others.
pub type Token<'a> = Cow<'a, str>;

/// Lowercase word tokens: letters and digits, with apostrophes kept inside
/// words ("men's"); everything else (spaces, hyphens, slashes, punctuation) separates.
pub fn tokenize(text: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::with_capacity(text.len() / 5);
    for word in text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’')) {
        let word = word.trim_matches(['\'', '’']);
        if word.is_empty() {
            continue;
        }
        if word.bytes().all(|byte| byte.is_ascii() && !byte.is_ascii_uppercase()) {
            tokens.push(Cow::Borrowed(word));
            continue;
        }
        let mut token = if word.is_ascii() { word.to_ascii_lowercase() } else { word.to_lowercase() };
        if token.contains('’') {
            token = token.replace('’', "'");
        }
        tokens.push(Cow::Owned(token));
    }
    tokens
}

/// A dictionary of phrases (as written in the vocabulary) with a value each.
pub struct PhraseTable<V: 'static> {
    /// Every phrase's words joined by spaces, and every leading part of a
    /// longer phrase ("navy" of "navy blue"), so a lookup stops at the first
    /// word run no phrase starts with: most words of a description start none.
    by_words: FxMap<String, Key>,
    entries: &'static [(&'static str, V)],
    max_words: usize,
}

#[derive(Debug, Clone, Copy, Default)]
struct Key {
    /// The entry this is the whole phrase of.
    entry: Option<usize>,
    /// Whether a longer phrase starts with these words.
    extends: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhraseMatch<'t, V> {
    /// Index of the first matched token.
    pub start: usize,
    /// Number of matched tokens.
    pub len: usize,
    pub phrase: &'static str,
    pub value: &'t V,
}

impl<V> PhraseTable<V> {
    pub fn new(entries: &'static [(&'static str, V)]) -> Self {
        Self::with_token_map(entries, str::to_string)
    }

    /// Keys phrases by `map(token)` for each token; callers map the tokens they
    /// look up the same way (e.g. singular forms, so "curtains" finds "curtain").
    pub fn with_token_map(entries: &'static [(&'static str, V)], map: impl Fn(&str) -> String) -> Self {
        let mut by_words = FxMap::with_capacity_and_hasher(entries.len(), Default::default());
        let mut max_words = 1;
        for (index, (phrase, _)) in entries.iter().enumerate() {
            let tokens: Vec<String> = tokenize(phrase).iter().map(|token| map(token)).collect();
            max_words = max_words.max(tokens.len());
            for leading in 1..tokens.len() {
                by_words.entry(tokens[..leading].join(" ")).or_insert_with(Key::default).extends = true;
            }
            // The first spelling of a phrase wins, so entries can be listed most-specific first.
            by_words.entry(tokens.join(" ")).or_insert_with(Key::default).entry.get_or_insert(index);
        }
        PhraseTable { by_words, entries, max_words }
    }

    /// Non-overlapping matches, left to right, the longest phrase at each position.
    pub fn find_all(&self, tokens: &[Token<'_>]) -> Vec<PhraseMatch<'_, V>> {
        let mut matches = Vec::new();
        let mut key = String::with_capacity(64);
        let mut start = 0;
        while start < tokens.len() {
            match self.longest_with(tokens, start, &mut key) {
                Some(found) => {
                    start += found.len;
                    matches.push(found);
                }
                None => start += 1,
            }
        }
        matches
    }

    /// Grows the key one token at a time in a reused buffer: no allocation per lookup.
    fn longest_with(&self, tokens: &[Token<'_>], start: usize, key: &mut String) -> Option<PhraseMatch<'_, V>> {
        let longest = self.max_words.min(tokens.len() - start);
        key.clear();
        let mut found = None;
        for len in 1..=longest {
            if len > 1 {
                key.push(' ');
            }
            key.push_str(&tokens[start + len - 1]);
            let Some(known) = self.by_words.get(key.as_str()) else { break };
            if let Some(index) = known.entry {
                let (phrase, value) = &self.entries[index];
                found = Some(PhraseMatch { start, len, phrase, value });
            }
            if !known.extends {
                break;
            }
        }
        found
    }

    /// The value of a whole text when it is exactly one phrase.
    pub fn exact(&self, text: &str) -> Option<&V> {
        let index = self.by_words.get(&tokenize(text).join(" "))?.entry?;
        Some(&self.entries[index].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static ENTRIES: [(&str, u8); 4] = [("blue", 1), ("navy blue", 2), ("t-shirt", 3), ("shirt", 4)];

    #[test]
    fn tokens_split_on_punctuation_but_keep_possessives() {
        assert_eq!(tokenize("Men's Navy-Blue T-Shirt/Top"), ["men's", "navy", "blue", "t", "shirt", "top"]);
        assert_eq!(tokenize("Women’s  104×152cm"), ["women's", "104", "152cm"]);
    }

    #[test]
    fn longest_match_wins() {
        let table = PhraseTable::new(&ENTRIES);
        let tokens = tokenize("Navy Blue T-Shirt and blue shirt");
        let found: Vec<_> = table.find_all(&tokens).into_iter().map(|m| (m.phrase, m.start)).collect();
        assert_eq!(found, [("navy blue", 0), ("t-shirt", 2), ("blue", 5), ("shirt", 6)]);
        assert_eq!(table.exact("T Shirt"), Some(&3));
        assert_eq!(table.exact("navy"), None);
    }

    #[test]
    fn a_phrase_is_found_through_words_that_start_only_longer_ones() {
        static LONG: [(&str, u8); 3] = [("off white", 1), ("a b c d", 2), ("b", 3)];
        let table = PhraseTable::new(&LONG);
        let found = |text: &str| -> Vec<(&str, usize)> {
            table.find_all(&tokenize(text)).into_iter().map(|m| (m.phrase, m.start)).collect()
        };
        assert_eq!(found("off white a b c d"), [("off white", 0), ("a b c d", 2)]);
        // "a b c" starts a phrase but is none: the scan moves on and finds "b".
        assert_eq!(found("off a b c x"), [("b", 2)]);
        assert_eq!(table.exact("off"), None);
    }
}
