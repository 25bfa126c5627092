//! Bounded work: at most `slots` optimizations at once, at most `waiting` requests queued for
//! a slot; past that a request is turned away at once. A queued request whose client went
//! away (its future dropped) leaves the queue.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Semaphore, SemaphorePermit};

/// The slots and the queue before them.
#[derive(Debug)]
pub struct Queue {
    slots: Semaphore,
    max_waiting: usize,
    waiting: AtomicUsize,
}

/// Decrements the waiting count when a queued request gets its slot or is dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Queue {
    /// `slots` at once (at least one), `max_waiting` queued.
    #[must_use]
    pub fn new(slots: usize, max_waiting: usize) -> Self {
        Self {
            slots: Semaphore::new(slots.max(1)),
            max_waiting,
            waiting: AtomicUsize::new(0),
        }
    }

    /// A slot, after waiting in the queue if need be; `None` at once when the queue is full.
    pub async fn enter(&self) -> Option<SemaphorePermit<'_>> {
        if let Ok(permit) = self.slots.try_acquire() {
            return Some(permit);
        }
        let ahead = self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        if ahead >= self.max_waiting {
            return None;
        }
        self.slots.acquire().await.ok()
    }

    /// Requests waiting now.
    #[must_use]
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn full_queues_turn_away_and_dropped_waiters_leave() {
        let queue = Queue::new(1, 1);
        let first = queue.enter().await.expect("a free slot");
        let mut second = Box::pin(queue.enter());
        // Poll once so the second request takes its place in the queue.
        assert!(
            tokio::time::timeout(Duration::from_millis(20), &mut second)
                .await
                .is_err()
        );
        assert_eq!(queue.waiting(), 1);
        assert!(queue.enter().await.is_none(), "the queue is full");
        drop(second);
        assert_eq!(queue.waiting(), 0, "a dropped waiter leaves the queue");
        let mut third = Box::pin(queue.enter());
        assert!(
            tokio::time::timeout(Duration::from_millis(20), &mut third)
                .await
                .is_err()
        );
        drop(first);
        assert!(third.await.is_some(), "a freed slot goes to the queue");
        assert_eq!(queue.waiting(), 0);
    }
}
