//! Stopping a search that nobody waits for any more.
//!
//! A search runs on a blocking thread; the request that started it may time
//! out (the server answers 503) or its client may go away. Without a signal
//! the thread would go on burning a core for a result nobody reads. The
//! server hands each search a [`Cancellation`] and cancels it when the
//! request's future is dropped ([`Cancellation::cancel_on_drop`]); the
//! collectors check it for every document they are offered and stop the scan
//! (see `STOP_SCORE`), and the search returns [`IndexError::Cancelled`](crate::IndexError::Cancelled).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tantivy::Score;

/// A flag shared between whoever waits for a search and the thread running it.
#[derive(Debug, Clone, Default)]
pub struct Cancellation(Arc<AtomicBool>);

impl Cancellation {
    pub fn new() -> Cancellation {
        Cancellation::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// A guard that cancels when dropped: held by the waiting future, it
    /// cancels the search exactly when that future is abandoned (a timeout,
    /// a closed connection) — and, harmlessly, after the search returned.
    pub fn cancel_on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(self.clone())
    }
}

/// See [`Cancellation::cancel_on_drop`].
#[derive(Debug)]
pub struct CancelOnDrop(Cancellation);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// The threshold a collector's callback returns to end a scan: no score is
/// above it, and the scoring loops (`words::for_each_above`, `words::max_score`)
/// return as soon as they see it.
pub(crate) const STOP_SCORE: Score = Score::INFINITY;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_the_guard_cancels_every_clone() {
        let cancellation = Cancellation::new();
        let seen_by_search = cancellation.clone();
        let guard = cancellation.cancel_on_drop();
        assert!(!seen_by_search.is_cancelled());
        drop(guard);
        assert!(seen_by_search.is_cancelled());
    }
}
