//! Key last-used times, recorded at most once a minute per key and written by
//! a background task, so authentication never waits on a database write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use octogen_core::{KeyId, Timestamp};
use octogen_store::Store;
use tokio::sync::mpsc;

const RECORD_INTERVAL: Duration = Duration::from_secs(60);
const BATCH: usize = 256;
const QUEUE: usize = 4096;

#[derive(Clone)]
pub struct UsageRecorder {
    last_recorded: Arc<Mutex<HashMap<KeyId, Instant>>>,
    queue: mpsc::Sender<(KeyId, Timestamp)>,
}

impl UsageRecorder {
    /// Starts the writer task. It stops (after a final flush) when every recorder clone is dropped.
    pub fn start(store: Arc<dyn Store>) -> (Self, tokio::task::JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let writer = tokio::spawn(write_batches(store, receiver));
        (UsageRecorder::new(queue), writer)
    }

    fn new(queue: mpsc::Sender<(KeyId, Timestamp)>) -> Self {
        UsageRecorder { last_recorded: Arc::default(), queue }
    }

    /// Notes a successful use of `key`. Cheap; never blocks on I/O.
    pub fn touch(&self, key: KeyId) {
        let now = Instant::now();
        {
            let mut last = self.last_recorded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match last.get(&key) {
                Some(at) if now.duration_since(*at) < RECORD_INTERVAL => return,
                _ => last.insert(key, now),
            };
        }
        if self.queue.try_send((key, Timestamp::now())).is_err() {
            // Queue full: forget that we recorded it so the next request retries.
            self.last_recorded.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&key);
        }
    }
}

/// Writes whatever has queued up, in batches, until every recorder is dropped.
async fn write_batches(store: Arc<dyn Store>, mut receiver: mpsc::Receiver<(KeyId, Timestamp)>) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = receiver.recv().await {
        batch.push(first);
        while batch.len() < BATCH {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        if let Err(error) = store.record_key_usage(&batch).await {
            tracing::warn!(error = %error, keys = batch.len(), "could not record API key usage");
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(receiver: &mut mpsc::Receiver<(KeyId, Timestamp)>) -> Vec<KeyId> {
        std::iter::from_fn(|| receiver.try_recv().ok().map(|(key, _)| key)).collect()
    }

    #[test]
    fn each_key_is_recorded_at_most_once_a_minute() {
        let (queue, mut receiver) = mpsc::channel(8);
        let recorder = UsageRecorder::new(queue);
        let (first, second) = (KeyId::random(), KeyId::random());

        for _ in 0..3 {
            recorder.touch(first);
        }
        recorder.touch(second);
        assert_eq!(queued(&mut receiver), vec![first, second]);

        recorder.touch(first);
        assert!(queued(&mut receiver).is_empty(), "within the minute nothing more is written");

        let a_minute_ago = Instant::now() - RECORD_INTERVAL;
        recorder.last_recorded.lock().unwrap().insert(first, a_minute_ago);
        recorder.touch(first);
        assert_eq!(queued(&mut receiver), vec![first], "a minute later the key is recorded again");
    }

    #[test]
    fn a_full_queue_is_retried_by_the_next_request() {
        let (queue, mut receiver) = mpsc::channel(1);
        let recorder = UsageRecorder::new(queue);
        let (first, second) = (KeyId::random(), KeyId::random());

        recorder.touch(first);
        recorder.touch(second); // dropped: the queue is full
        assert_eq!(queued(&mut receiver), vec![first]);

        recorder.touch(second);
        assert_eq!(queued(&mut receiver), vec![second], "the dropped use is not forgotten");
    }
}
