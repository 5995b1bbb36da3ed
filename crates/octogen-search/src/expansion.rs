//! Prefix and fuzzy (edit distance 1) matching of one word, *excluding the
//! word itself*, with a constant score.
//!
//! tantivy's `FuzzyTermQuery` would do, but it includes the exact word and
//! always materializes a bitset of the whole segment. In our scoring the exact
//! word is always matched by its own, higher-scoring alternative (and the
//! `DisjunctionMaxQuery` keeps the maximum), so leaving it out changes no score
//! and saves re-reading the longest posting list. The remaining expansions are
//! usually rare words, collected into a small sorted vector.

use std::fmt;
use std::sync::OnceLock;

use levenshtein_automata::{Distance, LevenshteinAutomatonBuilder, DFA, SINK_STATE};
use tantivy::query::{BitSetDocSet, ConstScorer, EmptyScorer, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{BitSet, DocId, DocSet, Score, SegmentReader, TantivyError, TERMINATED};
use tantivy_fst::Automaton;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expansion {
    /// Words that start with the word (and are longer).
    Prefix,
    /// Words at Damerau-Levenshtein distance 1 (a transposition counts as one edit).
    Fuzzy,
}

#[derive(Clone)]
pub(crate) struct ExpansionQuery {
    field: Field,
    word: String,
    expansion: Expansion,
    score: Score,
}

impl ExpansionQuery {
    pub(crate) fn new(field: Field, word: &str, expansion: Expansion, score: Score) -> ExpansionQuery {
        ExpansionQuery { field, word: word.to_string(), expansion, score }
    }
}

impl fmt::Debug for ExpansionQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}({:?}:{}, score={})", self.expansion, self.field, self.word, self.score)
    }
}

fn automaton_builder(expansion: Expansion) -> &'static LevenshteinAutomatonBuilder {
    static PREFIX: OnceLock<LevenshteinAutomatonBuilder> = OnceLock::new();
    static FUZZY: OnceLock<LevenshteinAutomatonBuilder> = OnceLock::new();
    match expansion {
        Expansion::Prefix => PREFIX.get_or_init(|| LevenshteinAutomatonBuilder::new(0, false)),
        Expansion::Fuzzy => FUZZY.get_or_init(|| LevenshteinAutomatonBuilder::new(1, true)),
    }
}

impl Query for ExpansionQuery {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let builder = automaton_builder(self.expansion);
        let dfa = match self.expansion {
            Expansion::Prefix => builder.build_prefix_dfa(&self.word),
            Expansion::Fuzzy => builder.build_dfa(&self.word),
        };
        Ok(Box::new(ExpansionWeight { field: self.field, word: self.word.clone(), dfa: Dfa(dfa), score: self.score }))
    }
}

struct Dfa(DFA);

impl Automaton for &Dfa {
    type State = u32;

    fn start(&self) -> u32 {
        self.0.initial_state()
    }

    fn is_match(&self, state: &u32) -> bool {
        matches!(self.0.distance(*state), Distance::Exact(_))
    }

    fn can_match(&self, state: &u32) -> bool {
        *state != SINK_STATE
    }

    fn accept(&self, state: &u32, byte: u8) -> u32 {
        self.0.transition(*state, byte)
    }
}

struct ExpansionWeight {
    field: Field,
    word: String,
    dfa: Dfa,
    score: Score,
}

/// Above this share of the segment, a bitset beats a sorted vector of doc ids.
const BITSET_DENSITY: u32 = 64;

impl ExpansionWeight {
    fn matching_docs(&self, reader: &SegmentReader) -> tantivy::Result<Option<Box<dyn DocSet>>> {
        let inverted_index = reader.inverted_index(self.field)?;
        let mut stream = inverted_index.terms().search(&self.dfa).into_stream()?;
        let mut term_infos = Vec::new();
        while stream.advance() {
            if stream.key() != self.word.as_bytes() {
                term_infos.push(stream.value().clone());
            }
        }
        let total: u32 = term_infos.iter().map(|info| info.doc_freq).sum();
        if total == 0 {
            return Ok(None);
        }
        let dense = total > reader.max_doc() / BITSET_DENSITY;
        let mut bitset = dense.then(|| BitSet::with_max_value(reader.max_doc()));
        let mut docs = Vec::new();
        for info in &term_infos {
            let mut postings = inverted_index.read_postings_from_terminfo(info, IndexRecordOption::Basic)?;
            let mut doc = postings.doc();
            while doc != TERMINATED {
                match bitset.as_mut() {
                    Some(bitset) => {
                        bitset.insert(doc);
                    }
                    None => docs.push(doc),
                }
                doc = postings.advance();
            }
        }
        Ok(Some(match bitset {
            Some(bitset) => Box::new(BitSetDocSet::from(bitset)),
            None => {
                docs.sort_unstable();
                docs.dedup();
                Box::new(SortedDocs::new(docs))
            }
        }))
    }
}

impl Weight for ExpansionWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(match self.matching_docs(reader)? {
            Some(docs) => Box::new(ConstScorer::new(DocSetBox(docs), boost * self.score)),
            None => Box::new(EmptyScorer),
        })
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(TantivyError::InvalidArgument(format!("document {doc} does not match")));
        }
        Ok(Explanation::new("prefix or fuzzy expansion", scorer.score()))
    }
}

/// `ConstScorer` needs a sized `DocSet`.
struct DocSetBox(Box<dyn DocSet>);

impl DocSet for DocSetBox {
    fn advance(&mut self) -> DocId {
        self.0.advance()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.0.seek(target)
    }

    fn doc(&self) -> DocId {
        self.0.doc()
    }

    fn size_hint(&self) -> u32 {
        self.0.size_hint()
    }

    fn cost(&self) -> u64 {
        self.0.cost()
    }
}

/// A sorted, duplicate-free list of doc ids with a binary-search `seek`.
pub(crate) struct SortedDocs {
    docs: Vec<DocId>,
    cursor: usize,
}

impl SortedDocs {
    /// `docs` must be sorted and free of duplicates.
    pub(crate) fn new(docs: Vec<DocId>) -> SortedDocs {
        SortedDocs { docs, cursor: 0 }
    }
}

impl DocSet for SortedDocs {
    fn advance(&mut self) -> DocId {
        self.cursor = (self.cursor + 1).min(self.docs.len());
        self.doc()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc() < target {
            let rest = &self.docs[self.cursor..];
            self.cursor += rest.partition_point(|&doc| doc < target);
        }
        self.doc()
    }

    fn doc(&self) -> DocId {
        self.docs.get(self.cursor).copied().unwrap_or(TERMINATED)
    }

    fn size_hint(&self) -> u32 {
        (self.docs.len() - self.cursor) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_docs_advance_and_seek() {
        let mut docs = SortedDocs { docs: vec![2, 5, 9, 40], cursor: 0 };
        assert_eq!(docs.doc(), 2);
        assert_eq!(docs.advance(), 5);
        assert_eq!(docs.seek(5), 5);
        assert_eq!(docs.seek(6), 9);
        assert_eq!(docs.seek(41), TERMINATED);
        assert_eq!(docs.advance(), TERMINATED);
        let empty = SortedDocs { docs: vec![], cursor: 0 };
        assert_eq!(empty.doc(), TERMINATED);
    }
}
