//! A word's best match: the documents of any of its alternatives (field ×
//! match kind), scored by the highest-scoring alternative that matches.
//!
//! This is what tantivy's `DisjunctionMaxQuery` computes, with another
//! union underneath. tantivy's `BufferedUnionScorer` fills a 4,096-document
//! window from every alternative at once, which is fast for walking a whole
//! union but makes each `seek` past the window refill it. Our words are
//! mostly *sought*: intersections leapfrog between words, and MaxScore looks
//! non-essential words up for each candidate (see `words`). Here a union is
//! the handful of non-empty alternatives side by side: `seek` moves only the
//! alternatives behind the target (skip lists make that cheap), and the
//! current document is their minimum. At a million products this cut the
//! CPU time of keyword searches by 45 % (BENCHMARKS.md §2).

use std::fmt;

use tantivy::query::{EmptyScorer, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SegmentReader, TantivyError, TERMINATED};

/// Documents matching any alternative, scored by the best alternative that matches.
pub(crate) struct BestMatchQuery {
    alternatives: Vec<Box<dyn Query>>,
}

impl BestMatchQuery {
    pub(crate) fn new(alternatives: Vec<Box<dyn Query>>) -> BestMatchQuery {
        BestMatchQuery { alternatives }
    }
}

impl Clone for BestMatchQuery {
    fn clone(&self) -> Self {
        BestMatchQuery { alternatives: self.alternatives.iter().map(|query| query.box_clone()).collect() }
    }
}

impl fmt::Debug for BestMatchQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BestMatch({:?})", self.alternatives)
    }
}

impl Query for BestMatchQuery {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let alternatives =
            self.alternatives.iter().map(|query| query.weight(scoring)).collect::<tantivy::Result<_>>()?;
        Ok(Box::new(BestMatchWeight { alternatives }))
    }
}

struct BestMatchWeight {
    alternatives: Vec<Box<dyn Weight>>,
}

impl Weight for BestMatchWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let mut alternatives = Vec::with_capacity(self.alternatives.len());
        for weight in &self.alternatives {
            let scorer = weight.scorer(reader, boost)?;
            if scorer.doc() != TERMINATED {
                alternatives.push(scorer);
            }
        }
        Ok(match alternatives.len() {
            0 => Box::new(EmptyScorer),
            1 => alternatives.remove(0),
            _ => Box::new(BestMatchScorer::new(alternatives)),
        })
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(TantivyError::InvalidArgument(format!("document {doc} does not match")));
        }
        Ok(Explanation::new("best match of a word", scorer.score()))
    }
}

/// The union of at least two alternatives, none of them exhausted when created.
///
/// Each alternative's current document is kept beside it, so finding the
/// union's next document reads a small array instead of making a virtual
/// call per alternative (which was the union's largest cost).
struct BestMatchScorer {
    alternatives: Vec<Box<dyn Scorer>>,
    /// `docs[i]` is `alternatives[i].doc()`.
    docs: Vec<DocId>,
    doc: DocId,
}

impl BestMatchScorer {
    fn new(alternatives: Vec<Box<dyn Scorer>>) -> BestMatchScorer {
        let docs = alternatives.iter().map(|alternative| alternative.doc()).collect();
        let mut scorer = BestMatchScorer { alternatives, docs, doc: 0 };
        scorer.doc = scorer.first_doc();
        scorer
    }

    /// The smallest current document; drops exhausted alternatives on the way.
    fn first_doc(&mut self) -> DocId {
        let mut first = TERMINATED;
        let mut index = self.docs.len();
        while index > 0 {
            index -= 1;
            let doc = self.docs[index];
            if doc == TERMINATED {
                self.docs.swap_remove(index);
                self.alternatives.swap_remove(index);
            } else {
                first = first.min(doc);
            }
        }
        first
    }
}

impl DocSet for BestMatchScorer {
    fn advance(&mut self) -> DocId {
        if self.doc == TERMINATED {
            return TERMINATED;
        }
        for (alternative, doc) in self.alternatives.iter_mut().zip(self.docs.iter_mut()) {
            if *doc == self.doc {
                *doc = alternative.advance();
            }
        }
        self.doc = self.first_doc();
        self.doc
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc >= target {
            return self.doc;
        }
        for (alternative, doc) in self.alternatives.iter_mut().zip(self.docs.iter_mut()) {
            if *doc < target {
                *doc = alternative.seek(target);
            }
        }
        self.doc = self.first_doc();
        self.doc
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.alternatives.iter().map(|alternative| alternative.size_hint()).fold(0u32, u32::saturating_add)
    }

    fn cost(&self) -> u64 {
        self.alternatives.iter().map(|alternative| alternative.cost()).sum()
    }
}

impl Scorer for BestMatchScorer {
    fn score(&mut self) -> Score {
        let mut best: Score = 0.0;
        for (alternative, doc) in self.alternatives.iter_mut().zip(&self.docs) {
            if *doc == self.doc {
                best = best.max(alternative.score());
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use tantivy::query::ConstScorer;

    use super::*;
    use crate::expansion::SortedDocs;

    fn alternative(docs: &[DocId], score: Score) -> Box<dyn Scorer> {
        Box::new(ConstScorer::new(SortedDocs::new(docs.to_vec()), score))
    }

    fn union() -> BestMatchScorer {
        BestMatchScorer::new(vec![alternative(&[1, 4, 9], 2.0), alternative(&[4, 7, 20], 5.0), alternative(&[2], 1.0)])
    }

    #[test]
    fn walks_every_document_once_with_the_best_score() {
        let mut scorer = union();
        let mut seen = Vec::new();
        while scorer.doc() != TERMINATED {
            seen.push((scorer.doc(), scorer.score()));
            scorer.advance();
        }
        assert_eq!(seen, [(1, 2.0), (2, 1.0), (4, 5.0), (7, 5.0), (9, 2.0), (20, 5.0)]);
        assert_eq!(scorer.advance(), TERMINATED);
    }

    #[test]
    fn seeks_forward_only() {
        let mut scorer = union();
        assert_eq!(scorer.seek(3), 4);
        assert_eq!(scorer.score(), 5.0);
        assert_eq!(scorer.seek(2), 4, "a seek behind the current document stays put");
        assert_eq!(scorer.seek(8), 9);
        assert_eq!(scorer.seek(21), TERMINATED);
    }
}
