//! Segment arrival: RFC 9293 §3.10.7 in the order the RFC gives, with the
//! RFC 5961 hardening, RFC 7323 PAWS, RFC 2883 D-SACK and RFC 3168 ECN
//! on the receiving side. What an ACK does to the sender is in `loss.rs`.

use super::config::EcnMode;
use super::connection::{Connection, IcmpError, MIN_PMTU};
use super::state::State;
use super::timers::TimerKind;
use crate::cc::CaState;
use crate::observe::{
    ChallengeReason, CwndCause, DropReason, EventKind, RetransmitCause, RstReason,
};
use crate::time::{Duration, Instant};
use crate::Error;
use daytona_wire::tcp::{Control, TcpRepr};
use daytona_wire::SeqNum;

/// RFC 7323 §5.5: TS.Recent older than 24 days is invalid for PAWS.
const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);

/// `a < b` in the modular timestamp space (RFC 7323 §5.3).
fn ts_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl Connection {
    /// Processes one incoming segment for this connection. The checksum was
    /// verified and the 4-tuple matched by the stack; `ce` is the IP header's
    /// ECN Congestion Experienced mark.
    pub fn handle_segment(&mut self, now: Instant, seg: &TcpRepr<'_>, ce: bool) {
        self.stats.segs_in += 1;
        self.rx_ce = ce;
        match self.state {
            State::Closed | State::Listen => {}
            State::SynSent => self.input_syn_sent(now, seg),
            _ => self.input_synchronized(now, seg),
        }
    }

    /// RFC 9293 §3.10.7.3: a segment arrives in SYN-SENT.
    fn input_syn_sent(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        // First: check the ACK.
        if let Some(ack) = seg.ack {
            if ack.before_eq(self.iss) || ack.after(self.snd_max) {
                // <SEQ=SEG.ACK><CTL=RST>, unless the segment is a RST.
                if seg.control != Control::Rst {
                    self.pending_rst = Some((ack, None));
                    self.emit(
                        now,
                        EventKind::RstSent {
                            reason: RstReason::BadAck,
                        },
                    );
                }
                self.emit(
                    now,
                    EventKind::SegmentDropped {
                        reason: DropReason::AckOfUnsent,
                    },
                );
                return;
            }
        }
        // Second: the RST bit. Only with an acceptable ACK (RFC 5961 §3.2
        // keeps this test for SYN-SENT).
        if seg.control == Control::Rst {
            if seg.ack.is_some() {
                self.emit(now, EventKind::RstReceived);
                self.fail(now, Error::ConnectionRefused);
            }
            return;
        }
        // Fourth: the SYN bit.
        if seg.control != Control::Syn {
            return;
        }
        self.irs = seg.seq;
        self.rcv_nxt = seg.seq + 1;
        self.rcv_adv = self.rcv_nxt;
        self.last_recv = now;
        self.negotiate_options(&seg.options, false);
        if let Some(ts) = seg.options.timestamps {
            self.ts_recent = ts.tsval;
            self.ts_recent_stamp = now;
        }
        // RFC 7323 §2.2: the window in a SYN is never scaled.
        self.set_send_window(
            now,
            u32::from(seg.window),
            seg.seq,
            seg.ack.unwrap_or(self.iss),
        );
        // RFC 3168 §6.1.1: an ECN-setup SYN-ACK has ECE and not CWR.
        self.ecn_ok = self.config.ecn == EcnMode::On && seg.ece && !seg.cwr;
        match seg.ack {
            Some(ack) => {
                self.snd_una = ack;
                self.on_syn_acked(now);
                self.set_state(now, State::Established);
                self.apply_deferred_fin(now);
                // RFC 9293 §3.10.7.3: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>.
                self.ack_now = true;
                // Data or FIN on the SYN-ACK (allowed, rare).
                if !seg.payload.is_empty() {
                    let data = TcpRepr {
                        seq: seg.seq + 1,
                        control: Control::None,
                        ..*seg
                    };
                    self.process_text(now, &data);
                }
            }
            None => {
                // RFC 9293 §3.10.7.3: simultaneous open. Send
                // <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> from SYN-RECEIVED.
                self.set_state(now, State::SynReceived);
                self.snd_nxt = self.iss;
                self.arm_rto(now);
            }
        }
    }

    /// Our SYN was acknowledged: take an RTT sample, initialise congestion
    /// control and reset the timers the handshake used.
    fn on_syn_acked(&mut self, now: Instant) {
        self.syn_acked = true;
        // A duplicate SYN may have pulled SND.NXT back to ISS to resend the
        // SYN-ACK; the handshake is over, so data starts after the SYN.
        if self.snd_nxt.before(self.iss + 1) {
            self.snd_nxt = self.iss + 1;
        }
        if let Some(t) = self.rtt_timed.take() {
            if t.seq == self.iss && !self.syn_retransmitted {
                self.rtt_sample(now, now - t.sent);
            }
        }
        if self.syn_retransmitted && self.rtt.srtt().is_none() {
            // RFC 6298 §5.7: the SYN was retransmitted and no sample exists:
            // use 3 s for the data phase.
            self.rtt.reset_initial(Duration::from_secs(3));
        }
        self.rtt.reset_backoff();
        self.retransmits = 0;
        self.timers.clear(TimerKind::Retransmit);
        self.stats.last_ack_recv = Some(now);
        let before = (self.win.cwnd, self.win.ssthresh);
        self.win.mss = self.snd_mss;
        // RFC 6928: IW = initial_cwnd_segments·MSS, with the negotiated MSS.
        self.win.cwnd = self.config.initial_cwnd_segments.max(1) * self.snd_mss;
        // A per-connection seed for controllers that randomise (BBR),
        // deterministic like everything in the core.
        self.win.seed = (u64::from(self.iss.0) << 16) ^ u64::from(self.remote.port());
        self.fill_window();
        self.cc.init(&mut self.win, now);
        self.last_cc_mode = self.cc.mode();
        self.note_pacing(now);
        self.note_cwnd(now, before, CwndCause::Init);
        self.arm_keepalive(now);
    }

    /// RFC 9293 §3.10.7.4: a segment arrives in a synchronized state or in
    /// SYN-RECEIVED.
    fn input_synchronized(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        // A retransmitted SYN in SYN-RECEIVED means our SYN-ACK was lost:
        // answer with the SYN-ACK again.
        if self.state == State::SynReceived
            && seg.control == Control::Syn
            && seg.ack.is_none()
            && seg.seq == self.irs
        {
            self.snd_nxt = self.iss;
            return;
        }

        // RFC 7323 §5.3 R1: PAWS, before the sequence check.
        if self.ts_ok && seg.control != Control::Rst {
            if let Some(ts) = seg.options.timestamps {
                if ts_before(ts.tsval, self.ts_recent) && now - self.ts_recent_stamp < PAWS_IDLE {
                    self.emit(
                        now,
                        EventKind::SegmentDropped {
                            reason: DropReason::Paws,
                        },
                    );
                    self.ack_now = true;
                    return;
                }
            }
        }

        // First: the sequence number (RFC 9293 §3.10.7.4, four cases).
        if !self.segment_acceptable(seg) {
            if seg.control != Control::Rst {
                // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
                self.ack_now = true;
                // RFC 2883 §4: report an old duplicate in a D-SACK block.
                let end = seg.seq + seg.payload.len() as u32;
                if !seg.payload.is_empty() && end.before_eq(self.rcv_nxt) {
                    self.note_dsack(seg.seq, end);
                }
                if self.state == State::TimeWait && seg.control == Control::Fin {
                    // RFC 9293 §3.10.7.4: a retransmitted FIN restarts 2·MSL.
                    self.enter_time_wait(now);
                }
            }
            self.emit(
                now,
                EventKind::SegmentDropped {
                    reason: DropReason::Unacceptable,
                },
            );
            return;
        }
        self.last_recv = now;
        self.keepalive_probes = 0;
        if self.config.keepalive.is_some() {
            self.arm_keepalive(now);
        }

        // RFC 7323 §4.3 (2): remember the timestamp to echo.
        if let Some(ts) = seg.options.timestamps {
            // RFC 7323 §5.5: after 24 days idle TS.Recent is invalid, so a
            // timestamp that looks older replaces it too.
            let stale = now - self.ts_recent_stamp >= PAWS_IDLE;
            if self.ts_ok
                && seg.seq.before_eq(self.last_ack_sent)
                && (stale || !ts_before(ts.tsval, self.ts_recent))
            {
                self.ts_recent = ts.tsval;
                self.ts_recent_stamp = now;
            }
        }

        // Second: the RST bit (RFC 5961 §3.2).
        if seg.control == Control::Rst {
            if seg.seq == self.rcv_nxt {
                self.emit(now, EventKind::RstReceived);
                match self.state {
                    State::SynReceived if !self.active_open => self.enter_closed(now),
                    State::SynReceived => self.fail(now, Error::ConnectionRefused),
                    State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                        self.fail(now, Error::ConnectionReset)
                    }
                    _ => self.enter_closed(now),
                }
            } else {
                // RFC 5961 §3.2: in window but not exact: challenge ACK.
                self.challenge_ack(now, ChallengeReason::Rst);
            }
            return;
        }

        // Fourth: the SYN bit (RFC 5961 §4.2): challenge ACK, drop.
        if seg.control == Control::Syn {
            self.challenge_ack(now, ChallengeReason::Syn);
            return;
        }

        // Fifth: the ACK field.
        let Some(ack) = seg.ack else {
            self.emit(
                now,
                EventKind::SegmentDropped {
                    reason: DropReason::NoAck,
                },
            );
            return;
        };
        if self.state == State::SynReceived {
            if ack.after(self.snd_una) && ack.before_eq(self.snd_max) {
                self.set_state(now, State::Established);
                self.snd_una = self.iss + 1;
                self.on_syn_acked(now);
                let wnd = u32::from(seg.window) << self.snd_wscale;
                self.set_send_window(now, wnd, seg.seq, ack);
                self.apply_deferred_fin(now);
            } else {
                // RFC 9293 §3.10.7.4: <SEQ=SEG.ACK><CTL=RST>.
                self.pending_rst = Some((ack, None));
                self.emit(
                    now,
                    EventKind::RstSent {
                        reason: RstReason::BadAck,
                    },
                );
                return;
            }
        }
        if !self.process_ack(now, seg, ack) {
            return;
        }
        if self.state == State::Closed {
            return;
        }

        // Seventh: the segment text.
        self.process_text(now, seg);
    }

    /// RFC 9293 §3.10.7.4 acceptability test, with the zero-window allowance
    /// Linux makes: a segment at RCV.NXT is acceptable for its ACK (and a
    /// bare FIN), its data is trimmed later.
    fn segment_acceptable(&self, seg: &TcpRepr<'_>) -> bool {
        let len = seg.seq_len();
        let wnd = self.rcv_adv.since(self.rcv_nxt);
        match (len, wnd) {
            (0, 0) => seg.seq == self.rcv_nxt,
            (0, _) => seg.seq.in_window(self.rcv_nxt, wnd),
            (_, 0) => seg.seq == self.rcv_nxt,
            (_, _) => {
                let last = seg.seq + (len - 1);
                seg.seq.in_window(self.rcv_nxt, wnd) || last.in_window(self.rcv_nxt, wnd)
            }
        }
    }

    /// RFC 5961 §7: send a challenge ACK unless the per-second budget is spent.
    fn challenge_ack(&mut self, now: Instant, reason: ChallengeReason) {
        if now - self.challenge_window >= Duration::from_secs(1) {
            self.challenge_window = now;
            self.challenge_count = 0;
        }
        let suppressed = self.challenge_count >= self.config.challenge_ack_limit;
        if !suppressed {
            self.challenge_count += 1;
            self.ack_now = true;
        }
        self.emit(now, EventKind::ChallengeAck { reason, suppressed });
    }

    /// Sets the send window unconditionally.
    pub(crate) fn set_send_window(&mut self, now: Instant, wnd: u32, seq: SeqNum, ack: SeqNum) {
        let changed = wnd != self.snd_wnd;
        self.snd_wnd = wnd;
        self.snd_wl1 = seq;
        self.snd_wl2 = ack;
        self.max_snd_wnd = self.max_snd_wnd.max(wnd);
        if changed {
            self.emit(now, EventKind::SendWindowUpdate { wnd });
        }
        if wnd == 0 && !self.zero_window_seen {
            self.emit(now, EventKind::ZeroWindowReceived);
        }
        self.zero_window_seen = wnd == 0;
        if wnd > 0 {
            self.persist_probes = 0;
            self.persist_backoff = 0;
        }
    }

    /// The fifth step for synchronized states. Returns false when the
    /// segment must be dropped.
    fn process_ack(&mut self, now: Instant, seg: &TcpRepr<'_>, ack: SeqNum) -> bool {
        // RFC 9293 §3.10.7.4 / RFC 5961 §5.2: an ACK for data not yet sent.
        if ack.after(self.snd_max) {
            self.emit(
                now,
                EventKind::SegmentDropped {
                    reason: DropReason::AckOfUnsent,
                },
            );
            self.challenge_ack(now, ChallengeReason::Ack);
            return false;
        }
        // RFC 5961 §5.2: an ACK older than SND.UNA − MAX.SND.WND.
        let oldest = self.snd_una - self.max_snd_wnd.max(1);
        if ack.before(oldest) {
            self.emit(
                now,
                EventKind::SegmentDropped {
                    reason: DropReason::AckTooOld,
                },
            );
            self.challenge_ack(now, ChallengeReason::Ack);
            return false;
        }
        self.stats.last_ack_recv = Some(now);
        // The peer answered: probes are no longer unanswered (Linux clears
        // `icsk_probes_out`; the probe backoff stays until the window opens).
        self.persist_probes = 0;
        let wnd = u32::from(seg.window) << self.snd_wscale;

        self.on_ack(now, seg, ack, wnd);

        // RFC 9293 §3.10.7.4: update the send window from the newest segment.
        if self.snd_wl1.before(seg.seq) || (self.snd_wl1 == seg.seq && self.snd_wl2.before_eq(ack))
        {
            self.set_send_window(now, wnd, seg.seq, ack);
        }

        // Our FIN acknowledged?
        let fin_acked = matches!(self.fin_seq, Some(f) if self.snd_una == f + 1);
        match self.state {
            State::FinWait1 if fin_acked => {
                self.set_state(now, State::FinWait2);
                if self.app_closed {
                    self.arm_fin_wait2(now);
                }
            }
            State::Closing if fin_acked => self.enter_time_wait(now),
            State::LastAck if fin_acked => {
                self.enter_closed(now);
                return false;
            }
            _ => {}
        }
        true
    }

    /// Feeds one RTT measurement to the estimator (RFC 6298 §2).
    pub(crate) fn rtt_sample(&mut self, now: Instant, rtt: Duration) {
        self.rtt.sample(rtt, now);
        self.rtt.reset_backoff();
        self.win.srtt = self.rtt.srtt();
        self.win.min_rtt = self.rtt.min_rtt();
        let srtt = self.rtt.srtt().unwrap_or(rtt);
        self.emit(
            now,
            EventKind::RttSample {
                rtt,
                srtt,
                rttvar: self.rtt.rttvar(),
                rto: self.rtt.rto(),
            },
        );
    }

    /// Seventh and eighth steps: segment text and FIN.
    fn process_text(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        let receiving = matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        );
        if seg.control == Control::Fin && receiving && self.peer_fin.is_none() {
            self.peer_fin = Some(seg.seq + seg.payload.len() as u32);
        }
        if !seg.payload.is_empty() && receiving {
            self.stats.data_segs_in += 1;
            self.stats.last_data_recv = Some(now);
            // Linux tcp_measure_rcv_mss: a GRO super-segment counts by the
            // size of the segments it was built from.
            let seg_len = self.rx_gso_size.map_or(seg.payload.len() as u32, |g| {
                u32::from(g).min(seg.payload.len() as u32)
            });
            self.rcv_mss = self.rcv_mss.max(seg_len);
            if self.app_closed {
                // RFC 9293 §3.10.7.4 / RFC 2525 §2.17: nobody will read this.
                self.reset(now, RstReason::DataAfterClose);
                return;
            }
            // RFC 3168 §6.1.3: echo CE in ECE until the peer's CWR.
            if self.ecn_ok {
                if seg.cwr {
                    self.ece_pending = false;
                }
                if self.rx_ce {
                    if !self.ece_pending {
                        self.emit(now, EventKind::EcnCeReceived);
                    }
                    self.ece_pending = true;
                    // Linux acknowledges CE-marked data at once.
                    self.ack_now = true;
                }
            }
            // Trim what we already have (RFC 9293 §3.10.7.4).
            let mut payload = seg.payload;
            let mut seq = seg.seq;
            if seq.before(self.rcv_nxt) {
                // RFC 2883 §4: the duplicate part goes in a D-SACK block.
                self.note_dsack(seq, self.rcv_nxt);
                let skip = self.rcv_nxt.since(seq) as usize;
                payload = payload.get(skip..).unwrap_or(&[]);
                seq = self.rcv_nxt;
            }
            let offset = seq.since(self.rcv_nxt) as usize;
            let had_holes = self.rcv_buf.has_out_of_order();
            let outcome = self.rcv_buf.write_at(offset, payload);
            self.rcv_nxt += outcome.advanced as u32;
            self.stats.bytes_received += outcome.advanced as u64;
            self.receiver_rtt(now, seg);
            self.autotune_recv_buffer(now);
            if offset > 0 && outcome.stored == 0 && outcome.duplicate > 0 {
                // RFC 2883 §4: a duplicate of out-of-order data we hold.
                let end = seq + (outcome.duplicate as u32);
                self.note_dsack(seq, end);
            }
            if outcome.trimmed > 0 && outcome.stored == 0 && outcome.duplicate == 0 {
                self.emit(
                    now,
                    EventKind::SegmentDropped {
                        reason: DropReason::NoBufferSpace,
                    },
                );
            }
            if offset > 0 || had_holes || outcome.stored == 0 || outcome.trimmed > 0 {
                // RFC 5681 §4.2: out-of-order data, data filling a hole and
                // duplicates are acknowledged at once.
                self.ack_now = true;
            } else {
                self.schedule_ack(now, outcome.advanced);
            }
        }
        // Eighth: the FIN, once everything before it has arrived.
        if let Some(fin) = self.peer_fin {
            if !self.fin_received && fin == self.rcv_nxt && receiving {
                self.rcv_nxt += 1;
                self.fin_received = true;
                self.ack_now = true;
                match self.state {
                    State::Established => self.set_state(now, State::CloseWait),
                    State::FinWait1 => {
                        let fin_acked = matches!(self.fin_seq, Some(f) if self.snd_una == f + 1);
                        if fin_acked {
                            self.enter_time_wait(now);
                        } else {
                            self.set_state(now, State::Closing);
                        }
                    }
                    State::FinWait2 => self.enter_time_wait(now),
                    _ => {}
                }
            }
        }
    }

    /// RFC 2883: the next ACK reports `[left, right)` as a duplicate.
    fn note_dsack(&mut self, left: SeqNum, right: SeqNum) {
        if self.sack_ok && self.config.dsack && left.before(right) {
            self.dsack_pending = Some((left, right));
        }
    }

    /// The receiver's own RTT estimate, for autotuning (Linux
    /// `tcp_rcv_rtt_measure_ts` and `tcp_rcv_rtt_measure`).
    fn receiver_rtt(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        if let (true, Some(ts)) = (self.ts_ok, seg.options.timestamps) {
            // RFC 7323 §4.1: TSecr echoes one of our TSvals. Only full-sized
            // segments, whose sending no small write or Nagle delayed.
            if ts.tsecr != 0 && seg.payload.len() as u32 >= self.rcv_mss {
                let ms = self.ts_now(now).wrapping_sub(ts.tsecr);
                if ms < 3_600_000 {
                    self.autotune
                        .timestamp_sample(Duration::from_millis(u64::from(ms)));
                }
            }
        }
        let wnd = self.rcv_adv.since(self.rcv_nxt);
        self.autotune.data_arrived(now, self.rcv_nxt, wnd);
    }

    /// Once per receiver RTT, let the receive buffer follow the rate the
    /// application consumes data (Linux `tcp_rcv_space_adjust`).
    fn autotune_recv_buffer(&mut self, now: Instant) {
        let consumed = self.stats.bytes_received - self.rcv_buf.readable() as u64;
        let from = self.rcv_buf.capacity();
        let limit = from.saturating_add(self.buffer_headroom);
        let grown = self
            .autotune
            .adjust(now, consumed, u32::from(self.adv_mss), from, limit);
        if let Some(to) = grown {
            self.rcv_buf.set_capacity(to);
            let to = self.rcv_buf.capacity();
            self.buffer_headroom = self.buffer_headroom.saturating_sub(to - from);
            self.emit(
                now,
                EventKind::ReceiveBufferGrown {
                    from: from as u32,
                    to: to as u32,
                },
            );
        }
    }

    /// Send-buffer autotuning (Linux `tcp_sndbuf_expand`): room for two
    /// congestion windows (the controller's `sndbuf_expand`, 3 for BBR), so
    /// the application can keep the pipe full while a window of data waits
    /// for its ACKs.
    pub(crate) fn autotune_send_buffer(&mut self, now: Instant) {
        let Some(max) = self.config.send_buffer_max else {
            return;
        };
        let from = self.snd_buf.capacity();
        let nr_segs = self
            .win
            .cwnd
            .max(self.config.initial_cwnd_segments * self.snd_mss);
        let factor = self.cc.sndbuf_expand().max(1) as usize;
        let want = (factor * nr_segs as usize)
            .min(max)
            .min(from.saturating_add(self.buffer_headroom));
        if want > from {
            self.snd_buf.set_capacity(want);
            self.buffer_headroom -= want - from;
            self.emit(
                now,
                EventKind::SendBufferGrown {
                    from: from as u32,
                    to: want as u32,
                },
            );
        }
    }

    /// RFC 9293 §3.8.6.3 and RFC 5681 §4.2: acknowledge at least every
    /// second full-sized segment, otherwise within the delayed-ACK timeout.
    fn schedule_ack(&mut self, now: Instant, bytes: usize) {
        let Some(delay) = self.config.delayed_ack else {
            self.ack_now = true;
            return;
        };
        if self.quickack_left > 0 {
            // Linux quick-ack mode: ACK every segment at connection start so
            // the peer's slow start is not slowed down.
            self.quickack_left -= 1;
            self.ack_now = true;
            return;
        }
        let mss = self.rcv_mss.max(1) as usize;
        self.segs_since_ack += bytes.div_ceil(mss) as u32;
        if self.segs_since_ack >= self.config.ack_every.max(1) {
            self.ack_now = true;
        } else if !self.timers.is_set(TimerKind::DelayedAck) {
            self.arm(TimerKind::DelayedAck, now + delay);
        }
    }

    /// An ICMP error for this connection (RFC 1122 §4.2.3.9, RFC 5927,
    /// RFC 1191).
    pub fn handle_icmp_error(&mut self, now: Instant, err: &IcmpError) {
        // RFC 5927 §4.1: the quoted sequence number must be in flight.
        let in_flight = err.seq.after_eq(self.snd_una) && err.seq.before_eq(self.snd_max);
        if !in_flight || matches!(self.state, State::Closed | State::TimeWait) {
            return;
        }
        self.emit(
            now,
            EventKind::IcmpError {
                source: err.source,
                icmp_type: err.icmp_type,
                code: err.code,
                mtu: err.next_hop_mtu,
            },
        );
        let error = match (err.icmp_type, err.code) {
            // RFC 1191 §6.5: fragmentation needed: lower the MSS and resend
            // without treating it as congestion.
            (3, 4) => {
                // RFC 1191 §5: a router that does not report the next-hop
                // MTU gets the next plateau below the current path MTU.
                let pmtu = self.mss_limit + super::connection::IPV4_TCP_HEADERS;
                let mtu = err.next_hop_mtu.unwrap_or_else(|| plateau_below(pmtu));
                self.pmtu_decrease(now, mtu);
                return;
            }
            (3, 0) | (3, 6) => Error::NetworkUnreachable,
            // Protocol and port unreachable are hard errors (RFC 1122 §4.2.3.9).
            (3, 2) | (3, 3) => Error::ConnectionRefused,
            (3, _) | (11, _) | (12, _) => Error::HostUnreachable,
            _ => return,
        };
        if matches!(self.state, State::SynSent | State::SynReceived) {
            // Linux: an ICMP error during the handshake aborts the connect.
            if self.state == State::SynReceived && !self.active_open {
                self.enter_closed(now);
            } else {
                self.fail(now, error);
            }
        } else {
            // RFC 1122 §4.2.3.9, RFC 5461 §4.1: soft in synchronized states;
            // reported if the connection later times out.
            self.soft_error = Some(error);
        }
    }

    /// RFC 1191 §6: the path MTU dropped to `mtu`.
    fn pmtu_decrease(&mut self, now: Instant, mtu: u16) {
        if mtu < MIN_PMTU {
            return;
        }
        let limit = mtu.saturating_sub(super::connection::IPV4_TCP_HEADERS);
        if limit >= self.mss_limit {
            return;
        }
        self.mss_limit = limit.max(48);
        let before = self.snd_mss;
        self.update_snd_mss(Some(now));
        if self.snd_mss < before && self.snd_max.after(self.snd_una) && self.state.is_synchronized()
        {
            // Resend what is in flight in smaller segments (Linux
            // `tcp_simple_retransmit`): segments now too big are lost,
            // cwnd unchanged.
            let mss = self.snd_mss;
            let mut bytes = 0;
            for i in 0..self.board.len() {
                let too_big = self.board.get(i).is_some_and(|s| s.len() > mss);
                if too_big {
                    bytes += self.board.mark_lost(i, RetransmitCause::PmtuDecrease);
                }
            }
            self.note_loss(now, self.snd_una, bytes, RetransmitCause::PmtuDecrease);
            if bytes > 0 && self.win.ca_state != CaState::Loss {
                self.high_seq = self.snd_max;
                self.undo_marker = None;
                self.set_ca_state(now, CaState::Loss);
            }
        }
        let before = (self.win.cwnd, self.win.ssthresh);
        self.win.mss = self.snd_mss;
        self.note_cwnd(now, before, CwndCause::MssChange);
        // RFC 1191 §6.3: try the larger MTU again after a while (Linux
        // `ip_rt_mtu_expires`, 10 minutes).
        if let Some(after) = self.config.pmtu_expires {
            self.arm(TimerKind::PmtuExpire, now + after);
        }
    }

    /// RFC 1191 §6.3: the lowered path MTU expired; go back to the MSS the
    /// interface allows. If the path still cannot carry it, the next
    /// fragmentation-needed lowers it again.
    pub(crate) fn pmtu_expired(&mut self, now: Instant) {
        if self.mss_limit < self.adv_mss {
            self.mss_limit = self.adv_mss;
            self.update_snd_mss(Some(now));
        }
    }
}

/// RFC 1191 §7: the largest plateau below `pmtu`, for fragmentation-needed
/// messages that carry no next-hop MTU.
fn plateau_below(pmtu: u16) -> u16 {
    const PLATEAUS: [u16; 10] = [
        32_000, 17_914, 8_166, 4_352, 2_002, 1_492, 1_006, 508, 296, 68,
    ];
    PLATEAUS.into_iter().find(|p| *p < pmtu).unwrap_or(MIN_PMTU)
}
