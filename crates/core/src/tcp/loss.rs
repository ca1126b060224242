//! What an acknowledgment does to the sender, after Linux `tcp_ack` and
//! `tcp_fastretrans_alert`: update the scoreboard from the cumulative ACK
//! and SACK blocks, take RTT and delivery-rate samples, detect losses
//! (RACK-TLP, RFC 6675 IsLost or NewReno), detect spurious retransmissions
//! and undo, move through the recovery states, and let PRR or the
//! congestion controller set the window. ECN's congestion echo and the
//! timers of RACK and TLP live here too.
//!
//! Roles stay apart (DESIGN.md): this file decides *that* something is lost
//! and when recovery starts and ends; the controller decides *how much* may
//! be in flight; `output.rs` decides *what* to send.

use super::connection::Connection;
use super::prr::Prr;
use super::rack::Tlp;
use super::scoreboard::AckSummary;
use super::timers::TimerKind;
use crate::cc::{AckSample, CaState, CwndEvent, RateSample};
use crate::observe::{CwndCause, EventKind, RetransmitCause, SpuriousDetection};
use crate::time::{Duration, Instant};
use daytona_wire::tcp::{Control, TcpRepr};
use daytona_wire::SeqNum;

/// `a < b` in the modular timestamp space (RFC 7323 §5.3).
fn ts_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl Connection {
    /// Bytes in flight: RFC 6675 `pipe`, with NewReno's duplicate ACKs
    /// counted as delivered segments when the peer cannot SACK (Linux
    /// `tcp_add_reno_sack`).
    pub(crate) fn pipe(&self) -> u32 {
        self.board.in_flight().saturating_sub(self.reno_sacked)
    }

    fn disordered(&self) -> bool {
        if self.sack_ok {
            self.board.sacked_bytes() > 0
        } else {
            self.dupacks.count() > 0
        }
    }

    /// In fast recovery or the ECN window reduction (PRR governs cwnd).
    fn reducing(&self) -> bool {
        matches!(self.win.ca_state, CaState::Recovery | CaState::Cwr)
    }

    /// Steps five to seven of RFC 9293 §3.10.7.4 for the sender: an
    /// acceptable ACK (not above SND.MAX, not too old) arrived.
    pub(crate) fn on_ack(&mut self, now: Instant, seg: &TcpRepr<'_>, ack: SeqNum, wnd: u32) {
        let prior_in_flight = self.pipe();
        let lost_before = self.stats.bytes_lost;
        let prior_una = self.snd_una;
        let advanced = ack.after(self.snd_una);
        let mut acked = AckSummary::default();

        if advanced {
            let mut data = ack.since(self.snd_una);
            if matches!(self.fin_seq, Some(f) if ack == f + 1) {
                data = data.saturating_sub(1); // our FIN
            }
            self.snd_buf.consume(data as usize);
            self.stats.bytes_acked += u64::from(data);
            self.board.ack(ack, &mut acked);
            self.snd_una = ack;
            if self.snd_nxt.before(ack) {
                self.snd_nxt = ack;
            }
            self.retransmits = 0;
        }
        if self.sack_ok && !seg.options.sack_blocks.is_empty() {
            let blocks: Vec<_> = seg.options.sack_blocks.iter().collect();
            self.board.sack(ack, &blocks, &mut acked);
        }
        self.stats.delivered += u64::from(acked.delivered_bytes);

        // RFC 5681 §2 duplicate ACK; with SACK, an ACK that SACKs new data
        // counts too (RFC 6675 §2).
        let classic_dup = !advanced
            && seg.payload.is_empty()
            && seg.control == Control::None
            && wnd == self.snd_wnd
            && self.snd_max.after(self.snd_una);
        // RFC 6675 §2: with SACK, a duplicate must SACK new data.
        let dup = if self.sack_ok {
            classic_dup && acked.sacked_bytes > 0
        } else {
            classic_dup
        };

        self.on_dsack(now, &acked, prior_una);
        self.take_rtt_sample(now, seg, advanced, &acked);
        self.update_rack(now, seg, &acked);

        // NewReno bookkeeping without SACK (RFC 6582).
        if advanced {
            let in_recovery = self.win.ca_state == CaState::Recovery;
            self.dupacks.on_new_ack(ack, in_recovery);
            if !self.sack_ok {
                // Linux `tcp_remove_reno_sacks`: the duplicates stood for
                // segments now cumulatively acknowledged.
                let covered = ack.since(prior_una).saturating_sub(self.snd_mss);
                self.reno_sacked = self.reno_sacked.saturating_sub(covered);
            }
        } else if dup {
            let start = self
                .dupacks
                .on_dup_ack(self.snd_una, self.config.dupack_threshold.max(1));
            if !self.sack_ok && self.snd_max.after(self.snd_una) {
                let room = self.board.outstanding().saturating_sub(self.snd_mss);
                self.reno_sacked = (self.reno_sacked + self.snd_mss).min(room);
                if start && !self.reducing() && self.win.ca_state != CaState::Loss {
                    self.mark_head_lost(now, RetransmitCause::FastRetransmit);
                }
            }
        }

        self.detect_losses(now, advanced, prior_una);
        let newly_lost = (self.stats.bytes_lost - lost_before) as u32;
        let rate = self.rate_sample(now, &acked, prior_in_flight, newly_lost);
        self.process_tlp_ack(now, &acked);
        if self.config.undo {
            self.try_undo(now, seg, advanced);
        }
        self.process_ece(now, seg, advanced);
        let ended = self.update_ca_state(now, advanced);
        if !ended {
            // RFC 6937: the episode ends with cwnd = ssthresh; growth
            // resumes with the next ACK.
            self.adjust_window(now, advanced, &acked, rate, prior_in_flight);
        }
        self.autotune_send_buffer(now);
        self.note_pacing(now);
        self.note_cc_mode(now);

        // RFC 6298 §5.2/§5.3: stop the timer when all is acknowledged,
        // otherwise restart it on new data acknowledged.
        if self.snd_una == self.snd_max {
            self.timers.clear(TimerKind::Retransmit);
            self.timers.clear(TimerKind::LossProbe);
            self.timers.clear(TimerKind::Reorder);
            if let Some(t) = self.stats.busy_since.take() {
                self.stats.busy_time += now - t;
            }
        } else if advanced {
            self.arm_rto(now);
            self.schedule_loss_probe(now);
        }
    }

    /// RFC 2883 / RFC 3708: a D-SACK reports a duplicate. It widens RACK's
    /// reordering window and counts towards proving the episode's
    /// retransmissions unnecessary.
    fn on_dsack(&mut self, now: Instant, acked: &AckSummary, prior_una: SeqNum) {
        let Some((left, right)) = acked.dsack else {
            return;
        };
        self.stats.dsack_dups += 1;
        self.emit(now, EventKind::DsackReceived { left, right });
        self.rack.on_dsack(self.snd_una, self.snd_max);
        let mut dup_retrans = acked.dsack_retrans;
        // Below SND.UNA the queue has forgotten the segment: count it when
        // it lies in this undo episode (Linux `tcp_check_dsack`).
        if let Some(marker) = self.undo_marker {
            if right.before_eq(prior_una) && right.after(marker) && self.undo_retrans > 0 {
                dup_retrans += 1;
            }
        }
        self.undo_retrans = self.undo_retrans.saturating_sub(dup_retrans);
        if let Some(end) = self.tlp.end_seq {
            if self.tlp.is_retrans && right.after_eq(end) && left.before(end) {
                self.tlp.dsacked = true;
            }
        }
        self.emit(
            now,
            EventKind::ReorderingDetected {
                reo_wnd: self.current_reo_wnd(),
            },
        );
    }

    /// RTT from the oldest newly delivered segment never retransmitted
    /// (Karn's algorithm, as Linux's `seq_rtt`); failing that, from the
    /// timestamp echo (RFC 7323 §4.2), which retransmissions do not blur.
    fn take_rtt_sample(
        &mut self,
        now: Instant,
        seg: &TcpRepr<'_>,
        advanced: bool,
        acked: &AckSummary,
    ) {
        let mut rtt = acked.oldest_clean.map(|t| now - t);
        if rtt.is_none() && advanced && self.ts_ok {
            if let Some(ts) = seg.options.timestamps {
                if ts.tsecr != 0 {
                    let ms = self.ts_now(now).wrapping_sub(ts.tsecr);
                    if ms < 3_600_000 {
                        rtt = Some(Duration::from_millis(u64::from(ms)));
                    }
                }
            }
        }
        if let Some(r) = rtt {
            self.rtt_sample(now, r);
        }
        self.last_rtt = acked.newest_clean.map(|t| now - t).or(rtt);
    }

    /// RFC 8985 §6.2 steps 1–3: RACK follows the most recently sent
    /// delivered segment; reordering is noted.
    fn update_rack(&mut self, now: Instant, seg: &TcpRepr<'_>, acked: &AckSummary) {
        self.rack.min_rtt = self.rtt.min_rtt();
        if let Some(n) = acked.newest {
            // RFC 8985 §6.2 step 2: a retransmitted segment whose RTT is
            // below min_rtt, or whose ACK echoes a timestamp from before the
            // retransmission, may be acknowledging the original.
            let rtt = now - n.xmit_time;
            let too_fast = self.rtt.min_rtt().is_some_and(|m| rtt < m);
            let echoes_original = match (self.retrans_stamp, seg.options.timestamps) {
                (Some(stamp), Some(ts)) if self.ts_ok && ts.tsecr != 0 => {
                    ts_before(ts.tsecr, stamp)
                }
                _ => false,
            };
            let ambiguous = n.ever_retrans && (too_fast || echoes_original);
            self.rack.update(now, n.xmit_time, n.end, ambiguous);
        }
        if acked.reordering && !self.rack.reordering_seen {
            self.rack.reordering_seen = true;
            self.stats.reord_seen += 1;
            self.emit(
                now,
                EventKind::ReorderingDetected {
                    reo_wnd: self.current_reo_wnd(),
                },
            );
        }
    }

    pub(crate) fn current_reo_wnd(&self) -> Duration {
        let in_recovery = matches!(self.win.ca_state, CaState::Recovery | CaState::Loss);
        self.rack
            .reo_wnd(in_recovery, self.board.sacked_segments(), self.rtt.srtt())
    }

    /// draft-cheng-iccrg-delivery-rate-estimation §3.3: a rate sample for
    /// the controller and `TcpInfo.delivery_rate`.
    /// Linux hands the controller a sample on every ACK that delivered
    /// something; one without a valid rate has a zero `interval`.
    fn rate_sample(
        &mut self,
        now: Instant,
        acked: &AckSummary,
        prior_in_flight: u32,
        losses: u32,
    ) -> Option<RateSample> {
        let s = self.rate.on_ack(now, acked, self.rtt.min_rtt())?;
        let rs = RateSample {
            delivered: s.delivered,
            interval: if s.valid { s.interval } else { Duration::ZERO },
            prior_delivered: s.prior_delivered,
            rtt: self.last_rtt,
            losses,
            acked_sacked: acked.delivered_bytes,
            prior_in_flight,
            is_app_limited: s.is_app_limited,
        };
        if s.valid {
            if let Some(rate) = rs.delivery_rate() {
                // Linux keeps app-limited samples only when they are higher.
                if !s.is_app_limited || self.delivery_rate.is_none_or(|r| rate >= r) {
                    self.delivery_rate = Some(rate);
                    self.delivery_rate_app_limited = s.is_app_limited;
                }
            }
        }
        self.win.app_limited = s.is_app_limited;
        Some(rs)
    }

    /// NewReno: the first unacknowledged segment is lost (RFC 5681 §3.2
    /// step 3, RFC 6582 §3.2 step 5).
    fn mark_head_lost(&mut self, now: Instant, by: RetransmitCause) {
        let Some(first) = self.board.first().copied() else {
            return;
        };
        let bytes = self.board.mark_lost(0, by);
        self.note_loss(now, first.start, bytes, by);
    }

    /// Loss detection proper: RACK (RFC 8985 §6.2) with SACK by default,
    /// RFC 6675 IsLost when RACK is off, NewReno partial ACKs without SACK.
    fn detect_losses(&mut self, now: Instant, advanced: bool, prior_una: SeqNum) {
        if self.board.is_empty() {
            self.timers.clear(TimerKind::Reorder);
            return;
        }
        let first = self.board.first().map(|s| s.start).unwrap_or(self.snd_una);
        if !self.sack_ok {
            // RFC 6582 §3.2 step 5: a partial ACK in recovery means the
            // next segment was lost too.
            if advanced
                && self.win.ca_state == CaState::Recovery
                && self.snd_una.before(self.high_seq)
            {
                self.mark_head_lost(now, RetransmitCause::PartialAck);
            }
            let _ = prior_una;
            return;
        }
        let (bytes, by) = if self.config.rack {
            self.rack_detect_loss(now)
        } else {
            let n = self.board.mark_lost_by_sacks(
                self.config.dupack_threshold.max(1),
                self.snd_mss,
                RetransmitCause::FastRetransmit,
            );
            (n, RetransmitCause::FastRetransmit)
        };
        self.note_loss(now, first, bytes, by);
    }

    /// RFC 8985 §6.2 `RACK_detect_loss`, arming the reordering timer for
    /// segments not yet overdue (§6.3).
    fn rack_detect_loss(&mut self, now: Instant) -> (u32, RetransmitCause) {
        let Some(xmit) = self.rack.xmit_ts else {
            return (0, RetransmitCause::Rack);
        };
        // Before loss recovery the first detection is a fast retransmit.
        let by = if self.win.ca_state == CaState::Recovery || self.win.ca_state == CaState::Loss {
            RetransmitCause::Rack
        } else {
            RetransmitCause::FastRetransmit
        };
        let wait = self.rack.rtt + self.current_reo_wnd();
        let (bytes, timeout) = self
            .board
            .rack_detect(now, xmit, self.rack.end_seq, wait, by);
        match timeout {
            Some(t) => {
                // The timer must not fire before the RTT granularity.
                let t = t.max(Duration::from_millis(1));
                self.arm(TimerKind::Reorder, now + t);
            }
            None => self.timers.clear(TimerKind::Reorder),
        }
        (bytes, by)
    }

    /// RFC 8985 §6.3: the reordering timer fired; run detection again.
    pub(crate) fn on_reorder_timeout(&mut self, now: Instant) {
        if !self.state.is_synchronized() || self.board.is_empty() {
            return;
        }
        let first = self.board.first().map(|s| s.start).unwrap_or(self.snd_una);
        let (bytes, by) = self.rack_detect_loss(now);
        self.note_loss(now, first, bytes, by);
        if bytes > 0 {
            self.update_ca_state(now, false);
        }
    }

    /// Enter fast recovery: the controller picks ssthresh, PRR brings the
    /// window down to it (RFC 6675 §5, RFC 6937 §3).
    fn enter_recovery(&mut self, now: Instant) {
        let before = (self.win.cwnd, self.win.ssthresh);
        self.stats.fast_retransmits += 1;
        if self.win.ca_state != CaState::Cwr {
            self.start_undo_episode();
            self.win.prior_cwnd = self.win.cwnd;
            self.win.prior_ssthresh = self.win.ssthresh;
            self.reduce_ssthresh(now);
            self.prr = Prr::start(self.board.outstanding());
        }
        self.high_seq = self.snd_max;
        self.dupacks.on_recovery(self.snd_max);
        self.rescue_rxt = None;
        self.set_ca_state(now, CaState::Recovery);
        self.note_cwnd(now, before, CwndCause::FastRecovery);
        let by = self
            .board
            .iter()
            .find(|s| s.lost)
            .map_or(RetransmitCause::FastRetransmit, |s| s.cause);
        self.emit(
            now,
            EventKind::RecoveryStart {
                recover: self.high_seq,
                cause: by,
            },
        );
    }

    fn start_undo_episode(&mut self) {
        self.undo_marker = Some(self.snd_una);
        self.undo_retrans = 0;
        self.retrans_stamp = None;
    }

    /// Linux `tcp_end_cwnd_reduction`: the episode is over, cwnd = ssthresh.
    fn end_reduction(&mut self, now: Instant) {
        let before = (self.win.cwnd, self.win.ssthresh);
        if self.win.ssthresh < u32::MAX {
            self.win.cwnd = self.win.ssthresh.max(self.snd_mss);
        }
        self.note_cwnd(now, before, CwndCause::RecoveryExit);
    }

    /// Moves between Open, Disorder, Recovery, Loss and CWR. Returns true
    /// when a window reduction (Recovery, CWR) ended.
    pub(crate) fn update_ca_state(&mut self, now: Instant, advanced: bool) -> bool {
        let done = self.snd_una.after_eq(self.high_seq);
        let mut ended = false;
        match self.win.ca_state {
            CaState::Recovery if done => {
                self.end_reduction(now);
                self.emit(
                    now,
                    EventKind::RecoveryEnd {
                        recover: self.high_seq,
                    },
                );
                self.rack.on_recovery_exit();
                self.undo_marker = None;
                self.reno_sacked = 0;
                self.set_ca_state(now, CaState::Open);
                ended = true;
            }
            CaState::Loss if done && advanced => {
                self.undo_marker = None;
                self.set_ca_state(now, CaState::Open);
            }
            CaState::Cwr if done => {
                self.end_reduction(now);
                self.cc
                    .cwnd_event(&mut self.win, CwndEvent::CompleteCwr, now);
                self.set_ca_state(now, CaState::Open);
                ended = true;
            }
            _ => {}
        }
        let lost = self.board.lost_bytes() > 0;
        match self.win.ca_state {
            CaState::Open | CaState::Disorder | CaState::Cwr if lost => self.enter_recovery(now),
            // Linux: Disorder while SACKed data (or, without SACK,
            // duplicate ACKs) shows something amiss.
            CaState::Open if self.disordered() => self.set_ca_state(now, CaState::Disorder),
            CaState::Disorder if !self.disordered() => self.set_ca_state(now, CaState::Open),
            _ => {}
        }
        ended
    }

    /// PRR during recovery and CWR; the controller otherwise.
    fn adjust_window(
        &mut self,
        now: Instant,
        advanced: bool,
        acked: &AckSummary,
        rate: Option<RateSample>,
        prior_in_flight: u32,
    ) {
        self.fill_window();
        self.win.ack_delayed = acked.delivered_bytes <= self.snd_mss;
        let sample = AckSample {
            acked_bytes: acked.delivered_bytes,
            rtt: self.last_rtt,
            prior_in_flight,
        };
        if acked.delivered_bytes > 0 {
            self.cc.pkts_acked(&self.win, &sample, now);
        }
        let before = (self.win.cwnd, self.win.ssthresh);
        // Linux `tcp_cong_control`: a controller with `cong_control` (BBR)
        // owns the window in recovery too; PRR is for the others.
        if self.reducing() && !self.cc.has_cong_control() {
            // RFC 6937 §3; NewReno's duplicate ACKs each stand for one
            // delivered segment.
            let mut delivered = acked.delivered_bytes;
            if !self.sack_ok && !advanced && self.dupacks.count() > 0 {
                delivered += self.snd_mss;
            }
            if delivered > 0 {
                let cwnd = self
                    .prr
                    .on_ack(delivered, self.pipe(), self.win.ssthresh, self.snd_mss);
                self.win.cwnd = cwnd.max(self.snd_mss);
                self.note_cwnd(now, before, CwndCause::RecoveryAck);
            }
            return;
        }
        let app_limited = self.win.app_limited;
        let owned = match rate {
            Some(rs) => self.cc.cong_control(&mut self.win, &rs, now),
            None => false,
        };
        if self.win.app_limited && !app_limited {
            // The controller declared the flight app-limited (BBR's
            // PROBE_RTT, Linux sets `tp->app_limited`): samples until this
            // flight is delivered do not measure the path.
            self.rate.on_app_limited(self.pipe());
        }
        // Linux `tcp_cong_avoid` runs on forward progress only.
        if !owned && advanced && acked.delivered_bytes > 0 {
            self.cc.cong_avoid(&mut self.win, &sample, now);
        }
        self.win.cwnd = self.win.cwnd.max(self.snd_mss);
        let cause = if owned {
            CwndCause::Controller
        } else {
            CwndCause::Ack
        };
        self.note_cwnd(now, before, cause);
        self.note_pacing(now);
    }

    /// A congestion response: the controller's ssthresh, from FlightSize as
    /// RFC 5681 eq. (4) says, capped at cwnd as Linux (whose Reno and CUBIC
    /// use cwnd) — lost data still outstanding must not inflate it.
    pub(crate) fn reduce_ssthresh(&mut self, now: Instant) {
        self.fill_window();
        self.win.bytes_in_flight = self.flight_size().min(self.win.cwnd);
        self.win.ssthresh = self.cc.ssthresh(&self.win, now).max(2 * self.snd_mss);
    }

    /// Counts newly lost bytes and reports them.
    pub(crate) fn note_loss(&mut self, now: Instant, seq: SeqNum, bytes: u32, by: RetransmitCause) {
        self.stats.bytes_lost += u64::from(bytes);
        if bytes > 0 {
            self.emit(now, EventKind::LossDetected { seq, bytes, by });
        }
    }

    /// The connection state a controller reads besides cwnd and ssthresh.
    pub(crate) fn fill_window(&mut self) {
        self.win.bytes_in_flight = self.pipe();
        self.win.snd_una = self.snd_una.0;
        self.win.snd_nxt = self.snd_max.0;
        self.win.delivered = self.stats.delivered;
        self.win.lost = self.stats.bytes_lost;
        // Linux `tcp_is_cwnd_limited`: in slow start, also while cwnd is
        // below twice what is in flight.
        self.win.cwnd_limited =
            self.cwnd_limited || (self.win.in_slow_start() && self.win.cwnd < 2 * self.pipe());
    }

    /// Reports a change of the controller's own mode (e.g. BBR's).
    pub(crate) fn note_cc_mode(&mut self, now: Instant) {
        let mode = self.cc.mode();
        if mode != self.last_cc_mode {
            let from = self.last_cc_mode.unwrap_or("none").to_string();
            self.last_cc_mode = mode;
            self.emit(
                now,
                EventKind::CcStateChange {
                    from,
                    to: mode.unwrap_or("none").to_string(),
                },
            );
        }
    }

    /// Emits a pacing-rate change made by the controller.
    pub(crate) fn note_pacing(&mut self, now: Instant) {
        if self.win.pacing_rate != self.last_pacing_rate {
            self.last_pacing_rate = self.win.pacing_rate;
            self.emit(
                now,
                EventKind::PacingRateChange {
                    rate: self.win.pacing_rate,
                },
            );
        }
    }

    /// Spurious retransmission detection and undo (Linux `tcp_try_undo_*`):
    /// every retransmission D-SACKed (RFC 3708), or the ACK ending the
    /// episode echoes a timestamp older than the first retransmission
    /// (RFC 3522 Eifel; after a timeout this is the Eifel response of
    /// RFC 4015 in Linux's form).
    fn try_undo(&mut self, now: Instant, seg: &TcpRepr<'_>, advanced: bool) {
        let Some(_) = self.undo_marker else {
            return;
        };
        if self.retrans_stamp.is_none() {
            return; // nothing was retransmitted yet
        }
        let in_episode = matches!(self.win.ca_state, CaState::Recovery | CaState::Loss);
        if !in_episode {
            return;
        }
        if self.undo_retrans == 0 {
            self.undo(now, SpuriousDetection::Dsack);
            return;
        }
        let delayed = match (self.retrans_stamp, seg.options.timestamps) {
            (Some(stamp), Some(ts)) if self.ts_ok && ts.tsecr != 0 => ts_before(ts.tsecr, stamp),
            _ => false,
        };
        let loss_ack = self.win.ca_state == CaState::Loss && advanced;
        let recovery_done =
            self.win.ca_state == CaState::Recovery && self.snd_una.after_eq(self.high_seq);
        if delayed && (loss_ack || recovery_done) {
            self.undo(now, SpuriousDetection::Timestamps);
        }
    }

    /// Reverts the congestion response (Linux `tcp_undo_cwnd_reduction`).
    fn undo(&mut self, now: Instant, by: SpuriousDetection) {
        let before = (self.win.cwnd, self.win.ssthresh);
        self.win.cwnd = self.cc.undo_cwnd(&self.win).max(self.snd_mss);
        if self.win.prior_ssthresh > self.win.ssthresh {
            self.win.ssthresh = self.win.prior_ssthresh;
        }
        self.board.unmark_lost();
        self.undo_marker = None;
        self.retrans_stamp = None;
        self.stats.undo_count += 1;
        self.note_cwnd(now, before, CwndCause::Undo);
        self.emit(now, EventKind::SpuriousRetransmission { by, undone: true });
        if self.win.ca_state == CaState::Recovery {
            self.emit(
                now,
                EventKind::RecoveryEnd {
                    recover: self.high_seq,
                },
            );
        }
        self.reno_sacked = 0;
        self.set_ca_state(now, CaState::Open);
    }

    /// RFC 8985 §7.4: when the probe's episode is acknowledged, a probe
    /// that repaired a loss (no D-SACK for it) gets a congestion response.
    fn process_tlp_ack(&mut self, now: Instant, acked: &AckSummary) {
        let _ = acked;
        let Some(end) = self.tlp.end_seq else {
            return;
        };
        if self.snd_una.before(end) {
            return;
        }
        let tlp = std::mem::take(&mut self.tlp);
        if !tlp.is_retrans {
            return;
        }
        if tlp.dsacked {
            // The original arrived: the probe was a duplicate, not a repair.
            self.emit(
                now,
                EventKind::SpuriousRetransmission {
                    by: SpuriousDetection::TlpDsack,
                    undone: false,
                },
            );
            return;
        }
        if matches!(self.win.ca_state, CaState::Open | CaState::Disorder) {
            // Linux `tcp_process_tlp_ack`: a CWR-style reduction at once.
            let before = (self.win.cwnd, self.win.ssthresh);
            self.reduce_ssthresh(now);
            self.win.cwnd = self.win.ssthresh;
            // The loss the probe repaired (its bytes were never marked).
            self.emit(
                now,
                EventKind::LossDetected {
                    seq: end,
                    bytes: 0,
                    by: RetransmitCause::Tlp,
                },
            );
            self.note_cwnd(now, before, CwndCause::FastRecovery);
        }
    }

    /// RFC 8985 §7.2: arm the probe timeout after sending new data or on an
    /// ACK, when the connection is Open, SACK is on and no probe is out.
    pub(crate) fn schedule_loss_probe(&mut self, now: Instant) {
        let eligible = self.config.tlp
            && self.sack_ok
            && self.state.is_synchronized()
            && self.tlp.end_seq.is_none()
            && matches!(self.win.ca_state, CaState::Open | CaState::Cwr)
            && !self.board.is_empty();
        if !eligible {
            self.timers.clear(TimerKind::LossProbe);
            return;
        }
        let rto_left = self
            .timers
            .get(TimerKind::Retransmit)
            .map(|t| t.saturating_since(now));
        let one_segment = self.board.in_flight() <= self.snd_mss;
        let pto = Tlp::pto(self.rtt.srtt(), one_segment, rto_left);
        self.arm(TimerKind::LossProbe, now + pto);
    }

    /// RFC 8985 §7.3: the probe timer fired; output sends the probe.
    pub(crate) fn on_loss_probe(&mut self, now: Instant) {
        if !self.state.is_synchronized()
            || self.board.is_empty()
            || !matches!(self.win.ca_state, CaState::Open | CaState::Cwr)
        {
            return;
        }
        self.tlp_pending = true;
        // The probe takes the RTO's place; the RTO is re-armed after it
        // (Linux `tcp_send_loss_probe`).
        self.arm_rto(now);
    }

    /// RFC 3168 §6.1.2: an ECE reduces the window once per round trip,
    /// through CWR (PRR paces the reduction as in Linux).
    fn process_ece(&mut self, now: Instant, seg: &TcpRepr<'_>, advanced: bool) {
        if !self.ecn_ok || !seg.ece {
            if self.ecn_ok && advanced {
                self.cc.cwnd_event(&mut self.win, CwndEvent::EcnNoCe, now);
            }
            return;
        }
        self.emit(now, EventKind::EcnEchoReceived);
        self.cc.cwnd_event(&mut self.win, CwndEvent::EcnIsCe, now);
        if !matches!(self.win.ca_state, CaState::Open | CaState::Disorder) {
            return;
        }
        if self.snd_una.before(self.cwr_high) {
            return; // already reduced for this window
        }
        let before = (self.win.cwnd, self.win.ssthresh);
        self.win.prior_cwnd = self.win.cwnd;
        self.win.prior_ssthresh = self.win.ssthresh;
        self.reduce_ssthresh(now);
        self.prr = Prr::start(self.board.outstanding());
        self.high_seq = self.snd_max;
        self.cwr_high = self.snd_max;
        self.undo_marker = None;
        // RFC 3168 §6.1.2: set CWR on the next new data segment.
        self.cwr_pending = true;
        self.set_ca_state(now, CaState::Cwr);
        self.note_cwnd(now, before, CwndCause::Ecn);
    }
}
