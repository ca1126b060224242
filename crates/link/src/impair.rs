//! The fault model shared by the simulator and the `Impaired` middleware.
//!
//! One direction of a link is a pipeline, driven by time:
//!
//! ```text
//! send ─▶ queue (drop-tail bytes/packets, optional CoDel) ─▶ bottleneck
//!         (constant rate, or a mahimahi trace) ─▶ loss (Bernoulli,
//!         Gilbert–Elliott) ─▶ corruption ─▶ reordering ─▶ delay + jitter
//!         ─▶ duplication ─▶ deliver
//! ```
//!
//! Every random choice comes from one seeded RNG, so a run is reproducible.
//! The model is polled like the stack: [`FaultModel::poll_at`] says when
//! something will next happen, [`FaultModel::deliver`] hands out frames
//! whose time has come.

use crate::loss::{chance, check_probability, GilbertElliott, LossState};
use crate::queue::{Aqm, Queue};
use crate::trace::{Trace, OPPORTUNITY_BYTES};
use daytona_core::time::{Duration, Instant};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

/// Impairments of one direction of a link. Probabilities are in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct Impairment {
    /// One-way propagation delay.
    pub delay: Duration,
    /// Uniform extra delay in [0, jitter]; frames are not reordered by it
    /// (each leaves no earlier than the previous one).
    pub jitter: Duration,
    /// Bottleneck rate in bits per second (`None`: infinite, unless a
    /// trace sets the capacity).
    pub rate_bps: Option<u64>,
    /// Trace-driven capacity (mahimahi format) instead of a constant rate.
    pub trace: Option<Arc<Trace>>,
    /// Drop-tail queue limit in bytes in front of the bottleneck.
    pub queue_bytes: Option<usize>,
    /// Drop-tail queue limit in packets in front of the bottleneck.
    pub queue_packets: Option<usize>,
    /// Active queue management at the bottleneck's dequeue.
    pub aqm: Aqm,
    /// Independent loss probability.
    pub loss: f64,
    /// Gilbert–Elliott bursty loss, applied before the independent loss.
    pub burst: Option<GilbertElliott>,
    /// Probability a frame is delivered twice.
    pub duplicate: f64,
    /// Probability a frame is held back by `reorder_delay`.
    pub reorder: f64,
    pub reorder_delay: Duration,
    /// Probability one random bit of the frame is flipped.
    pub corrupt: f64,
}

impl Default for Impairment {
    fn default() -> Self {
        Impairment {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            rate_bps: None,
            trace: None,
            queue_bytes: None,
            queue_packets: None,
            aqm: Aqm::DropTail,
            loss: 0.0,
            burst: None,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(1),
            corrupt: 0.0,
        }
    }
}

impl Impairment {
    /// Checks every probability is within [0, 1] and the capacity makes
    /// sense; the error names the bad parameter.
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
        ] {
            check_probability(name, p)?;
        }
        if let Some(ge) = &self.burst {
            ge.validate()?;
        }
        if self.rate_bps == Some(0) {
            return Err("rate must be positive".into());
        }
        if self.rate_bps.is_some() && self.trace.is_some() {
            return Err("a link has either a rate or a trace, not both".into());
        }
        if self.queue_bytes == Some(0) || self.queue_packets == Some(0) {
            return Err("a queue limit must be at least one byte / packet".into());
        }
        Ok(())
    }

    /// The bottleneck's mean capacity, if it has one.
    pub fn capacity_bps(&self) -> Option<u64> {
        self.rate_bps
            .or_else(|| self.trace.as_ref().map(|t| t.mean_rate_bps()))
    }
}

/// Counters of what the model did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Frames offered to the link.
    pub frames: u64,
    /// Frames lost at random (Bernoulli or Gilbert–Elliott).
    pub lost: u64,
    /// Frames refused by the full queue (drop-tail).
    pub queue_drops: u64,
    /// Frames dropped by the AQM.
    pub aqm_drops: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub corrupted: u64,
    /// Frames and bytes that left the bottleneck.
    pub frames_out: u64,
    pub bytes_out: u64,
    /// Largest queue seen, bytes.
    pub max_queue_bytes: usize,
}

/// Something the link did to a frame, for the event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkEventKind {
    QueueDrop,
    AqmDrop,
    Lost,
    Corrupted,
    Duplicated,
    Reordered,
}

impl LinkEventKind {
    /// The name in event logs.
    pub fn name(self) -> &'static str {
        match self {
            LinkEventKind::QueueDrop => "queue_drop",
            LinkEventKind::AqmDrop => "aqm_drop",
            LinkEventKind::Lost => "lost",
            LinkEventKind::Corrupted => "corrupted",
            LinkEventKind::Duplicated => "duplicated",
            LinkEventKind::Reordered => "reordered",
        }
    }
}

/// One entry of a link's event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEvent {
    pub time: Instant,
    pub kind: LinkEventKind,
    /// The frame's length.
    pub len: usize,
}

/// Where a trace-driven bottleneck stands.
#[derive(Debug, Clone, Default)]
struct TraceCursor {
    /// The trace's time zero: the first frame offered.
    epoch: Option<Instant>,
    /// The next unused opportunity.
    next: u64,
    /// A frame partly sent and the bytes it still needs.
    in_service: Option<(Vec<u8>, usize)>,
}

/// A seeded fault model for one direction.
#[derive(Debug, Clone)]
pub struct FaultModel {
    pub params: Impairment,
    rng: ChaCha8Rng,
    queue: Queue,
    /// When the constant-rate bottleneck finishes what it is sending.
    busy_until: Instant,
    trace: TraceCursor,
    /// Frames past the bottleneck: (delivery time, FIFO order, bytes).
    pipe: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    seq: u64,
    /// Latest delivery time handed out (keeps jitter from reordering).
    last_delivery: Instant,
    loss: LossState,
    log: Option<Vec<LinkEvent>>,
    pub stats: FaultStats,
}

impl FaultModel {
    pub fn new(params: Impairment, seed: u64) -> Self {
        FaultModel {
            queue: Queue::new(params.aqm),
            params,
            rng: ChaCha8Rng::seed_from_u64(seed),
            busy_until: Instant::ZERO,
            trace: TraceCursor::default(),
            pipe: BinaryHeap::new(),
            seq: 0,
            last_delivery: Instant::ZERO,
            loss: LossState::default(),
            log: None,
            stats: FaultStats::default(),
        }
    }

    /// Keeps a log of drops, corruption, duplication and reordering.
    pub fn record_events(&mut self, on: bool) {
        self.log = on.then(Vec::new);
    }

    /// Takes the logged events, oldest first.
    pub fn drain_events(&mut self) -> Vec<LinkEvent> {
        self.log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Bytes waiting in the bottleneck queue.
    pub fn queue_bytes(&self) -> usize {
        self.queue.bytes()
    }

    /// Frames waiting in the bottleneck queue.
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing is queued or in flight on this direction.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.pipe.is_empty() && self.trace.in_service.is_none()
    }

    fn note(&mut self, time: Instant, kind: LinkEventKind, len: usize) {
        if let Some(log) = self.log.as_mut() {
            log.push(LinkEvent { time, kind, len });
        }
    }

    /// Offers a frame to the link at `now`.
    pub fn send(&mut self, now: Instant, frame: &[u8]) {
        self.serve(now);
        self.stats.frames += 1;
        if self.params.trace.is_some() && self.trace.epoch.is_none() {
            self.trace.epoch = Some(now);
        }
        if self.params.rate_bps.is_none() && self.params.trace.is_none() {
            // No bottleneck: straight into the pipe.
            self.depart(now, frame.to_vec());
            return;
        }
        if !self.queue.admits(
            frame.len(),
            self.params.queue_bytes,
            self.params.queue_packets,
        ) {
            self.stats.queue_drops += 1;
            self.note(now, LinkEventKind::QueueDrop, frame.len());
            return;
        }
        self.queue.push(now, frame.to_vec());
        self.stats.max_queue_bytes = self.stats.max_queue_bytes.max(self.queue.bytes());
        self.serve(now);
    }

    /// When something next happens on this direction.
    pub fn poll_at(&self) -> Option<Instant> {
        let pipe = self.pipe.peek().map(|Reverse((t, ..))| *t);
        let service = self.next_service();
        match (pipe, service) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next frame due at `now`, if any (call until `None`).
    pub fn deliver(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.serve(now);
        match self.pipe.peek() {
            Some(Reverse((t, ..))) if *t <= now => self.pipe.pop().map(|Reverse((.., f))| f),
            _ => None,
        }
    }

    /// When the bottleneck next takes a frame from the queue.
    fn next_service(&self) -> Option<Instant> {
        if let Some(trace) = &self.params.trace {
            let head = if self.trace.in_service.is_some() {
                Instant::ZERO
            } else {
                self.queue.head_arrival()?
            };
            let epoch = self.trace.epoch?;
            let k = trace.first_at_or_after(epoch, self.trace.next, head);
            return Some(trace.time_of(epoch, k));
        }
        self.params.rate_bps?;
        Some(self.busy_until.max(self.queue.head_arrival()?))
    }

    /// Runs the bottleneck up to `now`.
    fn serve(&mut self, now: Instant) {
        while let Some(t) = self.next_service() {
            if t > now {
                break;
            }
            if self.params.trace.is_some() {
                self.use_opportunity(t);
            } else {
                self.serve_at_rate(t);
            }
        }
    }

    fn aqm_dequeue(&mut self, t: Instant) -> Option<Vec<u8>> {
        let mut dropped = Vec::new();
        let frame = self.queue.dequeue(t, &mut |f| dropped.push(f.len()));
        for len in dropped {
            self.stats.aqm_drops += 1;
            self.note(t, LinkEventKind::AqmDrop, len);
        }
        frame
    }

    /// The constant-rate bottleneck starts sending the head frame at `t`.
    fn serve_at_rate(&mut self, t: Instant) {
        let rate = self.params.rate_bps.unwrap_or(u64::MAX).max(1);
        let Some(frame) = self.aqm_dequeue(t) else {
            return;
        };
        let tx_us = (frame.len() as u64 * 8).saturating_mul(1_000_000) / rate;
        self.busy_until = t + Duration::from_micros(tx_us.max(1));
        let done = self.busy_until;
        self.depart(done, frame);
    }

    /// A trace opportunity at `t` carries up to `OPPORTUNITY_BYTES`,
    /// finishing a partly sent frame first, as mahimahi does.
    fn use_opportunity(&mut self, t: Instant) {
        let (Some(trace), Some(epoch)) = (self.params.trace.clone(), self.trace.epoch) else {
            return;
        };
        let k = trace.first_at_or_after(epoch, self.trace.next, t);
        self.trace.next = k + 1;
        let mut budget = OPPORTUNITY_BYTES;
        while budget > 0 {
            let (frame, left) = match self.trace.in_service.take() {
                Some(s) => s,
                None => match self.aqm_dequeue(t) {
                    Some(f) => {
                        let n = f.len();
                        (f, n)
                    }
                    None => break,
                },
            };
            if left <= budget {
                budget -= left;
                self.depart(t, frame);
            } else {
                self.trace.in_service = Some((frame, left - budget));
                budget = 0;
            }
        }
    }

    /// A frame leaves the bottleneck at `t`: loss, corruption, reordering,
    /// delay and duplication.
    fn depart(&mut self, t: Instant, mut frame: Vec<u8>) {
        self.stats.frames_out += 1;
        self.stats.bytes_out += frame.len() as u64;
        let len = frame.len();
        if self
            .loss
            .lose(&mut self.rng, self.params.loss, self.params.burst.as_ref())
        {
            self.stats.lost += 1;
            self.note(t, LinkEventKind::Lost, len);
            return;
        }
        let mut at = t + self.params.delay;
        if !self.params.jitter.is_zero() {
            let j = self
                .rng
                .gen_range(0..=self.params.jitter.as_micros() as u64);
            at += Duration::from_micros(j);
            at = at.max(self.last_delivery);
        }
        if !frame.is_empty() && chance(&mut self.rng, self.params.corrupt) {
            let bit = self.rng.gen_range(0..frame.len() * 8);
            frame[bit / 8] ^= 1 << (bit % 8);
            self.stats.corrupted += 1;
            self.note(t, LinkEventKind::Corrupted, len);
        }
        if chance(&mut self.rng, self.params.reorder) {
            self.stats.reordered += 1;
            self.note(t, LinkEventKind::Reordered, len);
            at += self.params.reorder_delay;
        } else {
            self.last_delivery = self.last_delivery.max(at);
        }
        if chance(&mut self.rng, self.params.duplicate) {
            self.stats.duplicated += 1;
            self.note(t, LinkEventKind::Duplicated, len);
            self.seq += 1;
            self.pipe.push(Reverse((at, self.seq, frame.clone())));
        }
        self.seq += 1;
        self.pipe.push(Reverse((at, self.seq, frame)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::CoDelParams;

    /// Everything the model delivers up to `until`, with delivery times.
    fn drain(m: &mut FaultModel, until: Instant) -> Vec<(Instant, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(t) = m.poll_at() {
            if t > until {
                break;
            }
            while let Some(f) = m.deliver(t) {
                out.push((t, f));
            }
        }
        out
    }

    #[test]
    fn loss_rate_matches_within_six_sigma() {
        let mut m = FaultModel::new(
            Impairment {
                loss: 0.3,
                ..Impairment::default()
            },
            7,
        );
        let n = 10_000u64;
        for _ in 0..n {
            m.send(Instant::ZERO, &[0; 100]);
        }
        let delivered = drain(&mut m, Instant::ZERO).len() as u64;
        let lost = n - delivered;
        assert_eq!(lost, m.stats.lost);
        // Binomial: mean 3000, sigma sqrt(n p (1-p)) ≈ 45.8.
        assert!((3000 - 275..=3000 + 275).contains(&lost), "lost {lost}");
    }

    #[test]
    fn rate_limit_serialises_and_queue_drops_tail() {
        let mut m = FaultModel::new(
            Impairment {
                rate_bps: Some(8_000_000), // 1 byte per microsecond
                queue_bytes: Some(3000),
                delay: Duration::from_millis(10),
                ..Impairment::default()
            },
            1,
        );
        let t = Instant::from_secs(1);
        // The first frame goes onto the wire at once; the next three wait.
        for _ in 0..4 {
            m.send(t, &[0; 1000]);
        }
        assert_eq!(m.queue_bytes(), 3000);
        m.send(t, &[0; 1000]);
        assert_eq!(m.stats.queue_drops, 1, "queue full");
        let out = drain(&mut m, t + Duration::from_secs(1));
        let times: Vec<u128> = out.iter().map(|(at, _)| (*at - t).as_micros()).collect();
        assert_eq!(times, [11_000, 12_000, 13_000, 14_000]);
        assert_eq!(m.stats.bytes_out, 4000);
    }

    #[test]
    fn packet_limited_queue() {
        let mut m = FaultModel::new(
            Impairment {
                rate_bps: Some(1_000_000),
                queue_packets: Some(2),
                ..Impairment::default()
            },
            1,
        );
        let t = Instant::from_secs(1);
        for _ in 0..5 {
            m.send(t, &[0; 40]);
        }
        // One in service, two queued, two dropped.
        assert_eq!(m.stats.queue_drops, 2);
        assert_eq!(drain(&mut m, t + Duration::from_secs(1)).len(), 3);
    }

    #[test]
    fn codel_keeps_the_standing_queue_short() {
        // 10 Mbit/s (a 1500-byte frame per 1.2 ms), a 200-packet buffer
        // and a sender offering 5% more: drop-tail fills the buffer,
        // CoDel drops early and keeps the queue short.
        let run = |aqm| {
            let mut m = FaultModel::new(
                Impairment {
                    rate_bps: Some(10_000_000),
                    queue_packets: Some(200),
                    aqm,
                    ..Impairment::default()
                },
                1,
            );
            let t0 = Instant::from_secs(1);
            for i in 0..7000u64 {
                let now = t0 + Duration::from_micros(i * 1143);
                drain(&mut m, now);
                m.send(now, &[0; 1500]);
            }
            m
        };
        let tail = run(Aqm::DropTail);
        let codel = run(Aqm::CoDel(CoDelParams::default()));
        assert_eq!(tail.stats.aqm_drops, 0);
        assert!(tail.queue_len() > 190, "{}", tail.queue_len());
        assert!(codel.stats.aqm_drops > 0);
        assert!(
            codel.queue_len() < tail.queue_len() / 4,
            "codel {} tail {}",
            codel.queue_len(),
            tail.queue_len()
        );
    }

    #[test]
    fn trace_link_delivers_at_opportunities() {
        // Opportunities at 1, 2, 2 and 5 ms (then every 5 ms again).
        let trace = Arc::new(Trace::parse("1\n2\n2\n5\n").unwrap());
        let mut m = FaultModel::new(
            Impairment {
                trace: Some(trace),
                ..Impairment::default()
            },
            1,
        );
        let t = Instant::from_secs(1);
        for _ in 0..5 {
            m.send(t, &[0; 1500]);
        }
        // Two 700-byte frames share one opportunity.
        m.send(t, &[0; 700]);
        m.send(t, &[0; 700]);
        let out = drain(&mut m, t + Duration::from_secs(1));
        let ms: Vec<u128> = out.iter().map(|(at, _)| (*at - t).as_millis()).collect();
        assert_eq!(ms, [1, 2, 2, 5, 6, 7, 7]);
    }

    #[test]
    fn corruption_flips_exactly_one_bit_and_duplicates_are_identical() {
        let mut m = FaultModel::new(
            Impairment {
                corrupt: 1.0,
                ..Impairment::default()
            },
            3,
        );
        m.send(Instant::ZERO, &[0u8; 64]);
        let out = drain(&mut m, Instant::ZERO);
        let flipped: u32 = out[0].1.iter().map(|b| b.count_ones()).sum();
        assert_eq!(flipped, 1);
        let mut d = FaultModel::new(
            Impairment {
                duplicate: 1.0,
                ..Impairment::default()
            },
            3,
        );
        d.send(Instant::ZERO, b"abc");
        let out = drain(&mut d, Instant::ZERO);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].1, out[1].1);
    }

    #[test]
    fn event_log_records_what_happened() {
        let mut m = FaultModel::new(
            Impairment {
                loss: 1.0,
                ..Impairment::default()
            },
            3,
        );
        m.record_events(true);
        m.send(Instant::from_secs(2), &[0; 10]);
        assert_eq!(
            m.drain_events(),
            [LinkEvent {
                time: Instant::from_secs(2),
                kind: LinkEventKind::Lost,
                len: 10
            }]
        );
    }

    #[test]
    fn validation_names_the_bad_parameter() {
        let bad = Impairment {
            loss: 1.4,
            ..Impairment::default()
        };
        assert!(bad.validate().unwrap_err().contains("loss"));
        let both = Impairment {
            rate_bps: Some(1),
            trace: Some(Arc::new(Trace::constant(1, 1))),
            ..Impairment::default()
        };
        assert!(both.validate().unwrap_err().contains("trace"));
    }
}
