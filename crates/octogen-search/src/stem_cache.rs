//! tantivy's English stemmer with a memo of the words it has stemmed.
//!
//! Stemming (Snowball) was a fifth of the indexing threads' CPU during a
//! large import (BENCHMARKS.md §5), and product text repeats a small
//! vocabulary: most words of a catalog are looked up, not stemmed. A stem is
//! a pure function of its word, so the tokens are exactly tantivy's.

use std::collections::HashMap;

use tantivy::tokenizer::TextAnalyzer;
use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

/// Words remembered per analyzer instance (tantivy clones one per field and
/// indexing thread); past this, new words are stemmed without being kept.
const MAX_REMEMBERED: usize = 50_000;

/// Stems each token like `Stemmer::new(Language::English)`, remembering stems.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CachedStemmer;

impl TokenFilter for CachedStemmer {
    type Tokenizer<T: Tokenizer> = CachedStemmerFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> CachedStemmerFilter<T> {
        CachedStemmerFilter { inner: tokenizer, stems: HashMap::new(), stemmer: crate::schema::word_stemmer() }
    }
}

#[derive(Clone)]
pub(crate) struct CachedStemmerFilter<T> {
    inner: T,
    stems: HashMap<String, String>,
    /// tantivy's stemmer over a single word, for the words not remembered yet.
    stemmer: TextAnalyzer,
}

impl<T: Tokenizer> Tokenizer for CachedStemmerFilter<T> {
    type TokenStream<'a> = CachedStemmerStream<'a, T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        CachedStemmerStream { tail: self.inner.token_stream(text), stems: &mut self.stems, stemmer: &mut self.stemmer }
    }
}

pub(crate) struct CachedStemmerStream<'a, T> {
    tail: T,
    stems: &'a mut HashMap<String, String>,
    stemmer: &'a mut TextAnalyzer,
}

impl<T: TokenStream> TokenStream for CachedStemmerStream<'_, T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let token = self.tail.token_mut();
        if let Some(stem) = self.stems.get(&token.text) {
            token.text.clear();
            token.text.push_str(stem);
            return true;
        }
        let stem = stem_word(self.stemmer, &token.text);
        if self.stems.len() < MAX_REMEMBERED {
            self.stems.insert(std::mem::take(&mut token.text), stem.clone());
        }
        token.text = stem;
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

fn stem_word(stemmer: &mut TextAnalyzer, word: &str) -> String {
    let mut stream = stemmer.token_stream(word);
    match stream.advance() {
        true => stream.token().text.clone(),
        false => word.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use tantivy::tokenizer::{Language, LowerCaser, SimpleTokenizer, Stemmer};

    use super::*;

    fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
        let mut stream = analyzer.token_stream(text);
        let mut words = Vec::new();
        while let Some(token) = stream.next() {
            words.push(token.text.clone());
        }
        words
    }

    #[test]
    fn remembered_stems_are_tantivys_stems() {
        let text = "Weighted blankets, running shoes and knitted cardigans: the knitting runner's relaxing \
                    blanket. Généralement, the generously generalized generation runs; running runs ran.";
        let mut plain = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(LowerCaser)
            .filter(Stemmer::new(Language::English))
            .build();
        let mut cached =
            TextAnalyzer::builder(SimpleTokenizer::default()).filter(LowerCaser).filter(CachedStemmer).build();
        let expected = tokens(&mut plain, text);
        assert!(expected.contains(&"blanket".to_string()) && expected.contains(&"run".to_string()));
        // Twice: stemmed on first sight, remembered on the second.
        assert_eq!(tokens(&mut cached, text), expected);
        assert_eq!(tokens(&mut cached, text), expected);
        // A clone (what tantivy hands each field and thread) stems the same.
        assert_eq!(tokens(&mut cached.clone(), text), expected);
    }
}
