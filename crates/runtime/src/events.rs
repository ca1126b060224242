//! Bounded event subscriptions: a ring per subscriber that the stack
//! writes into and never waits on. When the subscriber falls behind, the
//! oldest undelivered events are dropped and counted.

use daytona_core::observe::Event;
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

struct RingState {
    queue: VecDeque<Event>,
    capacity: usize,
    dropped: u64,
    delivered: u64,
    closed: bool,
}

pub(crate) struct Ring {
    state: Mutex<RingState>,
    cv: Condvar,
}

impl Ring {
    pub(crate) fn new(capacity: usize) -> Ring {
        Ring {
            state: Mutex::new(RingState {
                queue: VecDeque::with_capacity(capacity.clamp(1, 4096)),
                capacity: capacity.max(1),
                dropped: 0,
                delivered: 0,
                closed: false,
            }),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, RingState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by whoever drives the stack: O(1), holds the ring's lock only
    /// for the push (the subscriber holds it only to pop, never while
    /// blocked).
    pub(crate) fn push(&self, e: Event) {
        let mut s = self.lock();
        if s.queue.len() >= s.capacity {
            s.queue.pop_front();
            s.dropped += 1;
        }
        s.queue.push_back(e);
        s.delivered += 1;
        drop(s);
        self.cv.notify_one();
    }

    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.cv.notify_all();
    }
}

/// A bounded subscription to a connection's events ([`crate::TcpStream::events`])
/// or to all of a stack's events ([`crate::Runtime::events`]).
///
/// The stack never blocks on a subscriber: when the ring is full, the
/// oldest event is dropped and [`dropped`](Self::dropped) counts it.
pub struct EventSubscription {
    pub(crate) ring: std::sync::Arc<Ring>,
}

impl std::fmt::Debug for EventSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSubscription")
            .field("pending", &self.len())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl EventSubscription {
    /// The oldest pending event, without waiting.
    pub fn try_next(&self) -> Option<Event> {
        self.ring.lock().queue.pop_front()
    }

    /// The oldest pending event, waiting up to `timeout` for one; `None` on
    /// timeout or once the runtime has shut down and nothing is left.
    ///
    /// A timeout too long to represent (`Duration::MAX`) waits until an
    /// event comes or the runtime shuts down.
    pub fn next_timeout(&self, timeout: Duration) -> Option<Event> {
        let deadline = std::time::Instant::now().checked_add(timeout);
        let mut s = self.ring.lock();
        loop {
            if let Some(e) = s.queue.pop_front() {
                return Some(e);
            }
            let now = std::time::Instant::now();
            if s.closed || deadline.is_some_and(|d| now >= d) {
                return None;
            }
            s = match deadline {
                Some(d) => {
                    self.ring
                        .cv
                        .wait_timeout(s, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
                None => self.ring.cv.wait(s).unwrap_or_else(|p| p.into_inner()),
            };
        }
    }

    /// Takes every pending event.
    pub fn drain(&self) -> Vec<Event> {
        self.ring.lock().queue.drain(..).collect()
    }

    /// Events waiting to be read.
    pub fn len(&self) -> usize {
        self.ring.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events dropped because the subscriber was slow (ring full).
    pub fn dropped(&self) -> u64 {
        self.ring.lock().dropped
    }

    /// Events published to this subscription in total (read, pending or
    /// dropped).
    pub fn published(&self) -> u64 {
        self.ring.lock().delivered
    }

    /// The ring's capacity.
    pub fn capacity(&self) -> usize {
        self.ring.lock().capacity
    }
}
