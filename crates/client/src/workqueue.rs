//! A de-duplicating work queue with per-item exponential retry, as client-go's
//! `workqueue.TypedRateLimitingInterface`.
//!
//! An item added while waiting is queued once; an item added while being processed is
//! queued again only after [`WorkQueue::done`], so no two workers ever hold the same key.
//! Failures retry after 5 ms doubling to 1000 s (client-go's default item limiter) until
//! [`WorkQueue::forget`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

const BASE_DELAY: Duration = Duration::from_millis(5);
const MAX_DELAY: Duration = Duration::from_secs(1000);

struct State<T> {
    queue: VecDeque<T>,
    dirty: HashSet<T>,
    processing: HashSet<T>,
    failures: HashMap<T, u32>,
    shut_down: bool,
}

/// A shared handle to one queue; clones refer to the same queue.
pub struct WorkQueue<T> {
    state: Arc<Mutex<State<T>>>,
    ready: Arc<Notify>,
}

impl<T> Clone for WorkQueue<T> {
    fn clone(&self) -> Self {
        WorkQueue {
            state: self.state.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<T: Clone + Eq + Hash + Send + 'static> Default for WorkQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone + Eq + Hash + Send + 'static> WorkQueue<T> {
    /// An empty queue.
    pub fn new() -> Self {
        WorkQueue {
            state: Arc::new(Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                failures: HashMap::new(),
                shut_down: false,
            })),
            ready: Arc::new(Notify::new()),
        }
    }

    /// Queues `item` unless it is already waiting.
    pub fn add(&self, item: T) {
        let mut state = self.state.lock().unwrap();
        if state.shut_down || !state.dirty.insert(item.clone()) {
            return;
        }
        if !state.processing.contains(&item) {
            state.queue.push_back(item);
            drop(state);
            self.ready.notify_one();
        }
    }

    /// Queues `item` after `delay`.
    pub fn add_after(&self, item: T, delay: Duration) {
        if delay.is_zero() {
            return self.add(item);
        }
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(item);
        });
    }

    /// Queues `item` after its next back-off delay (5 ms doubling per failure).
    pub fn add_rate_limited(&self, item: T) {
        let delay = {
            let mut state = self.state.lock().unwrap();
            let failures = state.failures.entry(item.clone()).or_insert(0);
            let delay = BASE_DELAY
                .saturating_mul(1u32.checked_shl(*failures).unwrap_or(u32::MAX))
                .min(MAX_DELAY);
            *failures = failures.saturating_add(1);
            delay
        };
        self.add_after(item, delay);
    }

    /// Resets `item`'s back-off after a success.
    pub fn forget(&self, item: &T) {
        self.state.lock().unwrap().failures.remove(item);
    }

    /// How many times `item` has failed since it was last forgotten.
    pub fn retries(&self, item: &T) -> u32 {
        self.state
            .lock()
            .unwrap()
            .failures
            .get(item)
            .copied()
            .unwrap_or(0)
    }

    /// The next item to process, waiting for one; `None` once the queue is shut down.
    /// Call [`WorkQueue::done`] when finished with it.
    pub async fn get(&self) -> Option<T> {
        loop {
            let notified = self.ready.notified();
            {
                let mut state = self.state.lock().unwrap();
                if let Some(item) = state.queue.pop_front() {
                    state.dirty.remove(&item);
                    state.processing.insert(item.clone());
                    if !state.queue.is_empty() {
                        // Wake another worker for the rest.
                        self.ready.notify_one();
                    }
                    return Some(item);
                }
                if state.shut_down {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Marks `item` processed; re-queues it if it was added meanwhile.
    pub fn done(&self, item: &T) {
        let mut state = self.state.lock().unwrap();
        state.processing.remove(item);
        if state.dirty.contains(item) {
            state.queue.push_back(item.clone());
            drop(state);
            self.ready.notify_one();
        }
    }

    /// Items waiting (not counting those being processed).
    pub fn len(&self) -> usize {
        self.state.lock().unwrap().queue.len()
    }

    /// Whether no item is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops handing out items; waiting workers get `None`.
    pub fn shut_down(&self) {
        self.state.lock().unwrap().shut_down = true;
        self.ready.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn duplicates_are_queued_once() {
        let queue = WorkQueue::new();
        queue.add("a");
        queue.add("a");
        queue.add("b");
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.get().await, Some("a"));
        assert_eq!(queue.get().await, Some("b"));
        assert!(queue.is_empty());
    }

    #[tokio::test]
    async fn an_item_being_processed_is_requeued_only_when_done() {
        let queue = WorkQueue::new();
        queue.add("a");
        let item = queue.get().await.unwrap();
        queue.add("a");
        assert!(queue.is_empty(), "no second worker may take a busy key");
        queue.done(&item);
        assert_eq!(queue.get().await, Some("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_exponentially_until_forgotten() {
        let queue = WorkQueue::new();
        for expected in [5u64, 10, 20, 40] {
            queue.add_rate_limited("a");
            let start = tokio::time::Instant::now();
            let item = queue.get().await.unwrap();
            assert_eq!(start.elapsed(), Duration::from_millis(expected));
            queue.done(&item);
        }
        assert_eq!(queue.retries(&"a"), 4);
        queue.forget(&"a");
        assert_eq!(queue.retries(&"a"), 0);
    }

    #[tokio::test]
    async fn shutting_down_releases_waiting_workers() {
        let queue: WorkQueue<&str> = WorkQueue::new();
        let waiter = tokio::spawn({
            let queue = queue.clone();
            async move { queue.get().await }
        });
        tokio::task::yield_now().await;
        queue.shut_down();
        assert_eq!(waiter.await.unwrap(), None);
    }
}
