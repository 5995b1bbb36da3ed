//! Filters that never touch the score, and a catalog filter that costs
//! nothing when a segment holds only allowed catalogs.
//!
//! A tantivy `BooleanQuery` adds the scores of all its required clauses, so a
//! filter inside it would shift ranks, and wrapping filters in a zero
//! `ConstScoreQuery` hides them from tantivy's "matches everything" shortcut.
//! `FilteredQuery` instead evaluates the filters with scoring disabled and
//! intersects them with the scored query, whose score alone is kept.

use std::fmt;

use tantivy::query::{
    intersect_scorers, AllScorer, BooleanQuery, EmptyScorer, EnableScoring, Explanation, Occur, Query, Scorer,
    TermQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, DocSet, Score, SegmentReader, TantivyError, Term};

use crate::words::{for_each_above, WordsQuery, WordsWeight};

/// What decides the score of a filtered query's documents.
pub(crate) enum Scored {
    /// Browse: every document of the filter, unscored.
    Nothing,
    /// Query words, with MaxScore pruning.
    Words(WordsQuery),
    Other(Box<dyn Query>),
}

impl Clone for Scored {
    fn clone(&self) -> Self {
        match self {
            Scored::Nothing => Scored::Nothing,
            Scored::Words(words) => Scored::Words(words.clone()),
            Scored::Other(query) => Scored::Other(query.box_clone()),
        }
    }
}

impl fmt::Debug for Scored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scored::Nothing => write!(f, "nothing"),
            Scored::Words(words) => write!(f, "{words:?}"),
            Scored::Other(query) => write!(f, "{query:?}"),
        }
    }
}

/// The documents of `filter`, restricted to and scored by `scored`.
pub(crate) struct FilteredQuery {
    scored: Scored,
    filter: Box<dyn Query>,
}

impl Clone for FilteredQuery {
    fn clone(&self) -> Self {
        FilteredQuery { scored: self.scored.clone(), filter: self.filter.box_clone() }
    }
}

impl FilteredQuery {
    pub(crate) fn new(scored: Scored, filter: Box<dyn Query>) -> FilteredQuery {
        FilteredQuery { scored, filter }
    }
}

impl fmt::Debug for FilteredQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Filtered(scored={:?}, filter={:?})", self.scored, self.filter)
    }
}

impl Query for FilteredQuery {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let scored = match &self.scored {
            Scored::Nothing => ScoredWeight::Nothing,
            Scored::Words(words) => ScoredWeight::Words(words.words_weight(scoring)?),
            Scored::Other(query) => ScoredWeight::Other(query.weight(scoring)?),
        };
        let filter = self.filter.weight(without_scoring(scoring))?;
        Ok(Box::new(FilteredWeight { scored, filter }))
    }
}

enum ScoredWeight {
    Nothing,
    Words(WordsWeight),
    Other(Box<dyn Weight>),
}

struct FilteredWeight {
    scored: ScoredWeight,
    filter: Box<dyn Weight>,
}

impl Weight for FilteredWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let filter = self.filter.scorer(reader, 1.0)?;
        if filter.is::<EmptyScorer>() {
            return Ok(Box::new(EmptyScorer));
        }
        let scored = match &self.scored {
            ScoredWeight::Nothing => return Ok(filter),
            ScoredWeight::Words(weight) => weight.scorer(reader, boost)?,
            ScoredWeight::Other(weight) => weight.scorer(reader, boost)?,
        };
        if filter.is::<AllScorer>() {
            return Ok(scored);
        }
        Ok(intersect_scorers(vec![scored, Box::new(ZeroScore(filter))], reader.num_docs()))
    }

    fn for_each_pruning(
        &self,
        threshold: Score,
        reader: &SegmentReader,
        callback: &mut dyn FnMut(DocId, Score) -> Score,
    ) -> tantivy::Result<()> {
        let ScoredWeight::Words(words) = &self.scored else {
            let mut scorer = self.scorer(reader, 1.0)?;
            for_each_above(scorer.as_mut(), threshold, callback);
            return Ok(());
        };
        let filter = self.filter.scorer(reader, 1.0)?;
        if filter.is::<EmptyScorer>() {
            return Ok(());
        }
        let filter = if filter.is::<AllScorer>() { None } else { Some(filter) };
        words.for_each_pruning_within(filter, threshold, reader, callback)
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(TantivyError::InvalidArgument(format!("document {doc} does not match")));
        }
        Ok(Explanation::new("filtered", scorer.score()))
    }
}

fn without_scoring(scoring: EnableScoring<'_>) -> EnableScoring<'_> {
    match scoring {
        EnableScoring::Enabled { searcher, .. } => EnableScoring::disabled_from_searcher(searcher),
        disabled @ EnableScoring::Disabled { .. } => disabled,
    }
}

/// A filter's documents with score 0, so an intersection's sum is the scored side's score.
pub(crate) struct ZeroScore(pub(crate) Box<dyn Scorer>);

impl DocSet for ZeroScore {
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

impl Scorer for ZeroScore {
    fn score(&mut self) -> Score {
        0.0
    }
}

/// Documents whose catalog is one of `catalogs`. A segment holding only
/// allowed catalogs (the usual case for a partner granted everything, or a
/// one-catalog deployment) is answered with "all documents" without reading
/// any posting list; otherwise it is the union of the allowed catalogs' postings.
#[derive(Clone, Debug)]
pub(crate) struct CatalogFilter {
    field: Field,
    /// Sorted, distinct.
    catalogs: Vec<String>,
}

impl CatalogFilter {
    pub(crate) fn new(field: Field, catalogs: &[String]) -> CatalogFilter {
        let mut catalogs = catalogs.to_vec();
        catalogs.sort();
        catalogs.dedup();
        CatalogFilter { field, catalogs }
    }
}

impl Query for CatalogFilter {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let terms: Vec<Term> = self.catalogs.iter().map(|catalog| Term::from_field_text(self.field, catalog)).collect();
        let union = any_term(terms).weight(without_scoring(scoring))?;
        Ok(Box::new(CatalogFilterWeight { field: self.field, catalogs: self.catalogs.clone(), union }))
    }
}

struct CatalogFilterWeight {
    field: Field,
    catalogs: Vec<String>,
    union: Box<dyn Weight>,
}

impl CatalogFilterWeight {
    fn segment_has_only_allowed_catalogs(&self, reader: &SegmentReader) -> tantivy::Result<bool> {
        let inverted_index = reader.inverted_index(self.field)?;
        let mut stream = inverted_index.terms().stream()?;
        while stream.advance() {
            let allowed = std::str::from_utf8(stream.key())
                .is_ok_and(|catalog| self.catalogs.binary_search_by(|probe| probe.as_str().cmp(catalog)).is_ok());
            if !allowed {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl Weight for CatalogFilterWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        if self.segment_has_only_allowed_catalogs(reader)? {
            return Ok(Box::new(AllScorer::new(reader.max_doc())));
        }
        self.union.scorer(reader, boost)
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(TantivyError::InvalidArgument(format!("document {doc} does not match")));
        }
        Ok(Explanation::new("catalog filter", 0.0))
    }
}

/// Documents carrying any of `terms` (a seekable union of posting lists;
/// unlike `TermSetQuery` it does not build a bitset of the whole segment).
pub(crate) fn any_term(terms: Vec<Term>) -> Box<dyn Query> {
    let mut queries: Vec<(Occur, Box<dyn Query>)> = terms
        .into_iter()
        .map(|term| (Occur::Should, Box::new(TermQuery::new(term, IndexRecordOption::Basic)) as Box<dyn Query>))
        .collect();
    match queries.len() {
        1 => queries.pop().map(|(_, query)| query).unwrap_or_else(|| Box::new(BooleanQuery::new(Vec::new()))),
        _ => Box::new(BooleanQuery::new(queries)),
    }
}
