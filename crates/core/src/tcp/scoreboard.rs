//! The sender's scoreboard: one entry per transmitted segment from SND.UNA
//! to SND.MAX, with what we know of it — SACKed, marked lost, retransmitted
//! and still in flight — and when it was last sent (RFC 6675 §3, RFC 8985
//! §5.2, Linux's retransmit queue and `tcp_skb_cb->sacked` bits).
//!
//! The scoreboard decides nothing. Loss detection (RACK, RFC 6675 IsLost,
//! NewReno) marks entries lost; output asks for the next one to resend; the
//! ACK path feeds cumulative and selective acknowledgments in and gets back
//! a summary of what was newly delivered.
//!
//! In-flight accounting follows Linux `tcp_packets_in_flight`, in bytes:
//! `outstanding − sacked − lost + retransmitted-in-flight`, which is RFC
//! 6675's `pipe`.

use crate::observe::RetransmitCause;
use crate::time::Instant;
use daytona_wire::tcp::SackBlock;
use daytona_wire::SeqNum;
use std::collections::VecDeque;

/// The delivery-rate state at the moment a segment was sent
/// (draft-cheng-iccrg-delivery-rate-estimation §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxSnapshot {
    /// `C.delivered` when sent.
    pub delivered: u64,
    /// `C.delivered_time` when sent.
    pub delivered_time: Instant,
    /// `C.first_tx_time` when sent.
    pub first_tx_time: Instant,
    /// The connection was application-limited when this was sent.
    pub app_limited: bool,
}

/// One transmitted segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentSeg {
    pub start: SeqNum,
    /// One past the last sequence number, the FIN included.
    pub end: SeqNum,
    pub fin: bool,
    /// Time of the latest (re)transmission (RACK's `xmit_ts`).
    pub xmit_time: Instant,
    /// Selectively acknowledged (RFC 2018).
    pub sacked: bool,
    /// Marked lost and not yet acknowledged (Linux `TCPCB_LOST`).
    pub lost: bool,
    /// A retransmission of it is in flight (Linux `TCPCB_SACKED_RETRANS`).
    pub retrans_in_flight: bool,
    /// Retransmitted at least once (Linux `TCPCB_EVER_RETRANS`).
    pub ever_retrans: bool,
    /// What marked it lost last (for the retransmission's event).
    pub cause: RetransmitCause,
    pub snapshot: TxSnapshot,
}

impl SentSeg {
    pub fn len(&self) -> u32 {
        self.end.since(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Must be (re)sent: lost, not SACKed, no retransmission in flight.
    pub fn needs_retransmit(&self) -> bool {
        self.lost && !self.sacked && !self.retrans_in_flight
    }

    /// RACK's ordering: sent later, ties broken by sequence (RFC 8985 §6.2
    /// `RACK_sent_after`).
    pub fn sent_after(&self, t: Instant, end: SeqNum) -> bool {
        self.xmit_time > t || (self.xmit_time == t && self.end.after(end))
    }
}

/// The newest of the segments an ACK delivered, for RACK and the rate
/// estimator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub xmit_time: Instant,
    pub end: SeqNum,
    pub ever_retrans: bool,
    pub snapshot: TxSnapshot,
}

/// What one ACK (cumulative part and SACK blocks) newly delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AckSummary {
    /// Bytes newly acknowledged or SACKed (sequence space, FIN included).
    pub delivered_bytes: u32,
    /// Of which newly SACKed.
    pub sacked_bytes: u32,
    /// Bytes delivered that had been marked lost (losses that were not).
    pub was_lost_bytes: u32,
    /// The most recently sent delivered segment (RACK.xmit_ts/end_seq).
    pub newest: Option<Delivered>,
    /// The delivered segment with the largest `snapshot.delivered` — the
    /// rate sample's packet P (draft §3.3; ties go to the latest sent).
    pub rate_from: Option<Delivered>,
    /// Send time of the oldest and newest delivered segment that was never
    /// retransmitted (Karn: only those give RTT samples).
    pub oldest_clean: Option<Instant>,
    pub newest_clean: Option<Instant>,
    /// A D-SACK block was present (RFC 2883 §4).
    pub dsack: Option<(SeqNum, SeqNum)>,
    /// Retransmitted segments the D-SACK reported as duplicates.
    pub dsack_retrans: u32,
    /// Reordering seen: a never-retransmitted segment was delivered below
    /// the highest SACKed sequence (RFC 8985 §6.2 step 3).
    pub reordering: bool,
}

impl AckSummary {
    fn deliver(&mut self, seg: &SentSeg, fack: Option<SeqNum>) {
        self.delivered_bytes += seg.len();
        if seg.lost {
            self.was_lost_bytes += seg.len();
        }
        let d = Delivered {
            xmit_time: seg.xmit_time,
            end: seg.end,
            ever_retrans: seg.ever_retrans,
            snapshot: seg.snapshot,
        };
        if self
            .newest
            .is_none_or(|n| seg.sent_after(n.xmit_time, n.end))
        {
            self.newest = Some(d);
        }
        if self.rate_from.is_none_or(|r| {
            seg.snapshot.delivered > r.snapshot.delivered
                || (seg.snapshot.delivered == r.snapshot.delivered
                    && seg.sent_after(r.xmit_time, r.end))
        }) {
            self.rate_from = Some(d);
        }
        if !seg.ever_retrans {
            if self.oldest_clean.is_none_or(|t| seg.xmit_time < t) {
                self.oldest_clean = Some(seg.xmit_time);
            }
            if self.newest_clean.is_none_or(|t| seg.xmit_time > t) {
                self.newest_clean = Some(seg.xmit_time);
            }
            if fack.is_some_and(|f| seg.end.before(f)) {
                self.reordering = true;
            }
        }
    }
}

/// The retransmission queue with its counters.
#[derive(Debug, Clone, Default)]
pub struct Scoreboard {
    segs: VecDeque<SentSeg>,
    sacked_bytes: u32,
    lost_bytes: u32,
    retrans_bytes: u32,
    /// Highest SACKed sequence seen (RFC 6675 "HighSACK" end, Linux fack).
    fack: Option<SeqNum>,
}

impl Scoreboard {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

    pub fn len(&self) -> usize {
        self.segs.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &SentSeg> {
        self.segs.iter()
    }

    pub fn get(&self, i: usize) -> Option<&SentSeg> {
        self.segs.get(i)
    }

    pub fn first(&self) -> Option<&SentSeg> {
        self.segs.front()
    }

    pub fn last(&self) -> Option<&SentSeg> {
        self.segs.back()
    }

    /// Bytes SACKed above SND.UNA.
    pub fn sacked_bytes(&self) -> u32 {
        self.sacked_bytes
    }

    /// Bytes marked lost (not SACKed).
    pub fn lost_bytes(&self) -> u32 {
        self.lost_bytes
    }

    /// Bytes of retransmissions in flight.
    pub fn retrans_bytes(&self) -> u32 {
        self.retrans_bytes
    }

    /// Number of SACKed segments.
    pub fn sacked_segments(&self) -> usize {
        self.segs.iter().filter(|s| s.sacked).count()
    }

    pub fn fack(&self) -> Option<SeqNum> {
        self.fack
    }

    /// Outstanding bytes, SND.MAX − SND.UNA as the queue sees it.
    pub fn outstanding(&self) -> u32 {
        match (self.segs.front(), self.segs.back()) {
            (Some(f), Some(b)) => b.end.since(f.start),
            _ => 0,
        }
    }

    /// RFC 6675 `pipe` / Linux `tcp_packets_in_flight`, in bytes.
    pub fn in_flight(&self) -> u32 {
        (self.outstanding() + self.retrans_bytes)
            .saturating_sub(self.sacked_bytes + self.lost_bytes)
    }

    /// Records a first transmission.
    pub fn push(&mut self, start: SeqNum, len: u32, fin: bool, now: Instant, snapshot: TxSnapshot) {
        self.segs.push_back(SentSeg {
            start,
            end: start + len + u32::from(fin),
            fin,
            xmit_time: now,
            sacked: false,
            lost: false,
            retrans_in_flight: false,
            ever_retrans: false,
            cause: RetransmitCause::Rto,
            snapshot,
        });
    }

    /// Splits entry `i` so that it ends at `at` (which must fall inside it).
    fn split(&mut self, i: usize, at: SeqNum) {
        let Some(seg) = self.segs.get_mut(i) else {
            return;
        };
        if !(at.after(seg.start) && at.before(seg.end)) {
            return;
        }
        let mut tail = *seg;
        seg.end = at;
        seg.fin = false;
        tail.start = at;
        self.segs.insert(i + 1, tail);
    }

    /// Limits entry `i` to at most `max_len` bytes (before a retransmission
    /// with a smaller MSS) and returns it.
    pub fn fit(&mut self, i: usize, max_len: u32) -> Option<SentSeg> {
        let seg = *self.segs.get(i)?;
        let data = seg.len() - u32::from(seg.fin);
        if data > max_len && max_len > 0 {
            self.split(i, seg.start + max_len);
        }
        self.segs.get(i).copied()
    }

    /// Records a retransmission of entry `i`.
    pub fn on_retransmit(&mut self, i: usize, now: Instant) {
        let Some(seg) = self.segs.get_mut(i) else {
            return;
        };
        if !seg.retrans_in_flight {
            seg.retrans_in_flight = true;
            self.retrans_bytes += seg.len();
        }
        seg.ever_retrans = true;
        seg.xmit_time = now;
    }

    fn unaccount(&mut self, seg: &SentSeg) {
        if seg.sacked {
            self.sacked_bytes -= seg.len();
        } else if seg.lost {
            self.lost_bytes -= seg.len();
        }
        if seg.retrans_in_flight {
            self.retrans_bytes -= seg.len();
        }
    }

    /// A cumulative acknowledgment up to `ack`.
    pub fn ack(&mut self, ack: SeqNum, summary: &mut AckSummary) {
        while let Some(&front) = self.segs.front() {
            if front.end.before_eq(ack) {
                self.segs.pop_front();
                self.unaccount(&front);
                if !front.sacked {
                    summary.deliver(&front, self.fack);
                }
            } else if front.start.before(ack) {
                // A partial acknowledgment of one segment (Linux
                // `tcp_trim_head`): split and deliver the acknowledged part.
                self.split(0, ack);
            } else {
                break;
            }
        }
        if self.segs.is_empty() {
            self.fack = None;
        }
    }

    /// SACK blocks of one ACK whose cumulative part was `ack`. The first
    /// block is a D-SACK when it lies below `ack` or inside the second
    /// block (RFC 2883 §4).
    pub fn sack(&mut self, ack: SeqNum, blocks: &[SackBlock], summary: &mut AckSummary) {
        for (n, b) in blocks.iter().enumerate() {
            if !b.left.before(b.right) {
                continue;
            }
            let is_dsack = n == 0
                && (b.right.before_eq(ack)
                    || blocks
                        .get(1)
                        .is_some_and(|o| o.left.before_eq(b.left) && b.right.before_eq(o.right)));
            if is_dsack {
                summary.dsack = Some((b.left, b.right));
                summary.dsack_retrans += self.dsack_retrans_in(b.left, b.right);
                continue;
            }
            // Ignore blocks reaching beyond what we sent (RFC 2018 §3
            // leaves them meaningless) or below SND.UNA.
            let Some(last) = self.segs.back() else {
                return;
            };
            if b.right.after(last.end) || b.left.before(ack) {
                continue;
            }
            self.mark_sacked(b.left, b.right, summary);
        }
    }

    /// Retransmitted segments inside a D-SACK range still on the queue
    /// (above SND.UNA); below SND.UNA the caller judges from its own record.
    fn dsack_retrans_in(&self, left: SeqNum, right: SeqNum) -> u32 {
        self.segs
            .iter()
            .filter(|s| s.ever_retrans && left.before_eq(s.start) && s.end.before_eq(right))
            .count() as u32
    }

    fn mark_sacked(&mut self, left: SeqNum, right: SeqNum, summary: &mut AckSummary) {
        let mut i = 0;
        while i < self.segs.len() {
            let seg = self.segs[i];
            if seg.end.before_eq(left) {
                i += 1;
                continue;
            }
            if !seg.start.before(right) {
                break;
            }
            // Split at the block edges so only covered bytes are marked.
            if seg.start.before(left) {
                self.split(i, left);
                i += 1;
                continue;
            }
            if right.before(seg.end) {
                self.split(i, right);
            }
            let seg = self.segs[i];
            if !seg.sacked {
                let fack = self.fack;
                self.unaccount(&seg);
                let s = &mut self.segs[i];
                s.sacked = true;
                s.lost = false;
                s.retrans_in_flight = false;
                self.sacked_bytes += seg.len();
                summary.sacked_bytes += seg.len();
                summary.deliver(&seg, fack);
                if self.fack.is_none_or(|f| seg.end.after(f)) {
                    self.fack = Some(seg.end);
                }
            }
            i += 1;
        }
    }

    /// Marks entry `i` lost. A retransmission in flight is lost with it.
    /// Returns the bytes newly marked.
    pub fn mark_lost(&mut self, i: usize, cause: RetransmitCause) -> u32 {
        let Some(seg) = self.segs.get_mut(i) else {
            return 0;
        };
        if seg.sacked {
            return 0;
        }
        seg.cause = cause;
        let len = seg.len();
        let mut newly = 0;
        if seg.retrans_in_flight {
            seg.retrans_in_flight = false;
            self.retrans_bytes -= len;
        }
        if !seg.lost {
            seg.lost = true;
            self.lost_bytes += len;
            newly = len;
        }
        newly
    }

    /// RFC 6675 §4 IsLost for every entry: lost when `dupthresh` SACKed
    /// segments, or more than (dupthresh − 1)·MSS SACKed bytes, lie above
    /// it. Returns the bytes newly marked.
    pub fn mark_lost_by_sacks(&mut self, dupthresh: u32, mss: u32, cause: RetransmitCause) -> u32 {
        let mut count = 0u32;
        let mut bytes = 0u32;
        let mut newly = 0;
        for i in (0..self.segs.len()).rev() {
            let seg = self.segs[i];
            if seg.sacked {
                count += 1;
                bytes += seg.len();
            } else if count >= dupthresh || bytes > dupthresh.saturating_sub(1) * mss {
                if seg.lost {
                    // Everything below was judged already.
                    break;
                }
                newly += self.mark_lost(i, cause);
            }
        }
        newly
    }

    /// Linux `tcp_enter_loss`: after a timeout every unSACKed segment is
    /// lost and no retransmission is in flight.
    pub fn mark_all_lost(&mut self, cause: RetransmitCause) -> u32 {
        let mut newly = 0;
        for i in 0..self.segs.len() {
            newly += self.mark_lost(i, cause);
        }
        newly
    }

    /// Undo of a spurious loss response: forget the lost marks (Linux
    /// `tcp_undo_cwnd_reduction` with `unmark_loss`).
    pub fn unmark_lost(&mut self) {
        for s in self.segs.iter_mut() {
            s.lost = false;
        }
        self.lost_bytes = 0;
    }

    /// SACK reneging or a timeout that distrusts the SACKs: forget them
    /// (RFC 2018 §8, RFC 6675 §5.1).
    pub fn clear_sacks(&mut self) {
        for s in self.segs.iter_mut() {
            if s.sacked {
                s.sacked = false;
            }
        }
        self.sacked_bytes = 0;
        self.fack = None;
        self.lost_bytes = self.segs.iter().filter(|s| s.lost).map(SentSeg::len).sum();
    }

    /// The first entry that must be retransmitted (RFC 6675 NextSeg rule 1).
    pub fn next_lost(&self) -> Option<usize> {
        self.segs.iter().position(SentSeg::needs_retransmit)
    }

    /// RACK loss detection (RFC 8985 §6.2 `RACK_detect_loss`): every entry
    /// sent before the most recently delivered one (`rack_xmit`/`rack_end`)
    /// and unacknowledged for longer than `rtt + reo_wnd` is lost. Returns
    /// the bytes newly marked and, if some entries are not yet overdue, how
    /// long until the first one is (for the reordering timer).
    pub fn rack_detect(
        &mut self,
        now: Instant,
        rack_xmit: Instant,
        rack_end: SeqNum,
        wait: crate::time::Duration,
        cause: RetransmitCause,
    ) -> (u32, Option<crate::time::Duration>) {
        let mut newly = 0;
        let mut timeout: Option<crate::time::Duration> = None;
        for i in 0..self.segs.len() {
            let seg = self.segs[i];
            if seg.sacked || (seg.lost && !seg.retrans_in_flight) {
                continue;
            }
            if seg.sent_after(rack_xmit, rack_end) {
                // The queue is in sending order except for retransmissions;
                // keep scanning for older retransmitted entries.
                continue;
            }
            let deadline = seg.xmit_time + wait;
            if deadline <= now {
                newly += self.mark_lost(i, cause);
            } else {
                let left = deadline - now;
                timeout = Some(timeout.map_or(left, |t| t.max(left)));
            }
        }
        (newly, timeout)
    }

    /// Tail of the queue for a loss probe: the last entry, limited to
    /// `max_len` bytes from its end side is not needed — it is resent whole.
    pub fn last_index(&self) -> Option<usize> {
        self.segs.len().checked_sub(1)
    }

    /// The lowest-sequence entry not SACKed above `after`, for the RFC 6675
    /// rescue retransmission (the highest unSACKed one).
    pub fn highest_unsacked(&self) -> Option<usize> {
        self.segs.iter().rposition(|s| !s.sacked)
    }

    /// Drops everything (connection reset).
    pub fn clear(&mut self) {
        *self = Scoreboard::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    fn snap(t: Instant) -> TxSnapshot {
        TxSnapshot {
            delivered: 0,
            delivered_time: t,
            first_tx_time: t,
            app_limited: false,
        }
    }

    /// Ten 1000-byte segments from 0, sent 1 ms apart.
    fn board() -> Scoreboard {
        let mut b = Scoreboard::new();
        for i in 0..10u32 {
            let t = Instant::from_millis(u64::from(i));
            b.push(SeqNum(i * 1000), 1000, false, t, snap(t));
        }
        b
    }

    fn block(l: u32, r: u32) -> SackBlock {
        SackBlock {
            left: SeqNum(l),
            right: SeqNum(r),
        }
    }

    #[test]
    fn sacks_and_cumulative_acks_keep_pipe_exact() {
        let mut b = board();
        assert_eq!(b.in_flight(), 10_000);
        let mut s = AckSummary::default();
        b.sack(SeqNum(0), &[block(3000, 5000)], &mut s);
        assert_eq!((s.sacked_bytes, b.sacked_bytes()), (2000, 2000));
        assert_eq!(b.in_flight(), 8000);
        assert_eq!(b.fack(), Some(SeqNum(5000)));
        let mut s = AckSummary::default();
        b.ack(SeqNum(2000), &mut s);
        assert_eq!(s.delivered_bytes, 2000);
        assert_eq!(b.in_flight(), 6000);
        // Delivered below the highest SACK without retransmission: reordering.
        assert!(s.reordering);
        let mut s = AckSummary::default();
        b.ack(SeqNum(5000), &mut s);
        // Already-SACKed bytes are not delivered twice.
        assert_eq!(s.delivered_bytes, 1000);
        assert_eq!((b.sacked_bytes(), b.in_flight()), (0, 5000));
    }

    #[test]
    fn sack_blocks_split_segments_at_their_edges() {
        let mut b = board();
        let mut s = AckSummary::default();
        b.sack(SeqNum(0), &[block(1500, 2500)], &mut s);
        assert_eq!(b.sacked_bytes(), 1000);
        let sacked: Vec<(u32, u32)> = b
            .iter()
            .filter(|s| s.sacked)
            .map(|s| (s.start.0, s.end.0))
            .collect();
        assert_eq!(sacked, vec![(1500, 2000), (2000, 2500)]);
    }

    #[test]
    fn is_lost_needs_three_sacked_segments_above() {
        let mut b = board();
        let mut s = AckSummary::default();
        b.sack(SeqNum(0), &[block(1000, 3000)], &mut s);
        assert_eq!(
            b.mark_lost_by_sacks(3, 1000, RetransmitCause::FastRetransmit),
            0
        );
        // Three segments above the hole, but only 2000+1000 bytes = not
        // more than 2·MSS until the third arrives.
        b.sack(SeqNum(0), &[block(1000, 4000)], &mut s);
        assert_eq!(
            b.mark_lost_by_sacks(3, 1000, RetransmitCause::FastRetransmit),
            1000
        );
        assert_eq!(b.next_lost(), Some(0));
        assert_eq!(b.in_flight(), 10_000 - 3000 - 1000);
        b.on_retransmit(0, Instant::from_millis(50));
        assert_eq!(b.next_lost(), None);
        assert_eq!(b.in_flight(), 10_000 - 3000);
    }

    #[test]
    fn rack_marks_only_segments_sent_before_the_delivered_one_and_overdue() {
        let mut b = board();
        let mut s = AckSummary::default();
        // Segment 5 (sent at 5 ms) is SACKed at 30 ms.
        b.sack(SeqNum(0), &[block(5000, 6000)], &mut s);
        let newest = s.newest.unwrap();
        assert_eq!(newest.xmit_time, Instant::from_millis(5));
        let now = Instant::from_millis(30);
        // rtt 25 ms plus a reordering window of 2 ms: segments sent at or
        // before 30 − 27 = 3 ms are overdue; the one sent at 4 ms is due in
        // 1 ms.
        let (lost, timeout) = b.rack_detect(
            now,
            newest.xmit_time,
            newest.end,
            Duration::from_millis(27),
            RetransmitCause::Rack,
        );
        assert_eq!(lost, 4000);
        assert_eq!(timeout, Some(Duration::from_millis(1)));
        // Segments sent after the delivered one are never judged.
        assert!(b.iter().skip(6).all(|s| !s.lost));
    }

    #[test]
    fn dsack_of_a_retransmission_is_reported() {
        let mut b = board();
        b.mark_lost(0, RetransmitCause::Rack);
        b.on_retransmit(0, Instant::from_millis(40));
        let mut s = AckSummary::default();
        // The original arrived after all: the receiver reports the
        // retransmission as a duplicate below the cumulative ACK.
        b.ack(SeqNum(1000), &mut s);
        let mut s = AckSummary::default();
        b.sack(SeqNum(1000), &[block(0, 1000)], &mut s);
        assert_eq!(s.dsack, Some((SeqNum(0), SeqNum(1000))));
        assert_eq!(b.sacked_bytes(), 0);
    }

    #[test]
    fn timeout_marks_everything_unsacked_lost() {
        let mut b = board();
        let mut s = AckSummary::default();
        b.sack(SeqNum(0), &[block(8000, 10_000)], &mut s);
        b.mark_lost(0, RetransmitCause::Rack);
        b.on_retransmit(0, Instant::from_millis(20));
        assert_eq!(b.mark_all_lost(RetransmitCause::Rto), 7000);
        assert_eq!(b.lost_bytes(), 8000);
        assert_eq!((b.retrans_bytes(), b.in_flight()), (0, 0));
        b.unmark_lost();
        assert_eq!(b.in_flight(), 8000);
    }
}
