//! The sum over query words of each word's best match, with MaxScore pruning.
//!
//! Every word's contribution is bounded (`COVERAGE_POINTS` + the best field
//! points it can earn). Once the collector's heap is full, its worst hit
//! defines a threshold; the most expensive words whose bounds add up to no
//! more than that threshold become "non-essential": documents are only
//! enumerated from the other words' posting lists, and the non-essential
//! words are looked up (by `seek`) for those candidates alone. A word present
//! in nearly every product ("home", a one-brand catalog's brand) then stops
//! costing a pass over the whole segment as soon as the page holds products
//! matching more words than it alone can make up for.
//!
//! Pruning never changes a score or the set of top hits: a skipped document
//! provably scores at most the threshold, and the collector rejects those.

use std::cmp::Reverse;
use std::fmt;

use tantivy::query::{intersect_scorers, BooleanQuery, EnableScoring, Explanation, Occur, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED};

use crate::cancel::STOP_SCORE;

/// One word: the query for its best match, and the most it can score.
pub(crate) struct WordClause {
    pub query: Box<dyn Query>,
    pub upper_bound: Score,
}

impl Clone for WordClause {
    fn clone(&self) -> Self {
        WordClause { query: self.query.box_clone(), upper_bound: self.upper_bound }
    }
}

/// Products matching any (or, with `all_required`, every) word, scored by the sum of the words' scores.
#[derive(Clone)]
pub(crate) struct WordsQuery {
    words: Vec<WordClause>,
    all_required: bool,
}

impl WordsQuery {
    pub(crate) fn any(words: Vec<WordClause>) -> WordsQuery {
        WordsQuery { words, all_required: false }
    }

    pub(crate) fn all(words: Vec<WordClause>) -> WordsQuery {
        WordsQuery { words, all_required: true }
    }
}

impl fmt::Debug for WordsQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queries: Vec<_> = self.words.iter().map(|word| &word.query).collect();
        write!(f, "Words(all_required={}, {queries:?})", self.all_required)
    }
}

impl Query for WordsQuery {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.words_weight(scoring)?))
    }
}

impl WordsQuery {
    pub(crate) fn words_weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<WordsWeight> {
        let words = self
            .words
            .iter()
            .map(|word| Ok((word.query.weight(scoring)?, word.upper_bound)))
            .collect::<tantivy::Result<_>>()?;
        let occur = if self.all_required { Occur::Must } else { Occur::Should };
        let plain = BooleanQuery::new(self.words.iter().map(|word| (occur, word.query.box_clone())).collect());
        Ok(WordsWeight { words, all_required: self.all_required, plain: plain.weight(scoring)? })
    }
}

pub(crate) struct WordsWeight {
    words: Vec<(Box<dyn Weight>, Score)>,
    all_required: bool,
    /// The same query as a plain tantivy boolean, for callers that do not prune.
    plain: Box<dyn Weight>,
}

impl Weight for WordsWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        self.plain.scorer(reader, boost)
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.plain.explain(reader, doc)
    }

    fn for_each_pruning(
        &self,
        threshold: Score,
        reader: &SegmentReader,
        callback: &mut dyn FnMut(DocId, Score) -> Score,
    ) -> tantivy::Result<()> {
        self.for_each_pruning_within(None, threshold, reader, callback)
    }
}

impl WordsWeight {
    /// Like `for_each_pruning`, restricted to the documents of `filter` (scored 0).
    pub(crate) fn for_each_pruning_within(
        &self,
        filter: Option<Box<dyn Scorer>>,
        threshold: Score,
        reader: &SegmentReader,
        callback: &mut dyn FnMut(DocId, Score) -> Score,
    ) -> tantivy::Result<()> {
        if self.all_required {
            // An intersection is already driven by its rarest word; nothing to prune by bounds.
            let mut scorers = Vec::with_capacity(self.words.len() + 1);
            for (weight, _) in &self.words {
                scorers.push(weight.scorer(reader, 1.0)?);
            }
            scorers.extend(filter.map(|filter| Box::new(crate::filtered::ZeroScore(filter)) as Box<dyn Scorer>));
            let mut scorer = intersect_scorers(scorers, reader.num_docs());
            for_each_above(scorer.as_mut(), threshold, callback);
            return Ok(());
        }
        let mut clauses = Vec::with_capacity(self.words.len());
        for (weight, upper_bound) in &self.words {
            let scorer = weight.scorer(reader, 1.0)?;
            if scorer.doc() != TERMINATED {
                clauses.push(Clause { scorer, upper_bound: *upper_bound });
            }
        }
        max_score(clauses, filter, threshold, callback);
        Ok(())
    }
}

/// Reports every document scoring above the (moving) threshold, until the
/// callback returns `STOP_SCORE` (a cancelled search).
pub(crate) fn for_each_above(
    scorer: &mut dyn Scorer,
    mut threshold: Score,
    callback: &mut dyn FnMut(DocId, Score) -> Score,
) {
    let mut doc = scorer.doc();
    while doc != TERMINATED {
        let score = scorer.score();
        if score > threshold {
            threshold = callback(doc, score);
            if threshold == STOP_SCORE {
                return;
            }
        }
        doc = scorer.advance();
    }
}

struct Clause {
    scorer: Box<dyn Scorer>,
    upper_bound: Score,
}

/// Clauses `[..n]` are non-essential when their bounds add up to at most the threshold.
fn non_essential_count(bounds_prefix_sums: &[Score], threshold: Score) -> usize {
    // bounds_prefix_sums[k] = Σ bounds of clauses[..k]; [0] = 0.
    bounds_prefix_sums.iter().rposition(|&sum| sum <= threshold).unwrap_or(0)
}

fn max_score(
    mut clauses: Vec<Clause>,
    mut filter: Option<Box<dyn Scorer>>,
    mut threshold: Score,
    callback: &mut dyn FnMut(DocId, Score) -> Score,
) {
    // The most expensive lists become non-essential first.
    clauses.sort_by_key(|clause| Reverse(clause.scorer.cost()));
    let mut prefix_sums = vec![0.0];
    for clause in &clauses {
        prefix_sums.push(prefix_sums[prefix_sums.len() - 1] + clause.upper_bound);
    }
    let mut split = non_essential_count(&prefix_sums, threshold);
    while split < clauses.len() {
        let (non_essential, essential) = clauses.split_at_mut(split);
        let doc = essential.iter().map(|clause| clause.scorer.doc()).min().unwrap_or(TERMINATED);
        if doc == TERMINATED {
            return;
        }
        if let Some(filter) = filter.as_mut() {
            let allowed = if filter.doc() < doc { filter.seek(doc) } else { filter.doc() };
            if allowed == TERMINATED {
                return;
            }
            if allowed != doc {
                for clause in essential.iter_mut().filter(|clause| clause.scorer.doc() < allowed) {
                    clause.scorer.seek(allowed);
                }
                continue;
            }
        }
        let mut score: Score = 0.0;
        for clause in essential.iter_mut().filter(|clause| clause.scorer.doc() == doc) {
            score += clause.scorer.score();
        }
        // Cheapest non-essential lists first; stop once even all of the rest could not lift it above.
        let mut remaining = prefix_sums[split];
        for clause in non_essential.iter_mut().rev() {
            if score + remaining <= threshold {
                break;
            }
            remaining -= clause.upper_bound;
            let at = if clause.scorer.doc() < doc { clause.scorer.seek(doc) } else { clause.scorer.doc() };
            if at == doc {
                score += clause.scorer.score();
            }
        }
        for clause in essential.iter_mut().filter(|clause| clause.scorer.doc() == doc) {
            clause.scorer.advance();
        }
        if score > threshold {
            // The collector's threshold only rises; never shrink the non-essential
            // set, as its lists may lag behind `doc`. (`STOP_SCORE` makes every
            // clause non-essential, which ends the loop.)
            threshold = threshold.max(callback(doc, score));
            split = split.max(non_essential_count(&prefix_sums, threshold));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Documents `0..len`, each scoring 1, counting how far it was walked.
    struct CountingScorer {
        doc: DocId,
        len: DocId,
        advanced: u32,
    }

    impl DocSet for CountingScorer {
        fn advance(&mut self) -> DocId {
            self.advanced += 1;
            self.doc = if self.doc + 1 < self.len { self.doc + 1 } else { TERMINATED };
            self.doc
        }

        fn doc(&self) -> DocId {
            self.doc
        }

        fn size_hint(&self) -> u32 {
            self.len
        }
    }

    impl Scorer for CountingScorer {
        fn score(&mut self) -> Score {
            1.0
        }
    }

    /// A cancelled search's collector answers `STOP_SCORE`: the walk ends
    /// there instead of running through the rest of the posting list.
    #[test]
    fn the_walk_ends_when_the_collector_says_stop() {
        let mut scorer = CountingScorer { doc: 0, len: 100_000, advanced: 0 };
        let mut offered = 0;
        for_each_above(&mut scorer, -1.0, &mut |_, _| {
            offered += 1;
            if offered == 3 {
                STOP_SCORE
            } else {
                -1.0
            }
        });
        assert_eq!(offered, 3);
        assert_eq!(scorer.advanced, 2, "no document is read after the stop");

        let clauses = (0..2).map(|_| Clause {
            scorer: Box::new(CountingScorer { doc: 0, len: 100_000, advanced: 0 }) as Box<dyn Scorer>,
            upper_bound: 1.0,
        });
        let mut offered = 0;
        max_score(clauses.collect(), None, -1.0, &mut |_, _| {
            offered += 1;
            STOP_SCORE
        });
        assert_eq!(offered, 1, "MaxScore stops at the first stop too");
    }
}
