//! The transmit queue of the kernel-socket links ([`crate::raw`],
//! [`crate::packet`]): frames go to the socket in chunks of [`CHUNK`] (one
//! `sendmmsg` each, see [`crate::netif::send_msgs`]). When the socket's
//! buffer is full the frames that did not fit wait here, in order, in a
//! bounded backlog (beyond it they are dropped and counted, like a full
//! device queue), and the link's `poll_at` asks the runtime to call back
//! soon ([`RETRY`]). Every later send or receive flushes the backlog
//! first, so frames leave in the order the stack gave them.
//!
//! The link never waits for room: the runtime holds the stack's lock while
//! it calls the link, and a wait would stall every socket call with it.
//!
//! The queue knows nothing of sockets: a link hands it a closure that sends
//! one chunk and says what happened ([`Sent`]), so the logic is tested here
//! without privileges.

use crate::FrameMeta;
use daytona_core::time::{Duration, Instant};
use std::collections::VecDeque;
use std::ops::RangeInclusive;

/// Frames per send attempt (one `sendmmsg`).
pub(crate) const CHUNK: usize = 32;
/// How soon a runtime should call back while frames are held.
pub(crate) const RETRY: Duration = Duration::from_micros(200);
/// Held frames at most.
pub(crate) const BACKLOG_FRAMES: usize = 4096;
/// Held bytes at most (TSO frames are up to 64 KiB each).
pub(crate) const BACKLOG_BYTES: usize = 8 << 20;
/// Freed frame buffers kept for reuse at most.
const POOL_MAX: usize = 256;

/// What one send attempt of a chunk did. The first `taken + refused`
/// frames of the chunk are done with; the rest were not tried.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sent {
    /// Frames the kernel took.
    pub taken: usize,
    /// Frames the kernel refused for good (no route, too big): dropped.
    pub refused: usize,
    /// The socket's buffer was full: the rest must wait.
    pub full: bool,
}

/// Counters of a [`TxQueue`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TxCounters {
    /// Frames dropped for their length (shorter than a header, longer
    /// than the link takes).
    pub malformed: u64,
    /// Frames the kernel took.
    pub sent: u64,
    /// Frames the kernel refused.
    pub refused: u64,
    /// Frames dropped because the backlog was full.
    pub overflow: u64,
    /// Times the socket's buffer was found full.
    pub stalls: u64,
}

impl TxCounters {
    /// Every frame dropped: malformed, refused or beyond the backlog.
    pub fn dropped(&self) -> u64 {
        self.malformed + self.refused + self.overflow
    }
}

/// A chunk being assembled: frames borrowed from a batch or the backlog.
type Chunk<'a> = [(&'a [u8], FrameMeta); CHUNK];

/// The bounded backlog and its counters.
#[derive(Debug)]
pub(crate) struct TxQueue {
    held: VecDeque<(Vec<u8>, FrameMeta)>,
    held_bytes: usize,
    max_frames: usize,
    max_bytes: usize,
    pool: Vec<Vec<u8>>,
    last_now: Instant,
    counters: TxCounters,
}

impl Default for TxQueue {
    fn default() -> Self {
        TxQueue::new(BACKLOG_FRAMES, BACKLOG_BYTES)
    }
}

impl TxQueue {
    pub fn new(max_frames: usize, max_bytes: usize) -> TxQueue {
        TxQueue {
            held: VecDeque::new(),
            held_bytes: 0,
            max_frames,
            max_bytes,
            pool: Vec::new(),
            last_now: Instant::ZERO,
            counters: TxCounters::default(),
        }
    }

    /// Frames held.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    pub fn counters(&self) -> TxCounters {
        self.counters
    }

    /// When the runtime should call back: soon while frames are held.
    pub fn poll_at(&self) -> Option<Instant> {
        (!self.held.is_empty()).then(|| self.last_now + RETRY)
    }

    /// Sends held frames, oldest first, until the socket is full; returns
    /// whether none are left.
    pub fn flush<F>(&mut self, now: Instant, send: &mut F) -> bool
    where
        F: FnMut(&[(&[u8], FrameMeta)]) -> Sent,
    {
        self.last_now = now;
        while !self.held.is_empty() {
            let mut chunk: Chunk<'_> = [(&[], FrameMeta::default()); CHUNK];
            let n = fill(
                &mut chunk,
                self.held.iter().map(|(f, m)| (f.as_slice(), *m)),
            );
            let s = send(&chunk[..n]);
            let done = self.account(s, n);
            for _ in 0..done {
                if let Some((f, _)) = self.held.pop_front() {
                    self.held_bytes -= f.len();
                    if self.pool.len() < POOL_MAX {
                        self.pool.push(f);
                    }
                }
            }
            if done < n {
                return false;
            }
        }
        true
    }

    /// Sends the frames of `frames` whose length is in `lengths` (the
    /// others are dropped and counted) behind the held ones (flushed
    /// first); those that do not fit are held, up to the bound. Returns
    /// how many the kernel took or the backlog holds.
    pub fn send<'a, I, F>(
        &mut self,
        now: Instant,
        frames: I,
        lengths: RangeInclusive<usize>,
        mut send: F,
    ) -> usize
    where
        I: IntoIterator<Item = (&'a [u8], FrameMeta)>,
        F: FnMut(&[(&[u8], FrameMeta)]) -> Sent,
    {
        let mut open = self.flush(now, &mut send);
        let mut malformed = 0;
        let mut frames = frames.into_iter().filter(|(f, _)| {
            let ok = lengths.contains(&f.len());
            malformed += u64::from(!ok);
            ok
        });
        let mut accepted = 0;
        loop {
            let mut chunk: Chunk<'a> = [(&[], FrameMeta::default()); CHUNK];
            let n = fill(&mut chunk, frames.by_ref());
            if n == 0 {
                break;
            }
            // Behind held frames, new ones queue up in order.
            let done = if open {
                let s = send(&chunk[..n]);
                accepted += s.taken.min(n);
                let done = self.account(s, n);
                open = done == n;
                done
            } else {
                0
            };
            for &(f, meta) in &chunk[done..n] {
                accepted += usize::from(self.hold(f, meta));
            }
        }
        drop(frames);
        self.counters.malformed += malformed;
        accepted
    }

    /// Counts one attempt; returns how many frames of the chunk are done.
    fn account(&mut self, s: Sent, n: usize) -> usize {
        let taken = s.taken.min(n);
        let refused = s.refused.min(n - taken);
        self.counters.sent += taken as u64;
        self.counters.refused += refused as u64;
        let done = taken + refused;
        // A send that stops short is a full socket, whatever it said.
        self.counters.stalls += u64::from(s.full || done < n);
        done
    }

    /// Holds a copy of `frame`; false (and counted) when the backlog is full.
    fn hold(&mut self, frame: &[u8], meta: FrameMeta) -> bool {
        if self.held.len() >= self.max_frames || self.held_bytes + frame.len() > self.max_bytes {
            self.counters.overflow += 1;
            return false;
        }
        let mut f = self.pool.pop().unwrap_or_default();
        f.clear();
        f.extend_from_slice(frame);
        self.held_bytes += f.len();
        self.held.push_back((f, meta));
        true
    }
}

/// Fills `chunk` from `frames`; returns how many it took.
fn fill<'a>(chunk: &mut Chunk<'a>, frames: impl Iterator<Item = (&'a [u8], FrameMeta)>) -> usize {
    let mut n = 0;
    for (slot, f) in chunk.iter_mut().zip(frames) {
        *slot = f;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that takes `room` frames (then reports full) and refuses
    /// frames whose first byte is 0xff; it records what it took.
    struct FakeSocket {
        room: usize,
        wire: Vec<Vec<u8>>,
        calls: usize,
    }

    impl FakeSocket {
        fn new(room: usize) -> Self {
            FakeSocket {
                room,
                wire: Vec::new(),
                calls: 0,
            }
        }

        fn send(&mut self, chunk: &[(&[u8], FrameMeta)]) -> Sent {
            self.calls += 1;
            let mut s = Sent::default();
            for (f, _) in chunk {
                if f.first() == Some(&0xff) {
                    s.refused += 1;
                } else if self.room == 0 {
                    s.full = true;
                    break;
                } else {
                    self.room -= 1;
                    self.wire.push(f.to_vec());
                    s.taken += 1;
                }
            }
            s
        }
    }

    fn frames(range: std::ops::Range<u16>) -> Vec<Vec<u8>> {
        range.map(|i| i.to_be_bytes().to_vec()).collect()
    }

    fn metas(fs: &[Vec<u8>]) -> impl Iterator<Item = (&[u8], FrameMeta)> {
        fs.iter().map(|f| (f.as_slice(), FrameMeta::default()))
    }

    const T0: Instant = Instant::ZERO;
    const ANY: RangeInclusive<usize> = 0..=usize::MAX;

    #[test]
    fn frames_that_fit_go_at_once_and_nothing_is_held() {
        let (mut q, mut sock) = (TxQueue::default(), FakeSocket::new(1000));
        let fs = frames(0..100);
        assert_eq!(q.send(T0, metas(&fs), ANY, |c| sock.send(c)), 100);
        assert_eq!(sock.wire, fs);
        assert_eq!(sock.calls, 4, "chunks of {CHUNK}");
        assert_eq!((q.held(), q.poll_at()), (0, None));
        assert_eq!(q.counters().sent, 100);
    }

    #[test]
    fn a_full_socket_holds_the_rest_and_asks_to_be_called_back() {
        let (mut q, mut sock) = (TxQueue::default(), FakeSocket::new(40));
        let fs = frames(0..100);
        let now = T0 + Duration::from_millis(5);
        assert_eq!(q.send(now, metas(&fs), ANY, |c| sock.send(c)), 100);
        assert_eq!(sock.wire, fs[..40]);
        assert_eq!(q.held(), 60);
        assert_eq!(q.poll_at(), Some(now + RETRY));
        // Once full, the link does not knock again within the same call.
        assert_eq!(sock.calls, 2);
        assert_eq!(q.counters().stalls, 1);
    }

    #[test]
    fn held_frames_leave_first_and_in_order() {
        let (mut q, mut sock) = (TxQueue::default(), FakeSocket::new(10));
        let first = frames(0..50);
        q.send(T0, metas(&first), ANY, |c| sock.send(c));
        // Still full: new frames queue behind the held ones.
        let second = frames(50..80);
        assert_eq!(q.send(T0, metas(&second), ANY, |c| sock.send(c)), 30);
        assert_eq!(q.held(), 70);
        // Room for some: the oldest held go first.
        sock.room = 25;
        assert!(!q.flush(T0, &mut |c| sock.send(c)));
        assert_eq!(q.held(), 45);
        // Room for all: a send flushes the backlog before its own frames.
        sock.room = 1000;
        let third = frames(80..90);
        q.send(T0, metas(&third), ANY, |c| sock.send(c));
        assert_eq!(sock.wire, frames(0..90));
        assert_eq!((q.held(), q.poll_at()), (0, None));
        assert_eq!(q.counters().sent, 90);
    }

    #[test]
    fn the_backlog_is_bounded_and_drops_are_counted() {
        let (mut q, mut sock) = (TxQueue::new(16, 1 << 20), FakeSocket::new(4));
        let fs = frames(0..40);
        assert_eq!(q.send(T0, metas(&fs), ANY, |c| sock.send(c)), 4 + 16);
        assert_eq!(q.held(), 16);
        assert_eq!(q.counters().overflow, 20);
        // The held ones are the oldest: order survives the drops.
        sock.room = 100;
        assert!(q.flush(T0, &mut |c| sock.send(c)));
        assert_eq!(sock.wire, fs[..20]);
    }

    #[test]
    fn the_backlog_is_bounded_in_bytes_too() {
        let (mut q, mut sock) = (TxQueue::new(100, 3000), FakeSocket::new(0));
        let big = vec![vec![1u8; 1000]; 5];
        assert_eq!(q.send(T0, metas(&big), ANY, |c| sock.send(c)), 3);
        assert_eq!((q.held(), q.counters().overflow), (3, 2));
        sock.room = 1;
        assert!(!q.flush(T0, &mut |c| sock.send(c)));
        // Room freed by the one that left takes one more.
        assert_eq!(q.send(T0, metas(&big[..1]), ANY, |c| sock.send(c)), 1);
        assert_eq!(q.held(), 3);
    }

    #[test]
    fn frames_of_a_length_the_link_cannot_take_are_dropped_and_counted() {
        let (mut q, mut sock) = (TxQueue::default(), FakeSocket::new(1000));
        let fs = vec![vec![1u8; 13], vec![2u8; 14], vec![3u8; 100], vec![4u8; 101]];
        assert_eq!(q.send(T0, metas(&fs), 14..=100, |c| sock.send(c)), 2);
        assert_eq!(sock.wire, fs[1..3]);
        assert_eq!((q.counters().malformed, q.counters().dropped()), (2, 2));
    }

    #[test]
    fn refused_frames_are_dropped_and_the_rest_go_on() {
        let (mut q, mut sock) = (TxQueue::default(), FakeSocket::new(1000));
        let mut fs = frames(0..10);
        fs[3] = vec![0xff, 0];
        fs[7] = vec![0xff, 1];
        assert_eq!(q.send(T0, metas(&fs), ANY, |c| sock.send(c)), 8);
        assert_eq!(sock.wire.len(), 8);
        assert_eq!(q.held(), 0);
        assert_eq!(q.counters().refused, 2);
    }

    #[test]
    fn a_short_send_without_a_full_flag_still_holds_the_rest() {
        let mut q = TxQueue::default();
        let fs = frames(0..10);
        let sent = q.send(T0, metas(&fs), ANY, |_| Sent {
            taken: 3,
            ..Sent::default()
        });
        assert_eq!(sent, 10);
        assert_eq!(q.held(), 7);
    }
}
