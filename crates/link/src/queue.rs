//! The queue in front of a link's bottleneck: a FIFO limited in bytes
//! and/or packets (drop-tail at enqueue), with an optional CoDel AQM
//! deciding drops at dequeue (RFC 8289).

use daytona_core::time::{Duration, Instant};
use std::collections::VecDeque;

/// Active queue management on a bottleneck queue.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Aqm {
    /// Only the drop-tail limits apply.
    #[default]
    DropTail,
    /// Controlled Delay (RFC 8289), on top of the drop-tail limits.
    CoDel(CoDelParams),
}

/// CoDel's two parameters (RFC 8289 §4.2, §4.3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoDelParams {
    /// Acceptable standing queue delay (RFC 8289 §4.4: 5 ms).
    pub target: Duration,
    /// Window over which the delay must stay above target before
    /// dropping (RFC 8289 §4.3: 100 ms, a worst-case RTT).
    pub interval: Duration,
}

impl Default for CoDelParams {
    fn default() -> Self {
        CoDelParams {
            target: Duration::from_millis(5),
            interval: Duration::from_millis(100),
        }
    }
}

/// CoDel's control-loop state (RFC 8289 §5, the reference pseudocode).
#[derive(Debug, Clone, Default)]
struct CoDelState {
    /// When the sojourn time first stayed above target (`None`: it is not).
    first_above_time: Option<Instant>,
    drop_next: Instant,
    count: u32,
    lastcount: u32,
    dropping: bool,
}

/// A FIFO of frames with their arrival times.
#[derive(Debug, Clone, Default)]
pub(crate) struct Queue {
    frames: VecDeque<(Instant, Vec<u8>)>,
    bytes: usize,
    codel: Option<(CoDelParams, CoDelState)>,
    /// Largest frame seen: CoDel's MAXPACKET.
    max_packet: usize,
}

impl Queue {
    pub(crate) fn new(aqm: Aqm) -> Queue {
        Queue {
            codel: match aqm {
                Aqm::DropTail => None,
                Aqm::CoDel(p) => Some((p, CoDelState::default())),
            },
            ..Queue::default()
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn len(&self) -> usize {
        self.frames.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub(crate) fn head_arrival(&self) -> Option<Instant> {
        self.frames.front().map(|(t, _)| *t)
    }

    /// Drop-tail admission: would a frame of `len` bytes fit the limits?
    pub(crate) fn admits(&self, len: usize, bytes: Option<usize>, packets: Option<usize>) -> bool {
        bytes.is_none_or(|limit| self.bytes + len <= limit)
            && packets.is_none_or(|limit| self.frames.len() < limit)
    }

    pub(crate) fn push(&mut self, now: Instant, frame: Vec<u8>) {
        self.bytes += frame.len();
        self.max_packet = self.max_packet.max(frame.len());
        self.frames.push_back((now, frame));
    }

    fn pop(&mut self) -> Option<(Instant, Vec<u8>)> {
        let f = self.frames.pop_front()?;
        self.bytes -= f.1.len();
        Some(f)
    }

    /// Takes the next frame to serve at `now`. Frames the AQM drops are
    /// handed to `dropped`.
    pub(crate) fn dequeue(
        &mut self,
        now: Instant,
        dropped: &mut impl FnMut(Vec<u8>),
    ) -> Option<Vec<u8>> {
        let Some((params, mut st)) = self.codel.take() else {
            return self.pop().map(|(_, f)| f);
        };
        let out = self.codel_dequeue(now, &params, &mut st, dropped);
        self.codel = Some((params, st));
        out
    }

    /// RFC 8289 §5.5 `dodequeue`: pops the head and says whether the
    /// standing delay has been above target for a full interval.
    fn codel_dodequeue(
        &mut self,
        now: Instant,
        p: &CoDelParams,
        st: &mut CoDelState,
    ) -> (Option<Vec<u8>>, bool) {
        let Some((arrival, frame)) = self.pop() else {
            // RFC 8289 §5.5: an empty queue resets the above-target clock.
            st.first_above_time = None;
            return (None, false);
        };
        let sojourn = now - arrival;
        let mut ok_to_drop = false;
        // RFC 8289 §5.5: below target, or less than a packet left: good.
        if sojourn < p.target || self.bytes <= self.max_packet {
            st.first_above_time = None;
        } else {
            match st.first_above_time {
                None => st.first_above_time = Some(now + p.interval),
                Some(t) if now >= t => ok_to_drop = true,
                Some(_) => {}
            }
        }
        (Some(frame), ok_to_drop)
    }

    /// RFC 8289 §5.6 `dequeue`, the drop state machine.
    fn codel_dequeue(
        &mut self,
        now: Instant,
        p: &CoDelParams,
        st: &mut CoDelState,
        dropped: &mut impl FnMut(Vec<u8>),
    ) -> Option<Vec<u8>> {
        let (mut frame, mut ok_to_drop) = self.codel_dodequeue(now, p, st);
        if frame.is_none() {
            st.dropping = false;
            return None;
        }
        if st.dropping {
            if !ok_to_drop {
                // Sojourn time below target: leave the dropping state.
                st.dropping = false;
            }
            // RFC 8289 §5.6: drop at the control law's times until the
            // delay falls below target.
            while st.dropping && now >= st.drop_next {
                if let Some(f) = frame.take() {
                    dropped(f);
                }
                st.count += 1;
                (frame, ok_to_drop) = self.codel_dodequeue(now, p, st);
                if !ok_to_drop || frame.is_none() {
                    st.dropping = false;
                } else {
                    st.drop_next = control_law(st.drop_next, p.interval, st.count);
                }
            }
        } else if ok_to_drop {
            // Enter the dropping state: drop this frame and schedule the
            // next drop.
            if let Some(f) = frame.take() {
                dropped(f);
            }
            (frame, _) = self.codel_dodequeue(now, p, st);
            st.dropping = true;
            // RFC 8289 §5.6: if we were dropping recently, start from the
            // drop rate that controlled the queue last time.
            let delta = st.count.saturating_sub(st.lastcount);
            st.count = 1;
            if delta > 1 && now.saturating_since(st.drop_next) < p.interval * 16 {
                st.count = delta;
            }
            st.drop_next = control_law(now, p.interval, st.count);
            st.lastcount = st.count;
        }
        frame
    }
}

/// RFC 8289 §5.6: the next drop comes `interval / sqrt(count)` later.
fn control_law(t: Instant, interval: Duration, count: u32) -> Instant {
    let us = interval.as_micros() as f64 / f64::from(count.max(1)).sqrt();
    t + Duration::from_micros(us as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_tail_limits_bytes_and_packets() {
        let mut q = Queue::new(Aqm::DropTail);
        q.push(Instant::ZERO, vec![0; 1000]);
        assert!(q.admits(1000, Some(2000), None));
        assert!(!q.admits(1001, Some(2000), None));
        assert!(q.admits(1, None, Some(2)));
        q.push(Instant::ZERO, vec![0; 10]);
        assert!(!q.admits(1, None, Some(2)));
        assert_eq!((q.len(), q.bytes()), (2, 1010));
    }

    /// A queue held at a standing delay of 20 ms (well above the 5 ms
    /// target): CoDel drops nothing for the first interval, then drops at
    /// a rising rate (interval / sqrt(count)).
    #[test]
    fn codel_drops_only_after_an_interval_above_target() {
        let mut q = Queue::new(Aqm::CoDel(CoDelParams::default()));
        let mut drops = Vec::new();
        let t0 = Instant::from_secs(1);
        // One 1000-byte frame per ms in and out; each waited 20 ms.
        for i in 0..20 {
            q.push(t0 + Duration::from_millis(i), vec![0; 1000]);
        }
        for ms in 20..1000u64 {
            let now = t0 + Duration::from_millis(ms);
            q.push(now, vec![0; 1000]);
            let before = drops.len();
            let mut on_drop = |_f: Vec<u8>| drops.push(ms);
            let _ = q.dequeue(now, &mut on_drop);
            // Keep the standing queue: each dropped frame is replaced.
            for _ in before..drops.len() {
                q.push(now, vec![0; 1000]);
            }
        }
        assert!(!drops.is_empty());
        // First drop one interval after the delay first exceeded target.
        assert_eq!(drops[0], 120);
        // Then the gaps shrink: 100, 70.7, 57.7, 50 ms …
        let gaps: Vec<u64> = drops.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(gaps[0], 100);
        assert!((70..=71).contains(&gaps[1]), "{gaps:?}");
        assert!(gaps[2] < gaps[1], "{gaps:?}");
        assert!(*gaps.last().unwrap() < 30, "{gaps:?}");
    }

    #[test]
    fn codel_leaves_a_short_queue_alone() {
        let mut q = Queue::new(Aqm::CoDel(CoDelParams::default()));
        let t0 = Instant::from_secs(1);
        let mut dropped = 0;
        for ms in 0..2000u64 {
            let now = t0 + Duration::from_millis(ms);
            q.push(now, vec![0; 1500]);
            // Served 2 ms after arrival: below target.
            if ms >= 2 {
                let mut on_drop = |_f: Vec<u8>| dropped += 1;
                assert!(q.dequeue(now, &mut on_drop).is_some());
            }
        }
        assert_eq!(dropped, 0);
    }
}
