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
        (UsageRecorder { last_recorded: Arc::default(), queue }, writer)
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
