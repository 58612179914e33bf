//! Group commit (issue 14): concurrent writes of one kind to one place, within
//! this process, share a transaction. The first write to an idle place commits
//! alone at once; those that arrive while its transaction runs form the next
//! batch. Nothing waits for a batch to fill, so an uncontended place pays only a
//! task hand-off, and a hot one pays one transaction per batch instead of one per
//! write.
//!
//! Reads that must be fresh batch the same way: a batch's statement starts after
//! every one of its items asked, so each answer is as fresh as a read of its own.
//!
//! What a batch does is the [`Batched`] implementation's: one transaction for
//! all ([`Batched::together`]), and one for a single item ([`Batched::alone`]),
//! which is also the fallback when a shared transaction fails, so one item's
//! trouble is never another's.

use crate::error::ShopResult;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// A kind of write that can share a transaction with others of its kind.
pub(crate) trait Batched: Send + Sync + 'static {
    /// Where the writes meet: one queue, and one batch at a time, per key.
    type Key: Eq + Hash + Clone + Send + Sync + 'static;
    type Item: Send + Sync + 'static;
    type Output: Send + 'static;

    /// The most items one transaction carries; the rest wait for the next.
    const MAX_BATCH: usize;
    /// The histogram of batch sizes, `ninefold_<what>_batch_size`.
    const METRIC: &'static str;

    /// All items in one transaction: each one's outcome, in order. `Err` means
    /// nothing was committed (each item is then tried alone).
    fn together<'a>(&'a self, key: &'a Self::Key, items: &'a [&'a Self::Item]) -> impl Future<Output = ShopResult<Vec<ShopResult<Self::Output>>>> + Send + 'a;

    /// One item in a transaction of its own.
    fn alone<'a>(&'a self, key: &'a Self::Key, item: &'a Self::Item) -> impl Future<Output = ShopResult<Self::Output>> + Send + 'a;
}

struct Waiting<B: Batched> {
    item: B::Item,
    done: oneshot::Sender<ShopResult<B::Output>>,
}

/// The queues of one kind of write. An entry exists while a drain task runs for it.
pub(crate) struct GroupCommit<B: Batched> {
    batched: Arc<B>,
    queues: Arc<Mutex<HashMap<B::Key, Vec<Waiting<B>>>>>,
    counts: Arc<BatchCounts>,
}

/// How many batches were committed together, and how many items they carried.
#[derive(Default)]
struct BatchCounts {
    batches: AtomicU64,
    items: AtomicU64,
}

impl<B: Batched> Clone for GroupCommit<B> {
    fn clone(&self) -> Self {
        Self { batched: self.batched.clone(), queues: self.queues.clone(), counts: self.counts.clone() }
    }
}

impl<B: Batched> std::fmt::Debug for GroupCommit<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").field("metric", &B::METRIC).finish_non_exhaustive()
    }
}

impl<B: Batched> GroupCommit<B> {
    pub(crate) fn new(batched: B) -> Self {
        Self { batched: Arc::new(batched), queues: Arc::default(), counts: Arc::default() }
    }

    /// Writes `item` together with whatever else waits at `key`, and answers with
    /// its own outcome. Timed in `ninefold_batch_wait_seconds{batch}` (from here to
    /// the answer) and `ninefold_batch_seconds{batch}` (one batch, start to end).
    pub(crate) async fn submit(&self, key: B::Key, item: B::Item) -> ShopResult<B::Output> {
        let asked = std::time::Instant::now();
        let answer = self.answer(key, item).await;
        metrics::histogram!("ninefold_batch_wait_seconds", "batch" => B::METRIC).record(asked.elapsed().as_secs_f64());
        answer
    }

    async fn answer(&self, key: B::Key, item: B::Item) -> ShopResult<B::Output> {
        let (done, outcome) = oneshot::channel();
        let lead = {
            let mut queues = self.lock();
            match queues.get_mut(&key) {
                Some(queue) => {
                    queue.push(Waiting { item, done });
                    false
                }
                None => {
                    queues.insert(key.clone(), vec![Waiting { item, done }]);
                    true
                }
            }
        };
        if lead {
            // Its own task, on the batch thread: a caller who hangs up must not
            // abandon the others, and replies must reach it at once.
            crate::db::batch_thread::spawn(self.clone().drain(key));
        }
        outcome.await.map_err(|_| anyhow::anyhow!("the batch ended without an answer"))?
    }

    /// Batches of more than one item committed so far, and the items in them.
    pub(crate) fn shared_batches(&self) -> (u64, u64) {
        (self.counts.batches.load(Ordering::Relaxed), self.counts.items.load(Ordering::Relaxed))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<B::Key, Vec<Waiting<B>>>> {
        self.queues.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Commits the key's queue, a batch at a time, until it is empty.
    async fn drain(self, key: B::Key) {
        // Should this task die, the queue goes with it (its callers are answered
        // with an error) rather than waiting for a drain that never comes.
        let mut ended = EndOfDrain { commit: self.clone(), key: key.clone(), armed: true };
        loop {
            let batch: Vec<Waiting<B>> = {
                let mut queues = self.lock();
                let Some(queue) = queues.get_mut(&key) else {
                    ended.armed = false;
                    return;
                };
                if queue.is_empty() {
                    queues.remove(&key);
                    // Disarmed under the lock: once it is released, a new submit may
                    // open a fresh queue at this key, which is not this task's to end.
                    ended.armed = false;
                    return;
                }
                let n = queue.len().min(B::MAX_BATCH);
                queue.drain(..n).collect()
            };
            metrics::histogram!(B::METRIC).record(batch.len() as f64);
            if batch.len() > 1 {
                self.counts.batches.fetch_add(1, Ordering::Relaxed);
                self.counts.items.fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            let started = std::time::Instant::now();
            self.commit(&key, batch).await;
            metrics::histogram!("ninefold_batch_seconds", "batch" => B::METRIC).record(started.elapsed().as_secs_f64());
        }
    }

    /// Answers every item of the batch.
    async fn commit(&self, key: &B::Key, batch: Vec<Waiting<B>>) {
        if batch.len() > 1 {
            let items: Vec<&B::Item> = batch.iter().map(|w| &w.item).collect();
            match self.batched.together(key, &items).await {
                Ok(outcomes) if outcomes.len() == batch.len() => {
                    for (waiting, outcome) in batch.into_iter().zip(outcomes) {
                        let _ = waiting.done.send(outcome);
                    }
                    return;
                }
                Ok(_) => tracing::error!(metric = B::METRIC, "a batch answered for the wrong number of items; trying each alone"),
                Err(error) => tracing::warn!(%error, metric = B::METRIC, items = batch.len(), "a shared transaction failed; trying each alone"),
            }
        }
        for waiting in batch {
            let outcome = self.batched.alone(key, &waiting.item).await;
            let _ = waiting.done.send(outcome);
        }
    }
}

/// Ends the queue of a drain task that stopped early (a panic, a runtime shutting
/// down). A task that emptied its queue disarms it first.
struct EndOfDrain<B: Batched> {
    commit: GroupCommit<B>,
    key: B::Key,
    armed: bool,
}

impl<B: Batched> Drop for EndOfDrain<B> {
    fn drop(&mut self) {
        if self.armed {
            self.commit.lock().remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Batched, GroupCommit};
    use crate::error::ShopResult;

    /// Answers every item with itself, and yields once so batches overlap submits.
    struct Echo;

    impl Batched for Echo {
        type Key = u8;
        type Item = u32;
        type Output = u32;
        const MAX_BATCH: usize = 4;
        const METRIC: &'static str = "test_echo_batch";

        async fn together(&self, _key: &u8, items: &[&u32]) -> ShopResult<Vec<ShopResult<u32>>> {
            tokio::task::yield_now().await;
            Ok(items.iter().map(|i| Ok(**i)).collect())
        }

        async fn alone(&self, _key: &u8, item: &u32) -> ShopResult<u32> {
            Ok(*item)
        }
    }

    /// A drain task that empties its queue must not end the fresh queue a submit
    /// opens at the same key the moment after: every submit gets its own answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn every_submit_is_answered_while_queues_open_and_close_under_it() {
        let commit = GroupCommit::new(Echo);
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..8u32 {
            let commit = commit.clone();
            tasks.spawn(async move {
                for i in 0..2_000u32 {
                    let item = t * 10_000 + i;
                    assert_eq!(commit.submit((i % 2) as u8, item).await.expect("answered"), item);
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    }
}
